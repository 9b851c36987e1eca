package java

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

var imageDir = filepath.Join("testdata", "image")

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

// recorder is an sdk.Emitter that keeps what it is sent, for the tests
// that call analyze directly (with their own limits).
type recorder struct {
	pkgs     []sdk.Package
	warnings []sdk.Warning
}

func (r *recorder) Package(p sdk.Package) error { r.pkgs = append(r.pkgs, p); return nil }
func (r *recorder) Finding(sdk.Finding) error   { return errors.New("no findings expected") }
func (r *recorder) Warning(w sdk.Warning) error { r.warnings = append(r.warnings, w); return nil }

// run analyzes dir with lim, in process.
func run(t *testing.T, dir string, lim limits) (*recorder, stats) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rec := &recorder{}
	st, err := analyze(t.Context(), root, lim, rec)
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	for _, p := range rec.pkgs {
		if err := p.Validate(); err != nil {
			t.Errorf("invalid package %+v: %v", p, err)
		}
	}
	return rec, st
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, Analyzer{})
}

func TestDescribe(t *testing.T) {
	d, err := sdktest.Connect(t, Analyzer{}).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "java" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Equal(d.Ecosystems, []string{"Maven"}) ||
		d.Resources != (sdk.Resources{MemoryBytes: 512 << 20, Pids: 16, Timeout: 10 * time.Minute}) {
		t.Errorf("Describe = %+v", d)
	}
}

// wantRow is one line of testdata/want.tsv.
type wantRow struct {
	loc, name, version, source string
}

// readWant reads testdata/want.tsv, which testdata/want.sh made with
// unzip and awk (see testdata/README.md).
func readWant(t *testing.T) []wantRow {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "want.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []wantRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) != 4 {
			t.Fatalf("want.tsv: line %q", sc.Text())
		}
		want = append(want, wantRow{fs[0], fs[1], fs[2], fs[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) < 10 {
		t.Fatalf("want.tsv has only %d lines", len(want))
	}
	return want
}

// The real Debian jars, and the war, ear, Spring Boot and shaded jars
// built from them: exactly the packages unzip finds (want.tsv), each once,
// with its purl, and one warning, about the one jar that names nothing.
func TestImage(t *testing.T) {
	want := readWant(t)
	var wantLines []string
	manifestOnly := 0
	for _, w := range want {
		wantLines = append(wantLines, w.loc+"\t"+w.name+"\t"+w.version)
		if w.source == "manifest" {
			manifestOnly++
		}
	}
	pkgs, warnings := collect(t, sdk.Request{Root: imageDir, MaxFiles: 1000, MaxFileBytes: 1 << 20})
	var got []string
	for _, p := range pkgs {
		if len(p.Locations) != 1 {
			t.Fatalf("%s: locations %q", p.Name, p.Locations)
		}
		got = append(got, p.Locations[0]+"\t"+p.Name+"\t"+p.Version)
		if p.Ecosystem != "Maven" {
			t.Errorf("%s: ecosystem %q", p.Name, p.Ecosystem)
		}
		g, a, _ := strings.Cut(p.Name, ":")
		if w := "pkg:maven/" + g + "/" + a + "@" + p.Version; p.PURL != w {
			t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, w)
		}
		// The archive of the image exists there.
		top, _, _ := strings.Cut(p.Locations[0], "!/")
		if fi, err := os.Lstat(filepath.Join(imageDir, top)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: location %s: %v", p.Name, top, err)
		}
	}
	if len(got) != len(slices.Compact(slices.Sorted(slices.Values(got)))) {
		t.Errorf("duplicate packages: %q", got)
	}
	slices.Sort(got)
	if !slices.Equal(got, wantLines) {
		t.Errorf("packages\n%s\nwant (unzip)\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	// hamcrest-integration has neither pom.properties nor a name in its
	// manifest (only Manifest-Version).
	if len(warnings) != 1 || warnings[0].Path != "/usr/share/java/hamcrest-integration-1.3.1-SNAPSHOT.jar" ||
		!strings.Contains(warnings[0].Message, "no package reported") {
		t.Errorf("warnings %+v", warnings)
	}

	_, st := run(t, imageDir, newLimits(sdk.Request{MaxFiles: 1000, MaxFileBytes: 1 << 20}))
	if st.FromManifest != manifestOnly || st.Unidentified != 1 || st.Malformed != 0 || st.Refused != 0 {
		t.Errorf("stats %+v, want %d from manifests", st, manifestOnly)
	}
	// 11 regular archives in the image (the 6 links lead to some of
	// them); nested: 2 jars in shop.war, 2 in orders.jar, and in shop.ear
	// a jar, the war and the war's 2 jars.
	if st.Archives != 11 || st.Nested != 8 {
		t.Errorf("archives %d, nested %d; want 11 and 8", st.Archives, st.Nested)
	}
}

func TestIsArchive(t *testing.T) {
	for name, want := range map[string]bool{
		"a.jar": true, "A.JAR": true, "x/y.war": true, "z.ear": true, "p.jpi": true, "p.hpi": true,
		"p.par": true, "s.sar": true, "a.jar.sha1": false, "jar": false, "a.zip": false, "a.rar": false,
		"META-INF/MANIFEST.MF": false,
	} {
		if got := IsArchive(name); got != want {
			t.Errorf("IsArchive(%q) = %v", name, got)
		}
	}
}

func TestCoordinates(t *testing.T) {
	c := Coordinates{GroupID: "org.apache.logging.log4j", ArtifactID: "log4j-core", Version: "2.14.1"}
	if c.Name() != "org.apache.logging.log4j:log4j-core" || c.PURL() != "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" {
		t.Errorf("name %q, purl %q", c.Name(), c.PURL())
	}
	// A version with '+' (allowed by Maven) is escaped in the purl.
	c = Coordinates{GroupID: "g", ArtifactID: "a", Version: "1.0+build.5"}
	if c.PURL() != "pkg:maven/g/a@1.0%2Bbuild.5" {
		t.Errorf("purl %q", c.PURL())
	}
}

// The walk stops after MaxFiles entries, in lexical order: ".", "app",
// "app/orders.jar" (read, with its nested jars), "opt", "opt/tool".
func TestMaxFiles(t *testing.T) {
	pkgs, warnings := collect(t, sdk.Request{Root: imageDir, MaxFiles: 5, MaxFileBytes: 1 << 20})
	for _, p := range pkgs {
		if !strings.HasPrefix(p.Locations[0], "/app/orders.jar") {
			t.Errorf("package %+v read after the limit", p)
		}
	}
	if len(pkgs) != 3 || len(warnings) != 1 || !strings.Contains(warnings[0].Message, "more than 5 entries") {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Analyzer{}.Analyze(ctx, sdk.Request{Root: imageDir}, &recorder{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
}
