package rpm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/distro"
	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, NewExtractor())
}

func TestIdentity(t *testing.T) {
	e := NewExtractor()
	if e.Name() != "rpm" || e.Version() != "0.2.0" || e.MaxFileBytes() != DefaultMaxFileBytes || DefaultMaxFileBytes != 256<<20 {
		t.Errorf("extractor %q %q, max %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
	if _, ok := e.(sdk.Finisher); !ok {
		t.Error("not a Finisher")
	}
}

func TestRequired(t *testing.T) {
	want := []string{
		"/usr/lib/sysimage/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite-wal",
		"/var/lib/rpm/Packages", "/var/lib/rpm/Packages.db", "/var/lib/rpm/rpmdb.sqlite-wal",
	}
	not := []string{
		"/var/lib/rpm/rpmdb.sqlite-shm", "/var/lib/rpm/Index.db", "/var/lib/rpm/Packages.bak",
		"/srv/var/lib/rpm/Packages", "/var/lib/rpm", "/var/lib/rpm/Packages-wal-wal", "/",
	}
	e := NewExtractor()
	for _, p := range want {
		if !e.Required(sdk.FileInfo{Path: p, Mode: 0o644}) {
			t.Errorf("%s not wanted", p)
		}
		if e.Required(sdk.FileInfo{Path: p, Mode: fs.ModeSymlink | 0o777, LinkTarget: "/etc/shadow"}) {
			t.Errorf("the link %s wanted", p)
		}
	}
	for _, p := range not {
		if e.Required(sdk.FileInfo{Path: p, Mode: 0o644}) {
			t.Errorf("%s wanted", p)
		}
	}
}

// wantRow is one line of a want.tsv: what rpm -qa printed with
// --qf '%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n'
// (see testdata/README.md).
type wantRow struct {
	name, epoch, version, release, arch, sourceRPM string
}

func readWant(t *testing.T, file string) []wantRow {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []wantRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 6 {
			t.Fatalf("%s: %q is not 6 columns", file, sc.Text())
		}
		rows = append(rows, wantRow{c[0], c[1], c[2], c[3], c[4], c[5]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s is empty", file)
	}
	return rows
}

// row rebuilds rpm's view of a reported package from its fields once
// finished: NAME, EPOCHNUM and ARCH from the purl, VERSION-RELEASE from
// the purl's version, SOURCERPM from SourceName and SourceVersion.
func row(t *testing.T, p sdk.Package) wantRow {
	t.Helper()
	u, err := packageurl.FromString(p.PURL)
	if err != nil {
		t.Fatalf("%s: purl %q: %v", p.Name, p.PURL, err)
	}
	q := u.Qualifiers.Map()
	epoch := q["epoch"]
	if epoch == "" {
		epoch = "0"
	}
	version, release, ok := strings.Cut(u.Version, "-")
	if !ok || u.Type != "rpm" || u.Name != p.Name {
		t.Fatalf("%s: purl %q", p.Name, p.PURL)
	}
	src := "(none)"
	if p.SourceName != "" {
		src = p.SourceName + "-" + p.SourceVersion + ".src.rpm"
	}
	return wantRow{p.Name, epoch, version, release, q["arch"], src}
}

func sortRows(rows []wantRow) {
	slices.SortFunc(rows, func(a, b wantRow) int {
		return strings.Compare(strings.Join([]string{a.name, a.epoch, a.version, a.release, a.arch}, "\x00"),
			strings.Join([]string{b.name, b.epoch, b.version, b.release, b.arch}, "\x00"))
	})
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

// checkItems fails the test on an invalid item or one of a kind the
// extractor never sends.
func checkItems(t *testing.T, items []sdk.Item) {
	t.Helper()
	for _, it := range items {
		if err := it.Validate(); err != nil {
			t.Fatalf("invalid item %+v: %v", it, err)
		}
		if it.Finding != nil || it.OSRelease != nil {
			t.Fatalf("unexpected item %+v", it)
		}
		if p := it.Package; p != nil && (p.OS != "rpm" || p.Ecosystem != "RPM" || p.PURL != "" || p.Owner != "" ||
			strings.Count(p.Version, "-") != 1 || strings.Contains(p.Version, ":")) {
			t.Fatalf("package as extracted: %+v", p)
		}
	}
}

// The real databases of testdata: exactly the packages rpm itself lists
// in them, the gpg-pubkey entries excepted, with the ecosystem, version,
// purl and location each distribution's rules give once distro.Finish
// has finished them as the image merge does.
func TestRealDatabases(t *testing.T) {
	for _, tc := range []struct {
		dir       string
		ecosystem string
		namespace string
		distro    string
		epochs    bool // a non-zero epoch goes into Version
		location  string
		warning   string // of distro.Finish
	}{
		{dir: "sqlite", ecosystem: "Red Hat:enterprise_linux:9::baseos", namespace: "redhat", distro: "rhel-9.4", epochs: true, location: "/var/lib/rpm/rpmdb.sqlite"},
		{dir: "sqlite-wal", ecosystem: "Red Hat:enterprise_linux:9::baseos", namespace: "redhat", distro: "rhel-9.4", epochs: true, location: "/var/lib/rpm/rpmdb.sqlite"},
		{dir: "ndb", ecosystem: "openSUSE:Leap 15.2.1", namespace: "opensuse", distro: "opensuse-leap-15.2.1", location: "/usr/lib/sysimage/rpm/Packages.db"},
		{dir: "sle15-bci", ecosystem: "SUSE:15.3", namespace: "suse", distro: "sles-15.3", location: "/usr/lib/sysimage/rpm/Packages.db"},
		{dir: "bdb-libuuid", ecosystem: "RPM", epochs: true, location: "/var/lib/rpm/Packages", warning: "no os-release"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			root := filepath.Join("testdata", tc.dir)
			rows := readWant(t, filepath.Join(root, "want.tsv"))
			var want []wantRow
			keys := 0
			for _, r := range rows {
				if r.name == PubKeyName {
					keys++
					continue
				}
				want = append(want, r)
			}
			items := sdktest.ExtractDir(t, root, NewExtractor())
			checkItems(t, items)
			if w := sdktest.Warnings(items); len(w) != 0 {
				t.Errorf("warnings %+v", w)
			}
			rel, ok := release(t, root)
			var got []wantRow
			pkgs := sdktest.Packages(items)
			for i := range pkgs {
				p := &pkgs[i]
				if w := distro.Finish(p, rel, ok); !strings.Contains(w, tc.warning) || (w == "") != (tc.warning == "") {
					t.Errorf("%s: distro.Finish warns %q, want %q", p.Name, w, tc.warning)
				}
				got = append(got, row(t, *p))
			}
			sortRows(got)
			sortRows(want)
			if !slices.Equal(got, want) {
				t.Errorf("packages\n%v\nwant (rpm -qa, %d gpg-pubkey entries left out)\n%v", got, keys, want)
			}
			for _, p := range pkgs {
				r := row(t, p)
				if p.Ecosystem != tc.ecosystem {
					t.Errorf("%s: ecosystem %q, want %q", p.Name, p.Ecosystem, tc.ecosystem)
				}
				wantVersion := r.version + "-" + r.release
				if tc.epochs && r.epoch != "0" {
					wantVersion = r.epoch + ":" + wantVersion
				}
				if p.Version != wantVersion {
					t.Errorf("%s: version %q, want %q", p.Name, p.Version, wantVersion)
				}
				u, _ := packageurl.FromString(p.PURL)
				if u.Namespace != tc.namespace || u.Qualifiers.Map()["distro"] != tc.distro {
					t.Errorf("%s: purl %q, want namespace %q and distro %q", p.Name, p.PURL, tc.namespace, tc.distro)
				}
				if !slices.Equal(p.Locations, []string{tc.location}) {
					t.Errorf("%s: locations %q, want %q", p.Name, p.Locations, tc.location)
				}
			}
		})
	}
}

// owned returns what items say each package owns, by database and owner.
func owned(t *testing.T, items []sdk.Item) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, it := range items {
		if o := it.Owned; o != nil {
			if o.OS != "rpm" || len(o.Paths) == 0 || !slices.Contains(Databases, o.Location) {
				t.Errorf("owned files %+v", o)
			}
			k := o.Location + " " + o.Owner
			got[k] = append(got[k], o.Paths...)
		}
	}
	return got
}

// specFiles reads the %files sections of testdata/src's spec files, from
// which the packages of the sqlite, sqlite-wal and ndb databases were
// built: package name → its files.
func specFiles(t *testing.T) map[string][]string {
	t.Helper()
	specs, err := filepath.Glob("testdata/src/*.spec")
	if err != nil || len(specs) != 3 {
		t.Fatalf("spec files %q, %v", specs, err)
	}
	out := map[string][]string{}
	for _, s := range specs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		name, cur := "", ""
		for l := range strings.Lines(string(b)) {
			l = strings.TrimSpace(l)
			f := strings.Fields(l)
			switch {
			case len(f) == 2 && f[0] == "Name:":
				name = f[1]
			case len(f) > 0 && f[0] == "%files":
				switch {
				case len(f) == 1:
					cur = name
				case len(f) == 3 && f[1] == "-n":
					cur = f[2]
				default:
					cur = name + "-" + f[1]
				}
			case strings.HasPrefix(l, "/") && cur != "":
				out[cur] = append(out[cur], l)
			case l == "" || strings.HasPrefix(l, "%"):
				cur = ""
			}
		}
	}
	return out
}

// The files each package owns: for the databases built from testdata/src,
// the %files of their spec files; for libuuid, the list go-rpmdb's own
// tests expect of that database (LibuuidInstalledFileNames in its
// rpmdb_testcase_test.go).
func TestOwnedFiles(t *testing.T) {
	spec := specFiles(t)
	for _, tc := range []struct{ dir, db string }{
		{"sqlite", "/var/lib/rpm/rpmdb.sqlite"},
		{"sqlite-wal", "/var/lib/rpm/rpmdb.sqlite"},
		{"ndb", "/usr/lib/sysimage/rpm/Packages.db"},
	} {
		items := sdktest.ExtractDir(t, filepath.Join("testdata", tc.dir), NewExtractor())
		got := owned(t, items)
		want := map[string][]string{}
		for _, p := range sdktest.Packages(items) {
			want[tc.db+" "+p.Name] = spec[p.Name]
		}
		if len(want) < 4 || len(got) != len(want) {
			t.Errorf("%s: %d owners, want %d: %q", tc.dir, len(got), len(want), got)
		}
		for k, files := range want {
			if len(files) == 0 || !slices.Equal(got[k], files) {
				t.Errorf("%s: %s owns %q, want %q", tc.dir, k, got[k], files)
			}
		}
	}
	items := sdktest.ExtractDir(t, "testdata/bdb-libuuid", NewExtractor())
	want := map[string][]string{"/var/lib/rpm/Packages libuuid": {
		"/usr/lib/.build-id",
		"/usr/lib/.build-id/df/ef6a880adac817216ab9866779a0725e017647",
		"/usr/lib64/libuuid.so.1",
		"/usr/lib64/libuuid.so.1.3.0",
		"/usr/share/licenses/libuuid",
		"/usr/share/licenses/libuuid/COPYING",
		"/usr/share/licenses/libuuid/COPYING.BSD-3",
	}}
	if got := owned(t, items); len(got) != 1 || !slices.Equal(got["/var/lib/rpm/Packages libuuid"], want["/var/lib/rpm/Packages libuuid"]) {
		t.Errorf("libuuid owns %q", got)
	}
}

// The file lists of one layer are cut at MaxOwnedPaths with one warning
// per database that counts what was left out, whatever the databases'
// sizes; paths that are not absolute and clean are counted apart.
func TestOwnedFilesLimit(t *testing.T) {
	e := &Extractor{}
	var items []sdk.Item
	out := &collector{items: &items}
	many := make([]string, MaxOwnedPaths-5)
	for i := range many {
		many[i] = "/usr/share/x/" + strings.Repeat("f", i%7+1)
	}
	recs := []record{
		{Name: "big", Version: "1", Release: "1", Files: many},
		{Name: "bad", Version: "1", Release: "1", Files: []string{"relative", "/a/../b", "/ok", "/x\x01"}, FilesBad: 2},
		{Name: "more", Version: "1", Release: "1", Files: []string{"/m/1", "/m/2", "/m/3", "/m/4", "/m/5", "/m/6"}, FilesDropped: 7},
	}
	if err := e.database(t.Context(), "/var/lib/rpm/Packages", formatBDB, recs, nil, out); err != nil {
		t.Fatal(err)
	}
	if err := e.database(t.Context(), "/var/lib/rpm/Packages.db", formatNDB, []record{{Name: "late", Version: "1", Release: "1", Files: []string{"/late"}}}, nil, out); err != nil {
		t.Fatal(err)
	}
	if err := e.Finish(t.Context(), nil, out); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, it := range items {
		if it.Owned != nil {
			got[it.Owned.Owner] += len(it.Owned.Paths)
			if len(it.Owned.Paths) > ownedChunkPaths {
				t.Errorf("an OwnedFiles of %d paths", len(it.Owned.Paths))
			}
		}
	}
	if got["big"] != MaxOwnedPaths-5 || got["bad"] != 1 || got["more"] != 4 || got["late"] != 0 {
		t.Errorf("owned %v", got)
	}
	var warnings []string
	for _, it := range items {
		if it.Warning != nil {
			warnings = append(warnings, it.Warning.Path+": "+it.Warning.Message)
		}
	}
	want := []string{
		"/var/lib/rpm/Packages: file entries that make no absolute path skipped: 5",
		"/var/lib/rpm/Packages: file lists cut short: 9 files over the limit of 200000 paths (33554432 bytes) per layer not reported",
		"/var/lib/rpm/Packages.db: file lists cut short: 1 files over the limit of 200000 paths (33554432 bytes) per layer not reported",
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	if n := len(sdktest.Packages(items)); n != 4 {
		t.Errorf("%d packages", n)
	}
}

// collector is an sdk.Output that keeps what it gets.
type collector struct {
	items *[]sdk.Item
	// fail, when set, is returned by Package.
	fail error
}

func (c *collector) Package(p sdk.Package) error {
	if c.fail != nil {
		return c.fail
	}
	*c.items = append(*c.items, sdk.Item{Package: &p})
	return nil
}
func (c *collector) Finding(f sdk.Finding) error {
	*c.items = append(*c.items, sdk.Item{Finding: &f})
	return nil
}
func (c *collector) Warning(w sdk.Warning) error {
	*c.items = append(*c.items, sdk.Item{Warning: &w})
	return nil
}
func (c *collector) OwnedFiles(o sdk.OwnedFiles) error {
	*c.items = append(*c.items, sdk.Item{Owned: &o})
	return nil
}
func (c *collector) OSRelease(r sdk.OSRelease) error {
	*c.items = append(*c.items, sdk.Item{OSRelease: &r})
	return nil
}

// entry is one member of a hand-built layer.
type entry struct {
	name string
	typ  byte // tar.TypeReg when 0
	body []byte
	link string
}

func file(name string, body []byte) entry { return entry{name: name, body: body} }

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
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func names(pkgs []sdk.Package) []string {
	var n []string
	for _, p := range pkgs {
		n = append(n, p.Name)
	}
	slices.Sort(n)
	return n
}

const (
	walDB  = "testdata/sqlite-wal/var/lib/rpm/rpmdb.sqlite"
	walLog = walDB + "-wal"
)

// The WAL test data holds, in rpmdb.sqlite-wal only, rpm's erasure of
// assay-hello: read without its log, the database still lists it. The log
// is read whether it comes before or after the database in the layer.
func TestWriteAheadLog(t *testing.T) {
	db, log := read(t, walDB), read(t, walLog)
	for _, tc := range []struct {
		name     string
		entries  []entry
		hello    bool
		warnings []string
	}{
		{"the log after the database", []entry{file("var/lib/rpm/rpmdb.sqlite", db), file("var/lib/rpm/rpmdb.sqlite-wal", log)}, false, nil},
		{"the log before the database", []entry{file("var/lib/rpm/rpmdb.sqlite-wal", log), file("var/lib/rpm/rpmdb.sqlite", db)}, false, nil},
		{"the main file alone: rpm's state before the erasure", []entry{file("var/lib/rpm/rpmdb.sqlite", db)}, true, nil},
		{"a log that is a link is not followed", []entry{file("var/lib/rpm/rpmdb.sqlite", db), {name: "var/lib/rpm/rpmdb.sqlite-wal", typ: tar.TypeSymlink, link: "/"}}, true, nil},
		{"the log of another database does not apply", []entry{file("var/lib/rpm/rpmdb.sqlite", db), file("usr/lib/sysimage/rpm/rpmdb.sqlite-wal", log)}, true,
			[]string{"/usr/lib/sysimage/rpm/rpmdb.sqlite-wal: write-ahead log not read: the layer holds no SQLite database beside it"}},
		{"a log without its database", []entry{file("var/lib/rpm/rpmdb.sqlite-wal", log)}, false,
			[]string{"/var/lib/rpm/rpmdb.sqlite-wal: write-ahead log not read: the layer holds no SQLite database beside it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			items := sdktest.Extract(t, layer(t, tc.entries...), NewExtractor())
			checkItems(t, items)
			n := names(sdktest.Packages(items))
			wantN := 4
			if tc.hello {
				wantN = 5
			}
			if len(tc.entries) == 1 && strings.HasSuffix(tc.entries[0].name, "-wal") {
				wantN = 0
			}
			if slices.Contains(n, "assay-hello") != tc.hello || len(n) != wantN {
				t.Errorf("packages %q", n)
			}
			var warnings []string
			for _, w := range sdktest.Warnings(items) {
				warnings = append(warnings, w.Path+": "+w.Message)
			}
			if !slices.Equal(warnings, tc.warnings) {
				t.Errorf("warnings %q, want %q", warnings, tc.warnings)
			}
			if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
				t.Errorf("left in the temporary directory: %v", left)
			}
		})
	}
	// A log over the limit: the framework skips it with a warning; the
	// database is read without it.
	items, err := sdktest.ExtractErr(t.Context(), layer(t, file("var/lib/rpm/rpmdb.sqlite", db), file("var/lib/rpm/rpmdb.sqlite-wal", append(log, make([]byte, 1<<20)...))),
		sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: 512 << 10}}, NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	w := sdktest.Warnings(items)
	if n := names(sdktest.Packages(items)); len(n) != 5 || len(w) != 1 || w[0].Path != "/var/lib/rpm/rpmdb.sqlite-wal" || !strings.Contains(w[0].Message, "more than the 524288") {
		t.Errorf("packages %q, warnings %+v", n, w)
	}
}

