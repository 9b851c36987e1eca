package formats

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/assayhq/assay/daemon/report"
)

// SARIF property names. security-severity is GitHub code scanning's: a
// CVSS score as a string, which it turns into its own severity levels.
const (
	sarifSecuritySeverity = "security-severity"
	// sarifFingerprint identifies a finding across runs (same advisory,
	// same package, same place), so dashboards track it instead of
	// reopening it.
	sarifFingerprint = "assayFinding/v1"
)

func encodeSARIF(w io.Writer, r *report.Report, opts Options) error {
	if err := buildSARIF(r, opts).PrettyWrite(w); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n") // as the other formats end
	return err
}

// buildSARIF makes one run: a rule per advisory, a result per finding
// (suppressed ones with a suppression), the verdict in the run's
// properties and the analyzers' failures as invocation notifications.
func buildSARIF(r *report.Report, opts Options) *sarif.Report {
	log := sarif.NewReport()
	run := sarif.NewRun()
	driver := sarif.NewToolComponent()
	driver.Name = ptr(opts.tool())
	if opts.ToolVersion != "" {
		driver.Version = ptr(opts.ToolVersion)
	}
	run.Tool = sarif.NewTool()
	run.Tool.Driver = driver

	inv := reportInventory(r)
	ruleIndex := map[string]int{}
	for _, f := range r.Findings {
		i, ok := ruleIndex[f.ID]
		if !ok {
			i = len(driver.Rules)
			ruleIndex[f.ID] = i
			driver.Rules = append(driver.Rules, newSARIFRule(f))
		}
		mergeIntoRule(driver.Rules[i], f)
	}
	for _, rule := range driver.Rules {
		if rule.ShortDescription == nil { // no finding had a summary
			rule.ShortDescription = &sarif.MultiformatMessageString{Text: ptr(*rule.ID)}
		}
	}
	for _, f := range r.Findings {
		run.Results = append(run.Results, newSARIFResult(f, ruleIndex[f.ID], inv))
	}
	run.Invocations = []*sarif.Invocation{sarifInvocation(r)}
	run.Properties = sarifBag(map[string]any{
		"verdict":     string(r.Verdict),
		"image":       r.Image,
		"imageDigest": r.Digest,
		"platform":    r.Platform,
		"scanId":      r.ScanID,
		"summary":     r.Summary,
	})
	log.AddRun(run)
	return log
}

func newSARIFRule(f report.Finding) *sarif.ReportingDescriptor {
	rule := sarif.NewReportingDescriptor()
	rule.ID = ptr(f.ID)
	rule.HelpURI = ptr(advisoryURL(f.ID))
	rule.Properties = sarifBag(map[string]any{"aliases": []string{}})
	rule.Properties.Tags = []string{"security", "vulnerability"}
	return rule
}

// mergeIntoRule adds what finding f knows about its advisory to the rule:
// the first summary, every alias, and the highest CVSS score (one advisory
// can carry different vectors for different packages).
func mergeIntoRule(rule *sarif.ReportingDescriptor, f report.Finding) {
	if rule.ShortDescription == nil && strings.TrimSpace(f.Summary) != "" {
		short := oneLine(f.Summary)
		rule.ShortDescription = &sarif.MultiformatMessageString{Text: ptr(short)}
		if full := strings.TrimSpace(f.Summary); full != short {
			rule.FullDescription = &sarif.MultiformatMessageString{Text: ptr(full)}
		}
	}
	props := rule.Properties.Properties
	aliases := props["aliases"].([]string)
	for _, a := range f.Aliases {
		if !slices.Contains(aliases, a) {
			aliases = append(aliases, a)
		}
	}
	props["aliases"] = aliases
	if f.CVSS != nil && f.CVSS.Score > 0 {
		if cur, ok := props[sarifSecuritySeverity].(string); !ok || parseScore(cur) < f.CVSS.Score {
			props[sarifSecuritySeverity] = strconv.FormatFloat(f.CVSS.Score, 'f', 1, 64)
		}
	}
}

