package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "assay.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func create(t *testing.T, s *Store, image string) (scans.Scan, bool) {
	t.Helper()
	sc, created, err := s.Create(context.Background(), scans.Scan{Image: image, DedupeKey: "ref:" + image})
	if err != nil {
		t.Fatal(err)
	}
	return sc, created
}

func TestCreateDedupesWhileActive(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	a, created := create(t, s, "r/a:1")
	if !created || a.Status != scans.Queued || a.ID == "" {
		t.Fatalf("first create: %+v created=%v", a, created)
	}
	b, created := create(t, s, "r/a:1")
	if created || b.ID != a.ID {
		t.Fatalf("second create of the same image made %s (created=%v), want %s", b.ID, created, a.ID)
	}
	if _, ok, _ := s.Claim(ctx); !ok {
		t.Fatal("claim found nothing")
	}
	if c, created := create(t, s, "r/a:1"); created || c.ID != a.ID {
		t.Fatalf("create while running made a second scan")
	}
	if _, err := s.Finish(ctx, a.ID, scans.Done, "", &report.Report{Digest: "sha256:aa", Verdict: report.Incomplete}); err != nil {
		t.Fatal(err)
	}
	if d, created := create(t, s, "r/a:1"); !created || d.ID == a.ID {
		t.Fatalf("create after the scan finished must make a new scan, got %s created=%v", d.ID, created)
	}
}

func TestClaimIsFIFOAndCountsAttempts(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var ids []string
	for _, img := range []string{"r/a", "r/b", "r/c"} {
		sc, _ := create(t, s, img)
		ids = append(ids, sc.ID)
	}
	for i, want := range ids {
		got, ok, err := s.Claim(ctx)
		if err != nil || !ok {
			t.Fatalf("claim %d: ok=%v err=%v", i, ok, err)
		}
		if got.ID != want || got.Status != scans.Pulling || got.Attempts != 1 || got.StartedAt == nil {
			t.Fatalf("claim %d: got %+v, want id %s pulling attempt 1", i, got, want)
		}
	}
	if _, ok, _ := s.Claim(ctx); ok {
		t.Fatal("claim from an empty queue returned a scan")
	}
}

func TestFinishExactlyOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	sc, _ := create(t, s, "r/a")
	s.Claim(ctx)
	rep := &report.Report{Image: "r/a", Digest: "sha256:aa", Verdict: report.Healthy}
	done, err := s.Finish(ctx, sc.ID, scans.Done, "", rep)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != scans.Done || done.Digest != "sha256:aa" || done.Verdict != report.Healthy || done.FinishedAt == nil {
		t.Fatalf("finished scan: %+v", done)
	}
	if _, err := s.Finish(ctx, sc.ID, scans.Failed, "again", nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second finish: err=%v, want conflict", err)
	}
	if _, err := s.Update(ctx, sc.ID, func(s *scans.Scan) { s.Status = scans.Matching }); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("update after finish: err=%v, want conflict", err)
	}
	got, _ := s.Get(ctx, sc.ID)
	if got.Status != scans.Done {
		t.Fatalf("status changed after a refused finish: %s", got.Status)
	}
	reps, err := s.Reports(ctx, "sha256:aa")
	if err != nil || len(reps) != 1 || reps[0].ScanID != sc.ID {
		t.Fatalf("reports: %v %+v", err, reps)
	}
}

func TestRecoverRequeuesThenFails(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	a, _ := create(t, s, "r/a")
	b, _ := create(t, s, "r/b")
	s.Claim(ctx) // a running when the "crash" happens; b still queued
	s.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	requeued, failed, err := s.Recover(ctx, 2)
	if err != nil || len(requeued) != 1 || requeued[0].ID != a.ID || len(failed) != 0 {
		t.Fatalf("recover: requeued=%v failed=%v err=%v", requeued, failed, err)
	}
	// a keeps its place ahead of b.
	got, _, _ := s.Claim(ctx)
	if got.ID != a.ID || got.Attempts != 2 {
		t.Fatalf("claim after recover: %+v", got)
	}
	_, failed, err = s.Recover(ctx, 2)
	if err != nil || len(failed) != 1 || failed[0].ID != a.ID || failed[0].Status != scans.Failed {
		t.Fatalf("second recover: failed=%v err=%v", failed, err)
	}
	if got, _ := s.Get(ctx, a.ID); got.Status != scans.Failed || got.Error == "" {
		t.Fatalf("scan a after giving up: %+v", got)
	}
	got, ok, _ := s.Claim(ctx)
	if !ok || got.ID != b.ID {
		t.Fatalf("b must still be queued: %+v ok=%v", got, ok)
	}
}

