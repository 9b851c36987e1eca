// Package store is the daemon's durable state: scan records, the queue of
// scans waiting for a worker, and reports. It is a single bbolt file under
// state_dir; every change is one fsynced transaction, so a scan accepted by
// the API survives a SIGKILL at any moment.
//
// The store knows nothing of how a scan runs. It guarantees the state
// machine: a scan is finished (report stored, terminal status) at most once.
package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// Buckets. Keys of scans and queue are scan IDs (ULIDs), so byte order is
// creation order: the queue is FIFO and a requeued scan keeps its place.
var (
	bucketMeta    = []byte("meta")
	bucketScans   = []byte("scans")   // id -> scans.Scan JSON
	bucketQueue   = []byte("queue")   // id -> empty: scans waiting for a worker
	bucketActive  = []byte("active")  // dedupe key -> id, while queued or running
	bucketReports = []byte("reports") // digest 0x00 report-id -> report.Report JSON
)

const schemaVersion = "1"

// DefaultLimit and MaxLimit bound a listing page.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Store is the bbolt-backed state. It is safe for concurrent use.
type Store struct {
	db  *bolt.DB
	now func() time.Time

	entropyMu sync.Mutex
	entropy   *ulid.MonotonicEntropy

	// outbox: record notification events (EnableOutbox).
	outbox atomic.Bool
}

// Open opens (creating if needed) the store file at path. It fails fast when
// another process holds the file.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is locked by another process (is another assayd running with the same state_dir?): %w", path, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketScans, bucketQueue, bucketActive, bucketReports, bucketPkgIndex, bucketVulnIndex, bucketOutbox, bucketDeliveries} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if string(meta.Get([]byte("index"))) != indexVersion {
			if err := reindex(tx); err != nil {
				return fmt.Errorf("rebuilding the package and vulnerability indexes: %w", err)
			}
			if err := meta.Put([]byte("index"), []byte(indexVersion)); err != nil {
				return err
			}
		}
		switch v := meta.Get([]byte("schema")); {
		case v == nil:
			return meta.Put([]byte("schema"), []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %q, this assayd understands %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	return &Store{db: db, now: time.Now, entropy: ulid.Monotonic(rand.Reader, 0)}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) newID(t time.Time) (string, error) {
	s.entropyMu.Lock()
	defer s.entropyMu.Unlock()
	id, err := ulid.New(ulid.Timestamp(t), s.entropy)
	if err != nil {
		return "", fmt.Errorf("store: new id: %w", err)
	}
	return id.String(), nil
}

// Create stores sc as a new queued scan, unless a queued or running scan
// holds the same DedupeKey: then that scan is returned with created=false.
func (s *Store) Create(ctx context.Context, sc scans.Scan) (scans.Scan, bool, error) {
	return s.CreateBounded(ctx, sc, 0)
}

// CreateBounded is Create that refuses (errdefs.ErrBusy) a new scan when
// maxQueued scans are queued already (0: no bound). A request that
// dedupes to an active scan is answered with it, full or not.
func (s *Store) CreateBounded(ctx context.Context, sc scans.Scan, maxQueued int) (scans.Scan, bool, error) {
	if err := ctx.Err(); err != nil {
		return scans.Scan{}, false, err
	}
	if sc.DedupeKey == "" {
		return scans.Scan{}, false, fmt.Errorf("store: create: empty dedupe key: %w", errdefs.ErrInvalid)
	}
	now := s.now().UTC()
	id, err := s.newID(now)
	if err != nil {
		return scans.Scan{}, false, err
	}
	var out scans.Scan
	created := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		if existing := tx.Bucket(bucketActive).Get([]byte(sc.DedupeKey)); existing != nil {
			got, err := getScan(tx, string(existing))
			if err == nil && !got.Status.Terminal() {
				out = got
				return nil
			}
			// A stale index entry: fall through and replace it.
		}
		if maxQueued > 0 {
			if n := tx.Bucket(bucketQueue).Stats().KeyN; n >= maxQueued {
				return fmt.Errorf("%d scans are queued (scan.max_queued %d); retry later: %w", n, maxQueued, errdefs.ErrBusy)
			}
		}
		sc.ID = id
		sc.Status = scans.Queued
		sc.CreatedAt, sc.UpdatedAt = now, now
		sc.Attempts = 0
		sc.StartedAt, sc.FinishedAt = nil, nil
		if err := putScan(tx, sc); err != nil {
			return err
		}
		if err := tx.Bucket(bucketQueue).Put([]byte(id), nil); err != nil {
			return err
		}
		created = true
		out = sc
		return tx.Bucket(bucketActive).Put([]byte(sc.DedupeKey), []byte(id))
	})
	if err != nil {
		return scans.Scan{}, false, fmt.Errorf("store: create: %w", err)
	}
	return out, created, nil
}

