package gobinary

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// progBin is the test program built by TestMain from testdata/prog.
var progBin string

// buildDir holds the binaries the tests build.
var buildDir string

// progPath is where the test layers hold it.
const progPath = "/usr/local/bin/prog"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gobinary-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	buildDir = dir
	progBin = filepath.Join(dir, "prog")
	if out, err := buildProg(progBin); err != nil {
		fmt.Fprintf(os.Stderr, "building testdata/prog: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildProg builds testdata/prog into out with the local toolchain; env
// and args are added to the build's.
func buildProg(out string, envAndArgs ...string) ([]byte, error) {
	var env, args []string
	for _, a := range envAndArgs {
		if strings.HasPrefix(a, "-") {
			args = append(args, a)
		} else {
			env = append(env, a)
		}
	}
	cmd := exec.Command("go", append(append([]string{"build", "-trimpath"}, args...), "-o", out, ".")...)
	cmd.Dir = filepath.Join("testdata", "prog")
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local"), env...)
	return cmd.CombinedOutput()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entry is one member of a hand-built layer.
type entry struct {
	name string
	mode int64
	body []byte
	link string // a symbolic link's target
}

func layerOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h = &tar.Header{Name: e.name, Mode: 0o777, Linkname: e.link, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// extract streams a layer of entries through a fresh extractor.
func extract(t testing.TB, entries ...entry) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	items := sdktest.Extract(t, layerOf(t, entries...), NewExtractor())
	return sdktest.Packages(items), sdktest.Warnings(items)
}

func nameVersions(pkgs []sdk.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+"@"+p.Version)
	}
	return out
}

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, NewExtractor())
	e := NewExtractor()
	if e.Name() != "gobinary" || e.Version() != "0.2.0" || e.MaxFileBytes() != 512<<20 {
		t.Errorf("extractor %s %s, max %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
}

func TestRequired(t *testing.T) {
	e := NewExtractor()
	for _, tc := range []struct {
		f    sdk.FileInfo
		want bool
	}{
		{sdk.FileInfo{Path: "/usr/bin/app", Mode: 0o755, Size: 3 << 20}, true},
		{sdk.FileInfo{Path: "/opt/app", Mode: 0o100, Size: 1000}, true},
		{sdk.FileInfo{Path: "/usr/bin/huge", Mode: 0o755, Size: 1 << 40}, true}, // the framework warns
		{sdk.FileInfo{Path: "/usr/lib/app.data", Mode: 0o644, Size: 3 << 20}, false},
		{sdk.FileInfo{Path: "/usr/bin/run.sh", Mode: 0o755, Size: 40}, false},
		{sdk.FileInfo{Path: "/usr/bin/link", Mode: fs.ModeSymlink | 0o777, LinkTarget: "/usr/bin/app"}, false},
	} {
		if got := e.Required(tc.f); got != tc.want {
			t.Errorf("Required(%+v) = %v", tc.f, got)
		}
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

// The extractor reports, over a layer, what `go version -m` reads from the
// same binary.
func TestMatchesGoVersionM(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, filepath.FromSlash(progPath))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, readFile(t, progBin), 0o755); err != nil {
		t.Fatal(err)
	}
	want := goVersionM(t, dst)
	// go version -m's own output on the committed program, so that a
	// parser bug above cannot make both sides empty.
	for _, w := range []string{"github.com/google/uuid@v1.4.0", "golang.org/x/text@v0.3.7"} {
		if !slices.Contains(want, w) {
			t.Fatalf("go version -m output parsed as %q: no %s", want, w)
		}
	}
	items := sdktest.ExtractDir(t, dir, NewExtractor())
	pkgs, warnings := sdktest.Packages(items), sdktest.Warnings(items)
	if len(warnings) > 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	for _, p := range pkgs {
		if p.Ecosystem != "Go" || !slices.Equal(p.Locations, []string{progPath}) || p.Owner != "" || p.OS != "" {
			t.Errorf("package %+v: want ecosystem Go, location %s, no owner", p, progPath)
		}
	}
	if got := nameVersions(pkgs); !slices.Equal(got, want) {
		t.Errorf("extractor: %q\ngo version -m: %q", got, want)
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

// stdlibPackages is what the packages of debug/buildinfo's reading of bin
// are.
func stdlibPackages(t *testing.T, bin string) []string {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got := nameVersions(packages(bi, "/x"))
	if len(got) == 0 {
		t.Fatalf("%s: no packages", bin)
	}
	return got
}

// The stream reader finds what debug/buildinfo finds through the ELF
// headers, on other targets: 32-bit, big-endian, position-independent.
func TestOtherTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the test program for other targets")
	}
	targets := map[string][]string{
		"386":   {"GOARCH=386"},
		"s390x": {"GOARCH=s390x"},
		"arm64": {"GOARCH=arm64"},
		"pie":   {"-buildmode=pie"},
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	bins := map[string]string{}
	for name, env := range targets {
		wg.Go(func() {
			bin := filepath.Join(buildDir, "prog-"+name)
			out, err := buildProg(bin, env...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("build %s: %v\n%s", name, err, out)
				return
			}
			bins[name] = bin
		})
	}
	wg.Wait()
	for name, bin := range bins {
		t.Run(name, func(t *testing.T) {
			want := stdlibPackages(t, bin)
			pkgs, warnings := extract(t, entry{name: "app", mode: 0o755, body: readFile(t, bin)})
			if got := nameVersions(pkgs); !slices.Equal(got, want) || len(warnings) > 0 {
				t.Errorf("got %q, warnings %+v\nwant %q", got, warnings, want)
			}
		})
	}
}

// The test binary holds the magic as data (this package's and
// debug/buildinfo's), besides its own build information: the header check
// must skip the look-alikes.
func TestSelf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	want := stdlibPackages(t, self)
	b := readFile(t, self)
	if bytes.Count(b, buildInfoMagic) < 2 {
		t.Fatalf("the test binary holds the magic %d times", bytes.Count(b, buildInfoMagic))
	}
	pkgs, warnings := extract(t, entry{name: "usr/bin/self.test", mode: 0o755, body: b})
	if got := nameVersions(pkgs); !slices.Equal(got, want) || len(warnings) > 0 {
		t.Errorf("got %q, warnings %+v\nwant %q", got, warnings, want)
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

// noGoELF returns an executable ELF of n bytes without Go build
// information: the ELF magic, then a pattern that holds the magic at
// unaligned offsets and near misses at aligned ones.
func noGoELF(n int) []byte {
	b := make([]byte, n)
	copy(b, elfMagic)
	for i := 64; i+64 <= n; i += 4096 {
		copy(b[i+3:], buildInfoMagic)       // unaligned
		copy(b[i+32:], buildInfoMagic[:13]) // aligned, cut short
	}
	return b
}

// A non-Go ELF executable (the host's /bin/ls and /bin/true, a large
// generated one), a script, a non-executable copy of the Go binary and a
// Windows-looking file yield nothing and no warning.
func TestNotGoBinaries(t *testing.T) {
	entries := []entry{
		{name: "opt/prog.data", mode: 0o644, body: readFile(t, progBin)},
		{name: "run.sh", mode: 0o755, body: []byte("#!/bin/sh\n" + strings.Repeat("echo\n", 100))},
		{name: "app.exe", mode: 0o755, body: append([]byte("MZ"), readFile(t, progBin)...)},
		{name: "opt/big", mode: 0o755, body: noGoELF(24 << 20)},
	}
	for _, host := range []string{"/bin/ls", "/bin/true"} {
		if b, err := os.ReadFile(host); err == nil {
			entries = append(entries, entry{name: strings.TrimPrefix(host, "/"), mode: 0o755, body: b})
		}
	}
	pkgs, warnings := extract(t, entries...)
	if len(pkgs) != 0 || len(warnings) != 0 {
		t.Errorf("packages %+v, warnings %+v; want none", pkgs, warnings)
	}
}

// patternReader streams n bytes of noGoELF's pattern without holding them.
type patternReader struct {
	block []byte
	n, i  int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.i >= r.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.i < r.n {
		c := copy(p[k:min(len(p), k+int(r.n-r.i))], r.block[r.i%int64(len(r.block)):])
		k += c
		r.i += int64(c)
	}
	return k, nil
}

type discard struct{}

func (discard) Package(sdk.Package) error       { return nil }
func (discard) Finding(sdk.Finding) error       { return nil }
func (discard) Warning(sdk.Warning) error       { return nil }
func (discard) OwnedFiles(sdk.OwnedFiles) error { return nil }
func (discard) OSRelease(sdk.OSRelease) error   { return nil }

// A 256 MB non-Go ELF is read as a stream: it costs the scan's buffer,
// not its size.
func TestStreamsWithoutHolding(t *testing.T) {
	const size = 256 << 20
	block := noGoELF(1 << 20)
	r := &patternReader{block: block, n: size}
	f := sdk.FileInfo{Path: "/big", Mode: 0o755, Size: size}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := NewExtractor().Extract(t.Context(), f, r, discard{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if r.i != size {
		t.Errorf("read %d of %d bytes", r.i, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d bytes for a %d-byte file", alloc, size)
	}
}

// buildInfoOffset is where the build information header sits in bin, as
// its section headers say.
func buildInfoOffset(t *testing.T, bin []byte) int {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".go.buildinfo")
	if s == nil {
		t.Fatal("no .go.buildinfo section")
	}
	if !bytes.HasPrefix(bin[s.Offset:], buildInfoMagic) {
		t.Fatal(".go.buildinfo does not start with the magic")
	}
	return int(s.Offset)
}

// A truncated Go binary yields at most a warning: nothing when it ends
// before the build information, one warning when it ends inside it; cut
// after it, its modules are all there and reported.
func TestTruncated(t *testing.T) {
	b := readFile(t, progBin)
	off := buildInfoOffset(t, b)
	full := stdlibPackages(t, progBin)
	for _, tc := range []struct {
		n        int
		warnings int
		pkgs     []string
	}{
		{n: 256},
		{n: 4096},
		{n: 64 << 10},
		{n: off},
		{n: off + 20}, // inside the header
		{n: off + 32, warnings: 1},
		{n: off + 40, warnings: 1},  // inside the version
		{n: off + 200, warnings: 1}, // inside the modules
		{n: len(b) - 1, pkgs: full},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			pkgs, warnings := extract(t, entry{name: "app", mode: 0o755, body: b[:tc.n]})
			if got := nameVersions(pkgs); !slices.Equal(got, tc.pkgs) {
				t.Errorf("packages %q; want %q", got, tc.pkgs)
			}
			if len(warnings) != tc.warnings {
				t.Errorf("warnings %+v; want %d", warnings, tc.warnings)
			}
			for _, w := range warnings {
				if w.Path != "/app" || !strings.Contains(w.Message, "ends in") {
					t.Errorf("warning %+v", w)
				}
			}
		})
	}
}

// A binary of Go before 1.18 (the header's format bit cleared, its
// pointers unread) is a warning saying so.
func TestPreGo118(t *testing.T) {
	b := bytes.Clone(readFile(t, progBin))
	off := buildInfoOffset(t, b)
	b[off+flagsOffset] &^= flagsVersionMask
	copy(b[off+16:], "\x00\x10\x40\x00\x00\x00\x00\x00\x10\x10\x40\x00\x00\x00\x00\x00")
	pkgs, warnings := extract(t, entry{name: "usr/bin/old", mode: 0o755, body: b})
	if len(pkgs) != 0 || len(warnings) != 1 || warnings[0].Path != "/usr/bin/old" ||
		!strings.Contains(warnings[0].Message, "predates 1.18") || !strings.Contains(warnings[0].Message, "modules are not read") {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
	}
}

// synthetic returns an ELF-looking file with the header h at offset at
// (16-aligned) followed by tail.
func synthetic(at int, h, tail []byte) []byte {
	b := make([]byte, at, at+len(h)+len(tail)+256)
	copy(b, elfMagic)
	b = append(b, h...)
	b = append(b, tail...)
	return append(b, make([]byte, 256)...)
}

func inlineHeader() []byte {
	h := make([]byte, buildInfoHeaderSize)
	copy(h, buildInfoMagic)
	h[ptrSizeOffset], h[flagsOffset] = 8, flagsVersionInl
	return h
}

func uvarintString(s string) []byte {
	return append(appendUvarint(nil, uint64(len(s))), s...)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// A look-alike of the header before the real one (bad padding, a bad
// pointer size, an unaligned copy, a pre-1.18 look-alike) does not hide
// it; over chunk boundaries too.
func TestLookAlikes(t *testing.T) {
	prog := readFile(t, progBin)
	off := buildInfoOffset(t, prog)
	blob := prog[off : off+64<<10] // the header, its strings and what follows
	want := stdlibPackages(t, progBin)

	bad := inlineHeader()
	bad[20] = 1
	badPtr := inlineHeader()
	badPtr[ptrSizeOffset] = 0
	old := inlineHeader()
	old[flagsOffset] = 0
	var pre []byte
	for _, h := range [][]byte{bad, badPtr, old} {
		pre = append(pre, h...)
	}
	pre = append(pre, 0)
	pre = append(pre, buildInfoMagic...) // unaligned
	for len(pre)%16 != 0 {
		pre = append(pre, 0)
	}
	// The scan's buffer ends at scanChunk, then every scanChunk bytes
	// 13 bytes earlier: headers cut by those ends, magics too.
	const s = scanChunk
	for _, at := range []int{16, 4096, s - 16, s - 48, s, 2*s - 16, 2*s - 32, 2*s - 64, 2*s - 112, 2*s - 128} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			b := synthetic(at, pre, blob)
			pkgs, warnings := extract(t, entry{name: "app", mode: 0o755, body: b})
			if got := nameVersions(pkgs); !slices.Equal(got, want) || len(warnings) != 0 {
				t.Errorf("got %q, warnings %+v\nwant %q", got, warnings, want)
			}
		})
	}
}

// Lengths and content a hostile binary may hold: warnings that do not
// quote it, bounded work.
func TestHostile(t *testing.T) {
	const secret = "TOPSECRET"
	// The framing cmd/go writes around the module information: 16 bytes
	// each side.
	frame := func(mod string) string {
		return "0w\xaf\x0c\x92t\b\x02A\xe1\xc1\a\xe6\xd6\x18\xe6" + mod + "\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
	}
	for _, tc := range []struct {
		name, want string
		tail       []byte
	}{
		{"huge version", "claims", appendUvarint(nil, 1<<40)},
		{"huge modules", "claims", append(uvarintString("go1.22.0"), appendUvarint(nil, 1<<40)...)},
		{"overflow", "overflows", bytes.Repeat([]byte{0xff}, 12)},
		{"long claim, short file", "ends in", append(uvarintString("go1.22.0"), appendUvarint(nil, 8<<20)...)},
		{"garbage modules", "could not be parsed", append(uvarintString("go1.22.0"), uvarintString(frame("path\tx\nbuild\t"+secret+"\n"))...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, warnings := extract(t, entry{name: "app", mode: 0o755, body: synthetic(1024, inlineHeader(), tc.tail)})
			if len(pkgs) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0].Message, tc.want) || strings.Contains(warnings[0].Message, secret) {
				t.Errorf("packages %+v, warnings %+v; want one warning %q", pkgs, warnings, tc.want)
			}
		})
	}
	// Empty version: not a Go executable, as debug/buildinfo says.
	pkgs, warnings := extract(t, entry{name: "app", mode: 0o755, body: synthetic(1024, inlineHeader(), uvarintString(""))})
	if len(pkgs) != 0 || len(warnings) != 0 {
		t.Errorf("empty version: packages %+v, warnings %+v", pkgs, warnings)
	}
	// Module information without its framing is no module information:
	// only the toolchain, as debug/buildinfo says.
	pkgs, warnings = extract(t, entry{name: "app", mode: 0o755, body: synthetic(1024, inlineHeader(), append(uvarintString("go1.22.0"), uvarintString("dep\tx\tv1.0.0\n")...))})
	if got := nameVersions(pkgs); !slices.Equal(got, []string{"stdlib@1.22.0"}) || len(warnings) != 0 {
		t.Errorf("unframed: packages %q, warnings %+v", got, warnings)
	}
	// A well-framed one.
	pkgs, _ = extract(t, entry{name: "app", mode: 0o755, body: synthetic(1024, inlineHeader(), append(uvarintString("go1.22.0"), uvarintString(frame("path\tx\nmod\tx\tv1.0.0\ndep\ty\tv0.1.0\n"))...))})
	if got := nameVersions(pkgs); !slices.Equal(got, []string{"x@v1.0.0", "y@v0.1.0", "stdlib@1.22.0"}) {
		t.Errorf("framed: packages %q", got)
	}
}

