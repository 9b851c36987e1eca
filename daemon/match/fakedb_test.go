package match

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// osvDir holds the shared, real OSV records.
const osvDir = "../../../shared/testdata/osv"

// fakeDB is the DB the tests use: real records indexed as daemon/vulndb
// does, by every affected entry's ecosystem and normalised name.
type fakeDB struct {
	mu      sync.Mutex
	index   map[string][]*osvschema.Vulnerability
	queries []string
	// all is returned for every query when set (records with no affected
	// entries, which no index would find).
	all []*osvschema.Vulnerability
	err error
	// quiet stops recording queries (benchmarks).
	quiet bool
}

func newFakeDB(recs ...*osvschema.Vulnerability) *fakeDB {
	db := &fakeDB{index: map[string][]*osvschema.Vulnerability{}}
	for _, r := range recs {
		seen := map[string]bool{}
		for _, a := range r.GetAffected() {
			eco := a.GetPackage().GetEcosystem()
			k := eco + "\x00" + NormalizeName(eco, a.GetPackage().GetName())
			if !seen[k] {
				seen[k] = true
				db.index[k] = append(db.index[k], r)
			}
		}
	}
	return db
}

func (db *fakeDB) Query(ctx context.Context, ecosystem, name string) ([]*osvschema.Vulnerability, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if !db.quiet {
		db.queries = append(db.queries, ecosystem+" "+name)
	}
	if db.err != nil {
		return nil, db.err
	}
	return append(slices.Clone(db.index[ecosystem+"\x00"+name]), db.all...), nil
}

var _ DB = (*fakeDB)(nil)

func parseRecord(t testing.TB, data []byte, name string) *osvschema.Vulnerability {
	t.Helper()
	v := &osvschema.Vulnerability{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// loadRecord reads one record, e.g. loadRecord(t, "pypi/PYSEC-2012-1").
func loadRecord(t testing.TB, rel string) *osvschema.Vulnerability {
	t.Helper()
	p := filepath.Join(osvDir, rel+".json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return parseRecord(t, data, p)
}

// cloneRecord copies a record so a test may change it.
func cloneRecord(v *osvschema.Vulnerability) *osvschema.Vulnerability {
	return proto.Clone(v).(*osvschema.Vulnerability)
}

var (
	dirMu    sync.Mutex
	dirCache = map[string][]*osvschema.Vulnerability{}
)

// loadDir reads every record of a folder of osvDir ("go", "pypi",
// "debian"), once per test binary.
func loadDir(t testing.TB, dir string) []*osvschema.Vulnerability {
	t.Helper()
	dirMu.Lock()
	defer dirMu.Unlock()
	if recs, ok := dirCache[dir]; ok {
		return recs
	}
	entries, err := os.ReadDir(filepath.Join(osvDir, dir))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*osvschema.Vulnerability
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(osvDir, dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, parseRecord(t, data, p))
	}
	if len(recs) == 0 {
		t.Fatalf("no records in %s", dir)
	}
	dirCache[dir] = recs
	return recs
}
