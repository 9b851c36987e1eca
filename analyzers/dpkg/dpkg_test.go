package dpkg_test

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/distro"
	"github.com/assayhq/assay/analyzers/dpkg"
	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, dpkg.NewExtractor())
}

func TestIdentity(t *testing.T) {
	e := dpkg.NewExtractor()
	if e.Name() != "dpkg" || e.Version() != "0.2.0" || e.MaxFileBytes() != dpkg.DefaultMaxFileBytes {
		t.Errorf("extractor %q %q, max %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
	if e == dpkg.NewExtractor() {
		t.Error("NewExtractor returned the same instance twice")
	}
}

// Required offers regular files only: a link is never read, wherever it
// points.
func TestRequired(t *testing.T) {
	e := dpkg.NewExtractor()
	for _, tc := range []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{"/var/lib/dpkg/status", 0o644, true},
		{"/var/lib/dpkg/status.d/base-files", 0o644, true},
		{"/var/lib/dpkg/status.d/base-files.md5sums", 0o644, false},
		{"/var/lib/dpkg/info/libzstd1:amd64.list", 0o644, true},
		{"/var/lib/dpkg/info/libzstd1:amd64.md5sums", 0o644, false},
		{"/var/lib/dpkg/status", fs.ModeSymlink | 0o777, false},
		{"/var/lib/dpkg/status.d/base-files", fs.ModeSymlink | 0o777, false},
		{"/var/lib/dpkg/info/x.list", fs.ModeSymlink | 0o777, false},
		{"/var/lib/dpkg/status.d", 0o644, false},
		{"/var/lib/dpkg/status.d/sub/x", 0o644, false},
	} {
		if got := e.Required(sdk.FileInfo{Path: tc.path, Mode: tc.mode, LinkTarget: "/etc/shadow"}); got != tc.want {
			t.Errorf("Required(%s, %v) = %v", tc.path, tc.mode, got)
		}
	}
}

// entry is one tar entry of a hand-built layer: a regular file unless
// link (a symbolic link), hard (a hard link) or typ is set.
type entry struct {
	name, body string
	link, hard string
	typ        byte
}

func file(name, body string) entry { return entry{name: name, body: body} }

// layer builds an uncompressed layer tar.
func layer(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case e.hard != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.hard, 0
		case e.typ != 0:
			h.Typeflag, h.Size = e.typ, 0
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

// withDir is TarDir(dir) with extra entries added at its end.
func withDir(t testing.TB, dir string, extra ...entry) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(sdktest.TarDir(t, dir)))
	var entries []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		e := entry{name: h.Name, body: string(b)}
		switch h.Typeflag {
		case tar.TypeDir:
			e.typ = tar.TypeDir
		case tar.TypeSymlink:
			e.link = h.Linkname
		}
		entries = append(entries, e)
	}
	return layer(t, append(entries, extra...)...)
}

// release parses the os-release of a testdata image, as the merge would
// have it.
func release(t testing.TB, dir string) osrelease.Release {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "etc/os-release"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv, err := osrelease.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	r := osrelease.FromFields(kv)
	r.Path = "/etc/os-release"
	return r
}

// finish completes the packages as the image merge does.
func finish(t testing.TB, pkgs []sdk.Package, rel osrelease.Release) []sdk.Package {
	t.Helper()
	var out []sdk.Package
	for _, p := range pkgs {
		if w := distro.Finish(&p, rel, true); w != "" {
			t.Errorf("%s: distro.Finish: %s", p.Name, w)
		}
		out = append(out, p)
	}
	return out
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

func byNameAndLocation(a, b sdk.Package) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), slices.Compare(a.Locations, b.Locations))
}

