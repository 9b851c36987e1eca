package formats

import (
	"io"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/assayhq/assay/daemon/report"
)

// Property names in CycloneDX documents, in assay's own namespace.
const (
	propEcosystem      = "assay:ecosystem"
	propLocation       = "assay:location"
	propSourceName     = "assay:source:name"
	propSourceVersion  = "assay:source:version"
	propOwner          = "assay:owner"
	propSeveritySource = "assay:severity_source"
	propMatchedSource  = "assay:matched_source"
	propSuppressed     = "assay:suppressed"
	propVerdict        = "assay:verdict"
	propScanID         = "assay:scan_id"
	propPlatform       = "assay:platform"
)

// bomNamespace names the CycloneDX serial numbers assay makes (a UUID v5
// namespace of its own, so they cannot collide with other tools').
var bomNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://assay.invalid/cyclonedx"))

func encodeCycloneDX(w io.Writer, r *report.Report, opts Options) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	return enc.EncodeVersion(buildCycloneDX(r, opts), cdx.SpecVersion1_6)
}

// buildCycloneDX makes the BOM: the image as metadata.component, a
// component per package, a vulnerability per finding.
func buildCycloneDX(r *report.Report, opts Options) *cdx.BOM {
	now := opts.now()
	bom := cdx.NewBOM()
	// A serial number is unique per BOM, even for the same content written
	// twice; deriving it from the scan and the time keeps tests
	// reproducible.
	bom.SerialNumber = uuid.NewSHA1(bomNamespace, []byte(r.Digest+"\x00"+r.ScanID+"\x00"+now.Format(time.RFC3339Nano))).URN()

	imageRef := imagePURL(r)
	if imageRef == "" {
		imageRef = "assay:image"
	}
	tool := cdx.Component{Type: cdx.ComponentTypeApplication, Name: opts.tool(), Version: opts.ToolVersion}
	image := cdx.Component{
		BOMRef:     imageRef,
		Type:       cdx.ComponentTypeContainer,
		Name:       imageTitle(r),
		Version:    r.Digest,
		PackageURL: imagePURL(r),
	}
	imageProps := properties(propPlatform, r.Platform)
	if len(imageProps) > 0 {
		image.Properties = &imageProps
	}
	meta := properties(propVerdict, string(r.Verdict), propScanID, r.ScanID)
	bom.Metadata = &cdx.Metadata{
		Timestamp: now.Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool}},
		Component: &image,
	}
	if len(meta) > 0 {
		bom.Metadata.Properties = &meta
	}

	inv := reportInventory(r)
	components := make([]cdx.Component, 0, len(inv.pkgs))
	for i, p := range inv.pkgs {
		components = append(components, packageComponent(p, inv.refs[i]))
	}
	bom.Components = &components

	vulns := make([]cdx.Vulnerability, 0, len(r.Findings))
	for _, f := range r.Findings {
		i, _ := inv.find(f) // reportInventory holds every finding's package
		vulns = append(vulns, findingVulnerability(f, inv.refs[i]))
	}
	bom.Vulnerabilities = &vulns
	return bom
}

