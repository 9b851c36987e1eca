package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// self is the test process as a peer.
func self() Peer {
	return Peer{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), PID: int32(os.Getpid())}
}

// do serves one request in process, as if from the test process over the
// socket.
func do(t *testing.T, h http.Handler, method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	r = r.WithContext(withPeer(r.Context(), self()))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantError checks an error response: status, JSON content type, code, and
// that the message contains each of contains.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string, contains ...string) {
	t.Helper()
	if w.Code != status {
		t.Errorf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e errorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if e.Error.Code != code {
		t.Errorf("code = %q, want %q; message %q", e.Error.Code, code, e.Error.Message)
	}
	for _, c := range contains {
		if !strings.Contains(e.Error.Message, c) {
			t.Errorf("message %q does not contain %q", e.Error.Message, c)
		}
	}
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return v
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// serveUnix serves h on a Unix socket in a temporary directory, with
// ConnContext wired as the daemon does, and returns a client for it.
func serveUnix(t *testing.T, h http.Handler) *http.Client {
	t.Helper()
	c, _ := serveUnixSocket(t, h)
	return c
}

// serveUnixSocket is serveUnix, also returning the socket path.
func serveUnixSocket(t *testing.T, h http.Handler) (*http.Client, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Config.ConnContext = ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, sock
}

type authorizerFunc func(Peer) error

// Role implements Authorizer: an admin, unless f refuses.
func (f authorizerFunc) Role(p Peer) (Role, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return RoleAdmin, nil
}

func TestRoutesSorted(t *testing.T) {
	key := func(r route) string { return r.path + " " + r.method }
	if !slices.IsSortedFunc(routes, func(a, b route) int { return strings.Compare(key(a), key(b)) }) {
		t.Error("routes are not sorted by path, then method")
	}
	seen := map[string]bool{}
	for _, r := range routes {
		if seen[key(r)] {
			t.Errorf("duplicate route %s", key(r))
		}
		seen[key(r)] = true
	}
}

func TestUnixSocketPeerCredentials(t *testing.T) {
	var (
		mu  sync.Mutex
		got []Peer
	)
	auth := authorizerFunc(func(p Peer) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p)
		return nil
	})
	c := serveUnix(t, NewHandler(Options{Service: &fakeService{}, Authorizer: auth, Version: "test"}))
	resp, err := c.Get("http://assay/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]Peer{self()}, got); diff != "" {
		t.Errorf("peer (-want +got):\n%s", diff)
	}
}

func TestUnixSocketDefaultAuthorizerAllowsOwnUID(t *testing.T) {
	c := serveUnix(t, NewHandler(Options{Service: &fakeService{}}))
	resp, err := c.Get("http://assay/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
}

func TestUnixSocketDenied(t *testing.T) {
	deny := authorizerFunc(func(p Peer) error {
		return fmt.Errorf("%w: uid %d is not in group assay", errdefs.ErrDenied, p.UID)
	})
	c := serveUnix(t, NewHandler(Options{Service: &fakeService{}, Authorizer: deny}))
	for _, path := range []string{"/v1/health", "/v1/metrics", "/v1/scans", "/v1/nowhere"} {
		resp, err := c.Get("http://assay" + path)
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, recorded(t, resp), http.StatusForbidden, "permission_denied", fmt.Sprintf("uid %d", os.Getuid()), "group assay")
	}
}

// recorded turns a client response into a recorder, for wantError.
func recorded(t *testing.T, resp *http.Response) *httptest.ResponseRecorder {
	t.Helper()
	defer resp.Body.Close()
	w := httptest.NewRecorder()
	w.Code = resp.StatusCode
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	if _, err := io.Copy(w.Body, resp.Body); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestNoPeerCredentials(t *testing.T) {
	// Over TCP, ConnContext finds no credentials: every route is refused.
	srv := httptest.NewUnstartedServer(NewHandler(Options{Service: &fakeService{}}))
	srv.Config.ConnContext = ConnContext
	srv.Start()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}

	// In process, without a peer.
	w := httptest.NewRecorder()
	NewHandler(Options{Service: &fakeService{}}).ServeHTTP(w, httptest.NewRequest("GET", "/v1/health", nil))
	wantError(t, w, http.StatusForbidden, "permission_denied", "peer credentials")
}