func TestCancelQueuedAndRunning(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	a, _ := create(t, s, "r/a")
	b, _ := create(t, s, "r/b")
	s.Claim(ctx) // a runs
	if _, running, err := s.CancelQueued(ctx, a.ID, "x"); err != nil || !running {
		t.Fatalf("cancel running: running=%v err=%v", running, err)
	}
	got, running, err := s.CancelQueued(ctx, b.ID, "by request")
	if err != nil || running || got.Status != scans.Cancelled {
		t.Fatalf("cancel queued: %+v running=%v err=%v", got, running, err)
	}
	if _, ok, _ := s.Claim(ctx); ok {
		t.Fatal("a cancelled scan was claimed")
	}
	if _, _, err := s.CancelQueued(ctx, b.ID, "again"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, _, err := s.CancelQueued(ctx, "nope", ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
}

func TestListPagingAndFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	for _, img := range []string{"r/a", "r/b", "r/c", "r/d", "r/e"} {
		create(t, s, img)
	}
	s.Claim(ctx)
	var all []scans.Scan
	after := ""
	for {
		page, next, err := s.List(ctx, scans.Filter{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		after = next
	}
	if len(all) != 5 || all[0].Image != "r/a" || all[4].Image != "r/e" {
		t.Fatalf("paged listing: %d scans", len(all))
	}
	q, _, _ := s.List(ctx, scans.Filter{Status: []scans.Status{scans.Queued}})
	if len(q) != 4 {
		t.Fatalf("queued filter: %d", len(q))
	}
	one, _, _ := s.List(ctx, scans.Filter{Image: "r/c"})
	if len(one) != 1 || one[0].Image != "r/c" {
		t.Fatalf("image filter: %+v", one)
	}
}

func TestReportsRetentionAndLatest(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var last string
	for i := 0; i < 4; i++ {
		sc, _ := create(t, s, "r/a")
		s.Claim(ctx)
		if _, err := s.Finish(ctx, sc.ID, scans.Done, "", &report.Report{Image: "r/a", Digest: "sha256:aa"}); err != nil {
			t.Fatal(err)
		}
		last = sc.ID
	}
	latest, err := s.LatestReport(ctx, "sha256:aa")
	if err != nil || latest.ScanID != last {
		t.Fatalf("latest: %+v %v", latest, err)
	}
	byImage, err := s.LatestReportForImage(ctx, "r/a")
	if err != nil || byImage.ScanID != last {
		t.Fatalf("latest by image: %+v %v", byImage, err)
	}
	if _, err := s.LatestReport(ctx, "sha256:bb"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing report: %v", err)
	}
	s.now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	n, err := s.Prune(ctx, 2, 24*time.Hour)
	if err != nil || n != 2+4 {
		t.Fatalf("prune removed %d (err %v), want 2 reports + 4 scans", n, err)
	}
	reps, _ := s.Reports(ctx, "sha256:aa")
	if len(reps) != 2 || reps[0].ScanID != last {
		t.Fatalf("after retention: %d reports, newest %s", len(reps), reps[0].ScanID)
	}
}

func TestOpenTwiceFailsFast(t *testing.T) {
	_, path := open(t)
	start := time.Now()
	_, err := Open(path)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second open: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("second open hung")
	}
}

// A full queue refuses a new scan (ErrBusy) but still answers a request
// that dedupes to an active one; a claim makes room.
func TestCreateBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	mk := func(image string) (scans.Scan, bool, error) {
		return s.CreateBounded(ctx, scans.Scan{Image: image, DedupeKey: "ref:" + image}, 2)
	}
	a, _, err := mk("r/a:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := mk("r/b:1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mk("r/c:1"); !errors.Is(err, errdefs.ErrBusy) {
		t.Fatalf("third scan with room for two: %v, want ErrBusy", err)
	}
	if got, created, err := mk("r/a:1"); err != nil || created || got.ID != a.ID {
		t.Errorf("a duplicate of a queued scan while full: %v %v %v", got.ID, created, err)
	}
	if _, ok, err := s.Claim(ctx); !ok || err != nil {
		t.Fatal("claim", ok, err)
	}
	if _, created, err := mk("r/c:1"); err != nil || !created {
		t.Errorf("after a claim: %v %v", created, err)
	}
}