// wantJSON compares the finished packages with dir/want.json, the whole
// output of the tree analyzer this extractor replaced (its packages
// carried no OS nor Arch: those are compared by checkPackage).
func wantJSON(t *testing.T, dir string, pkgs []sdk.Package) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	var items []struct {
		Package *sdk.Package
		Warning *sdk.Warning
	}
	if err := json.Unmarshal(b, &items); err != nil {
		t.Fatal(err)
	}
	var want []sdk.Package
	for _, it := range items {
		if it.Package == nil {
			t.Fatalf("want.json holds a warning: %+v", it.Warning)
		}
		want = append(want, *it.Package)
	}
	var got []sdk.Package
	for _, p := range pkgs {
		p.OS, p.Arch = "", ""
		got = append(got, p)
	}
	slices.SortFunc(got, byNameAndLocation)
	slices.SortFunc(want, byNameAndLocation)
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w sdk.Package
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("package %d: got %+v, want %+v", i, g, w)
				break
			}
		}
		t.Errorf("%d packages differ from %s/want.json (%d)", len(got), dir, len(want))
	}
}

// The real images' packages, compared with what dpkg-query says of the
// same database and with the tree analyzer's output.
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
			items := sdktest.ExtractDir(t, tc.dir, dpkg.NewExtractor())
			if w := sdktest.Warnings(items); len(w) > 0 {
				t.Errorf("warnings: %+v", w)
			}
			raw := sdktest.Packages(items)
			for _, p := range raw {
				if p.OS != "dpkg" || p.Ecosystem != "Debian" || p.PURL != "" || p.Owner != "" || !archRE.MatchString(p.Arch) {
					t.Errorf("%s as extracted: OS %q, ecosystem %q, purl %q, owner %q, arch %q", p.Name, p.OS, p.Ecosystem, p.PURL, p.Owner, p.Arch)
				}
			}
			pkgs := finish(t, raw, release(t, tc.dir))
			got, want := tsv(pkgs), wantTSV(t, filepath.Join(tc.dir, "want.tsv"))
			if len(want) != tc.n {
				t.Fatalf("want.tsv lists %d installed packages, not %d", len(want), tc.n)
			}
			if !slices.Equal(got, want) {
				t.Errorf("extractor (-) vs dpkg-query (+):\n%s", diffLines(got, want))
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
			wantJSON(t, tc.dir, pkgs)
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
		q["distro"] != "debian-12" || q["arch"] != p.Arch || !archRE.MatchString(q["arch"]) || len(q) != 2 {
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

// listLines is what `cat` of a real file list shows, without dpkg's "/."
// for the root.
func listLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSuffix(l, "\n"); l != "/." && l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) < 10 {
		t.Fatalf("%s: only %d lines", file, len(lines))
	}
	return lines
}

func owned(items []sdk.Item) []sdk.OwnedFiles {
	var out []sdk.OwnedFiles
	for _, it := range items {
		if it.Owned != nil {
			out = append(out, *it.Owned)
		}
	}
	return out
}