// Without a usable temporary directory a SQLite database cannot be read
// (a warning says why), while a Berkeley DB one, held in memory, still is.
func TestNoTemporaryDirectory(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "none"))
	items := sdktest.Extract(t, layer(t,
		file("var/lib/rpm/Packages", read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")),
		file("usr/lib/sysimage/rpm/rpmdb.sqlite", read(t, "testdata/sqlite/var/lib/rpm/rpmdb.sqlite")),
	), NewExtractor())
	w := sdktest.Warnings(items)
	if n := names(sdktest.Packages(items)); !slices.Equal(n, []string{"libuuid"}) || len(w) != 1 ||
		w[0].Path != "/usr/lib/sysimage/rpm/rpmdb.sqlite" || !strings.Contains(w[0].Message, "no temporary directory to read the SQLite database in") {
		t.Errorf("packages %q, warnings %+v", n, w)
	}
}

// Two databases holding the same packages give each package once, with
// both locations in the order of Databases; the same path twice in a
// layer is the later file.
func TestSeveralDatabases(t *testing.T) {
	ndb, sqlite := read(t, "testdata/ndb/usr/lib/sysimage/rpm/Packages.db"), read(t, "testdata/sqlite/var/lib/rpm/rpmdb.sqlite")
	items := sdktest.Extract(t, layer(t, file("var/lib/rpm/rpmdb.sqlite", sqlite), file("usr/lib/sysimage/rpm/Packages.db", ndb)), NewExtractor())
	pkgs := sdktest.Packages(items)
	if len(pkgs) != 5 || len(sdktest.Warnings(items)) != 0 {
		t.Fatalf("packages %+v, warnings %+v", pkgs, sdktest.Warnings(items))
	}
	for _, p := range pkgs {
		if !slices.Equal(p.Locations, []string{"/usr/lib/sysimage/rpm/Packages.db", "/var/lib/rpm/rpmdb.sqlite"}) {
			t.Errorf("%s: locations %q", p.Name, p.Locations)
		}
	}
	// Each database says what each package owns.
	if got := owned(t, items); len(got) != 10 {
		t.Errorf("%d owners by database, want 10", len(got))
	}
	libuuid := read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")
	for _, tc := range []struct {
		entries []entry
		want    []string
	}{
		{[]entry{file("var/lib/rpm/Packages", libuuid), file("var/lib/rpm/Packages", []byte("no database"))}, nil},
		{[]entry{file("var/lib/rpm/Packages", []byte("no database")), file("var/lib/rpm/Packages", libuuid)}, []string{"libuuid"}},
		{[]entry{file("var/lib/rpm/Packages", sqlite), file("var/lib/rpm/Packages", libuuid)}, []string{"libuuid"}},
		{[]entry{file("var/lib/rpm/rpmdb.sqlite", sqlite), file("var/lib/rpm/rpmdb.sqlite", libuuid)}, []string{"libuuid"}},
	} {
		items := sdktest.Extract(t, layer(t, tc.entries...), NewExtractor())
		if n := names(sdktest.Packages(items)); !slices.Equal(n, tc.want) {
			t.Errorf("packages %q, want %q", n, tc.want)
		}
	}
}

