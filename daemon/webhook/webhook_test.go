package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/scans"
)

const (
	testToken = "s3cret-webhook-token"
	// Digests of the manifest and layer in testdata/push-envelope.json.
	manifestDigest = "sha256:05b3abf2579a5eb66403cd78be557fd860633a1fe2103c7642030defe32c657f"
	indexDigest    = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
	eventsType     = "application/vnd.docker.distribution.events.v2+json"
)

var testRegistries = map[string]string{
	"registry.example.com:5000": "mirror.internal:5000",
	"127.0.0.1:18098":           "127.0.0.1:18098", // testdata/distribution-2.8-manifest-push.json
}

// fakeSubmitter is a queue in miniature: Submit dedupes queued scans by
// digest, Scanned reports digests marked finished.
type fakeSubmitter struct {
	mu         sync.Mutex
	calls      []scans.Request // every Submit call
	queued     map[string]scans.Scan
	scanned    map[string]bool
	submitErr  error
	scannedErr error
	// entered, if set, receives each request as Submit starts; release, if
	// set, is waited for (or ctx) before Submit answers.
	entered chan scans.Request
	release chan struct{}
}

var _ Submitter = (*fakeSubmitter)(nil)

func newFake() *fakeSubmitter {
	return &fakeSubmitter{queued: map[string]scans.Scan{}, scanned: map[string]bool{}}
}

func (f *fakeSubmitter) Submit(ctx context.Context, req scans.Request) (scans.Scan, bool, error) {
	if f.entered != nil {
		f.entered <- req
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return scans.Scan{}, false, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	if f.submitErr != nil {
		return scans.Scan{}, false, f.submitErr
	}
	_, digest, _ := strings.Cut(req.Image, "@")
	if sc, ok := f.queued[digest]; ok {
		return sc, false, nil
	}
	sc := scans.Scan{ID: fmt.Sprintf("scan-%d", len(f.queued)+1), Image: req.Image, Trigger: req.Trigger, Digest: digest, Status: scans.Queued}
	f.queued[digest] = sc
	return sc, true, nil
}

func (f *fakeSubmitter) Scanned(_ context.Context, digest string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scanned[digest], f.scannedErr
}

// finish turns every queued scan into a finished report.
func (f *fakeSubmitter) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for d := range f.queued {
		f.scanned[d] = true
	}
	clear(f.queued)
}

func (f *fakeSubmitter) requests() []scans.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// logBuffer collects log lines; safe for the server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type fixture struct {
	h    http.Handler
	sub  *fakeSubmitter
	logs *logBuffer
}

func newFixture(t *testing.T, mod ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{sub: newFake(), logs: &logBuffer{}}
	o := Options{Token: testToken, Registries: testRegistries, Submitter: f.sub, Logger: newLogger(f.logs)}
	for _, m := range mod {
		m(&o)
	}
	f.h = NewHandler(o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", f.logs)
		}
	})
	return f
}

type reqOpt func(*http.Request)

func withAuth(v string) reqOpt        { return func(r *http.Request) { r.Header.Set("Authorization", v) } }
func withoutAuth() reqOpt             { return func(r *http.Request) { r.Header.Del("Authorization") } }
func withType(v string) reqOpt        { return func(r *http.Request) { r.Header.Set("Content-Type", v) } }
func withMethod(m string) reqOpt      { return func(r *http.Request) { r.Method = m } }
func withPath(p string) reqOpt        { return func(r *http.Request) { r.URL.Path = p } }
func withBody(b io.ReadCloser) reqOpt { return func(r *http.Request) { r.Body = b } }

func (f *fixture) post(t *testing.T, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.RemoteAddr = "192.0.2.7:40123"
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set("Content-Type", eventsType)
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
}

func wantCounts(t *testing.T, w *httptest.ResponseRecorder, want counts) {
	t.Helper()
	wantStatus(t, w, http.StatusAccepted)
	var got counts
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode 202 body: %v", err)
	}
	if got != want {
		t.Fatalf("counts = %+v, want %+v", got, want)
	}
}

