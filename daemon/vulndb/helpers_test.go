package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
)

// The shared, read-only OSV test data (see its README).
const osvDir = "../../../shared/testdata/osv"

func testdataDir(name string) string { return filepath.Join(osvDir, name) }

// independent is what the test data holds, worked out with encoding/json
// and a regexp, apart from the code under test.
type independent struct {
	files      map[string][]byte // id -> file bytes
	records    int
	withdrawn  map[string]bool
	ecosystems map[string]int             // non-withdrawn records per ecosystem
	packages   map[[2]string][]string     // (ecosystem, normalized name) -> non-withdrawn ids
	aliases    map[string]map[string]bool // alias or upstream -> ids
}

var quiet = slog.New(slog.DiscardHandler)

var pep503 = regexp.MustCompile(`[-_.]+`)

func indepName(eco, name string) string {
	if eco == "PyPI" {
		return strings.ToLower(pep503.ReplaceAllString(name, "-"))
	}
	return name
}

var (
	indepOnce sync.Once
	indepData *independent
	indepErr  error
)

func loadIndependent(t testing.TB) *independent {
	t.Helper()
	indepOnce.Do(func() {
		d := &independent{
			files:      map[string][]byte{},
			withdrawn:  map[string]bool{},
			ecosystems: map[string]int{},
			packages:   map[[2]string][]string{},
			aliases:    map[string]map[string]bool{},
		}
		indepErr = filepath.Walk(osvDir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".json") {
				return err
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			var r struct {
				ID        string   `json:"id"`
				Withdrawn *string  `json:"withdrawn"`
				Aliases   []string `json:"aliases"`
				Upstream  []string `json:"upstream"`
				Affected  []struct {
					Package struct{ Ecosystem, Name string }
				} `json:"affected"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			d.files[r.ID] = raw
			d.records++
			for _, a := range append(r.Aliases, r.Upstream...) {
				if d.aliases[a] == nil {
					d.aliases[a] = map[string]bool{}
				}
				d.aliases[a][r.ID] = true
			}
			if r.Withdrawn != nil {
				d.withdrawn[r.ID] = true
				return nil
			}
			ecos, pkgs := map[string]bool{}, map[[2]string]bool{}
			for _, a := range r.Affected {
				if a.Package.Ecosystem == "" || a.Package.Name == "" {
					continue
				}
				ecos[a.Package.Ecosystem] = true
				pkgs[[2]string{a.Package.Ecosystem, indepName(a.Package.Ecosystem, a.Package.Name)}] = true
			}
			for e := range ecos {
				d.ecosystems[e]++
			}
			for k := range pkgs {
				d.packages[k] = append(d.packages[k], r.ID)
			}
			return nil
		})
		for _, ids := range d.packages {
			sort.Strings(ids)
		}
		indepData = d
	})
	if indepErr != nil {
		t.Fatal(indepErr)
	}
	return indepData
}

// buildZip makes a flat OSV archive (<id>.json entries, as the public
// all.zip) of the given files plus extra entries.
func buildZip(t testing.TB, files map[string][]byte, extra map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files)+len(extra))
	all := map[string][]byte{}
	for id, b := range files {
		all[id+".json"] = b
	}
	for n, b := range extra {
		all[n] = b
	}
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dirFiles reads every record file of one test data folder, by id.
func dirFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(testdataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(testdataDir(dir), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(e.Name(), ".json")] = b
	}
	return out
}

func without(m map[string][]byte, ids ...string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			panic("test data lacks " + id)
		}
		delete(out, id)
	}
	return out
}

func openDB(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	db, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newDB(t testing.TB, opts Options) *DB {
	t.Helper()
	return openDB(t, filepath.Join(t.TempDir(), "vulndb.db"), opts)
}

var (
	allOnce sync.Once
	allPath string
	allErr  error
)

// allDB returns a fresh copy of a database holding all of the test data,
// imported once per test binary into source "import".
func allDB(t testing.TB) *DB {
	t.Helper()
	allOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vulndb-test-")
		if err != nil {
			allErr = err
			return
		}
		allPath = filepath.Join(dir, "all.db")
		db, err := Open(context.Background(), allPath, Options{Logger: quiet})
		if err != nil {
			allErr = err
			return
		}
		_, allErr = db.Import(context.Background(), "", osvDir)
		if err := db.Close(); allErr == nil {
			allErr = err
		}
	})
	if allErr != nil {
		t.Fatal(allErr)
	}
	dst := filepath.Join(t.TempDir(), "vulndb.db")
	copyFile(t, allPath, dst)
	return openDB(t, dst, Options{})
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if allPath != "" {
		os.RemoveAll(filepath.Dir(allPath))
	}
	os.Exit(code)
}

func idsOf(vs []*osvschema.Vulnerability) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.GetId())
	}
	return out
}
