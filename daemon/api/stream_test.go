package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/events"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

func scanEvent(image string, st scans.Status) scans.Event {
	return scans.Event{Type: "scan", Time: t0, Scan: &scans.Scan{ID: "s-" + image, Image: image, Status: st}}
}

func reportEvent(image string, v report.Verdict, sum report.Summary) scans.Event {
	return scans.Event{Type: "report", Time: t0, Report: testReport(image, "sha256:"+strings.Repeat("a", 64), v, sum)}
}

func TestEventFilterMatch(t *testing.T) {
	scanA := scanEvent("a", scans.Queued)
	healthyA := reportEvent("a", report.Healthy, report.Summary{})
	highB := reportEvent("b", report.Unhealthy, report.Summary{High: 1, Low: 3})
	unknownB := reportEvent("b", report.Unhealthy, report.Summary{Unknown: 1})
	incomplete := reportEvent("c", report.Incomplete, report.Summary{})
	bare := scans.Event{Type: "report", Time: t0} // no report attached
	all := []scans.Event{scanA, healthyA, highB, unknownB, incomplete, bare}

	for _, tc := range []struct {
		query string
		want  []scans.Event
	}{
		{"", all},
		{"type=scan", []scans.Event{scanA}},
		{"type=report", []scans.Event{healthyA, highB, unknownB, incomplete, bare}},
		{"type=scan,report", all},
		{"image=a", []scans.Event{scanA, healthyA}},
		{"image=b&type=scan", nil},
		{"verdict=healthy", []scans.Event{healthyA}},
		{"verdict=UNHEALTHY", []scans.Event{highB, unknownB}},
		{"min_severity=critical", nil},
		{"min_severity=high", []scans.Event{highB}},
		{"min_severity=low", []scans.Event{highB}},
		// unknown is the lowest level: any finding at all, but not none.
		{"min_severity=unknown", []scans.Event{highB, unknownB}},
		{"min_severity=medium&verdict=unhealthy&image=b", []scans.Event{highB}},
		{"verdict=incomplete&type=report", []scans.Event{incomplete}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, ok := query(httptestRecorder(), mustRequest(t, "/v1/events?"+tc.query), "image", "type", "min_severity", "verdict")
			if !ok {
				t.Fatal("query rejected")
			}
			f, err := parseEventFilter(q)
			if err != nil {
				t.Fatal(err)
			}
			var got []scans.Event
			for _, e := range all {
				if f.match(e) {
					got = append(got, e)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("matched %d events %v\nwant %d %v", len(got), got, len(tc.want), tc.want)
			}
		})
	}
}

func httptestRecorder() http.ResponseWriter { return &discardWriter{h: http.Header{}} }

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func mustRequest(t *testing.T, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", "http://assay"+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEventsInvalidFilters(t *testing.T) {
	h := NewHandler(Options{Service: &fakeService{}, Events: events.NewBroker()})
	for _, q := range []string{
		"min_severity=severe",
		"verdict=fine",
		"type=scans",
		"type=",
		"type=scan&min_severity=high",
		"type=scan&verdict=healthy",
		"image=a&image=b",
	} {
		w := do(t, h, "GET", "/v1/events?"+q, nil)
		wantError(t, w, 400, "invalid_argument")
	}
}

func TestEventsNotEnabled(t *testing.T) {
	w := do(t, NewHandler(Options{Service: &fakeService{}}), "GET", "/v1/events", nil)
	wantError(t, w, 503, "unavailable")
}