func packageComponent(p report.Package, ref string) cdx.Component {
	c := cdx.Component{
		BOMRef: ref,
		// Operating-system packages are libraries too: CycloneDX's
		// "operating-system" type is for the OS itself.
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: p.PURL,
	}
	props := properties(propEcosystem, p.Ecosystem)
	for _, l := range p.Locations {
		props = append(props, properties(propLocation, l)...)
	}
	if p.Source != nil {
		props = append(props, properties(propSourceName, p.Source.Name, propSourceVersion, p.Source.Version)...)
	}
	props = append(props, properties(propOwner, p.Owner)...)
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

func findingVulnerability(f report.Finding, componentRef string) cdx.Vulnerability {
	v := cdx.Vulnerability{
		ID:          f.ID,
		Source:      &cdx.Source{Name: "OSV", URL: advisoryURL(f.ID)},
		Description: f.Summary,
	}
	if rt, ok := rating(f); ok {
		v.Ratings = &[]cdx.VulnerabilityRating{rt}
	}
	if len(f.Aliases) > 0 {
		refs := make([]cdx.VulnerabilityReference, 0, len(f.Aliases))
		for _, a := range f.Aliases {
			src := aliasSource(a)
			refs = append(refs, cdx.VulnerabilityReference{ID: a, Source: &src})
		}
		v.References = &refs
	}
	if f.FixedVersion != "" {
		v.Recommendation = "Upgrade to " + f.FixedVersion
	}
	status := cdx.VulnerabilityStatusAffected
	if f.Suppressed != nil && f.Suppressed.Kind == report.SuppressedVEX {
		status = cdx.VulnerabilityStatusNotAffected
	}
	v.Affects = &[]cdx.Affects{{
		Ref:   componentRef,
		Range: &[]cdx.AffectedVersions{{Version: f.Package.Version, Status: status}},
	}}
	v.Analysis = analysisOf(f.Suppressed)

	props := properties(propSeveritySource, f.SeveritySource)
	if f.MatchedSource != nil {
		props = append(props, properties(propMatchedSource, f.MatchedSource.Name+" "+f.MatchedSource.Version)...)
	}
	for _, l := range f.Locations {
		props = append(props, properties(propLocation, l)...)
	}
	if f.Suppressed != nil {
		props = append(props, properties(propSuppressed, f.Suppressed.Kind)...)
	}
	if len(props) > 0 {
		v.Properties = &props
	}
	return v
}

// analysisOf maps a policy suppression onto CycloneDX's vulnerability
// analysis (its VEX vocabulary). A finding that no policy suppressed gets
// no analysis: assay has not assessed it, and "in_triage" would claim
// someone is looking.
//
//   - vex: the VEX statement says not_affected, so the state is
//     not_affected, with the OpenVEX justification translated to the
//     nearest CycloneDX one (OpenVEX's component_not_present and
//     vulnerable_code_not_present both mean the vulnerable code is not
//     there: code_not_present; vulnerable_code_not_in_execute_path is
//     code_not_reachable; vulnerable_code_cannot_be_controlled_by_adversary
//     is requires_environment, the closest CycloneDX has to "the attacker
//     cannot reach the input"; inline_mitigations_already_exist is
//     protected_by_mitigating_control). An unknown justification is left
//     out rather than guessed. The detail is the statement's impact
//     statement.
//   - ignore: a person accepted the risk. None of CycloneDX's states is
//     true then (the image is affected, not resolved, not a false
//     positive), so there is no state; the response is will_not_fix and
//     the detail is the rule's reason and its expiry.
//   - min_severity, only_fixed: a policy setting hid the finding; it is
//     neither assessed nor answered, so there is no state and no
//     response, only a detail that names the setting.
func analysisOf(s *report.Suppression) *cdx.VulnerabilityAnalysis {
	if s == nil {
		return nil
	}
	switch s.Kind {
	case report.SuppressedVEX:
		return &cdx.VulnerabilityAnalysis{
			State:         cdx.IASNotAffected,
			Justification: vexJustification(s.Justification),
			Detail:        strings.TrimSpace(s.Reason),
		}
	case report.SuppressedIgnore:
		detail := joinNonEmpty(": ", "Ignored by policy", strings.TrimSpace(s.Reason))
		if s.Expires != nil {
			detail += " (the rule expires " + s.Expires.UTC().Format(time.RFC3339) + ")"
		}
		return &cdx.VulnerabilityAnalysis{
			Response: &[]cdx.ImpactAnalysisResponse{cdx.IARWillNotFix},
			Detail:   detail,
		}
	}
	return &cdx.VulnerabilityAnalysis{Detail: suppressionText(s)}
}

// vexJustification translates an OpenVEX justification (see analysisOf).
func vexJustification(openvex string) cdx.ImpactAnalysisJustification {
	switch openvex {
	case "component_not_present", "vulnerable_code_not_present":
		return cdx.IAJCodeNotPresent
	case "vulnerable_code_not_in_execute_path":
		return cdx.IAJCodeNotReachable
	case "vulnerable_code_cannot_be_controlled_by_adversary":
		return cdx.IAJRequiresEnvironment
	case "inline_mitigations_already_exist":
		return cdx.IAJProtectedByMitigatingControl
	}
	return ""
}

// rating is the finding's severity as a CycloneDX rating: with its CVSS
// vector and score when the severity came from one. There is none when
// the severity is unknown: a rating of "unknown" says nothing, and
// cyclonedx-go would add a scoring method "other" to it.
func rating(f report.Finding) (cdx.VulnerabilityRating, bool) {
	r := cdx.VulnerabilityRating{Severity: cdxSeverity(f.Severity)}
	if f.CVSS != nil {
		score := f.CVSS.Score
		r.Score = &score
		r.Vector = f.CVSS.Vector
		r.Method = cvssMethod(f.CVSS.Version)
		return r, true
	}
	if r.Severity == cdx.SeverityUnknown {
		return r, false
	}
	r.Method = cdx.ScoringMethodOther
	if f.SeveritySource != "" {
		r.Justification = "severity taken from the advisory's " + strings.ReplaceAll(f.SeveritySource, "_", " ") + " data"
	}
	return r, true
}

func cvssMethod(version string) cdx.ScoringMethod {
	switch {
	case strings.HasPrefix(version, "4"):
		return cdx.ScoringMethodCVSSv4
	case version == "3.1":
		return cdx.ScoringMethodCVSSv31
	case strings.HasPrefix(version, "3"):
		return cdx.ScoringMethodCVSSv3
	case strings.HasPrefix(version, "2"):
		return cdx.ScoringMethodCVSSv2
	}
	return cdx.ScoringMethodOther
}

// cdxSeverity maps assay's levels onto CycloneDX's; negligible (Debian's
// "unimportant", CVSS 0.0) is CycloneDX's info.
func cdxSeverity(s report.Severity) cdx.Severity {
	switch s {
	case report.Critical:
		return cdx.SeverityCritical
	case report.High:
		return cdx.SeverityHigh
	case report.Medium:
		return cdx.SeverityMedium
	case report.Low:
		return cdx.SeverityLow
	case report.Negligible:
		return cdx.SeverityInfo
	}
	return cdx.SeverityUnknown
}

// aliasSource says where an alias is described: NVD for CVEs, GitHub for
// GHSAs, OSV for the rest.
func aliasSource(id string) cdx.Source {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/" + id}
	case strings.HasPrefix(id, "GHSA-"):
		return cdx.Source{Name: "GitHub", URL: "https://github.com/advisories/" + id}
	}
	return cdx.Source{Name: "OSV", URL: advisoryURL(id)}
}

// properties makes name/value pairs, leaving out empty values.
func properties(nameValues ...string) []cdx.Property {
	var ps []cdx.Property
	for i := 0; i+1 < len(nameValues); i += 2 {
		if nameValues[i+1] != "" {
			ps = append(ps, cdx.Property{Name: nameValues[i], Value: nameValues[i+1]})
		}
	}
	return ps
}
