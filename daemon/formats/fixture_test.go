package formats

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"github.com/package-url/packageurl-go"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/assayhq/assay/daemon/report"
)

// The reports the tests write are put together from real data: Debian's
// dpkg database of the shared debian-12-minbase image and the control
// file of Debian's python3-urllib3 package (testdata/inventory), urllib3's
// PKG-INFO as that package ships it, and real OSV records (the shared
// test data, plus one GitHub record with a CVSS v4 vector in
// testdata/osv: no record of the shared set has one). testdata/README.md
// says where each file comes from. Which finding is suppressed and why is
// the test's choice; policy is not this package's business.

const sharedOSV = "../../../shared/testdata/osv"

// fixtureNow is the creation time given to the SBOM writers.
var fixtureNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func fixtureOptions() Options {
	return Options{Tool: "assay", ToolVersion: "0.6.0", Now: func() time.Time { return fixtureNow }}
}

// unhealthyReport is a scan of a Debian 12 image with Python, Go and Java
// content: findings with CVSS v3 and v4 vectors, Debian urgencies and no
// severity at all; one suppressed by a VEX statement, one by an ignore
// rule, one by min_severity.
func unhealthyReport(t testing.TB) *report.Report {
	t.Helper()
	pkgs := dpkgPackages(t, "testdata/inventory/debian-12-minbase.status")
	pkgs = append(pkgs, dpkgPackages(t, "testdata/inventory/python3-urllib3.control")...)

	urllib3 := pkgInfo(t, "testdata/inventory/urllib3-1.26.12.PKG-INFO")
	// Where Debian installs it, as the python analyzer reports it: the
	// metadata file, owned by the Debian package.
	urllib3.Locations = []string{"/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO"}
	urllib3.Owner = "python3-urllib3"
	// A pip-installed distribution (no owner) with a CVSS v3 advisory.
	idna := report.Package{Ecosystem: "PyPI", Name: "idna", Version: "3.6",
		PURL:      purl(t, "pkg:pypi/idna@3.6"),
		Locations: []string{"/usr/local/lib/python3.11/dist-packages/idna-3.6.dist-info/METADATA"}}
	// A Go binary's module, as `go version -m` lists it.
	xtext := report.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7",
		PURL:      purl(t, "pkg:golang/golang.org/x/text@v0.3.7"),
		Locations: []string{"/usr/local/bin/app"}}
	// A jar with a CVSS v4 advisory.
	compress := report.Package{Ecosystem: "Maven", Name: "org.apache.commons:commons-compress", Version: "1.21",
		PURL:      purl(t, "pkg:maven/org.apache.commons/commons-compress@1.21"),
		Locations: []string{"/opt/app/lib/commons-compress-1.21.jar"}}
	pkgs = append(pkgs, urllib3, idna, xtext, compress)

	byName := func(name string) report.Package {
		for _, p := range pkgs {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("fixture: no package %s in the inventory", name)
		return report.Package{}
	}
	expires := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	findings := []report.Finding{
		osvFinding(t, sharedOSV+"/debian/DEBCL-CVE-2026-12087.json", byName("perl-base")),
		osvFinding(t, sharedOSV+"/debian/DEBCL-GHSA-r9hj-j2rw-4q3m.json", byName("libpcre2-8-0")),
		withSuppression(osvFinding(t, sharedOSV+"/debian/DEBCL-CVE-2026-13221.json", byName("perl-base")), &report.Suppression{
			Kind:          report.SuppressedVEX,
			Reason:        "perl is run only by dpkg maintainer scripts while the image is built, never with untrusted input",
			Justification: "vulnerable_code_not_in_execute_path",
		}),
		withSuppression(osvFinding(t, sharedOSV+"/debian/DEBCL-CVE-2026-109518.json", byName("apt")), &report.Suppression{
			Kind:    report.SuppressedIgnore,
			Reason:  "apt is not used at run time; the base image is rebuilt monthly",
			Expires: &expires,
		}),
		withSuppression(osvFinding(t, sharedOSV+"/debian/DEBCL-GHSA-5qpq-xqfv-j9pg.json", byName("liblzma5")), &report.Suppression{
			Kind:   report.SuppressedMinSeverity,
			Reason: "severity medium is below the policy's min_severity high",
		}),
		osvFinding(t, sharedOSV+"/pypi/PYSEC-2024-60.json", idna),
		osvFinding(t, sharedOSV+"/go/GO-2022-1059.json", xtext),
		osvFinding(t, "testdata/osv/GHSA-4265-ccf5-phj5.json", compress),
	}

	r := &report.Report{
		Image:        "127.0.0.1:5000/library/app:1.4",
		Digest:       "sha256:3b1d6f4b2a8e0c9d7e5f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f",
		Platform:     "linux/amd64",
		ScannedAt:    time.Date(2026, 11, 27, 11, 58, 3, 0, time.UTC),
		ConfigDigest: "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
		Packages:     pkgs,
		Findings:     findings,
		Analyzers: []report.Analyzer{
			{Name: "dpkg", Version: "0.6.0", Status: report.AnalyzerOK},
			{Name: "python", Version: "0.6.0", Status: report.AnalyzerOK},
			{Name: "gobinary", Version: "0.6.0", Status: report.AnalyzerOK},
		},
		VulnDB:  &report.DBInfo{UpdatedAt: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC), Records: 7148},
		Trigger: "api",
		ScanID:  "01JDQ5X7ZC9M3V4N8R2T6W0Y1A",
	}
	finishReport(r)
	if r.Verdict != report.Unhealthy {
		t.Fatalf("fixture: verdict %s, want unhealthy", r.Verdict)
	}
	return r
}

