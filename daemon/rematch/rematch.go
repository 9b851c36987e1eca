// Package rematch re-matches every stored inventory after the
// vulnerability database changed, storing a new report (and publishing
// it) for each image whose verdict or findings change, like Clair's
// notifier.
package rematch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/assayhq/assay/daemon/assess"
	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// Store is what re-matching reads and writes (daemon/store).
type Store interface {
	// LatestReports calls fn with each digest's latest report.
	LatestReports(ctx context.Context, fn func(*report.Report) error) error
	// PutRematch stores next unless another report of the digest was
	// stored since prev (errdefs.ErrConflict).
	PutRematch(ctx context.Context, prev, next *report.Report) error
}

// Assessor re-assesses a report (daemon/assess).
type Assessor interface {
	Assess(ctx context.Context, rep *report.Report) error
}

// Publisher announces a changed report (daemon/events).
type Publisher interface {
	Publish(scans.Event)
}

// Rematcher runs passes when kicked. Create it with New.
type Rematcher struct {
	st   Store
	as   Assessor
	pub  Publisher // may be nil
	log  *slog.Logger
	kick chan struct{}
	// Done, if set before Run, is told of each finished pass.
	Done func(total, changed int, took time.Duration)
}

// New returns a Rematcher; pub may be nil.
func New(st Store, as Assessor, pub Publisher, log *slog.Logger) *Rematcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rematcher{st: st, as: as, pub: pub, log: log, kick: make(chan struct{}, 1)}
}

// Kick asks for a pass; kicks during a pass make one more pass after it.
func (r *Rematcher) Kick(context.Context) {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run makes a pass for each kick until ctx ends.
func (r *Rematcher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			start := time.Now()
			total, changed, err := r.Pass(ctx)
			took := time.Since(start)
			if err != nil && ctx.Err() == nil {
				r.log.Error("re-matching stored inventories failed", "err", err)
			}
			r.log.Info("re-matched stored inventories after a database change", "reports", total, "changed", changed, "took", took)
			if r.Done != nil {
				r.Done(total, changed, took)
			}
		}
	}
}

// Pass re-assesses every latest report once and stores those that
// changed; it returns how many it saw and stored.
func (r *Rematcher) Pass(ctx context.Context) (total, changed int, err error) {
	err = r.st.LatestReports(ctx, func(prev *report.Report) error {
		total++
		next, err := clone(prev)
		if err != nil {
			return err
		}
		if err := r.as.Assess(ctx, next); err != nil {
			r.log.Warn("re-matching a report failed", "digest", prev.Digest, "err", err)
			return nil
		}
		if !assess.Changed(prev, next) {
			return nil
		}
		next.Trigger = "rematch"
		if err := r.st.PutRematch(ctx, prev, next); err != nil {
			if errors.Is(err, errdefs.ErrConflict) {
				return nil // a scan stored a newer report meanwhile
			}
			return err
		}
		changed++
		r.log.Info("an image's findings changed with the vulnerability database", "image", next.Image, "digest", next.Digest,
			"verdict", next.Verdict, "was", prev.Verdict, "findings", next.Summary.Total(), "before", prev.Summary.Total())
		if r.pub != nil {
			r.pub.Publish(scans.Event{Type: "report", Time: time.Now().UTC(), Report: next})
		}
		return nil
	})
	return total, changed, err
}

func clone(r *report.Report) (*report.Report, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var out report.Report
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
