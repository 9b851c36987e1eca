package harbor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/assayhq/assay/daemon/formats"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// Capabilities, as Harbor names them.
const (
	capVulnerability = "vulnerability"
	capSBOM          = "sbom"
)

// producedType is one report type the adapter produces: the one table
// /metadata, Accept negotiation and the 501 text come from.
type producedType struct {
	mediaType  string
	capability string
	encode     func(h *Handler, sc scans.Scan, rep *report.Report, sbomType string) ([]byte, error)
}

// produced are the report types, Harbor's vulnerability report first (the
// answer to a request without Accept).
var produced = []producedType{
	{"application/vnd.security.vulnerability.report; version=1.1", capVulnerability, (*Handler).vulnerabilityReport},
	{"application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0", capVulnerability, (*Handler).vulnerabilityReport},
	{"application/vnd.scanner.adapter.vuln.report.raw", capVulnerability, func(h *Handler, _ scans.Scan, rep *report.Report, _ string) ([]byte, error) {
		var buf bytes.Buffer
		err := formats.Write(&buf, formats.JSON, rep, formats.Options{ToolVersion: h.o.Version})
		return buf.Bytes(), err
	}},
	{"application/vnd.security.sbom.report+json; version=1.0", capSBOM, (*Handler).sbomReport},
}

func lookupProduced(mediaType string) (producedType, bool) {
	p, ok := negotiate(mediaType)
	return p, ok && strings.TrimSpace(mediaType) != ""
}

func producedList() string {
	var out []string
	for _, p := range produced {
		out = append(out, p.mediaType)
	}
	return strings.Join(out, ", ")
}

// sbomFormats are assay's formats Harbor takes as SBOMs (by their media
// types in daemon/formats).
var sbomFormats = []string{formats.SPDX, formats.CycloneDX}

func sbomMediaTypes() []string {
	var out []string
	for _, name := range sbomFormats {
		if f, ok := formats.Lookup(name); ok {
			out = append(out, f.MediaType)
		}
	}
	return out
}

func sbomFormat(mediaType string) (string, bool) {
	for _, name := range sbomFormats {
		if f, ok := formats.Lookup(name); ok && f.MediaType == mediaType {
			return name, true
		}
	}
	return "", false
}

// vulnReport is HarborVulnerabilityReport.
type vulnReport struct {
	GeneratedAt     time.Time  `json:"generated_at"`
	Artifact        artifact   `json:"artifact"`
	Scanner         scanner    `json:"scanner"`
	Severity        string     `json:"severity"`
	Vulnerabilities []vulnItem `json:"vulnerabilities"`
}

// vulnItem is VulnerabilityItem.
type vulnItem struct {
	ID               string         `json:"id"`
	Package          string         `json:"package"`
	Version          string         `json:"version"`
	FixVersion       string         `json:"fix_version,omitempty"`
	Severity         string         `json:"severity"`
	Description      string         `json:"description,omitempty"`
	Links            []string       `json:"links,omitempty"`
	PreferredCVSS    *cvssDetails   `json:"preferred_cvss,omitempty"`
	CweIDs           []string       `json:"cwe_ids,omitempty"`
	VendorAttributes map[string]any `json:"vendor_attributes"`
}

// cvssDetails is CVSSDetails: v3 only (Harbor has no place for v4).
type cvssDetails struct {
	ScoreV3  float64 `json:"score_v3"`
	VectorV3 string  `json:"vector_v3"`
}

// vendorAttributes is what assay adds to each item, under "assay".
type vendorAttributes struct {
	// OSVID is the advisory's id; the item's id is its CVE alias when it
	// has one (Harbor's CVE allowlist works on CVE ids).
	OSVID          string   `json:"osv_id"`
	Aliases        []string `json:"aliases,omitempty"`
	Ecosystem      string   `json:"ecosystem"`
	PURL           string   `json:"purl,omitempty"`
	Locations      []string `json:"locations,omitempty"`
	SeveritySource string   `json:"severity_source,omitempty"`
	// CVSSv4 is the v4 vector the severity came from, if any.
	CVSSv4 *report.CVSS `json:"cvss_v4,omitempty"`
	// Verdict and Summary are the image's: healthy, unhealthy or
	// incomplete; the counts include the suppressed findings, which
	// Harbor is not sent.
	Verdict report.Verdict `json:"verdict"`
	Summary report.Summary `json:"summary"`
	// Recommendation is the upgrade of this package that fixes its
	// findings, when assay has one.
	Recommendation *report.Recommendation `json:"recommendation,omitempty"`
}