func wantErrorCode(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	wantStatus(t, w, status)
	var e errorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != code {
		t.Fatalf("error body %q (%v): want code %q", w.Body, err, code)
	}
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pushEvent is one manifest push from registry.example.com:5000.
func pushEvent(mediaType, repo, digest, tag string) string {
	type obj = map[string]any
	b, err := json.Marshal(obj{
		"id":     "e-" + tag,
		"action": "push",
		"target": obj{
			"mediaType":  mediaType,
			"digest":     digest,
			"repository": repo,
			"url":        "https://registry.example.com:5000/v2/" + repo + "/manifests/" + digest,
			"tag":        tag,
		},
		"request": obj{"host": "registry.example.com:5000", "method": "PUT"},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func envelope(events ...string) string { return `{"events":[` + strings.Join(events, ",") + `]}` }

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// spyBody fails the test if the handler reads it.
type spyBody struct{ read bool }

func (s *spyBody) Read([]byte) (int, error) { s.read = true; return 0, io.EOF }
func (s *spyBody) Close() error             { return nil }

func TestUnauthorized(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  reqOpt
	}{
		{"missing", withoutAuth()},
		{"wrong token", withAuth("Bearer not-the-token")},
		{"token prefix", withAuth("Bearer " + testToken[:5])},
		{"token suffix added", withAuth("Bearer " + testToken + "x")},
		{"basic scheme", withAuth("Basic " + testToken)},
		{"scheme only", withAuth("Bearer")},
		{"empty bearer", withAuth("Bearer ")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			body := &spyBody{}
			w := f.post(t, "", tc.opt, withBody(body))
			wantErrorCode(t, w, http.StatusUnauthorized, "unauthenticated")
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer", got)
			}
			if body.read {
				t.Error("the body of an unauthenticated request was read")
			}
			if len(f.sub.requests()) != 0 {
				t.Error("an unauthenticated request reached Submit")
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "remote=192.0.2.7:40123") {
				t.Errorf("refusal not logged at warn with the remote address:\n%s", logs)
			}
			if strings.Contains(logs, testToken[:5]) || strings.Contains(logs, "not-the-token") {
				t.Errorf("a token reached the logs:\n%s", logs)
			}
		})
	}
}

func TestAuthorizedSchemeCaseInsensitive(t *testing.T) {
	f := newFixture(t)
	wantCounts(t, f.post(t, `{"events":[]}`, withAuth("bearer "+testToken)), counts{})
}

func TestRoutes(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/", http.StatusAccepted},
		{http.MethodPost, "/events", http.StatusAccepted},
		{http.MethodGet, "/", http.StatusMethodNotAllowed},
		{http.MethodPut, "/events", http.StatusMethodNotAllowed},
		{http.MethodHead, "/", http.StatusMethodNotAllowed},
		{http.MethodPost, "/events/", http.StatusNotFound},
		{http.MethodPost, "/v1/scans", http.StatusNotFound},
		{http.MethodGet, "/nope", http.StatusNotFound},
	} {
		w := f.post(t, `{"events":[]}`, withMethod(tc.method), withPath(tc.path))
		if w.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
		if tc.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s %s: Allow = %q", tc.method, tc.path, w.Header().Get("Allow"))
		}
	}
}

func TestContentType(t *testing.T) {
	f := newFixture(t)
	for ct, ok := range map[string]bool{
		eventsType: true,
		"application/vnd.docker.distribution.events.v2+json; charset=utf-8": true,
		// What distribution 2.8 (Debian's docker-registry) really sends.
		"application/vnd.docker.distribution.events.v1+json": true,
		"application/json":                  true,
		"Application/JSON; charset=utf-8":   true,
		"":                                  false,
		"text/plain":                        false,
		"application/x-www-form-urlencoded": false,
		"application/vnd.docker.distribution.events.v3+json": false,
		"application/json; =broken":                          false,
	} {
		w := f.post(t, `{"events":[]}`, withType(ct))
		if ok {
			wantStatus(t, w, http.StatusAccepted)
		} else {
			wantErrorCode(t, w, http.StatusUnsupportedMediaType, "unsupported_media_type")
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 512 })
	body := envelope(slices.Repeat([]string{pushEvent(ociManifest, "library/debian", manifestDigest, "12")}, 10)...)
	wantErrorCode(t, f.post(t, body), http.StatusRequestEntityTooLarge, "too_large")
	if len(f.sub.requests()) != 0 {
		t.Error("a truncated envelope reached Submit")
	}
	// At the limit is fine.
	small := envelope()
	f = newFixture(t, func(o *Options) { o.MaxBodyBytes = int64(len(small)) })
	wantCounts(t, f.post(t, small), counts{})
}

