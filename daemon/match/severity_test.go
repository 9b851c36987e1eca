package match

import (
	"context"
	"math"
	"strings"
	"testing"

	gocvss31 "github.com/pandatix/go-cvss/31"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/assayhq/assay/daemon/report"
)

// Known scores: v3 from NVD's published scores (CVE-2021-44228 10.0,
// CVE-2014-0160 7.5, CVE-2021-4034 7.8, the common 9.8, 6.1 and 5.9
// vectors), v4 from FIRST's calculator as go-cvss's own tests record
// them and from FIRST's examples (8.5).
var knownVectors = []struct {
	vector  string
	version string
	score   float64
	want    report.Severity
}{
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", 10.0, report.Critical},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.1", 9.8, report.Critical},
	{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.0", 9.8, report.Critical},
	{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "3.1", 7.8, report.High},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "3.1", 7.5, report.High},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "3.1", 6.1, report.Medium},
	{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", "3.1", 5.9, report.Medium},
	{"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", "3.1", 3.1, report.Low},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "3.1", 0.0, report.Negligible},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", "4.0", 10.0, report.Critical},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 9.3, report.Critical},
	{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 8.5, report.High},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:H/SI:H/SA:H", "4.0", 7.9, report.High},
	{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:P/VC:N/VI:H/VA:H/SC:N/SI:L/SA:L", "4.0", 5.2, report.Medium},
	{"CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 1.0, report.Low},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 0.0, report.Negligible},
}

func withSeverity(t *testing.T, sevs ...*osvschema.Severity) *osvschema.Vulnerability {
	t.Helper()
	r := cloneRecord(loadRecord(t, "go/GO-2021-0113"))
	r.Severity = sevs
	return r
}

func cvss(kind osvschema.Severity_Type, vector string) *osvschema.Severity {
	return &osvschema.Severity{Type: kind, Score: vector}
}

func TestKnownCVSSScores(t *testing.T) {
	for _, c := range knownVectors {
		kind := osvschema.Severity_CVSS_V3
		if c.version == "4.0" {
			kind = osvschema.Severity_CVSS_V4
		}
		r := Rate(withSeverity(t, cvss(kind, c.vector)))
		wantSource := SourceCVSSv3
		if c.version == "4.0" {
			wantSource = SourceCVSSv4
		}
		if r.CVSS == nil || r.CVSS.Vector != c.vector || r.CVSS.Version != c.version || math.Abs(r.CVSS.Score-c.score) > 1e-9 ||
			r.Severity != c.want || r.Source != wantSource || len(r.Problems) != 0 {
			t.Errorf("%s: %+v (cvss %+v), want %.1f %s", c.vector, r, r.CVSS, c.score, c.want)
		}
	}
}

// TestScoreBand checks the bands against go-cvss's own v3.1 qualitative
// rating at every score from 0.0 to 10.0.
func TestScoreBand(t *testing.T) {
	names := map[string]report.Severity{"NONE": report.Negligible, "LOW": report.Low, "MEDIUM": report.Medium, "HIGH": report.High, "CRITICAL": report.Critical}
	for i := 0; i <= 100; i++ {
		score := float64(i) / 10
		rating, err := gocvss31.Rating(score)
		if err != nil {
			t.Fatal(err)
		}
		if got := ScoreBand(score); got != names[rating] {
			t.Errorf("ScoreBand(%.1f) = %s, FIRST's scale says %s", score, got, rating)
		}
	}
}

// TestRealCVSSVectors: every CVSS vector of the stored PyPI records
// scores, and the highest one counts.
func TestRealCVSSVectors(t *testing.T) {
	n := 0
	for _, r := range loadDir(t, "pypi") {
		if len(r.GetSeverity()) == 0 {
			continue
		}
		n++
		rt := Rate(r)
		if rt.Source != SourceCVSSv3 || rt.CVSS == nil || len(rt.Problems) != 0 {
			t.Errorf("%s: %+v", r.GetId(), rt)
		}
		for _, s := range r.GetSeverity() {
			if c, err := scoreVector(s.GetScore()); err != nil || c.Score > rt.CVSS.Score {
				t.Errorf("%s: %s scores %v, %v; rated %v", r.GetId(), s.GetScore(), c, err, rt.CVSS.Score)
			}
		}
	}
	if n != 202 {
		t.Errorf("%d PyPI records with a severity, want 202", n)
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRatePreferences(t *testing.T) {
	v3crit := cvss(osvschema.Severity_CVSS_V3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	v4med := cvss(osvschema.Severity_CVSS_V4, "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:P/VC:N/VI:H/VA:H/SC:N/SI:L/SA:L")

	// v4 wins over v3, even when lower.
	r := Rate(withSeverity(t, v3crit, v4med))
	if r.Severity != report.Medium || r.Source != SourceCVSSv4 || r.CVSS.Score != 5.2 {
		t.Errorf("v4 and v3: %+v", r)
	}
	// An invalid v4 falls through to v3.
	r = Rate(withSeverity(t, cvss(osvschema.Severity_CVSS_V4, "CVSS:4.0/AV:N/AC:X"), v3crit))
	if r.Severity != report.Critical || r.Source != SourceCVSSv3 || len(r.Problems) != 1 {
		t.Errorf("invalid v4: %+v", r)
	}
	// A v2 vector and a vector under the wrong prefix are not used.
	r = Rate(withSeverity(t, cvss(osvschema.Severity_CVSS_V2, "AV:N/AC:L/Au:N/C:P/I:P/A:P"), cvss(osvschema.Severity_CVSS_V3, "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")))
	if r.Severity != report.Unknown || r.Source != "" || r.CVSS != nil || len(r.Problems) != 1 {
		t.Errorf("v2 only: %+v", r)
	}
	// affected[].severity counts.
	rec := withSeverity(t)
	rec.Affected[0].Severity = []*osvschema.Severity{v3crit}
	if r := Rate(rec, rec.Affected[0]); r.Severity != report.Critical || r.Source != SourceCVSSv3 {
		t.Errorf("affected severity: %+v", r)
	}

	// GitHub's database_specific.severity, after an invalid vector.
	for sev, want := range map[string]report.Severity{"CRITICAL": report.Critical, "HIGH": report.High, "MODERATE": report.Medium, "LOW": report.Low} {
		rec := withSeverity(t, cvss(osvschema.Severity_CVSS_V3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q"))
		rec.DatabaseSpecific = mustStruct(t, map[string]any{"severity": sev, "cwe_ids": []any{"CWE-400"}, "github_reviewed": true})
		if r := Rate(rec); r.Severity != want || r.Source != SourceDatabaseSpecific || len(r.Problems) != 1 {
			t.Errorf("GHSA %s: %+v", sev, r)
		}
	}

	// Debian urgencies, in ecosystem_specific (as in the DEBCL records)
	// or database_specific.
	for urg, want := range map[string]report.Severity{"unimportant": report.Negligible, "low": report.Low, "low**": report.Low, "medium": report.Medium, "high": report.High, "not yet assigned": report.Unknown, "end-of-life": report.Unknown} {
		rec := cloneRecord(loadRecord(t, "debian/DEBCL-CVE-2026-109518"))
		rec.Affected[0].EcosystemSpecific = mustStruct(t, map[string]any{"urgency": urg})
		r := Rate(rec, rec.Affected[0])
		wantSource := SourceEcosystemSpecific
		if want == report.Unknown {
			wantSource = ""
		}
		if r.Severity != want || r.Source != wantSource {
			t.Errorf("urgency %q: %+v", urg, r)
		}
		rec.Affected[0].EcosystemSpecific = nil
		rec.DatabaseSpecific = mustStruct(t, map[string]any{"urgency": urg})
		if want == report.Unknown {
			wantSource = ""
		} else {
			wantSource = SourceDatabaseSpecific
		}
		if r := Rate(rec, rec.Affected[0]); r.Severity != want || r.Source != wantSource {
			t.Errorf("database_specific urgency %q: %+v", urg, r)
		}
	}

	// Ubuntu priorities (severity type "Ubuntu").
	for prio, want := range map[string]report.Severity{"negligible": report.Negligible, "low": report.Low, "medium": report.Medium, "high": report.High, "critical": report.Critical, "untriaged": report.Unknown} {
		r := Rate(withSeverity(t, &osvschema.Severity{Type: osvschema.Severity_Ubuntu, Score: prio}))
		if r.Severity != want {
			t.Errorf("Ubuntu %q: %+v", prio, r)
		}
	}

	// Nothing: unknown.
	if r := Rate(loadRecord(t, "go/GO-2021-0113")); r.Severity != report.Unknown || r.Source != "" || r.CVSS != nil {
		t.Errorf("no data: %+v", r)
	}
}

// TestInvalidVectorWarns: through Match, an invalid vector is a warning
// and the severity falls through.
func TestInvalidVectorWarns(t *testing.T) {
	rec := withSeverity(t, cvss(osvschema.Severity_CVSS_V3, "CVSS:3.1/AV:N/AC:L/PR:N"))
	rec.DatabaseSpecific = mustStruct(t, map[string]any{"severity": "HIGH"})
	fs, warnings, err := (&Matcher{DB: newFakeDB(rec)}).Match(context.Background(), []report.Package{{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}})
	if err != nil || len(fs) != 1 || fs[0].Severity != report.High || fs[0].SeveritySource != SourceDatabaseSpecific || fs[0].CVSS != nil {
		t.Fatalf("%+v %v", fs, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "GO-2021-0113") {
		t.Errorf("warnings %q", warnings)
	}
}
