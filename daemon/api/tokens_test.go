package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	readTok  = "read-token-0123456789"
	scanTok  = "scan-token-0123456789"
	adminTok = "admin-token-0123456789"
	oldTok   = "expired-token-0123456789"
)

func testTokens(t *testing.T) *Tokens {
	t.Helper()
	tok, err := ParseTokens(strings.NewReader("# tokens\n\nread " + readTok + "\nscan " + scanTok + " 2030-01-01\nadmin " + adminTok + "\nadmin " + oldTok + " 2026-01-01T00:00:00Z\n"))
	if err != nil {
		t.Fatal(err)
	}
	tok.Now = func() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) }
	return tok
}

func TestParseTokens(t *testing.T) {
	tok := testTokens(t)
	for token, want := range map[string]Role{readTok: RoleRead, scanTok: RoleScan, adminTok: RoleAdmin, oldTok: 0, "nope-nope-nope-nope": 0} {
		got, err := tok.Role(token)
		if got != want || (err == nil) != (want > 0) {
			t.Errorf("Role(%s) = %v, %v; want %v", token, got, err, want)
		}
	}
	if _, err := tok.Role(oldTok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	for name, body := range map[string]string{
		"short token":  "read short\n",
		"unknown role": "root " + readTok + "\n",
		"bad expiry":   "read " + readTok + " tomorrow\n",
		"extra field":  "read " + readTok + " 2030-01-01 x\n",
		"empty":        "# nothing\n",
	} {
		if _, err := ParseTokens(strings.NewReader(body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Over TCP a bearer token decides: none or a bad one is 401, and each
// role reaches what it may.
func TestTCPBearerRoles(t *testing.T) {
	h := NewHandler(Options{Service: &fakeService{}, Tokens: testTokens(t)})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnContext = TCPConnContext
	srv.Start()
	defer srv.Close()
	call := func(method, path, token, body string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", method, path)
		}
		return resp.StatusCode
	}
	scan := `{"image":"r.test/a:1"}`
	for _, c := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/v1/health", "", "", http.StatusUnauthorized},
		{"GET", "/v1/health", "not-a-token-at-all", "", http.StatusUnauthorized},
		{"GET", "/v1/health", oldTok, "", http.StatusUnauthorized},
		{"GET", "/v1/health", readTok, "", http.StatusOK},
		{"POST", "/v1/scans", readTok, scan, http.StatusForbidden},
		{"POST", "/v1/scans", scanTok, scan, http.StatusAccepted},
		{"POST", "/v1/cache/prune", scanTok, "", http.StatusForbidden},
		{"POST", "/v1/scans", adminTok, `{"image":"r.test/b:1","policy":{"min_severity":"high"}}`, http.StatusAccepted},
	} {
		if got := call(c.method, c.path, c.token, c.body); got != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.token, got, c.want)
		}
	}
}
