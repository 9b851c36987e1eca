package java

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

var imageDir = filepath.Join("testdata", "image")

// split returns the packages and warnings among items, and fails the
// test on anything else an extractor of packages must not send.
func split(t *testing.T, items []sdk.Item) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	for _, it := range items {
		if it.Extractor != "" && it.Extractor != Name {
			t.Errorf("item of extractor %q: %+v", it.Extractor, it)
		}
		switch {
		case it.Package != nil:
			pkgs = append(pkgs, *it.Package)
		case it.Warning != nil:
			warnings = append(warnings, *it.Warning)
		case it.Entries != nil, it.LayerEnd != nil:
		default:
			t.Errorf("unexpected item %+v", it)
		}
	}
	return pkgs, warnings
}

// extract streams layer through e and returns its packages and warnings.
func extract(t *testing.T, layer []byte, e *Extractor) ([]sdk.Package, []sdk.Warning) {
	t.Helper()
	return split(t, sdktest.Extract(t, layer, e))
}

// tarEntry is one entry of a layer built by a test.
type tarEntry struct {
	name string
	data []byte
	typ  byte   // tar.TypeReg when zero
	link string // of a link
}

// makeLayer builds a layer tar.
func makeLayer(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, NewExtractor())
}

func TestExtractor(t *testing.T) {
	e := NewExtractor()
	if e.Name() != "java" || e.Version() != "0.2.0" || e.MaxFileBytes() != 64<<20 {
		t.Errorf("name %q, version %q, max %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
	if e2 := NewExtractor(); e2 == e {
		t.Error("NewExtractor returned the same instance twice")
	}
	for _, tc := range []struct {
		f    sdk.FileInfo
		want bool
	}{
		{sdk.FileInfo{Path: "/usr/share/java/a.jar", Mode: 0o644}, true},
		{sdk.FileInfo{Path: "/srv/APP.WAR", Mode: 0o600}, true},
		{sdk.FileInfo{Path: "/opt/x.ear", Mode: 0o644}, true},
		{sdk.FileInfo{Path: "/var/jenkins/plugins/git.hpi", Mode: 0o644}, true},
		{sdk.FileInfo{Path: "/proc.jar", Mode: 0o644}, true},
		{sdk.FileInfo{Path: "/usr/share/java/a.jar", Mode: fs.ModeSymlink | 0o777, LinkTarget: "b.jar"}, false},
		{sdk.FileInfo{Path: "/usr/share/java/a.jar.sha1", Mode: 0o644}, false},
		{sdk.FileInfo{Path: "/srv/a.zip", Mode: 0o644}, false},
		{sdk.FileInfo{Path: "/proc/1/root/x.jar", Mode: 0o644}, false},
		{sdk.FileInfo{Path: "/sys/x.jar", Mode: 0o644}, false},
		{sdk.FileInfo{Path: "/dev/x.jar", Mode: 0o644}, false},
	} {
		if got := e.Required(tc.f); got != tc.want {
			t.Errorf("Required(%+v) = %v", tc.f, got)
		}
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
// built from them, as one layer: exactly the packages unzip finds
// (want.tsv), each once, with its purl, and one warning, about the one
// jar that names nothing.
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
	e := NewExtractor().(*Extractor)
	pkgs, warnings := split(t, sdktest.ExtractDir(t, imageDir, e))
	var got []string
	for _, p := range pkgs {
		if len(p.Locations) != 1 {
			t.Fatalf("%s: locations %q", p.Name, p.Locations)
		}
		got = append(got, p.Locations[0]+"\t"+p.Name+"\t"+p.Version)
		if p.Ecosystem != "Maven" || p.Owner != "" || p.OS != "" {
			t.Errorf("%s: ecosystem %q, owner %q, os %q", p.Name, p.Ecosystem, p.Owner, p.OS)
		}
		g, a, _ := strings.Cut(p.Name, ":")
		if w := "pkg:maven/" + g + "/" + a + "@" + p.Version; p.PURL != w {
			t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, w)
		}
		// The archive of the image is a regular file there.
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
	st := e.stats
	if st.FromManifest != manifestOnly || st.Unidentified != 1 || st.Malformed != 0 || st.Refused != 0 || st.Packages != len(want) {
		t.Errorf("stats %+v, want %d from manifests, %d packages", st, manifestOnly, len(want))
	}
	// 11 regular archives in the image (the 6 links, never offered, lead
	// to some of them); nested: 2 jars in shop.war, 2 in orders.jar, and
	// in shop.ear a jar, the war and the war's 2 jars.
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

// recorder is an sdk.Output that keeps what it is sent, for the tests
// that call the extractor or readArchive directly.
type recorder struct {
	pkgs     []sdk.Package
	warnings []sdk.Warning
}

func (r *recorder) Package(p sdk.Package) error     { r.pkgs = append(r.pkgs, p); return nil }
func (r *recorder) Finding(sdk.Finding) error       { return errors.New("no findings expected") }
func (r *recorder) Warning(w sdk.Warning) error     { r.warnings = append(r.warnings, w); return nil }
func (r *recorder) OwnedFiles(sdk.OwnedFiles) error { return errors.New("no owned files expected") }
func (r *recorder) OSRelease(sdk.OSRelease) error   { return errors.New("no os-release expected") }

// A cancelled context stops the layer, and Extract itself.
func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sdktest.ExtractErr(ctx, sdktest.TarDir(t, imageDir), sdk.LayerLimits{}, NewExtractor()); err == nil {
		t.Error("a cancelled extraction succeeded")
	}
	jar := readFile(t, javaJar("slf4j-api.jar"))
	rec := &recorder{}
	err := NewExtractor().Extract(ctx, sdk.FileInfo{Path: "/a.jar", Mode: 0o644, Size: int64(len(jar))}, bytes.NewReader(jar), rec)
	if !errors.Is(err, context.Canceled) || len(rec.pkgs) != 0 {
		t.Errorf("Extract = %v, packages %+v; want context.Canceled and none", err, rec.pkgs)
	}
}

// A stream shorter than the size the layer states is an error (the
// framework makes it a warning about the file), and nothing is reported.
func TestShortStream(t *testing.T) {
	jar := readFile(t, javaJar("slf4j-api.jar"))
	rec := &recorder{}
	err := NewExtractor().Extract(t.Context(), sdk.FileInfo{Path: "/a.jar", Mode: 0o644, Size: int64(len(jar)) + 10}, bytes.NewReader(jar), rec)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(rec.pkgs) != 0 {
		t.Errorf("Extract = %v, packages %+v", err, rec.pkgs)
	}
}

// The framework's file size cap: the default, and a request's override.
func TestMaxFileBytes(t *testing.T) {
	jar := readFile(t, javaJar("slf4j-api.jar"))
	layer := makeLayer(t, tarEntry{name: "a.jar", data: jar})
	items, err := sdktest.ExtractErr(t.Context(), layer, sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: int64(len(jar)) - 1}}, NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := split(t, items)
	if len(pkgs) != 0 || len(warnings) != 1 || warnings[0].Path != "/a.jar" || !strings.Contains(warnings[0].Message, "skipped") {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
	}
	pkgs, warnings = extract(t, layer, NewExtractor().(*Extractor))
	if got := pkgLines(pkgs); !slices.Equal(got, []string{"/a.jar org.slf4j:slf4j-api 1.7.32"}) || len(warnings) != 0 {
		t.Errorf("packages %q, warnings %+v", got, warnings)
	}
}
