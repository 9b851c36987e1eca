// Package notify sends the daemon's notifications: CloudEvents 1.0 (JSON,
// structured mode) POSTed to the configured receivers, signed with
// HMAC-SHA256, from the store's durable outbox.
//
// The store records an event in the same transaction as the change it
// tells of (a report stored, a verdict changed by a re-match, a scan
// failed). The notifier fans each event out into one delivery per
// receiver whose filters take it, then queues the deliveries that are due
// per receiver, each queue drained by at most PerReceiver goroutines of
// its own (a backlog is no storm), so that a slow or dead receiver delays
// no other and never a scan. A failed attempt is retried with exponential
// backoff until the delivery is MaxAge old, then it is dead-lettered; a
// dead letter is sent again only when retried (assay notify retry). A
// delivery is removed once its receiver answered 2xx: delivery is at least
// once, and the CloudEvents id tells duplicates apart.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/distribution/reference"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/store"
)

// Headers of a delivery.
const (
	HeaderSignature = "X-Assay-Signature-256"
	HeaderTimestamp = "X-Assay-Timestamp"
	// TypePrefix starts every CloudEvents type: io.assay.report.stored,
	// io.assay.verdict.changed, io.assay.scan.failed.
	TypePrefix = "io.assay."
)

// Receiver is one configured receiver.
type Receiver struct {
	URL    string
	Secret string
	// MinSeverity drops report.stored events whose worst finding is below
	// it ("" keeps them all).
	MinSeverity report.Severity
	// VerdictChangedOnly keeps report.stored events whose verdict differs
	// from the image's previous one, and verdict.changed events.
	VerdictChangedOnly bool
	// Images are path.Match globs over the image's repository
	// (registry/path); none keeps every image.
	Images []string
}

// Wants reports whether r takes e.
func (r Receiver) Wants(e store.Event) bool {
	switch e.Type {
	case store.EventReportStored:
		if r.VerdictChangedOnly && e.Verdict == e.PreviousVerdict {
			return false
		}
		if r.MinSeverity != "" && (e.MaxSeverity == "" || !e.MaxSeverity.AtLeast(r.MinSeverity)) {
			return false
		}
	case store.EventScanFailed:
		if r.VerdictChangedOnly {
			return false
		}
	}
	if len(r.Images) == 0 {
		return true
	}
	repo := e.Image
	if named, err := reference.ParseNormalizedNamed(e.Image); err == nil {
		repo = named.Name()
	}
	for _, g := range r.Images {
		if ok, _ := path.Match(g, repo); ok {
			return true
		}
	}
	return false
}

// Store is the outbox (*store.Store).
type Store interface {
	PendingEvents(ctx context.Context, max int) ([]store.Event, error)
	PendingCount(ctx context.Context) (int, error)
	FanOut(ctx context.Context, events []store.Event, deliveries []store.Delivery) error
	Deliveries(ctx context.Context) ([]store.Delivery, error)
	UpdateDelivery(ctx context.Context, receiver, eventID string, fn func(*store.Delivery) bool) error
	RetryDead(ctx context.Context, eventID string, now time.Time) (int, error)
}

