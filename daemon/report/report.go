// Package report defines the report schema: the JSON document that
// GET /v1/reports/{digest} returns. The schema is stable: fields may be
// added, never renamed or removed.
package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Verdict is the outcome of a scan.
type Verdict string

const (
	// Healthy: every analyzer ran and no finding remains after policy.
	Healthy Verdict = "healthy"
	// Unhealthy: findings remain after policy.
	Unhealthy Verdict = "unhealthy"
	// Incomplete: an analyzer failed or timed out, or none ran. A scan that
	// did not look is never called healthy.
	Incomplete Verdict = "incomplete"
)

// ParseVerdict accepts the three verdict names.
func ParseVerdict(s string) (Verdict, error) {
	switch v := Verdict(strings.ToLower(s)); v {
	case Healthy, Unhealthy, Incomplete:
		return v, nil
	}
	return "", fmt.Errorf("report: unknown verdict %q (want healthy, unhealthy or incomplete)", s)
}

// Severity levels, from the most to the least severe.
type Severity string

const (
	Critical   Severity = "critical"
	High       Severity = "high"
	Medium     Severity = "medium"
	Low        Severity = "low"
	Negligible Severity = "negligible"
	Unknown    Severity = "unknown"
)

// Severities lists every level, most severe first.
var Severities = []Severity{Critical, High, Medium, Low, Negligible, Unknown}

// Rank orders severities: critical is 5, unknown is 0.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 5
	case High:
		return 4
	case Medium:
		return 3
	case Low:
		return 2
	case Negligible:
		return 1
	}
	return 0
}

// AtLeast reports whether s is as severe as min or more.
func (s Severity) AtLeast(min Severity) bool { return s.Rank() >= min.Rank() }

// ParseSeverity accepts the level names, case-insensitively.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(s))
	for _, l := range Severities {
		if v == l {
			return v, nil
		}
	}
	return "", fmt.Errorf("report: unknown severity %q (want one of critical, high, medium, low, negligible, unknown)", s)
}

// AnalyzerStatus is how one analyzer ended.
type AnalyzerStatus string

const (
	AnalyzerOK      AnalyzerStatus = "ok"
	AnalyzerFailed  AnalyzerStatus = "failed"
	AnalyzerTimeout AnalyzerStatus = "timeout"
)

// Report is the result of scanning one image manifest for one platform.
type Report struct {
	// Image is the reference the scan was asked for.
	Image string `json:"image"`
	// Digest is the manifest digest that was scanned.
	Digest string `json:"digest"`
	// Platform is os/arch[/variant] of the manifest.
	Platform  string    `json:"platform"`
	ScannedAt time.Time `json:"scanned_at"`
	// MatchedAt is when the inventory was last matched against the
	// vulnerability database (a re-match changes it, not ScannedAt).
	MatchedAt time.Time `json:"matched_at,omitzero"`
	Verdict   Verdict   `json:"verdict"`
	// Summary counts the findings that remain after policy, per severity.
	Summary Summary `json:"summary"`
	// Image metadata recorded by image acquisition.
	ConfigDigest string  `json:"config_digest,omitempty"`
	Layers       []Layer `json:"layers,omitempty"`

	Packages []Package `json:"packages"`
	// Truncated is set when the inventory was larger than the report
	// keeps (limits.max_report_packages, limits.max_package_locations):
	// packages or locations were dropped, so the verdict is at best
	// incomplete. A warning says how many.
	Truncated bool `json:"truncated,omitempty"`
	// Findings are every advisory matched, suppressed ones included.
	Findings []Finding `json:"findings"`
	// Recommendations exist only on unhealthy reports.
	Recommendations []Recommendation `json:"recommendations,omitempty"`
	// VulnDB is the database state the inventory was matched against.
	VulnDB *DBInfo `json:"vulndb,omitempty"`
	// RequestPolicy is the policy the scan request added to the configured
	// one, kept so that a re-match applies it again.
	RequestPolicy json.RawMessage `json:"request_policy,omitempty"`
	// Trigger is what produced the report: the scan's trigger, or
	// "rematch" when a database change re-matched a stored inventory.
	Trigger   string     `json:"trigger,omitempty"`
	Analyzers []Analyzer `json:"analyzers"`
	// Warnings are things the scan could not do fully (skipped files...).
	Warnings []Warning `json:"warnings,omitempty"`
	// ScanID is the scan that produced this report.
	ScanID string `json:"scan_id"`
}

// Summary counts the findings that remain after policy, per severity, and
// the suppressed ones apart.
type Summary struct {
	Critical   int `json:"critical"`
	High       int `json:"high"`
	Medium     int `json:"medium"`
	Low        int `json:"low"`
	Negligible int `json:"negligible"`
	Unknown    int `json:"unknown"`
	Suppressed int `json:"suppressed"`
}

