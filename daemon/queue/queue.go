// Package queue runs accepted scans: a fixed number of workers take scans
// from the durable store in order, run each with a deadline, and finish it
// exactly once. Cancellation (API, deadline, shutdown) reaches the running
// work through its context.
package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
)

// Scanner does the work of one scan. It reports its stage through progress
// (analyzing, matching) and returns the report, or an error. It must honour
// ctx: cancellation and the deadline arrive through it.
type Scanner interface {
	Scan(ctx context.Context, sc scans.Scan, progress func(scans.Status)) (*report.Report, error)
}

// Publisher receives every state change and finished report.
type Publisher interface {
	Publish(scans.Event)
}

// Observer is told how scans end, for metrics.
type Observer interface {
	ScanFinished(status scans.Status, verdict report.Verdict, took time.Duration)
}

// Options configure a Queue.
type Options struct {
	Store       *store.Store
	Scanner     Scanner
	Publisher   Publisher
	Observer    Observer // optional
	Concurrency int
	Timeout     time.Duration
	MaxAttempts int
	// MaxQueued bounds the scans waiting for a worker (scan.max_queued):
	// Submit refuses more with errdefs.ErrBusy. 0 is no bound.
	MaxQueued int
	Logger    *slog.Logger
}

// Errors used as cancellation causes.
var (
	errCancelled = errors.New("cancelled by request")
	errShutdown  = errors.New("daemon shutting down")
	errAuthLost  = errors.New("the registry credentials of this scan were held in memory only and did not survive a restart of assayd: submit the scan again")
)

// Queue accepts scan requests and runs them.
type Queue struct {
	o    Options
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	// cancelled holds cancellations that arrived between a worker's claim
	// and its registering the scan in running.
	cancelled map[string]bool

	// auth holds the registry credentials of accepted scans, by scan ID,
	// in memory only. authMu is held from a scan's creation to its
	// credentials being set, so that a worker never sees one without
	// the other.
	authMu sync.Mutex
	auth   map[string]scans.RegistryAuth
}

// New makes a Queue; Run starts its workers.
func New(o Options) *Queue {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Queue{o: o, log: o.Logger, wake: make(chan struct{}, 1), running: map[string]context.CancelCauseFunc{}, cancelled: map[string]bool{}, auth: map[string]scans.RegistryAuth{}}
}

// DedupeKey says when two requests are for the same image: the manifest
// digest when the reference pins one, else the normalised reference; plus
// the platform.
func DedupeKey(image, platform string) (string, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", fmt.Errorf("queue: image %q is not a valid reference: %v: %w", image, err, errdefs.ErrInvalid)
	}
	if d, ok := ref.(name.Digest); ok {
		return "digest:" + d.DigestStr() + "|" + platform, nil
	}
	return "ref:" + ref.Name() + "|" + platform, nil
}

// Submit validates and durably queues a request; an equal request that is
// still queued or running is returned instead (created=false).
func (q *Queue) Submit(ctx context.Context, req scans.Request) (scans.Scan, bool, error) {
	return q.submit(ctx, req, q.o.MaxQueued)
}

// SubmitDerived queues a scan that an accepted one gave rise to (another
// platform of the same index): it is part of work already accepted, so
// scan.max_queued does not refuse it.
func (q *Queue) SubmitDerived(ctx context.Context, req scans.Request) (scans.Scan, bool, error) {
	return q.submit(ctx, req, 0)
}

func (q *Queue) submit(ctx context.Context, req scans.Request, maxQueued int) (scans.Scan, bool, error) {
	if req.Image == "" {
		return scans.Scan{}, false, fmt.Errorf("queue: image is required: %w", errdefs.ErrInvalid)
	}
	if req.Platform != "" {
		if err := validPlatform(req.Platform); err != nil {
			return scans.Scan{}, false, err
		}
	}
	key, err := DedupeKey(req.Image, req.Platform)
	if err != nil {
		return scans.Scan{}, false, err
	}
	if len(req.Policy) > 0 {
		// The same image with another policy is another report.
		sum := sha256.Sum256(req.Policy)
		key += "|policy:" + hex.EncodeToString(sum[:8])
	}
	sc := scans.Scan{Image: req.Image, Platform: req.Platform, Trigger: req.Trigger, Policy: req.Policy, SubmittedBy: req.SubmittedBy, DedupeKey: key}
	if ref, err := name.NewDigest(req.Image); err == nil {
		sc.Digest = ref.DigestStr()
	}
	if req.Auth != nil {
		// A scan with credentials is not the same as one without: it
		// must not be answered by a scan that pulls anonymously.
		sc.DedupeKey += "|auth:" + req.Auth.Host
		sc.InMemoryAuth = true
		q.authMu.Lock()
		defer q.authMu.Unlock()
	}
	sc, created, err := q.o.Store.CreateBounded(ctx, sc, maxQueued)
	if err != nil {
		return scans.Scan{}, false, err
	}
	if req.Auth != nil {
		// The newest credentials win: an earlier request's may expire.
		q.auth[sc.ID] = *req.Auth
	}
	if created {
		q.log.Info("scan queued", "scan", sc.ID, "image", sc.Image, "trigger", sc.Trigger)
		q.publish(sc, nil)
		q.poke()
	}
	return sc, created, nil
}