// Links are never offered: the binary is reported once, at its own path;
// a link to a host binary yields nothing.
func TestLinksNotFollowed(t *testing.T) {
	pkgs, warnings := extract(t,
		entry{name: "usr/local/bin/prog", mode: 0o755, body: readFile(t, progBin)},
		entry{name: "usr/bin/prog", link: progPath},
		entry{name: "usr/bin/go", link: "/usr/local/go/bin/go"},
	)
	if len(pkgs) == 0 || len(warnings) != 0 {
		t.Fatalf("packages %+v, warnings %+v", pkgs, warnings)
	}
	for _, p := range pkgs {
		if !slices.Equal(p.Locations, []string{progPath}) {
			t.Errorf("package %+v found through a link", p)
		}
	}
}

// A Go binary over the file cap (here lowered by the request) is skipped
// with the framework's warning naming it.
func TestTooLarge(t *testing.T) {
	layer := layerOf(t, entry{name: "usr/local/bin/prog", mode: 0o755, body: readFile(t, progBin)})
	items, err := sdktest.ExtractErr(t.Context(), layer, sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: 1 << 20}}, NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := sdktest.Packages(items), sdktest.Warnings(items)
	if len(pkgs) != 0 || len(warnings) != 1 || warnings[0].Path != progPath {
		t.Errorf("packages %+v, warnings %+v; want one warning about %s", pkgs, warnings, progPath)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	layer := layerOf(t, entry{name: "usr/local/bin/prog", mode: 0o755, body: readFile(t, progBin)})
	if _, err := sdktest.ExtractErr(ctx, layer, sdk.LayerLimits{}, NewExtractor()); err == nil {
		t.Error("a cancelled layer succeeded")
	}
	b := readFile(t, progBin)
	f := sdk.FileInfo{Path: progPath, Mode: 0o755, Size: int64(len(b))}
	if err := NewExtractor().Extract(ctx, f, bytes.NewReader(b), discard{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Extract = %v, want context.Canceled", err)
	}
}

// BenchmarkExtract reads the test program's build information from a
// stream, as a layer hands it over.
func BenchmarkExtract(b *testing.B) {
	bin := readFile(b, progBin)
	f := sdk.FileInfo{Path: progPath, Mode: 0o755, Size: int64(len(bin))}
	e := NewExtractor()
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Extract(b.Context(), f, bytes.NewReader(bin), discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNotGo scans a 64 MB ELF without build information to its end.
func BenchmarkNotGo(b *testing.B) {
	const size = 64 << 20
	block := noGoELF(1 << 20)
	f := sdk.FileInfo{Path: "/big", Mode: 0o755, Size: size}
	e := NewExtractor()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Extract(b.Context(), f, &patternReader{block: block, n: size}, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}