// Add counts one finding of severity s.
func (s *Summary) Add(sev Severity) {
	switch sev {
	case Critical:
		s.Critical++
	case High:
		s.High++
	case Medium:
		s.Medium++
	case Low:
		s.Low++
	case Negligible:
		s.Negligible++
	default:
		s.Unknown++
	}
}

// Total is the number of findings counted.
func (s Summary) Total() int {
	return s.Critical + s.High + s.Medium + s.Low + s.Negligible + s.Unknown
}

// Max is the most severe level with a non-zero count, or "" when none.
func (s Summary) Max() Severity {
	for _, l := range Severities {
		if s.count(l) > 0 {
			return l
		}
	}
	return ""
}

func (s Summary) count(l Severity) int {
	switch l {
	case Critical:
		return s.Critical
	case High:
		return s.High
	case Medium:
		return s.Medium
	case Low:
		return s.Low
	case Negligible:
		return s.Negligible
	}
	return s.Unknown
}

// Layer is one layer of the image.
type Layer struct {
	Digest string `json:"digest"`
	DiffID string `json:"diff_id,omitempty"`
	Size   int64  `json:"size"`
}

// Package is one entry of the inventory.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	PURL      string `json:"purl,omitempty"`
	// Source is the source package, where the ecosystem has one (dpkg).
	Source    *Source  `json:"source,omitempty"`
	Locations []string `json:"locations"`
	// Owner is the OS package whose files these are (Debian's
	// python3-urllib3 for urllib3's egg-info): the distribution patches its
	// own builds, so matching goes by the owner's advisories.
	Owner string `json:"owner,omitempty"`
}

// Source is the source package a binary package was built from.
type Source struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// PackageRef names a package in a finding.
type PackageRef struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	PURL      string `json:"purl,omitempty"`
}

// Finding is one advisory affecting one package. Findings suppressed by
// policy stay in the report with Suppressed set; only the others count in
// the summary and the verdict.
type Finding struct {
	// ID is the advisory's OSV id; Aliases the other ids of the same
	// vulnerability (CVE, GHSA...), merged over every record that named it.
	ID       string     `json:"id"`
	Aliases  []string   `json:"aliases"`
	Package  PackageRef `json:"package"`
	Severity Severity   `json:"severity"`
	// SeveritySource says where Severity came from: cvss_v4, cvss_v3,
	// database_specific, ecosystem_specific, or "" (unknown).
	SeveritySource string `json:"severity_source,omitempty"`
	CVSS           *CVSS  `json:"cvss,omitempty"`
	// CVSSv3 is the advisory's best CVSS v3 vector when CVSS is a v4
	// one, for consumers that know only v3 (Harbor's preferred_cvss).
	CVSSv3 *CVSS `json:"cvss_v3,omitempty"`
	// FixedVersion is the remediation: the lowest version that fixes this
	// advisory for the installed version, when the advisory names one.
	FixedVersion string `json:"fixed_version,omitempty"`
	Summary      string `json:"summary"`
	// MatchedSource is set when the package was matched through its source
	// package (Debian advisories name source packages).
	MatchedSource *Source `json:"matched_source,omitempty"`
	// Locations are the package's paths in the image.
	Locations []string `json:"locations,omitempty"`
	// Suppressed is set when policy hides the finding, with why.
	Suppressed *Suppression `json:"suppressed,omitempty"`
	// Analyzer names the analyzer plugin that reported the finding itself;
	// empty for findings from matching the inventory against advisories.
	Analyzer string `json:"analyzer,omitempty"`
}

// Suppression kinds.
const (
	SuppressedMinSeverity = "min_severity"
	SuppressedOnlyFixed   = "only_fixed"
	SuppressedIgnore      = "ignore"
	SuppressedVEX         = "vex"
)

// Suppression says why policy hides a finding.
type Suppression struct {
	// Kind is min_severity, only_fixed, ignore or vex.
	Kind string `json:"kind"`
	// Reason is the ignore rule's reason, the VEX statement's impact
	// statement, or a sentence naming the policy setting.
	Reason string `json:"reason"`
	// Justification is the VEX justification (component_not_present,
	// vulnerable_code_not_in_execute_path...).
	Justification string `json:"justification,omitempty"`
	// Expires is the ignore rule's expiry, after which it stops applying.
	Expires *time.Time `json:"expires,omitempty"`
}

// Recommendation is given for unhealthy images only: one per package with
// remaining findings, with the version that fixes them all.
type Recommendation struct {
	Package PackageRef `json:"package"`
	// FixedVersion fixes every finding listed; empty when at least one of
	// them has no known fix (then Unfixed lists those).
	FixedVersion string   `json:"fixed_version,omitempty"`
	Findings     []string `json:"findings"`
	Unfixed      []string `json:"unfixed,omitempty"`
	Locations    []string `json:"locations,omitempty"`
}

