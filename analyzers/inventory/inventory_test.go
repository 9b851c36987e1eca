package inventory

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
)

func pkg(eco, name, version, loc string) sdk.Item {
	return sdk.Item{Package: &sdk.Package{Ecosystem: eco, Name: name, Version: version, Locations: []string{loc}}, Extractor: "x"}
}

func entries(paths, whiteouts, opaque []string, links ...sdk.HardLink) sdk.Item {
	return sdk.Item{Entries: &sdk.LayerEntries{Paths: paths, Whiteouts: whiteouts, OpaqueDirs: opaque, HardLinks: links}}
}

func names(img Image) []string {
	var out []string
	for _, p := range img.Packages {
		out = append(out, p.Name+"@"+p.Version+" "+strings.Join(p.Locations, ",")+" owner="+p.Owner)
	}
	slices.Sort(out)
	return out
}

func TestWhiteoutsAndReplacedFiles(t *testing.T) {
	base := Layer{Index: 1, Items: []sdk.Item{
		pkg("PyPI", "six", "1", "/usr/lib/python3/dist-packages/six-1.egg-info"),
		pkg("PyPI", "idna", "3", "/usr/lib/python3/dist-packages/idna-3.dist-info/METADATA"),
		pkg("npm", "lodash", "4.17.20", "/app/node_modules/lodash/package.json"),
		pkg("npm", "left", "1", "/opt/other/node_modules/left/package.json"),
		pkg("Go", "stdlib", "1.21", "/usr/bin/tool"),
		entries([]string{"/usr/bin/tool"}, nil, nil),
	}}
	upper := Layer{Index: 2, Items: []sdk.Item{
		// six deleted, idna's directory deleted, lodash replaced by a
		// newer one, /app made opaque, /usr/bin/tool replaced by a file
		// nobody recognises.
		entries([]string{"/app/node_modules/lodash/package.json", "/usr/bin/tool"},
			[]string{"/usr/lib/python3/dist-packages/six-1.egg-info", "/usr/lib/python3/dist-packages/idna-3.dist-info"},
			[]string{"/opt/other"}),
		pkg("npm", "lodash", "4.17.21", "/app/node_modules/lodash/package.json"),
	}}
	// Layers given out of order are sorted.
	img := Merge([]Layer{upper, base})
	want := []string{"lodash@4.17.21 /app/node_modules/lodash/package.json owner="}
	if got := names(img); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOpaqueHidesOnlyLowerLayers(t *testing.T) {
	img := Merge([]Layer{
		{Index: 1, Items: []sdk.Item{pkg("npm", "old", "1", "/app/node_modules/old/package.json")}},
		{Index: 2, Items: []sdk.Item{entries([]string{"/app/node_modules/new/package.json"}, nil, []string{"/app"}), pkg("npm", "new", "1", "/app/node_modules/new/package.json")}},
	})
	if got := names(img); len(got) != 1 || !strings.HasPrefix(got[0], "new@1") {
		t.Errorf("got %q", got)
	}
}

func TestFileReplacingADirectory(t *testing.T) {
	img := Merge([]Layer{
		{Index: 1, Items: []sdk.Item{pkg("Maven", "a", "1", "/srv/app.war!/WEB-INF/lib/a.jar")}},
		{Index: 2, Items: []sdk.Item{entries([]string{"/srv"}, nil, nil)}},
	})
	if len(img.Packages) != 0 {
		t.Errorf("a file at /srv left %q", names(img))
	}
}

func TestHardLinkAcrossLayers(t *testing.T) {
	img := Merge([]Layer{
		{Index: 1, Items: []sdk.Item{pkg("Go", "stdlib", "1.21.3", "/usr/bin/tool")}},
		{Index: 2, Items: []sdk.Item{entries([]string{"/opt/tool"}, nil, nil, sdk.HardLink{Path: "/opt/tool", Target: "/usr/bin/tool"})}},
		// A later whiteout of the target leaves the link's copy.
		{Index: 3, Items: []sdk.Item{entries(nil, []string{"/usr/bin/tool"}, nil)}},
	})
	want := []string{"stdlib@1.21.3 /opt/tool owner="}
	if got := names(img); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOSReleaseAndOSPackages(t *testing.T) {
	deb := sdk.Item{Extractor: "dpkg", Package: &sdk.Package{OS: "dpkg", Ecosystem: "Debian", Name: "bash", Version: "5.2.15-2+b7", Arch: "amd64", Locations: []string{"/var/lib/dpkg/status"}}}
	rel := sdk.Item{Extractor: "os-release", OSRelease: &sdk.OSRelease{Path: "/usr/lib/os-release", Fields: map[string]string{"ID": "debian", "VERSION_ID": "12"}}}
	link := sdk.Item{Extractor: "os-release", OSRelease: &sdk.OSRelease{Path: "/etc/os-release", LinkTarget: "../usr/lib/os-release"}}
	// os-release in a higher layer than the packages.
	img := Merge([]Layer{{Index: 1, Items: []sdk.Item{deb}}, {Index: 2, Items: []sdk.Item{link, rel}}})
	if !img.Found || img.OSRelease.ID != "debian" || img.OSRelease.Path != "/usr/lib/os-release" {
		t.Fatalf("os-release %+v found %v", img.OSRelease, img.Found)
	}
	p := img.Packages[0]
	if p.Ecosystem != "Debian:12" || p.PURL != "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12" {
		t.Errorf("package %+v", p)
	}
	if len(img.Warnings) != 0 {
		t.Errorf("warnings %+v", img.Warnings)
	}
	// Without os-release: the family, one warning for all packages.
	img = Merge([]Layer{{Index: 1, Items: []sdk.Item{deb, deb}}})
	if img.Found || img.Packages[0].Ecosystem != "Debian" || len(img.Warnings) != 1 || !strings.Contains(img.Warnings[0].Message, "no os-release") {
		t.Errorf("without os-release: %+v", img)
	}
	// A link loop ends.
	loop := sdk.Item{OSRelease: &sdk.OSRelease{Path: "/etc/os-release", LinkTarget: "/etc/os-release"}}
	if img := Merge([]Layer{{Index: 1, Items: []sdk.Item{loop}}}); img.Found {
		t.Error("a looping os-release was found")
	}
}

func TestOwnership(t *testing.T) {
	owned := sdk.Item{Extractor: "dpkg", Owned: &sdk.OwnedFiles{OS: "dpkg", Owner: "containerd", Location: "/var/lib/dpkg/info/containerd.list",
		Paths: []string{"/.", "/usr/bin/containerd", "/bin/ctr", "/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info"}}}
	layers := []Layer{
		{Index: 1, Items: []sdk.Item{owned,
			pkg("Go", "stdlib", "1.19.8", "/usr/bin/containerd"),
			pkg("Go", "stdlib", "1.19.8", "/usr/bin/ctr"), // named /bin/ctr (merged /usr)
			pkg("PyPI", "urllib3", "1.26.12", "/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO"),
			pkg("Go", "stdlib", "1.22.0", "/usr/local/bin/mine"),
		}},
		{Index: 2, Items: []sdk.Item{entries([]string{"/opt/link"}, nil, nil, sdk.HardLink{Path: "/opt/link", Target: "/usr/bin/containerd"})}},
	}
	img := Merge(layers)
	want := []string{
		"stdlib@1.19.8 /opt/link owner=containerd",
		"stdlib@1.19.8 /usr/bin/containerd owner=containerd",
		"stdlib@1.19.8 /usr/bin/ctr owner=containerd",
		"stdlib@1.22.0 /usr/local/bin/mine owner=",
		"urllib3@1.26.12 /usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO owner=containerd",
	}
	if got := names(img); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	// A higher layer replacing the list takes the ownership away.
	layers = append(layers, Layer{Index: 3, Items: []sdk.Item{entries([]string{"/var/lib/dpkg/info/containerd.list"}, nil, nil)}})
	for _, p := range Merge(layers).Packages {
		if p.Owner != "" {
			t.Errorf("%s still owned by %s", p.Locations[0], p.Owner)
		}
	}
}