func TestBrowserRequestsRejected(t *testing.T) {
	h := NewHandler(Options{Service: &fakeService{}})
	for _, hdr := range [][]string{
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-origin"},
		{"Referer", "http://evil.example/page"},
	} {
		t.Run(hdr[0], func(t *testing.T) {
			w := do(t, h, "GET", "/v1/health", nil, hdr...)
			wantError(t, w, http.StatusForbidden, "permission_denied", "browser")
		})
	}
}

func TestGroupAuthorizer(t *testing.T) {
	status := func(uid, groups string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("Name:\tcurl\nUid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid +
			"\nGid:\t100\t100\t100\t100\nGroups:\t" + groups + "\nNSpid:\t42\n")}
	}
	proc := fstest.MapFS{
		"42/status":   status("1000", "4 24 998 1000 "),
		"43/status":   status("1000", ""),
		"44/status":   status("2000", "998"), // pid reused by another user
		"45/status":   {Data: []byte("Name:\tx\nGroups:\tnot-a-number\nUid:\t1000\t1000\t1000\t1000\n")},
		"46/status":   {Data: []byte("Name:\tx\nGroups:\t998\n")}, // no Uid line
		"47/status":   status("1000", "997 998 999"),
		"48/status":   status("1000", "997"),
		"self/status": status("0", ""),
	}
	group := GroupAuthorizer{Groups: []RoleGroup{{GID: 998, Name: "assay", Role: RoleScan}}, SelfUID: 995, Proc: proc}
	roles := GroupAuthorizer{Groups: []RoleGroup{{GID: 997, Name: "readers", Role: RoleRead}, {GID: 998, Name: "assay", Role: RoleScan}, {GID: 999, Name: "admins", Role: RoleAdmin}}, SelfUID: 995, Proc: proc}
	noGroup := GroupAuthorizer{SelfUID: 995, Proc: proc}
	for _, tc := range []struct {
		name string
		a    GroupAuthorizer
		p    Peer
		want Role // 0: denied
	}{
		{"root", group, Peer{UID: 0, GID: 0, PID: 1}, RoleAdmin},
		{"root without group", noGroup, Peer{UID: 0, PID: 1}, RoleAdmin},
		{"self", group, Peer{UID: 995, GID: 995, PID: 2}, RoleAdmin},
		{"self without group", noGroup, Peer{UID: 995, GID: 995, PID: 2}, RoleAdmin},
		{"primary group", group, Peer{UID: 1000, GID: 998, PID: 99}, RoleScan},
		{"supplementary group", group, Peer{UID: 1000, GID: 100, PID: 42}, RoleScan},
		{"not a member", group, Peer{UID: 1000, GID: 100, PID: 43}, 0},
		{"pid reused by another uid", group, Peer{UID: 1000, GID: 100, PID: 44}, 0},
		{"unparsable groups", group, Peer{UID: 1000, GID: 100, PID: 45}, 0},
		{"no uid line", group, Peer{UID: 1000, GID: 100, PID: 46}, 0},
		{"process gone", group, Peer{UID: 1000, GID: 100, PID: 77}, 0},
		{"pid unknown", group, Peer{UID: 1000, GID: 100, PID: 0}, 0},
		{"other user without group", noGroup, Peer{UID: 1000, GID: 998, PID: 42}, 0},
		{"member of several: the highest", roles, Peer{UID: 1000, GID: 100, PID: 47}, RoleAdmin},
		{"reader", roles, Peer{UID: 1000, GID: 100, PID: 48}, RoleRead},
		{"admin by primary group", roles, Peer{UID: 1000, GID: 999, PID: 43}, RoleAdmin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Role(tc.p)
			if got != tc.want || (err == nil) != (tc.want > 0) {
				t.Fatalf("Role(%+v) = %v, %v; want %v", tc.p, got, err, tc.want)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, errdefs.ErrDenied) {
				t.Errorf("error %v does not wrap ErrDenied", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("uid %d", tc.p.UID)) {
				t.Errorf("error %q does not name the uid", err)
			}
			if len(tc.a.Groups) > 0 && !strings.Contains(err.Error(), "assay (gid 998)") {
				t.Errorf("error %q does not name the group", err)
			}
		})
	}
}

