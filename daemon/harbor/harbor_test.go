package harbor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

const (
	secret   = "harbor-secret-0123456789"
	digest   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	registry = "http://127.0.0.1:5000"
)

// fakeService keeps scans in memory; a test sets their status and report.
type fakeService struct {
	mu      sync.Mutex
	scans   map[string]scans.Scan
	reports map[string]*report.Report
	reqs    []scans.Request
	busy    bool
}

func newFake() *fakeService {
	return &fakeService{scans: map[string]scans.Scan{}, reports: map[string]*report.Report{}}
}

func (f *fakeService) Submit(_ context.Context, req scans.Request) (scans.Scan, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy {
		return scans.Scan{}, false, fmt.Errorf("queue full: %w", errdefs.ErrBusy)
	}
	f.reqs = append(f.reqs, req)
	sc := scans.Scan{ID: fmt.Sprintf("scan-%d", len(f.reqs)), Image: req.Image, Status: scans.Queued, Trigger: req.Trigger}
	f.scans[sc.ID] = sc
	return sc, true, nil
}

func (f *fakeService) Scan(_ context.Context, id string) (scans.Scan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sc, ok := f.scans[id]
	if !ok {
		return scans.Scan{}, fmt.Errorf("scan %s: %w", id, errdefs.ErrNotFound)
	}
	return sc, nil
}

func (f *fakeService) ReportOfScan(_ context.Context, d, id string) (*report.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reports[id]
	if !ok || r.Digest != d {
		return nil, fmt.Errorf("report: %w", errdefs.ErrNotFound)
	}
	return r, nil
}

func (f *fakeService) set(id string, st scans.Status, errText string, rep *report.Report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sc := f.scans[id]
	sc.Status, sc.Error, sc.Digest = st, errText, digest
	f.scans[id] = sc
	if rep != nil {
		f.reports[id] = rep
	}
}

func newHandler(t *testing.T, auth, sec string) (*Handler, *fakeService) {
	t.Helper()
	f := newFake()
	return New(Options{
		Service: f, Auth: auth, Secret: sec, Registries: []string{registry}, Version: "1.2.3",
		DBUpdatedAt: func() time.Time { return time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) },
	}), f
}

type call struct {
	method, path, body string
	header             map[string]string
}

