package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/osv-scalibr/semantic"
	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/assayhq/assay/daemon/report"
)

// The fixtures: the shared Debian image's real inventory (the dpkg
// analyzer's output), matched against the shared real OSV records by a
// deliberately plain matcher below, so that the policy sees findings like
// the ones daemon/match produces.

const (
	sharedOSV = "../../../shared/testdata/osv"
	// imageDigest is the manifest digest of the shared
	// debian-12-minbase.oci.tar (its index.json).
	imageDigest = "sha256:ad676c06231c7a9ab1bd8eb9fb8266026137139b53ed932ab74c52c9efbcf95e"
	imageRef    = "127.0.0.1:5000/library/debian:12"
)

// compareVersions is the version order given to Compiled.Compare in the
// tests: osv-scalibr's, the one daemon/match builds on.
func compareVersions(ecosystem, a, b string) (int, error) {
	v, err := semantic.Parse(a, ecosystem)
	if err != nil {
		return 0, err
	}
	return v.CompareStr(b)
}

// debianInventory is the dpkg analyzer's output for the shared image.
func debianInventory(t testing.TB) []report.Package {
	t.Helper()
	data, err := os.ReadFile("testdata/debian-12-minbase.dpkg.json")
	if err != nil {
		t.Fatal(err)
	}
	var items []struct {
		Package struct {
			Ecosystem, Name, Version, PURL string
			SourceName, SourceVersion      string
			Owner                          string
			Locations                      []string
		}
	}
	if err := json.Unmarshal(data, &items); err != nil {
		t.Fatal(err)
	}
	var pkgs []report.Package
	for _, it := range items {
		p := it.Package
		rp := report.Package{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version, PURL: p.PURL, Locations: p.Locations, Owner: p.Owner}
		if p.SourceName != "" {
			rp.Source = &report.Source{Name: p.SourceName, Version: p.SourceVersion}
		}
		pkgs = append(pkgs, rp)
	}
	if len(pkgs) != 88 {
		t.Fatalf("inventory has %d packages, want the image's 88", len(pkgs))
	}
	return pkgs
}

var (
	recordsMu sync.Mutex
	records   = map[string][]*osvschema.Vulnerability{} // by folder; read once, never modified
)

