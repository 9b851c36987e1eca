package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
)

const secret = "receiver-secret-0123456789"

// receiver is a loopback receiver that verifies each delivery and answers
// with the status fail says.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	events []event.Event
	calls  atomic.Int32
	fail   func(call int) int // status to answer; 0 is 200
	hang   chan struct{}
}

func newReceiver(t *testing.T, fail func(int) int) *receiver {
	r := &receiver{t: t, fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := int(r.calls.Add(1))
		if r.hang != nil {
			<-r.hang
		}
		body, _ := io.ReadAll(req.Body)
		if err := Verify(secret, req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("delivery %d: %v", n, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
			t.Errorf("content type %q", ct)
		}
		if r.fail != nil {
			if code := r.fail(n); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		var ev event.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("not a CloudEvent: %v\n%s", err, body)
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}))
	t.Cleanup(func() {
		if r.hang != nil {
			close(r.hang)
		}
		r.srv.Close()
	})
	return r
}

func (r *receiver) got() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.EnableOutbox()
	return st
}

// finishScan records a scan and its report, as the queue does.
func finishScan(t *testing.T, st *store.Store, image string, rep *report.Report) scans.Scan {
	t.Helper()
	ctx := context.Background()
	sc, _, err := st.Create(ctx, scans.Scan{Image: image, DedupeKey: image + rep.Digest})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	status, errText := scans.Done, ""
	if rep.Digest == "" {
		status, errText, rep = scans.Failed, "pull: 404", nil
	}
	sc, err = st.Finish(ctx, sc.ID, status, errText, rep)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func unhealthy(digest string) *report.Report {
	return &report.Report{Digest: digest, Verdict: report.Unhealthy, Summary: report.Summary{High: 1},
		Findings: []report.Finding{{ID: "CVE-1", Severity: report.High}}}
}

func run(t *testing.T, o Options) *Notifier {
	t.Helper()
	if o.Source == "" {
		o.Source = "/assayd/test"
	}
	n := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliversSignedCloudEvents(t *testing.T) {
	st := openStore(t)
	rcv := newReceiver(t, nil)
	n := run(t, Options{Store: st, Receivers: []Receiver{{URL: rcv.srv.URL + "/hook", Secret: secret}}})
	d := "sha256:" + strings.Repeat("a", 64)
	sc := finishScan(t, st, "reg.example/app@"+d, unhealthy(d))
	failed := finishScan(t, st, "reg.example/gone:1", &report.Report{})
	n.Kick()
	waitFor(t, "two deliveries", func() bool { return len(rcv.got()) == 2 })
	evs := rcv.got()
	byType := map[string]event.Event{}
	for _, e := range evs {
		byType[e.Type()] = e
	}
	rs, ok := byType["io.assay.report.stored"]
	if !ok || rs.Subject() != d || rs.Source() != "/assayd/test" || rs.SpecVersion() != "1.0" || rs.ID() == "" {
		t.Fatalf("report event %v", rs)
	}
	var data Data
	if err := rs.DataAs(&data); err != nil {
		t.Fatal(err)
	}
	if data.ScanID != sc.ID || data.Verdict != report.Unhealthy || data.PreviousVerdict != "" || data.MaxSeverity != report.High ||
		data.Report != "/v1/reports/"+d+"?scan="+sc.ID {
		t.Errorf("report data %+v", data)
	}
	fe, ok := byType["io.assay.scan.failed"]
	var fdata Data
	if !ok || fe.DataAs(&fdata) != nil || fdata.ScanID != failed.ID || fdata.Error != "pull: 404" {
		t.Errorf("failure event %v %+v", fe, fdata)
	}
	// Delivered deliveries are gone.
	waitFor(t, "an empty outbox", func() bool { ds, _ := st.Deliveries(context.Background()); return len(ds) == 0 })
}

// A receiver that fails three times gets the event on the fourth attempt,
// once.
func TestRetriesWithBackoff(t *testing.T) {
	st := openStore(t)
	rcv := newReceiver(t, func(call int) int {
		if call <= 3 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	n := run(t, Options{Store: st, Receivers: []Receiver{{URL: rcv.srv.URL, Secret: secret}}, MinBackoff: 20 * time.Millisecond})
	d := "sha256:" + strings.Repeat("b", 64)
	finishScan(t, st, "reg.example/app@"+d, unhealthy(d))
	n.Kick()
	waitFor(t, "the delivery", func() bool { return len(rcv.got()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if c := rcv.calls.Load(); c != 4 || len(rcv.got()) != 1 {
		t.Errorf("calls %d, delivered %d; want 4 and 1", c, len(rcv.got()))
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	n := New(Options{MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
	for _, tt := range []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}} {
		got := n.backoff(tt.attempts)
		if got > tt.want || got < tt.want*4/5 {
			t.Errorf("backoff(%d) = %s, want %s less up to a fifth", tt.attempts, got, tt.want)
		}
	}
}

// A delivery that keeps failing is dead-lettered after MaxAge, shown in the
// status, and sent again when retried.
func TestDeadLetterAndRetry(t *testing.T) {
	st := openStore(t)
	var healthy atomic.Bool
	rcv := newReceiver(t, func(int) int {
		if healthy.Load() {
			return 0
		}
		return http.StatusInternalServerError
	})
	n := run(t, Options{Store: st, Receivers: []Receiver{{URL: rcv.srv.URL + "/secret-path?token=x", Secret: secret}},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAge: 150 * time.Millisecond})
	d := "sha256:" + strings.Repeat("c", 64)
	finishScan(t, st, "reg.example/app@"+d, unhealthy(d))
	n.Kick()
	var status Status
	waitFor(t, "a dead letter", func() bool {
		var err error
		status, err = n.Status(context.Background())
		return err == nil && len(status.DeadLetters) == 1
	})
	dl := status.DeadLetters[0]
	if dl.Attempts < 2 || !strings.Contains(dl.LastError, "500") || dl.Type != "io.assay.report.stored" || status.Receivers[0].Dead != 1 {
		t.Errorf("status %+v", status)
	}
	if strings.Contains(dl.Receiver, "secret-path") || strings.Contains(dl.LastError, "token=x") || strings.Contains(status.Receivers[0].URL, "secret") {
		t.Errorf("the status shows the receiver URL's secret: %+v", status)
	}
	calls := rcv.calls.Load()
	time.Sleep(100 * time.Millisecond)
	if rcv.calls.Load() != calls {
		t.Error("a dead letter is still being sent")
	}
	healthy.Store(true)
	if c, err := n.Retry(context.Background(), ""); err != nil || c != 1 {
		t.Fatalf("retry: %d %v", c, err)
	}
	waitFor(t, "the retried delivery", func() bool { return len(rcv.got()) == 1 })
	if _, err := n.Retry(context.Background(), "no-such-event"); err == nil {
		t.Error("retrying an unknown event succeeded")
	}
}

// A receiver that never answers delays no other.
func TestSlowReceiverDelaysNoOther(t *testing.T) {
	st := openStore(t)
	slow := newReceiver(t, nil)
	slow.hang = make(chan struct{})
	fast := newReceiver(t, nil)
	n := run(t, Options{Store: st, Timeout: time.Minute, Receivers: []Receiver{{URL: slow.srv.URL, Secret: secret}, {URL: fast.srv.URL, Secret: secret}}})
	for i, c := range []string{"d", "e", "f"} {
		d := "sha256:" + strings.Repeat(c, 64)
		finishScan(t, st, "reg.example/app@"+d, unhealthy(d))
		n.Kick()
		waitFor(t, "the fast receiver's delivery", func() bool { return len(fast.got()) == i+1 })
	}
	if len(slow.got()) != 0 {
		t.Error("the hung receiver answered")
	}
}

func TestWants(t *testing.T) {
	base := store.Event{Type: store.EventReportStored, EventData: store.EventData{Image: "reg.example/prod/app@sha256:" + strings.Repeat("a", 64), Verdict: report.Unhealthy, PreviousVerdict: report.Unhealthy, MaxSeverity: report.Medium}}
	with := func(f func(*store.Event)) store.Event { e := base; f(&e); return e }
	for _, tt := range []struct {
		name string
		r    Receiver
		e    store.Event
		want bool
	}{
		{"no filter", Receiver{}, base, true},
		{"below min severity", Receiver{MinSeverity: report.High}, base, false},
		{"at min severity", Receiver{MinSeverity: report.Medium}, base, true},
		{"no findings under a min severity", Receiver{MinSeverity: report.Low}, with(func(e *store.Event) { e.MaxSeverity = "" }), false},
		{"same verdict, changed only", Receiver{VerdictChangedOnly: true}, base, false},
		{"new verdict, changed only", Receiver{VerdictChangedOnly: true}, with(func(e *store.Event) { e.PreviousVerdict = report.Healthy }), true},
		{"first report, changed only", Receiver{VerdictChangedOnly: true}, with(func(e *store.Event) { e.PreviousVerdict = "" }), true},
		{"failure, changed only", Receiver{VerdictChangedOnly: true}, with(func(e *store.Event) { e.Type = store.EventScanFailed }), false},
		{"verdict change under a min severity", Receiver{MinSeverity: report.Critical}, with(func(e *store.Event) { e.Type = store.EventVerdictChanged }), true},
		{"image glob", Receiver{Images: []string{"reg.example/prod/*"}}, base, true},
		{"other image glob", Receiver{Images: []string{"reg.example/dev/*"}}, base, false},
		{"docker hub name", Receiver{Images: []string{"docker.io/library/*"}}, with(func(e *store.Event) { e.Image = "debian:12" }), true},
	} {
		if got := tt.r.Wants(tt.e); got != tt.want {
			t.Errorf("%s: Wants = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestVerifyRefusesTamperingAndReplay(t *testing.T) {
	body := []byte(`{"id":"1"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	sig := Sign(secret, ts, body)
	if err := Verify(secret, ts, sig, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"other body":   Verify(secret, ts, sig, []byte(`{"id":"2"}`), now, time.Minute),
		"other secret": Verify(secret+"x", ts, sig, body, now, time.Minute),
		"old":          Verify(secret, ts, sig, body, now.Add(time.Hour), time.Minute),
		"moved stamp":  Verify(secret, "1800000001", sig, body, now, time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://chat.example/hooks/7b1e0c94d2a6": "https://chat.example/…",
		"http://127.0.0.1:9000":                   "http://127.0.0.1:9000",
		"http://127.0.0.1:9000/?k=1":              "http://127.0.0.1:9000/…",
		"::":                                      "(a receiver URL)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A backlog is sent at most PerReceiver at a time to one receiver.
func TestBacklogIsNotAStorm(t *testing.T) {
	st := openStore(t)
	var inFlight, maxSeen atomic.Int32
	rcv := newReceiver(t, nil)
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		rcv.calls.Add(1)
	})
	for i := range 30 {
		d := "sha256:" + strings.Repeat(string(rune('a'+i%6)), 63) + string(rune('a'+i/6))
		finishScan(t, st, "reg.example/app@"+d, unhealthy(d))
	}
	cs := &countingStore{Store: st}
	run(t, Options{Store: cs, PerReceiver: 3, Receivers: []Receiver{{URL: rcv.srv.URL, Secret: secret}}})
	waitFor(t, "the backlog", func() bool { return rcv.calls.Load() == 30 })
	if m := maxSeen.Load(); m > 3 || m < 2 {
		t.Errorf("%d deliveries in flight at once to one receiver, want at most 3 (and some concurrency)", m)
	}
	// The deliveries are read per round, not per attempt.
	if r := cs.reads.Load(); r > 5 {
		t.Errorf("the deliveries were read %d times to send 30", r)
	}
}

// countingStore counts the reads of every delivery.
type countingStore struct {
	*store.Store
	reads atomic.Int32
}

func (c *countingStore) Deliveries(ctx context.Context) ([]store.Delivery, error) {
	c.reads.Add(1)
	return c.Store.Deliveries(ctx)
}

// A receiver cannot send a delivery elsewhere (redirects are failures and
// not followed) nor hold it with an endless answer (read up to 64 KiB).
func TestReceiverCannotRedirectOrFlood(t *testing.T) {
	st := openStore(t)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := newReceiver(t, nil)
	redirect.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirect.calls.Add(1)
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	})
	flood := newReceiver(t, nil)
	flood.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flood.calls.Add(1)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for range 1 << 12 { // 128 MiB, unless the client stops reading
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	n := run(t, Options{Store: st, MinBackoff: time.Hour, Receivers: []Receiver{{URL: redirect.srv.URL, Secret: secret}, {URL: flood.srv.URL, Secret: secret}}})
	d := "sha256:" + strings.Repeat("9", 64)
	finishScan(t, st, "reg.example/app@"+d, unhealthy(d))
	n.Kick()
	waitFor(t, "both attempts", func() bool {
		s, err := n.Status(context.Background())
		return err == nil && s.Receivers[0].LastError != "" && s.Receivers[1].Pending == 0
	})
	s, _ := n.Status(context.Background())
	if !strings.Contains(s.Receivers[0].LastError, "307") || elsewhere.Load() != 0 {
		t.Errorf("redirect: %+v, %d requests elsewhere", s.Receivers[0], elsewhere.Load())
	}
}