// Options configure New.
type Options struct {
	Store     Store
	Receivers []Receiver
	// Timeout bounds one attempt; MaxAge how long a delivery is retried.
	Timeout, MaxAge time.Duration
	// MinBackoff is the wait after the first failure, doubled after each
	// (with jitter) up to MaxBackoff. Defaults: 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// Source is the CloudEvents source of every event.
	Source string
	// UserAgent is sent with each request.
	UserAgent string
	// PerReceiver bounds the deliveries in flight to one receiver (so a
	// backlog is not sent as a storm); 0 means 4.
	PerReceiver int
	// Client sends the requests; nil means a client of its own.
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Notifier drains the outbox.
type Notifier struct {
	o    Options
	log  *slog.Logger
	wake chan struct{}
	// retried says a failed attempt set a next try (nextRetry): Run sets
	// its timer by it, without reading the deliveries again.
	retried chan struct{}

	mu        sync.Mutex
	queued    map[string]bool             // receiver 0x00 event id: queued or being sent
	queues    map[string][]store.Delivery // due deliveries per receiver, in order
	senders   map[string]int              // goroutines draining each queue
	nextRetry time.Time
	secrets   map[string]string
}

// New makes a Notifier; Run drives it.
func New(o Options) *Notifier {
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.Client == nil {
		o.Client = &http.Client{
			// A receiver answers; it does not send us elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PerReceiver <= 0 {
		o.PerReceiver = 4
	}
	n := &Notifier{o: o, log: o.Logger, wake: make(chan struct{}, 1), retried: make(chan struct{}, 1),
		queued: map[string]bool{}, queues: map[string][]store.Delivery{}, senders: map[string]int{}, secrets: map[string]string{}}
	for _, r := range o.Receivers {
		n.secrets[r.URL] = r.Secret
	}
	return n
}

// Kick makes Run look at the outbox now (an event was recorded).
func (n *Notifier) Kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run fans out and sends until ctx is done. Deliveries in flight are
// abandoned then (they are sent again at the next start). The deliveries
// are read once per round (a new event, the next due time), never once
// per attempt.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		n.mu.Lock()
		n.nextRetry = time.Time{} // the round reads every next try
		n.mu.Unlock()
		wait := time.Minute
		if err := n.fanOut(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("notifications: reading the outbox failed", "err", err)
			wait = 5 * time.Second
		}
		next, err := n.queueDue(ctx, &wg)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Error("notifications: reading the deliveries failed", "err", err)
			}
			wait = 5 * time.Second
		}
		if !n.sleep(ctx, wait, next) {
			return
		}
	}
}

// sleep waits for the next round: at most wait, until next or a failed
// attempt's next try, or a Kick. It returns false when ctx is done.
func (n *Notifier) sleep(ctx context.Context, wait time.Duration, next time.Time) bool {
	for {
		d := wait
		n.mu.Lock()
		for _, t := range []time.Time{next, n.nextRetry} {
			if !t.IsZero() {
				d = min(d, max(t.Sub(n.o.Now()), 10*time.Millisecond))
			}
		}
		n.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-n.wake:
			t.Stop()
			return true
		case <-t.C:
			return true
		case <-n.retried:
			t.Stop() // an earlier next try: wait again, for it
		}
	}
}

// fanOut turns recorded events into deliveries, one per receiver that
// wants each.
func (n *Notifier) fanOut(ctx context.Context) error {
	for {
		events, err := n.o.Store.PendingEvents(ctx, 256)
		if err != nil || len(events) == 0 {
			return err
		}
		now := n.o.Now().UTC()
		var ds []store.Delivery
		for _, e := range events {
			for _, r := range n.o.Receivers {
				if r.Wants(e) {
					ds = append(ds, store.Delivery{Receiver: r.URL, Event: e, CreatedAt: now, NextAt: now})
				}
			}
		}
		if err := n.o.Store.FanOut(ctx, events, ds); err != nil {
			return err
		}
	}
}

