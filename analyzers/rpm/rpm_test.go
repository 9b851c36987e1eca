package rpm

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// collect runs the analyzer over gRPC in this process, as assayd would
// over its socket.
func collect(t *testing.T, an Analyzer, req sdk.Request) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	c := sdktest.Connect(t, an)
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
	if d.Name != "rpm" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Contains(d.Ecosystems, "Red Hat") || !slices.Contains(d.Ecosystems, "openSUSE") ||
		d.Resources != (sdk.Resources{MemoryBytes: 512 << 20, Pids: 64, Timeout: 5 * time.Minute}) {
		t.Errorf("Describe = %+v", d)
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

// row rebuilds rpm's view of a reported package from the analyzer's
// fields: NAME, EPOCHNUM and ARCH from the purl, VERSION-RELEASE from the
// purl's version, SOURCERPM from SourceName and SourceVersion.
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

// The real databases of testdata: exactly the packages rpm itself lists
// in them, the gpg-pubkey entries excepted, with the ecosystem, version,
// purl and location each distribution's rules give.
func TestRealDatabases(t *testing.T) {
	for _, tc := range []struct {
		dir       string
		ecosystem string
		namespace string
		distro    string
		epochs    bool // a non-zero epoch goes into Version
		location  string
		warnings  []string
	}{
		{dir: "sqlite", ecosystem: "Red Hat:enterprise_linux:9::baseos", namespace: "redhat", distro: "rhel-9.4", epochs: true, location: "/var/lib/rpm/rpmdb.sqlite"},
		{dir: "sqlite-wal", ecosystem: "Red Hat:enterprise_linux:9::baseos", namespace: "redhat", distro: "rhel-9.4", epochs: true, location: "/var/lib/rpm/rpmdb.sqlite"},
		{dir: "ndb", ecosystem: "openSUSE:Leap 15.2.1", namespace: "opensuse", distro: "opensuse-leap-15.2.1", location: "/usr/lib/sysimage/rpm/Packages.db"},
		{dir: "sle15-bci", ecosystem: "SUSE:15.3", namespace: "suse", distro: "sles-15.3", location: "/usr/lib/sysimage/rpm/Packages.db"},
		{dir: "bdb-libuuid", ecosystem: "RPM", epochs: true, location: "/var/lib/rpm/Packages", warnings: []string{"no os-release"}},
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
			pkgs, warnings := collect(t, Analyzer{}, sdk.Request{Root: root, MaxFiles: 100, MaxFileBytes: 16 << 20})
			var got []wantRow
			for _, p := range pkgs {
				got = append(got, row(t, p))
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
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings %+v, want %q", warnings, tc.warnings)
			}
			for i, w := range warnings {
				if !strings.Contains(w.Message, tc.warnings[i]) {
					t.Errorf("warning %+v, want one about %q", w, tc.warnings[i])
				}
			}
		})
	}
}