// Get returns one scan.
func (s *Store) Get(ctx context.Context, id string) (scans.Scan, error) {
	var out scans.Scan
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = getScan(tx, id)
		return err
	})
	return out, err
}

// List returns scans in creation order, after f.After, at most f.Limit, and
// the cursor of the next page ("" at the end).
func (s *Store) List(ctx context.Context, f scans.Filter) ([]scans.Scan, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	want := map[scans.Status]bool{}
	for _, st := range f.Status {
		want[st] = true
	}
	var out []scans.Scan
	next := ""
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketScans).Cursor()
		k, v := c.First()
		if f.After != "" {
			k, v = c.Seek([]byte(f.After))
			if k != nil && string(k) == f.After {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			sc, err := decodeScan(k, v)
			if err != nil {
				return err
			}
			if len(want) > 0 && !want[sc.Status] {
				continue
			}
			if f.Image != "" && sc.Image != f.Image {
				continue
			}
			if f.Digest != "" && sc.Digest != f.Digest {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			out = append(out, sc)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: list: %w", err)
	}
	return out, next, nil
}

// Claim hands the oldest queued scan to a worker: it leaves the queue,
// becomes pulling, and its attempt count goes up. ok is false when the queue
// is empty.
func (s *Store) Claim(ctx context.Context) (sc scans.Scan, ok bool, err error) {
	now := s.now().UTC()
	err = s.db.Update(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketQueue)
		for k, _ := q.Cursor().First(); k != nil; k, _ = q.Cursor().First() {
			if err := q.Delete(k); err != nil {
				return err
			}
			got, err := getScan(tx, string(k))
			if errors.Is(err, errdefs.ErrNotFound) {
				continue // pruned while queued: nothing to run
			}
			if err != nil {
				return err
			}
			if got.Status != scans.Queued {
				continue
			}
			got.Status = scans.Pulling
			got.Attempts++
			got.StartedAt = &now
			got.UpdatedAt = now
			sc, ok = got, true
			return putScan(tx, got)
		}
		return nil
	})
	if err != nil {
		return scans.Scan{}, false, fmt.Errorf("store: claim: %w", err)
	}
	return sc, ok, nil
}

// Update changes a scan that is not finished. fn may change Status (to a
// non-terminal one), Digest and Platform; Finish is the only way to end a
// scan.
func (s *Store) Update(ctx context.Context, id string, fn func(*scans.Scan)) (scans.Scan, error) {
	var out scans.Scan
	err := s.db.Update(func(tx *bolt.Tx) error {
		sc, err := getScan(tx, id)
		if err != nil {
			return err
		}
		if sc.Status.Terminal() {
			return fmt.Errorf("scan %s is already %s: %w", id, sc.Status, errdefs.ErrConflict)
		}
		fn(&sc)
		if sc.Status.Terminal() {
			return fmt.Errorf("scan %s: Update cannot finish a scan: %w", id, errdefs.ErrInvalid)
		}
		sc.UpdatedAt = s.now().UTC()
		out = sc
		return putScan(tx, sc)
	})
	if err != nil {
		return scans.Scan{}, fmt.Errorf("store: update: %w", err)
	}
	return out, nil
}

