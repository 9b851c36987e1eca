package formats

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/assayhq/assay/daemon/report"
)

// sarifLog is the part of a SARIF log the tests read, decoded without the
// library that wrote it.
type sarifLog struct {
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name    string `json:"name"`
				Version string `json:"version"`
				Rules   []struct {
					ID               string                `json:"id"`
					ShortDescription struct{ Text string } `json:"shortDescription"`
					HelpURI          string                `json:"helpUri"`
					Properties       map[string]any        `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string                `json:"ruleId"`
			RuleIndex int                   `json:"ruleIndex"`
			Level     string                `json:"level"`
			Message   struct{ Text string } `json:"message"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct{ URI string } `json:"artifactLocation"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			Suppressions []struct {
				Kind          string `json:"kind"`
				Status        string `json:"status"`
				Justification string `json:"justification"`
			} `json:"suppressions"`
		} `json:"results"`
		Invocations []struct {
			ExecutionSuccessful bool `json:"executionSuccessful"`
			Notifications       []struct {
				Level   string                `json:"level"`
				Message struct{ Text string } `json:"message"`
			} `json:"toolExecutionNotifications"`
		} `json:"invocations"`
		Properties map[string]any `json:"properties"`
	} `json:"runs"`
}

func readSARIF(t *testing.T, doc []byte) sarifLog {
	t.Helper()
	var l sarifLog
	if err := json.Unmarshal(doc, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(l.Runs))
	}
	return l
}

func TestSARIF(t *testing.T) {
	r := unhealthyReport(t)
	doc := write(t, SARIF, r)
	validate(t, SARIF, doc)
	l := readSARIF(t, doc)
	run := l.Runs[0]

	if l.Version != "2.1.0" || run.Tool.Driver.Name != "assay" || run.Tool.Driver.Version != "0.6.0" {
		t.Errorf("version %q, driver %q %q", l.Version, run.Tool.Driver.Name, run.Tool.Driver.Version)
	}

	// One rule per advisory id.
	var ids []string
	for _, f := range r.Findings {
		if !slices.Contains(ids, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	if len(run.Tool.Driver.Rules) != len(ids) {
		t.Fatalf("%d rules, want one per advisory: %d", len(run.Tool.Driver.Rules), len(ids))
	}
	rules := map[string]int{}
	for i, rule := range run.Tool.Driver.Rules {
		rules[rule.ID] = i
		if rule.HelpURI != "https://osv.dev/vulnerability/"+url.PathEscape(rule.ID) {
			t.Errorf("rule %s: helpUri %s", rule.ID, rule.HelpURI)
		}
		if rule.ShortDescription.Text == "" {
			t.Errorf("rule %s has no short description", rule.ID)
		}
	}

	// One result per finding; the suppressed ones carry a suppression,
	// the remaining ones none.
	if len(run.Results) != len(r.Findings) {
		t.Fatalf("%d results for %d findings", len(run.Results), len(r.Findings))
	}
	remaining, suppressed := 0, 0
	for i, res := range run.Results {
		f := r.Findings[i]
		if res.RuleID != f.ID || res.RuleIndex != rules[f.ID] {
			t.Errorf("result %d: rule %s index %d, want %s index %d", i, res.RuleID, res.RuleIndex, f.ID, rules[f.ID])
		}
		for _, want := range []string{f.Package.Name, f.Package.Version} {
			if !strings.Contains(res.Message.Text, want) {
				t.Errorf("result %d message %q does not name %q", i, res.Message.Text, want)
			}
		}
		if f.FixedVersion != "" && !strings.Contains(res.Message.Text, f.FixedVersion) {
			t.Errorf("result %d message %q does not name the fix %s", i, res.Message.Text, f.FixedVersion)
		}
		if len(res.Locations) != len(f.Locations) {
			t.Errorf("result %d: %d locations, want %d", i, len(res.Locations), len(f.Locations))
		}
		for _, loc := range res.Locations {
			u := loc.PhysicalLocation.ArtifactLocation.URI
			if u == "" || strings.HasPrefix(u, "/") {
				t.Errorf("result %d: location %q is not a relative URI", i, u)
			}
			if !slices.Contains(f.Locations, "/"+u) {
				t.Errorf("result %d: location %q is none of the finding's %v", i, u, f.Locations)
			}
		}
		if f.Suppressed == nil {
			remaining++
			if len(res.Suppressions) != 0 {
				t.Errorf("result %d (%s) is suppressed but the finding is not", i, f.ID)
			}
			continue
		}
		suppressed++
		if len(res.Suppressions) != 1 {
			t.Fatalf("result %d (%s): %d suppressions, want 1", i, f.ID, len(res.Suppressions))
		}
		s := res.Suppressions[0]
		if s.Kind != "external" || s.Status != "accepted" || !strings.Contains(s.Justification, f.Suppressed.Reason) {
			t.Errorf("result %d: suppression %+v does not carry the reason %q", i, s, f.Suppressed.Reason)
		}
	}
	if remaining != r.Summary.Total() || suppressed != r.Summary.Suppressed {
		t.Errorf("%d unsuppressed and %d suppressed results; the summary counts %d and %d",
			remaining, suppressed, r.Summary.Total(), r.Summary.Suppressed)
	}

	// Levels follow the severity.
	for i, res := range run.Results {
		want := map[report.Severity]string{report.Critical: "error", report.High: "error", report.Medium: "warning",
			report.Low: "note", report.Negligible: "note", report.Unknown: "note"}[r.Findings[i].Severity]
		if res.Level != want {
			t.Errorf("result %d (%s, %s): level %s, want %s", i, r.Findings[i].ID, r.Findings[i].Severity, res.Level, want)
		}
	}

	// security-severity is the CVSS score where there is one, and absent
	// where there is none.
	for _, f := range r.Findings {
		props := run.Tool.Driver.Rules[rules[f.ID]].Properties
		got, has := props["security-severity"].(string)
		if f.CVSS == nil {
			if has {
				t.Errorf("rule %s has security-severity %q without a CVSS score", f.ID, got)
			}
			continue
		}
		if score, err := strconv.ParseFloat(got, 64); err != nil || score != float64(int(f.CVSS.Score*10+0.5))/10 {
			t.Errorf("rule %s: security-severity %q, CVSS score %v", f.ID, got, f.CVSS.Score)
		}
		aliases, _ := props["aliases"].([]any)
		if len(aliases) != len(f.Aliases) {
			t.Errorf("rule %s: aliases %v, want %v", f.ID, aliases, f.Aliases)
		}
	}

	if run.Properties["verdict"] != "unhealthy" || run.Properties["imageDigest"] != r.Digest {
		t.Errorf("run properties %v lack the verdict or the digest", run.Properties)
	}
	if len(run.Invocations) != 1 || !run.Invocations[0].ExecutionSuccessful || len(run.Invocations[0].Notifications) != 0 {
		t.Errorf("a complete scan's invocation: %+v", run.Invocations)
	}
}

func TestSARIFIncomplete(t *testing.T) {
	r := incompleteReport(t)
	doc := write(t, SARIF, r)
	validate(t, SARIF, doc)
	run := readSARIF(t, doc).Runs[0]
	if run.Properties["verdict"] != "incomplete" {
		t.Errorf("verdict property %v", run.Properties["verdict"])
	}
	inv := run.Invocations[0]
	if inv.ExecutionSuccessful {
		t.Error("an incomplete scan is reported as a successful execution")
	}
	var errs, warns []string
	for _, n := range inv.Notifications {
		switch n.Level {
		case "error":
			errs = append(errs, n.Message.Text)
		case "warning":
			warns = append(warns, n.Message.Text)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "gobinary") || !strings.Contains(errs[0], "timeout") {
		t.Errorf("error notifications %q, want the timed-out analyzer", errs)
	}
	if !slices.Equal(warns, report.WarningStrings(r.Warnings)) {
		t.Errorf("warning notifications %q, want %q", warns, r.Warnings)
	}
}

func TestSARIFEmpty(t *testing.T) {
	for name, r := range map[string]*report.Report{
		"zero": {},
		"healthy": {Image: "127.0.0.1:5000/library/scratch:1", Digest: "sha256:00", Verdict: report.Healthy,
			Analyzers: []report.Analyzer{{Name: "dpkg", Status: report.AnalyzerOK}}, ScanID: "01"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := write(t, SARIF, r)
			validate(t, SARIF, doc)
			run := readSARIF(t, doc).Runs[0]
			if len(run.Results) != 0 || len(run.Tool.Driver.Rules) != 0 {
				t.Errorf("%d results and %d rules from no findings", len(run.Results), len(run.Tool.Driver.Rules))
			}
			// GitHub needs the results array even when empty.
			if !strings.Contains(string(doc), `"results": []`) {
				t.Error("the run has no results array")
			}
		})
	}
}

func TestSARIFRuleMergesFindingsOfOneAdvisory(t *testing.T) {
	base := report.Finding{ID: "GHSA-xxxx", Package: report.PackageRef{Ecosystem: "npm", Name: "a", Version: "1.0.0"},
		Aliases: []string{"CVE-1"}, Severity: report.Medium, CVSS: &report.CVSS{Version: "3.1", Vector: "v", Score: 5.3}}
	other := base
	other.Package.Name, other.Aliases = "b", []string{"CVE-1", "CVE-2"}
	other.Severity, other.CVSS = report.High, &report.CVSS{Version: "3.1", Vector: "w", Score: 7.5}
	r := &report.Report{Findings: []report.Finding{base, other}}
	doc := write(t, SARIF, r)
	validate(t, SARIF, doc)
	run := readSARIF(t, doc).Runs[0]
	if len(run.Tool.Driver.Rules) != 1 || len(run.Results) != 2 {
		t.Fatalf("%d rules and %d results, want 1 and 2", len(run.Tool.Driver.Rules), len(run.Results))
	}
	props := run.Tool.Driver.Rules[0].Properties
	if props["security-severity"] != "7.5" {
		t.Errorf("security-severity %v, want the highest score 7.5", props["security-severity"])
	}
	if a, _ := props["aliases"].([]any); len(a) != 2 {
		t.Errorf("aliases %v, want CVE-1 and CVE-2 once each", props["aliases"])
	}
}