func TestMalformedEnvelope(t *testing.T) {
	for _, body := range []string{
		"", "garbage", "null", "[]", `"events"`, "{}", `{"events":null}`, `{"events":{}}`,
		`{"events":"push"}`, `{"events":[`, `{"events":[]} {}`, `{"events":[]}x`, "\x00\xff",
	} {
		f := newFixture(t)
		w := f.post(t, body)
		wantErrorCode(t, w, http.StatusBadRequest, "invalid_argument")
		if !strings.Contains(f.logs.String(), "level=WARN") {
			t.Errorf("%q: no warn log", body)
		}
	}
}

func TestEmptyEnvelope(t *testing.T) {
	f := newFixture(t)
	wantCounts(t, f.post(t, `{"events":[]}`), counts{})
	wantCounts(t, f.post(t, "\n { \"events\" : [ ] }\n"), counts{})
}

// Bad events in a good envelope are skipped one by one, never a 400 for the
// envelope, and do not stop the good ones.
func TestMalformedEventsSkipped(t *testing.T) {
	f := newFixture(t)
	body := envelope(`1`, `null`, `"push"`, `[]`, `{"action":5}`, `{"action":"push","target":"x"}`,
		`{"action":"push","target":{"digest":7}}`,
		pushEvent(ociManifest, "library/debian", manifestDigest, "12"))
	wantCounts(t, f.post(t, body), counts{Accepted: 1, Skipped: 7})
}