// roleAuthorizer gives every caller one role.
type roleAuthorizer Role

func (r roleAuthorizer) Role(Peer) (Role, error) { return Role(r), nil }

// Each route needs its role: a reader reads, a scanner scans and cancels
// its own scans, an admin imports, prunes, cancels any scan and scans
// with a policy of its own.
func TestRoles(t *testing.T) {
	svc := &fakeService{}
	as := func(r Role) http.Handler { return NewHandler(Options{Service: svc, Authorizer: roleAuthorizer(r)}) }
	submit := func(h http.Handler, body string) *httptest.ResponseRecorder {
		return do(t, h, "POST", "/v1/scans", strings.NewReader(body), "Content-Type", "application/json")
	}
	if w := do(t, as(RoleRead), "GET", "/v1/scans", nil); w.Code != http.StatusOK {
		t.Errorf("reader listing scans: %d", w.Code)
	}
	wantError(t, submit(as(RoleRead), `{"image":"r.test/a:1"}`), http.StatusForbidden, "permission_denied", "needs the scan role")
	wantError(t, do(t, as(RoleScan), "POST", "/v1/cache/prune", nil), http.StatusForbidden, "permission_denied", "needs the admin role")
	wantError(t, do(t, as(RoleScan), "POST", "/v1/db/import", strings.NewReader("x")), http.StatusForbidden, "permission_denied", "needs the admin role")
	// A policy of the scan's own: admins only.
	wantError(t, submit(as(RoleScan), `{"image":"r.test/a:1","policy":{"ignore":[{"path":"/**","reason":"hide it all"}]}}`), http.StatusForbidden, "permission_denied", "admin role")
	if w := submit(as(RoleAdmin), `{"image":"r.test/b:1","policy":{"min_severity":"high"}}`); w.Code != http.StatusAccepted {
		t.Errorf("admin with a policy: %d %s", w.Code, w.Body)
	}
	// The scanner's own scan (the API records the caller's uid) can be
	// cancelled by it; another's cannot.
	w := submit(as(RoleScan), `{"image":"r.test/c:1"}`)
	if w.Code != http.StatusAccepted {
		t.Fatalf("scanner submitting: %d %s", w.Code, w.Body)
	}
	svc.mu.Lock()
	last := svc.requests[len(svc.requests)-1]
	own := svc.scans[len(svc.scans)-1]
	svc.mu.Unlock()
	if last.SubmittedBy == nil || *last.SubmittedBy != self().UID {
		t.Fatalf("the request does not name its submitter: %+v", last)
	}
	other := uint32(4242)
	svc.mu.Lock()
	svc.scans[len(svc.scans)-1].SubmittedBy = last.SubmittedBy
	svc.scans = append(svc.scans, scans.Scan{ID: "theirs", Image: "r.test/d:1", Status: scans.Queued, SubmittedBy: &other})
	svc.mu.Unlock()
	if w := do(t, as(RoleScan), "DELETE", "/v1/scans/"+own.ID, nil); w.Code != http.StatusOK {
		t.Errorf("cancelling its own scan: %d %s", w.Code, w.Body)
	}
	wantError(t, do(t, as(RoleScan), "DELETE", "/v1/scans/theirs", nil), http.StatusForbidden, "permission_denied", "admin role")
	if w := do(t, as(RoleAdmin), "DELETE", "/v1/scans/theirs", nil); w.Code != http.StatusOK {
		t.Errorf("admin cancelling another's scan: %d %s", w.Code, w.Body)
	}
}

