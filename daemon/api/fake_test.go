package api

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// fakeService is a small in-memory Service. err, when set, is returned by
// every method instead.
type fakeService struct {
	mu       sync.Mutex
	err      error
	scans    []scans.Scan
	reports  []*report.Report // oldest first
	queued   int
	running  int
	requests []scans.Request
	filters  []scans.Filter
	next     string
}

var _ Service = (*fakeService)(nil)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeService) Submit(_ context.Context, req scans.Request) (scans.Scan, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return scans.Scan{}, false, f.err
	}
	f.requests = append(f.requests, req)
	for _, s := range f.scans {
		if s.Image == req.Image && !s.Status.Terminal() {
			return s, false, nil
		}
	}
	s := scans.Scan{
		ID: fmt.Sprintf("scan-%d", len(f.scans)+1), Image: req.Image, Platform: req.Platform, Trigger: req.Trigger,
		Status: scans.Queued, CreatedAt: t0, UpdatedAt: t0,
	}
	f.scans = append(f.scans, s)
	return s, true, nil
}

func (f *fakeService) Scan(_ context.Context, id string) (scans.Scan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return scans.Scan{}, f.err
	}
	for _, s := range f.scans {
		if s.ID == id {
			return s, nil
		}
	}
	return scans.Scan{}, fmt.Errorf("fake: scan %s: %w", id, errdefs.ErrNotFound)
}

func (f *fakeService) Scans(_ context.Context, flt scans.Filter) ([]scans.Scan, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, "", f.err
	}
	f.filters = append(f.filters, flt)
	var out []scans.Scan
	for _, s := range f.scans {
		if len(flt.Status) > 0 && !slices.Contains(flt.Status, s.Status) {
			continue
		}
		out = append(out, s)
	}
	return out, f.next, nil
}

func (f *fakeService) Cancel(_ context.Context, id string) (scans.Scan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return scans.Scan{}, f.err
	}
	for i, s := range f.scans {
		if s.ID != id {
			continue
		}
		if s.Status.Terminal() {
			return s, fmt.Errorf("fake: scan %s is %s: %w", id, s.Status, errdefs.ErrConflict)
		}
		f.scans[i].Status = scans.Cancelled
		return f.scans[i], nil
	}
	return scans.Scan{}, fmt.Errorf("fake: scan %s: %w", id, errdefs.ErrNotFound)
}

func (f *fakeService) Report(ctx context.Context, digest string) (*report.Report, error) {
	h, err := f.ReportHistory(ctx, digest)
	if err != nil {
		return nil, err
	}
	return h[0], nil
}

func (f *fakeService) ReportOfScan(ctx context.Context, digest, scanID string) (*report.Report, error) {
	h, err := f.ReportHistory(ctx, digest)
	if err != nil {
		return nil, err
	}
	for _, r := range h {
		if r.ScanID == scanID {
			return r, nil
		}
	}
	return nil, fmt.Errorf("no report of scan %s: %w", scanID, errdefs.ErrNotFound)
}

func (f *fakeService) ReportForImage(_ context.Context, image string) (*report.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	for _, r := range slices.Backward(f.reports) {
		if r.Image == image {
			return r, nil
		}
	}
	return nil, fmt.Errorf("fake: report of %s: %w", image, errdefs.ErrNotFound)
}

func (f *fakeService) ReportHistory(_ context.Context, digest string) ([]*report.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []*report.Report
	for _, r := range slices.Backward(f.reports) {
		if r.Digest == digest {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("fake: reports of %s: %w", digest, errdefs.ErrNotFound)
	}
	return out, nil
}

func (f *fakeService) QueueStats(context.Context) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, 0, f.err
	}
	return f.queued, f.running, nil
}
