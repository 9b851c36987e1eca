package dpkg_test

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

	"github.com/assayhq/assay/analyzers/dpkg"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite the golden want.json files from the analyzer's output")

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, dpkg.Analyzer{})
}

func TestDescribe(t *testing.T) {
	d, err := sdktest.Connect(t, dpkg.Analyzer{}).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "dpkg" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Equal(d.Ecosystems, []string{"Debian", "Ubuntu"}) ||
		d.Resources != (sdk.Resources{MemoryBytes: 128 << 20, Pids: 16, Timeout: time.Minute}) {
		t.Errorf("Describe = %+v", d)
	}
}

// collect runs the analyzer over gRPC in this process, as assayd would
// over its socket.
func collect(t *testing.T, req sdk.Request) (pkgs []sdk.Package, warnings []string, items []sdk.Item) {
	t.Helper()
	c := sdktest.Connect(t, dpkg.Analyzer{})
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

// wantTSV reads a want.tsv written by dpkg-query (see testdata/README.md)
// and returns the installed packages ("?i" status) as
// name\tversion\tsource\tsource-version lines, sorted.
func wantTSV(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
		if len(f) != 5 || len(f[4]) < 2 {
			t.Fatalf("%s: bad line %q", file, l)
		}
		if f[4][1] != 'i' {
			continue // not installed: not reported
		}
		lines = append(lines, strings.Join(f[:4], "\t"))
	}
	slices.Sort(lines)
	return lines
}

func tsv(pkgs []sdk.Package) []string {
	var lines []string
	for _, p := range pkgs {
		lines = append(lines, strings.Join([]string{p.Name, p.Version, p.SourceName, p.SourceVersion}, "\t"))
	}
	slices.Sort(lines)
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
	enc.SetEscapeHTML(false) // keep purls' "&" readable
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
		t.Fatalf("%v (run go test ./analyzers/dpkg -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./analyzers/dpkg -update rewrites it; review the diff):\n%s", file, got)
	}
}

// The real images' packages, compared with what dpkg-query says of the
// same database.
func TestRealImages(t *testing.T) {
	for _, tc := range []struct {
		dir       string
		n         int
		locations []string
	}{
		{"testdata/debian-12-minbase", 88, []string{"/var/lib/dpkg/status"}},
		{"testdata/distroless-style", 2, []string{"/var/lib/dpkg/status.d/base-files", "/var/lib/dpkg/status.d/tzdata"}},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			pkgs, warnings, items := collect(t, sdk.Request{Root: tc.dir, MaxFiles: 1000, MaxFileBytes: 1 << 20})
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			got, want := tsv(pkgs), wantTSV(t, filepath.Join(tc.dir, "want.tsv"))
			if len(want) != tc.n {
				t.Fatalf("want.tsv lists %d installed packages, not %d", len(want), tc.n)
			}
			if !slices.Equal(got, want) {
				t.Errorf("analyzer (-) vs dpkg-query (+):\n%s", diffLines(got, want))
			}
			var locs []string
			for _, p := range pkgs {
				checkPackage(t, p)
				locs = append(locs, p.Locations...)
			}
			slices.Sort(locs)
			if locs = slices.Compact(locs); !slices.Equal(locs, tc.locations) {
				t.Errorf("locations %q, want %q", locs, tc.locations)
			}
			golden(t, tc.dir, items)
		})
	}
}

var archRE = regexp.MustCompile(`^(amd64|all)$`)

// checkPackage checks the fields that want.tsv does not hold.
func checkPackage(t *testing.T, p sdk.Package) {
	t.Helper()
	if p.Ecosystem != "Debian:12" || p.Owner != "" {
		t.Errorf("%s: ecosystem %q, owner %q", p.Name, p.Ecosystem, p.Owner)
	}
	u, err := packageurl.FromString(p.PURL)
	if err != nil {
		t.Fatalf("%s: purl %q: %v", p.Name, p.PURL, err)
	}
	q := u.Qualifiers.Map()
	if u.Type != "deb" || u.Namespace != "debian" || u.Name != p.Name || u.Version != p.Version ||
		q["distro"] != "debian-12" || !archRE.MatchString(q["arch"]) || len(q) != 2 {
		t.Errorf("%s: purl %q = %+v", p.Name, p.PURL, u)
	}
	// purl percent-encodes "+" in names and versions (libstdc++6,
	// 5.2.15-2+b13) and leaves the epoch's ":" alone.
	plus := strings.NewReplacer("+", "%2B")
	want := fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s&distro=debian-12", plus.Replace(p.Name), plus.Replace(p.Version), q["arch"])
	if p.PURL != want {
		t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, want)
	}
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// paragraph returns one real paragraph of the Debian 12 status file, with
// its trailing newline.
func paragraph(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/debian-12-minbase/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	for p := range strings.SplitSeq(string(b), "\n\n") {
		if strings.HasPrefix(p, "Package: "+name+"\n") {
			return strings.TrimSuffix(p, "\n") + "\n"
		}
	}
	t.Fatalf("no paragraph %q", name)
	return ""
}

