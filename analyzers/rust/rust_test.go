package rust

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// The real test image (see testdata/README.md).
var (
	imageRoot   = filepath.Join("testdata", "image")
	noDepsBin   = filepath.Join(imageRoot, "usr", "local", "bin", "no_deps")
	serdeBin    = filepath.Join(imageRoot, "usr", "local", "bin", "uses_serde_json")
	appLockfile = filepath.Join(imageRoot, "srv", "app", "Cargo.lock")
)

// entry is one member of a hand-built layer.
type entry struct {
	name string
	mode int64
	body []byte
	link string // a symbolic link's target
	typ  byte   // a type other than a regular file or a link
}

func layerOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.link != "":
			h = &tar.Header{Name: e.name, Mode: 0o777, Linkname: e.link, Typeflag: tar.TypeSymlink}
		case e.typ != 0:
			h = &tar.Header{Name: e.name, Mode: e.mode, Typeflag: e.typ}
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

// split returns the packages and warnings of items, failing on anything
// else but the layer's own items.
func split(t *testing.T, items []sdk.Item) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	for _, it := range items {
		switch {
		case it.Package != nil, it.Warning != nil, it.Entries != nil, it.LayerEnd != nil:
		default:
			t.Fatalf("unexpected item %+v", it)
		}
	}
	return sdktest.Packages(items), sdktest.Warnings(items)
}

