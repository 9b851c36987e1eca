package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/assayhq/assay/daemon/notify"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

const hookSecret = "e2e-hook-secret-0123456789"

// hookReceiver is a webhook receiver on loopback: it verifies each
// delivery's signature and timestamp as a receiver should, and answers 503
// while down or for its first failFirst deliveries.
type hookReceiver struct {
	t         testing.TB
	srv       *httptest.Server
	down      atomic.Bool
	failFirst int32
	calls     atomic.Int32

	mu      sync.Mutex
	got     []hookEvent
	arrived []time.Time
}

type hookEvent struct {
	ID, Type string
	Time     time.Time
	Data     notify.Data
}

func newHookReceiver(t testing.TB, failFirst int32) *hookReceiver {
	h := &hookReceiver{t: t, failFirst: failFirst}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := h.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(hookSecret, r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("a delivery failed verification: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if h.down.Load() || n <= h.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var ce event.Event
		if err := json.Unmarshal(body, &ce); err != nil {
			t.Errorf("not a CloudEvent: %v\n%s", err, body)
			return
		}
		if err := ce.Validate(); err != nil {
			t.Errorf("an invalid CloudEvent: %v", err)
		}
		e := hookEvent{ID: ce.ID(), Type: ce.Type(), Time: ce.Time()}
		if err := ce.DataAs(&e.Data); err != nil {
			t.Errorf("event data: %v", err)
		}
		h.mu.Lock()
		h.got = append(h.got, e)
		h.arrived = append(h.arrived, time.Now())
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) events() []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// count returns how many events of typ about digest (any if "") arrived.
func (h *hookReceiver) count(typ, digest string) int {
	n := 0
	for _, e := range h.events() {
		if e.Type == typ && (digest == "" || e.Data.Digest == digest) {
			n++
		}
	}
	return n
}

func hookSecretFile(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(p, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hooksFlag is --notify.webhooks for receivers (url suffix, extra JSON
// fields).
func hooksFlag(t testing.TB, receivers ...string) string {
	return "[" + strings.Join(receivers, ",") + "]"
}

// Notifications end to end: signed CloudEvents for a stored report, a
// failed scan and a verdict a re-match changed (once); a receiver that
// fails three times gets every event it wants on a later attempt; image
// filters hold.
func TestNotifications(t *testing.T) {
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "library/debian:12", loadDebian(t))
	sec := hookSecretFile(t)
	a := newHookReceiver(t, 0)
	b := newHookReceiver(t, 3)
	hooks := hooksFlag(t,
		fmt.Sprintf(`{"url": %q, "secret_file": %q}`, a.srv.URL+"/a", sec),
		fmt.Sprintf(`{"url": %q, "secret_file": %q, "images": [%q]}`, b.srv.URL+"/b?key=k", sec, reg.Host+"/library/*"),
	)
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"), "--plugins.enabled", "dpkg",
		"--notify.webhooks", hooks,
	}})

	sc := d.submit(ref)
	d.waitStatus(sc.ID, scans.Done, 2*time.Minute)
	waitFor(t, 30*time.Second, "the report event at receiver a", func() bool { return a.count("io.assay.report.stored", digest) == 1 })
	e := a.events()[0]
	if e.Data.ScanID != sc.ID || e.Data.Verdict != report.Incomplete || e.Data.Image != ref || !strings.Contains(e.Data.Report, digest) {
		t.Errorf("report event %+v", e)
	}

	bad := d.submit(reg.Host + "/nothing/here:1")
	d.waitStatus(bad.ID, scans.Failed, time.Minute)
	waitFor(t, 30*time.Second, "the failure event", func() bool { return a.count("io.assay.scan.failed", "") == 1 })

	// Advisories arrive: the re-match turns the image unhealthy.
	if out, errOut, code := d.assay("db", "import", "../../shared/testdata/osv/debian"); code != 0 {
		t.Fatalf("assay db import: %d %s%s", code, out, errOut)
	}
	waitFor(t, time.Minute, "the verdict change", func() bool { return a.count("io.assay.verdict.changed", digest) == 1 })
	var vc hookEvent
	for _, e := range a.events() {
		if e.Type == "io.assay.verdict.changed" {
			vc = e
		}
	}
	if vc.Data.Verdict != report.Unhealthy || vc.Data.PreviousVerdict != report.Incomplete || vc.Data.Summary == nil || vc.Data.Summary.Total() == 0 {
		t.Errorf("verdict change %+v", vc)
	}
	// The same data again: a re-match that changes nothing tells nothing.
	if _, errOut, code := d.assay("db", "import", "../../shared/testdata/osv/debian"); code != 0 {
		t.Fatalf("second import: %s", errOut)
	}

	// Receiver b failed three times, then got what its filter takes: the
	// report and the verdict change of library/debian, not the failure of
	// nothing/here.
	waitFor(t, time.Minute, "receiver b's deliveries", func() bool {
		return b.count("io.assay.report.stored", digest) == 1 && b.count("io.assay.verdict.changed", digest) == 1
	})
	time.Sleep(3 * time.Second)
	if n := a.count("io.assay.verdict.changed", ""); n != 1 {
		t.Errorf("receiver a got %d verdict changes, want 1", n)
	}
	if n := b.count("io.assay.scan.failed", ""); n != 0 {
		t.Errorf("receiver b got %d failures its image filter excludes", n)
	}
	if c := b.calls.Load(); c < 5 {
		t.Errorf("receiver b was called %d times, want 3 failures and 2 deliveries", c)
	}
	ids := map[string]bool{}
	for _, e := range a.events() {
		if ids[e.ID] {
			t.Errorf("event %s delivered twice to a receiver that never failed", e.ID)
		}
		ids[e.ID] = true
	}

	out, errOut, code := d.assay("notify", "status", "-o", "json")
	if code != 0 {
		t.Fatalf("assay notify status: %d %s", code, errOut)
	}
	var st notify.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Receivers) != 2 || st.Receivers[0].Pending+st.Receivers[1].Pending+len(st.DeadLetters) != 0 {
		t.Errorf("status after delivery: %s", out)
	}
	if strings.Contains(out, "key=k") || strings.Contains(d.log.String(), "key=k") {
		t.Error("the receiver URL's query (a secret in chat services) shows in the status or the log")
	}
	table, _, _ := d.assay("notify", "status")
	t.Logf("assay notify status:\n%s", table)
}