const osRelease = "ID=debian\nVERSION_ID=\"12\"\n"

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

// Hostile and unusual images: what is reported, and the warnings.
func TestImages(t *testing.T) {
	bash, tzdata := paragraph(t, "bash"), paragraph(t, "tzdata")
	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
		if garbage[i] == '\n' {
			garbage[i] = 0
		}
	}
	garbage[0] = 0xff
	shadow := "root:$y$j9T$SECRET-HASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
	for _, tc := range []struct {
		name     string
		files    map[string]string
		want     []string // package names, in order
		warnings []string // regular expressions, in order
	}{{
		name:  "status is an absolute link to /etc/shadow: the image's shadow is read",
		files: map[string]string{"etc/os-release": osRelease, "var/lib/dpkg/status": "->/etc/shadow", "etc/shadow": shadow},
		warnings: []string{
			`^/var/lib/dpkg/status: malformed paragraphs skipped: 1 \(the first: malformed paragraph 1: no Package field\)$`,
		},
	}, {
		name:  "a status link to /etc/shadow reads the image's file, here a dpkg paragraph",
		files: map[string]string{"etc/os-release": osRelease, "var/lib/dpkg/status": "->/etc/shadow", "etc/shadow": bash},
		want:  []string{"bash"},
	}, {
		name:     "a status link to /etc/shadow in an image without one: nothing, never the host's",
		files:    map[string]string{"etc/os-release": osRelease, "var/lib/dpkg/status": "->/etc/shadow"},
		warnings: []string{`^/var/lib/dpkg/status: skipped: it does not resolve to a file inside the image: .*no such file or directory$`},
	}, {
		name:     "a relative link climbing out of the root stays in it",
		files:    map[string]string{"etc/os-release": osRelease, "var/lib/dpkg/status": "->../../../../../../../../../etc/shadow", "etc/shadow": tzdata},
		want:     []string{"tzdata"},
		warnings: nil,
	}, {
		name:     "a link loop",
		files:    map[string]string{"var/lib/dpkg/status": "->status-old", "var/lib/dpkg/status-old": "->/var/lib/dpkg/status"},
		warnings: []string{`^/var/lib/dpkg/status: skipped: resolve /var/lib/dpkg/status: too many levels of symbolic links$`},
	}, {
		name:     "status.d a link loop",
		files:    map[string]string{"var/lib/dpkg/status.d": "->status.d"},
		warnings: []string{`^/var/lib/dpkg/status.d: skipped: .*too many levels of symbolic links$`},
	}, {
		name:     "status is a directory",
		files:    map[string]string{"var/lib/dpkg/status/": ""},
		warnings: []string{`^/var/lib/dpkg/status: skipped: /var/lib/dpkg/status: not a regular file \(a directory\)$`},
	}, {
		name: "garbage, a paragraph without Package, one without Version, a stray continuation line",
		files: map[string]string{
			"etc/os-release": osRelease,
			"var/lib/dpkg/status": bash + "\n" + string(garbage) + "\n\n" +
				"Version: 1.0\nStatus: install ok installed\n\n" +
				"Package: noversion\nStatus: install ok installed\n\n" +
				" continued\nPackage: x\n\n" +
				"Package: BAD NAME\nVersion: 1\nStatus: install ok installed\n\n" +
				"Package: twice\nPackage: twice\nVersion: 1\nStatus: install ok installed\n\n" +
				tzdata,
		},
		want: []string{"bash", "tzdata"},
		warnings: []string{
			`^/var/lib/dpkg/status: malformed paragraphs skipped: 6 \(the first: malformed paragraph 2: .*\)$`,
		},
	}, {
		name: "not installed: config-files are left out quietly; half-installed and unpacked with a warning",
		files: map[string]string{
			"etc/os-release": osRelease,
			"var/lib/dpkg/status": strings.Replace(bash, "install ok installed", "deinstall ok config-files", 1) + "\n" +
				strings.Replace(tzdata, "install ok installed", "install reinstreq half-installed", 1) + "\n" +
				"Package: unpacked\nVersion: 1\nStatus: install ok unpacked\n\n" +
				"Package: held\nVersion: 1\nStatus: hold ok installed\n\n" +
				"Package: nostatus\nVersion: 1\n",
		},
		want: []string{"held"},
		warnings: []string{
			`^/var/lib/dpkg/status: packages not fully installed, not reported though some of their files may be on disk: 2 \(half-installed: 1, unpacked: 1\)$`,
		},
	}, {
		name: "distroless status.d without Status fields; .md5sums skipped",
		files: map[string]string{
			"etc/os-release":                           "->/usr/lib/os-release",
			"usr/lib/os-release":                       osRelease,
			"var/lib/dpkg/status.d/bash":               strings.Replace(bash, "Status: install ok installed\n", "", 1),
			"var/lib/dpkg/status.d/bash.md5sums":       "0123456789abcdef0123456789abcdef  bin/bash\n",
			"var/lib/dpkg/status.d/tzdata":             tzdata,
			"var/lib/dpkg/status.d/zz-config-files":    "Package: gone\nVersion: 1\nStatus: deinstall ok config-files\n",
			"var/lib/dpkg/status.d/link-to-tzdata":     "->/var/lib/dpkg/status.d/tzdata",
			"var/lib/dpkg/status.d/dangling":           "->/nowhere",
			"var/lib/dpkg/status.d/\xffnot-utf8-named": "Package: oddname\nVersion: 1\n",
		},
		want: []string{"bash", "tzdata", "tzdata", "oddname"},
		warnings: []string{
			`^/var/lib/dpkg/status.d/dangling: skipped: it does not resolve to a file inside the image: .*$`,
		},
	}, {
		name: "a Source field that cannot be parsed",
		files: map[string]string{
			"etc/os-release":      osRelease,
			"var/lib/dpkg/status": strings.Replace(bash, "Source: bash (5.2.15-2)", "Source: bash (5.2.15-2", 1),
		},
		want:     []string{"bash"},
		warnings: []string{`^/var/lib/dpkg/status: packages with a Source field that could not be parsed, reported with the binary package as their source: 1$`},
	}, {
		name:  "no os-release",
		files: map[string]string{"var/lib/dpkg/status": bash},
		want:  []string{"bash"},
		warnings: []string{
			`^: no os-release \(/etc/os-release, /usr/lib/os-release\): dpkg packages are reported as ecosystem "Debian", without a release$`,
		},
	}, {
		name:  "no dpkg database: nothing, not even a warning",
		files: map[string]string{"etc/os-release": osRelease, "lib/apk/db/installed": "P:musl\nV:1.2.5-r0\n"},
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
				if p.Name == "bash" && (p.SourceName != "bash" || p.Version != "5.2.15-2+b13") {
					t.Errorf("bash = %+v", p)
				}
				if p.Name == "oddname" && p.Locations[0] != "/var/lib/dpkg/status.d/\uFFFDnot-utf8-named" {
					t.Errorf("oddname at %q", p.Locations)
				}
			}
		})
	}
}