// The real file lists of the Debian 12 image: base-files.list as it is in
// the layer, and libzstd1:amd64.list (a Multi-Arch: same package) under
// its real name, which a Go module cannot hold (see testdata/README.md).
func TestFileLists(t *testing.T) {
	zstd, err := os.ReadFile("testdata/multiarch/libzstd1_amd64.list")
	if err != nil {
		t.Fatal(err)
	}
	items := sdktest.Extract(t, withDir(t, "testdata/debian-12-minbase", file("var/lib/dpkg/info/libzstd1:amd64.list", string(zstd))), dpkg.NewExtractor())
	if w := sdktest.Warnings(items); len(w) > 0 {
		t.Errorf("warnings: %+v", w)
	}
	if n := len(sdktest.Packages(items)); n != 88 {
		t.Errorf("%d packages beside the lists", n)
	}
	want := []sdk.OwnedFiles{
		{OS: "dpkg", Owner: "base-files", Location: "/var/lib/dpkg/info/base-files.list", Paths: listLines(t, "testdata/debian-12-minbase/var/lib/dpkg/info/base-files.list")},
		{OS: "dpkg", Owner: "libzstd1", Location: "/var/lib/dpkg/info/libzstd1:amd64.list", Paths: listLines(t, "testdata/multiarch/libzstd1_amd64.list")},
	}
	got := owned(items)
	slices.SortFunc(got, func(a, b sdk.OwnedFiles) int { return strings.Compare(a.Owner, b.Owner) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("owned files:\n%+v\nwant\n%+v", got, want)
	}
	// Both owners are packages of the status file.
	names := map[string]bool{}
	for _, p := range sdktest.Packages(items) {
		names[p.Name] = true
	}
	for _, o := range got {
		if !names[o.Owner] {
			t.Errorf("owner %q is not an installed package", o.Owner)
		}
	}
}

// A long list comes in chunks; the paths of a layer are bounded, with one
// warning; odd lines are cleaned or skipped.
func TestFileListBounds(t *testing.T) {
	var big strings.Builder
	big.WriteString("/.\n\n")
	for i := range dpkg.MaxOwnedPaths + 10 {
		fmt.Fprintf(&big, "/usr/share/p/%07d\n", i)
	}
	items := sdktest.Extract(t, layer(t,
		file("var/lib/dpkg/info/small.list", "/.\n/usr\n//usr//bin/../bin/x\nrelative/y\n/"+strings.Repeat("a", sdk.MaxPathBytes)+"\n/bad\xff\n/../..\n"),
		file("var/lib/dpkg/info/big.list", big.String()),
		file("var/lib/dpkg/info/late.list", "/usr/late\n"),
	), dpkg.NewExtractor())
	var small []string
	n, chunks := 0, 0
	for _, o := range owned(items) {
		switch o.Owner {
		case "small":
			small = append(small, o.Paths...)
		case "big":
			n += len(o.Paths)
			chunks++
			if len(o.Paths) > 4096 {
				t.Errorf("an item of %d paths", len(o.Paths))
			}
		default:
			t.Errorf("owner %q (%d paths) over the bound", o.Owner, len(o.Paths))
		}
	}
	if want := []string{"/usr", "/usr/bin/x", "/relative/y"}; !slices.Equal(small, want) {
		t.Errorf("small.list: %q, want %q", small, want)
	}
	if n != dpkg.MaxOwnedPaths-len(small) || chunks < 2 {
		t.Errorf("big.list: %d paths in %d items, want %d", n, chunks, dpkg.MaxOwnedPaths-len(small))
	}
	checkWarnings(t, sdktest.Warnings(items), []string{
		`^/var/lib/dpkg/info/small.list: 2 lines skipped: longer than 4096 bytes or not valid UTF-8$`,
		`^/var/lib/dpkg/info: the file lists name more than 200000 paths: 2 lists were not sent in full, so some files get no owner$`,
	})
}

func checkWarnings(t *testing.T, ws []sdk.Warning, want []string) {
	t.Helper()
	var got []string
	for _, w := range ws {
		got = append(got, w.Path+": "+w.Message)
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i, w := range got {
		if !regexp.MustCompile(want[i]).MatchString(w) {
			t.Errorf("warning %q does not match %q", w, want[i])
		}
		if strings.Contains(w, "SECRET") {
			t.Errorf("warning %q quotes the file", w)
		}
	}
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

func names(pkgs []sdk.Package) []string {
	var n []string
	for _, p := range pkgs {
		n = append(n, p.Name)
	}
	return n
}

// Hostile and unusual layers: what is reported, and the warnings.
func TestLayers(t *testing.T) {
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
		entries  []entry
		want     []string // package names, sorted
		owners   []string // owners of the OwnedFiles items, sorted
		warnings []string // regular expressions, in order
	}{{
		name:    "a status that is a symbolic link is not read, whatever it points at",
		entries: []entry{file("etc/shadow", bash), {name: "var/lib/dpkg/status", link: "/etc/shadow"}},
	}, {
		name:    "nor one that is a hard link",
		entries: []entry{file("etc/shadow", bash), {name: "var/lib/dpkg/status", hard: "etc/shadow"}},
	}, {
		name: "links in status.d and info are not read either",
		entries: []entry{
			file("etc/shadow", shadow), file("srv/tz", tzdata), file("srv/list", "/usr/bin/x\n"),
			{name: "var/lib/dpkg/status.d/shadow", link: "/etc/shadow"},
			{name: "var/lib/dpkg/status.d/tzdata", link: "../../../../srv/tz"},
			{name: "var/lib/dpkg/info/x.list", link: "/srv/list"},
		},
	}, {
		name:    "a status that is a shadow file gives one malformed paragraph, unquoted",
		entries: []entry{file("var/lib/dpkg/status", shadow)},
		warnings: []string{
			`^/var/lib/dpkg/status: malformed paragraphs skipped: 1 \(the first: malformed paragraph 1: no Package field\)$`,
		},
	}, {
		name: "a directory, a FIFO, a device where the status file should be",
		entries: []entry{
			{name: "var/lib/dpkg/status/", typ: tar.TypeDir},
			{name: "var/lib/dpkg/status.d", typ: tar.TypeFifo},
			{name: "var/lib/dpkg/info/x.list", typ: tar.TypeChar},
		},
	}, {
		name: "files in other directories are not read",
		entries: []entry{
			file("var/lib/dpkg/status/x", bash),
			file("var/lib/dpkg/status-old", bash),
			file("var/lib/dpkg/status.d/sub/x", bash),
			file("var/lib/dpkg/status.d.bak/x", bash),
			file("usr/var/lib/dpkg/status", bash),
			file("srv/var/lib/dpkg/status.d/x", bash),
			file("var/lib/dpkg/info/sub/x.list", "/usr/bin/x\n"),
			file("var/lib/dpkg/info/x.list.bak", "/usr/bin/x\n"),
			file("var/lib/dpkg/info/x.md5sums", "/usr/bin/x\n"),
			file("var/lib/dpkg/x.list", "/usr/bin/x\n"),
		},
	}, {
		name: "garbage, a paragraph without Package, one without Version, a stray continuation line",
		entries: []entry{file("var/lib/dpkg/status", bash+"\n"+string(garbage)+"\n\n"+
			"Version: 1.0\nStatus: install ok installed\n\n"+
			"Package: noversion\nStatus: install ok installed\n\n"+
			" continued\nPackage: x\n\n"+
			"Package: BAD NAME\nVersion: 1\nStatus: install ok installed\n\n"+
			"Package: twice\nPackage: twice\nVersion: 1\nStatus: install ok installed\n\n"+
			tzdata)},
		want: []string{"bash", "tzdata"},
		warnings: []string{
			`^/var/lib/dpkg/status: malformed paragraphs skipped: 6 \(the first: malformed paragraph 2: .*\)$`,
		},
	}, {
		name: "not installed: config-files are left out quietly; half-installed and unpacked with a warning",
		entries: []entry{file("var/lib/dpkg/status",
			strings.Replace(bash, "install ok installed", "deinstall ok config-files", 1)+"\n"+
				strings.Replace(tzdata, "install ok installed", "install reinstreq half-installed", 1)+"\n"+
				"Package: unpacked\nVersion: 1\nStatus: install ok unpacked\n\n"+
				"Package: held\nVersion: 1\nStatus: hold ok installed\n\n"+
				"Package: nostatus\nVersion: 1\n")},
		want: []string{"held"},
		warnings: []string{
			`^/var/lib/dpkg/status: packages not fully installed, not reported though some of their files may be on disk: 2 \(half-installed: 1, unpacked: 1\)$`,
		},
	}, {
		name: "distroless status.d without Status fields; .md5sums skipped; one warning for the directory at the layer's end",
		entries: []entry{
			file("var/lib/dpkg/status.d/bash", strings.Replace(bash, "Status: install ok installed\n", "", 1)),
			file("var/lib/dpkg/status.d/bash.md5sums", "0123456789abcdef0123456789abcdef  bin/bash\n"),
			file("var/lib/dpkg/status.d/tzdata", tzdata),
			file("var/lib/dpkg/status.d/zz-config-files", "Package: gone\nVersion: 1\nStatus: deinstall ok config-files\n"),
			file("var/lib/dpkg/status.d/garbage", string(garbage)),
			file("var/lib/dpkg/status.d/unpacked", "Package: unpacked\nVersion: 1\nStatus: install ok unpacked\n"),
			file("var/lib/dpkg/status.d/\xffnot-utf8-named", "Package: oddname\nVersion: 1\n"),
			file("var/lib/dpkg/status", "Package: fromstatus\nVersion: 1\nStatus: install ok installed\n"),
		},
		want: []string{"bash", "fromstatus", "oddname", "tzdata"},
		warnings: []string{
			`^/var/lib/dpkg/status.d: malformed paragraphs skipped: 1 \(the first: malformed paragraph 1: .*\)$`,
			`^/var/lib/dpkg/status.d: packages not fully installed, not reported though some of their files may be on disk: 1 \(unpacked: 1\)$`,
		},
	}, {
		name: "a Source field that cannot be parsed",
		entries: []entry{
			file("var/lib/dpkg/status", strings.Replace(bash, "Source: bash (5.2.15-2)", "Source: bash (5.2.15-2", 1)),
		},
		want:     []string{"bash"},
		warnings: []string{`^/var/lib/dpkg/status: packages with a Source field that could not be parsed, reported with the binary package as their source: 1$`},
	}, {
		name: "file lists with names that are not package names",
		entries: []entry{
			file("var/lib/dpkg/info/.list", "/usr/bin/a\n"),
			file("var/lib/dpkg/info/-x.list", "/usr/bin/b\n"),
			file("var/lib/dpkg/info/x:.list", "/usr/bin/c\n"),
			file("var/lib/dpkg/info/x:amd64:i386.list", "/usr/bin/d\n"),
			file("var/lib/dpkg/info/\xff.list", "/usr/bin/e\n"),
			file("var/lib/dpkg/info/ok:arm64.list", "/usr/bin/f\n"),
			file("var/lib/dpkg/info/empty.list", "/.\n"),
		},
		owners: []string{"ok"},
		warnings: []string{
			`^/var/lib/dpkg/info/\.list: dpkg: the file name is not`,
			`^/var/lib/dpkg/info/-x\.list: dpkg: the file name is not`,
			`^/var/lib/dpkg/info/x:\.list: dpkg: the file name is not`,
			`^/var/lib/dpkg/info/x:amd64:i386\.list: dpkg: the file name is not`,
			`^/var/lib/dpkg/info/\x{FFFD}\.list: dpkg: the file name is not`,
		},
	}, {
		name:    "no dpkg database: nothing, not even a warning",
		entries: []entry{file("etc/os-release", "ID=debian\n"), file("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\n")},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			items := sdktest.Extract(t, layer(t, tc.entries...), dpkg.NewExtractor())
			pkgs := sdktest.Packages(items)
			got := names(pkgs)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("packages %q, want %q", got, tc.want)
			}
			var owners []string
			for _, o := range owned(items) {
				owners = append(owners, o.Owner)
			}
			slices.Sort(owners)
			if !slices.Equal(owners, tc.owners) {
				t.Errorf("owners %q, want %q", owners, tc.owners)
			}
			checkWarnings(t, sdktest.Warnings(items), tc.warnings)
			for _, p := range pkgs {
				if p.OS != "dpkg" || p.Ecosystem != "Debian" || p.PURL != "" {
					t.Errorf("%s: OS %q, ecosystem %q, purl %q", p.Name, p.OS, p.Ecosystem, p.PURL)
				}
				if p.Name == "bash" && (p.SourceName != "bash" || p.Version != "5.2.15-2+b13" || p.Arch != "amd64") {
					t.Errorf("bash = %+v", p)
				}
				if p.Name == "oddname" && p.Locations[0] != "/var/lib/dpkg/status.d/\uFFFDnot-utf8-named" {
					t.Errorf("oddname at %q", p.Locations)
				}
			}
		})
	}
}