func validPlatform(p string) error {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return fmt.Errorf("queue: platform %q: want os/arch[/variant]: %w", p, errdefs.ErrInvalid)
	}
	return nil
}

// Cancel cancels a queued scan at once, or asks a running one to stop; the
// worker then finishes it as cancelled.
func (q *Queue) Cancel(ctx context.Context, id string) (scans.Scan, error) {
	sc, running, err := q.o.Store.CancelQueued(ctx, id, errCancelled.Error())
	if err != nil {
		return scans.Scan{}, err
	}
	if !running {
		q.forgetAuth(id)
		q.log.Info("scan cancelled while queued", "scan", id)
		q.publish(sc, nil)
		q.observe(sc, 0)
		return sc, nil
	}
	q.mu.Lock()
	cancel := q.running[id]
	if cancel == nil {
		q.cancelled[id] = true
	}
	q.mu.Unlock()
	if cancel != nil {
		cancel(errCancelled)
	}
	q.log.Info("cancelling running scan", "scan", id)
	return sc, nil
}

// Running is the number of scans a worker holds now.
func (q *Queue) Running() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.running)
}

// Recover puts scans interrupted by an earlier crash back in the queue.
// Call it once before Run.
func (q *Queue) Recover(ctx context.Context) error {
	requeued, failed, err := q.o.Store.Recover(ctx, q.o.MaxAttempts)
	if err != nil {
		return err
	}
	for _, sc := range requeued {
		q.log.Warn("scan interrupted by an earlier daemon exit; queued again", "scan", sc.ID, "image", sc.Image, "attempts", sc.Attempts)
		q.publish(sc, nil)
	}
	for _, sc := range failed {
		q.log.Error("scan interrupted too often; failed", "scan", sc.ID, "image", sc.Image, "attempts", sc.Attempts)
		q.publish(sc, nil)
		q.observe(sc, 0)
	}
	return nil
}

// Run starts the workers and blocks until ctx is done. Then it stops
// claiming scans and lets running ones finish for up to grace; those still
// running after that are interrupted and go back to the queue for the next
// start.
func (q *Queue) Run(ctx context.Context, grace time.Duration) {
	// Work outlives ctx by up to grace: it has its own root context.
	work, stopWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopWork(errShutdown)
	var wg sync.WaitGroup
	for i := 0; i < q.o.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.worker(ctx, work)
		}()
	}
	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if n := q.Running(); n > 0 {
		q.log.Info("draining running scans", "running", n, "grace", grace)
	}
	select {
	case <-done:
	case <-time.After(grace):
		q.log.Warn("drain time over; interrupting running scans, they resume at the next start", "running", q.Running())
		stopWork(errShutdown)
		<-done
	}
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// worker claims scans until stop is done. A poke wakes one idle worker; a
// worker that found work pokes again so others look too.
func (q *Queue) worker(stop, work context.Context) {
	tick := time.NewTicker(5 * time.Second) // safety net against a lost poke
	defer tick.Stop()
	for {
		if stop.Err() != nil {
			return
		}
		sc, ok, err := q.o.Store.Claim(stop)
		if err != nil {
			q.log.Error("claiming a scan failed", "err", err)
		}
		if ok {
			q.poke()
			q.run(work, sc)
			continue
		}
		select {
		case <-stop.Done():
			return
		case <-q.wake:
		case <-tick.C:
		}
	}
}