// readRecords returns the shared OSV records of one folder that keep
// accepts.
func readRecords(t testing.TB, dir string, keep func(*osvschema.Vulnerability) bool) []*osvschema.Vulnerability {
	t.Helper()
	recordsMu.Lock()
	defer recordsMu.Unlock()
	all, ok := records[dir]
	if !ok {
		files, err := filepath.Glob(filepath.Join(sharedOSV, dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no OSV records in %s: %v", dir, err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v := &osvschema.Vulnerability{}
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, v); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			all = append(all, v)
		}
		records[dir] = all
	}
	var out []*osvschema.Vulnerability
	for _, v := range all {
		if keep == nil || keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// matchRecords is a plain OSV matcher for the fixtures: a package is
// affected when its version (the source package's, when the advisory
// names the source) lies in one of the ECOSYSTEM/SEMVER ranges, walked in
// event order; the fixed version is the first fix above it.
func matchRecords(t testing.TB, pkgs []report.Package, recs []*osvschema.Vulnerability) []report.Finding {
	t.Helper()
	var out []report.Finding
	for _, p := range pkgs {
		for _, v := range recs {
			for _, a := range v.GetAffected() {
				if a.GetPackage().GetEcosystem() != p.Ecosystem {
					continue
				}
				version := p.Version
				var src *report.Source
				if a.GetPackage().GetName() != p.Name {
					if p.Source == nil || a.GetPackage().GetName() != p.Source.Name {
						continue
					}
					version, src = p.Source.Version, p.Source
				}
				version = strings.TrimPrefix(strings.TrimPrefix(version, "go"), "v")
				fixed, ok := inRanges(t, p.Ecosystem, version, a)
				if !ok {
					continue
				}
				f := report.Finding{
					ID:            v.GetId(),
					Aliases:       slices.Clone(v.GetAliases()),
					Package:       report.PackageRef{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version, PURL: p.PURL},
					Severity:      urgency(a.GetEcosystemSpecific().GetFields()["urgency"].GetStringValue()),
					FixedVersion:  fixed,
					Summary:       v.GetSummary(),
					MatchedSource: src,
					Locations:     p.Locations,
				}
				if f.Severity != report.Unknown {
					f.SeveritySource = "ecosystem_specific"
				}
				out = append(out, f)
			}
		}
	}
	return out
}

func inRanges(t testing.TB, ecosystem, version string, a *osvschema.Affected) (fixed string, affected bool) {
	t.Helper()
	// cmp orders the installed version against an event's version.
	cmp := func(y string) int {
		n, err := compareVersions(ecosystem, version, y)
		if err != nil {
			t.Fatalf("comparing %s %s with %s: %v", ecosystem, version, y, err)
		}
		return n
	}
	for _, r := range a.GetRanges() {
		if r.GetType() != osvschema.Range_ECOSYSTEM && r.GetType() != osvschema.Range_SEMVER {
			continue
		}
		in, fix := false, ""
		for _, e := range r.GetEvents() {
			switch {
			case e.GetIntroduced() != "":
				if e.GetIntroduced() == "0" || cmp(e.GetIntroduced()) >= 0 {
					in, fix = true, ""
				}
			case e.GetFixed() != "":
				if cmp(e.GetFixed()) >= 0 {
					in = false
				} else if in && fix == "" {
					fix = e.GetFixed()
				}
			case e.GetLastAffected() != "":
				if cmp(e.GetLastAffected()) > 0 {
					in = false
				}
			}
		}
		if in {
			return fix, true
		}
	}
	return "", false
}

// urgency maps Debian's urgency to a severity, as the Debian tracker reads.
func urgency(u string) report.Severity {
	switch u {
	case "high", "medium", "low":
		return report.Severity(u)
	case "unimportant":
		return report.Negligible
	}
	return report.Unknown
}

// debianReport is the shared image's report before policy: every dpkg
// package matched against every shared Debian record.
func debianReport(t testing.TB) *report.Report {
	t.Helper()
	pkgs := debianInventory(t)
	r := &report.Report{
		Image:     imageRef,
		Digest:    imageDigest,
		Platform:  "linux/amd64",
		Packages:  pkgs,
		Findings:  matchRecords(t, pkgs, readRecords(t, "debian", nil)),
		Analyzers: []report.Analyzer{{Name: "dpkg", Version: "1", Status: report.AnalyzerOK}},
		ScanID:    "01JDEBIAN12MINBASE",
	}
	// The fixture must hold the findings the tests talk about.
	for _, id := range []string{"DEBCL-CVE-2026-103111", "DEBCL-GHSA-r9hj-j2rw-4q3m", "DEBCL-GHSA-5qpq-xqfv-j9pg", "DEBCL-CVE-2025-15649", "DEBCL-CVE-2026-7010"} {
		if findingByID(r, id) == nil {
			t.Fatalf("fixture: no finding %s in the matched Debian report", id)
		}
	}
	return r
}

func findingByID(r *report.Report, id string) *report.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

// goReport is an image holding Go binaries: a program built with go1.21.3
// and linking golang.org/x/text v0.3.7 (the shared gobinary test program's
// requirement), and gogs (its main module at v0.13.0), matched against the
// shared Go records.
func goReport(t testing.TB) *report.Report {
	t.Helper()
	pkgs := []report.Package{
		{Ecosystem: "Go", Name: "stdlib", Version: "go1.21.3", PURL: "pkg:golang/stdlib@go1.21.3", Locations: []string{"/usr/local/bin/prog"}},
		{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7", PURL: "pkg:golang/golang.org/x/text@v0.3.7", Locations: []string{"/usr/local/bin/prog"}},
		{Ecosystem: "Go", Name: "gogs.io/gogs", Version: "v0.13.0", PURL: "pkg:golang/gogs.io/gogs@v0.13.0", Locations: []string{"/app/gogs"}},
	}
	names := map[string]bool{}
	for _, p := range pkgs {
		names[p.Name] = true
	}
	recs := readRecords(t, "go", func(v *osvschema.Vulnerability) bool {
		for _, a := range v.GetAffected() {
			if names[a.GetPackage().GetName()] {
				return true
			}
		}
		return false
	})
	return &report.Report{
		Image:     "127.0.0.1:5000/apps/gogs:0.13.0",
		Digest:    "sha256:0f3c2b5e2d1a8f6f4c0d6a0b6f7f1c9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a",
		Packages:  pkgs,
		Findings:  matchRecords(t, pkgs, recs),
		Analyzers: []report.Analyzer{{Name: "gobinary", Version: "1", Status: report.AnalyzerOK}},
	}
}
