package daemon

import (
	"context"
	"errors"

	"github.com/assayhq/assay/daemon/api"
	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/queue"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
)

// service is what the API serves: writes go through the queue, reads to
// the store.
type service struct {
	q  *queue.Queue
	st *store.Store
}

var _ api.Service = (*service)(nil)

func (s *service) Submit(ctx context.Context, req scans.Request) (scans.Scan, bool, error) {
	return s.q.Submit(ctx, req)
}

func (s *service) Scan(ctx context.Context, id string) (scans.Scan, error) { return s.st.Get(ctx, id) }

func (s *service) Scans(ctx context.Context, f scans.Filter) ([]scans.Scan, string, error) {
	return s.st.List(ctx, f)
}

func (s *service) Cancel(ctx context.Context, id string) (scans.Scan, error) {
	return s.q.Cancel(ctx, id)
}

func (s *service) Report(ctx context.Context, digest string) (*report.Report, error) {
	return s.st.LatestReport(ctx, digest)
}

func (s *service) ReportOfScan(ctx context.Context, digest, scanID string) (*report.Report, error) {
	return s.st.ReportOfScan(ctx, digest, scanID)
}

func (s *service) ReportForImage(ctx context.Context, image string) (*report.Report, error) {
	return s.st.LatestReportForImage(ctx, image)
}

func (s *service) ReportHistory(ctx context.Context, digest string) ([]*report.Report, error) {
	return s.st.Reports(ctx, digest)
}

func (s *service) QueueStats(ctx context.Context) (int, int, error) {
	n, err := s.st.QueueLen(ctx)
	return n, s.q.Running(), err
}

// Scanned reports whether a report of the digest exists (webhook dedupe).
func (s *service) Scanned(ctx context.Context, digest string) (bool, error) {
	_, err := s.st.LatestReport(ctx, digest)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
