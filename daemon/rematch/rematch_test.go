package rematch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// memStore holds latest reports by digest; conflict makes PutRematch of
// that digest fail as if a scan had stored a newer report.
type memStore struct {
	mu       sync.Mutex
	latest   map[string]*report.Report
	conflict string
	puts     int
}

func (m *memStore) LatestReports(ctx context.Context, fn func(*report.Report) error) error {
	m.mu.Lock()
	var list []*report.Report
	for _, r := range m.latest {
		list = append(list, r)
	}
	m.mu.Unlock()
	for _, r := range list {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) PutRematch(ctx context.Context, prev, next *report.Report) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev.Digest == m.conflict {
		return errdefs.ErrConflict
	}
	m.latest[next.Digest] = next
	m.puts++
	return nil
}

// vulnerable finds CVE-1 in every package named "bad".
type vulnerable struct{}

func (vulnerable) Assess(ctx context.Context, r *report.Report) error {
	if r.Digest == "sha256:broken" {
		return errors.New("cannot assess")
	}
	r.Findings = nil
	r.Verdict = report.Healthy
	for _, p := range r.Packages {
		if p.Name == "bad" {
			r.Findings = append(r.Findings, report.Finding{ID: "CVE-1", Severity: report.High, Package: report.PackageRef{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version}})
			r.Verdict = report.Unhealthy
		}
	}
	return nil
}

type events struct {
	mu  sync.Mutex
	got []scans.Event
}

func (e *events) Publish(ev scans.Event) { e.mu.Lock(); e.got = append(e.got, ev); e.mu.Unlock() }

func TestPass(t *testing.T) {
	pkg := func(name string) []report.Package {
		return []report.Package{{Ecosystem: "npm", Name: name, Version: "1"}}
	}
	st := &memStore{latest: map[string]*report.Report{
		"sha256:a":      {Digest: "sha256:a", Verdict: report.Healthy, Packages: pkg("bad")},      // becomes unhealthy
		"sha256:b":      {Digest: "sha256:b", Verdict: report.Healthy, Packages: pkg("good")},     // unchanged
		"sha256:c":      {Digest: "sha256:c", Verdict: report.Healthy, Packages: pkg("bad")},      // changed, but a scan won
		"sha256:broken": {Digest: "sha256:broken", Verdict: report.Healthy, Packages: pkg("bad")}, // assessing fails: skipped
	}, conflict: "sha256:c"}
	ev := &events{}
	r := New(st, vulnerable{}, ev, nil)
	total, changed, err := r.Pass(context.Background())
	if err != nil || total != 4 || changed != 1 || st.puts != 1 {
		t.Fatalf("Pass = %d, %d, %v (%d stored); want 4 seen, 1 changed", total, changed, err, st.puts)
	}
	a := st.latest["sha256:a"]
	if a.Verdict != report.Unhealthy || a.Trigger != "rematch" || len(ev.got) != 1 || ev.got[0].Report.Digest != "sha256:a" {
		t.Errorf("a: verdict %s trigger %q, events %d", a.Verdict, a.Trigger, len(ev.got))
	}
	// The previous report is not modified in place.
	if st.latest["sha256:c"].Verdict != report.Healthy {
		t.Error("the stored report was modified in place")
	}
}

// Kicks while a pass runs make exactly one more pass.
func TestKickCoalesces(t *testing.T) {
	st := &memStore{latest: map[string]*report.Report{"sha256:a": {Digest: "sha256:a"}}}
	r := New(st, vulnerable{}, nil, nil)
	passes := make(chan struct{}, 10)
	r.Done = func(int, int, time.Duration) { passes <- struct{}{} }
	for range 5 {
		r.Kick(context.Background())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	<-passes
	select {
	case <-passes:
		t.Error("five kicks before a run made more than one pass")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	<-done
}