// Notifications pending when assayd is SIGKILLed arrive after the restart.
func TestNotificationsSurviveKill(t *testing.T) {
	reg := newRegistry(t)
	rcv := newHookReceiver(t, 0)
	rcv.down.Store(true)
	d := startDaemon(t, daemonOpts{args: []string{
		"--notify.webhooks", hooksFlag(t, fmt.Sprintf(`{"url": %q, "secret_file": %q}`, rcv.srv.URL, hookSecretFile(t))),
	}})
	want := map[string]bool{}
	for i := range 3 {
		ref, digest := reg.push(t, fmt.Sprintf("app/n%d:1", i))
		sc := d.submit(ref)
		d.waitStatus(sc.ID, scans.Done, time.Minute)
		want[digest] = true
	}
	waitFor(t, 30*time.Second, "failed attempts", func() bool { return rcv.calls.Load() >= 3 })
	out, _, _ := d.assay("notify", "status", "-o", "json")
	var st notify.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Receivers[0].Pending+st.Undispatched < 3 {
		t.Fatalf("before the kill: %s (%v)", out, err)
	}
	d.kill()
	rcv.down.Store(false)
	d.restart()
	waitFor(t, time.Minute, "the three notifications after the restart", func() bool {
		return rcv.count("io.assay.report.stored", "") >= 3
	})
	for _, e := range rcv.events() {
		delete(want, e.Data.Digest)
	}
	if len(want) != 0 {
		t.Errorf("notifications lost: %v", want)
	}
}

// BenchmarkNotifyLatency: from a report stored (the CloudEvent's time) to
// its arrival at a loopback receiver, p50 and p99, over 40 scans.
//
//	ASSAY_E2E=1 ASSAY_BIN=$PWD/../bin go test -run '^$' -bench NotifyLatency -benchtime 1x -v .
func BenchmarkNotifyLatency(b *testing.B) {
	reg := newRegistry(b)
	rcv := newHookReceiver(b, 0)
	d := startDaemon(b, daemonOpts{args: []string{
		"--notify.webhooks", hooksFlag(b, fmt.Sprintf(`{"url": %q, "secret_file": %q}`, rcv.srv.URL, hookSecretFile(b))),
	}})
	const n = 40
	var refs []string
	for i := range n {
		ref, _ := reg.push(b, fmt.Sprintf("bench/n%d:1", i))
		refs = append(refs, ref)
	}
	// A fixed amount of work whatever b.N is (make bench's -benchtime
	// 2000x costs what 1x does).
	for _, ref := range refs {
		d.Client.Submit(context.Background(), scans.Request{Image: ref})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for rcv.count("io.assay.report.stored", "") < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for b.Loop() {
	}
	rcv.mu.Lock()
	var lat []time.Duration
	for i, e := range rcv.got {
		lat = append(lat, rcv.arrived[i].Sub(e.Time))
	}
	rcv.mu.Unlock()
	if len(lat) < n {
		b.Fatalf("%d of %d notifications arrived", len(lat), n)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[(len(lat)*99)/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.Logf("notification delivery on loopback, %d events: p50 %s, p99 %s", len(lat), p50, p99)
}
