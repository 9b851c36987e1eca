package formats

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/daemon/report"
)

// cdxBOM is the part of a CycloneDX BOM the tests read, decoded without
// the library that wrote it.
type cdxBOM struct {
	Schema       string `json:"$schema"`
	BOMFormat    string `json:"bomFormat"`
	SpecVersion  string `json:"specVersion"`
	SerialNumber string `json:"serialNumber"`
	Metadata     struct {
		Timestamp string       `json:"timestamp"`
		Component cdxComponent `json:"component"`
		Tools     struct {
			Components []cdxComponent `json:"components"`
		} `json:"tools"`
		Properties []cdxProperty `json:"properties"`
	} `json:"metadata"`
	Components      []cdxComponent `json:"components"`
	Vulnerabilities []struct {
		ID     string `json:"id"`
		Source struct {
			Name, URL string
		} `json:"source"`
		Ratings []struct {
			Score    *float64 `json:"score"`
			Severity string   `json:"severity"`
			Method   string   `json:"method"`
			Vector   string   `json:"vector"`
		} `json:"ratings"`
		Recommendation string `json:"recommendation"`
		Affects        []struct {
			Ref      string `json:"ref"`
			Versions []struct {
				Version, Status string
			} `json:"versions"`
		} `json:"affects"`
		Analysis *struct {
			State         string   `json:"state"`
			Justification string   `json:"justification"`
			Response      []string `json:"response"`
			Detail        string   `json:"detail"`
		} `json:"analysis"`
	} `json:"vulnerabilities"`
}

type cdxComponent struct {
	BOMRef     string        `json:"bom-ref"`
	Type       string        `json:"type"`
	Name       string        `json:"name"`
	Version    string        `json:"version"`
	PURL       string        `json:"purl"`
	Properties []cdxProperty `json:"properties"`
}

type cdxProperty struct{ Name, Value string }