func TestRealisticEnvelope(t *testing.T) {
	f := newFixture(t)
	w := f.post(t, readTestdata(t, "push-envelope.json"))
	// The manifest push is accepted; the layer push and the pull are ignored.
	wantCounts(t, w, counts{Accepted: 1, Ignored: 2})
	got := f.sub.requests()
	want := []scans.Request{{Image: "mirror.internal:5000/library/debian@" + manifestDigest, Trigger: "webhook"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("submitted %+v, want %+v", got, want)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// The body distribution 2.8 sent during the integration test, as captured.
func TestDistribution28Envelope(t *testing.T) {
	f := newFixture(t)
	w := f.post(t, readTestdata(t, "distribution-2.8-manifest-push.json"),
		withType("application/vnd.docker.distribution.events.v1+json"))
	wantCounts(t, w, counts{Accepted: 1})
	want := "127.0.0.1:18098/library/debian@sha256:ad676c06231c7a9ab1bd8eb9fb8266026137139b53ed932ab74c52c9efbcf95e"
	if got := f.sub.requests(); len(got) != 1 || got[0].Image != want {
		t.Fatalf("submitted %+v, want %s", got, want)
	}
}

func TestRedelivery(t *testing.T) {
	f := newFixture(t)
	body := readTestdata(t, "push-envelope.json")
	wantCounts(t, f.post(t, body), counts{Accepted: 1, Ignored: 2})
	// Redelivered while the scan is queued: Submit returns the queued scan.
	wantCounts(t, f.post(t, body), counts{Deduplicated: 1, Ignored: 2})
	if n := len(f.sub.requests()); n != 2 {
		t.Fatalf("Submit calls = %d, want 2 (the second answered created=false)", n)
	}
	// Redelivered after the scan finished: Scanned stops it before Submit.
	f.sub.finish()
	wantCounts(t, f.post(t, body), counts{Deduplicated: 1, Ignored: 2})
	if n := len(f.sub.requests()); n != 2 {
		t.Fatalf("Submit calls = %d after the scan finished, want still 2", n)
	}
}

func TestDedupeWithinEnvelope(t *testing.T) {
	f := newFixture(t)
	body := envelope(
		pushEvent(ociManifest, "library/debian", manifestDigest, "12"),
		pushEvent(ociManifest, "library/debian", manifestDigest, "bookworm"),
		pushEvent(ociManifest, "mirror/debian", manifestDigest, "12"),
	)
	wantCounts(t, f.post(t, body), counts{Accepted: 1, Deduplicated: 2})
	if n := len(f.sub.requests()); n != 1 {
		t.Fatalf("Submit calls = %d, want 1", n)
	}
}

func TestUnmappedRegistry(t *testing.T) {
	f := newFixture(t)
	ev := strings.ReplaceAll(pushEvent(ociManifest, "library/debian", manifestDigest, "12"), "registry.example.com:5000", "evil.example.net")
	wantCounts(t, f.post(t, envelope(ev)), counts{Skipped: 1})
	if n := len(f.sub.requests()); n != 0 {
		t.Fatalf("Submit calls = %d for an unmapped registry", n)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "unmapped") || !strings.Contains(logs, "registry=evil.example.net") {
		t.Errorf("no warn log naming the unmapped registry:\n%s", logs)
	}
	// A skipped event does not mark its digest handled: the same digest
	// from a mapped registry later in the envelope is still queued.
	f = newFixture(t)
	wantCounts(t, f.post(t, envelope(ev, pushEvent(ociManifest, "library/debian", manifestDigest, "12"))), counts{Accepted: 1, Skipped: 1})
}

func TestRegistryName(t *testing.T) {
	const d = manifestDigest
	for _, tc := range []struct {
		name, url, host string
		want            string // pulled image, "" = skipped
	}{
		{"url host wins", "https://registry.example.com:5000/v2/a/manifests/" + d, "other:1", "mirror.internal:5000/a@" + d},
		{"url host case", "https://REGISTRY.example.com:5000/v2/a/manifests/" + d, "", "mirror.internal:5000/a@" + d},
		{"request host fallback", "", "registry.example.com:5000", "mirror.internal:5000/a@" + d},
		{"unparseable url", "://bad", "registry.example.com:5000", "mirror.internal:5000/a@" + d},
		{"url without host", "/v2/a/manifests/" + d, "registry.example.com:5000", "mirror.internal:5000/a@" + d},
		{"url host unmapped", "https://registry.example.com/v2/a/manifests/" + d, "registry.example.com:5000", ""},
		{"neither", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ev := fmt.Sprintf(`{"action":"push","target":{"mediaType":%q,"digest":%q,"repository":"a","url":%q},"request":{"host":%q}}`, ociManifest, d, tc.url, tc.host)
			w := f.post(t, envelope(ev))
			got := f.sub.requests()
			if tc.want == "" {
				wantCounts(t, w, counts{Skipped: 1})
				if len(got) != 0 {
					t.Fatalf("submitted %+v", got)
				}
				return
			}
			wantCounts(t, w, counts{Accepted: 1})
			if len(got) != 1 || got[0].Image != tc.want {
				t.Fatalf("submitted %+v, want %s", got, tc.want)
			}
		})
	}
}

func TestManifestMediaTypes(t *testing.T) {
	for mt, want := range map[string]counts{
		"application/vnd.oci.image.index.v1+json":                     {Accepted: 1},
		"application/vnd.docker.distribution.manifest.list.v2+json":   {Accepted: 1},
		"application/vnd.oci.image.manifest.v1+json":                  {Accepted: 1},
		"application/vnd.docker.distribution.manifest.v2+json":        {Accepted: 1},
		"application/vnd.oci.image.index.v1+json; charset=utf-8":      {Accepted: 1},
		"application/vnd.docker.distribution.manifest.v1+prettyjws":   {Ignored: 1},
		"application/vnd.docker.distribution.manifest.v1+json":        {Ignored: 1},
		"application/vnd.docker.container.image.rootfs.diff+x-gtar":   {Ignored: 1},
		"application/vnd.oci.image.layer.v1.tar+gzip":                 {Ignored: 1},
		"application/vnd.oci.image.config.v1+json":                    {Ignored: 1},
		"application/octet-stream":                                    {Ignored: 1}, // distribution 2.8's blob pushes
		"":                                                            {Ignored: 1},
		"application/vnd.docker.distribution.manifest.v2+json-broken": {Ignored: 1},
	} {
		f := newFixture(t)
		wantCounts(t, f.post(t, envelope(pushEvent(mt, "library/debian", indexDigest, "12"))), want)
		if want.Accepted == 1 {
			if got := f.sub.requests(); len(got) != 1 || got[0].Image != "mirror.internal:5000/library/debian@"+indexDigest {
				t.Errorf("%s: submitted %+v", mt, got)
			}
		}
	}
}

func TestIgnoredActions(t *testing.T) {
	f := newFixture(t)
	var evs []string
	for _, a := range []string{"pull", "delete", "mount", "PUSH", ""} {
		evs = append(evs, strings.Replace(pushEvent(ociManifest, "library/debian", manifestDigest, "12"), `"action":"push"`, `"action":"`+a+`"`, 1))
	}
	wantCounts(t, f.post(t, envelope(evs...)), counts{Ignored: 5})
}

func TestInvalidTargets(t *testing.T) {
	sha512 := "sha512:" + strings.Repeat("ab", 64)
	for _, tc := range []struct {
		repo, digest string
		want         counts
	}{
		{"library/debian", sha512, counts{Accepted: 1}},
		{"a", manifestDigest, counts{Accepted: 1}},
		{"my-org/sub__dir/app.name_x", manifestDigest, counts{Accepted: 1}},
		// A first component that looks like a host stays part of the path:
		// the pull still goes to the mapped address.
		{"evil.example.net/x", manifestDigest, counts{Accepted: 1}},
		{"library/debian", strings.ToUpper(manifestDigest), counts{Skipped: 1}},
		{"library/debian", "sha256:" + strings.Repeat("a", 63), counts{Skipped: 1}},
		{"library/debian", "sha256:" + strings.Repeat("a", 65), counts{Skipped: 1}},
		{"library/debian", "sha512:" + strings.Repeat("a", 64), counts{Skipped: 1}},
		{"library/debian", "sha1:" + strings.Repeat("a", 40), counts{Skipped: 1}},
		{"library/debian", "md5:d41d8cd98f00b204e9800998ecf8427e", counts{Skipped: 1}},
		{"library/debian", "", counts{Skipped: 1}},
		{"library/debian", " " + manifestDigest, counts{Skipped: 1}},
		{"library/debian", manifestDigest + "\n", counts{Skipped: 1}},
		{"", manifestDigest, counts{Skipped: 1}},
		{"Library/Debian", manifestDigest, counts{Skipped: 1}},
		{"../etc", manifestDigest, counts{Skipped: 1}},
		{"a/../b", manifestDigest, counts{Skipped: 1}},
		{"a//b", manifestDigest, counts{Skipped: 1}},
		{"/a", manifestDigest, counts{Skipped: 1}},
		{"a/", manifestDigest, counts{Skipped: 1}},
		{"a..b", manifestDigest, counts{Skipped: 1}},
		{"a@sha256:x", manifestDigest, counts{Skipped: 1}},
		{"a:tag", manifestDigest, counts{Skipped: 1}},
		{"a b", manifestDigest, counts{Skipped: 1}},
		{strings.Repeat("a", 256), manifestDigest, counts{Skipped: 1}},
	} {
		f := newFixture(t)
		w := f.post(t, envelope(pushEvent(ociManifest, tc.repo, tc.digest, "t")))
		wantCounts(t, w, tc.want)
		got := f.sub.requests()
		if tc.want.Accepted == 0 && len(got) != 0 {
			t.Errorf("repo %q digest %q: submitted %+v", tc.repo, tc.digest, got)
		}
		if tc.want.Accepted == 1 {
			if want := "mirror.internal:5000/" + tc.repo + "@" + tc.digest; len(got) != 1 || got[0].Image != want {
				t.Errorf("submitted %+v, want %s", got, want)
			}
		}
	}
}

func TestSubmitFailures(t *testing.T) {
	body := envelope(pushEvent(ociManifest, "library/debian", manifestDigest, "12"))
	for _, tc := range []struct {
		name                  string
		submitErr, scannedErr error
		status                int
	}{
		{"unavailable", fmt.Errorf("store: closed: %w", errdefs.ErrUnavailable), nil, http.StatusServiceUnavailable},
		{"internal", errors.New("store: disk on fire"), nil, http.StatusServiceUnavailable},
		{"cancelled", context.Canceled, nil, http.StatusServiceUnavailable},
		{"scanned fails", nil, fmt.Errorf("store: %w", errdefs.ErrUnavailable), http.StatusServiceUnavailable},
		{"invalid", fmt.Errorf("queue: bad: %w", errdefs.ErrInvalid), nil, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.sub.submitErr, f.sub.scannedErr = tc.submitErr, tc.scannedErr
			w := f.post(t, body)
			if tc.status == http.StatusAccepted {
				wantCounts(t, w, counts{Skipped: 1})
				return
			}
			wantErrorCode(t, w, tc.status, "unavailable")
			if strings.Contains(w.Body.String(), "disk on fire") {
				t.Error("an internal error leaked into the response")
			}
		})
	}
}

// After a 503 the registry redelivers the whole envelope; what was queued
// before the failure dedupes then.
func TestRetryAfterUnavailable(t *testing.T) {
	f := newFixture(t)
	other := "sha256:" + strings.Repeat("1", 64)
	body := envelope(pushEvent(ociManifest, "a", manifestDigest, "1"), pushEvent(ociManifest, "b", other, "2"))
	f.sub.queued[manifestDigest] = scans.Scan{ID: "earlier", Status: scans.Pulling}
	f.sub.submitErr = errdefs.ErrUnavailable
	wantErrorCode(t, f.post(t, body), http.StatusServiceUnavailable, "unavailable")
	f.sub.submitErr = nil
	wantCounts(t, f.post(t, body), counts{Accepted: 1, Deduplicated: 1})
}

// A full queue (scan.max_queued) is a 503 with Retry-After: the registry
// redelivers, nothing is lost.
func TestFullQueueAsksForRedelivery(t *testing.T) {
	f := newFixture(t)
	f.sub.submitErr = fmt.Errorf("queue full: %w", errdefs.ErrBusy)
	w := f.post(t, envelope(pushEvent(ociManifest, "a", manifestDigest, "1")))
	wantErrorCode(t, w, http.StatusServiceUnavailable, "unavailable")
	if got := w.Header().Get("Retry-After"); got == "" {
		t.Error("no Retry-After on a 503")
	}
	f.sub.submitErr = nil
	wantCounts(t, f.post(t, envelope(pushEvent(ociManifest, "a", manifestDigest, "1"))), counts{Accepted: 1})
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{Token: "t", Submitter: newFake(), Registries: map[string]string{"reg.example.com": "reg.example.com:443"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, mod := range map[string]func(*Options){
		"no token":        func(o *Options) { o.Token = "" },
		"no submitter":    func(o *Options) { o.Submitter = nil },
		"negative max":    func(o *Options) { o.MaxBodyBytes = -1 },
		"name with path":  func(o *Options) { o.Registries = map[string]string{"reg/x": "reg.example.com"} },
		"empty name":      func(o *Options) { o.Registries = map[string]string{"": "reg.example.com"} },
		"address path":    func(o *Options) { o.Registries = map[string]string{"reg": "reg.example.com/x"} },
		"address scheme":  func(o *Options) { o.Registries = map[string]string{"reg": "https://reg.example.com"} },
		"address no dot":  func(o *Options) { o.Registries = map[string]string{"reg": "mirror"} },
		"address userinf": func(o *Options) { o.Registries = map[string]string{"reg": "u@reg.example.com"} },
		"names by case": func(o *Options) {
			o.Registries = map[string]string{"Reg.example.com": "a.example.com", "reg.example.com": "b.example.com"}
		},
	} {
		o := ok
		mod(&o)
		err := o.Validate()
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewHandler did not panic", name)
				}
			}()
			NewHandler(o)
		}()
	}
	for _, addr := range []string{"localhost", "localhost:5000", "127.0.0.1:5000", "[::1]:5000", "mirror:5000", "registry.internal"} {
		o := ok
		o.Registries = map[string]string{"x": addr}
		if err := o.Validate(); err != nil {
			t.Errorf("address %q: %v", addr, err)
		}
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sub := newFake()
	s, err := Serve(ctx, "127.0.0.1:0", Options{Token: testToken, Registries: testRegistries, Submitter: sub, Logger: newLogger(&logBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.Addr().String() + "/events"

	res := postURL(t, url, readTestdata(t, "push-envelope.json"))
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", res.StatusCode)
	}
	if n := len(sub.requests()); n != 1 {
		t.Fatalf("Submit calls = %d", n)
	}

	// The port is taken while the server runs.
	if _, err := Serve(ctx, s.Addr().String(), Options{Token: testToken, Submitter: sub}); err == nil {
		t.Fatal("second Serve on a bound address succeeded")
	}
	// Invalid options never bind.
	if _, err := Serve(ctx, "127.0.0.1:0", Options{Submitter: sub}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Serve without a token: %v", err)
	}

	cancel()
	waitStopped(t, s, 5*time.Second)
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait = %v after a clean shutdown", err)
	}
	if _, err := http.Post(url, eventsType, strings.NewReader("{}")); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

// A notification under way when shutdown starts completes.
func TestServeGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sub := newFake()
	sub.entered, sub.release = make(chan scans.Request, 1), make(chan struct{})
	s, err := Serve(ctx, "127.0.0.1:0", Options{Token: testToken, Registries: testRegistries, Submitter: sub})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *http.Response, 1)
	go func() {
		done <- postURL(t, "http://"+s.Addr().String()+"/", readTestdata(t, "push-envelope.json"))
	}()
	<-sub.entered
	cancel()
	time.Sleep(100 * time.Millisecond) // let Shutdown close the listener
	close(sub.release)
	if res := <-done; res == nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("in-flight notification: %+v", res)
	}
	waitStopped(t, s, 5*time.Second)
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait = %v", err)
	}
}