// severityWord maps assay's severities to Harbor's.
func severityWord(s report.Severity) string {
	switch s {
	case report.Critical:
		return "Critical"
	case report.High:
		return "High"
	case report.Medium:
		return "Medium"
	case report.Low:
		return "Low"
	case report.Negligible:
		return "Negligible"
	}
	return "Unknown"
}

// harborArtifact describes the scanned artifact from the scan's reference.
func harborArtifact(sc scans.Scan, rep *report.Report) artifact {
	a := artifact{Digest: rep.Digest}
	if named, err := reference.ParseNormalizedNamed(sc.Image); err == nil {
		a.Repository = reference.Path(named)
		if t, ok := named.(reference.Tagged); ok {
			a.Tag = t.Tag()
		}
	}
	return a
}

// vulnerabilityReport lists the findings assay counts (the suppressed
// ones are left out: Harbor would count them); the image's severity is
// the highest of theirs (the summary's), Unknown when there are none.
func (h *Handler) vulnerabilityReport(sc scans.Scan, rep *report.Report, _ string) ([]byte, error) {
	out := vulnReport{
		GeneratedAt:     generatedAt(rep),
		Artifact:        harborArtifact(sc, rep),
		Scanner:         h.scanner(),
		Severity:        "Unknown",
		Vulnerabilities: []vulnItem{},
	}
	recs := map[report.PackageRef]*report.Recommendation{}
	for i := range rep.Recommendations {
		r := &rep.Recommendations[i]
		recs[r.Package] = r
	}
	for _, f := range rep.Findings {
		if f.Suppressed != nil {
			continue
		}
		id := f.ID
		if !strings.HasPrefix(id, "CVE-") {
			for _, a := range f.Aliases {
				if strings.HasPrefix(a, "CVE-") {
					id = a
					break
				}
			}
		}
		va := vendorAttributes{
			OSVID:          f.ID,
			Aliases:        f.Aliases,
			Ecosystem:      f.Package.Ecosystem,
			PURL:           f.Package.PURL,
			Locations:      f.Locations,
			SeveritySource: f.SeveritySource,
			Verdict:        rep.Verdict,
			Summary:        rep.Summary,
			Recommendation: recs[f.Package],
		}
		item := vulnItem{
			ID:          id,
			Package:     f.Package.Name,
			Version:     f.Package.Version,
			FixVersion:  f.FixedVersion,
			Severity:    severityWord(f.Severity),
			Description: f.Summary,
			Links:       []string{"https://osv.dev/vulnerability/" + f.ID},
		}
		v3 := f.CVSSv3
		if f.CVSS != nil {
			if strings.HasPrefix(f.CVSS.Version, "3") {
				v3 = f.CVSS
			} else {
				va.CVSSv4 = f.CVSS
			}
		}
		if v3 != nil {
			item.PreferredCVSS = &cvssDetails{ScoreV3: v3.Score, VectorV3: v3.Vector}
		}
		item.VendorAttributes = map[string]any{"assay": va}
		out.Vulnerabilities = append(out.Vulnerabilities, item)
	}
	if top := rep.Summary.Max(); top != "" {
		out.Severity = severityWord(top)
	}
	return marshal(out)
}

// sbomReport is HarborSbomReport: the document in the asked format.
func (h *Handler) sbomReport(sc scans.Scan, rep *report.Report, sbomType string) ([]byte, error) {
	name, ok := sbomFormat(sbomType)
	if !ok {
		return nil, fmt.Errorf("harbor: no SBOM format has the media type %q", sbomType)
	}
	var doc bytes.Buffer
	if err := formats.Write(&doc, name, rep, formats.Options{ToolVersion: h.o.Version}); err != nil {
		return nil, err
	}
	return marshal(struct {
		GeneratedAt      time.Time       `json:"generated_at"`
		Artifact         artifact        `json:"artifact"`
		Scanner          scanner         `json:"scanner"`
		VendorAttributes map[string]any  `json:"vendor_attributes"`
		MediaType        string          `json:"media_type"`
		SBOM             json.RawMessage `json:"sbom"`
	}{
		GeneratedAt: generatedAt(rep),
		Artifact:    harborArtifact(sc, rep),
		Scanner:     h.scanner(),
		VendorAttributes: map[string]any{
			"assay": map[string]any{"verdict": rep.Verdict, "packages": len(rep.Packages), "truncated": rep.Truncated},
		},
		MediaType: sbomType,
		SBOM:      doc.Bytes(),
	})
}

func generatedAt(rep *report.Report) time.Time {
	if !rep.MatchedAt.IsZero() {
		return rep.MatchedAt.UTC()
	}
	return rep.ScannedAt.UTC()
}

func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("harbor: encoding the report: %w", err)
	}
	return append(b, '\n'), nil
}