func readCycloneDX(t *testing.T, doc []byte) cdxBOM {
	t.Helper()
	var b cdxBOM
	if err := json.Unmarshal(doc, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func propValues(ps []cdxProperty, name string) []string {
	var vs []string
	for _, p := range ps {
		if p.Name == name {
			vs = append(vs, p.Value)
		}
	}
	return vs
}

func TestCycloneDX(t *testing.T) {
	r := unhealthyReport(t)
	doc := write(t, CycloneDX, r)
	validate(t, CycloneDX, doc)
	b := readCycloneDX(t, doc)

	if b.BOMFormat != "CycloneDX" || b.SpecVersion != "1.6" || b.Schema != "http://cyclonedx.org/schema/bom-1.6.schema.json" {
		t.Errorf("format %q, spec %q, $schema %q", b.BOMFormat, b.SpecVersion, b.Schema)
	}
	if b.Metadata.Timestamp != "2026-11-27T12:00:00Z" {
		t.Errorf("timestamp %q, want the Now option", b.Metadata.Timestamp)
	}

	// The image.
	img := b.Metadata.Component
	if img.Type != "container" || img.Name != r.Image || img.Version != r.Digest {
		t.Errorf("image component %+v", img)
	}
	p, err := packageurl.FromString(img.PURL)
	if err != nil {
		t.Fatalf("image purl %q: %v", img.PURL, err)
	}
	if p.Type != "oci" || p.Name != "app" || p.Version != r.Digest {
		t.Errorf("image purl %s: want pkg:oci/app@%s", img.PURL, r.Digest)
	}
	q := p.Qualifiers.Map()
	if q["repository_url"] != "127.0.0.1:5000/library/app" || q["tag"] != "1.4" || q["arch"] != "amd64" {
		t.Errorf("image purl qualifiers %v", q)
	}
	if got := propValues(b.Metadata.Properties, "assay:verdict"); len(got) != 1 || got[0] != "unhealthy" {
		t.Errorf("verdict property %v", got)
	}

	// Every package is a component, library-typed, with a unique bom-ref.
	if len(b.Components) != len(r.Packages) {
		t.Fatalf("%d components for %d packages", len(b.Components), len(r.Packages))
	}
	refs := map[string]cdxComponent{}
	for i, c := range b.Components {
		pkg := r.Packages[i]
		if c.Type != "library" || c.Name != pkg.Name || c.Version != pkg.Version || c.PURL != pkg.PURL {
			t.Errorf("component %d %+v is not package %s %s", i, c, pkg.Name, pkg.Version)
		}
		if _, dup := refs[c.BOMRef]; dup || c.BOMRef == "" {
			t.Errorf("component %d: bom-ref %q is empty or not unique", i, c.BOMRef)
		}
		refs[c.BOMRef] = c
		if eco := propValues(c.Properties, "assay:ecosystem"); len(eco) != 1 || eco[0] != pkg.Ecosystem {
			t.Errorf("component %s: ecosystem %v", c.Name, eco)
		}
		if locs := propValues(c.Properties, "assay:location"); strings.Join(locs, "|") != strings.Join(pkg.Locations, "|") {
			t.Errorf("component %s: locations %v, want %v", c.Name, locs, pkg.Locations)
		}
		if pkg.Source != nil && strings.Join(propValues(c.Properties, "assay:source:name"), "") != pkg.Source.Name {
			t.Errorf("component %s: no source package %s", c.Name, pkg.Source.Name)
		}
		if pkg.Owner != "" && strings.Join(propValues(c.Properties, "assay:owner"), "") != pkg.Owner {
			t.Errorf("component %s: no owner %s", c.Name, pkg.Owner)
		}
	}

	// Every finding is a vulnerability whose affects resolve to the
	// component of its package.
	if len(b.Vulnerabilities) != len(r.Findings) {
		t.Fatalf("%d vulnerabilities for %d findings", len(b.Vulnerabilities), len(r.Findings))
	}
	for i, v := range b.Vulnerabilities {
		f := r.Findings[i]
		if v.ID != f.ID || v.Source.Name != "OSV" || !strings.HasSuffix(v.Source.URL, "/"+f.ID) {
			t.Errorf("vulnerability %d: id %s source %+v, want %s", i, v.ID, v.Source, f.ID)
		}
		if len(v.Affects) != 1 {
			t.Fatalf("vulnerability %s: %d affects", v.ID, len(v.Affects))
		}
		c, ok := refs[v.Affects[0].Ref]
		if !ok {
			t.Errorf("vulnerability %s: affects %q, which is no component", v.ID, v.Affects[0].Ref)
		} else if c.Name != f.Package.Name || c.Version != f.Package.Version {
			t.Errorf("vulnerability %s affects %s %s, want %s %s", v.ID, c.Name, c.Version, f.Package.Name, f.Package.Version)
		}
		if (f.Suppressed == nil) != (v.Analysis == nil) {
			t.Errorf("vulnerability %s: analysis %+v for suppression %+v", v.ID, v.Analysis, f.Suppressed)
		}
		if f.FixedVersion != "" && v.Recommendation != "Upgrade to "+f.FixedVersion {
			t.Errorf("vulnerability %s: recommendation %q", v.ID, v.Recommendation)
		}
		if f.Severity == report.Unknown {
			if len(v.Ratings) != 0 {
				t.Errorf("vulnerability %s of unknown severity has ratings %+v", v.ID, v.Ratings)
			}
			continue
		}
		if len(v.Ratings) != 1 {
			t.Fatalf("vulnerability %s: %d ratings", v.ID, len(v.Ratings))
		}
		rt := v.Ratings[0]
		if f.CVSS != nil {
			wantMethod := map[string]string{"3.1": "CVSSv31", "4.0": "CVSSv4"}[f.CVSS.Version]
			if rt.Method != wantMethod || rt.Vector != f.CVSS.Vector || rt.Score == nil || *rt.Score != f.CVSS.Score {
				t.Errorf("vulnerability %s: rating %+v, want %s %s %v", v.ID, rt, wantMethod, f.CVSS.Vector, f.CVSS.Score)
			}
		}
		if rt.Severity != string(f.Severity) {
			t.Errorf("vulnerability %s: severity %s, want %s", v.ID, rt.Severity, f.Severity)
		}
	}

	// Both CVSS versions are there.
	methods := map[string]bool{}
	for _, v := range b.Vulnerabilities {
		for _, rt := range v.Ratings {
			methods[rt.Method] = true
		}
	}
	if !methods["CVSSv31"] || !methods["CVSSv4"] {
		t.Errorf("rating methods %v, want CVSSv31 and CVSSv4 from the fixture", methods)
	}

	// The suppressions, as analysisOf's comment says.
	byID := map[string]int{}
	for i, v := range b.Vulnerabilities {
		byID[v.ID] = i
	}
	vex := b.Vulnerabilities[byID["DEBCL-CVE-2026-13221"]].Analysis
	if vex == nil || vex.State != "not_affected" || vex.Justification != "code_not_reachable" ||
		!strings.Contains(vex.Detail, "maintainer scripts") {
		t.Errorf("VEX analysis %+v", vex)
	}
	if st := b.Vulnerabilities[byID["DEBCL-CVE-2026-13221"]].Affects[0].Versions[0].Status; st != "unaffected" {
		t.Errorf("VEX not_affected version status %q", st)
	}
	ign := b.Vulnerabilities[byID["DEBCL-CVE-2026-109518"]].Analysis
	if ign == nil || ign.State != "" || len(ign.Response) != 1 || ign.Response[0] != "will_not_fix" ||
		!strings.Contains(ign.Detail, "rebuilt monthly") || !strings.Contains(ign.Detail, "2027-01-31") {
		t.Errorf("ignore analysis %+v", ign)
	}
	min := b.Vulnerabilities[byID["DEBCL-GHSA-5qpq-xqfv-j9pg"]].Analysis
	if min == nil || min.State != "" || len(min.Response) != 0 || !strings.Contains(min.Detail, "min_severity") {
		t.Errorf("min_severity analysis %+v", min)
	}
}

func TestCycloneDXIncompleteAndEmpty(t *testing.T) {
	for name, r := range map[string]*report.Report{
		"incomplete": incompleteReport(t),
		"zero":       {},
		"healthy": {Image: "127.0.0.1:5000/library/scratch:1", Digest: "sha256:00", Verdict: report.Healthy,
			Analyzers: []report.Analyzer{{Name: "dpkg", Status: report.AnalyzerOK}}, ScanID: "01"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := write(t, CycloneDX, r)
			validate(t, CycloneDX, doc)
			b := readCycloneDX(t, doc)
			if len(b.Components) != len(r.Packages) || len(b.Vulnerabilities) != len(r.Findings) {
				t.Errorf("%d components, %d vulnerabilities for %d packages, %d findings",
					len(b.Components), len(b.Vulnerabilities), len(r.Packages), len(r.Findings))
			}
			if got := propValues(b.Metadata.Properties, "assay:verdict"); string(r.Verdict) != strings.Join(got, "") {
				t.Errorf("verdict property %v, want %q", got, r.Verdict)
			}
		})
	}
}

// TestCycloneDXFindingWithoutPackage: a finding whose package the
// inventory lacks still gets a component to point to.
func TestCycloneDXFindingWithoutPackage(t *testing.T) {
	r := &report.Report{Findings: []report.Finding{{ID: "GO-2022-1059",
		Package:  report.PackageRef{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"},
		Severity: report.Unknown, Locations: []string{"/app"}}}}
	doc := write(t, CycloneDX, r)
	validate(t, CycloneDX, doc)
	b := readCycloneDX(t, doc)
	if len(b.Components) != 1 || len(b.Vulnerabilities) != 1 || b.Vulnerabilities[0].Affects[0].Ref != b.Components[0].BOMRef {
		t.Errorf("components %+v, vulnerabilities %+v", b.Components, b.Vulnerabilities)
	}
}

// TestCycloneDXDuplicatePURLs: two packages with the same purl (one
// distribution installed twice) get distinct bom-refs, and each finding
// points at the copy at its location.
func TestCycloneDXDuplicatePURLs(t *testing.T) {
	p1 := report.Package{Ecosystem: "PyPI", Name: "idna", Version: "3.6", PURL: "pkg:pypi/idna@3.6", Locations: []string{"/venv1/idna-3.6.dist-info/METADATA"}}
	p2 := p1
	p2.Locations = []string{"/venv2/idna-3.6.dist-info/METADATA"}
	f := report.Finding{ID: "PYSEC-2024-60", Package: report.PackageRef{Ecosystem: "PyPI", Name: "idna", Version: "3.6", PURL: p1.PURL},
		Severity: report.High, Locations: p2.Locations}
	r := &report.Report{Packages: []report.Package{p1, p2}, Findings: []report.Finding{f}}
	doc := write(t, CycloneDX, r)
	validate(t, CycloneDX, doc)
	b := readCycloneDX(t, doc)
	if b.Components[0].BOMRef == b.Components[1].BOMRef {
		t.Fatalf("duplicate bom-ref %q", b.Components[0].BOMRef)
	}
	if got := b.Vulnerabilities[0].Affects[0].Ref; got != b.Components[1].BOMRef {
		t.Errorf("the finding at /venv2 affects %q, want the /venv2 copy %q", got, b.Components[1].BOMRef)
	}
}

func TestAnalysisOf(t *testing.T) {
	for openvex, want := range map[string]string{
		"component_not_present":                             "code_not_present",
		"vulnerable_code_not_present":                       "code_not_present",
		"vulnerable_code_not_in_execute_path":               "code_not_reachable",
		"vulnerable_code_cannot_be_controlled_by_adversary": "requires_environment",
		"inline_mitigations_already_exist":                  "protected_by_mitigating_control",
		"":                                                  "",
		"made_up":                                           "",
	} {
		a := analysisOf(&report.Suppression{Kind: report.SuppressedVEX, Justification: openvex, Reason: "impact"})
		if string(a.State) != "not_affected" || string(a.Justification) != want || a.Detail != "impact" {
			t.Errorf("VEX %q: %+v, want not_affected/%s", openvex, a, want)
		}
	}
	only := analysisOf(&report.Suppression{Kind: report.SuppressedOnlyFixed, Reason: "no fix is known and only_fixed is set"})
	if only.State != "" || only.Response != nil || !strings.Contains(only.Detail, "only_fixed") {
		t.Errorf("only_fixed: %+v", only)
	}
	bare := analysisOf(&report.Suppression{Kind: report.SuppressedMinSeverity})
	if !strings.Contains(bare.Detail, "min_severity") {
		t.Errorf("min_severity without a reason: %+v", bare)
	}
	if analysisOf(nil) != nil {
		t.Error("an unsuppressed finding has an analysis")
	}
}
