package apk_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/apk"
	"github.com/assayhq/assay/analyzers/distro"
	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite the golden want.json files from the extractor's output")

const realRoot = "testdata/trivy-fixture"

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, apk.NewExtractor())
}

func TestIdentity(t *testing.T) {
	e := apk.NewExtractor()
	if e.Name() != "apk" || e.Version() != "0.2.0" || e.MaxFileBytes() != apk.DefaultMaxFileBytes || apk.DefaultMaxFileBytes != 64<<20 {
		t.Errorf("extractor %q %q, max %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
}

// release parses the os-release of a testdata root, as the image merge
// would.
func release(t *testing.T, root string) (osrelease.Release, bool) {
	t.Helper()
	for _, p := range osrelease.Paths {
		f, err := os.Open(filepath.Join(root, p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		kv, err := osrelease.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		rel := osrelease.FromFields(kv)
		rel.Path = p
		return rel, true
	}
	return osrelease.Release{}, false
}

// finish checks what the extractor leaves to the merge and lets
// distro.Finish complete the packages.
func finish(t *testing.T, items []sdk.Item, rel osrelease.Release, found bool) []sdk.Item {
	t.Helper()
	var out []sdk.Item
	for _, it := range items {
		if it.Package != nil {
			p := *it.Package
			if p.OS != "apk" || p.Ecosystem != "Alpine" || p.PURL != "" || p.Owner != "" || p.Epoch != 0 {
				t.Errorf("%s: as extracted %+v", p.Name, p)
			}
			if w := distro.Finish(&p, rel, found); w != "" && found {
				t.Errorf("%s: distro.Finish: %s", p.Name, w)
			}
			it.Package = &p
		}
		out = append(out, it)
	}
	return out
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
		if a := u.Qualifiers.Map()["arch"]; a != p.Arch {
			t.Errorf("%s: arch %q, purl's %q", p.Name, p.Arch, a)
		}
		lines = append(lines, strings.Join([]string{p.Name, p.Version, p.SourceName, u.Qualifiers.Map()["arch"]}, "\t"))
	}
	return lines
}

// golden compares the packages and warnings of items with dir/want.json,
// or rewrites it under -update. The packages are written with the fields
// the tree analyzer had, so that the file still says what it said.
func golden(t *testing.T, dir string, items []sdk.Item) {
	t.Helper()
	type pkg struct {
		Ecosystem     string
		Name          string
		Version       string
		PURL          string
		SourceName    string
		SourceVersion string
		Owner         string
		Locations     []string
	}
	type item struct {
		Package *pkg         `json:",omitempty"`
		Warning *sdk.Warning `json:",omitempty"`
	}
	var list []item
	for _, it := range items {
		switch {
		case it.Package != nil:
			p := it.Package
			list = append(list, item{Package: &pkg{p.Ecosystem, p.Name, p.Version, p.PURL, p.SourceName, p.SourceVersion, p.Owner, p.Locations}})
		case it.Warning != nil:
			list = append(list, item{Warning: it.Warning})
		}
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

// checkItems checks that every item is valid and of a kind the extractor
// or the framework sends.
func checkItems(t *testing.T, items []sdk.Item) {
	t.Helper()
	for _, it := range items {
		if err := it.Validate(); err != nil {
			t.Fatalf("invalid item %+v: %v", it, err)
		}
		if it.Finding != nil || it.OSRelease != nil {
			t.Fatalf("unexpected item %+v", it)
		}
	}
}

// The real database's packages, compared exactly (and in order) with an
// awk reading of the same file, once the merge's distro.Finish has named
// the release.
func TestRealDatabase(t *testing.T) {
	items := sdktest.ExtractDir(t, realRoot, apk.NewExtractor())
	checkItems(t, items)
	rel, found := release(t, realRoot)
	if !found {
		t.Fatal("no os-release in the testdata")
	}
	items = finish(t, items, rel, found)
	var warnings []string
	for _, w := range sdktest.Warnings(items) {
		warnings = append(warnings, w.Path+": "+w.Message)
	}
	// trivy's fixture holds one paragraph without V:.
	wantWarnings := []string{"/lib/apk/db/installed: malformed paragraphs skipped: 1 (the first: malformed paragraph 2: no V: (version) field)"}
	if !slices.Equal(warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", warnings, wantWarnings)
	}
	pkgs := sdktest.Packages(items)
	got, want := tsv(t, pkgs), wantTSV(t, filepath.Join(realRoot, "want.tsv"))
	if len(want) != 15 {
		t.Fatalf("want.tsv lists %d packages, not 15", len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("extractor:\n%s\nawk:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range pkgs {
		if p.Ecosystem != "Alpine:v3.15" || p.Owner != "" || !slices.Equal(p.Locations, []string{"/lib/apk/db/installed"}) {
			t.Errorf("%s: ecosystem %q, owner %q, locations %q", p.Name, p.Ecosystem, p.Owner, p.Locations)
		}
		want := fmt.Sprintf("pkg:apk/alpine/%s@%s?arch=x86_64&distro=alpine-3.15.4", p.Name, p.Version)
		if p.PURL != want {
			t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, want)
		}
	}
	golden(t, realRoot, items)
}

// owned returns the paths each package owns according to items, and
// checks the fields of the OwnedFiles.
func owned(t *testing.T, items []sdk.Item) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, it := range items {
		if o := it.Owned; o != nil {
			if o.OS != "apk" || o.Location != "/lib/apk/db/installed" || len(o.Paths) == 0 {
				t.Errorf("owned files %+v", o)
			}
			got[o.Owner] = append(got[o.Owner], o.Paths...)
		}
	}
	return got
}

// The file lists of the real database: per package, what a plain reading
// of its F: and R: lines gives (split on blank lines, F: sets the
// directory, R: adds a file), and a few files named by hand.
func TestRealFileLists(t *testing.T) {
	items := sdktest.ExtractDir(t, realRoot, apk.NewExtractor())
	got := owned(t, items)
	b, err := os.ReadFile(filepath.Join(realRoot, "lib/apk/db/installed"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	total := 0
	for para := range strings.SplitSeq(string(b), "\n\n") {
		name, dir, hasVersion := "", "", false
		var files []string
		for l := range strings.SplitSeq(para, "\n") {
			switch {
			case strings.HasPrefix(l, "P:"):
				name = l[2:]
			case strings.HasPrefix(l, "V:"):
				hasVersion = true
			case strings.HasPrefix(l, "F:"):
				dir = l[2:]
			case strings.HasPrefix(l, "R:"):
				files = append(files, "/"+dir+"/"+l[2:])
			}
		}
		if name != "" && hasVersion && len(files) > 0 {
			want[name] = files
			total += len(files)
		}
	}
	if total != 76 { // grep -c '^R:'
		t.Fatalf("the plain reading found %d files, want 76", total)
	}
	if len(got) != len(want) {
		t.Errorf("%d packages own files, want %d", len(got), len(want))
	}
	for name, files := range want {
		if !slices.Equal(got[name], files) {
			t.Errorf("%s owns\n%q\nwant\n%q", name, got[name], files)
		}
	}
	for name, file := range map[string]string{"musl": "/lib/ld-musl-x86_64.so.1", "busybox": "/bin/busybox"} {
		if !slices.Contains(got[name], file) {
			t.Errorf("%s does not own %s: %q", name, file, got[name])
		}
	}
	// Each package's files come right after it.
	last := ""
	for _, it := range items {
		switch {
		case it.Package != nil:
			last = it.Package.Name
		case it.Owned != nil && it.Owned.Owner != last:
			t.Errorf("files of %s after the package %s", it.Owned.Owner, last)
		}
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

// entry is one member of a hand-built layer.
type entry struct {
	name string
	typ  byte // tar.TypeReg when 0
	body string
	link string
}

// layer builds a tar layer of entries, in order.
func layer(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func names(pkgs []sdk.Package) []string {
	var n []string
	for _, p := range pkgs {
		n = append(n, p.Name)
	}
	return n
}

const db = "lib/apk/db/installed"

// Hostile and unusual layers: what is reported, and the warnings.
func TestLayers(t *testing.T) {
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
		entries  []entry
		want     []string // package names, in order
		warnings []string // regular expressions, in order
	}{{
		name:    "installed is a link to /etc/shadow: never followed, nothing read",
		entries: []entry{{name: "etc/shadow", body: musl}, {name: db, typ: tar.TypeSymlink, link: "/etc/shadow"}},
	}, {
		name:    "installed is a relative link: never followed",
		entries: []entry{{name: "lib/apk/db/installed.old", body: musl}, {name: db, typ: tar.TypeSymlink, link: "installed.old"}},
	}, {
		name:    "installed is a hard link to shadow: not a regular file entry, not read",
		entries: []entry{{name: "etc/shadow", body: shadow}, {name: db, typ: tar.TypeLink, link: "etc/shadow"}},
	}, {
		name:    "installed is a directory",
		entries: []entry{{name: db + "/", typ: tar.TypeDir}, {name: db + "/x", body: musl}},
	}, {
		name:    "installed is a FIFO",
		entries: []entry{{name: db, typ: tar.TypeFifo}},
	}, {
		name: "databases in other directories are not apk's",
		entries: []entry{
			{name: "usr/lib/apk/db/installed", body: musl},
			{name: "srv/lib/apk/db/installed", body: musl},
			{name: "lib/apk/db/installed.old", body: musl},
			{name: "lib/apk/db/scripts.tar", body: musl},
		},
	}, {
		name:    "a name with ./ and .. is cleaned by the framework",
		entries: []entry{{name: "./lib/../lib/apk/db/installed", body: musl}},
		want:    []string{"musl"},
	}, {
		name:    "the shadow file's content where the database is: no package, no quote",
		entries: []entry{{name: db, body: shadow}},
		warnings: []string{
			`^/lib/apk/db/installed: malformed paragraphs skipped: 1 \(the first: malformed paragraph 1: a line is not "K:value"\)$`,
		},
	}, {
		name: "garbage, paragraphs without P or V, duplicated and invalid fields",
		entries: []entry{{name: db, body: musl + "\n" + string(garbage) + "\n\n" +
			"V:1.0\nA:x86_64\n\n" +
			"P:noversion\nA:x86_64\n\n" +
			"P:twice\nP:twice\nV:1\n\n" +
			"P:bad name\nV:1\n\n" +
			"P:x\nV:\n\n" +
			"P:y\n V:1\n\n" +
			"P:long\nT:" + strings.Repeat("x", apk.MaxLineBytes+1) + "\nV:1\n\n" +
			"P:SECRET\nV:1\xff\n\n" +
			zlib}},
		want: []string{"musl", "zlib"},
		warnings: []string{
			`^/lib/apk/db/installed: malformed paragraphs skipped: 9 \(the first: malformed paragraph 2: .*\)$`,
		},
	}, {
		name:    "several blank lines between, CRLF, no final newline, no o: or A:",
		entries: []entry{{name: db, body: "\n\nP:a\r\nV:1-r0\r\n\r\n\n\nP:b\nV:2-r1"}},
		want:    []string{"a", "b"},
	}, {
		name:    "file entries that name no file",
		entries: []entry{{name: db, body: "P:a\nV:1\nR:before-any-dir\nF:usr/../../etc\nR:shadow\nF:usr/bin\nR:ok\nR:../../etc/SECRET\nR:.\nR:\x01\nR:\xff\n"}},
		want:    []string{"a"},
		warnings: []string{
			`^/lib/apk/db/installed: file entries \(R:\) that name no file skipped: 6$`,
		},
	}, {
		name:    "the database twice in one layer: both read",
		entries: []entry{{name: db, body: musl}, {name: db, body: zlib}},
		want:    []string{"musl", "zlib"},
	}, {
		name:    "no apk database: nothing, not even a warning",
		entries: []entry{{name: "var/lib/dpkg/status", body: "Package: bash\nVersion: 1\n"}, {name: "etc/os-release", body: "ID=alpine\n"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			items := sdktest.Extract(t, layer(t, tc.entries...), apk.NewExtractor())
			checkItems(t, items)
			if got := names(sdktest.Packages(items)); !slices.Equal(got, tc.want) {
				t.Errorf("packages %q, want %q", got, tc.want)
			}
			var warnings []string
			for _, w := range sdktest.Warnings(items) {
				warnings = append(warnings, w.Path+": "+w.Message)
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
			for _, p := range sdktest.Packages(items) {
				switch p.Name {
				case "musl":
					if p.SourceName != "musl" || p.Version != "1.1.14-r10" || p.Arch != "x86_64" {
						t.Errorf("musl = %+v", p)
					}
				case "a":
					if p.SourceName != "a" || p.SourceVersion != p.Version || p.Arch != "" {
						t.Errorf("a = %+v", p)
					}
				}
			}
			for owner, paths := range owned(t, items) {
				if owner == "a" && !slices.Equal(paths, []string{"/usr/bin/ok"}) {
					t.Errorf("a owns %q", paths)
				}
			}
		})
	}
}

// A database over the extractor's limit is not read: the framework's
// warning names it and the limit.
func TestLargeDatabaseIsSkipped(t *testing.T) {
	body := paragraph(t, "musl") + "\n" + strings.Repeat("#", 2<<20)
	items, err := sdktest.ExtractErr(t.Context(), layer(t, entry{name: db, body: body}), sdk.LayerLimits{MaxFileBytes: map[string]int64{"apk": 1 << 20}}, apk.NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	w := sdktest.Warnings(items)
	if len(sdktest.Packages(items)) != 0 || len(w) != 1 || w[0].Path != "/"+db || !strings.Contains(w[0].Message, fmt.Sprintf("%d bytes, more than the %d", len(body), 1<<20)) {
		t.Errorf("packages %q, warnings %+v", names(sdktest.Packages(items)), w)
	}
}

// A hostile file list (a package with more files than a layer may list,
// or with paths that add up to more bytes than that) is cut at the limit,
// with one warning that counts what was left out; the packages are all
// reported.
func TestFileListLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		paths  int
		detail string
	}{{
		name:  "count",
		body:  "P:many\nV:1\nF:usr/bin\n" + strings.Repeat("R:f\n", apk.MaxOwnedPaths+10) + "\nP:after\nV:1\nF:x\nR:y\n",
		paths: apk.MaxOwnedPaths, detail: "11 files over the limit",
	}, {
		name: "bytes",
		// Each path is about 4 KiB: the byte limit comes first.
		body:  "P:long\nV:1\nF:" + strings.Repeat("d", 4000) + "\n" + strings.Repeat("R:file\n", 10_000),
		paths: apk.MaxOwnedBytes / (4000 + len("//file")), detail: "files over the limit",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			items := sdktest.Extract(t, layer(t, entry{name: db, body: tc.body}), apk.NewExtractor())
			checkItems(t, items)
			n, size := 0, 0
			for _, it := range items {
				if it.Owned != nil {
					n += len(it.Owned.Paths)
					for _, p := range it.Owned.Paths {
						size += len(p)
					}
					if len(it.Owned.Paths) > 10_000 || size > apk.MaxOwnedBytes {
						t.Fatalf("an OwnedFiles of %d paths, %d bytes in all", len(it.Owned.Paths), size)
					}
				}
			}
			if n != tc.paths {
				t.Errorf("%d paths, want %d", n, tc.paths)
			}
			w := sdktest.Warnings(items)
			if len(w) != 1 || !strings.Contains(w[0].Message, tc.detail) {
				t.Errorf("warnings %+v", w)
			}
			if tc.name == "count" && !slices.Equal(names(sdktest.Packages(items)), []string{"many", "after"}) {
				t.Errorf("packages %q", names(sdktest.Packages(items)))
			}
		})
	}
}

// output is an sdk.Output that counts packages and may fail or cancel.
type output struct {
	onPackage func(sdk.Package) error
}

func (o output) Package(p sdk.Package) error   { return o.onPackage(p) }
func (output) Finding(sdk.Finding) error       { return nil }
func (output) Warning(sdk.Warning) error       { return nil }
func (output) OwnedFiles(sdk.OwnedFiles) error { return nil }
func (output) OSRelease(sdk.OSRelease) error   { return nil }

func realFile(t *testing.T) (sdk.FileInfo, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(realRoot, db))
	if err != nil {
		t.Fatal(err)
	}
	return sdk.FileInfo{Path: "/" + db, Mode: 0o644, Size: int64(len(b))}, b
}

// Cancellation during the extraction stops it at the next paragraph.
func TestCancellationStopsTheExtraction(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fi, b := realFile(t)
	n := 0
	err := apk.NewExtractor().Extract(ctx, fi, bytes.NewReader(b), output{onPackage: func(sdk.Package) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Errorf("Extract = %v after %d packages; want context.Canceled after 3", err, n)
	}
	// A layer whose context is cancelled is not read.
	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	if _, err := sdktest.ExtractErr(cctx, sdktest.TarDir(t, realRoot), sdk.LayerLimits{}, apk.NewExtractor()); err == nil {
		t.Error("a cancelled extraction succeeded")
	}
}

// An output error (the host gone) stops the extraction and is returned.
func TestOutputErrorStops(t *testing.T) {
	errGone := errors.New("host gone")
	fi, b := realFile(t)
	n := 0
	err := apk.NewExtractor().Extract(t.Context(), fi, bytes.NewReader(b), output{onPackage: func(sdk.Package) error {
		n++
		return errGone
	}})
	if !errors.Is(err, errGone) || n != 1 {
		t.Errorf("Extract = %v after %d packages", err, n)
	}
}

// A read error of the stream is a warning that says how far it got.
func TestReadErrorIsAWarning(t *testing.T) {
	fi, b := realFile(t)
	var warnings []sdk.Warning
	out := warnOutput{warn: func(w sdk.Warning) { warnings = append(warnings, w) }}
	err := apk.NewExtractor().Extract(t.Context(), fi, io.MultiReader(bytes.NewReader(b[:len(b)/2]), errReader{}), out)
	if err != nil || len(warnings) == 0 || !strings.Contains(warnings[len(warnings)-1].Message, "read cut short after") {
		t.Errorf("Extract = %v, warnings %+v", err, warnings)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken stream") }

type warnOutput struct {
	output
	warn func(sdk.Warning)
}

func (o warnOutput) Package(sdk.Package) error   { return nil }
func (o warnOutput) Warning(w sdk.Warning) error { o.warn(w); return nil }
