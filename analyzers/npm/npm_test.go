package npm

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// file is one entry of a hand-built layer: a regular file, or a link when
// link is set, or a directory when dir is set, or a FIFO.
type file struct {
	name, body, link string
	dir, fifo        bool
}

// layer returns a tar of files, as a layer holding them would be.
func layer(t *testing.T, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		case f.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case f.fifo:
			h.Typeflag, h.Size = tar.TypeFifo, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testdataFiles returns the regular files of testdata dir as layer
// entries under prefix, skipping the names skip says.
func testdataFiles(t *testing.T, dir, prefix string, skip func(rel string) bool) []file {
	t.Helper()
	var out []file
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if skip != nil && skip(filepath.ToSlash(rel)) {
			return nil
		}
		b, err := os.ReadFile(p)
		out = append(out, file{name: prefix + filepath.ToSlash(rel), body: string(b)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// items checks that every item is valid and that only packages and
// warnings come besides the framework's entries and layer end.
func items(t *testing.T, its []sdk.Item) ([]sdk.Package, []sdk.Warning) {
	t.Helper()
	for _, it := range its {
		if err := it.Validate(); err != nil {
			t.Fatalf("invalid item %+v: %v", it, err)
		}
		if it.Finding != nil || it.Owned != nil || it.OSRelease != nil {
			t.Fatalf("unexpected item %+v", it)
		}
	}
	return sdktest.Packages(its), sdktest.Warnings(its)
}

// npmLs returns name@version of every package in the tree `npm ls --all
// --json` printed (testdata/app/npm-ls.json), sorted.
func npmLs(t *testing.T) []string {
	t.Helper()
	type node struct {
		Version      string          `json:"version"`
		Dependencies map[string]node `json:"dependencies"`
	}
	b, err := os.ReadFile("testdata/app/npm-ls.json")
	if err != nil {
		t.Fatal(err)
	}
	var top node
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(map[string]node)
	walk = func(deps map[string]node) {
		for name, n := range deps {
			out = append(out, name+"@"+n.Version)
			walk(n.Dependencies)
		}
	}
	walk(top.Dependencies)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) < 3 {
		t.Fatalf("npm-ls.json lists only %q", out)
	}
	return out
}

// set returns name@version of pkgs, sorted and deduplicated.
func set(pkgs []sdk.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+"@"+p.Version)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, NewExtractor())
	e := NewExtractor()
	if e.Name() != "npm" || e.Version() != "0.2.0" || e.MaxFileBytes() != DefaultMaxFileBytes {
		t.Errorf("extractor %s %s %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
}

// The installed packages of the real npm install are exactly what npm ls
// says; the lockfile next to node_modules is not reported.
func TestInstalledMatchesNpmLs(t *testing.T) {
	pkgs, warnings := items(t, sdktest.ExtractDir(t, "testdata/app", NewExtractor()))
	if len(warnings) != 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	want := npmLs(t)
	if got := set(pkgs); !slices.Equal(got, want) || len(pkgs) != len(want) {
		t.Errorf("packages %q (%d), npm ls %q", got, len(pkgs), want)
	}
	for _, p := range pkgs {
		loc := "/node_modules/" + p.Name + "/package.json"
		if p.Ecosystem != "npm" || !slices.Equal(p.Locations, []string{loc}) || p.Owner != "" {
			t.Errorf("package %+v: want ecosystem npm, location %s, no owner", p, loc)
		}
		if p.Name == "@babel/helper-validator-identifier" && p.PURL != "pkg:npm/%40babel/helper-validator-identifier@7.10.4" {
			t.Errorf("purl %s", p.PURL)
		}
		if p.Name == "lodash" && p.PURL != "pkg:npm/lodash@4.17.20" {
			t.Errorf("purl %s", p.PURL)
		}
	}
}

// Lockfiles v1 (written by npm --lockfile-version 1), v2 and v3 (npm
// install's own), without node_modules next to them, yield npm ls's set.
func TestLockfilesMatchNpmLs(t *testing.T) {
	for _, dir := range []string{"lockfile-v1", "lockfile-v2", "app"} {
		t.Run(dir, func(t *testing.T) {
			files := testdataFiles(t, "testdata/"+dir, "srv/app/", func(rel string) bool {
				return strings.HasPrefix(rel, "node_modules/")
			})
			pkgs, warnings := items(t, sdktest.Extract(t, layer(t, files...), NewExtractor()))
			if len(warnings) != 0 {
				t.Errorf("warnings: %+v", warnings)
			}
			if got, want := set(pkgs), npmLs(t); !slices.Equal(got, want) || len(pkgs) != len(want) {
				t.Errorf("packages %q, npm ls %q", got, want)
			}
			for _, p := range pkgs {
				if !slices.Equal(p.Locations, []string{"/srv/app/package-lock.json"}) {
					t.Errorf("package %+v", p)
				}
			}
		})
	}
	v := func(dir string) int {
		b, err := os.ReadFile("testdata/" + dir + "/package-lock.json")
		if err != nil {
			t.Fatal(err)
		}
		var lf lockfileJSON
		if err := json.Unmarshal(b, &lf); err != nil {
			t.Fatal(err)
		}
		return lf.LockfileVersion
	}
	if v("lockfile-v1") != 1 || v("lockfile-v2") != 2 || v("app") != 3 {
		t.Errorf("lockfile versions %d %d %d", v("lockfile-v1"), v("lockfile-v2"), v("app"))
	}
}

// The lockfile rule is decided when the layer has been read: a
// node_modules beside the lockfile, as a directory entry or as the parent
// of an entry, before or after the lockfile in the tar, suppresses it; a
// node_modules that is a link, or one elsewhere, does not.
func TestLockfileBesideNodeModules(t *testing.T) {
	lock := `{"lockfileVersion":3,"packages":{"node_modules/z":{"version":"1.0.0"}}}`
	for _, tc := range []struct {
		name  string
		files []file
		want  []string
	}{
		{"alone", []file{{name: "app/package-lock.json", body: lock}}, []string{"z@1.0.0 /app/package-lock.json"}},
		{"at the root", []file{{name: "package-lock.json", body: lock}}, []string{"z@1.0.0 /package-lock.json"}},
		{"root with node_modules", []file{{name: "package-lock.json", body: lock}, {name: "node_modules", dir: true}}, nil},
		{"empty node_modules after", []file{{name: "app/package-lock.json", body: lock}, {name: "app/node_modules/", dir: true}}, nil},
		{"empty node_modules before", []file{{name: "app/node_modules/", dir: true}, {name: "app/package-lock.json", body: lock}}, nil},
		{"node_modules only as a parent", []file{
			{name: "app/package-lock.json", body: lock},
			{name: "app/node_modules/z/package.json", body: `{"name":"z","version":"1.0.1"}`},
		}, []string{"z@1.0.1 /app/node_modules/z/package.json"}},
		{"node_modules a link", []file{{name: "app/package-lock.json", body: lock}, {name: "app/node_modules", link: "/elsewhere"}},
			[]string{"z@1.0.0 /app/package-lock.json"}},
		{"node_modules a file", []file{{name: "app/package-lock.json", body: lock}, {name: "app/node_modules", body: "x"}},
			[]string{"z@1.0.0 /app/package-lock.json"}},
		{"node_modules of another dir", []file{{name: "app/package-lock.json", body: lock}, {name: "other/node_modules/", dir: true}},
			[]string{"z@1.0.0 /app/package-lock.json"}},
		{"node_modules below", []file{{name: "app/package-lock.json", body: lock}, {name: "app/sub/node_modules/", dir: true}},
			[]string{"z@1.0.0 /app/package-lock.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, warnings := items(t, sdktest.Extract(t, layer(t, tc.files...), NewExtractor()))
			var got []string
			for _, p := range pkgs {
				got = append(got, p.Name+"@"+p.Version+" "+strings.Join(p.Locations, ","))
			}
			if len(warnings) != 0 || !slices.Equal(got, tc.want) {
				t.Errorf("packages %q, warnings %+v; want %q", got, warnings, tc.want)
			}
		})
	}
}

func TestNestedScopedAndSkipped(t *testing.T) {
	m := func(name, version string) string { return fmt.Sprintf(`{"name":%q,"version":%q}`, name, version) }
	l := layer(t,
		file{name: "app/package.json", body: m("app", "1.0.0")}, // a project, not a package
		file{name: "app/node_modules/a/package.json", body: m("a", "1.0.0")},
		file{name: "app/node_modules/a/lib/package.json", body: `{"type":"module"}`}, // not a package
		file{name: "app/node_modules/a/node_modules/b/package.json", body: m("b", "2.0.0")},
		file{name: "app/node_modules/a/node_modules/@s/c/package.json", body: m("@s/c", "3.0.0")},
		file{name: "app/node_modules/a/package-lock.json", body: `{"lockfileVersion":1,"dependencies":{"x":{"version":"1.0.0"}}}`},
		file{name: "app/node_modules/.package-lock.json", body: `{"lockfileVersion":3,"packages":{"node_modules/y":{"version":"1.0.0"}}}`},
		file{name: "app/node_modules/.bin/package.json", body: m("bin", "1.0.0")},
		file{name: "app/node_modules/@/package.json", body: m("at", "1.0.0")},
		file{name: "app/node_modules/@s/package.json", body: m("scope", "1.0.0")},
		file{name: "app/node_modules/noname/package.json", body: `{"version":"4.0.0"}`},
		file{name: "app/node_modules/badtypes/package.json", body: `{"name":7,"version":["1"]}`},
		file{name: "app/package-lock.json", body: `{"lockfileVersion":3,"packages":{"node_modules/z":{"version":"1.0.0"}}}`},
		file{name: "app/npm-shrinkwrap.json", body: `{"lockfileVersion":3,"packages":{"node_modules/w":{"version":"1.0.0"}}}`},
		// v1 with nested duplicates and an alias; v3 with link, workspace and alias entries.
		file{name: "v1/package-lock.json", body: `{"lockfileVersion":1,"dependencies":{
		"p":{"version":"1.0.0","dependencies":{"q":{"version":"1.0.0"},"loc":{"version":"file:../loc"}}},
		"q":{"version":"1.0.0"},"al":{"version":"npm:real@2.0.0"}}}`},
		file{name: "v3/package-lock.json", body: `{"lockfileVersion":3,"packages":{
		"":{"name":"v3","version":"1.0.0"},
		"packages/ws":{"name":"ws","version":"0.0.1"},
		"node_modules/ws":{"resolved":"packages/ws","link":true},
		"node_modules/r":{"version":"1.0.0"},
		"node_modules/p/node_modules/r":{"version":"1.0.0"},
		"node_modules/al":{"name":"real","version":"2.0.0"}}}`},
	)
	pkgs, warnings := items(t, sdktest.Extract(t, l, NewExtractor()))
	if len(warnings) != 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+"@"+p.Version+" "+p.Locations[0]+" "+p.PURL)
	}
	want := []string{
		"a@1.0.0 /app/node_modules/a/package.json pkg:npm/a@1.0.0",
		"@s/c@3.0.0 /app/node_modules/a/node_modules/@s/c/package.json pkg:npm/%40s/c@3.0.0",
		"b@2.0.0 /app/node_modules/a/node_modules/b/package.json pkg:npm/b@2.0.0",
		"noname@4.0.0 /app/node_modules/noname/package.json pkg:npm/noname@4.0.0",
		"badtypes@ /app/node_modules/badtypes/package.json pkg:npm/badtypes",
		"p@1.0.0 /v1/package-lock.json pkg:npm/p@1.0.0",
		"q@1.0.0 /v1/package-lock.json pkg:npm/q@1.0.0",
		"real@2.0.0 /v1/package-lock.json pkg:npm/real@2.0.0",
		"r@1.0.0 /v3/package-lock.json pkg:npm/r@1.0.0",
		"real@2.0.0 /v3/package-lock.json pkg:npm/real@2.0.0",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A hostile layer: links to /etc/shadow (with one in the layer), a FIFO
// and a directory where a manifest should be, garbage, an oversize
// manifest, a lockfile of the wrong shape. Only the good package is reported, each bad file is one warning
// naming its path, no warning quotes a file, and nothing is read through
// a link.
func TestHostile(t *testing.T) {
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	l := layer(t,
		file{name: "etc/shadow", body: secret},
		file{name: "app/node_modules/ok/package.json", body: `{"name":"ok","version":"1.0.0"}`},
		file{name: "app/node_modules/abs/package.json", link: "/etc/shadow"},
		file{name: "app/node_modules/rel/package.json", link: "../../../../../../../../etc/shadow"},
		file{name: "app/node_modules/ping/package.json", link: "package.json"},
		file{name: "app/node_modules/loop", link: ".."},
		file{name: "app/node_modules/fifo/package.json", fifo: true},
		file{name: "app/node_modules/dir/package.json/", dir: true},
		file{name: "lock/package-lock.json", link: "/etc/shadow"},
		file{name: "app/node_modules/garbage/package.json", body: "{\"name\": \xff\xfe TOPSECRET garbage"},
		file{name: "app/node_modules/secret/package.json", body: secret},
		file{name: "app/node_modules/huge/package.json", body: `{"name":"huge","version":"1.0.0","x":"` + strings.Repeat("a", 2000) + `"}`},
		file{name: "shape/package-lock.json", body: `{"lockfileVersion":2,"packages":[1,2,3]}`},
	)
	its, err := sdktest.ExtractErr(t.Context(), l, sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: 1000}}, NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := items(t, its)
	if got := set(pkgs); !slices.Equal(got, []string{"ok@1.0.0"}) {
		t.Errorf("packages %q", got)
	}
	wantWarn := map[string]bool{
		"/app/node_modules/garbage/package.json": false,
		"/app/node_modules/secret/package.json":  false,
		"/app/node_modules/huge/package.json":    false, // over MaxFileBytes
		"/shape/package-lock.json":               false,
	}
	for _, w := range warnings {
		if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") || strings.Contains(w.Message, "'") {
			t.Errorf("warning quotes a file: %+v", w)
		}
		if _, ok := wantWarn[w.Path]; !ok || wantWarn[w.Path] {
			t.Errorf("unexpected warning %+v", w)
		}
		wantWarn[w.Path] = true
	}
	for p, seen := range wantWarn {
		if !seen {
			t.Errorf("no warning for %s (%+v)", p, warnings)
		}
	}
}

// JSON nested past encoding/json's depth limit (10,000) is a warning,
// not a stack overflow.
func TestTooDeep(t *testing.T) {
	l := layer(t,
		file{name: "deep/package-lock.json", body: `{"lockfileVersion":1,"dependencies":` + strings.Repeat(`{"a":{"version":"1","dependencies":`, 20_000) + strings.Repeat("}}", 20_000) + "}"},
		file{name: "app/node_modules/d/package.json", body: strings.Repeat("[", 100_000)},
	)
	pkgs, warnings := items(t, sdktest.Extract(t, l, NewExtractor()))
	if len(pkgs) != 0 || len(warnings) != 2 {
		t.Fatalf("packages %+v, warnings %+v", pkgs, warnings)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "depth") {
			t.Errorf("warning %+v", w)
		}
	}
}