// extract streams a layer of entries through a fresh extractor, the
// extractor's file cap set to maxFileBytes unless 0.
func extract(t *testing.T, maxFileBytes int64, entries ...entry) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	var lim sdk.LayerLimits
	if maxFileBytes > 0 {
		lim.MaxFileBytes = map[string]int64{Name: maxFileBytes}
	}
	items, err := sdktest.ExtractErr(t.Context(), layerOf(t, entries...), lim, NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	return split(t, items)
}

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, NewExtractor())
	e := NewExtractor()
	if e.Name() != "rust" || e.Version() != "0.2.0" || e.MaxFileBytes() != 512<<20 {
		t.Errorf("extractor %s %s, max %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
}

func TestRequired(t *testing.T) {
	e := NewExtractor()
	for _, tc := range []struct {
		f    sdk.FileInfo
		want bool
	}{
		{sdk.FileInfo{Path: "/srv/app/Cargo.lock", Mode: 0o644, Size: 10}, true},
		{sdk.FileInfo{Path: "/Cargo.lock", Mode: 0o755, Size: 0}, true},
		{sdk.FileInfo{Path: "/usr/bin/rg", Mode: 0o755, Size: 5 << 20}, true},
		{sdk.FileInfo{Path: "/usr/bin/huge", Mode: 0o700, Size: 1 << 40}, true}, // the framework warns
		{sdk.FileInfo{Path: "/srv/app/Cargo.lock.orig", Mode: 0o644, Size: 10}, false},
		{sdk.FileInfo{Path: "/srv/app/Cargo.toml", Mode: 0o644, Size: 10}, false},
		{sdk.FileInfo{Path: "/usr/lib/librg.so", Mode: 0o644, Size: 5 << 20}, false},
		{sdk.FileInfo{Path: "/usr/bin/run.sh", Mode: 0o755, Size: 40}, false},
		{sdk.FileInfo{Path: "/srv/Cargo.lock", Mode: fs.ModeSymlink | 0o777, LinkTarget: "/etc/shadow"}, false},
		{sdk.FileInfo{Path: "/usr/bin/rg-link", Mode: fs.ModeSymlink | 0o777, LinkTarget: "/usr/bin/rg"}, false},
	} {
		if got := e.Required(tc.f); got != tc.want {
			t.Errorf("Required(%+v) = %v", tc.f, got)
		}
	}
}

// wantRow is one line of testdata/want.txt: what Python's tomllib read
// from a Cargo.lock, or what objcopy and Python's zlib and json read from
// a binary's .dep-v0 section.
type wantRow struct {
	location, name, version, source, kind string
}

func readWant(t *testing.T) []wantRow {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "want.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []wantRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 6 {
			t.Fatalf("want.txt: bad line %q", sc.Text())
		}
		rows = append(rows, wantRow{location: fs[0], name: fs[1], version: fs[2], source: fs[3], kind: fs[4]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 50 {
		t.Fatalf("want.txt has only %d rows", len(rows))
	}
	return rows
}

// reported applies the documented rule to what the independent tools
// read: crates.io crates are reported, git ones with a release version
// too, path/local ones and other registries not; of binaries only
// runtime dependencies.
func (r wantRow) reported() bool {
	if r.kind == "build" {
		return false
	}
	switch {
	case r.source == "registry+https://github.com/rust-lang/crates.io-index", r.source == "crates.io":
		return true
	case strings.HasPrefix(r.source, "git+"), r.source == "git":
		return !strings.Contains(r.version, "-")
	}
	return false
}

// The real Cargo.lock files (formats v1 to v4, made by cargo) and
// cargo-auditable binaries (from osv-scalibr's test data): exactly the
// crates the independent readers found, filtered by the documented rule.
func TestImage(t *testing.T) {
	rows := readWant(t)
	var want []string
	seen := map[string]bool{}
	for _, r := range rows {
		k := r.location + " " + r.name + " " + r.version
		if r.reported() && !seen[k] {
			seen[k] = true
			want = append(want, k)
		}
	}
	slices.Sort(want)

	pkgs, warnings := split(t, sdktest.ExtractDir(t, imageRoot, NewExtractor()))
	var got []string
	for _, p := range pkgs {
		if len(p.Locations) != 1 {
			t.Fatalf("%s: locations %q", p.Name, p.Locations)
		}
		got = append(got, p.Locations[0]+" "+p.Name+" "+p.Version)
		if p.Ecosystem != "crates.io" {
			t.Errorf("%s: ecosystem %q", p.Name, p.Ecosystem)
		}
		if w := "pkg:cargo/" + p.Name + "@" + p.Version; p.PURL != w {
			t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, w)
		}
		if p.Owner != "" || p.OS != "" {
			t.Errorf("%s: owner %q, os %q", p.Name, p.Owner, p.OS)
		}
		if _, err := os.Stat(filepath.Join(imageRoot, p.Locations[0])); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A sanity check of the rule on this data: the workspace's own crates,
	// the binaries' root crates, the other registry's cfg-if and the git
	// pre-release are left out; the git release is in.
	for _, k := range []string{
		"/srv/app/Cargo.lock gitdep 0.3.1", "/opt/lock-v1/Cargo.lock serde_json 1.0.87",
		"/usr/local/bin/uses_serde_json serde 1.0.217", "/srv/app/Cargo.lock cfg-if 1.0.0",
	} {
		if !slices.Contains(got, k) {
			t.Errorf("%s not reported", k)
		}
	}
	for _, p := range pkgs {
		switch p.Name {
		case "app", "util", "gitpre", "uses_json", "no_deps":
			t.Errorf("reported %s %s in %s", p.Name, p.Version, p.Locations[0])
		}
	}
	// One warning per lockfile with something not reported: the other
	// registry's cfg-if and the git pre-release in /srv/app, the git
	// pre-release in the others.
	wantWarn := map[string]string{
		"/srv/app/Cargo.lock":     "2 crates not reported",
		"/opt/lock-v1/Cargo.lock": "1 crates not reported",
		"/opt/lock-v2/Cargo.lock": "1 crates not reported",
		"/opt/lock-v3/Cargo.lock": "1 crates not reported",
	}
	if len(warnings) != len(wantWarn) {
		t.Errorf("warnings %+v", warnings)
	}
	for _, w := range warnings {
		if !strings.HasPrefix(w.Message, wantWarn[w.Path]) || wantWarn[w.Path] == "" {
			t.Errorf("warning %+v", w)
		}
	}
}

func TestParseCargoLockFormats(t *testing.T) {
	rows := readWant(t)
	for _, dir := range []string{"lock-v1", "lock-v2", "lock-v3"} {
		data, err := os.ReadFile(filepath.Join(imageRoot, "opt", dir, "Cargo.lock"))
		if err != nil {
			t.Fatal(err)
		}
		lf, err := ParseCargoLock(data)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		var got, want []string
		for _, p := range lf.Packages {
			src := p.Source
			if src == "" {
				src = "-"
			}
			got = append(got, p.Name+" "+p.Version+" "+src)
		}
		for _, r := range rows {
			if r.location == "/opt/"+dir+"/Cargo.lock" {
				want = append(want, r.name+" "+r.version+" "+r.source)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) || lf.Invalid != 0 {
			t.Errorf("%s: got %q (invalid %d)\nwant %q", dir, got, lf.Invalid, want)
		}
		wantVersion := map[string]int{"lock-v1": 0, "lock-v2": 0, "lock-v3": 3}[dir]
		if lf.Version != wantVersion {
			t.Errorf("%s: version %d", dir, lf.Version)
		}
	}
}

func TestParseCargoLock(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []LockPackage
		inv  int
		bad  bool
	}{
		{name: "empty", in: ""},
		{name: "no packages", in: "version = 4\n"},
		{name: "one", in: "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
			want: []LockPackage{{Name: "a", Version: "1.0.0", Source: "registry+https://github.com/rust-lang/crates.io-index"}}},
		{name: "brackets and dots in strings and comments",
			in:   "# [[[[[[ a.b.c.d.e.f.g\n[[package]]\nname = \"x[[[[{{{{.a.b.c.d.e.f\"\nversion = '1.0.0]]]]]]'\nsource = \"\"\"\n[[[[[ \\\"\"\" # \"\"\"\n",
			want: []LockPackage{{Name: "x[[[[{{{{.a.b.c.d.e.f", Version: "1.0.0]]]]]]", Source: "[[[[[ \"\"\" # "}}},
		{name: "multi-line literal with extra quotes",
			in:   "[[package]]\nname = '''a'''''\nversion = \"1\"\n",
			want: []LockPackage{{Name: "a''", Version: "1"}}},
		{name: "entries without name or version", in: "[[package]]\nname = \"a\"\n[[package]]\nversion = \"1\"\n[[package]]\nname = \"b\"\nversion = \"2\"\n",
			want: []LockPackage{{Name: "b", Version: "2"}}, inv: 2},
		{name: "control character", in: "[[package]]\nname = \"a\\u0007\"\nversion = \"1\"\n", inv: 1},
		{name: "v1 metadata", in: "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\n[metadata]\n\"checksum a 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)\" = \"00\"\n",
			want: []LockPackage{{Name: "a", Version: "1.0.0"}}},
		{name: "patch unused", in: "[[patch.unused]]\nname = \"p\"\nversion = \"0.1.0\"\n"},
		{name: "not toml", in: "root:$6$secret:19000:0:99999:7:::\n", bad: true},
		{name: "binary", in: "\x7fELF\x02\x01\x01\x00\xff\xfe", bad: true},
		{name: "wrong type", in: "[[package]]\nname = 5\nversion = \"1\"\n", bad: true},
		{name: "package not an array", in: "[package]\nname = \"a\"\nversion = \"1\"\n", bad: true},
		{name: "deep arrays", in: "a = " + strings.Repeat("[", 5) + strings.Repeat("]", 5) + "\n", bad: true},
		{name: "deep inline tables", in: "a = " + strings.Repeat("{b=", 3000) + "1" + strings.Repeat("}", 3000) + "\n", bad: true},
		{name: "long dotted key", in: strings.Repeat("a.", 5000) + "b = 1\n", bad: true},
		{name: "long dotted header", in: "[" + strings.Repeat("a.", 5000) + "b]\n", bad: true},
		{name: "bracket hidden by a newline in a string", in: "a = \"x\n{b={c={d={e={f=1}}}}}\"\n", bad: true},
		{name: "unterminated string", in: "a = \"\"\"x\n", bad: true},
	} {
		lf, err := ParseCargoLock([]byte(tc.in))
		if tc.bad {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: ParseCargoLock = %+v, %v; want ErrMalformed", tc.name, lf, err)
			}
			if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "root")) {
				t.Errorf("%s: error quotes the content: %v", tc.name, err)
			}
			continue
		}
		if err != nil || !slices.Equal(lf.Packages, tc.want) || lf.Invalid != tc.inv {
			t.Errorf("%s: ParseCargoLock = %+v, %v; want %+v, %d invalid", tc.name, lf, err, tc.want, tc.inv)
		}
	}
}