func TestNoDatabase(t *testing.T) {
	items := sdktest.Extract(t, layer(t,
		file("etc/os-release", read(t, "../distro/testdata/os-release/rhel")),
		entry{name: "var/lib/rpm/", typ: tar.TypeDir},
		file("var/lib/rpm/rpmdb.sqlite-shm", make([]byte, 32768)),
		file("var/lib/rpm/Index.db", []byte("RpmP")),
	), NewExtractor())
	if len(sdktest.Packages(items)) != 0 || len(sdktest.Warnings(items)) != 0 {
		t.Errorf("items %+v", items)
	}
}

// bdbLayout finds, in a Berkeley DB hash database, the first hash page
// holding a package (an off-page item, HOFFPAGE) and the first overflow
// page of that item, as go-rpmdb walks them.
func bdbLayout(t *testing.T, db []byte) (pageSize, hashPage, overflowPage int) {
	t.Helper()
	pageSize = int(binary.LittleEndian.Uint32(db[20:]))
	if binary.LittleEndian.Uint32(db[12:]) != 0x061561 || pageSize < 512 || len(db)%pageSize != 0 {
		t.Fatalf("not a little-endian hash database")
	}
	for p := 1; p < len(db)/pageSize; p++ {
		page := db[p*pageSize : (p+1)*pageSize]
		if page[25] != 13 && page[25] != 2 { // hash pages
			continue
		}
		n := int(binary.LittleEndian.Uint16(page[20:]))
		for i := 1; i < n; i += 2 { // values; keys are the even entries
			off := int(binary.LittleEndian.Uint16(page[26+2*i:]))
			if page[off] == 3 { // HOFFPAGE
				return pageSize, p, int(binary.LittleEndian.Uint32(page[off+4:]))
			}
		}
	}
	t.Fatalf("no package in the database")
	return
}