// DBInfo says which vulnerability database state a report was matched
// against.
type DBInfo struct {
	// UpdatedAt is when the database last changed.
	UpdatedAt time.Time `json:"updated_at"`
	Records   int       `json:"records"`
}

// CVSS is the score a severity was derived from.
type CVSS struct {
	Version string  `json:"version"`
	Vector  string  `json:"vector"`
	Score   float64 `json:"score"`
}

// Analyzer records how one analyzer ran.
type Analyzer struct {
	Name    string         `json:"name"`
	Version string         `json:"version"`
	Status  AnalyzerStatus `json:"status"`
	Error   string         `json:"error,omitempty"`
}

// DecideVerdict applies the verdict rule: incomplete when no analyzer ran or
// any did not end ok; else unhealthy when findings remain; else healthy.
func DecideVerdict(analyzers []Analyzer, remaining int) Verdict {
	if len(analyzers) == 0 {
		return Incomplete
	}
	for _, a := range analyzers {
		if a.Status != AnalyzerOK {
			return Incomplete
		}
	}
	if remaining > 0 {
		return Unhealthy
	}
	return Healthy
}

// Truncate caps r's packages at maxPackages and each package's locations
// at maxLocations (a limit <= 0 is none). It marks r Truncated and adds a
// warning saying what was dropped, which it returns ("" when nothing was).
func Truncate(r *Report, maxPackages, maxLocations int) string {
	var parts []string
	if maxPackages > 0 && len(r.Packages) > maxPackages {
		parts = append(parts, fmt.Sprintf("%d packages, more than limits.max_report_packages (%d): the first %d are kept and matched", len(r.Packages), maxPackages, maxPackages))
		r.Packages = r.Packages[:maxPackages:maxPackages]
	}
	if maxLocations > 0 {
		cut := 0
		for i := range r.Packages {
			if p := &r.Packages[i]; len(p.Locations) > maxLocations {
				p.Locations = p.Locations[:maxLocations:maxLocations]
				cut++
			}
		}
		if cut > 0 {
			parts = append(parts, fmt.Sprintf("%d packages had more than limits.max_package_locations (%d) locations: the first are kept", cut, maxLocations))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	r.Truncated = true
	msg := "the inventory was truncated: " + strings.Join(parts, "; ")
	r.Warnings = append(r.Warnings, Warning{Source: WarnLimits, Message: msg})
	return msg
}

// Warning is something a scan could not do fully. Assay's own warnings
// name their Source (one of the Warn* constants); a plugin's name the
// Analyzer (plugin or extractor) that sent it, so that no plugin's name
// can pass for assay's own (a plugin called "policy" is not the policy).
type Warning struct {
	Source   string `json:"source,omitempty"`
	Analyzer string `json:"analyzer,omitempty"`
	// Path is the file of the image it is about, if any.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// The sources of assay's own warnings.
const (
	WarnScan     = "scan"     // the scan as a whole (no analyzer ran...)
	WarnLimits   = "limits"   // a limit truncated the inventory
	WarnMatching = "matching" // matching packages against advisories
	WarnVulnDB   = "vulndb"   // the vulnerability database's coverage
	WarnPolicy   = "policy"   // the policy (an expired ignore rule...)
)

// String is "source: message" (or the analyzer's name), with the path.
func (w Warning) String() string {
	by := w.Source
	if w.Analyzer != "" {
		by = w.Analyzer
	}
	s := by + ": "
	if w.Path != "" {
		s += w.Path + ": "
	}
	return s + w.Message
}

// UnmarshalJSON reads a warning, or, from reports stored before warnings
// were structured, a "prefix: message" string: a known prefix is assay's
// own source, any other names the analyzer.
func (w *Warning) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*w = legacyWarning(s)
		return nil
	}
	type plain Warning
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*w = Warning(p)
	return nil
}

func legacyWarning(s string) Warning {
	for prefix, source := range map[string]string{
		"policy: ": WarnPolicy, "matching: ": WarnMatching, "vulnerability database: ": WarnVulnDB, "limits: ": WarnLimits,
	} {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			return Warning{Source: source, Message: rest}
		}
	}
	if name, rest, ok := strings.Cut(s, ": "); ok && name != "" && !strings.ContainsAny(name, " \t") {
		return Warning{Analyzer: name, Message: rest}
	}
	return Warning{Source: WarnScan, Message: s}
}

// DropWarnings removes assay's own warnings of the given sources (a
// plugin's are never removed).
func DropWarnings(ws []Warning, sources ...string) []Warning {
	return slices.DeleteFunc(ws, func(w Warning) bool { return w.Analyzer == "" && slices.Contains(sources, w.Source) })
}

// WarningStrings are the warnings as strings (String), in order.
func WarningStrings(ws []Warning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.String()
	}
	return out
}
