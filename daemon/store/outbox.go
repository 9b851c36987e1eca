package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
)

// The outbox: notifications recorded in the same transaction as the change
// they tell of, so that a crash can delay one but never lose it.
var (
	// bucketOutbox holds events not yet fanned out to receivers:
	// event id -> Event JSON.
	bucketOutbox = []byte("outbox")
	// bucketDeliveries holds one delivery per receiver and event:
	// receiver 0x00 event id -> Delivery JSON.
	bucketDeliveries = []byte("deliveries")
)

// Event types.
const (
	EventReportStored   = "report.stored"
	EventVerdictChanged = "verdict.changed"
	EventScanFailed     = "scan.failed"
)

// Event is one notification, as recorded with its change.
type Event struct {
	// ID is unique (a ULID): receivers tell duplicates apart by it.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	EventData
}

// EventData is what an event tells (the data of its CloudEvent).
type EventData struct {
	Image string `json:"image,omitempty"`
	// Digest is the image's manifest digest, when known.
	Digest string `json:"digest,omitempty"`
	ScanID string `json:"scan_id,omitempty"`
	// Verdict is the report's; PreviousVerdict that of the report it
	// follows for the digest ("" for a first report).
	Verdict         report.Verdict  `json:"verdict,omitempty"`
	PreviousVerdict report.Verdict  `json:"previous_verdict,omitempty"`
	Summary         *report.Summary `json:"summary,omitempty"`
	// MaxSeverity is the worst unsuppressed finding's ("" for none).
	MaxSeverity report.Severity `json:"max_severity,omitempty"`
	// Error says why a scan failed.
	Error string `json:"error,omitempty"`
}

// Delivery is one event on its way to one receiver.
type Delivery struct {
	Receiver string `json:"receiver"`
	Event    Event  `json:"event"`
	// Attempts made so far; NextAt is when the next is due.
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	NextAt    time.Time `json:"next_at"`
	LastError string    `json:"last_error,omitempty"`
	// Dead: retried for the configured age and given up; only a retry
	// (assay notify retry) sends it again.
	Dead   bool       `json:"dead,omitempty"`
	DeadAt *time.Time `json:"dead_at,omitempty"`
}

func deliveryKey(receiver, eventID string) []byte {
	return append(append([]byte(receiver), 0), eventID...)
}

// EnableOutbox makes the store record an event with every finished scan
// and every verdict a re-match changes. Off, nothing is recorded (no
// receivers: nothing would drain the outbox).
func (s *Store) EnableOutbox() { s.outbox.Store(true) }

// recordEvent adds e to the outbox within tx, when the outbox is on.
func (s *Store) recordEvent(tx *bolt.Tx, e Event) error {
	if !s.outbox.Load() {
		return nil
	}
	id, err := s.newID(e.Time)
	if err != nil {
		return err
	}
	e.ID = id
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketOutbox).Put([]byte(id), v)
}

// reportEvent is the event of a stored report.
func reportEvent(typ string, now time.Time, image, scanID string, r *report.Report, prev report.Verdict) Event {
	sum := r.Summary
	return Event{Type: typ, Time: now, EventData: EventData{
		Image: image, Digest: r.Digest, ScanID: scanID,
		Verdict: r.Verdict, PreviousVerdict: prev, Summary: &sum, MaxSeverity: sum.Max(),
	}}
}

// PendingEvents returns up to max events not yet fanned out, oldest first.
func (s *Store) PendingEvents(ctx context.Context, max int) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("outbox event %s: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return out, nil
}

// PendingCount is how many events are not yet fanned out.
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return n, err
}

// FanOut replaces events by their deliveries, in one transaction.
func (s *Store) FanOut(ctx context.Context, events []Event, deliveries []Delivery) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, d := range deliveries {
			if err := putDelivery(tx, d); err != nil {
				return err
			}
		}
		for _, e := range events {
			if err := tx.Bucket(bucketOutbox).Delete([]byte(e.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: outbox fan-out: %w", err)
	}
	return nil
}

func putDelivery(tx *bolt.Tx, d Delivery) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketDeliveries).Put(deliveryKey(d.Receiver, d.Event.ID), v)
}

// Deliveries returns every delivery, dead or alive, by receiver then
// event (oldest first).
func (s *Store) Deliveries(ctx context.Context) ([]Delivery, error) {
	var out []Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeliveries).ForEach(func(k, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("delivery %q: %w", bytes.ReplaceAll(k, []byte{0}, []byte(" ")), err)
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: deliveries: %w", err)
	}
	return out, nil
}

// UpdateDelivery applies fn to a delivery; fn returning false deletes it
// (delivered, or its receiver is gone). ErrNotFound if it does not exist.
func (s *Store) UpdateDelivery(ctx context.Context, receiver, eventID string, fn func(*Delivery) (keep bool)) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		k := deliveryKey(receiver, eventID)
		v := b.Get(k)
		if v == nil {
			return fmt.Errorf("delivery of event %s to %s: %w", eventID, receiver, errdefs.ErrNotFound)
		}
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		if !fn(&d) {
			return b.Delete(k)
		}
		return putDelivery(tx, d)
	})
	if err != nil {
		return fmt.Errorf("store: delivery: %w", err)
	}
	return nil
}

// RetryDead brings dead deliveries back to life, due now, with a fresh age:
// those of eventID, or all when eventID is "". It returns how many.
func (s *Store) RetryDead(ctx context.Context, eventID string, now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		var revived []Delivery
		err := b.ForEach(func(k, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if d.Dead && (eventID == "" || d.Event.ID == eventID) {
				d.Dead, d.DeadAt, d.Attempts, d.CreatedAt, d.NextAt = false, nil, 0, now, now
				revived = append(revived, d)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range revived {
			if err := putDelivery(tx, d); err != nil {
				return err
			}
		}
		n = len(revived)
		if n == 0 && eventID != "" {
			return fmt.Errorf("no dead delivery of event %s: %w", eventID, errdefs.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: retry: %w", err)
	}
	return n, nil
}