// lines reads NDJSON lines from r in the background.
func lines(r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func nextLine(t *testing.T, ch <-chan string) scans.Event {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		var e scans.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	panic("unreachable")
}

// waitFor polls cond until it holds or fails the test after a deadline.
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

func TestEventStream(t *testing.T) {
	broker := events.NewBroker()
	c := serveUnix(t, NewHandler(Options{Service: &fakeService{}, Events: broker}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	req, _ := http.NewRequestWithContext(ctx, "GET", "http://assay/v1/events?image=alpine:3.20&min_severity=high", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	// The headers are out, so the handler has subscribed.
	if n := broker.Subscribers(); n != 1 {
		t.Fatalf("Subscribers() = %d, want 1", n)
	}
	ch := lines(resp.Body)

	broker.Publish(scanEvent("alpine:3.20", scans.Done))
	broker.Publish(reportEvent("alpine:3.20", report.Unhealthy, report.Summary{Medium: 1}))
	broker.Publish(reportEvent("busybox", report.Unhealthy, report.Summary{Critical: 1}))
	broker.Publish(reportEvent("alpine:3.20", report.Unhealthy, report.Summary{High: 1}))
	broker.Publish(reportEvent("alpine:3.20", report.Unhealthy, report.Summary{Critical: 2, Low: 1}))
	broker.Publish(reportEvent("alpine:3.20", report.Healthy, report.Summary{}))
	broker.Publish(reportEvent("alpine:3.20", report.Unhealthy, report.Summary{High: 5}))

	for i, want := range []report.Summary{{High: 1}, {Critical: 2, Low: 1}, {High: 5}} {
		e := nextLine(t, ch)
		if e.Type != "report" || e.Report == nil || e.Report.Summary != want || e.Report.Image != "alpine:3.20" {
			t.Errorf("event %d: %+v, want report with summary %+v", i, e, want)
		}
	}

	// The stream ends when the client goes away, and unsubscribes.
	cancel()
	waitFor(t, "the handler to unsubscribe", func() bool { return broker.Subscribers() == 0 })
}

func TestEventStreamEndsWithBroker(t *testing.T) {
	broker := events.NewBroker()
	c := serveUnix(t, NewHandler(Options{Service: &fakeService{}, Events: broker}))
	resp, err := c.Get("http://assay/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ch := lines(resp.Body)
	broker.Publish(scanEvent("a", scans.Queued))
	if e := nextLine(t, ch); e.Type != "scan" || e.Scan.Image != "a" {
		t.Errorf("event %+v", e)
	}
	broker.Close() // daemon shutdown: the stream ends without an error line
	select {
	case l, ok := <-ch:
		if ok {
			t.Errorf("unexpected line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not end")
	}
}

// bigEvent fills socket buffers quickly.
func bigEvent() scans.Event {
	e := reportEvent("big", report.Unhealthy, report.Summary{High: 1})
	e.Report.Warnings = []report.Warning{{Analyzer: "x", Message: strings.Repeat("w", 64<<10)}}
	return e
}

// openStream sends a raw request for /v1/events and reads the response
// headers, leaving the body unread.
func openStream(t *testing.T, sock string) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /v1/events HTTP/1.1\r\nHost: assay\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return conn, resp
}

// fillUntilDropped publishes big events, slowly enough for a reading
// handler to keep up, until the subscriber is dropped for falling behind.
func fillUntilDropped(t *testing.T, broker *events.Broker) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for broker.Subscribers() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscriber never dropped")
		}
		broker.Publish(bigEvent())
		time.Sleep(time.Millisecond)
	}
}

func TestEventStreamSlowConsumer(t *testing.T) {
	broker := events.NewBroker()
	_, sock := serveUnixSocket(t, NewHandler(Options{Service: &fakeService{}, Events: broker, EventBuffer: 2}))
	conn, resp := openStream(t, sock)

	// The client stops reading: socket buffers fill, the handler blocks in
	// a write, its buffer of two fills, and the broker drops it.
	fillUntilDropped(t, broker)

	// The client resumes within the write timeout: it gets what was in
	// flight, then the slow_consumer line, then the end of the response.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	var last string
	n := 0
	for sc.Scan() {
		last = sc.Text()
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("after %d lines: %v", n, err)
	}
	var e scans.Event
	if err := json.Unmarshal([]byte(last), &e); err != nil {
		t.Fatalf("last line %.200q: %v", last, err)
	}
	if e.Type != "error" || e.Error == nil || e.Error.Code != "slow_consumer" || e.Time.IsZero() || e.Report != nil {
		t.Errorf("last line %+v, want a slow_consumer error", e)
	}
	if n < 2 {
		t.Errorf("%d lines, want the buffered events before the error", n)
	}
}

func TestEventStreamStuckClient(t *testing.T) {
	broker := events.NewBroker()
	h := NewHandler(Options{Service: &fakeService{}, Events: broker, EventBuffer: 2}).(*handler)
	h.writeTimeout = 200 * time.Millisecond
	done := make(chan struct{})
	_, sock := serveUnixSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/v1/events" {
			close(done)
		}
	}))
	openStream(t, sock)

	// The client never reads again: the handler must not stay blocked.
	fillUntilDropped(t, broker)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("handler still blocked on a client that stopped reading")
	}
}