func TestSupplementaryGroupsRealProc(t *testing.T) {
	want, err := os.Getgroups()
	if err != nil {
		t.Skip(err)
	}
	got, err := GroupAuthorizer{}.supplementaryGroups(self())
	if err != nil {
		t.Fatalf("reading /proc: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("groups %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != uint32(want[i]) {
			t.Errorf("groups %v, want %v", got, want)
		}
	}
}

func TestServiceErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		kind   error
		status int
		code   string
	}{
		{errdefs.ErrNotFound, 404, "not_found"},
		{errdefs.ErrInvalid, 400, "invalid_argument"},
		{errdefs.ErrConflict, 409, "conflict"},
		{errdefs.ErrUnavailable, 503, "unavailable"},
		{errdefs.ErrDenied, 403, "permission_denied"},
		{errors.New("disk on fire"), 500, "internal"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			err := fmt.Errorf("store: get: %w", tc.kind)
			log, buf := debugLogger()
			h := NewHandler(Options{Service: &fakeService{err: err}, Logger: log})
			digest := "sha256:" + strings.Repeat("a", 64)
			for _, req := range []struct{ method, target, body string }{
				{"POST", "/v1/scans", `{"image":"alpine"}`},
				{"GET", "/v1/scans/x", ""},
				{"GET", "/v1/scans", ""},
				{"DELETE", "/v1/scans/x", ""},
				{"GET", "/v1/reports/" + digest, ""},
				{"GET", "/v1/reports/" + digest + "/history", ""},
				{"GET", "/v1/reports?image=alpine", ""},
			} {
				w := do(t, h, req.method, req.target, strings.NewReader(req.body))
				wantError(t, w, tc.status, tc.code)
				if e := decode[errorResponse](t, w); e.Error.Message != err.Error() {
					t.Errorf("%s %s: message %q, want %q", req.method, req.target, e.Error.Message, err.Error())
				}
			}
			logged := strings.Contains(buf.String(), `"level":"ERROR"`)
			if logged != (tc.status == 500) {
				t.Errorf("error logged = %v, want %v:\n%s", logged, tc.status == 500, buf)
			}
		})
	}
}