// A notification that does not finish is cut off at the shutdown bound.
func TestServeShutdownBound(t *testing.T) {
	defer func(d time.Duration) { shutdownTimeout = d }(shutdownTimeout)
	shutdownTimeout = 200 * time.Millisecond

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sub := newFake()
	sub.entered, sub.release = make(chan scans.Request, 1), make(chan struct{})
	defer close(sub.release)
	s, err := Serve(ctx, "127.0.0.1:0", Options{Token: testToken, Registries: testRegistries, Submitter: sub})
	if err != nil {
		t.Fatal(err)
	}
	body := readTestdata(t, "push-envelope.json")
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr().String()+"/", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", eventsType)
		// The connection is cut at the bound: an error is expected.
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	select {
	case <-sub.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the notification never reached Submit")
	}
	start := time.Now()
	cancel()
	waitStopped(t, s, 3*time.Second)
	if took := time.Since(start); took < shutdownTimeout {
		t.Errorf("stopped after %v, before the bound", took)
	}
	if err := s.Wait(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want the shutdown deadline", err)
	}
}

func postURL(t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", eventsType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func waitStopped(t *testing.T, s *Server, within time.Duration) {
	t.Helper()
	stopped := make(chan struct{})
	go func() { _ = s.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(within):
		t.Fatalf("server did not stop within %v", within)
	}
}

