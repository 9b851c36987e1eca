package assess

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/report"
)

// fakeMatcher reports one finding per package named in vulnerable.
type fakeMatcher struct{ vulnerable map[string]string }

func (m fakeMatcher) Match(ctx context.Context, pkgs []report.Package) ([]report.Finding, []string, error) {
	var out []report.Finding
	for _, p := range pkgs {
		if id, ok := m.vulnerable[p.Name]; ok && (p.Owner == "") {
			out = append(out, report.Finding{ID: id, Severity: report.High, FixedVersion: "9.9",
				Package: report.PackageRef{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version}})
		}
	}
	return out, nil, nil
}

type fakeDB struct {
	records    int
	ecosystems map[string]bool
}

func (d fakeDB) State(context.Context) (report.DBInfo, error) {
	return report.DBInfo{Records: d.records, UpdatedAt: time.Unix(1e9, 0)}, nil
}
func (d fakeDB) HasEcosystem(_ context.Context, e string) (bool, error) { return d.ecosystems[e], nil }

func newReport() *report.Report {
	return &report.Report{
		Digest:    "sha256:aa",
		Analyzers: []report.Analyzer{{Name: "dpkg", Status: report.AnalyzerOK}},
		Packages: []report.Package{
			{Ecosystem: "Debian:12", Name: "perl-base", Version: "5.36"},
			{Ecosystem: "PyPI", Name: "urllib3", Version: "1.26", Owner: "python3-urllib3"},
		},
	}
}

func TestVerdicts(t *testing.T) {
	ctx := context.Background()
	covered := fakeDB{records: 10, ecosystems: map[string]bool{"Debian:12": true}}
	for _, tt := range []struct {
		name    string
		a       Assessor
		want    report.Verdict
		warning string
	}{
		{"findings remain", Assessor{Matcher: fakeMatcher{map[string]string{"perl-base": "CVE-1"}}, DB: covered}, report.Unhealthy, ""},
		{"nothing found, covered", Assessor{Matcher: fakeMatcher{}, DB: covered, RequireCoverage: true}, report.Healthy, ""},
		{"empty database", Assessor{Matcher: fakeMatcher{}, DB: fakeDB{}}, report.Incomplete, "holds no advisories"},
		// The Debian-owned PyPI package is not matched by default, so PyPI
		// coverage is not needed; with OSOwned it is.
		{"owned package needs no coverage", Assessor{Matcher: fakeMatcher{}, DB: covered, RequireCoverage: true}, report.Healthy, ""},
		{"uncovered ecosystem", Assessor{Matcher: fakeMatcher{}, DB: covered, RequireCoverage: true, OSOwned: true}, report.Incomplete, "no advisories for PyPI"},
		{"uncovered but not required", Assessor{Matcher: fakeMatcher{}, DB: covered, OSOwned: true}, report.Healthy, "no advisories for PyPI"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newReport()
			if err := tt.a.Assess(ctx, r); err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tt.want {
				t.Errorf("verdict %s, want %s (warnings %q)", r.Verdict, tt.want, r.Warnings)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(report.WarningStrings(r.Warnings), "\n"), tt.warning) {
				t.Errorf("warnings %q lack %q", r.Warnings, tt.warning)
			}
			if r.VulnDB == nil || r.MatchedAt.IsZero() {
				t.Errorf("no database state or match time: %+v %v", r.VulnDB, r.MatchedAt)
			}
		})
	}
}