func newSARIFResult(f report.Finding, ruleIndex int, inv *inventory) *sarif.Result {
	res := sarif.NewResult()
	res.RuleID = ptr(f.ID)
	res.RuleIndex = ruleIndex
	res.Level = sarifLevel(f.Severity)
	res.Message = sarif.NewTextMessage(findingMessage(f))

	paths := f.Locations
	if i, ok := inv.find(f); ok && len(paths) == 0 {
		paths = inv.pkgs[i].Locations
	}
	for _, p := range paths {
		uri := relativeURI(p)
		if uri == "" {
			continue
		}
		al := sarif.NewArtifactLocation()
		al.URI = ptr(uri)
		loc := sarif.NewLocation()
		loc.PhysicalLocation = sarif.NewPhysicalLocation()
		loc.PhysicalLocation.ArtifactLocation = al
		res.Locations = append(res.Locations, loc)
	}

	props := map[string]any{
		"severity":         string(f.Severity),
		"ecosystem":        f.Package.Ecosystem,
		"package":          f.Package.Name,
		"installedVersion": f.Package.Version,
	}
	setIf(props, "purl", f.Package.PURL)
	setIf(props, "fixedVersion", f.FixedVersion)
	setIf(props, "severitySource", f.SeveritySource)
	if f.CVSS != nil {
		props["cvss"] = map[string]any{"version": f.CVSS.Version, "vector": f.CVSS.Vector, "score": f.CVSS.Score}
	}
	if f.MatchedSource != nil {
		props["matchedSource"] = map[string]any{"name": f.MatchedSource.Name, "version": f.MatchedSource.Version}
	}
	res.Properties = sarifBag(props)
	res.PartialFingerprints = map[string]string{sarifFingerprint: findingFingerprint(f)}

	if s := f.Suppressed; s != nil {
		sup := sarif.NewSuppression()
		sup.Kind = ptr("external") // decided by policy outside the image
		sup.Status = ptr("accepted")
		sup.Justification = ptr(suppressionText(s))
		sp := map[string]any{"kind": s.Kind}
		setIf(sp, "vexJustification", s.Justification)
		if s.Expires != nil {
			sp["expires"] = s.Expires.UTC().Format(time.RFC3339)
		}
		sup.Properties = sarifBag(sp)
		res.Suppressions = []*sarif.Suppression{sup}
	}
	return res
}

// sarifInvocation says whether the scan looked everywhere it should have:
// an incomplete verdict is an unsuccessful execution, with a notification
// per analyzer that did not end ok (or one saying none ran) and one per
// warning.
func sarifInvocation(r *report.Report) *sarif.Invocation {
	inv := sarif.NewInvocation()
	inv.ExecutionSuccessful = ptr(r.Verdict != report.Incomplete)
	if !r.ScannedAt.IsZero() {
		inv.EndTimeUtc = ptr(r.ScannedAt.UTC().Format(time.RFC3339))
	}
	note := func(level, text string) {
		n := sarif.NewNotification()
		n.Level = level
		n.Message = sarif.NewTextMessage(text)
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	if len(r.Analyzers) == 0 && r.Verdict == report.Incomplete {
		note(sarif.LevelError, "no analyzer ran: the image was not looked at, so the absence of findings proves nothing")
	}
	for _, a := range r.Analyzers {
		if a.Status == report.AnalyzerOK {
			continue
		}
		text := fmt.Sprintf("analyzer %s ended %s", a.Name, a.Status)
		if a.Error != "" {
			text += ": " + a.Error
		}
		note(sarif.LevelError, text)
	}
	for _, w := range r.Warnings {
		note(sarif.LevelWarning, w.String())
	}
	return inv
}

// sarifLevel maps a severity to a result level: error for critical and
// high, warning for medium, note for the rest (low, negligible, unknown).
func sarifLevel(s report.Severity) string {
	switch s {
	case report.Critical, report.High:
		return sarif.LevelError
	case report.Medium:
		return sarif.LevelWarning
	}
	return sarif.LevelNote
}

// findingMessage names the package, the installed version and the fix.
func findingMessage(f report.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", f.Package.Name, f.Package.Version)
	if f.Package.Ecosystem != "" {
		fmt.Fprintf(&b, " (%s", f.Package.Ecosystem)
		if f.MatchedSource != nil {
			fmt.Fprintf(&b, ", source package %s %s", f.MatchedSource.Name, f.MatchedSource.Version)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " is affected by %s", f.ID)
	if len(f.Aliases) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(f.Aliases, ", "))
	}
	if f.FixedVersion != "" {
		fmt.Fprintf(&b, "; fixed in version %s.", f.FixedVersion)
	} else {
		b.WriteString("; no fixed version is known.")
	}
	return b.String()
}

// suppressionText is why a finding is suppressed, in words.
func suppressionText(s *report.Suppression) string {
	reason := strings.TrimSpace(s.Reason)
	switch s.Kind {
	case report.SuppressedVEX:
		if s.Justification != "" {
			reason = joinNonEmpty(": ", "VEX statement not_affected ("+s.Justification+")", reason)
		} else {
			reason = joinNonEmpty(": ", "VEX statement not_affected", reason)
		}
	case report.SuppressedIgnore:
		reason = joinNonEmpty(": ", "ignored by policy rule", reason)
		if s.Expires != nil {
			reason += " (until " + s.Expires.UTC().Format(time.RFC3339) + ")"
		}
	default:
		reason = joinNonEmpty(": ", "hidden by the policy setting "+s.Kind, reason)
	}
	return reason
}

func findingFingerprint(f report.Finding) string {
	h := sha256.New()
	for _, s := range append([]string{f.ID, f.Package.Ecosystem, f.Package.Name, f.Package.Version}, f.Locations...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func sarifBag(props map[string]any) *sarif.PropertyBag {
	b := sarif.NewPropertyBag()
	for k, v := range props {
		b.Properties[k] = v
	}
	return b
}

func setIf(m map[string]any, key, value string) {
	if value != "" {
		m[key] = value
	}
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}

// oneLine is the first line of s, trimmed.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

func parseScore(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}

func ptr[T any](v T) *T { return &v }