// A 50 MB status file with a 1 MiB limit is not read at all: the warning
// comes at once and names the file and the limit.
func TestLargeStatusIsSkipped(t *testing.T) {
	root := mkroot(t, map[string]string{"etc/os-release": osRelease})
	status := filepath.Join(root, "var/lib/dpkg/status")
	if err := os.MkdirAll(filepath.Dir(status), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(status)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	pkgs, warnings, _ := collect(t, sdk.Request{Root: root, MaxFiles: 100, MaxFileBytes: 1 << 20})
	want := "/var/lib/dpkg/status: skipped: 52428800 bytes, over the limit of 1048576 bytes per file"
	if len(pkgs) != 0 || len(warnings) != 1 || warnings[0] != want {
		t.Errorf("packages %q, warnings %q; want the warning %q", names(pkgs), warnings, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// Without a limit in the request, the analyzer's own default applies.
func TestDefaultFileLimit(t *testing.T) {
	root := mkroot(t, map[string]string{"var/lib/dpkg/status.d/x": ""})
	if err := os.Truncate(filepath.Join(root, "var/lib/dpkg/status.d/x"), dpkg.DefaultMaxFileBytes+1); err != nil {
		t.Fatal(err)
	}
	_, warnings, _ := collect(t, sdk.Request{Root: root})
	if len(warnings) != 1 || !strings.Contains(warnings[0], fmt.Sprintf("over the limit of %d bytes", dpkg.DefaultMaxFileBytes)) {
		t.Errorf("warnings %q", warnings)
	}
}

func TestStatusDirFileLimit(t *testing.T) {
	files := map[string]string{"etc/os-release": osRelease}
	for i := range 10 {
		files[fmt.Sprintf("var/lib/dpkg/status.d/p%d", i)] = fmt.Sprintf("Package: p%d\nVersion: 1\n", i)
	}
	pkgs, warnings, _ := collect(t, sdk.Request{Root: mkroot(t, files), MaxFiles: 4, MaxFileBytes: 1 << 20})
	want := "/var/lib/dpkg/status.d: more than 4 entries: only the first 4 (in directory order) were looked at"
	if len(pkgs) != 4 || len(warnings) != 1 || warnings[0] != want {
		t.Errorf("packages %q, warnings %q", names(pkgs), warnings)
	}
}

// Warnings are bounded: a status.d of many dangling links gives 100 of
// them and a count of the rest.
func TestWarningsAreBounded(t *testing.T) {
	files := map[string]string{}
	for i := range 150 {
		files[fmt.Sprintf("var/lib/dpkg/status.d/p%03d", i)] = "->/nowhere"
	}
	_, warnings, _ := collect(t, sdk.Request{Root: mkroot(t, files), MaxFiles: 1000})
	if len(warnings) != 101 || warnings[100] != ": warnings not sent (at most 100 per analysis): 50 more" {
		t.Errorf("%d warnings, the last %q", len(warnings), warnings[len(warnings)-1])
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
	err := dpkg.Analyzer{}.Analyze(ctx, sdk.Request{Root: "testdata/debian-12-minbase"}, emitter{onPackage: func(sdk.Package) error {
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
	err := dpkg.Analyzer{}.Analyze(t.Context(), sdk.Request{Root: "testdata/debian-12-minbase"}, emitter{onPackage: func(sdk.Package) error {
		n++
		return errGone
	}})
	if !errors.Is(err, errGone) || n != 1 {
		t.Errorf("Analyze = %v after %d packages", err, n)
	}
}

func TestMissingRoot(t *testing.T) {
	err := dpkg.Analyzer{}.Analyze(t.Context(), sdk.Request{Root: filepath.Join(t.TempDir(), "none")}, emitter{})
	if err == nil || !strings.HasPrefix(err.Error(), "dpkg: ") {
		t.Errorf("Analyze of a missing root = %v", err)
	}
}

// A FIFO where the status file should be is never opened (that would block
// until a writer came) and is reported.
func TestFIFOStatus(t *testing.T) {
	root := mkroot(t, map[string]string{"var/lib/dpkg/": ""})
	if err := syscall.Mkfifo(filepath.Join(root, "var/lib/dpkg/status"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, warnings, _ := collect(t, sdk.Request{Root: root})
	if len(warnings) != 1 || !strings.HasSuffix(warnings[0], "not a regular file (a FIFO)") {
		t.Errorf("warnings %q", warnings)
	}
}

// The shared Debian 12 image's 88 packages, in process (no gRPC).
func BenchmarkAnalyzeDebian12(b *testing.B) {
	n := 0
	e := emitter{onPackage: func(sdk.Package) error { n++; return nil }}
	for b.Loop() {
		if err := (dpkg.Analyzer{}).Analyze(b.Context(), sdk.Request{Root: "testdata/debian-12-minbase"}, e); err != nil {
			b.Fatal(err)
		}
	}
	if n != 88*b.N {
		b.Fatalf("%d packages in %d runs", n, b.N)
	}
}
