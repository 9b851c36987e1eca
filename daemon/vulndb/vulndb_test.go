package vulndb

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/assayhq/assay/daemon/match"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/assayhq/assay/daemon/errdefs"
)

func TestImportAllCountsPerEcosystem(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	db := newDB(t, Options{})
	res, err := db.Import(ctx, "", osvDir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != want.records || res.Added != want.records || res.Invalid != 0 || res.Withdrawn != len(want.withdrawn) {
		t.Errorf("result %+v, want %d records added, %d withdrawn, 0 invalid", res, want.records, len(want.withdrawn))
	}
	info, err := db.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Records != want.records || info.Withdrawn != len(want.withdrawn) {
		t.Errorf("info: %d records, %d withdrawn; want %d, %d", info.Records, info.Withdrawn, want.records, len(want.withdrawn))
	}
	if !reflect.DeepEqual(info.Ecosystems, want.ecosystems) {
		t.Errorf("ecosystems %v, want %v", info.Ecosystems, want.ecosystems)
	}
	if len(info.Sources) != 1 || info.Sources[0].Name != DefaultImportSource || info.Sources[0].Kind != KindImport || info.Sources[0].Records != want.records {
		t.Errorf("sources %+v", info.Sources)
	}
	if info.UpdatedAt.IsZero() || info.SizeBytes <= 0 {
		t.Errorf("updated_at %v, size %d", info.UpdatedAt, info.SizeBytes)
	}
	t.Logf("%d records, %d bytes on disk, imported in %s", info.Records, info.SizeBytes, res.Duration)
	for eco := range want.ecosystems {
		if ok, err := db.HasEcosystem(ctx, eco); err != nil || !ok {
			t.Errorf("HasEcosystem(%q) = %v, %v", eco, ok, err)
		}
	}
	for _, eco := range []string{"npm", "Debian:11", "pypi", ""} {
		if ok, err := db.HasEcosystem(ctx, eco); err != nil || ok {
			t.Errorf("HasEcosystem(%q) = %v, %v", eco, ok, err)
		}
	}
}

func TestQueryKnownPackages(t *testing.T) {
	ctx := context.Background()
	db := allDB(t)
	for _, tc := range []struct {
		eco, name string
		want      []string
	}{
		// grep -l '"name": "github.com/gin-gonic/gin"' go/*.json
		{"Go", "github.com/gin-gonic/gin", []string{"GO-2020-0001", "GO-2021-0052", "GO-2023-1737"}},
		{"Go", "GitHub.com/Gin-Gonic/Gin", nil}, // Go module paths are case-sensitive
		// grep -l '"name": "pyyaml"' pypi/*.json, asked as PEP 503 allows
		{"PyPI", "PyYAML", []string{"PYSEC-2018-49", "PYSEC-2020-176", "PYSEC-2020-96", "PYSEC-2021-142"}},
		{"PyPI", "JW__Util", []string{"PYSEC-2020-341"}}, // the record says "jw.util"
		{"PyPI", "jw-util", []string{"PYSEC-2020-341"}},
		// grep -l '"name": "perl"' debian/*.json: a Debian source package
		{"Debian:12", "perl", []string{
			"DEBCL-CVE-2020-10543", "DEBCL-CVE-2020-10878", "DEBCL-CVE-2020-12723", "DEBCL-CVE-2021-36770",
			"DEBCL-CVE-2023-31484", "DEBCL-CVE-2023-47038", "DEBCL-CVE-2024-56406", "DEBCL-CVE-2025-15649",
			"DEBCL-CVE-2025-40909", "DEBCL-CVE-2026-12087", "DEBCL-CVE-2026-13221", "DEBCL-CVE-2026-19487",
			"DEBCL-CVE-2026-42496", "DEBCL-CVE-2026-42497", "DEBCL-CVE-2026-48959", "DEBCL-CVE-2026-48962",
			"DEBCL-CVE-2026-57432", "DEBCL-CVE-2026-57433", "DEBCL-CVE-2026-7010", "DEBCL-CVE-2026-7017",
			"DEBCL-CVE-2026-8376"}},
		{"Debian:11", "perl", nil},
		{"Debian:7", "nginx", []string{"DSA-3029-1"}},
		{"Go", "", nil},
		{"Go", "a\x00b", nil},
	} {
		got, err := db.Query(ctx, tc.eco, tc.name)
		if err != nil {
			t.Fatalf("Query(%q, %q): %v", tc.eco, tc.name, err)
		}
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if want == nil {
			want = []string{}
		}
		if g := idsOf(got); !reflect.DeepEqual(g, want) {
			t.Errorf("Query(%q, %q) = %v, want %v", tc.eco, tc.name, g, want)
		}
	}
}

// TestIndexEveryPackage checks the index entries of every package the test
// data names (Query without decoding: TestQueryKnownPackages covers that)
// against the independent reading of the files.
func TestIndexEveryPackage(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	db := allDB(t)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for k, wantIDs := range want.packages {
			got, err := queryIDs(ctx, tx, k[0], k[1])
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, wantIDs) {
				t.Errorf("Query(%q, %q) = %v, want %v", k[0], k[1], got, wantIDs)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWithdrawnNeverMatch(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	db := allDB(t)
	// PYSEC-2021-13 (flask-caching) is withdrawn and the package's only record.
	if got, err := db.Query(ctx, "PyPI", "Flask_Caching"); err != nil || len(got) != 0 {
		t.Errorf("Query(flask-caching) = %v, %v; want none", idsOf(got), err)
	}
	// Every github.com/lib/pq record of the test data is withdrawn.
	if got, err := db.Query(ctx, "Go", "github.com/lib/pq"); err != nil || len(got) != 0 {
		t.Errorf("Query(lib/pq) = %v, %v; want none", idsOf(got), err)
	}
	// Still stored, and shown by Lookup with its withdrawn time.
	got, err := db.Lookup(ctx, "PYSEC-2021-13")
	if err != nil || len(got) != 1 || got[0].GetWithdrawn() == nil {
		t.Fatalf("Lookup(PYSEC-2021-13) = %v, %v", got, err)
	}
	info, err := db.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Withdrawn != len(want.withdrawn) || len(want.withdrawn) != 27 {
		t.Errorf("withdrawn %d, test data has %d (README: 27 expected)", info.Withdrawn, len(want.withdrawn))
	}
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	db := allDB(t)
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"CVE-2024-43406", []string{"GO-2024-3078", "PYSEC-2024-72"}}, // one CVE, two ecosystems
		{"CVE-2020-36567", []string{"GO-2020-0001"}},
		{"GHSA-6vm3-jj99-7229", []string{"GO-2020-0001"}},
		{"GO-2020-0001", []string{"GO-2020-0001"}},
		{"CVE-2023-21400", []string{"DLA-3623-1", "USN-7234-1"}}, // named as upstream
		{"CVE-2021-44228", []string{"CVE-2021-44228"}},
		{"CVE-1999-0000", nil},
		{"", nil},
	} {
		got, err := db.Lookup(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		w := tc.want
		if w == nil {
			w = []string{}
		}
		if g := idsOf(got); !reflect.DeepEqual(g, w) {
			t.Errorf("Lookup(%q) = %v, want %v", tc.q, g, w)
		}
	}
	// Every alias of the test data, against the independent reading
	// (ids only: the decoding is checked above).
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for alias, idset := range want.aliases {
			var w []string
			for id := range idset {
				w = append(w, id)
			}
			if _, ok := want.files[alias]; ok && !idset[alias] {
				w = append(w, alias)
			}
			sort.Strings(w)
			got, err := lookupIDs(ctx, tx, alias)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("Lookup(%q) = %v, want %v", alias, got, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStoresRecordAsReceived(t *testing.T) {
	ctx := context.Background()
	db := newDB(t, Options{})
	p := filepath.Join(testdataDir("go"), "GO-2020-0001.json")
	if _, err := db.Import(ctx, "", p); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	db.bolt.View(func(tx *bolt.Tx) error {
		stored = slices.Clone(tx.Bucket(bucketRecords).Get([]byte("GO-2020-0001")))
		return nil
	})
	if !bytes.Equal(stored, compact.Bytes()) {
		t.Errorf("stored %s\nwant the file compacted: %s", stored, compact.Bytes())
	}
	// Unknown fields survive: the raw record is kept, not the parsed one.
	if !bytes.Contains(stored, []byte(`"review_status":"REVIEWED"`)) {
		t.Errorf("database_specific lost: %s", stored)
	}
}

func TestImportMergesAndReportsChanges(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	db := newDB(t, Options{})
	a, err := db.Import(ctx, "", testdataDir("debian"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.Import(ctx, "", testdataDir("samples"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Added != 195 || b.Added != 4 || !a.Changed() || !b.Changed() {
		t.Errorf("debian %+v, samples %+v", a, b)
	}
	again, err := db.Import(ctx, "", testdataDir("debian"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Added != 0 || again.Updated != 0 || again.Unchanged != 195 || again.Changed() {
		t.Errorf("re-import: %+v", again)
	}
	info, _ := db.Info(ctx)
	if info.Records != 195+4 || info.Ecosystems["Debian:12"] != want.ecosystems["Debian:12"] || info.Ecosystems["Debian:7"] != want.ecosystems["Debian:7"] {
		t.Errorf("after both imports: %+v", info)
	}
	// A changed record is an update; its old index entries go.
	if _, err := db.Import(ctx, "", filepath.Join(testdataDir("go"), "GO-2020-0001.json")); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Query(ctx, "Go", "github.com/gin-gonic/gin"); !reflect.DeepEqual(idsOf(got), []string{"GO-2020-0001"}) {
		t.Fatalf("gin: %v", idsOf(got))
	}
	dir := t.TempDir()
	changed := bytes.Replace(want.files["GO-2020-0001"], []byte(`"name": "github.com/gin-gonic/gin"`), []byte(`"name": "example.com/renamed"`), 1)
	if err := os.WriteFile(filepath.Join(dir, "x.json"), changed, 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := db.Import(ctx, "", dir)
	if err != nil || up.Updated != 1 {
		t.Fatalf("update: %+v, %v", up, err)
	}
	if got, _ := db.Query(ctx, "Go", "github.com/gin-gonic/gin"); slices.Contains(idsOf(got), "GO-2020-0001") {
		t.Errorf("old index entry kept: %v", idsOf(got))
	}
	if got, _ := db.Query(ctx, "Go", "example.com/renamed"); !reflect.DeepEqual(idsOf(got), []string{"GO-2020-0001"}) {
		t.Errorf("new index entry missing: %v", idsOf(got))
	}
}

func TestInvalidRecords(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	debFiles := dirFiles(t, "debian")
	garbage := map[string][]byte{
		"not-json.json": []byte(`{"id": "X-1", "affected": [`),
		"no-id.json":    []byte(`{"summary": "a record without an id", "affected": []}`),
		"array.json":    []byte(`[{"id": "X-2"}]`),
		"bad-type.json": []byte(`{"id": "X-3", "aliases": "CVE-2020-0001"}`),
		"nul.json":      []byte(`{"id": "X\u0000-4"}`),
	}

	// One bad record among 196 is skipped and counted.
	db := newDB(t, Options{})
	one := buildZip(t, debFiles, map[string][]byte{"no-id.json": garbage["no-id.json"]})
	res, err := db.ImportZip(ctx, "", bytes.NewReader(one), int64(len(one)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Invalid != 1 || res.Added != 195 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "without an id") {
		t.Errorf("result %+v", res)
	}

	// Five bad among 195 (2.5%) refuse everything, as soon as the bad
	// ones alone pass 1% of the 200 entries.
	db = newDB(t, Options{})
	if _, err := db.Import(ctx, "", testdataDir("samples")); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Info(ctx)
	many := buildZip(t, debFiles, garbage)
	res, err = db.ImportZip(ctx, "", bytes.NewReader(many), int64(len(many)))
	if err == nil || !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "refusing") || res.Invalid != 3 {
		t.Fatalf("want refusal, got %+v, %v", res, err)
	}
	after, _ := db.Info(ctx)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("refused import changed the database: %+v -> %+v", before, after)
	}
	if ok, _ := db.HasEcosystem(ctx, "Debian:12"); ok || want.ecosystems["Debian:12"] == 0 {
		t.Errorf("refused records are visible")
	}

	// A single invalid file is refused with its reason.
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.json")
	os.WriteFile(p, garbage["not-json.json"], 0o600)
	if _, err := db.Import(ctx, "", p); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("want not valid JSON, got %v", err)
	}
	// Nothing to import is an error too.
	if _, err := db.Import(ctx, "", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no OSV records") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := db.Import(ctx, "", filepath.Join(dir, "missing")); err == nil {
		t.Errorf("missing path accepted")
	}
}

// TestZipBombRefused: an entry that inflates beyond the per-record limit is
// refused without being inflated, whether its header is honest or lies.
func TestZipBombRefused(t *testing.T) {
	ctx := context.Background()
	const limit = 64 << 10
	db := newDB(t, Options{MaxRecordBytes: limit})
	bomb := bytes.Repeat([]byte(" "), 4<<20) // 4 MiB of spaces, ~4 KiB deflated

	honest := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("BOMB-1.json")
		w.Write(bomb)
		zw.Close()
		return buf.Bytes()
	}()
	lying := func() []byte {
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.DefaultCompression)
		fw.Write(bomb)
		fw.Close()
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: "BOMB-2.json", Method: zip.Deflate,
			CRC32:              crc32.ChecksumIEEE([]byte(`{"id":"BOMB-2"}`)),
			CompressedSize64:   uint64(comp.Len()),
			UncompressedSize64: 15, // a lie
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
		zw.Close()
		return buf.Bytes()
	}()
	for name, z := range map[string][]byte{"honest header": honest, "lying header": lying} {
		res, err := db.ImportZip(ctx, "", bytes.NewReader(z), int64(len(z)))
		if err == nil || res.Invalid != 1 {
			t.Errorf("%s: want refusal, got %+v, %v", name, res, err)
		}
		t.Logf("%s: %v", name, err)
	}
	// Among good records the bomb is skipped, the rest imported.
	mixed := buildZip(t, dirFiles(t, "debian"), map[string][]byte{})
	zr, _ := zip.NewReader(bytes.NewReader(mixed), int64(len(mixed)))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		zw.Copy(f)
	}
	w, _ := zw.Create("BOMB-3.json")
	w.Write(bomb)
	zw.Close()
	res, err := db.ImportZip(ctx, "", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil || res.Invalid != 1 || res.Added != 195 || !strings.Contains(res.Errors[0], "BOMB-3") {
		t.Errorf("mixed: %+v, %v", res, err)
	}
	// An archive over the archive limit is refused before reading.
	small := newDB(t, Options{MaxArchiveBytes: 1000})
	if _, err := small.ImportZip(ctx, "", bytes.NewReader(honest), int64(len(honest))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized archive: %v", err)
	}
}

// TestImportCancelledMidTransaction: cancelling ctx while the batch is being
// written leaves the previous state, as a crash would.
func TestImportCancelledMidTransaction(t *testing.T) {
	ctx := context.Background()
	db := newDB(t, Options{})
	if _, err := db.Import(ctx, "", testdataDir("samples")); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Info(ctx)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	written := 0
	db.applyHook = func(i int) {
		written = i
		if i == 100 {
			cancel()
		}
	}
	_, err := db.Import(cctx, "", testdataDir("debian"))
	db.applyHook = nil
	if !errors.Is(err, context.Canceled) || written < 100 {
		t.Fatalf("want context.Canceled after 100 writes, got %v after %d", err, written)
	}
	after, _ := db.Info(ctx)
	after.SizeBytes, before.SizeBytes = 0, 0
	if !reflect.DeepEqual(before, after) {
		t.Errorf("cancelled import changed the database:\n%+v\n%+v", before, after)
	}
	if got, _ := db.Query(ctx, "Debian:12", "perl"); len(got) != 0 {
		t.Errorf("cancelled records visible: %v", idsOf(got))
	}
	// Cancelled while reading, too.
	cctx2, cancel2 := context.WithCancel(ctx)
	cancel2()
	if _, err := db.Import(cctx2, "", testdataDir("debian")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before reading: %v", err)
	}
	// And the same import, not cancelled, works.
	if res, err := db.Import(ctx, "", testdataDir("debian")); err != nil || res.Added != 195 {
		t.Errorf("retry: %+v, %v", res, err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "vulndb.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(ctx, "offline", testdataDir("debian"), testdataDir("samples")); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Info(ctx)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, path, Options{})
	after, err := db.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) || after.Records != 195+4 || after.Sources[0].Name != "offline" {
		t.Errorf("before %+v\nafter %+v", before, after)
	}
	if got, _ := db.Query(ctx, "Debian:12", "xz-utils"); len(got) == 0 {
		t.Errorf("no xz-utils records after reopen")
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vulndb.db")
	openDB(t, path, Options{})
	_, err := Open(ctx, path, Options{OpenTimeout: 50 * time.Millisecond})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second open: %v", err)
	}
}

// TestSourceOwnership: records belong to the last source that wrote them,
// so a scheduled source's replacement never removes what it does not own.
func TestSourceOwnership(t *testing.T) {
	ctx := context.Background()
	db := newDB(t, Options{})
	debFiles := dirFiles(t, "debian")
	if _, err := db.Import(ctx, "", testdataDir("debian")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "debian.zip")
	os.WriteFile(p, buildZip(t, without(debFiles, "DEBCL-CVE-2023-47038"), nil), 0o600)
	u := &Updater{DB: db, Sources: []string{p}}
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	src := sourcesByName(t, db)
	if src[p].Records != 194 || src[DefaultImportSource].Records != 1 {
		t.Errorf("sources %+v", src)
	}
	os.WriteFile(p, buildZip(t, without(debFiles, "DEBCL-CVE-2023-47038", "DEBCL-CVE-2024-56406"), nil), 0o600)
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// The record the import owns stays; the one the source dropped goes.
	got, _ := db.Query(ctx, "Debian:12", "perl")
	if ids := idsOf(got); len(ids) != 20 || !slices.Contains(ids, "DEBCL-CVE-2023-47038") || slices.Contains(ids, "DEBCL-CVE-2024-56406") {
		t.Errorf("perl after replacement: %v", ids)
	}
	// An import may not merge into a scheduled source.
	if _, err := db.Import(ctx, p, testdataDir("debian")); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("import into a scheduled source: %v", err)
	}
}

func TestRemoveSource(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	db := newDB(t, Options{})
	if _, err := db.Import(ctx, "debian", testdataDir("debian")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(ctx, "samples", testdataDir("samples")); err != nil {
		t.Fatal(err)
	}
	res, err := db.RemoveSource(ctx, "debian")
	if err != nil || res.Removed != 195 {
		t.Fatalf("remove: %+v, %v", res, err)
	}
	info, _ := db.Info(ctx)
	wantEco := map[string]int{"Debian:7": want.ecosystems["Debian:7"]}
	if info.Records != 4 || len(info.Sources) != 1 || info.Sources[0].Name != "samples" || !reflect.DeepEqual(info.Ecosystems, wantEco) {
		t.Errorf("after removal: %+v", info)
	}
	if got, _ := db.Lookup(ctx, "CVE-2023-47038"); len(got) != 0 {
		t.Errorf("removed record found by alias: %v", idsOf(got))
	}
	if _, err := db.RemoveSource(ctx, "debian"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second removal: %v", err)
	}
}

func sourcesByName(t *testing.T, db *DB) map[string]SourceInfo {
	t.Helper()
	info, err := db.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]SourceInfo{}
	for _, s := range info.Sources {
		m[s.Name] = s
	}
	return m
}

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ eco, in, want string }{
		// PEP 503's own examples: all normalize to "friendly-bard".
		{"PyPI", "friendly-bard", "friendly-bard"},
		{"PyPI", "Friendly-Bard", "friendly-bard"},
		{"PyPI", "FRIENDLY-BARD", "friendly-bard"},
		{"PyPI", "friendly.bard", "friendly-bard"},
		{"PyPI", "friendly_bard", "friendly-bard"},
		{"PyPI", "friendly--bard", "friendly-bard"},
		{"PyPI", "FrIeNdLy-._.-bArD", "friendly-bard"},
		{"PyPI", "_leading.", "-leading-"},
		{"Go", "github.com/Foo/Bar_Baz", "github.com/Foo/Bar_Baz"},
		{"npm", "@Scope/Pkg.js", "@Scope/Pkg.js"},
		{"Debian:12", "libpcre2-8-0", "libpcre2-8-0"},
		{"pypi", "Foo_Bar", "Foo_Bar"}, // only the ecosystem spelled as OSV spells it
	} {
		if got := match.NormalizeName(tc.eco, tc.in); got != tc.want {
			t.Errorf("match.NormalizeName(%q, %q) = %q, want %q", tc.eco, tc.in, got, tc.want)
		}
		if got := match.NormalizeName(tc.eco, tc.in); got != indepName(tc.eco, tc.in) {
			t.Errorf("match.NormalizeName(%q, %q) = %q, the regexp says %q", tc.eco, tc.in, got, indepName(tc.eco, tc.in))
		}
	}
}

// An upload of a few hundred KiB that declares many MiB of records (each
// padded with blanks, which compress about 1000:1) is refused unread:
// records are held in memory until applied.
func TestZipBombRefusedUnread(t *testing.T) {
	files := map[string][]byte{}
	pad := bytes.Repeat([]byte(" "), 2<<20)
	for i := range 40 {
		id := fmt.Sprintf("BOMB-%d", i)
		files[id] = append([]byte(`{"id":"`+id+`","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/x"}}]}`), pad...)
	}
	z := buildZip(t, files, nil)
	db := newDB(t, Options{})
	_, err := db.ImportZip(context.Background(), "import", bytes.NewReader(z), int64(len(z)))
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "zip bomb") {
		t.Fatalf("a %d-byte archive declaring 80 MiB: %v, want refused as a zip bomb", len(z), err)
	}
	if info, _ := db.Info(context.Background()); info.Records != 0 {
		t.Errorf("%d records stored from a refused archive", info.Records)
	}
}
