package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

func finish(t *testing.T, s *Store, image string, rep *report.Report) scans.Scan {
	t.Helper()
	ctx := context.Background()
	sc, _ := create(t, s, image)
	if _, _, err := s.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	st, errText := scans.Done, ""
	if rep == nil {
		st, errText = scans.Failed, "boom"
	}
	sc, err := s.Finish(ctx, sc.ID, st, errText, rep)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func pending(t *testing.T, s *Store) []Event {
	t.Helper()
	evs, err := s.PendingEvents(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Events are recorded with their change: reports (with the verdict they
// follow), failures, and re-matches that change the verdict; nothing while
// the outbox is off.
func TestOutboxRecordsWithTheChange(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	d := "sha256:" + strings.Repeat("a", 64)
	finish(t, s, "r/a@"+d, &report.Report{Digest: d, Verdict: report.Healthy})
	if n := len(pending(t, s)); n != 0 {
		t.Fatalf("%d events recorded with the outbox off", n)
	}
	s.EnableOutbox()
	sc := finish(t, s, "r/a@"+d, &report.Report{Digest: d, Verdict: report.Unhealthy, Summary: report.Summary{Low: 1, Suppressed: 1}, Findings: []report.Finding{
		{ID: "A", Severity: report.Low}, {ID: "B", Severity: report.Critical, Suppressed: &report.Suppression{Kind: "vex"}}}})
	failed := finish(t, s, "r/b:1", nil)
	evs := pending(t, s)
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	if e := evs[0]; e.Type != EventReportStored || e.ScanID != sc.ID || e.Verdict != report.Unhealthy || e.PreviousVerdict != report.Healthy || e.MaxSeverity != report.Low || e.ID == "" {
		t.Errorf("report event %+v", e)
	}
	if e := evs[1]; e.Type != EventScanFailed || e.ScanID != failed.ID || e.Error != "boom" || e.ID <= evs[0].ID {
		t.Errorf("failure event %+v", e)
	}

	// A re-match: the same verdict records nothing, another one an event.
	prev, err := s.LatestReport(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	same := *prev
	same.MatchedAt = time.Now()
	if err := s.PutRematch(ctx, prev, &same); err != nil {
		t.Fatal(err)
	}
	healthy := same
	healthy.Verdict, healthy.Findings, healthy.MatchedAt = report.Healthy, nil, time.Now().Add(time.Second)
	if err := s.PutRematch(ctx, &same, &healthy); err != nil {
		t.Fatal(err)
	}
	evs = pending(t, s)
	if len(evs) != 3 || evs[2].Type != EventVerdictChanged || evs[2].Verdict != report.Healthy || evs[2].PreviousVerdict != report.Unhealthy {
		t.Fatalf("after re-matches: %+v", evs)
	}

	// Fan-out replaces the events by deliveries, which survive a reopen.
	var ds []Delivery
	for _, e := range evs {
		ds = append(ds, Delivery{Receiver: "http://127.0.0.1:1/h", Event: e, CreatedAt: time.Now(), NextAt: time.Now()})
	}
	if err := s.FanOut(ctx, evs, ds); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Deliveries(ctx)
	if err != nil || len(got) != 3 || len(pending(t, s)) != 0 {
		t.Fatalf("deliveries after reopen: %d %v", len(got), err)
	}
	if err := s.UpdateDelivery(ctx, got[0].Receiver, got[0].Event.ID, func(d *Delivery) bool { d.Dead = true; return true }); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RetryDead(ctx, "", time.Now()); err != nil || n != 1 {
		t.Fatalf("retry: %d %v", n, err)
	}
	if err := s.UpdateDelivery(ctx, got[0].Receiver, got[0].Event.ID, func(*Delivery) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Deliveries(ctx); len(got) != 2 {
		t.Errorf("after a delivery: %d left", len(got))
	}
}

// Dead letters older than the scan retention are pruned with the scans;
// live deliveries and recent dead letters stay.
func TestPruneDropsOldDeadLetters(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	old := time.Now().Add(-48 * time.Hour)
	recent := time.Now()
	ds := []Delivery{
		{Receiver: "r", Event: Event{ID: "1"}, Dead: true, DeadAt: &old},
		{Receiver: "r", Event: Event{ID: "2"}, Dead: true, DeadAt: &recent},
		{Receiver: "r", Event: Event{ID: "3"}, CreatedAt: old},
	}
	if err := s.FanOut(ctx, nil, ds); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, 10, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Deliveries(ctx)
	if len(got) != 2 || got[0].Event.ID != "2" || got[1].Event.ID != "3" {
		t.Errorf("after prune: %+v", got)
	}
}