// incompleteReport is the same image with an analyzer that timed out.
func incompleteReport(t testing.TB) *report.Report {
	r := unhealthyReport(t)
	r.Analyzers[2] = report.Analyzer{Name: "gobinary", Version: "0.6.0", Status: report.AnalyzerTimeout,
		Error: "the analyzer did not finish within sandbox.timeout (2m0s)"}
	r.Warnings = []report.Warning{{Analyzer: "java", Path: "/usr/lib/jvm/lib/modules", Message: "not read: larger than max_file_bytes (64 MiB)"}}
	finishReport(r)
	if r.Verdict != report.Incomplete {
		t.Fatalf("fixture: verdict %s, want incomplete", r.Verdict)
	}
	return r
}

// finishReport fills in what the scanner derives: the summary, the
// verdict and the recommendations (unhealthy reports only).
func finishReport(r *report.Report) {
	r.Summary = report.Summary{}
	r.Recommendations = nil
	byPkg := map[string]*report.Recommendation{}
	var order []string
	for _, f := range r.Findings {
		if f.Suppressed != nil {
			r.Summary.Suppressed++
			continue
		}
		r.Summary.Add(f.Severity)
		key := f.Package.Ecosystem + "\x00" + f.Package.Name + "\x00" + f.Package.Version
		rec, ok := byPkg[key]
		if !ok {
			rec = &report.Recommendation{Package: f.Package, FixedVersion: f.FixedVersion, Locations: f.Locations}
			byPkg[key] = rec
			order = append(order, key)
		}
		rec.Findings = append(rec.Findings, f.ID)
		if f.FixedVersion == "" {
			rec.Unfixed = append(rec.Unfixed, f.ID)
			rec.FixedVersion = ""
		}
	}
	r.Verdict = report.DecideVerdict(r.Analyzers, r.Summary.Total())
	if r.Verdict == report.Unhealthy {
		for _, k := range order {
			r.Recommendations = append(r.Recommendations, *byPkg[k])
		}
	}
}

func withSuppression(f report.Finding, s *report.Suppression) report.Finding {
	f.Suppressed = s
	return f
}

// osvFinding makes the finding that record path gives package p: id,
// aliases, summary, the fix of the record's range, and the severity from
// its CVSS v4 vector, else its CVSS v3 vector, else a Debian urgency.
func osvFinding(t testing.TB, path string, p report.Package) report.Finding {
	t.Helper()
	rec := loadOSV(t, path)
	f := report.Finding{
		ID:        rec.GetId(),
		Aliases:   rec.GetAliases(),
		Package:   report.PackageRef{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version, PURL: p.PURL},
		Summary:   rec.GetSummary(),
		Locations: p.Locations,
		Severity:  report.Unknown,
	}
	if f.Summary == "" {
		f.Summary = oneLine(rec.GetDetails())
	}
	if f.Aliases == nil {
		f.Aliases = []string{}
	}
	if len(rec.GetAffected()) == 0 {
		t.Fatalf("fixture: %s affects nothing", path)
	}
	affected := rec.GetAffected()[0]
	if p.Source != nil {
		f.MatchedSource = p.Source // Debian advisories name source packages
	}
	for _, rg := range affected.GetRanges() {
		if rg.GetType() == osvschema.Range_GIT {
			continue
		}
		for _, e := range rg.GetEvents() {
			if e.GetFixed() != "" && f.FixedVersion == "" {
				f.FixedVersion = e.GetFixed()
			}
		}
	}
	for _, want := range []osvschema.Severity_Type{osvschema.Severity_CVSS_V4, osvschema.Severity_CVSS_V3} {
		for _, s := range rec.GetSeverity() {
			if s.GetType() != want || f.CVSS != nil {
				continue
			}
			f.CVSS = scoreCVSS(t, s.GetScore())
			f.Severity = band(f.CVSS.Score)
			f.SeveritySource = map[osvschema.Severity_Type]string{osvschema.Severity_CVSS_V4: "cvss_v4", osvschema.Severity_CVSS_V3: "cvss_v3"}[want]
		}
	}
	if f.CVSS == nil {
		if u := affected.GetEcosystemSpecific().GetFields()["urgency"].GetStringValue(); u != "" {
			sev, err := report.ParseSeverity(u)
			if err != nil {
				t.Fatalf("fixture: %s: urgency %q: %v", path, u, err)
			}
			f.Severity, f.SeveritySource = sev, "ecosystem_specific"
		}
	}
	return f
}