func (q *Queue) run(work context.Context, sc scans.Scan) {
	started := time.Now()
	ctx, cancel := context.WithCancelCause(work)
	defer cancel(nil)
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, q.o.Timeout, fmt.Errorf("scan timed out after %s (scan.timeout)", q.o.Timeout))
	defer cancelTimeout()
	q.mu.Lock()
	q.running[sc.ID] = cancel
	if q.cancelled[sc.ID] {
		delete(q.cancelled, sc.ID)
		cancel(errCancelled)
	}
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.running, sc.ID)
		delete(q.cancelled, sc.ID)
		q.mu.Unlock()
	}()
	log := q.log.With("scan", sc.ID, "image", sc.Image, "attempt", sc.Attempts)
	log.Info("scan started")
	q.publish(sc, nil)
	var authLost bool
	if sc.InMemoryAuth {
		q.authMu.Lock()
		auth, ok := q.auth[sc.ID]
		q.authMu.Unlock()
		authLost = !ok
		sc.Auth = &auth
		defer q.forgetAuth(sc.ID)
	}

	progress := func(st scans.Status) {
		if !st.Running() {
			return
		}
		updated, err := q.o.Store.Update(ctx, sc.ID, func(s *scans.Scan) { s.Status = st })
		if err != nil {
			log.Warn("recording scan progress failed", "status", st, "err", err)
			return
		}
		q.publish(updated, nil)
	}
	var rep *report.Report
	var err error
	if authLost {
		err = errAuthLost
	} else {
		rep, err = q.scan(ctx, sc, progress)
	}

	cause := context.Cause(ctx)
	// Finishing must happen even though ctx may be cancelled.
	fctx := context.WithoutCancel(ctx)
	var final scans.Scan
	var ferr error
	switch {
	case err == nil:
		final, ferr = q.o.Store.Finish(fctx, sc.ID, scans.Done, "", rep)
	case errors.Is(cause, errShutdown):
		final, ferr = q.o.Store.Requeue(fctx, sc.ID, "interrupted by daemon shutdown; resumes at the next start")
		if ferr == nil {
			log.Warn("scan interrupted by shutdown; queued again")
			q.publish(final, nil)
			return
		}
	case errors.Is(cause, errCancelled):
		final, ferr = q.o.Store.Finish(fctx, sc.ID, scans.Cancelled, errCancelled.Error(), nil)
	case cause != nil && ctx.Err() != nil:
		final, ferr = q.o.Store.Finish(fctx, sc.ID, scans.Failed, cause.Error(), nil)
	default:
		final, ferr = q.o.Store.Finish(fctx, sc.ID, scans.Failed, err.Error(), nil)
	}
	if ferr != nil {
		log.Error("recording the end of a scan failed", "err", ferr)
		return
	}
	log.Info("scan finished", "status", final.Status, "verdict", final.Verdict, "error", final.Error, "took", time.Since(started).Round(time.Millisecond))
	q.publish(final, rep)
	q.observe(final, time.Since(started))
}

// forgetAuth drops a scan's credentials once a worker is done with it.
func (q *Queue) forgetAuth(id string) {
	q.authMu.Lock()
	defer q.authMu.Unlock()
	delete(q.auth, id)
}

// scan calls the scanner and turns a panic into a failed scan: a hostile
// image must not crash the daemon.
func (q *Queue) scan(ctx context.Context, sc scans.Scan, progress func(scans.Status)) (rep *report.Report, err error) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("scanner panicked", "scan", sc.ID, "panic", r)
			err = fmt.Errorf("internal error: scanner panicked: %v", r)
		}
	}()
	rep, err = q.o.Scanner.Scan(ctx, sc, progress)
	if err == nil && rep == nil {
		err = errors.New("internal error: scanner returned no report")
	}
	return rep, err
}

func (q *Queue) publish(sc scans.Scan, rep *report.Report) {
	if q.o.Publisher == nil {
		return
	}
	now := time.Now().UTC()
	s := sc
	q.o.Publisher.Publish(scans.Event{Type: "scan", Time: now, Scan: &s})
	if rep != nil {
		q.o.Publisher.Publish(scans.Event{Type: "report", Time: now, Report: rep})
	}
}

func (q *Queue) observe(sc scans.Scan, took time.Duration) {
	if q.o.Observer != nil {
		q.o.Observer.ScanFinished(sc.Status, sc.Verdict, took)
	}
}