// Finish ends a scan exactly once: in one transaction it stores the report
// (when rep is not nil), sets the terminal status and error text, and frees
// the dedupe key. Finishing a scan that is already finished is ErrConflict
// and changes nothing.
func (s *Store) Finish(ctx context.Context, id string, st scans.Status, errText string, rep *report.Report) (scans.Scan, error) {
	if !st.Terminal() {
		return scans.Scan{}, fmt.Errorf("store: finish %s with non-terminal status %s: %w", id, st, errdefs.ErrInvalid)
	}
	now := s.now().UTC()
	var out scans.Scan
	err := s.db.Update(func(tx *bolt.Tx) error {
		sc, err := getScan(tx, id)
		if err != nil {
			return err
		}
		if sc.Status.Terminal() {
			return fmt.Errorf("scan %s is already %s: %w", id, sc.Status, errdefs.ErrConflict)
		}
		sc.Status = st
		sc.Error = errText
		sc.UpdatedAt = now
		sc.FinishedAt = &now
		if rep != nil {
			if rep.Digest == "" {
				return fmt.Errorf("scan %s: report without digest: %w", id, errdefs.ErrInvalid)
			}
			rep.ScanID = id
			sc.Digest = rep.Digest
			sc.Verdict = rep.Verdict
			summary := rep.Summary
			sc.Summary = &summary
			prev, err := putReport(tx, id, rep)
			if err != nil {
				return err
			}
			var was report.Verdict
			if prev != nil {
				was = prev.Verdict
			}
			if err := s.recordEvent(tx, reportEvent(EventReportStored, now, sc.Image, id, rep, was)); err != nil {
				return err
			}
		}
		if st == scans.Failed {
			e := Event{Type: EventScanFailed, Time: now, EventData: EventData{Image: sc.Image, Digest: sc.Digest, ScanID: id, Error: errText}}
			if err := s.recordEvent(tx, e); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketQueue).Delete([]byte(id)); err != nil {
			return err
		}
		if err := releaseKey(tx, sc); err != nil {
			return err
		}
		out = sc
		return putScan(tx, sc)
	})
	if err != nil {
		return scans.Scan{}, fmt.Errorf("store: finish: %w", err)
	}
	return out, nil
}

// Requeue puts a running scan back at its place in the queue (a shutdown
// interrupted it). The attempt is not refunded.
func (s *Store) Requeue(ctx context.Context, id, reason string) (scans.Scan, error) {
	var out scans.Scan
	err := s.db.Update(func(tx *bolt.Tx) error {
		sc, err := getScan(tx, id)
		if err != nil {
			return err
		}
		if !sc.Status.Running() {
			return fmt.Errorf("scan %s is %s, not running: %w", id, sc.Status, errdefs.ErrConflict)
		}
		sc.Status = scans.Queued
		sc.Error = reason
		sc.UpdatedAt = s.now().UTC()
		out = sc
		if err := tx.Bucket(bucketQueue).Put([]byte(id), nil); err != nil {
			return err
		}
		return putScan(tx, sc)
	})
	if err != nil {
		return scans.Scan{}, fmt.Errorf("store: requeue: %w", err)
	}
	return out, nil
}