func loadOSV(t testing.TB, path string) *osvschema.Vulnerability {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v osvschema.Vulnerability
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &v); err != nil {
		t.Fatalf("fixture: %s: %v", path, err)
	}
	return &v
}

func scoreCVSS(t testing.TB, vector string) *report.CVSS {
	t.Helper()
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := gocvss40.ParseVector(vector)
		if err != nil {
			t.Fatal(err)
		}
		return &report.CVSS{Version: "4.0", Vector: vector, Score: v.Score()}
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := gocvss31.ParseVector(vector)
		if err != nil {
			t.Fatal(err)
		}
		return &report.CVSS{Version: "3.1", Vector: vector, Score: v.BaseScore()}
	}
	t.Fatalf("fixture: unexpected CVSS vector %q", vector)
	return nil
}

// band is the CVSS v3.1/v4.0 qualitative severity scale.
func band(score float64) report.Severity {
	switch {
	case score >= 9.0:
		return report.Critical
	case score >= 7.0:
		return report.High
	case score >= 4.0:
		return report.Medium
	case score >= 0.1:
		return report.Low
	}
	return report.Negligible
}

// dpkgPackages reads the installed packages of a dpkg status file (or a
// control file, which has no Status field) as the dpkg analyzer reports
// them.
func dpkgPackages(t testing.TB, path string) []report.Package {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []report.Package
	for _, para := range bytes.Split(b, []byte("\n\n")) {
		fields := controlFields(para)
		if fields["Package"] == "" {
			continue
		}
		if st, ok := fields["Status"]; ok && !strings.HasSuffix(st, " installed") {
			continue
		}
		src := &report.Source{Name: fields["Package"], Version: fields["Version"]}
		if s := fields["Source"]; s != "" {
			name, ver, ok := strings.Cut(s, " (")
			src.Name = name
			if ok {
				src.Version = strings.TrimSuffix(ver, ")")
			}
		}
		pkgs = append(pkgs, report.Package{
			Ecosystem: "Debian:12",
			Name:      fields["Package"],
			Version:   fields["Version"],
			PURL: packageurl.NewPackageURL(packageurl.TypeDebian, "debian", fields["Package"], fields["Version"],
				packageurl.QualifiersFromMap(map[string]string{"arch": fields["Architecture"], "distro": "debian-12"}), "").ToString(),
			Source:    src,
			Locations: []string{"/var/lib/dpkg/status"},
		})
	}
	if len(pkgs) == 0 {
		t.Fatalf("fixture: no installed package in %s", path)
	}
	return pkgs
}

// pkgInfo reads a Python distribution's Name and Version.
func pkgInfo(t testing.TB, path string) report.Package {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fields := controlFields(b)
	if fields["Name"] == "" || fields["Version"] == "" {
		t.Fatalf("fixture: %s has no Name or Version", path)
	}
	return report.Package{Ecosystem: "PyPI", Name: fields["Name"], Version: fields["Version"],
		PURL: purl(t, "pkg:pypi/"+strings.ToLower(fields["Name"])+"@"+fields["Version"])}
}

// controlFields reads RFC 822-style "Name: value" lines (continuation
// lines are skipped: the fixture needs single-line fields only).
func controlFields(b []byte) map[string]string {
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			if _, seen := fields[k]; !seen {
				fields[k] = strings.TrimSpace(v)
			}
		}
	}
	return fields
}

func purl(t testing.TB, s string) string {
	t.Helper()
	p, err := packageurl.FromString(s)
	if err != nil {
		t.Fatalf("fixture: purl %q: %v", s, err)
	}
	return p.ToString()
}

// write runs Write and returns the document.
func write(t testing.TB, format string, r *report.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, format, r, fixtureOptions()); err != nil {
		t.Fatalf("Write(%s): %v", format, err)
	}
	if *keep != "" {
		name := filepath.Join(*keep, t.Name()+"."+format+".json")
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err == nil {
			_ = os.WriteFile(name, buf.Bytes(), 0o644)
		}
	}
	return buf.Bytes()
}