func TestIsRelease(t *testing.T) {
	for v, want := range map[string]bool{
		"1.0.0": true, "0.3.1": true, "10.20.30": true, "1.0.0+build.5": true,
		"1.0.0-alpha": false, "0.2.0-dev": false, "1.0": false, "01.0.0": false, "v1.0.0": false, "": false,
	} {
		if got := IsRelease(v); got != want {
			t.Errorf("IsRelease(%q) = %v", v, got)
		}
	}
}

func TestPURL(t *testing.T) {
	if got, want := purl("serde_json", "1.0.87"), "pkg:cargo/serde_json@1.0.87"; got != want {
		t.Errorf("purl = %q, want %q", got, want)
	}
}

// withDepSection returns the ELF file base with the content of its .dep-v0
// section replaced by data (appended at the end of the file, the section
// header pointed at it).
func withDepSection(t testing.TB, base, data []byte) []byte {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	idx := slices.IndexFunc(f.Sections, func(s *elf.Section) bool { return s.Name == ".dep-v0" })
	if idx < 0 || f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		t.Fatal("not a little-endian ELF64 with a .dep-v0 section")
	}
	out := append(bytes.Clone(base), data...)
	shoff := binary.LittleEndian.Uint64(base[0x28:])
	shentsize := uint64(binary.LittleEndian.Uint16(base[0x3a:]))
	sh := out[shoff+uint64(idx)*shentsize:]
	binary.LittleEndian.PutUint64(sh[0x18:], uint64(len(base))) // sh_offset
	binary.LittleEndian.PutUint64(sh[0x20:], uint64(len(data))) // sh_size
	return out
}

