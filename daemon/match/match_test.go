package match

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/daemon/report"
)

// TestDeterministic: the same inventory in another order, against records
// returned in another order, gives the same findings.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	pkgs := debianInventory(t)
	pkgs = append(pkgs, pypi("zope", "5.1"), pypi("distributed", "2021.9.1"),
		report.Package{Ecosystem: "Go", Name: "stdlib", Version: "go1.20.1"})
	recs := slices.Concat(loadDir(t, "debian"), loadDir(t, "pypi"), loadDir(t, "go"))
	first, w1, err := (&Matcher{DB: newFakeDB(recs...)}).Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 100 {
		t.Fatalf("only %d findings", len(first))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2 {
		p := slices.Clone(pkgs)
		rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		r := slices.Clone(recs)
		rng.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
		again, w2, err := (&Matcher{DB: newFakeDB(r...)}).Match(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatal("findings differ with the input order")
		}
		slices.Sort(w1)
		slices.Sort(w2)
		if !slices.Equal(w1, w2) {
			t.Fatalf("warnings differ: %q, %q", w1, w2)
		}
	}
}

func TestDBErrorFailsTheMatch(t *testing.T) {
	db := newFakeDB(loadDir(t, "debian")...)
	db.err = errors.New("bbolt: database not open")
	fs, _, err := (&Matcher{DB: db}).Match(context.Background(), debianInventory(t))
	if err == nil || !errors.Is(err, db.err) || fs != nil || !strings.Contains(err.Error(), "looking up advisories") {
		t.Fatalf("%v, %d findings", err, len(fs))
	}
	if _, _, err := (&Matcher{}).Match(context.Background(), nil); err == nil {
		t.Error("no DB: no error")
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	db := newFakeDB(loadDir(t, "debian")...)
	fs, _, err := (&Matcher{DB: db}).Match(ctx, debianInventory(t))
	if !errors.Is(err, context.Canceled) || fs != nil || len(db.queries) != 0 {
		t.Fatalf("%v, %d findings, %d queries", err, len(fs), len(db.queries))
	}
}

func TestEmptyInventory(t *testing.T) {
	fs, warnings, err := (&Matcher{DB: newFakeDB()}).Match(context.Background(), nil)
	if err != nil || len(fs) != 0 || len(warnings) != 0 {
		t.Fatal(fs, warnings, err)
	}
}

func TestNaturalIDOrder(t *testing.T) {
	ids := []string{"CVE-2021-1", "GHSA-aaaa-bbbb-cccc", "PYSEC-2021-104", "GO-2021-0113", "PYSEC-2021-88", "DSA-3029-1", "CVE-2020-99999"}
	slices.SortFunc(ids, compareIDs)
	want := []string{"DSA-3029-1", "GO-2021-0113", "PYSEC-2021-88", "PYSEC-2021-104", "GHSA-aaaa-bbbb-cccc", "CVE-2020-99999", "CVE-2021-1"}
	if !slices.Equal(ids, want) {
		t.Errorf("%q, want %q", ids, want)
	}
}

// BenchmarkMatchDebianImage matches the 88 packages of the Debian 12
// image against the 195 Debian records through the fake DB.
func BenchmarkMatchDebianImage(b *testing.B) {
	pkgs := debianInventory(b)
	db := newFakeDB(loadDir(b, "debian")...)
	db.quiet = true
	m := &Matcher{DB: db}
	ctx := context.Background()
	b.ReportAllocs()
	findings := 0
	for b.Loop() {
		fs, _, err := m.Match(ctx, pkgs)
		if err != nil {
			b.Fatal(err)
		}
		findings = len(fs)
	}
	b.ReportMetric(float64(findings), "findings")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pkgs)), "ns/package")
}
