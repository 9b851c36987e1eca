package match

import (
	"fmt"
	"strings"

	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/assayhq/assay/daemon/report"
)

// Where a severity came from (report.Finding.SeveritySource).
const (
	SourceCVSSv4           = "cvss_v4"
	SourceCVSSv3           = "cvss_v3"
	SourceDatabaseSpecific = "database_specific"
	// SourceEcosystemSpecific is the ecosystem's own rating: a Debian or
	// Ubuntu urgency, or an Ubuntu priority given as a severity of type
	// "Ubuntu".
	SourceEcosystemSpecific = "ecosystem_specific"
)

// Rating is the severity of one record for one package and where it came
// from.
type Rating struct {
	Severity report.Severity
	// Source is one of the Source constants, "" when Severity is unknown.
	Source string
	// CVSS is the vector the severity was computed from, if any.
	CVSS *report.CVSS
	// CVSSv3 is the best CVSS v3 vector when CVSS is a v4 one (Harbor's
	// preferred_cvss has a place for v3 only).
	CVSSv3 *report.CVSS
	// Problems name severity data that could not be used (an invalid
	// CVSS vector); the rating fell through to the next source.
	Problems []string
}

// ScoreBand maps a CVSS score to a severity with the qualitative scale of
// CVSS v3.1 and v4.0: 9.0 and above critical, 7.0 high, 4.0 medium, 0.1
// low; 0.0 ("none") is negligible.
func ScoreBand(score float64) report.Severity {
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

// Rate derives the severity of record v for a package from, in order:
//
//  1. CVSS v4 vectors, then CVSS v3.0/v3.1 vectors, from the severity of
//     the affected entries given (the entries that matched the package)
//     and the record's top-level severity; the highest score of the
//     preferred version counts;
//  2. database_specific.severity (GitHub's CRITICAL, HIGH, MODERATE, LOW)
//     of those entries, then of the record;
//  3. an urgency (Debian and Ubuntu: unimportant, low, medium, high) in
//     the entries' ecosystem_specific or database_specific or the
//     record's database_specific; then an Ubuntu priority (severity of
//     type "Ubuntu");
//
// and else unknown. Invalid vectors are skipped and named in Problems.
func Rate(v *osvschema.Vulnerability, affected ...*osvschema.Affected) Rating {
	var sevs []*osvschema.Severity
	for _, a := range affected {
		sevs = append(sevs, a.GetSeverity()...)
	}
	sevs = append(sevs, v.GetSeverity()...)

	var r Rating
	var v4, v3 *report.CVSS
	for _, s := range sevs {
		switch s.GetType() {
		case osvschema.Severity_CVSS_V4, osvschema.Severity_CVSS_V3:
		default:
			continue
		}
		c, err := scoreVector(s.GetScore())
		if err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: severity %s %q: %v", v.GetId(), s.GetType(), short(s.GetScore()), err))
			continue
		}
		best := &v3
		if c.Version == "4.0" {
			best = &v4
		}
		if *best == nil || c.Score > (*best).Score {
			*best = c
		}
	}
	switch {
	case v4 != nil:
		r.Severity, r.Source, r.CVSS, r.CVSSv3 = ScoreBand(v4.Score), SourceCVSSv4, v4, v3
		return r
	case v3 != nil:
		r.Severity, r.Source, r.CVSS = ScoreBand(v3.Score), SourceCVSSv3, v3
		return r
	}

	dbs := make([]*structpb.Struct, 0, len(affected)+1)
	for _, a := range affected {
		dbs = append(dbs, a.GetDatabaseSpecific())
	}
	dbs = append(dbs, v.GetDatabaseSpecific())
	for _, d := range dbs {
		if sev, ok := ghsaSeverity(stringField(d, "severity")); ok {
			r.Severity, r.Source = sev, SourceDatabaseSpecific
			return r
		}
	}

	type place struct {
		s      *structpb.Struct
		source string
	}
	var places []place
	for _, a := range affected {
		places = append(places, place{a.GetEcosystemSpecific(), SourceEcosystemSpecific}, place{a.GetDatabaseSpecific(), SourceDatabaseSpecific})
	}
	places = append(places, place{v.GetDatabaseSpecific(), SourceDatabaseSpecific})
	for _, p := range places {
		if sev, ok := urgency(stringField(p.s, "urgency")); ok {
			r.Severity, r.Source = sev, p.source
			return r
		}
	}
	for _, s := range sevs {
		if s.GetType() != osvschema.Severity_Ubuntu {
			continue
		}
		if sev, ok := urgency(s.GetScore()); ok {
			r.Severity, r.Source = sev, SourceEcosystemSpecific
			return r
		}
	}
	r.Severity = report.Unknown
	return r
}

// scoreVector computes the score of a CVSS v3.0, v3.1 or v4.0 vector with
// go-cvss: the base score for v3, the CVSS-B(TE) score for v4.
func scoreVector(vector string) (c *report.CVSS, err error) {
	defer func() {
		if r := recover(); r != nil { // go-cvss is not ours
			c, err = nil, fmt.Errorf("scoring the vector failed: %v", r)
		}
	}()
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := gocvss40.ParseVector(vector)
		if err != nil {
			return nil, err
		}
		return &report.CVSS{Version: "4.0", Vector: vector, Score: v.Score()}, nil
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := gocvss31.ParseVector(vector)
		if err != nil {
			return nil, err
		}
		return &report.CVSS{Version: "3.1", Vector: vector, Score: v.BaseScore()}, nil
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := gocvss30.ParseVector(vector)
		if err != nil {
			return nil, err
		}
		return &report.CVSS{Version: "3.0", Vector: vector, Score: v.BaseScore()}, nil
	}
	return nil, fmt.Errorf("not a CVSS v3.0, v3.1 or v4.0 vector")
}

// ghsaSeverity reads GitHub's database_specific.severity.
func ghsaSeverity(s string) (report.Severity, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return report.Critical, true
	case "HIGH":
		return report.High, true
	case "MODERATE", "MEDIUM":
		return report.Medium, true
	case "LOW":
		return report.Low, true
	}
	return "", false
}

// urgency reads a Debian urgency (security tracker or changelog) or an
// Ubuntu priority. "not yet assigned", "untriaged" and anything else are
// not a rating.
func urgency(s string) (report.Severity, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	// The security tracker marks urgencies it took from elsewhere with
	// trailing asterisks ("low**").
	s = strings.TrimRight(s, "*")
	switch s {
	case "unimportant", "negligible":
		return report.Negligible, true
	case "low":
		return report.Low, true
	case "medium":
		return report.Medium, true
	case "high":
		return report.High, true
	case "critical", "emergency":
		return report.Critical, true
	}
	return "", false
}

// stringField returns a top-level string field of a JSON object, or "".
func stringField(s *structpb.Struct, key string) string {
	if s == nil {
		return ""
	}
	return s.GetFields()[key].GetStringValue()
}