// A hostile layer: links, directories and FIFOs where a database should
// be, files that are no database, and Berkeley DB files made to crash,
// hang or exhaust go-rpmdb in its own goroutines. Links are never
// followed (nothing read, no warning); each bad file is one warning; no
// warning quotes a file; the good database beside them is read.
func TestHostile(t *testing.T) {
	libuuid := read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")
	ps, hp, op := bdbLayout(t, libuuid)
	mutate := func(f func(db []byte)) []byte {
		db := slices.Clone(libuuid)
		f(db)
		return db
	}
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	sqlite := read(t, "testdata/sqlite/var/lib/rpm/rpmdb.sqlite")
	for _, tc := range []struct {
		name    string
		entries []entry
		lim     sdk.LayerLimits
		path    string // of the warning; "" for none
		want    string // in the warning
		// alone: no good database beside the bad one, whose reading
		// would have to fit in the short ReadTimeout of this case.
		alone bool
	}{{
		name:    "absolute link to shadow",
		entries: []entry{file("etc/shadow", []byte(secret)), {name: "var/lib/rpm/Packages", typ: tar.TypeSymlink, link: "/etc/shadow"}},
	}, {
		name:    "relative link out of the root",
		entries: []entry{{name: "var/lib/rpm/rpmdb.sqlite", typ: tar.TypeSymlink, link: "../../../../../../../../../etc/shadow"}},
	}, {
		name:    "link to a real database elsewhere in the layer",
		entries: []entry{file("srv/Packages", libuuid), {name: "var/lib/rpm/Packages", typ: tar.TypeSymlink, link: "/srv/Packages"}},
	}, {
		name:    "hard link to shadow",
		entries: []entry{file("etc/shadow", []byte(secret)), {name: "var/lib/rpm/Packages", typ: tar.TypeLink, link: "etc/shadow"}},
	}, {
		name:    "directory",
		entries: []entry{{name: "var/lib/rpm/Packages/", typ: tar.TypeDir}, file("var/lib/rpm/Packages/x", libuuid)},
	}, {
		name:    "fifo",
		entries: []entry{{name: "var/lib/rpm/rpmdb.sqlite", typ: tar.TypeFifo}},
	}, {
		name:    "databases in other directories",
		entries: []entry{file("srv/var/lib/rpm/Packages", libuuid), file("var/lib/rpm/Packages.bak", libuuid), file("var/lib/rpm/Index.db", libuuid)},
	}, {
		name:    "shadow's content where a database is",
		entries: []entry{file("var/lib/rpm/Packages", []byte(secret))},
		path:    "/var/lib/rpm/Packages", want: "not an rpm database",
	}, {
		name:    "an empty file",
		entries: []entry{file("var/lib/rpm/Packages.db", nil)},
		path:    "/var/lib/rpm/Packages.db", want: "not an rpm database",
	}, {
		name:    "oversize",
		entries: []entry{file("var/lib/rpm/Packages", append(slices.Clone(libuuid), make([]byte, 2<<20)...))},
		lim:     sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: 1 << 20}},
		path:    "/var/lib/rpm/Packages", want: "more than the 1048576 this extractor reads",
	}, {
		name:    "garbage with an ndb header",
		entries: []entry{file("var/lib/rpm/Packages.db", []byte("RpmP\x00\x00\x00\x00\x01\x00\x00\x00"+strings.Repeat("\xff", 9000)))},
		path:    "/var/lib/rpm/Packages.db", want: "the ndb rpm database could not be read",
	}, {
		name:    "truncated SQLite",
		entries: []entry{file("var/lib/rpm/rpmdb.sqlite", sqlite[:8192])},
		path:    "/var/lib/rpm/rpmdb.sqlite", want: "the SQLite rpm database could not be read",
	}, {
		// go-rpmdb slices past the end of the page in its reader
		// goroutine: a panic that only a separate process survives.
		name: "Berkeley DB that panics go-rpmdb",
		entries: []entry{file("var/lib/rpm/Packages", mutate(func(db []byte) {
			binary.LittleEndian.PutUint16(db[hp*ps+20:], 0x1000) // NumEntries
		}))},
		path: "/var/lib/rpm/Packages", want: "panic: runtime error: slice bounds out of range",
	}, {
		// An overflow page that is not one: go-rpmdb re-reads it for
		// ever.
		name: "Berkeley DB that hangs go-rpmdb",
		entries: []entry{file("var/lib/rpm/Packages", mutate(func(db []byte) {
			db[op*ps+25] = 13 // page type
		}))},
		path: "/var/lib/rpm/Packages", want: "reading took too long: gave up after 2s",
		alone: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			// A good database beside the bad one, where it does not
			// take the bad one's place.
			e, wantPkgs := &Extractor{}, 5
			entries := tc.entries
			if tc.alone {
				e, wantPkgs = &Extractor{ReadTimeout: 2 * time.Second}, 0
			} else {
				entries = append(slices.Clone(entries), file("usr/lib/sysimage/rpm/rpmdb.sqlite", sqlite))
			}
			items, err := sdktest.ExtractErr(t.Context(), layer(t, entries...), tc.lim, e)
			if err != nil {
				t.Fatal(err)
			}
			checkItems(t, items)
			if n := len(sdktest.Packages(items)); n != wantPkgs {
				t.Errorf("%d packages of the good database, want %d", n, wantPkgs)
			}
			warnings := sdktest.Warnings(items)
			switch {
			case tc.path == "" && len(warnings) != 0:
				t.Errorf("warnings %+v, want none", warnings)
			case tc.path != "" && (len(warnings) != 1 || warnings[0].Path != tc.path || !strings.Contains(warnings[0].Message, tc.want)):
				t.Errorf("warnings %+v, want one about %s saying %q", warnings, tc.path, tc.want)
			}
			for _, w := range warnings {
				if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
					t.Errorf("warning quotes a file: %+v", w)
				}
			}
			if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
				t.Errorf("left in the temporary directory: %v", left)
			}
		})
	}
}

