package python

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// collect runs the analyzer over gRPC in this process, as assayd would
// over its socket.
func collect(t *testing.T, req sdk.Request) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	c := sdktest.Connect(t, Analyzer{})
	items, err := sdktest.Collect(t.Context(), c, req)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	for _, it := range items {
		if err := it.Validate(); err != nil {
			t.Fatalf("invalid item %+v: %v", it, err)
		}
		switch {
		case it.Package != nil:
			pkgs = append(pkgs, *it.Package)
		case it.Warning != nil:
			warnings = append(warnings, *it.Warning)
		default:
			t.Fatalf("unexpected item %+v", it)
		}
	}
	return pkgs, warnings
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, Analyzer{})
}

func TestDescribe(t *testing.T) {
	d, err := sdktest.Connect(t, Analyzer{}).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "python" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Equal(d.Ecosystems, []string{"PyPI"}) ||
		d.Resources != (sdk.Resources{MemoryBytes: 128 << 20, Pids: 16, Timeout: 5 * time.Minute}) {
		t.Errorf("Describe = %+v", d)
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
// importlib.metadata finds, each owned by its Debian package.
func TestDebian(t *testing.T) {
	root := filepath.Join("testdata", "debian")
	want := readWant(t, filepath.Join(root, "want.txt"))
	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFiles: 10_000, MaxFileBytes: 1 << 20})
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
	// The Debian package each distribution comes from, by the dpkg-deb
	// file lists of testdata/debian/var/lib/dpkg/info.
	owners := map[string]string{
		"certifi":  "python3-certifi",
		"chardet":  "python3-chardet",
		"idna":     "python3-idna",
		"requests": "python3-requests",
		"six":      "python3-six",
		"urllib3":  "python3-urllib3",
	}
	for _, p := range pkgs {
		if p.Ecosystem != "PyPI" {
			t.Errorf("%s: ecosystem %q", p.Name, p.Ecosystem)
		}
		if w := owners[p.Name]; p.Owner != w {
			t.Errorf("%s: owner %q, want %q", p.Name, p.Owner, w)
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

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// A hostile image: links out and in loops, garbage, oversize files. Only
// the good distributions are reported, each of the others is a warning,
// and no warning quotes what a link led to.
func TestHostile(t *testing.T) {
	root := t.TempDir()
	sp := filepath.Join(root, "usr/local/lib/python3.11/site-packages")
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	write(t, filepath.Join(root, "etc/shadow"), secret)
	write(t, filepath.Join(sp, "good-1.0.dist-info/METADATA"), "Metadata-Version: 2.1\nName: Good_Pkg\nVersion: 1.0\n\nbody\n")
	write(t, filepath.Join(sp, "single-2.0.egg-info"), "Metadata-Version: 1.0\nName: single\nVersion: 2.0\n")
	symlink(t, "/etc/shadow", filepath.Join(sp, "shadow-1.dist-info/METADATA"))
	symlink(t, "../../../../../../../../etc/shadow", filepath.Join(sp, "shadow2-1.egg-info/PKG-INFO"))
	symlink(t, "METADATA", filepath.Join(sp, "loop-1.dist-info/METADATA"))
	symlink(t, "/", filepath.Join(sp, "rootlink-1.dist-info")) // a link: not followed
	symlink(t, "..", filepath.Join(sp, "dirloop"))             // a loop: not followed
	write(t, filepath.Join(sp, "garbage-1.dist-info/METADATA"), "\x00\x01\x02garbage\xff\n\n")
	write(t, filepath.Join(sp, "big-1.dist-info/METADATA"), "Name: big\nVersion: 1\n"+strings.Repeat("x", 8192))
	if err := os.MkdirAll(filepath.Join(sp, "empty-1.dist-info"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sp, "fifo-1.dist-info"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(sp, "fifo-1.dist-info/METADATA"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A dpkg file list too large to read: the good package gets no owner.
	write(t, filepath.Join(root, "var/lib/dpkg/info/python3-good.list"),
		"/usr/local/lib/python3.11/site-packages/good-1.0.dist-info\n"+strings.Repeat("/x\n", 4096))

	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFiles: 1000, MaxFileBytes: 4096})
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
	warned := map[string]bool{}
	for _, w := range warnings {
		if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
			t.Errorf("warning quotes a file: %+v", w)
		}
		warned[w.Path] = true
	}
	for _, p := range []string{
		"shadow-1.dist-info/METADATA", "shadow2-1.egg-info/PKG-INFO", "loop-1.dist-info/METADATA",
		"garbage-1.dist-info/METADATA", "big-1.dist-info/METADATA", "empty-1.dist-info/METADATA",
		"fifo-1.dist-info/METADATA",
	} {
		if !warned["/usr/local/lib/python3.11/site-packages/"+p] {
			t.Errorf("no warning about %s; warnings %+v", p, warnings)
		}
	}
	if !warned["/var/lib/dpkg/info/python3-good.list"] {
		t.Errorf("no warning about the oversize file list; warnings %+v", warnings)
	}
}

// A metadata file that is a link to another file of the image is read
// there, and owned by the package whose list names its directory.
func TestLinkInsideImage(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "usr/share/meta/x"), "Name: x\nVersion: 3\n")
	symlink(t, "/usr/share/meta/x", filepath.Join(root, "usr/lib/python3/dist-packages/x-3.egg-info/PKG-INFO"))
	write(t, filepath.Join(root, "var/lib/dpkg/info/python3-x:amd64.list"), "/.\n/usr/lib/python3/dist-packages/x-3.egg-info\n")
	pkgs, warnings := collect(t, sdk.Request{Root: root})
	if len(warnings) != 0 || len(pkgs) != 1 || pkgs[0].Name != "x" || pkgs[0].Owner != "python3-x" {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
	}
}

func TestMaxFiles(t *testing.T) {
	root := t.TempDir()
	sp := filepath.Join(root, "usr/lib/python3/dist-packages")
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		write(t, filepath.Join(sp, n+"-1.egg-info"), "Name: "+n+"\nVersion: 1\n")
	}
	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFiles: 6})
	if len(pkgs) >= 5 || len(warnings) != 1 || !strings.Contains(warnings[0].Message, "more than 6 entries") {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Analyzer{}.Analyze(ctx, sdk.Request{Root: filepath.Join("testdata", "debian")}, discard{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
}

type discard struct{}

func (discard) Package(sdk.Package) error { return nil }
func (discard) Finding(sdk.Finding) error { return nil }
func (discard) Warning(sdk.Warning) error { return nil }
