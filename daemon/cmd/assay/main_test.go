package main

import (
	"bytes"
	"encoding/json"
	"flag"
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
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	digest = "sha256:" + strings.Repeat("ab", 32)
)

// fakeDaemon is a hand-written stand-in for assayd's API: canned answers
// per route, and the requests it saw.
type fakeDaemon struct {
	mu sync.Mutex
	// polls are the successive answers of GET /v1/scans/{id}; the last repeats.
	polls []scans.Scan
	n     int
	// reports are raw report bodies by digest and by image reference.
	reports map[string]string
	// events are the raw lines of GET /v1/events.
	events    []string
	list      []scans.Scan
	submitted []scans.Request
	queries   []string
}

func (f *fakeDaemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/scans", func(w http.ResponseWriter, r *http.Request) {
		var req scans.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			apiError(w, http.StatusBadRequest, "invalid_argument", err.Error())
			return
		}
		f.mu.Lock()
		f.submitted = append(f.submitted, req)
		f.mu.Unlock()
		s := scans.Scan{ID: "scan-1", Image: req.Image, Platform: req.Platform, Status: scans.Queued, CreatedAt: t0, UpdatedAt: t0}
		writeJSONBody(w, http.StatusAccepted, struct {
			scans.Scan
			Deduplicated bool `json:"deduplicated"`
		}{s, false})
	})
	mux.HandleFunc("GET /v1/scans/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.polls) == 0 {
			apiError(w, http.StatusNotFound, "not_found", "scan "+r.PathValue("id")+" not found")
			return
		}
		s := f.polls[min(f.n, len(f.polls)-1)]
		f.n++
		writeJSONBody(w, http.StatusOK, s)
	})
	mux.HandleFunc("GET /v1/scans", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.queries = append(f.queries, r.URL.RawQuery)
		writeJSONBody(w, http.StatusOK, map[string]any{"scans": f.list, "next": "scan-9"})
	})
	mux.HandleFunc("DELETE /v1/scans/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "done-1" {
			apiError(w, http.StatusConflict, "conflict", "scan done-1 is already done")
			return
		}
		writeJSONBody(w, http.StatusOK, scans.Scan{ID: r.PathValue("id"), Status: scans.Cancelled})
	})
	mux.HandleFunc("GET /v1/reports/{digest}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		f.mu.Unlock()
		if ft := r.URL.Query().Get("format"); ft != "" && ft != "json" {
			// A stand-in for the document assayd writes.
			io.WriteString(w, `{"document":"`+ft+`","scan":"`+r.URL.Query().Get("scan")+`"}`+"\n")
			return
		}
		f.serveReport(w, r.PathValue("digest"))
	})
	mux.HandleFunc("GET /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		f.serveReport(w, r.URL.Query().Get("image"))
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		lines := f.events
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, l := range lines {
			io.WriteString(w, l+"\n")
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"ok","version":"1.2.3","uptime_seconds":3723,"queue":{"queued":2,"running":1},"analyzers":[{"name":"builtin","version":"0.2.0","extractors":["dpkg","npm"]},{"name":"example","version":"0.1.0"}]}`)
	})
	return mux
}

// query is the i-th query string seen by the listing and event routes.
func (f *fakeDaemon) query(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.queries) {
		return ""
	}
	return f.queries[i]
}

func (f *fakeDaemon) serveReport(w http.ResponseWriter, key string) {
	f.mu.Lock()
	raw, ok := f.reports[key]
	f.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not_found", "no report for "+key)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, raw)
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSONBody(w, status, map[string]any{"error": scans.ErrorBody{Code: code, Message: msg}})
}

// serve runs f on a Unix socket in a short temporary directory (socket
// paths are limited to 108 bytes) and returns the socket's path.
func serve(t *testing.T, f *fakeDaemon) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "assay-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f.handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return sock
}

// runCLI runs the CLI against the socket and returns its exit code and
// output.
func runCLI(t *testing.T, sock string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"--socket", sock}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// testReport builds a report body; extra is spliced in as a field this CLI
// does not know, to check that -o json passes it on.
func testReport(verdict report.Verdict, extra string) string {
	r := report.Report{
		Image: "registry.test/app:1", Digest: digest, Platform: "linux/amd64", ScannedAt: t0,
		Verdict: verdict, ScanID: "scan-1",
		Packages: []report.Package{
			{Ecosystem: "deb", Name: "openssl", Version: "3.0.11-1", Locations: []string{"/var/lib/dpkg/status"}},
			{Ecosystem: "deb", Name: "zlib1g", Version: "1:1.2.13", Locations: []string{"/var/lib/dpkg/status"}},
			{Ecosystem: "npm", Name: "lodash", Version: "4.17.20", Locations: []string{"/app/package-lock.json"}},
		},
		Findings: []report.Finding{
			{ID: "GHSA-35jh-r3h4-6jhm", Package: report.PackageRef{Ecosystem: "npm", Name: "lodash", Version: "4.17.20"}, Severity: report.High, FixedVersion: "4.17.21", Summary: "Command injection in lodash"},
			{ID: "CVE-2023-5678", Package: report.PackageRef{Ecosystem: "deb", Name: "openssl", Version: "3.0.11-1"}, Severity: report.Medium, Summary: "Excessive time spent in DH check / generation with large Q parameter value, which is a long summary"},
			{ID: "CVE-2024-0727", Package: report.PackageRef{Ecosystem: "deb", Name: "openssl", Version: "3.0.11-1"}, Severity: report.Critical, FixedVersion: "3.0.13-1", Summary: "PKCS12 NULL\tdereference"},
			{ID: "CVE-2023-6129", Package: report.PackageRef{Ecosystem: "deb", Name: "openssl", Version: "3.0.11-1"}, Severity: report.High, FixedVersion: "3.0.13-1", Summary: "POLY1305 MAC corrupts vector registers"},
		},
		Analyzers: []report.Analyzer{
			{Name: "npm", Version: "0.1.0", Status: report.AnalyzerOK},
			{Name: "dpkg", Version: "0.1.0", Status: report.AnalyzerOK},
		},
	}
	for _, f := range r.Findings {
		r.Summary.Add(f.Severity)
	}
	if verdict == report.Incomplete {
		r.Analyzers[0] = report.Analyzer{Name: "npm", Version: "0.1.0", Status: report.AnalyzerTimeout, Error: "deadline of 2m0s exceeded"}
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	if extra != "" {
		b = append(b[:len(b)-1], ","+extra+"}"...)
	}
	return string(b)
}

// progression is a scan that goes from queued to status.
func progression(final scans.Status, verdict report.Verdict, errMsg string) []scans.Scan {
	s := scans.Scan{ID: "scan-1", Image: "registry.test/app:1", Status: scans.Queued, CreatedAt: t0, UpdatedAt: t0}
	var out []scans.Scan
	for _, st := range []scans.Status{scans.Queued, scans.Queued, scans.Pulling, scans.Analyzing, scans.Analyzing, scans.Matching} {
		s.Status = st
		out = append(out, s)
	}
	s.Status, s.Error, s.Verdict = final, errMsg, verdict
	if final == scans.Done {
		s.Digest = digest
	}
	return append(out, s)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestScanWaitTable(t *testing.T) {
	f := &fakeDaemon{
		polls:   progression(scans.Done, report.Unhealthy, ""),
		reports: map[string]string{digest: testReport(report.Unhealthy, "")},
	}
	sock := serve(t, f)
	code, stdout, stderr := runCLI(t, sock, "scan", "registry.test/app:1", "--platform", "linux/amd64", "--wait", "--poll-interval", "1ms")
	if code != codeOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	f.mu.Lock()
	if len(f.submitted) != 1 || !reflect.DeepEqual(f.submitted[0], scans.Request{Image: "registry.test/app:1", Platform: "linux/amd64"}) {
		t.Errorf("submitted %+v", f.submitted)
	}
	f.mu.Unlock()
	// Not a terminal: one progress line per status change.
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var statuses []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "scan scan-1 registry.test/app:1: ") {
			t.Errorf("progress line %q", l)
			continue
		}
		statuses = append(statuses, strings.Fields(l)[3])
	}
	if got := strings.Join(statuses, " "); got != "queued pulling analyzing matching done" {
		t.Errorf("progress statuses %q, want each change once", got)
	}
	golden(t, "scan-wait.golden", stdout)
}

func TestProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true, now: func() time.Time { return t0 }, start: t0}
	p.update(scans.Scan{ID: "s", Image: "img", Status: scans.Analyzing, Attempts: 2})
	p.update(scans.Scan{ID: "s", Image: "img", Status: scans.Done})
	p.done()
	want := "\rscan s img: analyzing (attempt 2) [0s]" + "\rscan s img: done [0s]" + strings.Repeat(" ", len(" (attempt 2)")+len("analyzing")-len("done")) + "\n"
	if buf.String() != want {
		t.Errorf("terminal progress %q, want %q", buf.String(), want)
	}
}

func TestScanFailOnUnhealthy(t *testing.T) {
	f := &fakeDaemon{
		polls:   progression(scans.Done, report.Unhealthy, ""),
		reports: map[string]string{digest: testReport(report.Unhealthy, "")},
	}
	sock := serve(t, f)
	code, stdout, stderr := runCLI(t, sock, "scan", "registry.test/app:1", "--wait", "--poll-interval", "1ms", "--fail-on-unhealthy", "-o", "json")
	if code != codeUnhealthy {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, codeUnhealthy, stderr)
	}
	if !strings.Contains(stderr, "assay: verdict for "+digest+" is unhealthy: 1 critical, 2 high, 1 medium\n") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if !json.Valid([]byte(stdout)) {
		t.Errorf("stdout is not the report JSON:\n%s", stdout)
	}
}

func TestScanFailedOrCancelled(t *testing.T) {
	for _, st := range []scans.Status{scans.Failed, scans.Cancelled} {
		t.Run(string(st), func(t *testing.T) {
			f := &fakeDaemon{polls: progression(st, "", "pull registry.test/app:1: manifest unknown")}
			code, stdout, stderr := runCLI(t, serve(t, f), "scan", "registry.test/app:1", "--wait", "--poll-interval", "1ms")
			if code != codeScanFailed {
				t.Errorf("exit %d, want %d", code, codeScanFailed)
			}
			want := fmt.Sprintf("assay: scan scan-1 of registry.test/app:1 %s: pull registry.test/app:1: manifest unknown\n", st)
			if !strings.HasSuffix(stderr, want) || stdout != "" {
				t.Errorf("stdout %q, stderr:\n%s\nwant it to end with %q", stdout, stderr, want)
			}
		})
	}
}

func TestScanNoWait(t *testing.T) {
	sock := serve(t, &fakeDaemon{})
	code, stdout, _ := runCLI(t, sock, "scan", "registry.test/app:1")
	if code != codeOK || stdout != "scan-1 queued\n" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, sock, "scan", "registry.test/app:1", "-o", "json")
	var got map[string]any
	if code != codeOK || json.Unmarshal([]byte(stdout), &got) != nil || got["id"] != "scan-1" || got["deduplicated"] != false {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

func TestReport(t *testing.T) {
	extra := `"added_later":{"b":1,"a":[true]}`
	raw := testReport(report.Unhealthy, extra)
	f := &fakeDaemon{reports: map[string]string{
		digest:                       raw,
		"registry.test/app:1":        raw,
		"registry.test/incomplete:1": testReport(report.Incomplete, ""),
	}}
	sock := serve(t, f)

	t.Run("json passes through", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, sock, "report", digest, "-o", "json")
		var want bytes.Buffer
		json.Indent(&want, []byte(raw), "", "  ")
		want.WriteByte('\n')
		if code != codeOK || stdout != want.String() {
			t.Errorf("exit %d, stderr %s\nstdout:\n%s\nwant:\n%s", code, stderr, stdout, want.String())
		}
	})
	t.Run("table by image", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, sock, "report", "registry.test/app:1")
		if code != codeOK {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		golden(t, "scan-wait.golden", stdout)
	})
	t.Run("fail on unhealthy", func(t *testing.T) {
		if code, _, _ := runCLI(t, sock, "report", digest, "--fail-on-unhealthy"); code != codeUnhealthy {
			t.Errorf("exit %d, want %d", code, codeUnhealthy)
		}
		if code, _, _ := runCLI(t, sock, "report", digest, "--fail-on-incomplete"); code != codeOK {
			t.Errorf("exit %d, want %d: the verdict is unhealthy, not incomplete", code, codeOK)
		}
	})
	t.Run("fail on incomplete", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, sock, "report", "registry.test/incomplete:1", "--fail-on-incomplete", "--fail-on-unhealthy")
		if code != codeIncomplete || !strings.Contains(stderr, "is incomplete: npm timeout") {
			t.Errorf("exit %d, want %d; stderr %s", code, codeIncomplete, stderr)
		}
		if !strings.Contains(stdout, "npm   0.1.0    timeout  deadline of 2m0s exceeded\n") {
			t.Errorf("analyzers table:\n%s", stdout)
		}
	})
	t.Run("not found", func(t *testing.T) {
		code, _, stderr := runCLI(t, sock, "report", "sha256:"+strings.Repeat("0", 64))
		if code != codeError || stderr != "assay: assayd: no report for sha256:"+strings.Repeat("0", 64)+" (not_found)\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	// Nothing listens here: a usage error must not need assayd.
	sock := filepath.Join(t.TempDir(), "none.sock")
	tests := [][]string{
		{"scan"},
		{"scan", "a", "b"},
		{"scan", "img", "--bogus"},
		{"scan", "img", "-o", "yaml"},
		{"scan", "img", "--fail-on-unhealthy"},
		{"scan", "img", "--wait", "--poll-interval", "0s"},
		{"status", "a", "b"},
		{"status", "scan-1", "--status", "queued"},
		{"status", "--status", "sleeping"},
		{"status", "--limit", "-1"},
		{"cancel"},
		{"report"},
		{"watch", "--min-severity", "dire"},
		{"watch", "--verdict", "fine"},
		{"watch", "--type", "both"},
		{"watch", "extra"},
		{"health", "-o", "xml"},
		{"frobnicate"},
		{"--timeout", "-1s", "health"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, sock, args...)
			if code != codeUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, codeUsage, stderr)
			}
			if !strings.HasPrefix(stderr, "assay: ") || !strings.Contains(stderr, "--help' for usage.") || strings.Contains(stderr, "cannot reach") {
				t.Errorf("stderr:\n%s", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout:\n%s", stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, stdout, _ := runCLI(t, "/nonexistent", "--help")
	if code != codeOK || !strings.Contains(stdout, "Exit codes:\n  0  success") || !strings.Contains(stdout, "5  the verdict is incomplete") {
		t.Errorf("exit %d, help:\n%s", code, stdout)
	}
}

func TestUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "assayd.sock")
	code, _, stderr := runCLI(t, sock, "health")
	want := "assay: cannot reach assayd at " + sock + ": connect: no such file or directory (is assayd running? set --socket or ASSAY_SOCKET)\n"
	if code != codeError || stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
}

func TestSocketFromEnv(t *testing.T) {
	sock := serve(t, &fakeDaemon{})
	t.Setenv("ASSAY_SOCKET", sock)
	var out, errb bytes.Buffer
	if code := run([]string{"health"}, &out, &errb); code != codeOK {
		t.Errorf("exit %d, stderr %s", code, errb.String())
	}
}

func TestWatch(t *testing.T) {
	f := &fakeDaemon{events: []string{
		`{"type":"scan","time":"2025-03-01T12:00:00Z","scan":{"id":"scan-1","image":"registry.test/app:1","status":"pulling","attempts":1,"created_at":"2025-03-01T12:00:00Z","updated_at":"2025-03-01T12:00:00Z"}}`,
		`{"type":"scan","time":"2025-03-01T12:00:09Z","scan":{"id":"scan-1","image":"registry.test/app:1","status":"done","attempts":1,"created_at":"2025-03-01T12:00:00Z","updated_at":"2025-03-01T12:00:09Z","verdict":"unhealthy","summary":{"critical":1,"high":2,"medium":0,"low":0,"negligible":0,"unknown":0}}}`,
		`{"type":"report","time":"2025-03-01T12:00:09Z","report":` + testReport(report.Unhealthy, "") + `}`,
		`{"type":"error","time":"2025-03-01T12:00:10Z","error":{"code":"slow_consumer","message":"the client fell behind the event stream and was dropped; reconnect to resume"}}`,
	}}
	sock := serve(t, f)

	code, stdout, stderr := runCLI(t, sock, "watch", "--min-severity", "HIGH", "--verdict", "unhealthy", "--image", "registry.test/app:1", "--type", "report")
	if code != codeError {
		t.Errorf("exit %d, want %d", code, codeError)
	}
	if want := "assay: client: events: assayd: the client fell behind the event stream and was dropped; reconnect to resume (slow_consumer)\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	want := "2025-03-01T12:00:00Z  scan    registry.test/app:1  pulling  [scan scan-1]\n" +
		"2025-03-01T12:00:09Z  scan    registry.test/app:1  done unhealthy (1 critical, 2 high)  [scan scan-1]\n" +
		"2025-03-01T12:00:09Z  report  registry.test/app:1  unhealthy (1 critical, 2 high, 1 medium)  [" + digest + "]\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	if q := f.query(0); q != "image=registry.test%2Fapp%3A1&min_severity=high&type=report&verdict=unhealthy" {
		t.Errorf("query %s", q)
	}

	code, stdout, _ = runCLI(t, sock, "watch", "-o", "json")
	if code != codeError || stdout != strings.Join(f.events[:3], "\n")+"\n" {
		t.Errorf("exit %d, json stdout:\n%s", code, stdout)
	}

	// A stream that just ends is an error too: watch is meant to run until stopped.
	f.mu.Lock()
	f.events = f.events[:1]
	f.mu.Unlock()
	code, _, stderr = runCLI(t, sock, "watch")
	if code != codeError || stderr != "assay: assayd closed the event stream\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestStatus(t *testing.T) {
	f := &fakeDaemon{
		polls: []scans.Scan{{ID: "scan-1", Image: "registry.test/app:1", Digest: digest, Status: scans.Done, Attempts: 1,
			CreatedAt: t0, UpdatedAt: t0.Add(9 * time.Second), Verdict: report.Healthy, Summary: &report.Summary{}}},
		list: []scans.Scan{
			{ID: "scan-2", Image: "registry.test/b:2", Status: scans.Failed, Error: "pull: denied", CreatedAt: t0.Add(time.Minute), UpdatedAt: t0.Add(time.Minute)},
			{ID: "scan-1", Image: "registry.test/app:1", Status: scans.Done, Verdict: report.Healthy, CreatedAt: t0, UpdatedAt: t0},
		},
	}
	sock := serve(t, f)

	code, stdout, stderr := runCLI(t, sock, "status", "scan-1")
	if code != codeOK || !strings.Contains(stdout, "Status:    done\n") || !strings.Contains(stdout, "Findings:  0 (no findings)\n") {
		t.Errorf("exit %d, stderr %s, stdout:\n%s", code, stderr, stdout)
	}

	code, stdout, stderr = runCLI(t, sock, "status", "--status", "done,failed", "--image", "registry.test/app:1", "--limit", "2")
	if code != codeOK || stderr != "more scans follow: assay status --after scan-9\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if i1, i2 := strings.Index(stdout, "scan-1"), strings.Index(stdout, "scan-2"); i1 < 0 || i2 < i1 {
		t.Errorf("list not oldest first:\n%s", stdout)
	}
	if q := f.query(0); q != "image=registry.test%2Fapp%3A1&limit=2&status=done%2Cfailed" {
		t.Errorf("query %s", q)
	}

	// The table itself, with a fixed clock.
	var buf bytes.Buffer
	writeScanList(&buf, f.list, t0.Add(3*time.Hour))
	want := "ID      IMAGE                STATUS  VERDICT  AGE  UPDATED  ERROR\n" +
		"scan-2  registry.test/b:2    failed  -        2h   2h       pull: denied\n" +
		"scan-1  registry.test/app:1  done    healthy  3h   3h       -\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestCancel(t *testing.T) {
	sock := serve(t, &fakeDaemon{})
	if code, stdout, _ := runCLI(t, sock, "cancel", "scan-1"); code != codeOK || stdout != "scan-1 cancelled\n" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, sock, "cancel", "done-1"); code != codeError || stderr != "assay: assayd: scan done-1 is already done (conflict)\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestHealth(t *testing.T) {
	sock := serve(t, &fakeDaemon{})
	code, stdout, _ := runCLI(t, sock, "health")
	want := "Status:     ok\nVersion:    1.2.3\nUptime:     1h2m3s\nQueue:      2 queued, 1 running\nAnalyzers:  builtin 0.2.0 (dpkg, npm)\n            example 0.1.0\n"
	if code != codeOK || stdout != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", code, stdout, want)
	}
}

// scan's policy flags become the request's policy, as the API takes it;
// a malformed --ignore is a usage error and sends nothing.
func TestScanPolicyFlags(t *testing.T) {
	f := &fakeDaemon{polls: progression(scans.Done, report.Healthy, "")}
	sock := serve(t, f)
	code, _, stderr := runCLI(t, sock, "scan", "registry.test/app:1", "--min-severity", "high", "--only-fixed",
		"--ignore", "CVE-2023-4039=not reachable here", "--ignore", "GHSA-xvch-5gv4-984h = dev only")
	if code != codeOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	f.mu.Lock()
	got := f.submitted
	f.mu.Unlock()
	want := `{"min_severity":"high","only_fixed":true,"ignore":[{"id":"CVE-2023-4039","reason":"not reachable here"},{"id":"GHSA-xvch-5gv4-984h","reason":"dev only"}]}`
	if len(got) != 1 || string(got[0].Policy) != want {
		t.Fatalf("submitted %+v, want the policy %s", got, want)
	}

	for _, bad := range []string{"CVE-2023-4039", "=reason", "CVE-1= "} {
		code, _, stderr := runCLI(t, sock, "scan", "registry.test/app:1", "--ignore", bad)
		if code != codeUsage || !strings.Contains(stderr, "ID=REASON") {
			t.Errorf("--ignore %q: exit %d, stderr %q", bad, code, stderr)
		}
	}
	f.mu.Lock()
	if len(f.submitted) != 1 {
		t.Errorf("a malformed --ignore still sent a request: %d submitted", len(f.submitted))
	}
	f.mu.Unlock()
}

// scan --wait -o sarif prints the document assayd writes of that scan's
// report (and still applies --fail-on); without --wait a report format is
// a usage error.
func TestScanWaitFormat(t *testing.T) {
	f := &fakeDaemon{
		polls:   progression(scans.Done, report.Unhealthy, ""),
		reports: map[string]string{digest: testReport(report.Unhealthy, "")},
	}
	sock := serve(t, f)
	code, stdout, stderr := runCLI(t, sock, "scan", "registry.test/app:1", "--wait", "--poll-interval", "1ms", "-o", "sarif", "--fail-on-unhealthy")
	if code != codeUnhealthy || strings.TrimSpace(stdout) != `{"document":"sarif","scan":"scan-1"}` {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	f.mu.Lock()
	last := f.queries[len(f.queries)-1]
	f.mu.Unlock()
	if !strings.Contains(last, "format=sarif") || !strings.Contains(last, "scan=scan-1") {
		t.Errorf("the document was asked for with %q, want this scan's in sarif", last)
	}
	if code, _, stderr := runCLI(t, sock, "scan", "registry.test/app:1", "-o", "cyclonedx"); code != codeUsage || !strings.Contains(stderr, "needs --wait") {
		t.Errorf("-o cyclonedx without --wait: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, sock, "report", digest, "-o", "yaml"); code != codeUsage || !strings.Contains(stderr, "want table, json, sarif, cyclonedx, spdx") {
		t.Errorf("-o yaml: exit %d, %s", code, stderr)
	}
}