// An overflow page chain that loops makes go-rpmdb append without end:
// the reader's address-space limit stops it before it takes the
// sandbox's memory. (Not under the race detector, where the reader has
// no such limit.)
func TestReaderMemoryLimit(t *testing.T) {
	if raceEnabled {
		t.Skip("the reader's address space is not limited under the race detector")
	}
	libuuid := read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")
	ps, _, op := bdbLayout(t, libuuid)
	binary.LittleEndian.PutUint32(libuuid[op*ps+16:], uint32(op)) // NextPageNo: itself
	items := sdktest.Extract(t, layer(t, file("var/lib/rpm/Packages", libuuid)), &Extractor{ReadTimeout: 10 * time.Second})
	w := sdktest.Warnings(items)
	if len(sdktest.Packages(items)) != 0 || len(w) != 1 || !strings.Contains(w[0].Message, "out of memory") {
		t.Errorf("items %+v", items)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sdktest.ExtractErr(ctx, sdktest.TarDir(t, "testdata/sqlite"), sdk.LayerLimits{}, NewExtractor())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ExtractErr = %v, want context.Canceled", err)
	}
	e := NewExtractor()
	err = e.Extract(ctx, sdk.FileInfo{Path: "/var/lib/rpm/Packages", Mode: 0o644}, bytes.NewReader(read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")), &collector{items: new([]sdk.Item)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract = %v, want context.Canceled", err)
	}
}

