package report

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Reports stored before warnings were structured hold strings: they
// still read, a known prefix as assay's own source, another as the
// analyzer that sent it.
func TestLegacyWarnings(t *testing.T) {
	var r Report
	old := `{"warnings":["policy: ignore rule 1 expired","matching: x","vulnerability database: it holds no advisories","limits: cut","dpkg: /var/lib/dpkg/status: 1 paragraph skipped","no analyzer ran at all"]}`
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	want := []Warning{
		{Source: WarnPolicy, Message: "ignore rule 1 expired"},
		{Source: WarnMatching, Message: "x"},
		{Source: WarnVulnDB, Message: "it holds no advisories"},
		{Source: WarnLimits, Message: "cut"},
		{Analyzer: "dpkg", Message: "/var/lib/dpkg/status: 1 paragraph skipped"},
		{Source: WarnScan, Message: "no analyzer ran at all"},
	}
	if diff := cmp.Diff(want, r.Warnings); diff != "" {
		t.Errorf("legacy warnings (-want +got):\n%s", diff)
	}
	// And the structured form round-trips.
	b, _ := json.Marshal(Report{Warnings: want})
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || !cmp.Equal(want, back.Warnings) {
		t.Errorf("round trip: %v %v", back.Warnings, err)
	}
}

// Only assay's own warnings of a source are dropped: a plugin that calls
// itself "policy" keeps its warnings.
func TestDropWarnings(t *testing.T) {
	ws := []Warning{{Source: WarnPolicy, Message: "a"}, {Analyzer: "policy", Message: "b"}, {Source: WarnMatching, Message: "c"}}
	got := DropWarnings(ws, WarnPolicy)
	if len(got) != 2 || got[0].Analyzer != "policy" || got[1].Source != WarnMatching {
		t.Errorf("DropWarnings = %+v", got)
	}
}