// JSON nested deep but within encoding/json's limit: the recursion over a
// v1 lockfile's dependency tree follows it to the end.
func TestDeepLockfileV1(t *testing.T) {
	const depth = 4000
	var b strings.Builder
	b.WriteString(`{"lockfileVersion":1,"dependencies":`)
	for i := range depth {
		fmt.Fprintf(&b, `{"p%d":{"version":"1.0.%d","dependencies":`, i, i)
	}
	b.WriteString("{}")
	b.WriteString(strings.Repeat("}}", depth))
	b.WriteString("}")
	pkgs, warnings := items(t, sdktest.Extract(t, layer(t, file{name: "package-lock.json", body: b.String()}), NewExtractor()))
	if len(warnings) != 0 || len(pkgs) != depth {
		t.Errorf("%d packages, warnings %+v", len(pkgs), warnings)
	}
	if !slices.Contains(set(pkgs), fmt.Sprintf("p%d@1.0.%d", depth-1, depth-1)) {
		t.Errorf("the deepest package is missing")
	}
}

// TestDedupe: the same package twice at one location is reported once; a
// lockfile the layer holds twice is read as its last copy, as unpacking
// would leave it.
func TestDedupe(t *testing.T) {
	l := layer(t,
		file{name: "package-lock.json", body: `{"lockfileVersion":1,"dependencies":{"old":{"version":"1.0.0"}}}`},
		file{name: "package-lock.json", body: `{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"a":{"version":"1.0.0"}}}}}`},
	)
	pkgs, _ := items(t, sdktest.Extract(t, l, NewExtractor()))
	if len(pkgs) != 1 || pkgs[0].Name != "a" {
		t.Errorf("packages %+v", pkgs)
	}
}

// Invalid UTF-8 in names and paths becomes U+FFFD: the protocol carries
// only UTF-8.
func TestInvalidUTF8(t *testing.T) {
	l := layer(t, file{name: "app/node_modules/x\xff/package.json", body: "{\"version\":\"1\"}"})
	pkgs, _ := items(t, sdktest.Extract(t, l, NewExtractor()))
	if len(pkgs) != 1 || pkgs[0].Name != "x\uFFFD" || pkgs[0].Locations[0] != "/app/node_modules/x\uFFFD/package.json" {
		t.Errorf("packages %+v", pkgs)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sdktest.ExtractErr(ctx, sdktest.TarDir(t, "testdata/app"), sdk.LayerLimits{}, NewExtractor()); err == nil {
		t.Error("a cancelled extraction succeeded")
	}
	e := NewExtractor()
	err := e.Extract(ctx, sdk.FileInfo{Path: "/package-lock.json", Size: 2}, strings.NewReader("{}"), nil)
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("Extract = %v", err)
	}
}