// Cancellation reaches a reader that would not end by itself, in Extract
// (Berkeley DB) and in Finish (SQLite, whose reading a hung reader is
// the same process for).
func TestCancelledWhileReading(t *testing.T) {
	libuuid := read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")
	ps, _, op := bdbLayout(t, libuuid)
	libuuid[op*ps+25] = 13
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		// Cancel once the reader runs: when this test's process has a
		// child.
		for ctx.Err() == nil {
			if hasChild(t) {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := sdktest.ExtractErr(ctx, layer(t, file("var/lib/rpm/Packages", libuuid)), sdk.LayerLimits{}, &Extractor{ReadTimeout: time.Hour})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ExtractErr = %v, want context.Canceled", err)
	}
	if hasChild(t) {
		t.Error("the reader process is still running")
	}
}

// An output error (the host gone) stops the layer and is returned.
func TestOutputErrorStops(t *testing.T) {
	errGone := errors.New("host gone")
	e := NewExtractor().(*Extractor)
	out := &collector{items: new([]sdk.Item), fail: errGone}
	fi := sdk.FileInfo{Path: "/var/lib/rpm/Packages", Mode: 0o644}
	if err := e.Extract(t.Context(), fi, bytes.NewReader(read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")), out); err != nil {
		t.Fatal(err)
	}
	if err := e.Finish(t.Context(), nil, out); !errors.Is(err, errGone) {
		t.Errorf("Finish = %v", err)
	}
}

// A stream that breaks while a database is copied out of it is the
// layer's error, not a warning; nothing is left in the temporary
// directory.
func TestBrokenStream(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	sqlite := read(t, "testdata/sqlite/var/lib/rpm/rpmdb.sqlite")
	for _, name := range []string{"/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages"} {
		e := NewExtractor().(*Extractor)
		var items []sdk.Item
		r := io.MultiReader(bytes.NewReader(sqlite[:4096]), errReader{})
		if name == "/var/lib/rpm/Packages" {
			r = io.MultiReader(bytes.NewReader(read(t, "testdata/bdb-libuuid/var/lib/rpm/Packages")[:4096]), errReader{})
		}
		err := e.Extract(t.Context(), sdk.FileInfo{Path: name, Mode: 0o644}, r, &collector{items: &items})
		if err == nil || !strings.Contains(err.Error(), "broken stream") || len(items) != 0 {
			t.Errorf("%s: Extract = %v, items %+v", name, err, items)
		}
		if err := e.Finish(t.Context(), nil, &collector{items: &items}); err != nil || len(items) != 0 {
			t.Errorf("%s: Finish = %v, items %+v", name, err, items)
		}
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken stream") }

// hasChild tells whether this process has a child process (each thread
// lists the children it started).
func hasChild(t *testing.T) bool {
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil || len(files) == 0 {
		t.Errorf("cannot see child processes: %v", err)
		return false
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return true
		}
	}
	return false
}
