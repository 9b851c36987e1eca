package python

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
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

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, NewExtractor())
	e := NewExtractor()
	if e.Name() != "python" || e.Version() != "0.2.0" || e.MaxFileBytes() != DefaultMaxFileBytes {
		t.Errorf("extractor %s %s %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
}

// readWant reads testdata/<dir>/want.txt: "name version" a line, as
// Python's importlib.metadata printed them (see testdata/README.md).
func readWant(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			want = append(want, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if len(want) == 0 {
		t.Fatalf("%s is empty", file)
	}
	return want
}

// The distributions of real Debian packages: exactly what Python's own
// importlib.metadata finds. No Owner: the image merge sets it from the
// dpkg file lists the layer also holds, which this extractor does not
// read.
func TestDebian(t *testing.T) {
	root := filepath.Join("testdata", "debian")
	want := readWant(t, filepath.Join(root, "want.txt"))
	pkgs, warnings := items(t, sdktest.ExtractDir(t, root, NewExtractor()))
	if len(warnings) > 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q (importlib.metadata)", got, want)
	}
	for _, p := range pkgs {
		if p.Ecosystem != "PyPI" || p.Owner != "" {
			t.Errorf("%s: ecosystem %q, owner %q", p.Name, p.Ecosystem, p.Owner)
		}
		if w := "pkg:pypi/" + p.Name + "@" + p.Version; p.PURL != w {
			t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, w)
		}
		if len(p.Locations) != 1 || !strings.HasPrefix(p.Locations[0], "/usr/lib/python3/dist-packages/"+p.Name+"-"+p.Version+".") ||
			(!strings.HasSuffix(p.Locations[0], ".egg-info/PKG-INFO") && !strings.HasSuffix(p.Locations[0], ".dist-info/METADATA")) {
			t.Errorf("%s: locations %q", p.Name, p.Locations)
		}
		if _, err := os.Stat(filepath.Join(root, p.Locations[0])); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
}

func TestIsMetadata(t *testing.T) {
	for name, want := range map[string]bool{
		"/usr/lib/python3/dist-packages/idna-3.3.egg-info/PKG-INFO":                         true,
		"/usr/local/lib/python3.11/site-packages/pip-23.0.dist-info/METADATA":               true,
		"/usr/lib/python3/dist-packages/single-2.0.egg-info":                                true,
		"usr/lib/python3/dist-packages/idna-3.3.egg-info/PKG-INFO":                          true,
		"/site-packages/a-1.dist-info/METADATA":                                             true,
		"/usr/lib/python3/dist-packages/.egg-info":                                          false,
		"/usr/lib/python3/dist-packages/.dist-info/METADATA":                                false,
		"/usr/lib/python3/dist-packages/a-1.dist-info/PKG-INFO":                             false,
		"/usr/lib/python3/dist-packages/a-1.egg-info/METADATA":                              false,
		"/usr/lib/python3/dist-packages/a-1.dist-info":                                      false,
		"/usr/lib/python3/dist-packages/a-1.dist-info/RECORD":                               false,
		"/usr/lib/python3/dist-packages/a/b-1.dist-info/METADATA":                           false,
		"/srv/app/a-1.dist-info/METADATA":                                                   false,
		"/srv/app/a-1.egg-info":                                                             false,
		"/usr/lib/python3/dist-packages/a-1.egg-info/b.egg-info":                            false,
		"/usr/lib/python3/dist-packages/a-1.dist-info/site-packages/b-1.dist-info/METADATA": false,
		"/usr/lib/python3/dist-packages/a-1.egg-info/site-packages/b-1.egg-info":            false,
		"/site-packages/x/site-packages/b-1.egg-info":                                       true,
	} {
		if got := IsMetadata(name); got != want {
			t.Errorf("IsMetadata(%q) = %v", name, got)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"requests":           "requests",
		"Django":             "django",
		"zope.interface":     "zope-interface",
		"typing_extensions":  "typing-extensions",
		"Foo.-_Bar__baz---X": "foo-bar-baz-x",
		"ruamel.yaml.clib":   "ruamel-yaml-clib",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPURL(t *testing.T) {
	if got, want := purl("Zope.Interface", "5.5.2"), "pkg:pypi/zope-interface@5.5.2"; got != want {
		t.Errorf("purl = %q, want %q", got, want)
	}
}

func TestParseMetadata(t *testing.T) {
	for _, tc := range []struct {
		in        string
		name, ver string
		bad       bool
	}{
		{in: "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\nName: body\n", name: "foo", ver: "1.0"},
		{in: "Metadata-Version: 2.1\r\nname:  Foo_Bar \r\nversion: 2.0.post1\r\n", name: "Foo_Bar", ver: "2.0.post1"},
		{in: "Name: foo\nSummary: a\n  long summary\nVersion: 1\n", name: "foo", ver: "1"},
		{in: "Name: foo\n\nVersion: 1\n", bad: true}, // Version in the body
		{in: "Name: foo\n", bad: true},
		{in: "Version: 1\n", bad: true},
		{in: "", bad: true},
		{in: "\nName: foo\nVersion: 1\n", bad: true},
		{in: " Name: foo\nVersion: 1\n", bad: true},
		{in: "Name: foo\nName: bar\nVersion: 1\n", bad: true},
		{in: "Name: foo\nVersion: 1\x01\n", bad: true},
		{in: "Name: \xff\nVersion: 1\n", bad: true},
		{in: "Name: foo\nVersion:\n", bad: true},
		{in: "root:$6$secret:19000:0:99999:7:::\n", bad: true},
		{in: "Name: " + strings.Repeat("a", 2000) + "\nVersion: 1\n", bad: true},
	} {
		m, err := ParseMetadata(strings.NewReader(tc.in))
		if tc.bad {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseMetadata(%q) = %+v, %v; want ErrMalformed", tc.in, m, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error quotes the content: %v", err)
			}
			continue
		}
		if err != nil || m.Name != tc.name || m.Version != tc.ver {
			t.Errorf("ParseMetadata(%q) = %+v, %v; want %s %s", tc.in, m, err, tc.name, tc.ver)
		}
	}
}

// A hostile layer: links to /etc/shadow (with one in the layer), loops,
// a FIFO, garbage, an oversize file, metadata in the wrong places. Only the
// good distributions are reported, each bad file is one warning, no
// warning quotes a file, and nothing is read through a link.
func TestHostile(t *testing.T) {
	const sp = "usr/local/lib/python3.11/site-packages/"
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	l := layer(t,
		file{name: "etc/shadow", body: secret},
		file{name: sp + "good-1.0.dist-info/METADATA", body: "Metadata-Version: 2.1\nName: Good_Pkg\nVersion: 1.0\n\nbody\n"},
		file{name: sp + "single-2.0.egg-info", body: "Metadata-Version: 1.0\nName: single\nVersion: 2.0\n"},
		file{name: sp + "shadow-1.dist-info/METADATA", link: "/etc/shadow"},
		file{name: sp + "shadow2-1.egg-info/PKG-INFO", link: "../../../../../../../../etc/shadow"},
		file{name: sp + "shadow3-1.egg-info", link: "/etc/shadow"},
		file{name: sp + "loop-1.dist-info/METADATA", link: "METADATA"},
		file{name: sp + "rootlink-1.dist-info", link: "/"},
		file{name: sp + "dirloop", link: ".."},
		file{name: sp + "fifo-1.dist-info/METADATA", fifo: true},
		file{name: sp + "dir-1.egg-info/", dir: true},
		file{name: sp + "empty-1.dist-info/", dir: true},
		file{name: sp + "secret-1.egg-info", body: secret},
		file{name: sp + "garbage-1.dist-info/METADATA", body: "\x00\x01\x02garbage\xff\n\n"},
		file{name: sp + "big-1.dist-info/METADATA", body: "Name: big\nVersion: 1\n" + strings.Repeat("x", 8192)},
		file{name: sp + "nested-1.dist-info/site-packages/inner-1.egg-info", body: "Name: inner\nVersion: 1\n"},
		file{name: "srv/app/stray-1.dist-info/METADATA", body: "Name: stray\nVersion: 1\n"},
		file{name: "var/lib/dpkg/info/python3-good.list", body: "/" + sp + "good-1.0.dist-info\n"},
	)
	its, err := sdktest.ExtractErr(t.Context(), l, sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: 4096}}, NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := items(t, its)
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version+" "+p.PURL+" "+p.Owner+" "+strings.Join(p.Locations, ","))
	}
	slices.Sort(got)
	want := []string{
		"Good_Pkg 1.0 pkg:pypi/good-pkg@1.0  /usr/local/lib/python3.11/site-packages/good-1.0.dist-info/METADATA",
		"single 2.0 pkg:pypi/single@2.0  /usr/local/lib/python3.11/site-packages/single-2.0.egg-info",
	}
	if !slices.Equal(got, want) {
		t.Errorf("packages\n%q\nwant\n%q", got, want)
	}
	wantWarn := map[string]bool{"secret-1.egg-info": false, "garbage-1.dist-info/METADATA": false, "big-1.dist-info/METADATA": false}
	for _, w := range warnings {
		if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
			t.Errorf("warning quotes a file: %+v", w)
		}
		rel, ok := strings.CutPrefix(w.Path, "/"+sp)
		if seen, expected := wantWarn[rel]; !ok || !expected || seen {
			t.Errorf("unexpected warning %+v", w)
		}
		wantWarn[rel] = true
	}
	for p, seen := range wantWarn {
		if !seen {
			t.Errorf("no warning about %s; warnings %+v", p, warnings)
		}
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sdktest.ExtractErr(ctx, sdktest.TarDir(t, filepath.Join("testdata", "debian")), sdk.LayerLimits{}, NewExtractor()); err == nil {
		t.Error("a cancelled extraction succeeded")
	}
	err := NewExtractor().Extract(ctx, sdk.FileInfo{Path: "/site-packages/a-1.egg-info", Size: 20}, strings.NewReader("Name: a\nVersion: 1\n"), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract = %v, want context.Canceled", err)
	}
}