// Re-assessing replaces matched findings and assess's own warnings but
// keeps an analyzer's findings and warnings; a scan request's policy is
// applied again from the report.
func TestReassessKeepsAnalyzerFindings(t *testing.T) {
	ctx := context.Background()
	a := Assessor{Matcher: fakeMatcher{map[string]string{"perl-base": "CVE-1"}}, DB: fakeDB{records: 1, ecosystems: map[string]bool{"Debian:12": true}}}
	r := newReport()
	r.Findings = []report.Finding{{ID: "secret-1", Analyzer: "secrets", Severity: report.Critical}}
	// A plugin called "matching" or "policy" is not assay's matching or
	// policy: its warnings stay.
	r.Warnings = []report.Warning{{Analyzer: "dpkg", Message: "something skipped"}, {Analyzer: "matching", Message: "mine"}, {Analyzer: "policy", Message: "mine too"}}
	r.RequestPolicy = []byte(`{"ignore":[{"id":"CVE-1","reason":"accepted"}]}`)
	for i := 0; i < 2; i++ {
		if err := a.Assess(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.Findings) != 2 {
		t.Fatalf("%d findings after two assessments, want 2: %+v", len(r.Findings), r.Findings)
	}
	var cve *report.Finding
	for i := range r.Findings {
		if r.Findings[i].ID == "CVE-1" {
			cve = &r.Findings[i]
		}
	}
	if cve == nil || cve.Suppressed == nil || cve.Suppressed.Kind != report.SuppressedIgnore {
		t.Fatalf("the request's ignore rule did not apply: %+v", cve)
	}
	if r.Verdict != report.Unhealthy || r.Summary.Critical != 1 || r.Summary.Suppressed != 1 {
		t.Errorf("verdict %s summary %+v: the analyzer's critical finding remains", r.Verdict, r.Summary)
	}
	if len(r.Warnings) != 3 || r.Warnings[0].String() != "dpkg: something skipped" || r.Warnings[1].Analyzer != "matching" || r.Warnings[2].Analyzer != "policy" {
		t.Errorf("warnings %q", r.Warnings)
	}
	bad := newReport()
	bad.RequestPolicy = []byte(`{"min_severity":"bogus"}`)
	if err := (&Assessor{Matcher: fakeMatcher{}, DB: fakeDB{records: 1}}).Assess(ctx, bad); err == nil {
		t.Error("an invalid policy was accepted")
	}
}

func TestChanged(t *testing.T) {
	a := newReport()
	a.Findings = []report.Finding{{ID: "CVE-1", Severity: report.High}}
	b := newReport()
	b.Findings = []report.Finding{{ID: "CVE-1", Severity: report.High}}
	if Changed(a, b) {
		t.Error("equal findings reported as changed")
	}
	b.Findings[0].FixedVersion = "2.0"
	if !Changed(a, b) {
		t.Error("a new fixed version is a change")
	}
	b.Findings[0].FixedVersion = ""
	b.Findings[0].Suppressed = &report.Suppression{Kind: report.SuppressedVEX}
	if !Changed(a, b) {
		t.Error("a suppression is a change")
	}
	b.Findings[0].Suppressed = nil
	b.Verdict = report.Healthy
	if !Changed(a, b) {
		t.Error("a verdict change is a change")
	}
}

// A truncated inventory was not matched whole: never healthy; it stays
// truncated (and so incomplete) when re-assessed.
func TestTruncatedIsNeverHealthy(t *testing.T) {
	ctx := context.Background()
	a := Assessor{Matcher: fakeMatcher{}, DB: fakeDB{records: 10, ecosystems: map[string]bool{"Debian:12": true}}}
	r := newReport()
	for i := range 5 {
		r.Packages = append(r.Packages, report.Package{Ecosystem: "npm", Name: "lodash", Version: "4.17.21",
			Locations: []string{"/a/" + strings.Repeat("x", i), "/b", "/c"}})
	}
	w := report.Truncate(r, 4, 2)
	if !r.Truncated || len(r.Packages) != 4 || len(r.Packages[3].Locations) != 2 ||
		!strings.Contains(w, "7 packages, more than limits.max_report_packages (4)") || !strings.Contains(w, "2 packages had more than limits.max_package_locations (2)") {
		t.Fatalf("Truncate: %d packages, warning %q", len(r.Packages), w)
	}
	for range 2 {
		if err := a.Assess(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Verdict != report.Incomplete || !strings.Contains(strings.Join(report.WarningStrings(r.Warnings), "\n"), "limits: the inventory was truncated") {
			t.Errorf("truncated report: verdict %s, warnings %q", r.Verdict, r.Warnings)
		}
	}
	if w := report.Truncate(newReport(), 4, 2); w != "" {
		t.Errorf("a report under the caps was truncated: %q", w)
	}
}

// The ecosystems of an assessed image are announced (Need); an uncovered
// one whose data is unavailable says why, and the image is incomplete.
func TestNeedAndUnavailable(t *testing.T) {
	var needed []string
	a := Assessor{Matcher: fakeMatcher{}, DB: fakeDB{records: 1}, RequireCoverage: true,
		Need: func(_ context.Context, e ...string) { needed = append(needed, e...) },
		Unavailable: func(e string) string {
			if e == "Debian:12" {
				return "fetch https://osv.example/Debian/all.zip: no route to host"
			}
			return ""
		}}
	rep := newReport()
	if err := a.Assess(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(needed, "Debian:12") {
		t.Errorf("needed %v", needed)
	}
	if rep.Verdict != report.Incomplete || !slices.ContainsFunc(rep.Warnings, func(w report.Warning) bool {
		return strings.HasPrefix(w.Message, "vulnerability data unavailable: fetch https://osv.example/Debian/all.zip")
	}) {
		t.Errorf("verdict %s, warnings %+v", rep.Verdict, rep.Warnings)
	}
}