func deflate(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The real binary with its .dep-v0 data replaced, to check which kinds
// and sources are reported: a cargo install'ed root crate (crates.io) is,
// build dependencies, local crates, other registries and git
// pre-releases are not.
func TestBinaryKindsAndSources(t *testing.T) {
	deps := `{"packages":[` +
		`{"name":"ripgrep","version":"14.1.0","source":"crates.io","dependencies":[1,2,3,4,5,6],"root":true},` +
		`{"name":"memchr","version":"2.7.4","source":"crates.io"},` +
		`{"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},` +
		`{"name":"gitrel","version":"0.3.1","source":"git"},` +
		`{"name":"gitpre","version":"0.4.0-dev","source":"git"},` +
		`{"name":"corp","version":"1.0.0","source":"registry"},` +
		`{"name":"mine","version":"0.1.0","source":"local"},` +
		`{"name":"","version":"1.0.0","source":"crates.io"},` +
		`{"name":"memchr","version":"2.7.4","source":"crates.io"}]}`
	pkgs, warnings := extract(t, 0, entry{name: "usr/bin/rg", mode: 0o755, body: withDepSection(t, readFile(t, noDepsBin), deflate(t, []byte(deps)))})
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version+" "+strings.Join(p.Locations, ","))
	}
	want := []string{"ripgrep 14.1.0 /usr/bin/rg", "memchr 2.7.4 /usr/bin/rg", "gitrel 0.3.1 /usr/bin/rg"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(warnings) != 1 || warnings[0].Path != "/usr/bin/rg" || !strings.HasPrefix(warnings[0].Message, "3 crates not reported") {
		t.Errorf("warnings %+v", warnings)
	}
}

