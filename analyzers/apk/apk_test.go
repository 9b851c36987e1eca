package apk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/apk"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite the golden want.json files from the analyzer's output")

const realRoot = "testdata/trivy-fixture"

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, apk.Analyzer{})
}

func TestDescribe(t *testing.T) {
	d, err := sdktest.Connect(t, apk.Analyzer{}).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "apk" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Equal(d.Ecosystems, []string{"Alpine"}) ||
		d.Resources != (sdk.Resources{MemoryBytes: 128 << 20, Pids: 16, Timeout: time.Minute}) {
		t.Errorf("Describe = %+v", d)
	}
}

// collect runs the analyzer over gRPC in this process, as assayd would
// over its socket.
func collect(t *testing.T, req sdk.Request) (pkgs []sdk.Package, warnings []string, items []sdk.Item) {
	t.Helper()
	c := sdktest.Connect(t, apk.Analyzer{})
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
			warnings = append(warnings, it.Warning.Path+": "+it.Warning.Message)
		default:
			t.Fatalf("unexpected item %+v", it)
		}
	}
	return pkgs, warnings, items
}

// wantTSV reads a want.tsv written by awk (see testdata/README.md):
// name\tversion\torigin\tarch lines, in file order.
func wantTSV(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSuffix(l, "\n")
		if len(strings.Split(l, "\t")) != 4 {
			t.Fatalf("%s: bad line %q", file, l)
		}
		lines = append(lines, l)
	}
	return lines
}

// tsv writes the packages as want.tsv does; the arch comes from the purl.
func tsv(t *testing.T, pkgs []sdk.Package) []string {
	t.Helper()
	var lines []string
	for _, p := range pkgs {
		u, err := packageurl.FromString(p.PURL)
		if err != nil {
			t.Fatalf("%s: purl %q: %v", p.Name, p.PURL, err)
		}
		if p.SourceVersion != p.Version {
			t.Errorf("%s: source version %q, version %q", p.Name, p.SourceVersion, p.Version)
		}
		lines = append(lines, strings.Join([]string{p.Name, p.Version, p.SourceName, u.Qualifiers.Map()["arch"]}, "\t"))
	}
	return lines
}

// golden compares items with dir/want.json, or rewrites it under -update.
func golden(t *testing.T, dir string, items []sdk.Item) {
	t.Helper()
	type item struct {
		Package *sdk.Package `json:",omitempty"`
		Warning *sdk.Warning `json:",omitempty"`
	}
	var list []item
	for _, it := range items {
		list = append(list, item{Package: it.Package, Warning: it.Warning})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(list); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	file := filepath.Join(dir, "want.json")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./analyzers/apk -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./analyzers/apk -update rewrites it; review the diff):\n%s", file, got)
	}
}

// The real database's packages, compared exactly (and in order) with an
// awk reading of the same file.
func TestRealDatabase(t *testing.T) {
	pkgs, warnings, items := collect(t, sdk.Request{Root: realRoot, MaxFiles: 1000, MaxFileBytes: 1 << 20})
	// trivy's fixture holds one paragraph without V:.
	wantWarnings := []string{"/lib/apk/db/installed: malformed paragraphs skipped: 1 (the first: malformed paragraph 2: no V: (version) field)"}
	if !slices.Equal(warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", warnings, wantWarnings)
	}
	got, want := tsv(t, pkgs), wantTSV(t, filepath.Join(realRoot, "want.tsv"))
	if len(want) != 15 {
		t.Fatalf("want.tsv lists %d packages, not 15", len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("analyzer:\n%s\nawk:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range pkgs {
		checkPackage(t, p)
	}
	golden(t, realRoot, items)
}

// checkPackage checks the fields that want.tsv does not hold.
func checkPackage(t *testing.T, p sdk.Package) {
	t.Helper()
	if p.Ecosystem != "Alpine:v3.15" || p.Owner != "" || !slices.Equal(p.Locations, []string{"/lib/apk/db/installed"}) {
		t.Errorf("%s: ecosystem %q, owner %q, locations %q", p.Name, p.Ecosystem, p.Owner, p.Locations)
	}
	want := fmt.Sprintf("pkg:apk/alpine/%s@%s?arch=x86_64&distro=alpine-3.15.4", p.Name, p.Version)
	if p.PURL != want {
		t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, want)
	}
}

// paragraph returns one paragraph of the real database, with its trailing
// newline.
func paragraph(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(realRoot, "lib/apk/db/installed"))
	if err != nil {
		t.Fatal(err)
	}
	for p := range strings.SplitSeq(string(b), "\n\n") {
		if strings.Contains("\n"+p+"\n", "\nP:"+name+"\n") {
			return strings.TrimSuffix(p, "\n") + "\n"
		}
	}
	t.Fatalf("no paragraph %q", name)
	return ""
}