func do(h http.Handler, c call) *httptest.ResponseRecorder {
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func key(extra map[string]string) map[string]string {
	m := map[string]string{"X-ScannerAdapter-API-Key": secret}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestAuthModes(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("harbor:"+secret))
	for _, tt := range []struct {
		mode, secret string
		good, bad    map[string]string
	}{
		{AuthBearer, secret, map[string]string{"Authorization": "Bearer " + secret}, map[string]string{"Authorization": "Bearer " + secret + "x"}},
		{AuthBasic, "harbor:" + secret, map[string]string{"Authorization": basic}, map[string]string{"Authorization": "Bearer harbor:" + secret}},
		{AuthAPIKey, secret, map[string]string{"X-ScannerAdapter-API-Key": secret}, map[string]string{"Authorization": "Bearer " + secret}},
	} {
		h, _ := newHandler(t, tt.mode, tt.secret)
		if w := do(h, call{method: "GET", path: "/api/v1/metadata", header: tt.good}); w.Code != 200 {
			t.Errorf("%s: good credentials: %d %s", tt.mode, w.Code, w.Body)
		}
		for _, hdr := range []map[string]string{tt.bad, nil} {
			w := do(h, call{method: "GET", path: "/api/v1/metadata", header: hdr})
			if w.Code != 401 || !strings.Contains(w.Body.String(), `"message"`) || w.Header().Get("Content-Type") != mediaError {
				t.Errorf("%s: bad credentials %v: %d %s", tt.mode, hdr, w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), secret) {
				t.Errorf("%s: the 401 shows the secret", tt.mode)
			}
		}
	}
	// Without a configured secret nothing gets in.
	h, _ := newHandler(t, AuthAPIKey, "")
	if w := do(h, call{method: "GET", path: "/api/v1/metadata", header: map[string]string{"X-ScannerAdapter-API-Key": ""}}); w.Code != 401 {
		t.Errorf("empty secret: %d", w.Code)
	}
}

func TestMetadata(t *testing.T) {
	h, _ := newHandler(t, AuthAPIKey, secret)
	w := do(h, call{method: "GET", path: "/api/v1/metadata", header: key(nil)})
	if w.Code != 200 || w.Header().Get("Content-Type") != mediaMetadata {
		t.Fatalf("%d %s %s", w.Code, w.Header(), w.Body)
	}
	var md metadata
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	if md.Scanner.Name != "assay" || md.Scanner.Version != "1.2.3" || len(md.Capabilities) != 2 {
		t.Fatalf("metadata %+v", md)
	}
	if got := md.Properties["harbor.scanner-adapter/vulnerability-database-updated-at"]; got != "2026-12-01T10:00:00Z" {
		t.Errorf("database updated at %q", got)
	}
	vuln, sbom := md.Capabilities[0], md.Capabilities[1]
	if vuln.Type != "vulnerability" || len(vuln.ProducesMimeTypes) != 3 || sbom.Type != "sbom" || len(sbom.ProducesMimeTypes) != 1 {
		t.Errorf("capabilities %+v", md.Capabilities)
	}
	if got := fmt.Sprint(sbom.AdditionalAttributes["sbom_media_types"]); got != "[application/spdx+json application/vnd.cyclonedx+json]" {
		t.Errorf("sbom media types %s", got)
	}
}

func scanBody(mutate func(m map[string]any)) string {
	m := map[string]any{
		"registry": map[string]any{"url": registry, "authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("robot$scan:pw"))},
		"artifact": map[string]any{"repository": "library/debian", "digest": digest, "tag": "12", "mime_type": mediaOCIManifest},
	}
	if mutate != nil {
		mutate(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func setField(path string, v any) func(map[string]any) {
	return func(m map[string]any) {
		parts := strings.Split(path, ".")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			cur = cur[p].(map[string]any)
		}
		cur[parts[len(parts)-1]] = v
	}
}

func TestScanRequest(t *testing.T) {
	h, f := newHandler(t, AuthAPIKey, secret)
	w := do(h, call{method: "POST", path: "/api/v1/scan", body: scanBody(nil), header: key(nil)})
	if w.Code != 202 || w.Header().Get("Content-Type") != mediaScanResponse || !strings.Contains(w.Body.String(), `"id":"scan-1"`) {
		t.Fatalf("scan: %d %s", w.Code, w.Body)
	}
	req := f.reqs[0]
	if req.Image != "127.0.0.1:5000/library/debian:12@"+digest || req.Trigger != "harbor" || req.Auth == nil ||
		req.Auth.Host != "127.0.0.1:5000" || !strings.HasPrefix(req.Auth.Authorization, "Basic ") {
		t.Errorf("request %+v auth %v", req, req.Auth)
	}
	// Anonymous pulls carry no credentials.
	do(h, call{method: "POST", path: "/api/v1/scan", body: scanBody(setField("registry.authorization", "")), header: key(nil)})
	if f.reqs[1].Auth != nil {
		t.Error("an anonymous request got credentials")
	}

	for _, tt := range []struct {
		name string
		body string
		code int
		want string
	}{
		{"not JSON", "{", 400, "not valid JSON"},
		{"wrong type", `{"registry": {"url": 5}}`, 400, "not valid JSON"},
		{"no registry", scanBody(setField("registry.url", "")), 422, "registry.url is required"},
		{"unlisted registry", scanBody(setField("registry.url", "http://10.0.0.1:5000")), 422, "not one of harbor.registries"},
		{"https instead of http", scanBody(setField("registry.url", "https://127.0.0.1:5000")), 422, "not one of harbor.registries"},
		{"registry with a path", scanBody(setField("registry.url", registry+"/x")), 422, "not one of harbor.registries"},
		{"bad authorization", scanBody(setField("registry.authorization", "Digest abc")), 422, "registry.authorization"},
		{"basic not base64", scanBody(setField("registry.authorization", "Basic !!!")), 422, "not base64"},
		{"no repository", scanBody(setField("artifact.repository", "")), 422, "artifact.repository is required"},
		{"bad repository", scanBody(setField("artifact.repository", "Library/UPPER")), 422, "not a repository name"},
		{"bad digest", scanBody(setField("artifact.digest", "sha256:abc")), 422, "artifact.digest"},
		{"bad tag", scanBody(setField("artifact.tag", "-x")), 422, "artifact.tag"},
		{"helm chart", scanBody(setField("artifact.mime_type", "application/vnd.cncf.helm.config.v1+json")), 501, "image manifests"},
		{"unknown capability", scanBody(func(m map[string]any) {
			m["enabled_capabilities"] = []any{map[string]any{"type": "license"}}
		}), 501, "vulnerability and sbom"},
		{"unknown sbom type", scanBody(func(m map[string]any) {
			m["enabled_capabilities"] = []any{map[string]any{"type": "sbom", "parameters": map[string]any{"sbom_media_types": []string{"text/plain"}}}}
		}), 501, "sbom_media_types"},
	} {
		w := do(h, call{method: "POST", path: "/api/v1/scan", body: tt.body, header: key(nil)})
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) || w.Header().Get("Content-Type") != mediaError {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, w.Code, w.Body, tt.code, tt.want)
		}
		if strings.Contains(w.Body.String(), "cm9ib3Qk") {
			t.Errorf("%s: the error shows the credential", tt.name)
		}
	}
	// Both enabled capabilities as Harbor sends them are accepted.
	w = do(h, call{method: "POST", path: "/api/v1/scan", header: key(nil), body: scanBody(func(m map[string]any) {
		m["enabled_capabilities"] = []any{
			map[string]any{"type": "vulnerability", "produces_mime_types": []string{"application/vnd.security.vulnerability.report; version=1.1"}},
			map[string]any{"type": "sbom", "produces_mime_types": []string{"application/vnd.security.sbom.report+json; version=1.0"}, "parameters": map[string]any{"sbom_media_types": []string{"application/spdx+json"}}},
		}
	})})
	if w.Code != 202 {
		t.Errorf("enabled capabilities: %d %s", w.Code, w.Body)
	}
	f.busy = true
	if w := do(h, call{method: "POST", path: "/api/v1/scan", body: scanBody(nil), header: key(nil)}); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("full queue: %d %s", w.Code, w.Body)
	}
}

func testReport() *report.Report {
	return &report.Report{
		Digest: digest, Verdict: report.Unhealthy, ScannedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Summary:  report.Summary{High: 1, Medium: 1, Suppressed: 1},
		Packages: []report.Package{{Ecosystem: "Debian:12", Name: "libc6", Version: "2.36-9"}},
		Findings: []report.Finding{
			{ID: "DEBCL-CVE-2026-1", Aliases: []string{"CVE-2026-1"}, Package: report.PackageRef{Ecosystem: "Debian:12", Name: "libc6", Version: "2.36-9"},
				Severity: report.High, FixedVersion: "2.36-10", Summary: "glibc bug",
				CVSS:   &report.CVSS{Version: "4.0", Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", Score: 9.3},
				CVSSv3: &report.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8}},
			{ID: "GO-2026-2", Package: report.PackageRef{Ecosystem: "Go", Name: "golang.org/x/net", Version: "v0.1.0"}, Severity: report.Medium,
				CVSS: &report.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:N", Score: 4.8}},
			{ID: "CVE-2026-3", Package: report.PackageRef{Ecosystem: "Debian:12", Name: "bash", Version: "5.2"}, Severity: report.Critical,
				Suppressed: &report.Suppression{Kind: report.SuppressedVEX, Reason: "not_affected"}},
		},
		Recommendations: []report.Recommendation{{Package: report.PackageRef{Ecosystem: "Debian:12", Name: "libc6", Version: "2.36-9"}, FixedVersion: "2.36-10", Findings: []string{"DEBCL-CVE-2026-1"}}},
	}
}

func TestReport(t *testing.T) {
	h, f := newHandler(t, AuthAPIKey, secret)
	do(h, call{method: "POST", path: "/api/v1/scan", body: scanBody(nil), header: key(nil)})
	get := func(accept, query string) *httptest.ResponseRecorder {
		return do(h, call{method: "GET", path: "/api/v1/scan/scan-1/report" + query, header: key(map[string]string{"Accept": accept})})
	}
	vuln := "application/vnd.security.vulnerability.report; version=1.1"

	if w := get(vuln, ""); w.Code != 302 || w.Header().Get("Refresh-After") != "5" {
		t.Errorf("queued: %d %v", w.Code, w.Header())
	}
	f.set("scan-1", scans.Analyzing, "", nil)
	if w := get(vuln, ""); w.Code != 302 || w.Header().Get("Refresh-After") != "1" {
		t.Errorf("running: %d %v", w.Code, w.Header())
	}
	if w := do(h, call{method: "GET", path: "/api/v1/scan/nope/report", header: key(map[string]string{"Accept": vuln})}); w.Code != 404 {
		t.Errorf("unknown id: %d", w.Code)
	}
	if w := get("application/x-nonsense", ""); w.Code != 501 || !strings.Contains(w.Body.String(), "assay produces") {
		t.Errorf("unsupported type: %d %s", w.Code, w.Body)
	}
	if w := get("application/vnd.security.vulnerability.report; version=9.9", ""); w.Code != 501 {
		t.Errorf("unsupported version: %d %s", w.Code, w.Body)
	}
	if w := get("application/vnd.security.sbom.report+json; version=1.0", ""); w.Code != 400 || !strings.Contains(w.Body.String(), "sbom_media_type") {
		t.Errorf("sbom without its type: %d %s", w.Code, w.Body)
	}

	f.set("scan-1", scans.Done, "", testReport())
	for _, accept := range []string{vuln, "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"} {
		w := get(accept, "")
		if w.Code != 200 || w.Header().Get("Content-Type") != accept {
			t.Fatalf("%s: %d %v %s", accept, w.Code, w.Header(), w.Body)
		}
		var got vulnReport
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Severity != "High" || len(got.Vulnerabilities) != 2 || got.Artifact.Repository != "library/debian" || got.Artifact.Tag != "12" || got.Artifact.Digest != digest {
			t.Fatalf("report %+v", got)
		}
		v := got.Vulnerabilities[0]
		if v.ID != "CVE-2026-1" || v.Package != "libc6" || v.Version != "2.36-9" || v.FixVersion != "2.36-10" || v.Severity != "High" ||
			v.PreferredCVSS == nil || v.PreferredCVSS.ScoreV3 != 9.8 || !strings.HasPrefix(v.PreferredCVSS.VectorV3, "CVSS:3.1/") {
			t.Errorf("item %+v cvss %+v", v, v.PreferredCVSS)
		}
		raw, _ := json.Marshal(v.VendorAttributes["assay"])
		for _, want := range []string{`"osv_id":"DEBCL-CVE-2026-1"`, `"version":"4.0"`, `"verdict":"unhealthy"`, `"suppressed":1`, `"recommendation":{`} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("vendor attributes %s lack %s", raw, want)
			}
		}
		if g := got.Vulnerabilities[1]; g.ID != "GO-2026-2" || g.Severity != "Medium" || g.PreferredCVSS == nil || g.PreferredCVSS.ScoreV3 != 4.8 {
			t.Errorf("second item %+v", g)
		}
	}
	w := get("application/vnd.scanner.adapter.vuln.report.raw", "")
	var raw report.Report
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &raw) != nil || len(raw.Findings) != 3 {
		t.Errorf("raw: %d %s", w.Code, w.Body)
	}
	for mt, want := range map[string]string{"application/spdx+json": `"spdxVersion"`, "application/vnd.cyclonedx+json": `"bomFormat"`} {
		w := get("application/vnd.security.sbom.report+json; version=1.0", "?sbom_media_type="+url.QueryEscape(mt))
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"media_type":"`+mt+`"`) || !strings.Contains(w.Body.String(), want) {
			t.Errorf("sbom %s: %d %.300s", mt, w.Code, w.Body)
		}
		// The same, with the "+" left unescaped.
		w = get("application/vnd.security.sbom.report+json; version=1.0", "?sbom_media_type="+mt)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"media_type":"`+mt+`"`) || !strings.Contains(w.Body.String(), want) {
			t.Errorf("sbom %s: %d %.300s", mt, w.Code, w.Body)
		}
	}

	f.set("scan-1", scans.Failed, "images: pull: 401 Unauthorized", nil)
	if w := get(vuln, ""); w.Code != 500 || !strings.Contains(w.Body.String(), "401 Unauthorized") {
		t.Errorf("failed scan: %d %s", w.Code, w.Body)
	}
}

// An image without findings is reported with severity Unknown (the spec
// has no None) and an empty list.
func TestReportWithoutFindings(t *testing.T) {
	h, f := newHandler(t, AuthAPIKey, secret)
	do(h, call{method: "POST", path: "/api/v1/scan", body: scanBody(nil), header: key(nil)})
	f.set("scan-1", scans.Done, "", &report.Report{Digest: digest, Verdict: report.Healthy})
	w := do(h, call{method: "GET", path: "/api/v1/scan/scan-1/report", header: key(nil)})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"severity":"Unknown","vulnerabilities":[]`) {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// A scan request larger than MaxBodyBytes is refused unread.
func TestScanRequestTooLarge(t *testing.T) {
	h, f := newHandler(t, AuthAPIKey, secret)
	h.o.MaxBodyBytes = 1 << 10
	body := scanBody(setField("artifact.tag", strings.Repeat("a", 2<<10)))
	w := do(h, call{method: "POST", path: "/api/v1/scan", body: body, header: key(nil)})
	if w.Code != 400 || !strings.Contains(w.Body.String(), "larger than 1024 bytes") || len(f.reqs) != 0 {
		t.Errorf("%d %s (%d scans)", w.Code, w.Body, len(f.reqs))
	}
}
