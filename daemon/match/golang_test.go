package match

import (
	"context"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/semver"

	"github.com/assayhq/assay/daemon/report"
)

// goOracle evaluates the Go records for a module version with
// golang.org/x/mod/semver, apart from the matcher: the Go vulndb's ranges
// are SEMVER, sorted, with introduced and fixed events only (checked
// here). It returns the affecting record ids and the fix of each.
func goOracle(t *testing.T, module, version string) map[string]string {
	t.Helper()
	v := "v" + strings.TrimPrefix(version, "v")
	if !semver.IsValid(v) {
		t.Fatalf("oracle: %s is not semver", v)
	}
	want := map[string]string{}
	for _, r := range loadDir(t, "go") {
		if r.GetWithdrawn() != nil {
			continue
		}
		for _, a := range r.GetAffected() {
			if a.GetPackage().GetEcosystem() != "Go" || a.GetPackage().GetName() != module {
				continue
			}
			if len(a.GetVersions()) != 0 {
				t.Fatalf("oracle: %s has versions[]", r.GetId())
			}
			for _, rg := range a.GetRanges() {
				if rg.GetType().String() != "SEMVER" {
					t.Fatalf("oracle: %s has a %s range", r.GetId(), rg.GetType())
				}
				affected, fix, prev := false, "", ""
				for _, e := range rg.GetEvents() {
					ev := "v" + e.GetIntroduced() + e.GetFixed()
					if e.GetLastAffected() != "" || e.GetLimit() != "" {
						t.Fatalf("oracle: %s has last_affected or limit", r.GetId())
					}
					if ev != "v0" {
						if prev != "" && semver.Compare(prev, ev) > 0 {
							t.Fatalf("oracle: %s's events are not sorted", r.GetId())
						}
						prev = ev
					}
					switch {
					case e.GetIntroduced() != "":
						if ev == "v0" || semver.Compare(v, ev) >= 0 {
							affected = true
						}
					case semver.Compare(v, ev) >= 0:
						affected = false
					case fix == "":
						fix = e.GetFixed()
					}
				}
				if affected {
					want[r.GetId()] = fix
				}
			}
		}
	}
	return want
}

// TestGoModules matches module versions and the stdlib against the 4,291
// Go records and compares with the oracle.
func TestGoModules(t *testing.T) {
	t.Parallel()
	db := newFakeDB(loadDir(t, "go")...)
	m := &Matcher{DB: db}
	for _, c := range []struct {
		name, version, oracle string
		min                   int // a floor, so that the test cannot pass empty
	}{
		{"golang.org/x/text", "v0.3.5", "0.3.5", 3},
		{"golang.org/x/text", "v0.3.8", "0.3.8", 1},
		{"golang.org/x/net", "v0.7.0", "0.7.0", 5},
		{"golang.org/x/crypto", "v0.0.0-20200622213623-75b288015ac9", "0.0.0-20200622213623-75b288015ac9", 5},
		{"stdlib", "go1.20.1", "1.20.1", 20}, // the form the brief's analyzer reports
		{"stdlib", "1.20.1", "1.20.1", 20},   // the form analyzers/gobinary reports
		{"stdlib", "go1.21rc2", "1.21.0-rc.2", 5},
		{"k8s.io/kubernetes", "v1.20.0", "1.20.0", 5},
		{"github.com/gin-gonic/gin", "v1.6.0", "1.6.0", 1},
		{"golang.org/x/text", "v0.39.0", "0.39.0", 0},
	} {
		want := goOracle(t, c.name, c.oracle)
		if len(want) < c.min {
			t.Fatalf("%s %s: the oracle finds only %d records", c.name, c.version, len(want))
		}
		p := report.Package{Ecosystem: "Go", Name: c.name, Version: c.version,
			PURL: "pkg:golang/" + c.name + "@" + c.version, Locations: []string{"/usr/local/bin/app"}}
		fs, warnings, err := m.Match(context.Background(), []report.Package{p})
		if err != nil || len(warnings) != 0 {
			t.Fatalf("%s %s: %v %q", c.name, c.version, err, warnings)
		}
		got := map[string]string{}
		for _, f := range fs {
			got[f.ID] = f.FixedVersion
			if f.Package.Version != c.version || f.Package.PURL != p.PURL || f.MatchedSource != nil || !slices.Equal(f.Locations, p.Locations) {
				t.Errorf("%s: %+v", f.ID, f)
			}
			if f.Summary == "" {
				t.Errorf("%s: no summary", f.ID)
			}
		}
		for id, fix := range want {
			if g, ok := got[id]; !ok {
				t.Errorf("%s %s: missing %s", c.name, c.version, id)
			} else if g != fix {
				t.Errorf("%s %s: %s fixed %q, the oracle says %q", c.name, c.version, id, g, fix)
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				t.Errorf("%s %s: unexpected %s", c.name, c.version, id)
			}
		}
		t.Logf("%s %s: %d findings", c.name, c.version, len(fs))
	}
}

// TestWithdrawnIsSkipped: GO-2022-0617 (withdrawn) says every version of
// k8s.io/kubernetes is affected. The same record without its withdrawn
// date matches, so the skip is what keeps it out.
func TestWithdrawnIsSkipped(t *testing.T) {
	r := loadRecord(t, "go/GO-2022-0617")
	if r.GetWithdrawn() == nil {
		t.Fatal("GO-2022-0617 is not withdrawn")
	}
	p := report.Package{Ecosystem: "Go", Name: "k8s.io/kubernetes", Version: "v1.30.0"}
	m := &Matcher{DB: newFakeDB(r)}
	fs, _, err := m.Match(context.Background(), []report.Package{p})
	if err != nil || len(fs) != 0 {
		t.Fatalf("withdrawn record matched: %+v %v", fs, err)
	}
	live := cloneRecord(r)
	live.Withdrawn = nil
	m = &Matcher{DB: newFakeDB(live)}
	fs, _, err = m.Match(context.Background(), []report.Package{p})
	if err != nil || len(fs) != 1 || fs[0].FixedVersion != "" {
		t.Fatalf("the record without withdrawn: %+v %v", fs, err)
	}
}