// The WAL test data holds, in rpmdb.sqlite-wal only, rpm's erasure of
// assay-hello: read without its log, the database still lists it.
func TestWriteAheadLog(t *testing.T) {
	main := filepath.Join("testdata", "sqlite-wal", "var", "lib", "rpm", "rpmdb.sqlite")
	names := func(root string, req sdk.Request) []string {
		req.Root = root
		pkgs, _ := collect(t, Analyzer{}, req)
		var n []string
		for _, p := range pkgs {
			n = append(n, p.Name)
		}
		return n
	}
	if n := names(filepath.Join("testdata", "sqlite-wal"), sdk.Request{}); slices.Contains(n, "assay-hello") || len(n) != 4 {
		t.Errorf("with the log: %q", n)
	}
	// The main file alone: rpm's state before the erasure.
	root := t.TempDir()
	copyTo(t, main, filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"))
	if n := names(root, sdk.Request{}); !slices.Contains(n, "assay-hello") {
		t.Errorf("without the log: %q", n)
	}
	// A log that cannot be read is a warning that says what that means.
	for _, bad := range []struct {
		setup func(wal string)
		want  string
	}{
		{func(wal string) { symlink(t, "/", wal) }, "not a regular file"},
		{func(wal string) {
			// The log is smaller than the database: the limit hits
			// it only once it grew.
			copyTo(t, main+"-wal", wal)
			if err := os.Truncate(wal, 1<<20); err != nil {
				t.Fatal(err)
			}
		}, "over the limit"},
	} {
		root := t.TempDir()
		copyTo(t, main, filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"))
		copyTo(t, "../distro/testdata/os-release/rhel", filepath.Join(root, "etc/os-release"))
		bad.setup(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite-wal"))
		pkgs, warnings := collect(t, Analyzer{}, sdk.Request{Root: root, MaxFileBytes: 512 << 10})
		if len(pkgs) != 5 || len(warnings) != 1 || warnings[0].Path != "/var/lib/rpm/rpmdb.sqlite-wal" ||
			!strings.Contains(warnings[0].Message, bad.want) || !strings.Contains(warnings[0].Message, "missing") {
			t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
		}
	}
}

func copyTo(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, b)
}

func write(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// One database reached by two paths (/var/lib/rpm a link to
// /usr/lib/sysimage/rpm, as openSUSE has it) is read once; two databases
// holding the same packages give each package once, with both locations.
func TestSeveralDatabases(t *testing.T) {
	pkgs, _ := collect(t, Analyzer{}, sdk.Request{Root: filepath.Join("testdata", "ndb")})
	if len(pkgs) != 5 {
		t.Errorf("%d packages, want 5", len(pkgs))
	}
	root := t.TempDir()
	copyTo(t, "testdata/ndb/usr/lib/sysimage/rpm/Packages.db", filepath.Join(root, "usr/lib/sysimage/rpm/Packages.db"))
	copyTo(t, "testdata/sqlite/var/lib/rpm/rpmdb.sqlite", filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"))
	copyTo(t, "../distro/testdata/os-release/rhel", filepath.Join(root, "etc/os-release"))
	pkgs, warnings := collect(t, Analyzer{}, sdk.Request{Root: root})
	if len(pkgs) != 5 || len(warnings) != 0 {
		t.Fatalf("packages %+v, warnings %+v", pkgs, warnings)
	}
	for _, p := range pkgs {
		if !slices.Equal(p.Locations, []string{"/usr/lib/sysimage/rpm/Packages.db", "/var/lib/rpm/rpmdb.sqlite"}) {
			t.Errorf("%s: locations %q", p.Name, p.Locations)
		}
	}
}

func TestNoDatabase(t *testing.T) {
	root := t.TempDir()
	copyTo(t, "../distro/testdata/os-release/rhel", filepath.Join(root, "etc/os-release"))
	if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := collect(t, Analyzer{}, sdk.Request{Root: root})
	if len(pkgs) != 0 || len(warnings) != 0 {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
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

// A hostile image: links out and in loops, files that are no database,
// and Berkeley DB files made to crash, hang or exhaust go-rpmdb in its own
// goroutines. Each is one warning; no warning quotes a file; the good
// database beside them is read.
func TestHostile(t *testing.T) {
	libuuid, err := os.ReadFile("testdata/bdb-libuuid/var/lib/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	ps, hp, op := bdbLayout(t, libuuid)
	mutate := func(f func(db []byte)) []byte {
		db := slices.Clone(libuuid)
		f(db)
		return db
	}
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		path  string // of the warning
		want  string // in the warning
		// alone: no good database beside the bad one, whose reading
		// would have to fit in the short ReadTimeout of this case.
		alone bool
	}{{
		name: "absolute link to shadow",
		setup: func(t *testing.T, root string) {
			symlink(t, "/etc/shadow", filepath.Join(root, "var/lib/rpm/Packages"))
		},
		path: "/etc/shadow", want: "not an rpm database",
	}, {
		name: "relative link out of the root",
		setup: func(t *testing.T, root string) {
			symlink(t, "../../../../../../../../../etc/shadow", filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"))
		},
		path: "/etc/shadow", want: "not an rpm database",
	}, {
		name: "link loop",
		setup: func(t *testing.T, root string) {
			symlink(t, "Packages.db", filepath.Join(root, "usr/lib/sysimage/rpm/Packages.db"))
		},
		path: "/usr/lib/sysimage/rpm/Packages.db", want: "too many levels of symbolic links",
	}, {
		name: "link to nowhere",
		setup: func(t *testing.T, root string) {
			symlink(t, "/nowhere", filepath.Join(root, "var/lib/rpm/Packages.db"))
		},
		path: "/var/lib/rpm/Packages.db", want: "does not resolve",
	}, {
		name: "directory",
		setup: func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm/Packages"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
		path: "/var/lib/rpm/Packages", want: "not a regular file",
	}, {
		name: "fifo",
		setup: func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		path: "/var/lib/rpm/rpmdb.sqlite", want: "not a regular file",
	}, {
		name: "oversize",
		setup: func(t *testing.T, root string) {
			name := filepath.Join(root, "var/lib/rpm/Packages")
			write(t, name, libuuid)
			if err := os.Truncate(name, 50<<20); err != nil { // sparse
				t.Fatal(err)
			}
		},
		path: "/var/lib/rpm/Packages", want: "52428800 bytes, over the limit of 1048576",
	}, {
		name: "garbage with an ndb header",
		setup: func(t *testing.T, root string) {
			write(t, filepath.Join(root, "var/lib/rpm/Packages.db"), []byte("RpmP\x00\x00\x00\x00\x01\x00\x00\x00"+strings.Repeat("\xff", 9000)))
		},
		path: "/var/lib/rpm/Packages.db", want: "the ndb rpm database could not be read",
	}, {
		name: "truncated SQLite",
		setup: func(t *testing.T, root string) {
			db, err := os.ReadFile("testdata/sqlite/var/lib/rpm/rpmdb.sqlite")
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), db[:8192])
		},
		path: "/var/lib/rpm/rpmdb.sqlite", want: "the SQLite rpm database could not be read",
	}, {
		// go-rpmdb slices past the end of the page in its reader
		// goroutine: a panic that only a separate process survives.
		name: "Berkeley DB that panics go-rpmdb",
		setup: func(t *testing.T, root string) {
			write(t, filepath.Join(root, "var/lib/rpm/Packages"), mutate(func(db []byte) {
				binary.LittleEndian.PutUint16(db[hp*ps+20:], 0x1000) // NumEntries
			}))
		},
		path: "/var/lib/rpm/Packages", want: "panic: runtime error: slice bounds out of range",
	}, {
		// An overflow page that is not one: go-rpmdb re-reads it for
		// ever.
		name: "Berkeley DB that hangs go-rpmdb",
		setup: func(t *testing.T, root string) {
			write(t, filepath.Join(root, "var/lib/rpm/Packages"), mutate(func(db []byte) {
				db[op*ps+25] = 13 // page type
			}))
		},
		path: "/var/lib/rpm/Packages", want: "reading took too long: gave up after 2s",
		alone: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, filepath.Join(root, "etc/shadow"), []byte(secret))
			copyTo(t, "../distro/testdata/os-release/rhel", filepath.Join(root, "etc/os-release"))
			// A good database beside the bad one, where it does not
			// take the bad one's place.
			an, wantPkgs := Analyzer{}, 5
			if tc.alone {
				an, wantPkgs = Analyzer{ReadTimeout: 2 * time.Second}, 0
			} else {
				copyTo(t, "testdata/sqlite/var/lib/rpm/rpmdb.sqlite", filepath.Join(root, "usr/lib/sysimage/rpm/rpmdb.sqlite"))
			}
			tc.setup(t, root)
			pkgs, warnings := collect(t, an, sdk.Request{Root: root, MaxFileBytes: 1 << 20})
			if len(pkgs) != wantPkgs {
				t.Errorf("%d packages of the good database, want %d", len(pkgs), wantPkgs)
			}
			if len(warnings) != 1 || warnings[0].Path != tc.path || !strings.Contains(warnings[0].Message, tc.want) {
				t.Errorf("warnings %+v, want one about %s saying %q", warnings, tc.path, tc.want)
			}
			for _, w := range warnings {
				if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
					t.Errorf("warning quotes a file: %+v", w)
				}
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
	libuuid, err := os.ReadFile("testdata/bdb-libuuid/var/lib/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	ps, _, op := bdbLayout(t, libuuid)
	binary.LittleEndian.PutUint32(libuuid[op*ps+16:], uint32(op)) // NextPageNo: itself
	root := t.TempDir()
	write(t, filepath.Join(root, "var/lib/rpm/Packages"), libuuid)
	pkgs, warnings := collect(t, Analyzer{ReadTimeout: 10 * time.Second}, sdk.Request{Root: root})
	if len(pkgs) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0].Message, "out of memory") {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Analyzer{}.Analyze(ctx, sdk.Request{Root: filepath.Join("testdata", "sqlite")}, discard{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
}

// Cancellation reaches a reader that would not end by itself.
func TestCancelledWhileReading(t *testing.T) {
	libuuid, err := os.ReadFile("testdata/bdb-libuuid/var/lib/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	ps, _, op := bdbLayout(t, libuuid)
	libuuid[op*ps+25] = 13
	root := t.TempDir()
	write(t, filepath.Join(root, "var/lib/rpm/Packages"), libuuid)
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
	err = Analyzer{ReadTimeout: time.Hour}.Analyze(ctx, sdk.Request{Root: root}, discard{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
	if hasChild(t) {
		t.Error("the reader process is still running")
	}
}

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

type discard struct{}

func (discard) Package(sdk.Package) error { return nil }
func (discard) Finding(sdk.Finding) error { return nil }
func (discard) Warning(sdk.Warning) error { return nil }
