package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/client"
	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// serve runs h on a Unix socket and returns the socket's path. The
// directory is short on purpose: socket paths are limited to 108 bytes and
// t.TempDir embeds the test name.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "assay-client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return sock
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": scans.ErrorBody{Code: code, Message: msg}})
}

var (
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	digest = "sha256:" + strings.Repeat("ab", 32)
)

func newClient(t *testing.T, sock string, opts ...client.Option) *client.Client {
	c := client.New(sock, opts...)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestSubmit(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/scans", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			apiError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "content type "+ct)
			return
		}
		var req scans.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			apiError(w, http.StatusBadRequest, "invalid_argument", err.Error())
			return
		}
		if req.Image != "nginx:1.25" || req.Platform != "linux/arm64" {
			apiError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("unexpected request %+v", req))
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{
			"id": "s1", "image": req.Image, "platform": req.Platform, "status": "queued",
			"attempts": 0, "created_at": t0, "updated_at": t0, "deduplicated": true,
		})
	})
	c := newClient(t, serve(t, mux))
	s, dedup, err := c.Submit(t.Context(), scans.Request{Image: "nginx:1.25", Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	want := scans.Scan{ID: "s1", Image: "nginx:1.25", Platform: "linux/arm64", Status: scans.Queued, CreatedAt: t0, UpdatedAt: t0}
	if !reflect.DeepEqual(s, want) || !dedup {
		t.Errorf("Submit = %+v, %v; want %+v, true", s, dedup, want)
	}
}

func TestScanAndCancel(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/scans/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, scans.Scan{ID: r.PathValue("id"), Status: scans.Analyzing})
	})
	mux.HandleFunc("DELETE /v1/scans/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "done1" {
			apiError(w, http.StatusConflict, "conflict", "scan done1 is already done")
			return
		}
		writeJSON(w, http.StatusOK, scans.Scan{ID: r.PathValue("id"), Status: scans.Cancelled, Error: "cancelled by request"})
	})
	c := newClient(t, serve(t, mux))

	s, err := c.Scan(t.Context(), "a/b c")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "a/b c" || s.Status != scans.Analyzing {
		t.Errorf("Scan = %+v", s)
	}
	s, err = c.Cancel(t.Context(), "s2")
	if err != nil || s.Status != scans.Cancelled {
		t.Errorf("Cancel = %+v, %v", s, err)
	}
	_, err = c.Cancel(t.Context(), "done1")
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Cancel of a finished scan: %v, want a conflict", err)
	}
	if _, err := c.Scan(t.Context(), ""); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Scan(\"\") = %v, want invalid", err)
	}
}

func TestScans(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/scans", func(w http.ResponseWriter, r *http.Request) {
		want := "after=s0&digest=" + digest + "&image=nginx%3A1.25&limit=5&status=queued%2Crunning"
		if got := r.URL.Query().Encode(); got != strings.ReplaceAll(want, ":", "%3A") {
			apiError(w, http.StatusBadRequest, "invalid_argument", "query "+got)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"scans": []scans.Scan{{ID: "s1", Status: scans.Queued}, {ID: "s2", Status: scans.Pulling}},
			"next":  "s2",
		})
	})
	c := newClient(t, serve(t, mux))
	list, next, err := c.Scans(t.Context(), scans.Filter{
		Status: []scans.Status{scans.Queued, "running"}, Image: "nginx:1.25", Digest: digest, After: "s0", Limit: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].ID != "s2" || next != "s2" {
		t.Errorf("Scans = %+v, %q", list, next)
	}
}

const rawReport = `{"image":"nginx:1.25","digest":"sha256:abababababababababababababababababababababababababababababababab","platform":"linux/amd64","scanned_at":"2025-03-01T12:00:00Z","verdict":"unhealthy","summary":{"critical":1,"high":0,"medium":0,"low":0,"negligible":0,"unknown":0},"packages":[],"findings":[{"id":"CVE-1","aliases":[],"package":{"ecosystem":"deb","name":"openssl","version":"1"},"severity":"critical","summary":"bad"}],"analyzers":[{"name":"dpkg","version":"1","status":"ok"}],"scan_id":"s1","added_later":{"x":1}}`