// queueDue queues the due deliveries not queued yet, per receiver, starts
// senders for them (at most PerReceiver per receiver), and returns when
// the next one is due (zero: none pending).
func (n *Notifier) queueDue(ctx context.Context, wg *sync.WaitGroup) (time.Time, error) {
	ds, err := n.o.Store.Deliveries(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := n.o.Now()
	var next time.Time
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, d := range ds {
		if d.Dead {
			continue
		}
		if _, ok := n.secrets[d.Receiver]; !ok {
			// The receiver left the configuration: nobody to send to.
			n.log.Warn("notifications: dropping a delivery to a receiver no longer configured", "receiver", Redact(d.Receiver), "event", d.Event.ID)
			_ = n.o.Store.UpdateDelivery(ctx, d.Receiver, d.Event.ID, func(*store.Delivery) bool { return false })
			continue
		}
		if d.NextAt.After(now) {
			if next.IsZero() || d.NextAt.Before(next) {
				next = d.NextAt
			}
			continue
		}
		if key := deliveryKey(d); !n.queued[key] {
			n.queued[key] = true
			n.queues[d.Receiver] = append(n.queues[d.Receiver], d)
		}
	}
	for r, q := range n.queues {
		for i := n.senders[r]; i < n.o.PerReceiver && i < len(q); i++ {
			n.senders[r]++
			wg.Go(func() { n.drain(ctx, r) })
		}
	}
	return next, nil
}

func deliveryKey(d store.Delivery) string { return d.Receiver + "\x00" + d.Event.ID }

// drain sends receiver's queued deliveries one after the other until the
// queue is empty (or ctx is done).
func (n *Notifier) drain(ctx context.Context, receiver string) {
	for {
		n.mu.Lock()
		q := n.queues[receiver]
		if len(q) == 0 || ctx.Err() != nil {
			n.senders[receiver]--
			n.mu.Unlock()
			return
		}
		d := q[0]
		n.queues[receiver] = q[1:]
		n.mu.Unlock()

		retry := n.attempt(ctx, d)

		n.mu.Lock()
		delete(n.queued, deliveryKey(d))
		earlier := !retry.IsZero() && (n.nextRetry.IsZero() || retry.Before(n.nextRetry))
		if earlier {
			n.nextRetry = retry
		}
		n.mu.Unlock()
		if earlier {
			select {
			case n.retried <- struct{}{}:
			default:
			}
		}
	}
}

// attempt sends one delivery and records the outcome; it returns when
// the delivery is to be tried again (zero: delivered, dead, or shutting
// down).
func (n *Notifier) attempt(ctx context.Context, d store.Delivery) (retry time.Time) {
	start := n.o.Now()
	err := n.send(ctx, d)
	if ctx.Err() != nil {
		return time.Time{} // shutting down: the delivery stays due
	}
	log := n.log.With("receiver", Redact(d.Receiver), "event", d.Event.ID, "type", TypePrefix+d.Event.Type, "attempt", d.Attempts+1)
	uerr := n.o.Store.UpdateDelivery(context.WithoutCancel(ctx), d.Receiver, d.Event.ID, func(cur *store.Delivery) bool {
		if err == nil {
			return false
		}
		cur.Attempts++
		cur.LastError = err.Error()
		now := n.o.Now().UTC()
		if now.Sub(cur.CreatedAt) >= n.o.MaxAge {
			cur.Dead, cur.DeadAt = true, &now
			return true
		}
		cur.NextAt = now.Add(n.backoff(cur.Attempts))
		retry = cur.NextAt
		return true
	})
	switch {
	case uerr != nil:
		log.Error("notifications: recording a delivery failed", "err", uerr)
	case err == nil:
		log.Debug("notification delivered", "took", n.o.Now().Sub(start).Round(time.Millisecond))
	default:
		log.Warn("notification not delivered; it will be retried until notify.max_age", "err", err)
	}
	return retry
}

// backoff is the wait after the attempts-th failure: MinBackoff doubled
// each time, at most MaxBackoff, less up to a fifth at random so that
// receivers that failed together are not retried together.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.o.MinBackoff
	for i := 1; i < attempts && d < n.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.o.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// send POSTs the delivery's event once.
func (n *Notifier) send(ctx context.Context, d store.Delivery) error {
	body, err := CloudEvent(d.Event, n.o.Source)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Receiver, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	ts := strconv.FormatInt(n.o.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(n.secrets[d.Receiver], ts, body))
	if n.o.UserAgent != "" {
		req.Header.Set("User-Agent", n.o.UserAgent)
	}
	resp, err := n.o.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL may hold a secret
		}
		return fmt.Errorf("POST %s: %w", Redact(d.Receiver), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s", Redact(d.Receiver), resp.Status)
	}
	return nil
}

// Sign is the X-Assay-Signature-256 value of a body sent at timestamp ts
// (Unix seconds, the X-Assay-Timestamp header): "sha256=" and the hex
// HMAC-SHA256, under the receiver's secret, of ts "." body. A receiver
// recomputes it, compares in constant time, and refuses an old timestamp.
func Sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature and that its timestamp is within
// maxSkew of now: what a receiver does (the e2e tests' receiver uses it).
func Verify(secret, ts, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("notify: timestamp %q is not Unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("notify: timestamp %s is %s away from now: a replay?", ts, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature)) {
		return errors.New("notify: the signature does not match the body")
	}
	return nil
}

// Data is an event's data: what the store recorded, and where its report
// is.
type Data struct {
	store.EventData
	// Report is the API path of the report (on the socket, or api.listen).
	Report string `json:"report,omitempty"`
}

