package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/report"
)

func date(t *testing.T, s string) *time.Time {
	t.Helper()
	d, err := ParseExpiry(s)
	if err != nil {
		t.Fatal(err)
	}
	return &d
}

// suppressedIDs lists the ids of the suppressed findings of kind, with the
// package name, sorted.
func suppressedIDs(r *report.Report, kind string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Suppressed != nil && f.Suppressed.Kind == kind {
			out = append(out, f.Package.Name+" "+f.ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestIgnoreRules(t *testing.T) {
	cases := []struct {
		name string
		rule Rule
		want []string // package and id of every finding hidden, sorted
	}{
		{"by id", Rule{ID: "debcl-cve-2026-8376"},
			[]string{"perl-base DEBCL-CVE-2026-8376"}},
		{"by alias", Rule{ID: "CVE-2025-15649"},
			[]string{"perl-base DEBCL-CVE-2025-15649"}},
		{"by GHSA alias", Rule{ID: "GHSA-r9hj-j2rw-4q3m"},
			[]string{"libpcre2-8-0 DEBCL-GHSA-r9hj-j2rw-4q3m"}},
		{"by package name", Rule{Package: "libpcre2-8-0"},
			[]string{"libpcre2-8-0 DEBCL-CVE-2026-103111", "libpcre2-8-0 DEBCL-GHSA-r9hj-j2rw-4q3m"}},
		{"by ecosystem/name", Rule{Package: "Debian/libapt-pkg6.0"},
			[]string{"libapt-pkg6.0 DEBCL-CVE-2026-109518"}},
		{"by ecosystem with release/name", Rule{Package: "Debian:12/liblzma5"},
			[]string{"liblzma5 DEBCL-GHSA-5qpq-xqfv-j9pg"}},
		{"other release", Rule{Package: "Debian:11/liblzma5"}, nil},
		// apt's advisory names the source package apt: both binaries
		{"by source package name", Rule{Package: "apt"},
			[]string{"apt DEBCL-CVE-2026-109518", "libapt-pkg6.0 DEBCL-CVE-2026-109518"}},
		{"by purl without version", Rule{Package: "pkg:deb/debian/liblzma5"},
			[]string{"liblzma5 DEBCL-GHSA-5qpq-xqfv-j9pg"}},
		{"by purl with the installed version", Rule{Package: "pkg:deb/debian/libpcre2-8-0@10.42-1?arch=amd64"},
			[]string{"libpcre2-8-0 DEBCL-CVE-2026-103111", "libpcre2-8-0 DEBCL-GHSA-r9hj-j2rw-4q3m"}},
		{"by purl with another version", Rule{Package: "pkg:deb/debian/liblzma5@5.4.1-1%2Bdeb12u2"}, nil},
		{"by purl with another arch", Rule{Package: "pkg:deb/debian/liblzma5?arch=arm64"}, nil},
		{"id and package both match", Rule{ID: "CVE-2026-109518", Package: "libapt-pkg6.0"},
			[]string{"libapt-pkg6.0 DEBCL-CVE-2026-109518"}},
		{"id matches, package does not", Rule{ID: "CVE-2026-109518", Package: "perl-base"}, nil},
		{"by path glob", Rule{ID: "CVE-2026-48962", Path: "/var/lib/dpkg/**"},
			[]string{"perl-base DEBCL-CVE-2026-48962"}},
		{"path glob that does not match", Rule{ID: "CVE-2026-48962", Path: "/usr/lib/**"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.rule.Reason = "reviewed by the platform team"
			r := debianReport(t)
			compile(t, Policy{Ignore: []Rule{c.rule}}).Apply(r, now)
			if got := suppressedIDs(r, report.SuppressedIgnore); !slices.Equal(got, c.want) {
				t.Errorf("hidden: %q, want %q", got, c.want)
			}
			for _, f := range r.Findings {
				if s := f.Suppressed; s != nil && (s.Reason != c.rule.Reason || s.Expires != nil) {
					t.Errorf("%s: suppression %+v", f.ID, *s)
				}
			}
		})
	}
}

// Path globs on Go binaries' locations.
func TestIgnoreByPath(t *testing.T) {
	r := goReport(t)
	p := Policy{Ignore: []Rule{{Path: "/app/*", Reason: "gogs is replaced next sprint"}}}
	compile(t, p).Apply(r, now)
	for _, f := range r.Findings {
		if hidden := f.Suppressed != nil; hidden != (f.Package.Name == "gogs.io/gogs") {
			t.Errorf("%s %s: hidden=%v", f.Package.Name, f.ID, hidden)
		}
	}

	r = goReport(t)
	p = Policy{Ignore: []Rule{{Path: "**/bin/prog", Package: "stdlib", Reason: "r"}}}
	compile(t, p).Apply(r, now)
	n := 0
	for _, f := range r.Findings {
		if f.Suppressed != nil {
			n++
			if f.Package.Name != "stdlib" {
				t.Errorf("%s %s hidden", f.Package.Name, f.ID)
			}
		}
	}
	if n != 70 {
		t.Errorf("%d stdlib findings hidden, want all 70", n)
	}
}

func TestIgnoreExpiry(t *testing.T) {
	p := Policy{Ignore: []Rule{
		{ID: "CVE-2026-57432", Reason: "accepted until November", Expires: date(t, "2026-11-30")},
		{Package: "libpcre2-8-0", Reason: "accepted until the rebuild", Expires: date(t, "2027-01-31")},
		{ID: "CVE-2026-57433", Reason: "accepted until the morning", Expires: date(t, "2026-12-05T09:00:00+01:00")},
		// also matches pcre2, after rule 2: the first matching rule wins
		{Package: "pkg:deb/debian/libpcre2-8-0", Reason: "second rule"},
	}}
	r := debianReport(t)
	c := compile(t, p)
	c.Apply(r, now)

	if f := findingByID(r, "DEBCL-CVE-2026-57432"); f.Suppressed != nil {
		t.Errorf("an expired rule still hides %s: %+v", f.ID, *f.Suppressed)
	}
	if f := findingByID(r, "DEBCL-CVE-2026-57433"); f.Suppressed != nil {
		t.Errorf("an expired rule still hides %s: %+v", f.ID, *f.Suppressed)
	}
	want := []string{
		"policy: ignore rule 1 (id CVE-2026-57432) expired on 2026-11-30 and no longer applies",
		"policy: ignore rule 3 (id CVE-2026-57433) expired on 2026-12-05T09:00:00+01:00 and no longer applies",
	}
	if !slices.Equal(report.WarningStrings(r.Warnings), want) {
		t.Errorf("warnings:\n%q\nwant\n%q", r.Warnings, want)
	}
	for _, id := range []string{"DEBCL-CVE-2026-103111", "DEBCL-GHSA-r9hj-j2rw-4q3m"} {
		s := findingByID(r, id).Suppressed
		if s == nil || s.Reason != "accepted until the rebuild" || s.Expires == nil || !s.Expires.Equal(*p.Ignore[1].Expires) {
			t.Errorf("%s: suppression %+v, want rule 2's reason and expiry", id, s)
		}
	}

	// A rule that expires on a date applies through that day.
	r = debianReport(t)
	c.Apply(r, time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC))
	if f := findingByID(r, "DEBCL-CVE-2026-57432"); f.Suppressed == nil {
		t.Error("a rule expiring on 2026-11-30 no longer applied on the evening of that day")
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings before any rule expired: %q", r.Warnings)
	}
}

func TestOnlyFixed(t *testing.T) {
	r := goReport(t)
	compile(t, Policy{OnlyFixed: true}).Apply(r, now)
	var unfixed, hidden int
	for _, f := range r.Findings {
		if f.FixedVersion == "" {
			unfixed++
		}
		if s := f.Suppressed; s != nil {
			hidden++
			if s.Kind != report.SuppressedOnlyFixed || f.FixedVersion != "" || !strings.Contains(s.Reason, "only_fixed") {
				t.Errorf("%s (fixed %q): suppression %+v", f.ID, f.FixedVersion, *s)
			}
		}
	}
	if unfixed == 0 || hidden != unfixed {
		t.Errorf("%d findings without a fix, %d hidden", unfixed, hidden)
	}
	if r.Summary.Suppressed != unfixed || r.Summary.Total() != len(r.Findings)-unfixed {
		t.Errorf("summary %+v, with %d of %d findings unfixed", r.Summary, unfixed, len(r.Findings))
	}
}

func TestMinSeverity(t *testing.T) {
	r := debianReport(t)
	compile(t, Policy{MinSeverity: "High"}).Apply(r, now)
	var high, medium int
	for _, f := range r.Findings {
		switch f.Severity {
		case report.High:
			high++
			if f.Suppressed != nil {
				t.Errorf("%s (high) hidden by min_severity high", f.ID)
			}
		case report.Medium:
			medium++
			s := f.Suppressed
			if s == nil || s.Kind != report.SuppressedMinSeverity || s.Reason != "severity medium is below the policy's min_severity high" {
				t.Errorf("%s (medium): suppression %+v", f.ID, s)
			}
		default:
			t.Fatalf("fixture: %s has severity %s", f.ID, f.Severity)
		}
	}
	if high == 0 || medium == 0 {
		t.Fatalf("fixture: %d high and %d medium findings", high, medium)
	}
	if want := (report.Summary{High: high, Suppressed: medium}); r.Summary != want {
		t.Errorf("summary %+v, want %+v", r.Summary, want)
	}

	// Unknown severity is not a low one: min_severity never hides it.
	g := goReport(t)
	compile(t, Policy{MinSeverity: report.Low}).Apply(g, now)
	if g.Summary.Suppressed != 0 || g.Summary.Unknown != len(g.Findings) || g.Verdict != report.Unhealthy {
		t.Errorf("Go findings have no severity; with min_severity low: summary %+v, verdict %s", g.Summary, g.Verdict)
	}
}

// The first reason that applies is the one recorded: vex, then ignore,
// then only_fixed, then min_severity.
func TestPrecedence(t *testing.T) {
	p := Policy{
		MinSeverity: report.Critical,
		VEX:         []string{vendorVEX},
		Ignore:      []Rule{{Package: "perl-base", Reason: "perl is only used by maintainer scripts"}},
	}
	r := debianReport(t)
	compile(t, p).Apply(r, now)
	for id, kind := range map[string]string{
		"DEBCL-CVE-2026-13221":      report.SuppressedVEX,    // vex and the rule
		"DEBCL-CVE-2026-8376":       report.SuppressedIgnore, // the rule and min_severity
		"DEBCL-GHSA-5qpq-xqfv-j9pg": report.SuppressedVEX,
		"DEBCL-CVE-2026-109518":     report.SuppressedMinSeverity,
	} {
		if s := findingByID(r, id).Suppressed; s == nil || s.Kind != kind {
			t.Errorf("%s: suppression %+v, want %s", id, s, kind)
		}
	}

	// Go's advisories carry no severity: min_severity never hides an
	// unknown severity (no score is not a low score); only_fixed still
	// applies.
	g := goReport(t)
	compile(t, Policy{OnlyFixed: true, MinSeverity: report.Critical}).Apply(g, now)
	for _, f := range g.Findings {
		if f.Severity != report.Unknown {
			t.Fatalf("%s has severity %s; this test wants Go's unscored advisories", f.ID, f.Severity)
		}
		if f.FixedVersion == "" {
			if f.Suppressed == nil || f.Suppressed.Kind != report.SuppressedOnlyFixed {
				t.Errorf("%s (no fix): suppression %+v, want only_fixed", f.ID, f.Suppressed)
			}
		} else if f.Suppressed != nil {
			t.Errorf("%s (fixed %q, unknown severity): suppressed %+v by min_severity critical", f.ID, f.FixedVersion, f.Suppressed)
		}
	}
}

func TestVerdict(t *testing.T) {
	everything := Policy{Ignore: []Rule{{Path: "/**", Reason: "accepted risk"}}}

	r := debianReport(t)
	compile(t, everything).Apply(r, now)
	if r.Verdict != report.Healthy || r.Summary.Total() != 0 || r.Summary.Suppressed != len(r.Findings) || r.Recommendations != nil {
		t.Errorf("all suppressed, analyzers ok: verdict %s, summary %+v, %d recommendations", r.Verdict, r.Summary, len(r.Recommendations))
	}

	// An analyzer that failed makes the scan incomplete, findings or not.
	r = debianReport(t)
	r.Findings = nil
	r.Analyzers = append(r.Analyzers, report.Analyzer{Name: "python", Version: "1", Status: report.AnalyzerFailed, Error: "sandbox: out of memory"})
	compile(t, Policy{}).Apply(r, now)
	if r.Verdict != report.Incomplete || r.Recommendations != nil {
		t.Errorf("failed analyzer, no findings: verdict %s, %d recommendations", r.Verdict, len(r.Recommendations))
	}
	r = debianReport(t)
	r.Analyzers = append(r.Analyzers, report.Analyzer{Name: "python", Version: "1", Status: report.AnalyzerTimeout})
	compile(t, Policy{}).Apply(r, now)
	if r.Verdict != report.Incomplete || r.Recommendations != nil {
		t.Errorf("timed-out analyzer with findings: verdict %s, %d recommendations", r.Verdict, len(r.Recommendations))
	}

	r = debianReport(t)
	compile(t, Policy{VEX: []string{vendorVEX}}).Apply(r, now)
	if r.Verdict != report.Unhealthy || len(r.Recommendations) == 0 {
		t.Errorf("findings remain: verdict %s, %d recommendations", r.Verdict, len(r.Recommendations))
	}
	if want := (report.Summary{High: 9, Medium: 1, Suppressed: 8}); r.Summary != want {
		t.Errorf("summary %+v, want %+v", r.Summary, want)
	}
}

func TestRecommendations(t *testing.T) {
	r := debianReport(t)
	compile(t, Policy{VEX: []string{vendorVEX}}).Apply(r, now)
	var got []string
	for _, rec := range r.Recommendations {
		got = append(got, rec.Package.Name+" "+rec.Package.Version+" -> "+rec.FixedVersion)
	}
	// Packages whose findings all were suppressed (liblzma5,
	// libapt-pkg6.0) get none.
	want := []string{
		"apt 2.6.1 -> 2.6.2",
		"libpcre2-8-0 10.42-1 -> 10.42-1+deb12u2",
		"perl-base 5.36.0-7+deb12u3 -> 5.36.0-7+deb12u4",
	}
	if !slices.Equal(got, want) {
		t.Errorf("recommendations:\n%q\nwant\n%q", got, want)
	}
	perl := r.Recommendations[2]
	wantIDs := []string{
		"DEBCL-CVE-2025-15649", "DEBCL-CVE-2026-12087", "DEBCL-CVE-2026-19487", "DEBCL-CVE-2026-42496",
		"DEBCL-CVE-2026-48962", "DEBCL-CVE-2026-57432", "DEBCL-CVE-2026-57433", "DEBCL-CVE-2026-8376",
	}
	if !slices.Equal(perl.Findings, wantIDs) || perl.Unfixed != nil ||
		!slices.Equal(perl.Locations, []string{"/var/lib/dpkg/status"}) || perl.Package.PURL != perlBase {
		t.Errorf("perl-base: %+v", perl)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %q", r.Warnings)
	}
}

// The recommended version is the highest fix in the ecosystem's order, not
// in string order; a package with an unfixed finding gets no version.
func TestRecommendationsHighestFix(t *testing.T) {
	r := goReport(t)
	compile(t, Policy{}).Apply(r, now)
	if r.Verdict != report.Unhealthy || len(r.Recommendations) != 3 {
		t.Fatalf("verdict %s, %d recommendations", r.Verdict, len(r.Recommendations))
	}
	byName := map[string]report.Recommendation{}
	for _, rec := range r.Recommendations {
		byName[rec.Package.Name] = rec
	}

	std := byName["stdlib"]
	var fixes []string
	for _, f := range r.Findings {
		if f.Package.Name == "stdlib" {
			fixes = append(fixes, f.FixedVersion)
		}
	}
	// 1.25.13 was read off the shared Go records for go1.21.3; the string
	// maximum (1.25.9) is wrong, so the test tells the two apart.
	if slices.Max(fixes) != "1.25.9" {
		t.Fatalf("fixture: string maximum of the stdlib fixes is %s", slices.Max(fixes))
	}
	if std.FixedVersion != "1.25.13" || len(std.Findings) != 70 || std.Unfixed != nil || std.Package.Version != "go1.21.3" {
		t.Errorf("stdlib: fixed %q, %d findings, unfixed %q", std.FixedVersion, len(std.Findings), std.Unfixed)
	}
	if text := byName["golang.org/x/text"]; text.FixedVersion != "0.39.0" || !slices.Equal(text.Findings, []string{"GO-2022-1059", "GO-2026-5970"}) {
		t.Errorf("golang.org/x/text: %+v", text)
	}

	gogs := byName["gogs.io/gogs"]
	var ids, unfixed []string
	for _, f := range r.Findings {
		if f.Package.Name == "gogs.io/gogs" {
			ids = append(ids, f.ID)
			if f.FixedVersion == "" {
				unfixed = append(unfixed, f.ID)
			}
		}
	}
	slices.Sort(ids)
	slices.Sort(unfixed)
	if len(unfixed) == 0 || len(unfixed) == len(ids) {
		t.Fatalf("fixture: %d of %d gogs findings unfixed", len(unfixed), len(ids))
	}
	if gogs.FixedVersion != "" || !slices.Equal(gogs.Unfixed, unfixed) || !slices.Equal(gogs.Findings, ids) ||
		!slices.Equal(gogs.Locations, []string{"/app/gogs"}) {
		t.Errorf("gogs: fixed %q, unfixed %q (want %q), %d findings", gogs.FixedVersion, gogs.Unfixed, unfixed, len(gogs.Findings))
	}

	// Without a version order, fixes that differ cannot be ranked: no
	// version is recommended, and the report says why.
	r = goReport(t)
	c := compile(t, Policy{})
	c.Compare = nil
	c.Apply(r, now)
	for _, rec := range r.Recommendations {
		if rec.FixedVersion != "" {
			t.Errorf("%s: recommended %s without a version order", rec.Package.Name, rec.FixedVersion)
		}
	}
	if len(r.Warnings) != 2 || !strings.Contains(r.Warnings[0].Message, "Go golang.org/x/text v0.3.7") || !strings.Contains(r.Warnings[1].Message, "Go stdlib go1.21.3") {
		t.Errorf("warnings: %q", r.Warnings)
	}
	// Equal fixes need no order.
	d := debianReport(t)
	c = compile(t, Policy{})
	c.Compare = nil
	c.Apply(d, now)
	for _, rec := range d.Recommendations {
		if rec.FixedVersion == "" {
			t.Errorf("%s: no version, though all its fixes are equal", rec.Package.Name)
		}
	}
}

// Applying twice, or after another policy, gives what applying once gives:
// re-matching applies the policy to stored reports again.
func TestApplyIdempotent(t *testing.T) {
	p := Policy{
		VEX: []string{vendorVEX, updateVEX},
		Ignore: []Rule{
			{ID: "CVE-2026-57432", Reason: "expired", Expires: date(t, "2026-11-30")},
			{Package: "apt", Reason: "not run in production"},
		},
	}
	once := debianReport(t)
	once.Warnings = []report.Warning{{Analyzer: "dpkg", Path: "/var/lib/dpkg/status.d", Message: "1 malformed paragraph skipped"}}
	c := compile(t, p)
	c.Apply(once, now)

	twice := debianReport(t)
	twice.Warnings = slices.Clone(once.Warnings[:1])
	c.Apply(twice, now)
	c.Apply(twice, now)
	if !reflect.DeepEqual(once, twice) {
		t.Errorf("applying twice differs from once:\n%s\n%s", dump(t, once), dump(t, twice))
	}

	// After a stricter policy, the looser one restores the same report.
	after := debianReport(t)
	after.Warnings = slices.Clone(once.Warnings[:1])
	compile(t, Policy{MinSeverity: report.Critical, OnlyFixed: true,
		Ignore: []Rule{{ID: "CVE-2026-8376", Reason: "x", Expires: date(t, "2026-01-01")}}}).Apply(after, now)
	if after.Verdict != report.Healthy {
		t.Fatalf("the stricter policy left %s", after.Verdict)
	}
	c.Apply(after, now)
	if !reflect.DeepEqual(once, after) {
		t.Errorf("applying after another policy differs:\n%s\n%s", dump(t, once), dump(t, after))
	}
	if len(once.Warnings) != 2 || once.Warnings[0].String() != "dpkg: /var/lib/dpkg/status.d: 1 malformed paragraph skipped" {
		t.Errorf("warnings: %q", once.Warnings)
	}
}

func dump(t *testing.T, r *report.Report) string {
	t.Helper()
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With adds a scan request's policy to a compiled one exactly as Merge and
// Compile would, without reading the configured VEX documents again.
func TestWithIsMergeWithoutRereading(t *testing.T) {
	dir := t.TempDir()
	doc, err := os.ReadFile(vendorVEX)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "vendor.openvex.json")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	base := Policy{VEX: []string{file}, MinSeverity: report.Low}
	req := Policy{MinSeverity: report.Critical, Ignore: []Rule{{Package: "perl-base", Reason: "maintainer scripts only"}}}
	compiled := compile(t, base)
	// The document is gone: With must not need it again.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	with, err := compiled.With(t.Context(), req)
	if err != nil {
		t.Fatalf("With after the VEX document was removed: %v", err)
	}
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	merged := compile(t, base.Merge(req))

	a, b := debianReport(t), debianReport(t)
	with.Apply(a, now)
	merged.Apply(b, now)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("With and Merge+Compile differ:\nwith:   %+v\nmerged: %+v", a.Summary, b.Summary)
	}
	if a.Summary.Suppressed == 0 {
		t.Fatal("the fixture suppressed nothing: the comparison shows nothing")
	}
	// The compiled base is unchanged.
	c := debianReport(t)
	compiled.Apply(c, now)
	d := debianReport(t)
	compile(t, base).Apply(d, now)
	if !reflect.DeepEqual(c, d) {
		t.Error("With changed the policy it was called on")
	}
}
