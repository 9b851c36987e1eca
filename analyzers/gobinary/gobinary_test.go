package gobinary

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// progBin is the test program built by TestMain from testdata/prog.
var progBin string

// progPath is where the image roots of the tests hold it.
const progPath = "/usr/local/bin/prog"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gobinary-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	progBin = filepath.Join(dir, "prog")
	cmd := exec.Command("go", "build", "-trimpath", "-o", progBin, ".")
	cmd.Dir = filepath.Join("testdata", "prog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building testdata/prog: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// imageWith returns a new image root holding the test program at progPath.
func imageWith(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	copyFile(t, progBin, filepath.Join(root, progPath), 0o755)
	return root
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

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
	if d.Name != "gobinary" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Equal(d.Ecosystems, []string{"Go"}) ||
		d.Resources != (sdk.Resources{MemoryBytes: 256 << 20, Pids: 16, Timeout: 5 * time.Minute}) {
		t.Errorf("Describe = %+v", d)
	}
}

// goVersionM returns the name@version of the packages that `go version -m`
// says bin holds: the main module unless (devel), each dependency or its
// replacement, and the toolchain as stdlib.
func goVersionM(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	first := true
	stdlib := ""
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			// "<path>: go1.26.8"
			_, v, ok := strings.Cut(line, ": ")
			if !ok || !strings.HasPrefix(v, "go") {
				t.Fatalf("go version -m: first line %q", line)
			}
			stdlib = "stdlib@" + strings.TrimPrefix(strings.Fields(v)[0], "go")
			continue
		}
		f := strings.Split(strings.TrimPrefix(line, "\t"), "\t")
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "mod":
			if f[2] != "(devel)" {
				want = append(want, f[1]+"@"+f[2])
			}
		case "dep":
			want = append(want, f[1]+"@"+f[2])
		case "=>":
			if f[2] != "" && len(want) > 0 {
				want[len(want)-1] = f[1] + "@" + f[2]
			}
		}
	}
	if stdlib == "" {
		t.Fatalf("go version -m: no output")
	}
	return append(want, stdlib)
}

// The analyzer reports what `go version -m` reads from the same binary.
func TestMatchesGoVersionM(t *testing.T) {
	root := imageWith(t)
	want := goVersionM(t, filepath.Join(root, progPath))
	// go version -m's own output on the committed program, so that a
	// parser bug above cannot make both sides empty.
	for _, w := range []string{"github.com/google/uuid@v1.4.0", "golang.org/x/text@v0.3.7"} {
		if !slices.Contains(want, w) {
			t.Fatalf("go version -m output parsed as %q: no %s", want, w)
		}
	}
	pkgs, warnings := collect(t, sdk.Request{Root: root})
	if len(warnings) > 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+"@"+p.Version)
		if p.Ecosystem != "Go" || !slices.Equal(p.Locations, []string{progPath}) {
			t.Errorf("package %+v: want ecosystem Go, location %s", p, progPath)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("analyzer: %q\ngo version -m: %q", got, want)
	}
	purls := map[string]string{}
	for _, p := range pkgs {
		purls[p.Name] = p.PURL
	}
	wantPURL := map[string]string{
		"github.com/google/uuid": "pkg:golang/github.com/google/uuid@v1.4.0",
		"golang.org/x/text":      "pkg:golang/golang.org/x/text@v0.3.7",
		"stdlib":                 "pkg:golang/stdlib@" + strings.TrimPrefix(want[len(want)-1], "stdlib@"),
	}
	for n, w := range wantPURL {
		if purls[n] != w {
			t.Errorf("purl of %s = %q, want %q", n, purls[n], w)
		}
	}
}

func TestPackagesOfBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.22rc1 X:boringcrypto",
		Main:      debug.Module{Path: "example.com/app", Version: "v1.2.3"},
		Deps: []*debug.Module{
			{Path: "example.com/a", Version: "v0.1.0", Replace: &debug.Module{Path: "example.com/fork/a", Version: "v0.2.0"}},
			{Path: "example.com/b", Version: "v1.0.0", Replace: &debug.Module{Path: "../b"}},
			nil,
		},
	}
	var got []string
	for _, p := range packages(bi, "/app") {
		got = append(got, p.Name+"@"+p.Version+" "+p.PURL)
	}
	want := []string{
		"example.com/app@v1.2.3 pkg:golang/example.com/app@v1.2.3",
		"example.com/fork/a@v0.2.0 pkg:golang/example.com/fork/a@v0.2.0",
		"example.com/b@v1.0.0 pkg:golang/example.com/b@v1.0.0",
		"stdlib@1.22rc1 pkg:golang/stdlib@1.22rc1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("packages = %q\nwant %q", got, want)
	}
	for in, want := range map[string]string{"go1.21.3": "1.21.3", "go1.22rc1": "1.22rc1", "devel go1.23-abc": "", "": ""} {
		if got := StdlibVersion(in); got != want {
			t.Errorf("StdlibVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// A non-Go ELF executable, a script and a non-executable copy of the Go
// binary yield nothing and no warning.
func TestNotGoBinaries(t *testing.T) {
	root := t.TempDir()
	if _, err := os.Stat("/bin/true"); err == nil {
		copyFile(t, "/bin/true", filepath.Join(root, "bin/true"), 0o755)
	}
	copyFile(t, progBin, filepath.Join(root, "opt/prog.data"), 0o644)
	if err := os.WriteFile(filepath.Join(root, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := collect(t, sdk.Request{Root: root})
	if len(pkgs) != 0 || len(warnings) != 0 {
		t.Errorf("packages %+v, warnings %+v; want none", pkgs, warnings)
	}
}

// A Go binary over MaxFileBytes is skipped with a warning naming it.
func TestTooLarge(t *testing.T) {
	root := imageWith(t)
	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFileBytes: 1 << 20})
	if len(pkgs) != 0 {
		t.Errorf("packages %+v; want none", pkgs)
	}
	if len(warnings) != 1 || warnings[0].Path != progPath || !strings.Contains(warnings[0].Message, "over the limit") {
		t.Errorf("warnings %+v; want one about %s over the limit", warnings, progPath)
	}
}

// Links are not followed: an absolute link to the host's go command (not
// in the image) and a relative one that climbs out of the root yield
// nothing and no warning; a link to the image's own binary does not report
// it twice.
func TestLinksStayInside(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip(err)
	}
	goBin, _ = filepath.Abs(goBin)
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.Symlink("/usr/bin/go", filepath.Join(root, "usr/bin/go-abs")))
	must(os.Symlink(goBin, filepath.Join(root, "usr/bin/go-host")))
	must(os.Symlink(strings.Repeat("../", 20)+strings.TrimPrefix(goBin, "/"), filepath.Join(root, "usr/bin/go-rel")))
	must(os.Symlink(filepath.Dir(goBin), filepath.Join(root, "usr/hostbin")))
	pkgs, warnings := collect(t, sdk.Request{Root: root})
	if len(pkgs) != 0 || len(warnings) != 0 {
		t.Errorf("packages %+v, warnings %+v; want none", pkgs, warnings)
	}

	root = imageWith(t)
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.Symlink(progPath, filepath.Join(root, "usr/bin/prog")))
	pkgs, _ = collect(t, sdk.Request{Root: root})
	for _, p := range pkgs {
		if !slices.Equal(p.Locations, []string{progPath}) {
			t.Errorf("package %+v found through the link", p)
		}
	}
	if len(pkgs) == 0 {
		t.Error("no packages")
	}
}

// A truncated Go binary is skipped with a warning, not a crash.
func TestTruncated(t *testing.T) {
	b, err := os.ReadFile(progBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{16, 4096, 64 << 10, len(b) / 2, len(b) - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, "app")
			if err := os.WriteFile(p, b[:n], 0o755); err != nil {
				t.Fatal(err)
			}
			pkgs, warnings := collect(t, sdk.Request{Root: root})
			if len(pkgs) != 0 {
				t.Errorf("packages %+v; want none", pkgs)
			}
			if len(warnings) != 1 || warnings[0].Path != "/app" {
				t.Errorf("warnings %+v; want one about /app", warnings)
			}
		})
	}
}

// At most MaxFiles entries are walked, and a warning says so.
func TestMaxFiles(t *testing.T) {
	root := imageWith(t)
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("a%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFiles: 3})
	if len(pkgs) != 0 {
		t.Errorf("packages %+v; want none (the binary sorts after the limit)", pkgs)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].Message, "more than 3 entries") {
		t.Errorf("warnings %+v", warnings)
	}
}

type discard struct{}

func (discard) Package(sdk.Package) error { return nil }
func (discard) Finding(sdk.Finding) error { return nil }
func (discard) Warning(sdk.Warning) error { return nil }

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Analyzer{}.Analyze(ctx, sdk.Request{Root: imageWith(t)}, discard{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
	root, err := os.OpenRoot(imageWith(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := analyze(ctx, root, sdk.Request{}, discard{}); !errors.Is(err, context.Canceled) {
		t.Errorf("analyze = %v, want context.Canceled", err)
	}
}