func TestReports(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/reports/{digest}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("digest") != digest {
			apiError(w, http.StatusNotFound, "not_found", "no report for "+r.PathValue("digest"))
			return
		}
		io.WriteString(w, rawReport)
	})
	mux.HandleFunc("GET /v1/reports/{digest}/history", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"reports":[%s,%s]}`, rawReport, rawReport)
	})
	mux.HandleFunc("GET /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("image") != "nginx:1.25" {
			apiError(w, http.StatusNotFound, "not_found", "no report for "+r.URL.Query().Get("image"))
			return
		}
		io.WriteString(w, rawReport)
	})
	c := newClient(t, serve(t, mux))
	ctx := t.Context()

	r, err := c.Report(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != report.Unhealthy || r.Summary.Critical != 1 || len(r.Findings) != 1 || r.Findings[0].Package.Name != "openssl" {
		t.Errorf("Report = %+v", r)
	}
	raw, err := c.ReportJSON(ctx, digest)
	if err != nil || string(raw) != rawReport {
		t.Errorf("ReportJSON = %s, %v; want the body unchanged", raw, err)
	}
	r, err = c.ReportForImage(ctx, "nginx:1.25")
	if err != nil || r.ScanID != "s1" {
		t.Errorf("ReportForImage = %+v, %v", r, err)
	}
	h, err := c.ReportHistory(ctx, digest)
	if err != nil || len(h) != 2 {
		t.Errorf("ReportHistory = %d reports, %v", len(h), err)
	}
	_, err = c.Report(ctx, "sha256:00")
	if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "assayd: no report for sha256:00 (not_found)" {
		t.Errorf("Report of an unknown digest: %v", err)
	}
}

func TestHealth(t *testing.T) {
	var mu sync.Mutex
	up := true
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			if r.Header.Get("X-Test") == "bare" {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "version": "0.1.0"})
				return
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "version": "0.1.0",
				"error": scans.ErrorBody{Code: "unavailable", Message: "vulnerability database not loaded"}})
			return
		}
		io.WriteString(w, `{"status":"ok","version":"0.1.0","uptime_seconds":90,"queue":{"queued":3,"running":1},"analyzers":[{"name":"builtin","version":"0.2.0","extractors":["dpkg"]}]}`)
	})
	c := newClient(t, serve(t, mux))
	h, err := c.Health(t.Context())
	want := client.Health{Status: "ok", Version: "0.1.0", UptimeSeconds: 90, Queue: client.QueueStats{Queued: 3, Running: 1},
		Analyzers: []client.AnalyzerInfo{{Name: "builtin", Version: "0.2.0", Extractors: []string{"dpkg"}}}}
	if err != nil || !reflect.DeepEqual(h, want) {
		t.Errorf("Health = %+v, %v; want %+v", h, err, want)
	}
	mu.Lock()
	up = false
	mu.Unlock()
	h, err = c.Health(t.Context())
	if !errors.Is(err, errdefs.ErrUnavailable) || h.Status != "unavailable" || err.Error() != "assayd: vulnerability database not loaded (unavailable)" {
		t.Errorf("Health when unavailable = %+v, %v", h, err)
	}
	// The same through a proxy that strips the error: the status still says it.
	bare := http.NewServeMux()
	bare.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("X-Test", "bare")
		mux.ServeHTTP(w, r)
	})
	h, err = newClient(t, serve(t, bare)).Health(t.Context())
	if !errors.Is(err, errdefs.ErrUnavailable) || h.Status != "starting" || err.Error() != "assayd: assayd reports status starting (unavailable)" {
		t.Errorf("Health when unavailable, bare body = %+v, %v", h, err)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		code     string
		sentinel error
		msg      string
	}{
		{404, `{"error":{"code":"not_found","message":"scan x not found"}}`, "not_found", errdefs.ErrNotFound, "assayd: scan x not found (not_found)"},
		{400, `{"error":{"code":"invalid_argument","message":"bad ref"}}`, "invalid_argument", errdefs.ErrInvalid, "assayd: bad ref (invalid_argument)"},
		{409, `{"error":{"code":"conflict","message":"done"}}`, "conflict", errdefs.ErrConflict, "assayd: done (conflict)"},
		{503, `{"error":{"code":"unavailable","message":"queue full"}}`, "unavailable", errdefs.ErrUnavailable, "assayd: queue full (unavailable)"},
		{403, `{"error":{"code":"permission_denied","message":"read only"}}`, "permission_denied", errdefs.ErrDenied, "assayd: read only (permission_denied)"},
		{500, `{"error":{"code":"internal","message":"boom"}}`, "internal", nil, "assayd: boom (internal)"},
		{413, `{"error":{"code":"payload_too_large","message":"too big"}}`, "payload_too_large", nil, "assayd: too big (payload_too_large)"},
		// Bodies that are not the API's error object: the status decides.
		{404, "404 page not found\n", "not_found", errdefs.ErrNotFound, "assayd: 404 page not found (not_found)"},
		{502, "", "internal", nil, "assayd: Bad Gateway (internal)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.code), func(t *testing.T) {
			sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			_, err := newClient(t, sock).Scan(t.Context(), "x")
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v (%T), want *client.APIError", err, err)
			}
			if apiErr.Status != tt.status || apiErr.Code != tt.code || err.Error() != tt.msg {
				t.Errorf("err = %+v %q, want status %d code %s %q", apiErr, err, tt.status, tt.code, tt.msg)
			}
			for _, s := range []error{errdefs.ErrNotFound, errdefs.ErrInvalid, errdefs.ErrConflict, errdefs.ErrUnavailable, errdefs.ErrDenied} {
				if got, want := errors.Is(err, s), s == tt.sentinel; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", s, got, want)
				}
			}
		})
	}
}

func TestBadResponse(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>not json</html>")
	}))
	_, err := newClient(t, sock).Scan(t.Context(), "x")
	if err == nil || !strings.Contains(err.Error(), "client: GET /v1/scans/x: decode response") {
		t.Errorf("err = %v, want a decode error", err)
	}
}

func TestTimeout(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	c := newClient(t, sock, client.WithTimeout(50*time.Millisecond))
	_, err := c.Scan(t.Context(), "x")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "assayd did not answer within 50ms") {
		t.Errorf("err = %v, want a timeout", err)
	}
	_, err = c.Events(t.Context(), client.EventFilter{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Events err = %v, want a timeout", err)
	}
}

func TestUnreachable(t *testing.T) {
	dir, err := os.MkdirTemp("", "assay-client")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "assayd.sock")
	_, err = newClient(t, sock).Health(t.Context())
	want := "cannot reach assayd at " + sock + ": connect: no such file or directory (is assayd running? set --socket or ASSAY_SOCKET)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("err = %v, want unavailable and ENOENT", err)
	}

	// A socket nobody listens on any more.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	_, err = newClient(t, sock).Health(t.Context())
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused (is assayd running?") {
		t.Errorf("err = %v, want connection refused", err)
	}
}

func TestConnectErrorDenied(t *testing.T) {
	// Built by hand: tests may run as root, which connect(2) never refuses.
	err := error(&client.ConnectError{
		Socket: "/run/assay/assayd.sock",
		Err:    &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)},
	})
	want := "cannot reach assayd at /run/assay/assayd.sock: connect: permission denied (you must be root or in the group that owns the socket)"
	if err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, errdefs.ErrDenied) || errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("errors.Is: want denied only")
	}
}

func TestEvents(t *testing.T) {
	lines := []string{
		`{"type":"scan","time":"2025-03-01T12:00:00Z","scan":{"id":"s1","image":"nginx:1.25","status":"pulling","attempts":1,"created_at":"2025-03-01T12:00:00Z","updated_at":"2025-03-01T12:00:00Z"}}`,
		`{"type":"report","time":"2025-03-01T12:00:05Z","report":` + rawReport + `}`,
		`{"type":"error","time":"2025-03-01T12:00:06Z","error":{"code":"slow_consumer","message":"the client fell behind the event stream and was dropped"}}`,
	}
	query := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		query <- r.URL.RawQuery
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, l := range lines {
			io.WriteString(w, l+"\n")
			w.(http.Flusher).Flush()
		}
	})
	c := newClient(t, serve(t, mux))
	st, err := c.Events(t.Context(), client.EventFilter{MinSeverity: report.High, Verdict: report.Unhealthy, Image: "nginx:1.25", Type: "report"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if q, want := <-query, "image=nginx%3A1.25&min_severity=high&type=report&verdict=unhealthy"; q != want {
		t.Errorf("query = %s, want %s", q, want)
	}

	ev, err := st.Next()
	if err != nil || ev.Type != "scan" || ev.Scan == nil || ev.Scan.Status != scans.Pulling || !ev.Time.Equal(t0) {
		t.Fatalf("first event = %+v, %v", ev, err)
	}
	if string(st.Raw()) != lines[0] {
		t.Errorf("Raw = %s, want %s", st.Raw(), lines[0])
	}
	ev, err = st.Next()
	if err != nil || ev.Type != "report" || ev.Report == nil || ev.Report.Verdict != report.Unhealthy {
		t.Fatalf("second event = %+v, %v", ev, err)
	}
	_, err = st.Next()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "slow_consumer" || !errors.Is(err, errdefs.ErrUnavailable) ||
		err.Error() != "client: events: assayd: the client fell behind the event stream and was dropped (slow_consumer)" {
		t.Fatalf("third Next = %v, want the server's error", err)
	}
	if _, again := st.Next(); again != err {
		t.Errorf("Next after the error = %v, want the same error", again)
	}
}

func TestEventsEOFAndClose(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"type":"scan","time":"2025-03-01T12:00:00Z"}`+"\n")
		if r.URL.Query().Get("image") == "hold" {
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	})
	c := newClient(t, serve(t, mux))

	st, err := c.Events(t.Context(), client.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != io.EOF {
		t.Errorf("Next at the end = %v, want io.EOF", err)
	}
	st.Close()

	// Close unblocks a reader waiting for the next line.
	st, err = c.Events(t.Context(), client.EventFilter{Image: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := st.Next(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	st.Close()
	st.Close()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Next after Close = %v, want canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after Close")
	}

	// An error status before the stream starts.
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusBadRequest, "invalid_argument", "bad min_severity")
	}))
	if _, err := newClient(t, sock).Events(t.Context(), client.EventFilter{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Events = %v, want invalid", err)
	}
}

func TestWait(t *testing.T) {
	seq := []scans.Status{scans.Queued, scans.Queued, scans.Pulling, scans.Analyzing, scans.Analyzing, scans.Matching, scans.Done}
	var mu sync.Mutex
	n := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/scans/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st := seq[min(n, len(seq)-1)]
		n++
		mu.Unlock()
		if r.PathValue("id") == "stuck" {
			st = scans.Queued
		}
		writeJSON(w, http.StatusOK, scans.Scan{ID: r.PathValue("id"), Status: st})
	})
	c := newClient(t, serve(t, mux))

	var seen []scans.Status
	s, err := c.Wait(t.Context(), "s1", time.Millisecond, func(s scans.Scan) { seen = append(seen, s.Status) })
	if err != nil || s.Status != scans.Done {
		t.Fatalf("Wait = %+v, %v", s, err)
	}
	want := []scans.Status{scans.Queued, scans.Pulling, scans.Analyzing, scans.Matching, scans.Done}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("progress saw %v, want %v", seen, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	s, err = c.Wait(ctx, "stuck", time.Millisecond, nil)
	if !errors.Is(err, context.DeadlineExceeded) || s.Status != scans.Queued {
		t.Errorf("Wait past the deadline = %+v, %v", s, err)
	}
}