const osRelease = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n"

// mkroot builds an image root from path → content; a content starting with
// "->" makes a symbolic link, a path ending in "/" a directory.
func mkroot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func names(pkgs []sdk.Package) []string {
	var n []string
	for _, p := range pkgs {
		n = append(n, p.Name)
	}
	return n
}

const db = "lib/apk/db/installed"

// Hostile and unusual images: what is reported, and the warnings.
func TestImages(t *testing.T) {
	musl, zlib := paragraph(t, "musl"), paragraph(t, "zlib")
	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
		if garbage[i] == '\n' {
			garbage[i] = 0
		}
	}
	garbage[0] = 0xff
	shadow := "root:$6$SECRET-HASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
	for _, tc := range []struct {
		name     string
		files    map[string]string
		want     []string // package names, in order
		warnings []string // regular expressions, in order
	}{{
		name:  "installed is an absolute link to /etc/shadow: the image's shadow is read",
		files: map[string]string{"etc/os-release": osRelease, db: "->/etc/shadow", "etc/shadow": shadow},
		warnings: []string{
			`^/lib/apk/db/installed: malformed paragraphs skipped: 1 \(the first: malformed paragraph 1: a line is not "K:value"\)$`,
		},
	}, {
		name:  "a link to /etc/shadow reads the image's file, here an apk paragraph",
		files: map[string]string{"etc/os-release": osRelease, db: "->/etc/shadow", "etc/shadow": musl},
		want:  []string{"musl"},
	}, {
		name:     "a link to /etc/shadow in an image without one: nothing, never the host's",
		files:    map[string]string{"etc/os-release": osRelease, db: "->/etc/shadow"},
		warnings: []string{`^/lib/apk/db/installed: skipped: it does not resolve to a file inside the image: .*no such file or directory$`},
	}, {
		name:  "a relative link climbing out of the root stays in it",
		files: map[string]string{"etc/os-release": osRelease, db: "->../../../../../../../../../etc/shadow", "etc/shadow": zlib},
		want:  []string{"zlib"},
	}, {
		name:     "a link loop",
		files:    map[string]string{db: "->installed.old", "lib/apk/db/installed.old": "->/lib/apk/db/installed"},
		warnings: []string{`^/lib/apk/db/installed: skipped: resolve /lib/apk/db/installed: too many levels of symbolic links$`},
	}, {
		name:     "a directory link loop",
		files:    map[string]string{"lib/apk/db": "->db"},
		warnings: []string{`^/lib/apk/db/installed: skipped: .*too many levels of symbolic links$`},
	}, {
		name:     "installed is a directory",
		files:    map[string]string{db + "/": ""},
		warnings: []string{`^/lib/apk/db/installed: skipped: /lib/apk/db/installed: not a regular file \(a directory\)$`},
	}, {
		name: "garbage, paragraphs without P or V, duplicated and invalid fields",
		files: map[string]string{
			"etc/os-release": osRelease,
			db: musl + "\n" + string(garbage) + "\n\n" +
				"V:1.0\nA:x86_64\n\n" +
				"P:noversion\nA:x86_64\n\n" +
				"P:twice\nP:twice\nV:1\n\n" +
				"P:bad name\nV:1\n\n" +
				"P:x\nV:\n\n" +
				"P:y\n V:1\n\n" +
				"P:long\nT:" + strings.Repeat("x", apk.MaxLineBytes+1) + "\nV:1\n\n" +
				"P:SECRET\nV:1\xff\n\n" +
				zlib,
		},
		want: []string{"musl", "zlib"},
		warnings: []string{
			`^/lib/apk/db/installed: malformed paragraphs skipped: 9 \(the first: malformed paragraph 2: .*\)$`,
		},
	}, {
		name:  "several blank lines between, CRLF, no final newline, no o: or A:",
		files: map[string]string{"etc/os-release": osRelease, db: "\n\nP:a\r\nV:1-r0\r\n\r\n\n\nP:b\nV:2-r1"},
		want:  []string{"a", "b"},
	}, {
		name:  "no os-release",
		files: map[string]string{db: musl},
		want:  []string{"musl"},
		warnings: []string{
			`^: no os-release \(/etc/os-release, /usr/lib/os-release\): apk packages are reported as ecosystem "Alpine", without a release$`,
		},
	}, {
		name:     "os-release of another distribution",
		files:    map[string]string{"etc/os-release": "ID=SECRET\nVERSION_ID=1.2\n", db: musl},
		want:     []string{"musl"},
		warnings: []string{`^/etc/os-release: os-release's ID is not alpine: apk packages are reported as ecosystem "Alpine", without a release$`},
	}, {
		name:     "os-release without a usable VERSION_ID",
		files:    map[string]string{"etc/os-release": "ID=alpine\nVERSION_ID=SECRET\n", db: musl},
		want:     []string{"musl"},
		warnings: []string{`^/etc/os-release: os-release's VERSION_ID is not an Alpine release \(major.minor\[.patch\]\): apk packages are reported as ecosystem "Alpine", without a release$`},
	}, {
		name:  "os-release an absolute link",
		files: map[string]string{"etc/os-release": "->/usr/lib/os-release", "usr/lib/os-release": osRelease, db: musl},
		want:  []string{"musl"},
	}, {
		name:  "no apk database: nothing, not even a warning",
		files: map[string]string{"etc/os-release": osRelease, "var/lib/dpkg/status": "Package: bash\nVersion: 1\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, warnings, _ := collect(t, sdk.Request{Root: mkroot(t, tc.files), MaxFiles: 100, MaxFileBytes: 1 << 20})
			if got := names(pkgs); !slices.Equal(got, tc.want) {
				t.Errorf("packages %q, want %q", got, tc.want)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings:\n%s\nwant %d", strings.Join(warnings, "\n"), len(tc.warnings))
			}
			for i, w := range warnings {
				if !regexp.MustCompile(tc.warnings[i]).MatchString(w) {
					t.Errorf("warning %q does not match %q", w, tc.warnings[i])
				}
				if strings.Contains(w, "SECRET") {
					t.Errorf("warning %q quotes the file", w)
				}
			}
			for _, p := range pkgs {
				if p.Name == "musl" && (p.SourceName != "musl" || p.Version != "1.1.14-r10") {
					t.Errorf("musl = %+v", p)
				}
				if p.Name == "a" && (p.SourceName != "a" || p.PURL != "pkg:apk/alpine/a@1-r0?distro=alpine-3.20.3" || p.Ecosystem != "Alpine:v3.20") {
					t.Errorf("a = %+v", p)
				}
			}
		})
	}
}