// FuzzHandler feeds arbitrary bodies to an authenticated handler. Beyond
// "never panic" it checks that every envelope gets one of the documented
// answers, that the counts cover every event, and that every submitted
// reference is a valid digest reference on a mapped address.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(readTestdata(f, "push-envelope.json")))
	f.Add([]byte(readTestdata(f, "distribution-2.8-manifest-push.json")))
	f.Add([]byte(envelope(pushEvent("application/vnd.oci.image.index.v1+json", "library/debian", indexDigest, "12"))))
	f.Add([]byte(envelope(pushEvent(ociManifest, "evil.example.net/x", "sha512:"+strings.Repeat("ab", 64), "t"))))
	f.Add([]byte(`{"events":[1,null,{"action":5},{"action":"push","target":"x"}]}`))
	f.Add([]byte(`{"events":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`garbage`))
	f.Add([]byte{})

	mapped := map[string]bool{}
	for _, v := range testRegistries {
		mapped[v] = true
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sub := newFake()
		h := NewHandler(Options{Token: testToken, Registries: testRegistries, MaxBodyBytes: 64 << 10, Submitter: sub})
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set("Content-Type", eventsType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		switch w.Code {
		case http.StatusAccepted:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(sub.requests()) != 0 {
				t.Fatalf("status %d after Submit calls", w.Code)
			}
			return
		default:
			t.Fatalf("status %d; body %s", w.Code, w.Body)
		}
		var c counts
		if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
			t.Fatalf("202 body %q: %v", w.Body, err)
		}
		var env struct{ Events []json.RawMessage }
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("202 for a body encoding/json rejects: %v", err)
		}
		if sum := c.Accepted + c.Deduplicated + c.Ignored + c.Skipped; sum != len(env.Events) {
			t.Fatalf("counts %+v cover %d events, envelope has %d", c, sum, len(env.Events))
		}
		reqs := sub.requests()
		if c.Accepted > len(reqs) {
			t.Fatalf("accepted %d with %d Submit calls", c.Accepted, len(reqs))
		}
		digests := map[string]bool{}
		for _, req := range reqs {
			ref, err := name.NewDigest(req.Image, name.StrictValidation)
			if err != nil {
				t.Fatalf("submitted an invalid reference %q: %v", req.Image, err)
			}
			if !mapped[ref.Context().RegistryStr()] || !strings.HasPrefix(req.Image, ref.Context().RegistryStr()+"/") {
				t.Fatalf("submitted %q: registry %q is not a mapped address", req.Image, ref.Context().RegistryStr())
			}
			if req.Trigger != "webhook" || req.Platform != "" {
				t.Fatalf("submitted %+v", req)
			}
			if digests[ref.DigestStr()] {
				t.Fatalf("digest %s submitted twice in one envelope", ref.DigestStr())
			}
			digests[ref.DigestStr()] = true
		}
	})
}

// With a certificate and key the endpoint speaks TLS: a registry that
// trusts the certificate delivers; plain HTTP gets nowhere.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "assay webhook test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sub := newFake()
	s, err := Serve(ctx, "127.0.0.1:0", Options{Token: testToken, Registries: testRegistries, Submitter: sub, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	post := func(c *http.Client, url string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(readTestdata(t, "push-envelope.json")))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", eventsType)
		return c.Do(req)
	}
	res, err := post(client, "https://"+s.Addr().String()+"/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || len(sub.requests()) != 1 {
		t.Fatalf("over TLS: status %d, %d submitted", res.StatusCode, len(sub.requests()))
	}
	if res, err := post(http.DefaultClient, "http://"+s.Addr().String()+"/"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusAccepted {
			t.Error("plain HTTP was accepted on the TLS endpoint")
		}
	}
	if len(sub.requests()) != 1 {
		t.Error("plain HTTP reached the submitter")
	}
	// A key that does not exist: nothing is served.
	if _, err := Serve(ctx, "127.0.0.1:0", Options{Token: testToken, Submitter: sub, CertFile: certFile, KeyFile: filepath.Join(dir, "none.pem")}); err == nil {
		t.Error("Serve with a missing key succeeded")
	}
}