// CloudEvent encodes e as a CloudEvents 1.0 JSON document (structured
// mode).
func CloudEvent(e store.Event, source string) ([]byte, error) {
	ce := event.New(event.CloudEventsVersionV1)
	ce.SetID(e.ID)
	ce.SetType(TypePrefix + e.Type)
	ce.SetSource(source)
	ce.SetTime(e.Time)
	if e.Digest != "" {
		ce.SetSubject(e.Digest)
	}
	data := Data{EventData: e.EventData}
	if e.Digest != "" && e.Type != store.EventScanFailed {
		data.Report = "/v1/reports/" + e.Digest
		if e.ScanID != "" {
			data.Report += "?scan=" + url.QueryEscape(e.ScanID)
		}
	}
	if err := ce.SetData(event.ApplicationJSON, data); err != nil {
		return nil, fmt.Errorf("notify: event data: %w", err)
	}
	if err := ce.Validate(); err != nil {
		return nil, fmt.Errorf("notify: event: %w", err)
	}
	b, err := ce.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("notify: event: %w", err)
	}
	return b, nil
}

// Redact shows a receiver URL without what may be a secret (chat
// services put the key in the path or the query): scheme://host/….
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(a receiver URL)"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		out += "/…"
	}
	return out
}

// Status is the outbox as `assay notify status` shows it.
type Status struct {
	Receivers []ReceiverStatus `json:"receivers"`
	// Undispatched events are recorded but not yet fanned out.
	Undispatched int          `json:"undispatched"`
	DeadLetters  []DeadLetter `json:"dead_letters"`
}

// ReceiverStatus counts one receiver's deliveries.
type ReceiverStatus struct {
	// URL is redacted (Redact); Index is its place in notify.webhooks,
	// from 1.
	URL     string `json:"url"`
	Index   int    `json:"index"`
	Pending int    `json:"pending"`
	Dead    int    `json:"dead"`
	// OldestPending is when the oldest pending delivery was recorded.
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
}

// DeadLetter is a delivery given up on.
type DeadLetter struct {
	EventID   string    `json:"event_id"`
	Type      string    `json:"type"`
	Receiver  string    `json:"receiver"`
	Image     string    `json:"image,omitempty"`
	Digest    string    `json:"digest,omitempty"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	CreatedAt time.Time `json:"created_at"`
	DeadAt    time.Time `json:"dead_at"`
}

// Status reads the outbox.
func (n *Notifier) Status(ctx context.Context) (Status, error) {
	st := Status{Receivers: []ReceiverStatus{}, DeadLetters: []DeadLetter{}}
	var err error
	if st.Undispatched, err = n.o.Store.PendingCount(ctx); err != nil {
		return st, err
	}
	ds, err := n.o.Store.Deliveries(ctx)
	if err != nil {
		return st, err
	}
	idx := map[string]int{}
	for i, r := range n.o.Receivers {
		idx[r.URL] = i
		st.Receivers = append(st.Receivers, ReceiverStatus{URL: Redact(r.URL), Index: i + 1})
	}
	for _, d := range ds {
		i, ok := idx[d.Receiver]
		if !ok {
			continue
		}
		rs := &st.Receivers[i]
		if d.Dead {
			rs.Dead++
			dl := DeadLetter{EventID: d.Event.ID, Type: TypePrefix + d.Event.Type, Receiver: Redact(d.Receiver), Image: d.Event.Image,
				Digest: d.Event.Digest, Attempts: d.Attempts, LastError: d.LastError, CreatedAt: d.CreatedAt}
			if d.DeadAt != nil {
				dl.DeadAt = *d.DeadAt
			}
			st.DeadLetters = append(st.DeadLetters, dl)
			continue
		}
		rs.Pending++
		if rs.OldestPending == nil || d.CreatedAt.Before(*rs.OldestPending) {
			t := d.CreatedAt
			rs.OldestPending = &t
		}
		if d.LastError != "" {
			rs.LastError = d.LastError
		}
	}
	return st, nil
}

// Retry sends dead letters again, with a fresh max age: those of one
// event, or all when eventID is "".
func (n *Notifier) Retry(ctx context.Context, eventID string) (int, error) {
	c, err := n.o.Store.RetryDead(ctx, eventID, n.o.Now().UTC())
	if err == nil && c > 0 {
		n.Kick()
	}
	return c, err
}
