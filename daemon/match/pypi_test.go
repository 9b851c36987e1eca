package match

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/assayhq/assay/daemon/report"
)

func matchOne(t *testing.T, m *Matcher, p report.Package) ([]report.Finding, []string) {
	t.Helper()
	fs, warnings, err := m.Match(context.Background(), []report.Package{p})
	if err != nil {
		t.Fatal(err)
	}
	return fs, warnings
}

func pypi(name, version string) report.Package {
	return report.Package{Ecosystem: "PyPI", Name: name, Version: version,
		PURL: "pkg:pypi/" + NormalizeName("PyPI", name) + "@" + version, Locations: []string{"/usr/lib/python3/dist-packages/" + name}}
}

// TestPyPIAgainstVersionLists matches released versions of much-advised
// packages against the 2,661 PyPI records and compares with the records'
// own versions[] lists, which OSV.dev expanded from the ranges with
// PyPI's real release list: an independent oracle for the ECOSYSTEM
// ranges' PEP 440 evaluation.
func TestPyPIAgainstVersionLists(t *testing.T) {
	t.Parallel()
	recs := loadDir(t, "pypi")
	// The matcher gets the records without their versions[], so that the
	// ranges alone decide.
	var stripped []*osvschema.Vulnerability
	for _, r := range recs {
		c := cloneRecord(r)
		for _, a := range c.Affected {
			a.Versions = nil
		}
		stripped = append(stripped, c)
	}
	m := &Matcher{DB: newFakeDB(stripped...)}
	total := 0
	for _, c := range []struct{ name, version string }{
		{"Django", "3.2"}, {"django", "2.2.10"}, {"django", "1.11.29"}, {"django", "4.0.4"},
		{"Pillow", "8.1.0"}, {"pillow", "9.0.0"}, {"urllib3", "1.26.4"}, {"urllib3", "1.24.1"},
		{"Jinja2", "2.10"}, {"requests", "2.19.1"}, {"Twisted", "20.3.0"}, {"ansible", "2.9.10"},
		{"tensorflow", "2.4.0"}, {"salt", "3002"}, {"apache-airflow", "2.0.0"}, {"PyYAML", "5.3"},
	} {
		norm := NormalizeName("PyPI", c.name)
		want := map[string]bool{}
		for _, r := range recs {
			if r.GetWithdrawn() != nil {
				continue
			}
			for _, a := range r.GetAffected() {
				if a.GetPackage().GetName() == norm && slices.Contains(a.GetVersions(), c.version) {
					want[r.GetId()] = true
				}
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s %s: the oracle finds nothing", c.name, c.version)
		}
		fs, warnings := matchOne(t, m, pypi(c.name, c.version))
		if len(warnings) != 0 {
			t.Errorf("%s %s: warnings %q", c.name, c.version, warnings)
		}
		seen := map[string]bool{}
		for _, f := range fs {
			if !want[f.ID] {
				t.Errorf("%s %s: %s matched, its versions[] does not list the version", c.name, c.version, f.ID)
			}
			seen[f.ID] = true
			for _, a := range f.Aliases {
				seen[a] = true
			}
		}
		for id := range want {
			if !seen[id] {
				t.Errorf("%s %s: %s lists the version in versions[] but did not match", c.name, c.version, id)
			}
		}
		total += len(want)
		t.Logf("%s %s: %d records, %d findings", c.name, c.version, len(want), len(fs))
	}
	t.Logf("%d record matches checked", total)
}

// TestLastAffected: PYSEC-2022-42969 (py, "through 1.11.0") has
// introduced 0 and last_affected 1.11.0: 1.11.0 is affected with no fix,
// anything above is not.
func TestLastAffected(t *testing.T) {
	r := loadRecord(t, "pypi/PYSEC-2022-42969")
	r.Affected[0].Versions = nil // the range alone decides
	m := &Matcher{DB: newFakeDB(r)}
	for v, want := range map[string]bool{"1.11.0": true, "1.4.32.dev1": true, "0.9.0": true, "1.11.1": false, "1.12.0.dev1": false, "2.0": false} {
		fs, _ := matchOne(t, m, pypi("py", v))
		if got := len(fs) == 1; got != want {
			t.Errorf("py %s: affected %v, want %v", v, got, want)
		}
		if len(fs) == 1 && fs[0].FixedVersion != "" {
			t.Errorf("py %s: fixed %q with last_affected only", v, fs[0].FixedVersion)
		}
	}
}

// TestLimit: no stored record uses limit, so PYSEC-2022-42969's range is
// rewritten as the OSV specification's limit semantics allow:
// introduced 1.4.0, limit 1.5.0 (limit is exclusive; the range has no
// fix). A second range with introduced 1.10.0 and limit "*" (infinity).
func TestLimit(t *testing.T) {
	r := loadRecord(t, "pypi/PYSEC-2022-42969")
	a := r.Affected[0]
	a.Versions = nil
	a.Ranges = []*osvschema.Range{
		{Type: osvschema.Range_ECOSYSTEM, Events: []*osvschema.Event{{Limit: "1.5.0"}, {Introduced: "1.4.0"}}},
		{Type: osvschema.Range_ECOSYSTEM, Events: []*osvschema.Event{{Introduced: "1.10.0"}, {Limit: "*"}}},
	}
	m := &Matcher{DB: newFakeDB(r)}
	for v, want := range map[string]bool{"1.3.4": false, "1.4.0": true, "1.4.34": true, "1.5.0": false, "1.9.0": false, "1.10.0": true, "1.11.0": true} {
		fs, warnings := matchOne(t, m, pypi("py", v))
		if got := len(fs) == 1; got != want || len(warnings) != 0 {
			t.Errorf("py %s: affected %v, want %v (%q)", v, got, want, warnings)
		}
	}
}

// TestGitRangesAndFix: PYSEC-2012-1 (beaker) has a GIT range and an
// ECOSYSTEM range fixed in 1.6.5.post1; the GIT range is ignored without
// a warning.
func TestGitRangesAndFix(t *testing.T) {
	r := loadRecord(t, "pypi/PYSEC-2012-1")
	r.Affected[0].Versions = nil
	m := &Matcher{DB: newFakeDB(r)}
	fs, warnings := matchOne(t, m, pypi("Beaker", "1.6.4"))
	if len(warnings) != 0 || len(fs) != 1 || fs[0].FixedVersion != "1.6.5.post1" || !slices.Equal(fs[0].Aliases, []string{"CVE-2012-3458"}) {
		t.Fatalf("beaker 1.6.4: %+v %q", fs, warnings)
	}
	// The details' first line is the summary's fallback: PYSEC records
	// have no summary.
	if fs[0].Summary != r.GetDetails() || !strings.HasPrefix(fs[0].Summary, "Beaker before 1.6.4") {
		t.Errorf("summary %q", fs[0].Summary)
	}
	if fs, _ := matchOne(t, m, pypi("beaker", "1.6.5")); len(fs) != 1 || fs[0].FixedVersion != "1.6.5.post1" {
		t.Errorf("beaker 1.6.5 (below 1.6.5.post1): %+v", fs)
	}
	for _, v := range []string{"1.6.5.post1", "1.6.6", "1.7"} {
		if fs, _ := matchOne(t, m, pypi("beaker", v)); len(fs) != 0 {
			t.Errorf("beaker %s matched", v)
		}
	}
	// A record with only a GIT range never matches by range.
	git := cloneRecord(r)
	git.Affected[0].Ranges = git.Affected[0].Ranges[:1]
	if git.Affected[0].Ranges[0].GetType() != osvschema.Range_GIT {
		t.Fatal("the first range is not GIT")
	}
	m = &Matcher{DB: newFakeDB(git)}
	if fs, warnings := matchOne(t, m, pypi("beaker", "1.0")); len(fs) != 0 || len(warnings) != 0 {
		t.Errorf("GIT range matched: %+v %q", fs, warnings)
	}
}

// TestVersionsList: PYSEC-2024-1 (gratient) has no ranges, only
// versions: ["0.5"].
func TestVersionsList(t *testing.T) {
	m := &Matcher{DB: newFakeDB(loadRecord(t, "pypi/PYSEC-2024-1"))}
	fs, _ := matchOne(t, m, pypi("gratient", "0.5"))
	if len(fs) != 1 || fs[0].ID != "PYSEC-2024-1" || fs[0].FixedVersion != "" || fs[0].Summary != "gratient 0.5 contains credential harvesting code" {
		t.Fatalf("gratient 0.5: %+v", fs)
	}
	// PEP 440 equality: 0.5.0 is 0.5.
	if fs, _ := matchOne(t, m, pypi("gratient", "0.5.0")); len(fs) != 1 {
		t.Errorf("gratient 0.5.0: %+v", fs)
	}
	if fs, _ := matchOne(t, m, pypi("gratient", "0.6")); len(fs) != 0 {
		t.Errorf("gratient 0.6: %+v", fs)
	}

	// Listed in versions[] but outside the ranges (beaker's range made to
	// start at 1.5): affected, and the fix is the lowest the ranges name
	// above the version.
	r := loadRecord(t, "pypi/PYSEC-2012-1")
	r.Affected[0].Ranges[1].Events[0].Introduced = "1.5"
	m = &Matcher{DB: newFakeDB(r)}
	fs, warnings := matchOne(t, m, pypi("beaker", "1.3.1"))
	if len(fs) != 1 || fs[0].FixedVersion != "1.6.5.post1" || len(warnings) != 0 {
		t.Errorf("beaker 1.3.1 listed in versions[]: %+v %q", fs, warnings)
	}
	if fs, _ := matchOne(t, m, pypi("beaker", "1.3.2")); len(fs) != 0 {
		t.Errorf("beaker 1.3.2 (neither listed nor in range): %+v", fs)
	}
}

// TestUnsortedEvents: PYSEC-2021-875 (zope) lists its ECOSYSTEM events
// as introduced 5.0, fixed 5.2, introduced 4.0, fixed 4.3. Walked in
// that order, 5.1 would end "fixed" by 4.3; sorted, as the specification
// says, it is affected and fixed in 5.2.
func TestUnsortedEvents(t *testing.T) {
	r := loadRecord(t, "pypi/PYSEC-2021-875")
	r.Affected[0].Versions = nil
	m := &Matcher{DB: newFakeDB(r)}
	for v, fix := range map[string]string{"5.1": "5.2", "5.0": "5.2", "4.1": "4.3", "4.0": "4.3", "4.3": "", "5.2": "", "3.9": ""} {
		fs, _ := matchOne(t, m, pypi("Zope", v))
		switch {
		case fix == "" && len(fs) != 0:
			t.Errorf("zope %s matched: %+v", v, fs)
		case fix != "" && (len(fs) != 1 || fs[0].FixedVersion != fix):
			t.Errorf("zope %s: %+v, want fixed %s", v, fs, fix)
		}
	}
}

// TestAliasMerging uses the stored records that share aliases:
// PYSEC-2021-871 and -872 (distributed) both name CVE-2021-42343;
// PYSEC-2021-875 and -368 (zope) are different CVEs that share
// GHSA-qcx9-j53g-ccgf, and -104 and -88 share GHSA-5pr9-v234-jw36.
func TestAliasMerging(t *testing.T) {
	recs := loadDir(t, "pypi")
	m := &Matcher{DB: newFakeDB(recs...)}
	fs, _ := matchOne(t, m, pypi("distributed", "2021.9.1"))
	var got *report.Finding
	for i := range fs {
		if slices.Contains(fs[i].Aliases, "CVE-2021-42343") {
			if got != nil {
				t.Fatalf("two findings name CVE-2021-42343: %s and %s", got.ID, fs[i].ID)
			}
			got = &fs[i]
		}
	}
	if got == nil || got.ID != "PYSEC-2021-871" || !slices.Equal(got.Aliases, []string{"PYSEC-2021-872", "GHSA-hwqr-f3v9-hwxr", "GHSA-j8fq-86c5-5v2r", "CVE-2021-42343"}) ||
		got.FixedVersion != "2021.10.0" {
		t.Fatalf("distributed: %+v", got)
	}

	// zope 5.1: -875 is fixed in 5.2 and -368 in 5.3: the merged finding
	// needs 5.3; -88 is fixed in 5.2 and -104 in 5.2.1.
	fs, _ = matchOne(t, m, pypi("zope", "5.1"))
	byID := map[string]report.Finding{}
	for _, f := range fs {
		byID[f.ID] = f
	}
	for _, c := range []struct {
		id, absorbed, fix string
		cves              []string
	}{
		{"PYSEC-2021-368", "PYSEC-2021-875", "5.3", []string{"CVE-2021-32807", "CVE-2021-32811"}},
		{"PYSEC-2021-88", "PYSEC-2021-104", "5.2.1", []string{"CVE-2021-32633", "CVE-2021-32674"}},
	} {
		f, ok := byID[c.id]
		if !ok {
			t.Errorf("zope 5.1: no finding %s (have %v)", c.id, slices.Collect(func(yield func(string) bool) {
				for id := range byID {
					if !yield(id) {
						return
					}
				}
			}))
			continue
		}
		if _, dup := byID[c.absorbed]; dup || !slices.Contains(f.Aliases, c.absorbed) {
			t.Errorf("%s did not absorb %s: %q", c.id, c.absorbed, f.Aliases)
		}
		for _, cve := range c.cves {
			if !slices.Contains(f.Aliases, cve) {
				t.Errorf("%s: %s missing from %q", c.id, cve, f.Aliases)
			}
		}
		if f.FixedVersion != c.fix {
			t.Errorf("%s: fixed %q, want %q (the version fixing all its records)", c.id, f.FixedVersion, c.fix)
		}
	}
	// No id is both a finding and another finding's alias.
	for _, f := range fs {
		for _, a := range f.Aliases {
			if _, ok := byID[a]; ok {
				t.Errorf("%s is a finding and an alias of %s", a, f.ID)
			}
		}
	}
}

// TestGoAndGHSAMerge: a GitHub advisory for the same vulnerability as
// GO-2021-0113, shaped as GitHub publishes it (GHSA id, CVE alias, CVSS
// v3 vector, database_specific severity), built from the Go record's own
// ids. The Go record stays primary, the GHSA's severity (the highest)
// applies, and the GHSA's later fix (invented for the test) wins.
func TestGoAndGHSAMerge(t *testing.T) {
	gor := loadRecord(t, "go/GO-2021-0113")
	ghsa := cloneRecord(gor)
	ghsa.Id = "GHSA-ppp9-7jff-5vj2"
	ghsa.Aliases = []string{"CVE-2021-38561"}
	ghsa.Severity = []*osvschema.Severity{{Type: osvschema.Severity_CVSS_V3, Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}}
	ghsa.Affected[0].Ranges[0].Events = []*osvschema.Event{{Introduced: "0"}, {Fixed: "0.3.8"}}
	m := &Matcher{DB: newFakeDB(gor, ghsa)}
	fs, _ := matchOne(t, m, report.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"})
	if len(fs) != 1 {
		t.Fatalf("%d findings: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.ID != "GO-2021-0113" || !slices.Equal(f.Aliases, []string{"GHSA-ppp9-7jff-5vj2", "CVE-2021-38561"}) ||
		f.Severity != report.High || f.SeveritySource != SourceCVSSv3 || f.CVSS == nil || f.CVSS.Score != 7.5 ||
		f.FixedVersion != "0.3.8" || f.Summary != gor.GetSummary() {
		t.Errorf("merged: %+v", f)
	}
	// The order the DB returns them in does not change the result.
	m = &Matcher{DB: newFakeDB(ghsa, gor)}
	fs2, _ := matchOne(t, m, report.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"})
	if len(fs2) != 1 || fs2[0].ID != f.ID || !slices.Equal(fs2[0].Aliases, f.Aliases) || fs2[0].FixedVersion != f.FixedVersion {
		t.Errorf("reversed: %+v", fs2)
	}
}

// TestOSOwned: urllib3's egg-info shipped by Debian's python3-urllib3 is
// left to Debian's advisories unless MatchOSOwned.
func TestOSOwned(t *testing.T) {
	db := newFakeDB(loadDir(t, "pypi")...)
	p := pypi("urllib3", "1.26.4")
	p.Owner = "python3-urllib3"
	fs, _, err := (&Matcher{DB: db}).Match(context.Background(), []report.Package{p})
	if err != nil || len(fs) != 0 {
		t.Fatalf("owned package matched: %d, %v", len(fs), err)
	}
	if len(db.queries) != 0 {
		t.Errorf("owned package looked up: %q", db.queries)
	}
	fs, _, err = (&Matcher{DB: db, Options: Options{MatchOSOwned: true}}).Match(context.Background(), []report.Package{p})
	if err != nil || len(fs) == 0 {
		t.Fatalf("MatchOSOwned: %d, %v", len(fs), err)
	}
}

// TestInvalidRecordVersions: a version the ecosystem refuses skips that
// range with a warning; the record's other ranges still count.
func TestInvalidRecordVersions(t *testing.T) {
	// Debian: a fixed version whose "epoch" is not a number.
	deb := loadRecord(t, "debian/DEBCL-CVE-2026-109518")
	bad := cloneRecord(deb)
	bad.Affected[0].Ranges[0].Events[1].Fixed = "1.2.3-not-a-debian:version!@#$"
	apt := report.Package{Ecosystem: "Debian:12", Name: "apt", Version: "2.6.1", Source: &report.Source{Name: "apt", Version: "2.6.1"}}
	fs, warnings := matchOne(t, &Matcher{DB: newFakeDB(bad)}, apt)
	if len(fs) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "DEBCL-CVE-2026-109518") || !strings.Contains(warnings[0], "range 1 skipped") {
		t.Errorf("invalid Debian fix: %+v %q", fs, warnings)
	}

	// Go: a second, valid range keeps the record matching.
	gor := loadRecord(t, "go/GO-2021-0113")
	two := cloneRecord(gor)
	two.Affected[0].Ranges = append([]*osvschema.Range{{Type: osvschema.Range_SEMVER, Events: []*osvschema.Event{{Introduced: "not-a-version"}, {Fixed: "0.3.6"}}}}, two.Affected[0].Ranges...)
	fs, warnings = matchOne(t, &Matcher{DB: newFakeDB(two)}, report.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"})
	if len(fs) != 1 || fs[0].FixedVersion != "0.3.7" || len(warnings) != 1 {
		t.Errorf("one bad range of two: %+v %q", fs, warnings)
	}

	// Malformed events: two kinds in one event, no introduced at all.
	for _, events := range [][]*osvschema.Event{
		{{Introduced: "0", Fixed: "0.3.7"}},
		{{Fixed: "0.3.7"}},
		{{}},
	} {
		r := cloneRecord(gor)
		r.Affected[0].Ranges[0].Events = events
		fs, warnings = matchOne(t, &Matcher{DB: newFakeDB(r)}, report.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"})
		if len(fs) != 0 || len(warnings) != 1 {
			t.Errorf("events %v: %+v %q", events, fs, warnings)
		}
	}

	// An installed version the rules refuse is a warning, not an error.
	fs, warnings = matchOne(t, &Matcher{DB: newFakeDB(gor)}, report.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "(devel)"})
	if len(fs) != 0 || len(warnings) != 1 {
		t.Errorf("(devel): %+v %q", fs, warnings)
	}
}

// TestUnsupportedEcosystemWarns: packages of an ecosystem without a known
// ordering are reported once per ecosystem, and not looked up.
func TestUnsupportedEcosystemWarns(t *testing.T) {
	db := newFakeDB()
	fs, warnings, err := (&Matcher{DB: db}).Match(context.Background(), []report.Package{
		{Ecosystem: "GitHub Actions", Name: "actions/checkout", Version: "v4"},
		{Ecosystem: "GitHub Actions", Name: "actions/setup-go", Version: "v5"},
	})
	if err != nil || len(fs) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "2 GitHub Actions package(s)") || len(db.queries) != 0 {
		t.Errorf("%+v %q %v %q", fs, warnings, err, db.queries)
	}
}