// Recover runs at start-up, before any worker: scans that were running when
// the previous daemon died go back to the queue, or fail when they already
// used maxAttempts (a scan that crashes the daemon must not crash it forever).
// It also makes sure every queued scan is in the queue index.
func (s *Store) Recover(ctx context.Context, maxAttempts int) (requeued, failed []scans.Scan, err error) {
	now := s.now().UTC()
	err = s.db.Update(func(tx *bolt.Tx) error {
		var fix []scans.Scan
		err := tx.Bucket(bucketScans).ForEach(func(k, v []byte) error {
			sc, err := decodeScan(k, v)
			if err != nil {
				return err
			}
			if sc.Status == scans.Queued || sc.Status.Running() {
				fix = append(fix, sc)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, sc := range fix {
			switch {
			case sc.Status == scans.Queued:
				if err := tx.Bucket(bucketQueue).Put([]byte(sc.ID), nil); err != nil {
					return err
				}
				continue
			case sc.Attempts >= maxAttempts:
				sc.Error = fmt.Sprintf("interrupted %d times by a daemon crash or restart (last while %s); giving up", sc.Attempts, sc.Status)
				sc.Status = scans.Failed
				sc.FinishedAt = &now
				if err := releaseKey(tx, sc); err != nil {
					return err
				}
				e := Event{Type: EventScanFailed, Time: now, EventData: EventData{Image: sc.Image, Digest: sc.Digest, ScanID: sc.ID, Error: sc.Error}}
				if err := s.recordEvent(tx, e); err != nil {
					return err
				}
				failed = append(failed, sc)
			default:
				sc.Error = fmt.Sprintf("attempt %d interrupted by a daemon restart; retrying", sc.Attempts)
				sc.Status = scans.Queued
				if err := tx.Bucket(bucketQueue).Put([]byte(sc.ID), nil); err != nil {
					return err
				}
				requeued = append(requeued, sc)
			}
			sc.UpdatedAt = now
			if err := putScan(tx, sc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: recover: %w", err)
	}
	return requeued, failed, nil
}

// CancelQueued cancels a scan that no worker holds yet. For a running scan it
// returns the scan unchanged with running=true: the caller cancels the
// worker, which then finishes it as cancelled.
func (s *Store) CancelQueued(ctx context.Context, id, reason string) (sc scans.Scan, running bool, err error) {
	now := s.now().UTC()
	err = s.db.Update(func(tx *bolt.Tx) error {
		got, err := getScan(tx, id)
		if err != nil {
			return err
		}
		switch {
		case got.Status.Terminal():
			return fmt.Errorf("scan %s is already %s: %w", id, got.Status, errdefs.ErrConflict)
		case got.Status.Running():
			sc, running = got, true
			return nil
		}
		got.Status = scans.Cancelled
		got.Error = reason
		got.UpdatedAt = now
		got.FinishedAt = &now
		if err := tx.Bucket(bucketQueue).Delete([]byte(id)); err != nil {
			return err
		}
		if err := releaseKey(tx, got); err != nil {
			return err
		}
		sc = got
		return putScan(tx, got)
	})
	if err != nil {
		return scans.Scan{}, false, fmt.Errorf("store: cancel: %w", err)
	}
	return sc, running, nil
}

// Counts returns how many scans are in each status.
func (s *Store) Counts(ctx context.Context) (map[scans.Status]int, error) {
	out := map[scans.Status]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketScans).ForEach(func(k, v []byte) error {
			var sc struct {
				Status scans.Status `json:"status"`
			}
			if err := json.Unmarshal(v, &sc); err != nil {
				return fmt.Errorf("decode scan %s: %w", k, err)
			}
			out[sc.Status]++
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: counts: %w", err)
	}
	return out, nil
}

// QueueLen is the number of scans waiting for a worker.
func (s *Store) QueueLen(ctx context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketQueue).Stats().KeyN
		return nil
	})
	return n, err
}

// LatestReport returns the newest report of a manifest digest assessed
// with the configured policy (a report with a scan request's own policy
// is kept beside it, in the history, and by ReportOfScan).
func (s *Store) LatestReport(ctx context.Context, digest string) (*report.Report, error) {
	var out *report.Report
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = latestReport(tx, digest)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: reports: %w", err)
	}
	if out == nil {
		return nil, fmt.Errorf("store: no report of the configured policy for %s (reports of a scan request's own policy are in its history): %w", digest, errdefs.ErrNotFound)
	}
	return out, nil
}

// ReportOfScan returns the report a scan of digest produced (or the
// newest re-match of it).
func (s *Store) ReportOfScan(ctx context.Context, digest, scanID string) (*report.Report, error) {
	reps, err := s.reports(digest, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range reps {
		if r.ScanID == scanID {
			return r, nil
		}
	}
	return nil, fmt.Errorf("store: no report of scan %s for %s: %w", scanID, digest, errdefs.ErrNotFound)
}

// Reports returns the kept reports of a digest, newest first.
func (s *Store) Reports(ctx context.Context, digest string) ([]*report.Report, error) {
	reps, err := s.reports(digest, 0)
	if err != nil {
		return nil, err
	}
	if len(reps) == 0 {
		return nil, fmt.Errorf("store: no report for %s: %w", digest, errdefs.ErrNotFound)
	}
	return reps, nil
}

func (s *Store) reports(digest string, max int) ([]*report.Report, error) {
	var out []*report.Report
	prefix := reportPrefix(digest)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketReports).Cursor()
		// Keys sort by scan ID within a digest: walk backwards from the end of
		// the prefix range to get the newest first.
		k, _ := c.Seek(append(bytes.Clone(prefix), 0xff))
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			var r report.Report
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode report %q: %w", k, err)
			}
			out = append(out, &r)
			if max > 0 && len(out) == max {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reports: %w", err)
	}
	return out, nil
}

// LatestReportForImage returns the newest report whose requested reference
// is image: the newest done scan of that reference names it.
func (s *Store) LatestReportForImage(ctx context.Context, image string) (*report.Report, error) {
	var digest string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketScans).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			sc, err := decodeScan(k, v)
			if err != nil {
				return err
			}
			if sc.Image == image && sc.Status == scans.Done && sc.Digest != "" {
				digest = sc.Digest
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: report for image: %w", err)
	}
	if digest == "" {
		return nil, fmt.Errorf("store: no report for image %s: %w", image, errdefs.ErrNotFound)
	}
	return s.LatestReport(ctx, digest)
}