func TestSubmit(t *testing.T) {
	svc := &fakeService{}
	h := NewHandler(Options{Service: svc})
	for i, want := range []bool{false, true} {
		w := do(t, h, "POST", "/v1/scans", strings.NewReader(`{"image":"docker.io/library/alpine:3.20","platform":"linux/arm64"}`),
			"Content-Type", "application/json")
		if w.Code != http.StatusAccepted {
			t.Fatalf("submit %d: status %d: %s", i, w.Code, w.Body)
		}
		if loc := w.Header().Get("Location"); loc != "/v1/scans/scan-1" {
			t.Errorf("Location = %q", loc)
		}
		var got map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got["deduplicated"] != want || got["id"] != "scan-1" || got["status"] != "queued" || got["trigger"] != "api" {
			t.Errorf("submit %d: body %s", i, w.Body)
		}
	}
	uid := self().UID
	want := scans.Request{Image: "docker.io/library/alpine:3.20", Platform: "linux/arm64", Trigger: "api", SubmittedBy: &uid}
	if diff := cmp.Diff([]scans.Request{want, want}, svc.requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// A full queue answers 429 with Retry-After; the request is not taken.
func TestSubmitQueueFull(t *testing.T) {
	svc := &fakeService{err: fmt.Errorf("queue: 10 scans are queued (scan.max_queued 10); retry later: %w", errdefs.ErrBusy)}
	h := NewHandler(Options{Service: svc})
	w := do(t, h, "POST", "/v1/scans", strings.NewReader(`{"image":"docker.io/library/alpine:3.20"}`), "Content-Type", "application/json")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != RetryAfterBusy || !strings.Contains(w.Body.String(), "scan.max_queued") {
		t.Errorf("full queue: %d, Retry-After %q, %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

func TestSubmitRequestErrors(t *testing.T) {
	h := NewHandler(Options{Service: &fakeService{}, MaxBodyBytes: 64})
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		code                    string
		contains                string
	}{
		{"no content type", "", `{"image":"alpine"}`, 202, "", ""},
		{"json with charset", "application/json; charset=utf-8", `{"image":"alpine"}`, 202, "", ""},
		{"json upper case", "Application/JSON", `{"image":"alpine"}`, 202, "", ""},
		{"form", "application/x-www-form-urlencoded", `{"image":"alpine"}`, 415, "unsupported_media_type", "application/x-www-form-urlencoded"},
		{"text", "text/plain", `{"image":"alpine"}`, 415, "unsupported_media_type", "text/plain"},
		{"bad content type", ";;", `{"image":"alpine"}`, 415, "unsupported_media_type", ""},
		{"too large", "", `{"image":"` + strings.Repeat("a", 100) + `"}`, 413, "payload_too_large", "64 bytes"},
		{"too large after object", "", `{"image":"alpine"}` + strings.Repeat(" ", 100), 413, "payload_too_large", ""},
		{"empty", "", ``, 400, "invalid_argument", "empty"},
		{"malformed", "", `{"image":`, 400, "invalid_argument", "truncated"},
		{"syntax", "", `{"image" "alpine"}`, 400, "invalid_argument", "offset"},
		{"not an object", "", `["alpine"]`, 400, "invalid_argument", "object"},
		{"wrong type", "", `{"image":7}`, 400, "invalid_argument", `"image"`},
		{"unknown field", "", `{"image":"alpine","tag":"x"}`, 400, "invalid_argument", `unknown field "tag"`},
		{"trigger is not the caller's", "", `{"image":"alpine","trigger":"webhook"}`, 400, "invalid_argument", `unknown field "trigger"`},
		{"trailing object", "", `{"image":"alpine"}{}`, 400, "invalid_argument", "after the JSON object"},
		{"trailing garbage", "", `{"image":"alpine"} x`, 400, "invalid_argument", "after the JSON object"},
		{"missing image", "", `{"platform":"linux/amd64"}`, 400, "invalid_argument", "image is required"},
		{"blank image", "", `{"image":"  "}`, 400, "invalid_argument", "image is required"},
		{"null", "", `null`, 400, "invalid_argument", "image is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.contentType != "" {
				hdr = []string{"Content-Type", tc.contentType}
			}
			w := do(t, h, "POST", "/v1/scans", strings.NewReader(tc.body), hdr...)
			if tc.code == "" {
				if w.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
				}
				return
			}
			wantError(t, w, tc.status, tc.code, tc.contains)
		})
	}
}

func TestRouting(t *testing.T) {
	h := NewHandler(Options{Service: &fakeService{}})
	for _, tc := range []struct {
		method, target string
		status         int
		code, allow    string
	}{
		{"GET", "/", 404, "not_found", ""},
		{"GET", "/v1", 404, "not_found", ""},
		{"GET", "/v1/nowhere", 404, "not_found", ""},
		{"GET", "/v2/health", 404, "not_found", ""},
		{"GET", "/v1/reports/", 404, "not_found", ""},
		{"GET", "/v1/scans/x/y", 404, "not_found", ""},
		{"PUT", "/v1/scans", 405, "method_not_allowed", "GET, POST"},
		{"DELETE", "/v1/scans", 405, "method_not_allowed", "GET, POST"},
		{"POST", "/v1/scans/x", 405, "method_not_allowed", "DELETE, GET"},
		{"POST", "/v1/health", 405, "method_not_allowed", "GET"},
		{"HEAD", "/v1/health", 405, "method_not_allowed", "GET"},
		{"HEAD", "/v1/events", 405, "method_not_allowed", "GET"},
		{"PATCH", "/v1/reports/sha256:aa/history", 405, "method_not_allowed", "GET"},
	} {
		t.Run(tc.method+tc.target, func(t *testing.T) {
			w := do(t, h, tc.method, tc.target, nil)
			if tc.method == "HEAD" {
				// No body in a HEAD response; check the status only.
				if w.Code != tc.status || w.Header().Get("Allow") != tc.allow {
					t.Errorf("status %d Allow %q, want %d %q", w.Code, w.Header().Get("Allow"), tc.status, tc.allow)
				}
				return
			}
			wantError(t, w, tc.status, tc.code)
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestUnknownQueryParameters(t *testing.T) {
	h := NewHandler(Options{Service: &fakeService{}})
	for _, target := range []string{
		"/v1/scans?stauts=done",
		"/v1/scans?limit=1&limit=2",
		"/v1/scans/x?verbose=1",
		"/v1/health?x=1",
		"/v1/events?severity=high",
		"/v1/reports?image=a&digest=b",
		"/v1/scans?%zz",
	} {
		w := do(t, h, "GET", target, nil)
		wantError(t, w, 400, "invalid_argument")
	}
}

func TestListScans(t *testing.T) {
	svc := &fakeService{next: "scan-2", scans: []scans.Scan{
		{ID: "scan-1", Image: "a", Status: scans.Done, CreatedAt: t0, UpdatedAt: t0},
		{ID: "scan-2", Image: "b", Status: scans.Queued, CreatedAt: t0, UpdatedAt: t0},
	}}
	h := NewHandler(Options{Service: svc})

	w := do(t, h, "GET", "/v1/scans?status=queued,done&status=failed&image=REF&digest=sha256:d&limit=2&after=scan-0", nil)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := decode[listResponse](t, w)
	if len(got.Scans) != 2 || got.Next != "scan-2" {
		t.Errorf("body %s", w.Body)
	}
	wantFilter := scans.Filter{
		Status: []scans.Status{scans.Queued, scans.Done, scans.Failed},
		Image:  "REF", Digest: "sha256:d", After: "scan-0", Limit: 2,
	}
	if diff := cmp.Diff(wantFilter, svc.filters[0]); diff != "" {
		t.Errorf("filter (-want +got):\n%s", diff)
	}

	// An empty page is [], not null.
	w = do(t, h, "GET", "/v1/scans?status=cancelled", nil)
	if !strings.Contains(w.Body.String(), `"scans":[]`) {
		t.Errorf("empty page: %s", w.Body)
	}

	for _, q := range []string{"status=bogus", "status=done,nope", "limit=0", "limit=1001", "limit=-1", "limit=ten", "limit="} {
		w := do(t, h, "GET", "/v1/scans?"+q, nil)
		wantError(t, w, 400, "invalid_argument", strings.Split(q, "=")[0])
	}
	for _, q := range []string{"limit=1", "limit=1000", ""} {
		if w := do(t, h, "GET", "/v1/scans?"+q, nil); w.Code != 200 {
			t.Errorf("%s: status %d", q, w.Code)
		}
	}
}

func TestScanAndCancel(t *testing.T) {
	svc := &fakeService{scans: []scans.Scan{
		{ID: "running", Image: "a", Status: scans.Analyzing},
		{ID: "done", Image: "b", Status: scans.Done},
	}}
	h := NewHandler(Options{Service: svc})

	w := do(t, h, "GET", "/v1/scans/running", nil)
	if w.Code != 200 || decode[scans.Scan](t, w).Status != scans.Analyzing {
		t.Errorf("get: %d %s", w.Code, w.Body)
	}
	wantError(t, do(t, h, "GET", "/v1/scans/missing", nil), 404, "not_found", "missing")

	w = do(t, h, "DELETE", "/v1/scans/running", nil)
	if w.Code != 200 || decode[scans.Scan](t, w).Status != scans.Cancelled {
		t.Errorf("cancel: %d %s", w.Code, w.Body)
	}
	wantError(t, do(t, h, "DELETE", "/v1/scans/done", nil), 409, "conflict")
	wantError(t, do(t, h, "DELETE", "/v1/scans/missing", nil), 404, "not_found")
}

func testReport(image, digest string, verdict report.Verdict, sum report.Summary) *report.Report {
	return &report.Report{
		Image: image, Digest: digest, Platform: "linux/amd64", ScannedAt: t0,
		Verdict: verdict, Summary: sum, ScanID: "scan-1",
		Packages:  []report.Package{{Ecosystem: "alpine", Name: "musl", Version: "1.2.5-r0", Locations: []string{"lib/apk/db/installed"}}},
		Findings:  []report.Finding{},
		Analyzers: []report.Analyzer{{Name: "apk", Version: "1", Status: report.AnalyzerOK}},
	}
}

func TestReports(t *testing.T) {
	d1 := "sha256:" + strings.Repeat("ab", 32)
	d2 := "sha512:" + strings.Repeat("0f", 64)
	old := testReport("alpine:3.19", d1, report.Unhealthy, report.Summary{High: 1})
	cur := testReport("alpine:3.20", d1, report.Healthy, report.Summary{})
	other := testReport("busybox", d2, report.Healthy, report.Summary{})
	h := NewHandler(Options{Service: &fakeService{reports: []*report.Report{old, cur, other}}})

	w := do(t, h, "GET", "/v1/reports/"+d1, nil)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if diff := cmp.Diff(cur, ptr(decode[report.Report](t, w))); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if w := do(t, h, "GET", "/v1/reports/"+d2, nil); w.Code != 200 {
		t.Errorf("sha512: status %d: %s", w.Code, w.Body)
	}
	wantError(t, do(t, h, "GET", "/v1/reports/sha256:"+strings.Repeat("0", 64), nil), 404, "not_found")

	w = do(t, h, "GET", "/v1/reports/"+d1+"/history", nil)
	if w.Code != 200 {
		t.Fatalf("history: status %d: %s", w.Code, w.Body)
	}
	hist := decode[historyResponse](t, w)
	if diff := cmp.Diff([]*report.Report{cur, old}, hist.Reports); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	w = do(t, h, "GET", "/v1/reports?image=alpine:3.19", nil)
	if w.Code != 200 || decode[report.Report](t, w).Verdict != report.Unhealthy {
		t.Errorf("by image: %d %s", w.Code, w.Body)
	}
	wantError(t, do(t, h, "GET", "/v1/reports?image=nothing", nil), 404, "not_found")
	wantError(t, do(t, h, "GET", "/v1/reports", nil), 400, "invalid_argument", "image is required")
	wantError(t, do(t, h, "GET", "/v1/reports?image=", nil), 400, "invalid_argument", "image is required")

	for _, bad := range []string{
		"sha256:abc",
		"sha256:" + strings.Repeat("AB", 32),
		"sha256:" + strings.Repeat("g", 64),
		"sha512:" + strings.Repeat("a", 64),
		"md5:" + strings.Repeat("a", 32),
		strings.Repeat("a", 64),
		"latest",
	} {
		wantError(t, do(t, h, "GET", "/v1/reports/"+bad, nil), 400, "invalid_argument", "digest")
		wantError(t, do(t, h, "GET", "/v1/reports/"+bad+"/history", nil), 400, "invalid_argument", "digest")
	}
}

func ptr[T any](v T) *T { return &v }

func TestHealth(t *testing.T) {
	svc := &fakeService{queued: 3, running: 1}
	var ready error
	h := NewHandler(Options{Service: svc, Version: "1.2.3", Ready: func() error { return ready },
		Analyzers: []AnalyzerInfo{{Name: "builtin", Version: "0.2.0", Extractors: []string{"dpkg", "os-release"}}}})

	w := do(t, h, "GET", "/v1/health", nil)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := decode[map[string]any](t, w)
	want := map[string]any{"status": "ok", "version": "1.2.3", "uptime_seconds": 0.0, "queue": map[string]any{"queued": 3.0, "running": 1.0},
		"analyzers": []any{map[string]any{"name": "builtin", "version": "0.2.0", "extractors": []any{"dpkg", "os-release"}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("health (-want +got):\n%s", diff)
	}

	ready = errors.New("vulnerability database not loaded")
	w = do(t, h, "GET", "/v1/health", nil)
	wantError(t, w, 503, "unavailable", "vulnerability database not loaded")
	if got := decode[healthResponse](t, w); got.Status != "unavailable" || got.Version != "1.2.3" {
		t.Errorf("unready: %s", w.Body)
	}

	ready = nil
	svc.err = fmt.Errorf("store: %w", errdefs.ErrUnavailable)
	w = do(t, h, "GET", "/v1/health", nil)
	wantError(t, w, 503, "unavailable", "store")
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "assay_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(7)
	w := do(t, NewHandler(Options{Service: &fakeService{}, Metrics: reg}), "GET", "/v1/metrics", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "assay_test_total 7") {
		t.Errorf("metrics: %d %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	wantError(t, do(t, NewHandler(Options{Service: &fakeService{}}), "GET", "/v1/metrics", nil), 404, "not_found", "metrics")
}

func TestRequestLog(t *testing.T) {
	log, buf := debugLogger()
	h := NewHandler(Options{Service: &fakeService{}, Logger: log})
	do(t, h, "GET", "/v1/scans/nope", nil)
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &rec); err != nil {
		t.Fatalf("log %q: %v", buf, err)
	}
	for k, v := range map[string]any{"level": "DEBUG", "method": "GET", "path": "/v1/scans/nope", "status": 404.0, "uid": float64(os.Getuid())} {
		if rec[k] != v {
			t.Errorf("log %s = %v, want %v", k, rec[k], v)
		}
	}
	if _, ok := rec["duration"]; !ok {
		t.Errorf("log has no duration: %v", rec)
	}
}

func TestNewHandlerNeedsService(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic without a Service")
		}
	}()
	NewHandler(Options{})
}