// A hostile layer: links to secrets, garbage, oversize files, a zlib
// bomb. Only the good crates are reported, each of the others is a
// warning or nothing, and no warning quotes a file.
func TestHostile(t *testing.T) {
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	good := readFile(t, appLockfile)
	noDeps := readFile(t, noDepsBin)
	// Padded past the size under which executables are not offered.
	pad := func(b string) []byte { return append([]byte(b), make([]byte, 1024)...) }
	// Over MaxLockfileBytes, valid TOML all along.
	huge := append(bytes.Clone(good), bytes.Repeat([]byte("# pad\n"), MaxLockfileBytes/6+1)...)
	entries := []entry{
		{name: "etc/shadow", mode: 0o644, body: []byte(secret)},
		{name: "srv/good/Cargo.lock", mode: 0o644, body: good},
		// Links are never offered: not to a secret, not to a good
		// lockfile (that one is reported at its own path).
		{name: "srv/shadow/Cargo.lock", link: "/etc/shadow"},
		{name: "srv/shadow2/Cargo.lock", link: "../../../../../../etc/shadow"},
		{name: "srv/loop/Cargo.lock", link: "Cargo.lock"},
		{name: "opt/only-in-image/Cargo.lock", mode: 0o644, body: good},
		{name: "srv/abs/Cargo.lock", link: "/opt/only-in-image/Cargo.lock"},
		{name: "srv/garbage/Cargo.lock", mode: 0o644, body: []byte("\x00\x01\x02garbage\xff\n")},
		{name: "srv/secret/Cargo.lock", mode: 0o644, body: []byte(secret)},
		{name: "srv/deep/Cargo.lock", mode: 0o644, body: []byte("a = " + strings.Repeat("{b=", 2000) + "1" + strings.Repeat("}", 2000) + "\n")},
		{name: "srv/big/Cargo.lock", mode: 0o644, body: append(bytes.Clone(good), bytes.Repeat([]byte("# pad\n"), 100_000)...)},
		{name: "srv/huge/Cargo.lock", mode: 0o644, body: huge},
		{name: "srv/fifo/Cargo.lock", mode: 0o644, typ: tar.TypeFifo},
		{name: "srv/notlock/Cargo.lock.orig", mode: 0o644, body: good},

		{name: "usr/bin/serde", mode: 0o755, body: readFile(t, serdeBin)},
		{name: "usr/bin/serde-link", link: "/usr/bin/serde"},
		{name: "usr/bin/shadow", link: "/etc/shadow"},
		{name: "usr/bin/notelf", mode: 0o755, body: pad(secret)},
		{name: "usr/bin/badelf", mode: 0o755, body: pad("\x7fELF" + secret)},
		{name: "usr/bin/bomb", mode: 0o755, body: withDepSection(t, noDeps, deflate(t, make([]byte, MaxDepInfoBytes+1)))},
		{name: "usr/bin/notzlib", mode: 0o755, body: withDepSection(t, noDeps, []byte(secret))},
		{name: "usr/bin/notjson", mode: 0o755, body: withDepSection(t, noDeps, deflate(t, []byte(secret)))},
		{name: "usr/bin/wrongtype", mode: 0o755, body: withDepSection(t, noDeps, deflate(t, []byte(`{"packages":[{"name":["TOPSECRET"]}]}`)))},
		{name: "usr/bin/truncated", mode: 0o755, body: noDeps[:len(noDeps)/2]},
		{name: "usr/lib/notexec.so", mode: 0o644, body: readFile(t, serdeBin)}, // no execute bit: not looked at
	}
	goodLocs := []string{"/srv/good/Cargo.lock", "/opt/only-in-image/Cargo.lock"}
	lockWarned := []string{"/srv/garbage/Cargo.lock", "/srv/secret/Cargo.lock", "/srv/deep/Cargo.lock", "/srv/huge/Cargo.lock"}
	notWarned := []string{
		"/srv/shadow/Cargo.lock", "/srv/shadow2/Cargo.lock", "/srv/loop/Cargo.lock", "/srv/abs/Cargo.lock",
		"/srv/fifo/Cargo.lock", "/srv/notlock/Cargo.lock.orig", "/etc/shadow",
		"/usr/bin/notelf", "/usr/bin/shadow", "/usr/bin/serde-link", "/usr/lib/notexec.so",
	}

	// A file cap between the lockfile and the padded one; every binary
	// is larger: the framework skips them, with a warning each. The
	// second run gives them room.
	pkgs, warnings := extract(t, int64(len(good))+1024, entries...)
	for _, p := range pkgs {
		if !slices.Contains(goodLocs, p.Locations[0]) {
			t.Errorf("reported %+v", p)
		}
	}
	warned := warnedPaths(t, warnings)
	for _, p := range append(lockWarned, "/srv/big/Cargo.lock", "/usr/bin/serde", "/usr/bin/badelf", "/usr/bin/bomb") {
		if !warned[p] {
			t.Errorf("no warning about %s; warnings %+v", p, warnings)
		}
	}
	for _, p := range notWarned {
		if warned[p] {
			t.Errorf("a warning about %s; warnings %+v", p, warnings)
		}
	}

	pkgs, warnings = extract(t, 64<<20, entries...)
	locs := map[string]int{}
	for _, p := range pkgs {
		locs[p.Locations[0]]++
	}
	// 8 crates.io crates and the git release in the lockfile (the other
	// registry's cfg-if and the git pre-release are left out), the padded
	// copy now under the limit, 10 crates in the binary.
	for _, l := range append(goodLocs, "/srv/big/Cargo.lock") {
		if locs[l] != 9 {
			t.Errorf("%d crates reported for %s, want 9", locs[l], l)
		}
	}
	if locs["/usr/bin/serde"] != 10 || len(locs) != 4 {
		t.Errorf("packages by location %v", locs)
	}
	warned = warnedPaths(t, warnings)
	for _, p := range append(lockWarned,
		"/usr/bin/badelf", "/usr/bin/bomb", "/usr/bin/notzlib", "/usr/bin/notjson", "/usr/bin/wrongtype", "/usr/bin/truncated",
	) {
		if !warned[p] {
			t.Errorf("no warning about %s; warnings %+v", p, warnings)
		}
	}
	for _, p := range append(notWarned, "/usr/bin/serde") {
		if warned[p] {
			t.Errorf("a warning about %s; warnings %+v", p, warnings)
		}
	}
	for _, w := range warnings {
		if w.Path == "/srv/huge/Cargo.lock" && !strings.Contains(w.Message, "for a Cargo.lock") {
			t.Errorf("warning %+v: want the lockfile limit", w)
		}
	}
}