// zeros reads n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// bigLayer streams a layer holding one file of size bytes at name,
// without building it in memory.
func bigLayer(t *testing.T, name string, size int64, lim sdk.LayerLimits, e sdk.Extractor) []sdk.Item {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	pad := (512 - size%512) % 512
	r := io.MultiReader(&hdr, &zeros{n: size + pad + 1024})
	var items []sdk.Item
	err := sdk.ExtractLayer(t.Context(), r, sdk.Layer{Index: 1, Digest: "sha256:test"}, []sdk.Extractor{e}, lim, func(it sdk.Item) error {
		items = append(items, it)
		return it.Validate()
	})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// A file over the extractor's limit is not read: the framework warns, with
// the file and the limit.
func TestLargeFilesAreSkipped(t *testing.T) {
	items := bigLayer(t, "var/lib/dpkg/status", dpkg.DefaultMaxFileBytes+1, sdk.LayerLimits{}, dpkg.NewExtractor())
	checkWarnings(t, sdktest.Warnings(items), []string{fmt.Sprintf(`^/var/lib/dpkg/status: %d bytes, more than the %d this extractor reads; skipped$`, dpkg.DefaultMaxFileBytes+1, dpkg.DefaultMaxFileBytes)})
	// A request's smaller limit wins.
	items = bigLayer(t, "var/lib/dpkg/info/x.list", 2<<20, sdk.LayerLimits{MaxFileBytes: map[string]int64{"dpkg": 1 << 20}}, dpkg.NewExtractor())
	checkWarnings(t, sdktest.Warnings(items), []string{`^/var/lib/dpkg/info/x.list: 2097152 bytes, more than the 1048576 this extractor reads; skipped$`})
	if len(owned(items)) != 0 {
		t.Error("the oversized list was read")
	}
}

// Warnings are bounded by the framework: 150 bad list names give 100 of
// them and a count of the rest.
func TestWarningsAreBounded(t *testing.T) {
	var entries []entry
	for i := range 150 {
		entries = append(entries, file(fmt.Sprintf("var/lib/dpkg/info/-p%03d.list", i), "/x\n"))
	}
	ws := sdktest.Warnings(sdktest.Extract(t, layer(t, entries...), dpkg.NewExtractor()))
	if len(ws) != 101 || ws[100].Message != "50 more warnings in this layer were not sent" {
		t.Errorf("%d warnings, the last %+v", len(ws), ws[len(ws)-1])
	}
}

// output is an in-process sdk.Output.
type output struct {
	onPackage func(sdk.Package) error
	warnings  []sdk.Warning
}

func (o *output) Package(p sdk.Package) error   { return o.onPackage(p) }
func (*output) Finding(sdk.Finding) error       { return nil }
func (o *output) Warning(w sdk.Warning) error   { o.warnings = append(o.warnings, w); return nil }
func (*output) OwnedFiles(sdk.OwnedFiles) error { return nil }
func (*output) OSRelease(sdk.OSRelease) error   { return nil }
func statusInfo(t *testing.T) (sdk.FileInfo, []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/debian-12-minbase/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	return sdk.FileInfo{Path: dpkg.StatusFile, Mode: 0o644, Size: int64(len(b))}, b
}

// Cancellation during a file stops it at the next paragraph; a cancelled
// layer fails.
func TestCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := 0
	fi, b := statusInfo(t)
	err := dpkg.NewExtractor().Extract(ctx, fi, bytes.NewReader(b), &output{onPackage: func(sdk.Package) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Errorf("Extract = %v after %d packages; want context.Canceled after 3", err, n)
	}

	tarball := sdktest.TarDir(t, "testdata/debian-12-minbase")
	if _, err := sdktest.ExtractErr(ctx, tarball, sdk.LayerLimits{}, dpkg.NewExtractor()); err == nil {
		t.Error("a cancelled layer succeeded")
	}
}

// An output error (the host gone) stops the file and is returned.
func TestOutputErrorStops(t *testing.T) {
	errGone := errors.New("host gone")
	n := 0
	fi, b := statusInfo(t)
	err := dpkg.NewExtractor().Extract(t.Context(), fi, bytes.NewReader(b), &output{onPackage: func(sdk.Package) error {
		n++
		return errGone
	}})
	if !errors.Is(err, errGone) || n != 1 {
		t.Errorf("Extract = %v after %d packages", err, n)
	}
}

// The shared Debian 12 image's 88 packages and a file list, from a layer.
func BenchmarkExtractDebian12(b *testing.B) {
	tarball := sdktest.TarDir(b, "testdata/debian-12-minbase")
	for b.Loop() {
		items, err := sdktest.ExtractErr(b.Context(), tarball, sdk.LayerLimits{}, dpkg.NewExtractor())
		if err != nil {
			b.Fatal(err)
		}
		if n := len(sdktest.Packages(items)); n != 88 {
			b.Fatalf("%d packages", n)
		}
	}
}