func TestEcosystem(t *testing.T) {
	for in, want := range map[string]string{
		"3.20.3": "Alpine:v3.20", "3.20": "Alpine:v3.20", "3.4.6": "Alpine:v3.4",
		"3.21.0_alpha20240807": "Alpine:v3.21", "3.21_alpha20240807": "Alpine:v3.21",
		"3": "", "": "", "v3.20": "", "3.x": "", "edge": "", "3.20.3\n": "Alpine:v3.20", "12345.1": "",
	} {
		got, ok := apk.Ecosystem(in)
		if got != want || ok != (want != "") {
			t.Errorf("Ecosystem(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// A 50 MB database with a 1 MiB limit is not read at all: the warning
// comes at once and names the file and the limit.
func TestLargeDatabaseIsSkipped(t *testing.T) {
	root := mkroot(t, map[string]string{"etc/os-release": osRelease, "lib/apk/db/": ""})
	if err := os.WriteFile(filepath.Join(root, db), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(root, db), 50<<20); err != nil { // sparse
		t.Fatal(err)
	}
	start := time.Now()
	pkgs, warnings, _ := collect(t, sdk.Request{Root: root, MaxFileBytes: 1 << 20})
	want := "/lib/apk/db/installed: skipped: 52428800 bytes, over the limit of 1048576 bytes per file"
	if len(pkgs) != 0 || len(warnings) != 1 || warnings[0] != want {
		t.Errorf("packages %q, warnings %q; want the warning %q", names(pkgs), warnings, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// Without a limit in the request, the analyzer's own default applies.
func TestDefaultFileLimit(t *testing.T) {
	root := mkroot(t, map[string]string{db: ""})
	if err := os.Truncate(filepath.Join(root, db), apk.DefaultMaxFileBytes+1); err != nil {
		t.Fatal(err)
	}
	_, warnings, _ := collect(t, sdk.Request{Root: root})
	if len(warnings) != 1 || !strings.Contains(warnings[0], fmt.Sprintf("over the limit of %d bytes", apk.DefaultMaxFileBytes)) {
		t.Errorf("warnings %q", warnings)
	}
}

// emitter is an in-process sdk.Emitter.
type emitter struct {
	onPackage func(sdk.Package) error
}

func (e emitter) Package(p sdk.Package) error { return e.onPackage(p) }
func (emitter) Finding(sdk.Finding) error     { return nil }
func (emitter) Warning(sdk.Warning) error     { return nil }

// Cancellation during the analysis stops it at the next paragraph.
func TestCancellationStopsTheAnalysis(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := 0
	err := apk.Analyzer{}.Analyze(ctx, sdk.Request{Root: realRoot}, emitter{onPackage: func(sdk.Package) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Errorf("Analyze = %v after %d packages; want context.Canceled after 3", err, n)
	}
}

// An emitter error (the host gone) stops the analysis and is returned.
func TestEmitterErrorStops(t *testing.T) {
	errGone := errors.New("host gone")
	n := 0
	err := apk.Analyzer{}.Analyze(t.Context(), sdk.Request{Root: realRoot}, emitter{onPackage: func(sdk.Package) error {
		n++
		return errGone
	}})
	if !errors.Is(err, errGone) || n != 1 {
		t.Errorf("Analyze = %v after %d packages", err, n)
	}
}

func TestMissingRoot(t *testing.T) {
	err := apk.Analyzer{}.Analyze(t.Context(), sdk.Request{Root: filepath.Join(t.TempDir(), "none")}, emitter{})
	if err == nil || !strings.HasPrefix(err.Error(), "apk: ") {
		t.Errorf("Analyze of a missing root = %v", err)
	}
}

// A FIFO where the database should be is never opened and is reported.
func TestFIFODatabase(t *testing.T) {
	root := mkroot(t, map[string]string{"lib/apk/db/": ""})
	if err := syscall.Mkfifo(filepath.Join(root, db), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, warnings, _ := collect(t, sdk.Request{Root: root})
	if len(warnings) != 1 || !strings.HasSuffix(warnings[0], "not a regular file (a FIFO)") {
		t.Errorf("warnings %q", warnings)
	}
}
