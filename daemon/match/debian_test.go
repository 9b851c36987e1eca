package match

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/dpkg"
	"github.com/assayhq/assay/daemon/report"
)

// debianInventory reads the Debian 12 image's dpkg status file (see
// testdata/README.md) into the packages the dpkg analyzer reports: the
// source from the Source field ("name" or "name (version)"), the binary's
// name and version when absent, as dpkg-query's ${source:Package} and
// ${source:Version} say.
func debianInventory(t testing.TB) []report.Package {
	t.Helper()
	f, err := os.Open("testdata/debian-12-minbase/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkgs []report.Package
	err = dpkg.ParseStatus(f, func(p dpkg.Paragraph) error {
		if p.Err != nil {
			t.Fatalf("paragraph %d: %v", p.Index, p.Err)
		}
		h := p.Fields
		if w := strings.Fields(h.Get("Status")); len(w) != 3 || w[2] != "installed" {
			return nil
		}
		name, version := h.Get("Package"), h.Get("Version")
		src := &report.Source{Name: name, Version: version}
		if s := h.Get("Source"); s != "" {
			n, rest, _ := strings.Cut(s, " ")
			src.Name = n
			if rest = strings.Trim(strings.TrimSpace(rest), "()"); rest != "" {
				src.Version = rest
			}
		}
		purl := packageurl.NewPackageURL(packageurl.TypeDebian, "debian", name, version,
			packageurl.Qualifiers{{Key: "arch", Value: h.Get("Architecture")}, {Key: "distro", Value: "debian-12"}}, "").ToString()
		pkgs = append(pkgs, report.Package{
			Ecosystem: "Debian:12", Name: name, Version: version, PURL: purl,
			Source: src, Locations: []string{"/var/lib/dpkg/status"},
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 88 {
		t.Fatalf("the image has 88 packages, read %d", len(pkgs))
	}
	return pkgs
}

func dbString(v *osvschema.Vulnerability, key string) string {
	return v.GetDatabaseSpecific().GetFields()[key].GetStringValue()
}

// onlyFixed returns the single fixed event of a record's single range.
func onlyFixed(t *testing.T, a *osvschema.Affected) string {
	t.Helper()
	fixed := ""
	for _, r := range a.GetRanges() {
		for _, e := range r.GetEvents() {
			if e.GetFixed() != "" {
				if fixed != "" {
					t.Fatalf("%s: more than one fixed event", a.GetPackage().GetName())
				}
				fixed = e.GetFixed()
			}
		}
	}
	return fixed
}

// TestDebianImage matches the real Debian 12 inventory against the 195
// Debian:12 records. Which records are positive is read from the records'
// own database_specific, not from the matcher: a record derived from a
// .deb newer than the image ("perl-base_5.36.0-7+deb12u4_amd64.deb:...")
// names a fix the image lacks; one derived from the image's own changelog
// ("rootfs:...") is fixed at or below the installed version. Among the
// negatives, shadow's and gmp's fixed versions carry epochs
// (1:4.13+dfsg1-1+deb12u1, 2:6.2.1+dfsg-3) that only a comparison with the
// installed epoch keeps negative, and glibc's 2.36-9+deb12u14 equals the
// installed version.
func TestDebianImage(t *testing.T) {
	pkgs := debianInventory(t)
	recs := loadDir(t, "debian")
	if len(recs) != 195 {
		t.Fatalf("%d Debian records, the README says 195", len(recs))
	}

	bySource := map[string][]report.Package{}
	binaries := map[string]report.Package{}
	for _, p := range pkgs {
		bySource[p.Source.Name] = append(bySource[p.Source.Name], p)
		binaries[p.Name] = p
	}
	type key struct{ id, pkg string }
	want := map[key]*osvschema.Vulnerability{}
	positive := map[string]bool{}
	negatives := 0
	for _, r := range recs {
		from := dbString(r, "derived_from")
		if strings.HasPrefix(from, "rootfs:") {
			negatives++
			continue
		}
		if !strings.Contains(from, ".deb:") {
			t.Fatalf("%s: derived_from %q is neither rootfs: nor a .deb", r.GetId(), from)
		}
		positive[r.GetId()] = true
		// The record names the binary package and version the image holds.
		for bin, ver := range r.GetDatabaseSpecific().GetFields()["test_image_installed"].GetStructValue().GetFields() {
			if p, ok := binaries[bin]; !ok || p.Version != ver.GetStringValue() {
				t.Errorf("%s: test_image_installed %s %s, the image has %+v", r.GetId(), bin, ver.GetStringValue(), p)
			}
		}
		for _, a := range r.GetAffected() {
			for _, p := range bySource[a.GetPackage().GetName()] {
				want[key{r.GetId(), p.Name}] = r
			}
		}
	}
	if len(positive) != 17 || negatives != 178 || len(want) != 18 {
		t.Fatalf("the data has %d positive records (%d findings) and %d negative; the README says 17 (18) and 178", len(positive), len(want), negatives)
	}

	db := newFakeDB(recs...)
	m := &Matcher{DB: db}
	findings, warnings, err := m.Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	got := map[key]report.Finding{}
	vulnerable := map[string]bool{}
	for _, f := range findings {
		k := key{f.ID, f.Package.Name}
		if _, dup := got[k]; dup {
			t.Errorf("finding %s for %s twice", f.ID, f.Package.Name)
		}
		got[k] = f
		vulnerable[f.Package.Name] = true
		if !positive[f.ID] {
			t.Errorf("%s on %s %s: a negative record matched", f.ID, f.Package.Name, f.Package.Version)
		}
	}
	for k, r := range want {
		f, ok := got[k]
		if !ok {
			t.Errorf("missing finding %s on %s", k.id, k.pkg)
			continue
		}
		p := binaries[k.pkg]
		a := r.GetAffected()[0]
		if f.FixedVersion != onlyFixed(t, a) {
			t.Errorf("%s on %s: fixed %q, the record says %q", k.id, k.pkg, f.FixedVersion, onlyFixed(t, a))
		}
		if f.MatchedSource == nil || *f.MatchedSource != *p.Source {
			t.Errorf("%s on %s: matched source %+v, want %+v", k.id, k.pkg, f.MatchedSource, p.Source)
		}
		if f.Package != (report.PackageRef{Ecosystem: "Debian:12", Name: p.Name, Version: p.Version, PURL: p.PURL}) {
			t.Errorf("%s: package %+v", k.id, f.Package)
		}
		if !slices.Equal(f.Locations, p.Locations) {
			t.Errorf("%s: locations %q", k.id, f.Locations)
		}
		if !slices.Equal(f.Aliases, r.GetAliases()) || f.Summary != r.GetSummary() {
			t.Errorf("%s: aliases %q summary %q; the record has %q, %q", k.id, f.Aliases, f.Summary, r.GetAliases(), r.GetSummary())
		}
		// The changelog urgency in ecosystem_specific is the only rating
		// these records carry.
		urg := a.GetEcosystemSpecific().GetFields()["urgency"].GetStringValue()
		if string(f.Severity) != urg || f.SeveritySource != SourceEcosystemSpecific || f.CVSS != nil {
			t.Errorf("%s: severity %s from %q, the record's urgency is %q", k.id, f.Severity, f.SeveritySource, urg)
		}
	}
	if len(findings) != len(want) {
		t.Errorf("%d findings, want %d", len(findings), len(want))
	}
	wantPkgs := []string{"apt", "libapt-pkg6.0", "liblzma5", "libpcre2-8-0", "perl-base"}
	var gotPkgs []string
	for p := range vulnerable {
		gotPkgs = append(gotPkgs, p)
	}
	slices.Sort(gotPkgs)
	if !slices.Equal(gotPkgs, wantPkgs) {
		t.Errorf("vulnerable packages %q, want %q", gotPkgs, wantPkgs)
	}
	// One query per source package, not per binary package.
	sources := map[string]bool{}
	for _, p := range pkgs {
		sources[p.Source.Name] = true
	}
	if len(db.queries) != len(sources) {
		t.Errorf("%d queries for %d source packages", len(db.queries), len(sources))
	}
	// Findings are sorted by package, then id.
	if !slices.IsSortedFunc(findings, func(a, b report.Finding) int {
		if c := strings.Compare(a.Package.Name, b.Package.Name); c != 0 {
			return c
		}
		return compareIDs(a.ID, b.ID)
	}) {
		t.Error("findings are not sorted")
	}
	t.Logf("%d findings from %d records on %d packages (%d sources)", len(findings), len(recs), len(pkgs), len(sources))
}

// TestDebianEpoch shows that the epoch decides one of the negatives:
// shadow's fix 1:4.13+dfsg1-1+deb12u1 is below the installed
// 1:4.13+dfsg1-1+deb12u2, but above it without the epoch.
func TestDebianEpoch(t *testing.T) {
	r := loadRecord(t, "debian/DEBCL-CVE-2023-29383")
	db := newFakeDB(r)
	m := &Matcher{DB: db}
	login := report.Package{Ecosystem: "Debian:12", Name: "login", Version: "1:4.13+dfsg1-1+deb12u2",
		Source: &report.Source{Name: "shadow", Version: "1:4.13+dfsg1-1+deb12u2"}}
	fs, _, err := m.Match(context.Background(), []report.Package{login})
	if err != nil || len(fs) != 0 {
		t.Fatalf("installed version: %v, %v", fs, err)
	}
	login.Source.Version = "4.13+dfsg1-1+deb12u2"
	fs, _, err = m.Match(context.Background(), []report.Package{login})
	if err != nil || len(fs) != 1 || fs[0].FixedVersion != "1:4.13+dfsg1-1+deb12u1" {
		t.Fatalf("without the epoch: %+v, %v", fs, err)
	}
}

// TestDebianEcosystemMustMatch: Debian:12 records apply to Debian:12
// packages only, and a Debian package is looked up by its source.
func TestDebianEcosystemMustMatch(t *testing.T) {
	db := newFakeDB(loadDir(t, "debian")...)
	m := &Matcher{DB: db}
	for _, eco := range []string{"Debian:11", "Debian:13", "Debian", "Ubuntu:22.04:LTS"} {
		pkgs := debianInventory(t)
		for i := range pkgs {
			pkgs[i].Ecosystem = eco
		}
		fs, _, err := m.Match(context.Background(), pkgs)
		if err != nil || len(fs) != 0 {
			t.Errorf("%s: %d findings, %v", eco, len(fs), err)
		}
	}
	// Without its source, perl-base is not found: the records name perl.
	fs, _, err := m.Match(context.Background(), []report.Package{{Ecosystem: "Debian:12", Name: "perl-base", Version: "5.36.0-7+deb12u3"}})
	if err != nil || len(fs) != 0 {
		t.Errorf("perl-base without source: %v, %v", fs, err)
	}
	fs, _, err = m.Match(context.Background(), []report.Package{{Ecosystem: "Debian:12", Name: "perl-base", Version: "5.36.0-7+deb12u3",
		Source: &report.Source{Name: "perl", Version: "5.36.0-7+deb12u3"}}})
	if err != nil || len(fs) != 13 {
		t.Errorf("perl-base with its source: %d findings, %v", len(fs), err)
	}
}

// TestSamples runs the google/osv.dev sample records: DSA-3029-1 names
// nginx in Debian:7; DLA-3623-1, USN-7234-1 and CVE-2021-44228 (as
// stored) have no affected entries and never match.
func TestSamples(t *testing.T) {
	dsa := loadRecord(t, "samples/DSA-3029-1")
	db := newFakeDB(dsa)
	for _, s := range []string{"DLA-3623-1", "USN-7234-1", "CVE-2021-44228"} {
		db.all = append(db.all, loadRecord(t, "samples/"+s))
	}
	m := &Matcher{DB: db}
	nginx := func(eco, v string) report.Package {
		return report.Package{Ecosystem: eco, Name: "nginx-full", Version: v, Source: &report.Source{Name: "nginx", Version: v}}
	}
	fs, warnings, err := m.Match(context.Background(), []report.Package{
		nginx("Debian:7", "1.2.1-2.2+wheezy2"),
		nginx("Debian:7", "1.2.1-2.2+wheezy3"),
		nginx("Debian:12", "1.2.1-2.2+wheezy2"),
		{Ecosystem: "Ubuntu:24.04:LTS", Name: "linux-image-6.8.0-31-generic", Version: "6.8.0-31.31", Source: &report.Source{Name: "linux", Version: "6.8.0-31.31"}},
	})
	if err != nil || len(warnings) != 0 {
		t.Fatal(err, warnings)
	}
	if len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	f := fs[0]
	if f.ID != "DSA-3029-1" || f.Package.Version != "1.2.1-2.2+wheezy2" || f.FixedVersion != "1.2.1-2.2+wheezy3" ||
		!slices.Equal(f.Aliases, []string{"CVE-2014-3616"}) || f.Severity != report.Unknown || f.SeveritySource != "" ||
		f.Summary != "nginx - security update" || f.MatchedSource.Name != "nginx" {
		t.Errorf("finding %+v", f)
	}
}

// TestUbuntu: USN-7234-1 as stored has no affected entries; given one in
// the shape of OSV's Ubuntu records (source package "linux", ecosystem
// "Ubuntu:24.04:LTS", an Ubuntu priority; the versions are made up for
// the test), a binary kernel package is matched through its source and
// only in that release.
func TestUbuntu(t *testing.T) {
	usn := cloneRecord(loadRecord(t, "samples/USN-7234-1"))
	usn.Affected = []*osvschema.Affected{{
		Package:  &osvschema.Package{Ecosystem: "Ubuntu:24.04:LTS", Name: "linux"},
		Ranges:   []*osvschema.Range{{Type: osvschema.Range_ECOSYSTEM, Events: []*osvschema.Event{{Introduced: "0"}, {Fixed: "6.8.0-52.53"}}}},
		Severity: []*osvschema.Severity{{Type: osvschema.Severity_Ubuntu, Score: "high"}},
	}}
	m := &Matcher{DB: newFakeDB(usn)}
	kernel := func(eco, v string) report.Package {
		return report.Package{Ecosystem: eco, Name: "linux-image-6.8.0-31-generic", Version: v, Source: &report.Source{Name: "linux", Version: v}}
	}
	fs, warnings, err := m.Match(context.Background(), []report.Package{
		kernel("Ubuntu:24.04:LTS", "6.8.0-31.31"),
		kernel("Ubuntu:24.04:LTS", "6.8.0-52.53"),
		kernel("Ubuntu:22.04:LTS", "6.8.0-31.31"),
		kernel("Ubuntu:Pro:24.04:LTS", "6.8.0-31.31"),
	})
	if err != nil || len(warnings) != 0 || len(fs) != 1 {
		t.Fatalf("%+v %q %v", fs, warnings, err)
	}
	f := fs[0]
	if f.ID != "USN-7234-1" || f.Package.Ecosystem != "Ubuntu:24.04:LTS" || f.Package.Version != "6.8.0-31.31" || f.FixedVersion != "6.8.0-52.53" ||
		f.Severity != report.High || f.SeveritySource != SourceEcosystemSpecific || f.MatchedSource == nil || f.MatchedSource.Name != "linux" {
		t.Errorf("%+v", f)
	}
}