// Prune applies retention: it keeps the newest keepReports reports of each
// digest and deletes finished scans older than scanMaxAge (their reports stay
// until retention drops them). It returns how many records it removed.
func (s *Store) Prune(ctx context.Context, keepReports int, scanMaxAge time.Duration) (int, error) {
	cutoff := s.now().UTC().Add(-scanMaxAge)
	removed := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketReports)
		perDigest := map[string][][]byte{}
		if err := rb.ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return nil
			}
			perDigest[string(k[:i])] = append(perDigest[string(k[:i])], bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for _, keys := range perDigest {
			sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) > 0 })
			for _, k := range keys[min(keepReports, len(keys)):] {
				if err := rb.Delete(k); err != nil {
					return err
				}
				removed++
			}
		}
		sb := tx.Bucket(bucketScans)
		var old [][]byte
		if err := sb.ForEach(func(k, v []byte) error {
			sc, err := decodeScan(k, v)
			if err != nil {
				return err
			}
			if sc.Status.Terminal() && sc.FinishedAt != nil && sc.FinishedAt.Before(cutoff) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range old {
			if err := sb.Delete(k); err != nil {
				return err
			}
			removed++
		}
		// Dead letters go with the scans of their age.
		db := tx.Bucket(bucketDeliveries)
		var dead [][]byte
		if err := db.ForEach(func(k, v []byte) error {
			var d Delivery
			if json.Unmarshal(v, &d) == nil && d.Dead && d.DeadAt != nil && d.DeadAt.Before(cutoff) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range dead {
			if err := db.Delete(k); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	return removed, nil
}

func getScan(tx *bolt.Tx, id string) (scans.Scan, error) {
	v := tx.Bucket(bucketScans).Get([]byte(id))
	if v == nil {
		return scans.Scan{}, fmt.Errorf("store: scan %q: %w", id, errdefs.ErrNotFound)
	}
	return decodeScan([]byte(id), v)
}

func decodeScan(k, v []byte) (scans.Scan, error) {
	var st storedScan
	if err := json.Unmarshal(v, &st); err != nil {
		return scans.Scan{}, fmt.Errorf("store: decode scan %s: %w", k, err)
	}
	st.Scan.DedupeKey = st.DedupeKey
	return st.Scan, nil
}

// storedScan keeps the dedupe key, which the API does not show.
type storedScan struct {
	scans.Scan
	DedupeKey string `json:"dedupe_key"`
}

func putScan(tx *bolt.Tx, sc scans.Scan) error {
	v, err := json.Marshal(storedScan{Scan: sc, DedupeKey: sc.DedupeKey})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketScans).Put([]byte(sc.ID), v)
}

func releaseKey(tx *bolt.Tx, sc scans.Scan) error {
	a := tx.Bucket(bucketActive)
	if v := a.Get([]byte(sc.DedupeKey)); v != nil && string(v) == sc.ID {
		return a.Delete([]byte(sc.DedupeKey))
	}
	return nil
}

func reportPrefix(digest string) []byte { return append([]byte(digest), 0) }

// putReport stores r under the digest and id (a scan's, or a new one for
// a re-matched report), moves the cross-image indexes from the digest's
// previous latest report to its new one, and returns that previous one
// (nil for none).
func putReport(tx *bolt.Tx, id string, r *report.Report) (*report.Report, error) {
	v, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	old, err := latestReport(tx, r.Digest)
	if err != nil {
		return nil, err
	}
	if old != nil {
		if err := index(tx, old, false); err != nil {
			return nil, err
		}
	}
	if err := tx.Bucket(bucketReports).Put(append(reportPrefix(r.Digest), id...), v); err != nil {
		return nil, err
	}
	// The new report is the latest unless an older scan finished late, or
	// it has a request's own policy (then the latest stays, or there is
	// none).
	latest, err := latestReport(tx, r.Digest)
	if err != nil || latest == nil {
		return old, err
	}
	return old, index(tx, latest, true)
}