// warnedPaths returns the paths warned about, failing the test if a
// warning quotes the secret.
func warnedPaths(t *testing.T, warnings []sdk.Warning) map[string]bool {
	t.Helper()
	warned := map[string]bool{}
	for _, w := range warnings {
		if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
			t.Errorf("warning quotes a file: %+v", w)
		}
		warned[w.Path] = true
	}
	return warned
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sdktest.ExtractErr(ctx, sdktest.TarDir(t, imageRoot), sdk.LayerLimits{}, NewExtractor()); err == nil {
		t.Error("a cancelled layer succeeded")
	}
	b := readFile(t, serdeBin)
	f := sdk.FileInfo{Path: "/usr/bin/serde", Mode: 0o755, Size: int64(len(b))}
	if err := NewExtractor().Extract(ctx, f, bytes.NewReader(b), discard{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Extract = %v, want context.Canceled", err)
	}
}

type discard struct{}

func (discard) Package(sdk.Package) error       { return nil }
func (discard) Finding(sdk.Finding) error       { return nil }
func (discard) Warning(sdk.Warning) error       { return nil }
func (discard) OwnedFiles(sdk.OwnedFiles) error { return nil }
func (discard) OSRelease(sdk.OSRelease) error   { return nil }

// BenchmarkParseCargoLock parses a 1 MB lockfile made of the real v4
// lockfile's entries, renamed (about 4,000 crates, a large workspace), and
// reports how many bytes the TOML decoder allocates per byte of input:
// the reason for MaxLockfileBytes.
func BenchmarkParseCargoLock(b *testing.B) {
	lf, err := ParseCargoLock(readFile(b, appLockfile))
	if err != nil || len(lf.Packages) == 0 {
		b.Fatalf("%+v, %v", lf, err)
	}
	var buf bytes.Buffer
	buf.WriteString("version = 4\n")
	for i := 0; buf.Len() < 1<<20; i++ {
		p := lf.Packages[i%len(lf.Packages)]
		fmt.Fprintf(&buf, "\n[[package]]\nname = \"%s-%d\"\nversion = %q\nsource = %q\nchecksum = \"6ce777b7b150d76b9cf60d28b55f5847135a003f7d7350c6be7a773508ce7d45\"\ndependencies = [\n \"itoa\",\n \"serde\",\n]\n",
			p.Name, i, p.Version, p.Source)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for b.Loop() {
		if _, err := ParseCargoLock(data); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/float64(len(data)), "alloc-B/input-B")
}
