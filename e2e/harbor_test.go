package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/assayhq/assay/daemon/report"
)

// Harbor's Pluggable Scanner API v1.2 as Harbor drives it (the spec's
// README): the built assayd serves the adapter on loopback, a client that
// behaves like Harbor's core asks it to scan an image of a real registry
// with the credentials Harbor would send, and polls for every report type
// the adapter says it produces. Every request and answer is checked against
// the published OpenAPI document with kin-openapi.

// harborSpecFile is the published OpenAPI document, copied unchanged.
const harborSpecFile = "../../shared/specs/harbor-pluggable-scanner/scanner-adapter-openapi-v1.2.yaml"

// Media types of the API.
const (
	harborScanRequest = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
	harborVulnHarbor  = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	harborVulnReport  = "application/vnd.security.vulnerability.report; version=1.1"
	harborVulnRaw     = "application/vnd.scanner.adapter.vuln.report.raw"
	harborSBOM        = "application/vnd.security.sbom.report+json; version=1.0"
	sbomSPDX          = "application/spdx+json"
	sbomCycloneDX     = "application/vnd.cyclonedx+json"
	ociManifest       = "application/vnd.oci.image.manifest.v1+json"
	dockerManifest    = "application/vnd.docker.distribution.manifest.v2+json"
)

// Harbor's polling: the first GET of a report about 2 s after the 202, then
// as each 302's Refresh-After says. The tests wait at most harborPollCap
// between polls so that they stay short; they still read the header.
const (
	harborFirstPoll   = 2 * time.Second
	harborPollCap     = time.Second
	harborScanTimeout = 3 * time.Minute
)

// harborSeverities are the Severity enum of the spec, lowest first.
var harborSeverities = []string{"Unknown", "Negligible", "Low", "Medium", "High", "Critical"}

// harborSpec is the OpenAPI document loaded for one adapter address, and
// the router and options requests and answers are validated with.
type harborSpec struct {
	router routers.Router
	opts   *openapi3filter.Options
}

var harborDecoders sync.Once

// loadHarborSpec loads the published document for the adapter at base
// (http://host:port/api/v1). The document has quirks that kin-openapi
// refuses or ignores; each is handled narrowly, and none loosens what our
// answers are held to:
//   - examples given as strings where the schema wants an array or object
//     (capabilities, additional_attributes, parameters): examples are not
//     validated (they are the spec's, not ours);
//   - "descriptions", a typo of description, on additional_attributes:
//     allowed as an unknown sibling field;
//   - the enum of the sbom_media_type query parameter sits beside its
//     schema, where OpenAPI 3.0 ignores it: it is moved into the schema,
//     so the test's own requests are held to it;
//   - formats url (registry.url) and uri (links) are not formats
//     kin-openapi checks: both are defined here, as absolute URLs, which
//     adds checks;
//   - the spec lists Basic and Bearer only, while Harbor also sends
//     X-ScannerAdapter-API-Key (the spec's README): that scheme is added as
//     a third alternative, for the test's requests only;
//   - its server is the relative /api/v1: it becomes base;
//   - application/vnd.security.vulnerability.report has no +json suffix:
//     it is decoded as JSON; the raw report's schema is an opaque string:
//     its body is taken as text (the test parses it as assay's report).
func loadHarborSpec(tb testing.TB, base string) *harborSpec {
	tb.Helper()
	harborDecoders.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/vnd.security.vulnerability.report", openapi3filter.JSONBodyDecoder)
		openapi3filter.RegisterBodyDecoder(harborVulnRaw, openapi3filter.PlainBodyDecoder)
	})
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile(harborSpecFile)
	if err != nil {
		tb.Fatalf("loading %s: %v", harborSpecFile, err)
	}
	docOpts := []openapi3.ValidationOption{openapi3.DisableExamplesValidation(), openapi3.AllowExtraSiblingFields("descriptions")}
	if err := doc.Validate(ctx, docOpts...); err != nil {
		tb.Fatalf("the published spec does not validate: %v", err)
	}

	item := doc.Paths.Find("/scan/{scan_request_id}/report")
	if item == nil || item.Get == nil {
		tb.Fatal("the spec has no GET /scan/{scan_request_id}/report")
	}
	p := item.Get.Parameters.GetByInAndName("query", "sbom_media_type")
	if p == nil || p.Schema == nil {
		tb.Fatal("the spec has no sbom_media_type parameter with a schema")
	}
	enum, ok := p.Extensions["enum"].([]any)
	if !ok || len(enum) == 0 {
		tb.Fatal("the spec's sbom_media_type parameter changed: no enum beside its schema")
	}
	p.Schema.Value.Enum = enum
	delete(p.Extensions, "enum")

	absolute := func(s string) error {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("%q is not an absolute URL", s)
		}
		return nil
	}
	doc.SetStringFormatValidator("url", openapi3.NewCallbackValidator(func(s string) error {
		if err := absolute(s); err != nil {
			return err
		}
		if u, _ := url.Parse(s); u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("%q is not an http(s) URL", s)
		}
		return nil
	}))
	doc.SetStringFormatValidator("uri", openapi3.NewCallbackValidator(absolute))

	doc.Components.SecuritySchemes["ApiKeyAuth"] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
		Type: "apiKey", In: "header", Name: "X-ScannerAdapter-API-Key"}}
	doc.Security = append(doc.Security, openapi3.SecurityRequirement{"ApiKeyAuth": []string{}})
	doc.Servers = openapi3.Servers{{URL: base}}
	if err := doc.Validate(ctx, docOpts...); err != nil {
		tb.Fatalf("the spec with the test's adjustments does not validate: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatal(err)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus:   true,
		MultiError:              true,
		AuthenticationFunc:      harborCredentialsPresent,
		SchemaValidationOptions: doc.GetSchemaValidationOptions(),
	}
	opts.WithCustomSchemaErrorFunc(schemaErrorLine)
	return &harborSpec{router: router, opts: opts}
}

// schemaErrorLine says where a value breaks the schema and what it is, in
// one line (kin-openapi's default prints the whole schema).
func schemaErrorLine(err *openapi3.SchemaError) string {
	v, _ := json.Marshal(err.Value)
	if len(v) > 200 {
		v = append(v[:200], "…"...)
	}
	return fmt.Sprintf("at /%s: %s (value %s)", strings.Join(err.JSONPointer(), "/"), err.Reason, v)
}

// harborCredentialsPresent says whether a request carries the credentials
// a security scheme names (their value is the adapter's to check).
func harborCredentialsPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	req, s := in.RequestValidationInput.Request, in.SecurityScheme
	authz := req.Header.Get("Authorization")
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "basic"):
		if _, _, ok := req.BasicAuth(); ok {
			return nil
		}
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		if strings.HasPrefix(authz, "Bearer ") {
			return nil
		}
	case s.Type == "apiKey" && s.In == "header":
		if req.Header.Get(s.Name) != "" {
			return nil
		}
	}
	return in.NewError(nil)
}

// harborResponse is one answer of the adapter, read whole.
type harborResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r harborResponse) String() string {
	body := string(r.body)
	if len(body) > 2048 {
		body = body[:2048] + "…"
	}
	return fmt.Sprintf("status %d, Content-Type %q, Refresh-After %q, body %s", r.status, r.header.Get("Content-Type"), r.header.Get("Refresh-After"), body)
}

// harborClient talks to the adapter the way Harbor's core does: 5 s per
// request, redirects not followed, its credentials on every request. It
// reports spec violations with t.Errorf, so it may run in goroutines.
type harborClient struct {
	t       testing.TB
	spec    *harborSpec
	base    string
	auth    func(*http.Request)
	http    *http.Client
	answers *harborAnswers
}

// harborAnswers keeps what a client and those made from it (with) were
// answered.
type harborAnswers struct {
	mu     sync.Mutex
	bodies [][]byte // every body, for the credential check
	found  int      // 302 answers
}

func newHarborClient(tb testing.TB, spec *harborSpec, base string, auth func(*http.Request)) *harborClient {
	return &harborClient{t: tb, spec: spec, base: base, auth: auth, answers: &harborAnswers{}, http: &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// with is a client of the same adapter with other credentials.
func (c *harborClient) with(auth func(*http.Request)) *harborClient {
	o := *c
	o.auth = auth
	return &o
}

// found is how many answers were 302.
func (c *harborClient) found() int {
	c.answers.mu.Lock()
	defer c.answers.mu.Unlock()
	return c.answers.found
}

func apiKeyAuth(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("X-ScannerAdapter-API-Key", key) }
}

func bearerAuth(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func basicAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func noAuth(*http.Request) {}

// offSpec marks a request that breaks the spec on purpose (bad JSON, no
// credentials): it is sent unvalidated; its answer is still validated.
type offSpec bool

const (
	conforming offSpec = false
	breaksSpec offSpec = true
)

// do sends method path (under base) with body and the client's
// credentials, checks the request and the answer against the spec, and
// returns the answer (status 0 when there was none).
func (c *harborClient) do(method, path string, query url.Values, header http.Header, body []byte, off offSpec) harborResponse {
	c.t.Helper()
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, u, err)
		return harborResponse{}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c.auth(req)
	route, params, err := c.spec.router.FindRoute(req)
	if err != nil {
		c.t.Errorf("%s %s is no operation of the spec: %v", method, u, err)
		return harborResponse{}
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: c.spec.opts}
	if !off {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("the test's own %s %s does not conform to the spec: %v", method, u, err)
		}
		if body != nil { // ValidateRequest read it
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, u, err)
		return harborResponse{}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Errorf("%s %s: reading the answer: %v", method, u, err)
		return harborResponse{}
	}
	r := harborResponse{status: resp.StatusCode, header: resp.Header, body: data}
	c.answers.mu.Lock()
	c.answers.bodies = append(c.answers.bodies, data)
	if r.status == http.StatusFound {
		c.answers.found++
	}
	c.answers.mu.Unlock()
	if err := c.spec.validateResponse(in, r); err != nil {
		c.t.Errorf("%s %s: the answer does not conform to the spec: %v\n%s", method, u, err, r)
	}
	return r
}

// validateResponse checks an answer against the operation's responses:
// an undocumented status is an error, except 401, which the spec implies
// (it declares security schemes) but never describes.
func (s *harborSpec) validateResponse(in *openapi3filter.RequestValidationInput, r harborResponse) error {
	if r.status == http.StatusUnauthorized {
		return nil
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                s.opts,
	})
}

func (c *harborClient) metadata() harborResponse {
	c.t.Helper()
	return c.do(http.MethodGet, "/metadata", nil, nil, nil, conforming)
}

// submit POSTs a scan request body.
func (c *harborClient) submit(body []byte, off offSpec) harborResponse {
	c.t.Helper()
	return c.do(http.MethodPost, "/scan", nil, http.Header{"Content-Type": {harborScanRequest}}, body, off)
}

// report GETs the report of scan id as accept (with sbomType as the
// sbom_media_type parameter when not "").
func (c *harborClient) report(id, accept, sbomType string) harborResponse {
	c.t.Helper()
	var q url.Values
	if sbomType != "" {
		q = url.Values{"sbom_media_type": {sbomType}}
	}
	return c.do(http.MethodGet, "/scan/"+url.PathEscape(id)+"/report", q, http.Header{"Accept": {accept}}, nil, conforming)
}

// poll does what Harbor does after a 202 for one report type: the first GET
// after harborFirstPoll, then after each 302's Refresh-After (capped at
// maxWait), until an answer other than 302 or the timeout. A 302 without a
// valid Refresh-After is an error.
func (c *harborClient) poll(id string, kind harborKind, maxWait, timeout time.Duration) harborResponse {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	time.Sleep(harborFirstPoll)
	for {
		r := c.report(id, kind.accept, kind.sbomType)
		if r.status != http.StatusFound {
			return r
		}
		ra := r.header.Get("Refresh-After")
		secs, err := strconv.Atoi(ra)
		if err != nil || secs < 0 {
			c.t.Errorf("scan %s, %s: a 302 without a valid Refresh-After (%q): %s", id, kind, ra, r)
			return r
		}
		if time.Now().After(deadline) {
			c.t.Errorf("scan %s, %s: still 302 after %s", id, kind, timeout)
			return r
		}
		time.Sleep(max(min(time.Duration(secs)*time.Second, maxWait), 50*time.Millisecond))
	}
}

// harborKind is one report Harbor polls for: a produced MIME type and, for
// an SBOM, its format.
type harborKind struct{ accept, sbomType string }

func (k harborKind) String() string {
	if k.sbomType == "" {
		return k.accept
	}
	return k.accept + " as " + k.sbomType
}

// harborKinds are the reports the adapter must produce.
var harborKinds = []harborKind{
	{accept: harborVulnHarbor}, {accept: harborVulnReport}, {accept: harborVulnRaw},
	{accept: harborSBOM, sbomType: sbomSPDX}, {accept: harborSBOM, sbomType: sbomCycloneDX},
}

// harborMetadata is GET /metadata's answer.
type harborMetadata struct {
	Scanner struct {
		Name    string `json:"name"`
		Vendor  string `json:"vendor"`
		Version string `json:"version"`
	} `json:"scanner"`
	Capabilities []struct {
		Type                 string   `json:"type"`
		Consumes             []string `json:"consumes_mime_types"`
		Produces             []string `json:"produces_mime_types"`
		AdditionalAttributes struct {
			SBOMMediaTypes []string `json:"sbom_media_types"`
		} `json:"additional_attributes"`
	} `json:"capabilities"`
}

// kinds lists the reports Harbor would poll for: each produced MIME type,
// an SBOM type once per SBOM format.
func (m harborMetadata) kinds() []harborKind {
	var out []harborKind
	for _, c := range m.Capabilities {
		for _, p := range c.Produces {
			if c.Type == "sbom" {
				for _, f := range c.AdditionalAttributes.SBOMMediaTypes {
					out = append(out, harborKind{accept: p, sbomType: f})
				}
				continue
			}
			out = append(out, harborKind{accept: p})
		}
	}
	return out
}

// checkHarborMetadata reads /metadata and checks that the adapter consumes
// image manifests and produces every report type of harborKinds.
func checkHarborMetadata(t *testing.T, c *harborClient) {
	t.Helper()
	r := c.metadata()
	var m harborMetadata
	if r.status != http.StatusOK || json.Unmarshal(r.body, &m) != nil {
		t.Fatalf("GET /metadata: %s", r)
	}
	if m.Scanner.Name == "" || m.Scanner.Version == "" {
		t.Errorf("metadata names no scanner: %+v", m.Scanner)
	}
	for _, cp := range m.Capabilities {
		if !slices.Contains(cp.Consumes, ociManifest) || !slices.Contains(cp.Consumes, dockerManifest) {
			t.Errorf("capability %q consumes %q, want the OCI and Docker v2 manifest types", cp.Type, cp.Consumes)
		}
	}
	got, want := kindStrings(m.kinds()), kindStrings(harborKinds)
	if !slices.Equal(got, want) {
		t.Errorf("metadata: Harbor would poll for\n  %q\nwant\n  %q\n%s", got, want, r.body)
	}
}

func kindStrings(ks []harborKind) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.String())
	}
	slices.Sort(out)
	return out
}

// harborScanBody is a scan request as Harbor sends it for an artifact of
// its registry, every capability enabled.
func harborScanBody(registryURL, authorization, repo, digest, tag, mimeType string) []byte {
	b, _ := json.Marshal(map[string]any{
		"registry": map[string]string{"url": registryURL, "authorization": authorization},
		"artifact": map[string]string{"repository": repo, "digest": digest, "tag": tag, "mime_type": mimeType},
		"enabled_capabilities": []map[string]any{
			{"type": "vulnerability", "produces_mime_types": []string{harborVulnHarbor, harborVulnReport, harborVulnRaw}},
			{"type": "sbom", "produces_mime_types": []string{harborSBOM}, "parameters": map[string]any{"sbom_media_types": []string{sbomSPDX, sbomCycloneDX}}},
		},
	})
	return b
}

// accepted checks a 202 to a scan request and returns the scan id.
func accepted(t *testing.T, what string, r harborResponse) string {
	t.Helper()
	var sr struct {
		ID string `json:"id"`
	}
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &sr) != nil || sr.ID == "" {
		t.Fatalf("POST /scan (%s): %s, want 202 with an id", what, r)
	}
	return sr.ID
}

// expectStatus fails unless r has status want; an error status must carry
// the spec's error object with a message (401 aside, which the spec does
// not describe).
func expectStatus(t *testing.T, what string, r harborResponse, want int) {
	t.Helper()
	if r.status != want {
		t.Errorf("%s: %s, want status %d", what, r, want)
		return
	}
	if want >= 400 && want != http.StatusUnauthorized && want != http.StatusNotFound {
		if msg := harborErrorMessage(r); msg == "" {
			t.Errorf("%s: status %d without {\"error\":{\"message\":...}}: %s", what, want, r)
		}
	}
}

func harborErrorMessage(r harborResponse) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Message
}

// harborVulnerabilities is the Harbor vulnerability report.
type harborVulnerabilities struct {
	Artifact struct {
		Repository string `json:"repository"`
		Digest     string `json:"digest"`
	} `json:"artifact"`
	Severity        string `json:"severity"`
	Vulnerabilities []struct {
		ID               string                     `json:"id"`
		Package          string                     `json:"package"`
		Version          string                     `json:"version"`
		FixVersion       string                     `json:"fix_version"`
		Severity         string                     `json:"severity"`
		VendorAttributes map[string]json.RawMessage `json:"vendor_attributes"`
	} `json:"vulnerabilities"`
}

// harborIDs maps each id a Harbor report may give a Debian finding to the
// OSV record it stands for: the record's own id, or one of its CVE
// aliases (Harbor's CVE allowlist works on CVE ids), read from the shared
// records.
func harborIDs(tb testing.TB) map[string][]string {
	tb.Helper()
	ids := map[string][]string{}
	for _, r := range readRecords(tb, "../../shared/testdata/osv/debian") {
		ids[r.ID] = append(ids[r.ID], r.ID)
		for _, a := range r.Aliases {
			if strings.HasPrefix(a, "CVE-") {
				ids[a] = append(ids[a], r.ID)
			}
		}
	}
	return ids
}

// checkVulnReport checks a vulnerability report in a Harbor format: the
// artifact's repository and digest; every finding of want ("osv-id
// package") and no other, each as its OSV id or a CVE alias (ids, from
// harborIDs; an alias with the OSV id in assay's vendor attributes), with
// a version, a fix, a Harbor severity and assay's vendor attributes; and
// the report's severity the highest of its items'.
func checkVulnReport(t *testing.T, what string, r harborResponse, repo, digest string, want map[string]bool, ids map[string][]string) {
	t.Helper()
	var rep harborVulnerabilities
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if rep.Artifact.Repository != repo || rep.Artifact.Digest != digest {
		t.Errorf("%s: artifact %+v, want %s@%s", what, rep.Artifact, repo, digest)
	}
	got := map[string]bool{}
	top := 0
	for _, v := range rep.Vulnerabilities {
		key := v.ID + " " + v.Package
		attrs := bytes.TrimSpace(v.VendorAttributes["assay"])
		for _, osv := range ids[v.ID] {
			if want[osv+" "+v.Package] {
				key = osv + " " + v.Package
				if osv != v.ID && !bytes.Contains(attrs, []byte(`"`+osv+`"`)) {
					t.Errorf("%s: item %s %s stands for %s, which its vendor_attributes.assay does not name: %s", what, v.ID, v.Package, osv, attrs)
				}
			}
		}
		if got[key] {
			t.Errorf("%s: %s twice", what, key)
		}
		got[key] = true
		sev := slices.Index(harborSeverities, v.Severity)
		top = max(top, sev)
		if v.Version == "" || v.FixVersion == "" || sev < 0 || len(attrs) == 0 || attrs[0] != '{' {
			t.Errorf("%s: item %s %s: version %q, fix_version %q, severity %q, vendor_attributes.assay %s; want a version, a fix, a Harbor severity and an object",
				what, v.ID, v.Package, v.Version, v.FixVersion, v.Severity, attrs)
		}
	}
	diffSets(t, what, got, want)
	if len(rep.Vulnerabilities) > 0 && rep.Severity != harborSeverities[top] {
		t.Errorf("%s: report severity %q, want the highest of its items', %q", what, rep.Severity, harborSeverities[top])
	}
}

// checkRawReport checks the raw report: assay's own report of the digest
// with want's findings.
func checkRawReport(t *testing.T, r harborResponse, digest string, want map[string]bool) {
	t.Helper()
	var rep report.Report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Errorf("the raw report is not assay's report: %v", err)
		return
	}
	if rep.Digest != digest {
		t.Errorf("the raw report's digest is %q, want %s", rep.Digest, digest)
	}
	diffSets(t, "the raw report", findingSet(&rep, "", false), want)
}

// checkSBOMReport checks an SBOM report: its media_type and the document's
// marker field (spdxVersion, bomFormat).
func checkSBOMReport(t *testing.T, r harborResponse, sbomType, digest string) {
	t.Helper()
	var rep struct {
		Artifact struct {
			Digest string `json:"digest"`
		} `json:"artifact"`
		MediaType string         `json:"media_type"`
		SBOM      map[string]any `json:"sbom"`
	}
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Errorf("SBOM %s: %v", sbomType, err)
		return
	}
	if rep.MediaType != sbomType || rep.Artifact.Digest != digest {
		t.Errorf("SBOM %s: media_type %q, artifact digest %q (want %s)", sbomType, rep.MediaType, rep.Artifact.Digest, digest)
	}
	switch sbomType {
	case sbomSPDX:
		if v, _ := rep.SBOM["spdxVersion"].(string); !strings.HasPrefix(v, "SPDX-") {
			t.Errorf("SPDX SBOM: spdxVersion %q", v)
		}
	case sbomCycloneDX:
		if f, _ := rep.SBOM["bomFormat"].(string); f != "CycloneDX" {
			t.Errorf("CycloneDX SBOM: bomFormat %q", f)
		}
	}
}

// harborAdapter is an assayd serving the adapter.
type harborAdapter struct {
	d    *daemonProc
	base string // http://host:port/api/v1
	spec *harborSpec
}

// startHarborAdapter starts assayd with the adapter on loopback in auth mode
// with secret, accepting scans from registries; with plugins (a
// plugins.enabled value, "" for no analyzer), the shared OSV data too.
func startHarborAdapter(tb testing.TB, mode, secret string, registries []string, plugins string) *harborAdapter {
	tb.Helper()
	file := filepath.Join(tb.TempDir(), "harbor-secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	addr := freePort(tb)
	args := []string{
		"--harbor.listen", addr,
		"--harbor.auth", mode,
		"--harbor.secret_file", file,
		"--harbor.registries", strings.Join(registries, ","),
	}
	if plugins != "" {
		args = append(args, "--plugins.dir", filepath.Join(binDir, "plugins"), "--plugins.enabled", plugins)
	}
	a := &harborAdapter{d: startDaemon(tb, daemonOpts{args: args}), base: "http://" + addr + "/api/v1"}
	if plugins != "" {
		if out, errOut, code := a.d.assay("db", "import", "../../shared/testdata/osv"); code != 0 {
			tb.Fatalf("assay db import: exit %d\n%s%s", code, out, errOut)
		}
	}
	a.waitListening(tb)
	a.spec = loadHarborSpec(tb, a.base)
	return a
}

// waitListening waits for the adapter's port to answer (assayd reports
// healthy on its socket; the adapter's listener may come a moment later).
func (a *harborAdapter) waitListening(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(a.base + "/metadata"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("the Harbor adapter does not answer on %s", a.base)
}

func (a *harborAdapter) client(tb testing.TB, auth func(*http.Request)) *harborClient {
	return newHarborClient(tb, a.spec, a.base, auth)
}

// pollAll polls scan id for every kind at once, one goroutine each, as
// Harbor does, and returns the final answers by kind.
func pollAll(c *harborClient, id string, kinds []harborKind) map[harborKind]harborResponse {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[harborKind]harborResponse{}
	for _, k := range kinds {
		wg.Go(func() {
			r := c.poll(id, k, harborPollCap, harborScanTimeout)
			mu.Lock()
			out[k] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// assertNoSecrets fails for each secret (name → value) found in assayd's
// log, in a file under its state dir or in an answer the client (or one
// made from it) had from the adapter.
func assertNoSecrets(t *testing.T, d *daemonProc, c *harborClient, secrets map[string]string) {
	t.Helper()
	log := d.log.String()
	for name, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the %s is in assayd's log", name)
		}
	}
	c.answers.mu.Lock()
	for _, b := range c.answers.bodies {
		for name, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("the %s is in an answer of the adapter: %.300s", name, b)
			}
		}
	}
	c.answers.mu.Unlock()
	files := 0
	err := filepath.WalkDir(d.State, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by assayd or containerd meanwhile
			}
			return err
		}
		if !e.Type().IsRegular() { // directories, sockets, links
			return nil
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		files++
		for name, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("the %s is in %s", name, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking the state dir: %v", err)
	}
	t.Logf("no credential in assayd's log (%d bytes), %d files under its state dir, or the adapter's answers", len(log), files)
}

// The adapter end to end, as Harbor uses it with a robot account: the
// real Debian 12 image in Debian's docker-registry behind htpasswd; assayd
// with the dpkg analyzer and the shared OSV data, its adapter behind an
// API key; /metadata, a scan request with the robot's Basic credentials,
// the five reports polled at once; the error statuses; failed scans;
// the report after assayd is SIGKILLed and restarted; and no credential
// left anywhere.
// The robot account and image of the adapter tests.
const robotUser, robotRepo, robotTag = "robot$harbor+scan", "library/debian", "12"

// robotRegistry is Debian's docker-registry with htpasswd auth holding the
// shared Debian image as repo:tag, pushed by the robot; it returns the
// address, the robot's password, its Basic authorization and the digest.
func robotRegistry(t testing.TB) (reg, pass, robot, digest string) {
	t.Helper()
	pass = randomHex(16)
	reg = htpasswdRegistry(t, robotUser, pass)
	skopeoPush(t, reg, robotRepo+":"+robotTag, robotUser+":"+pass)
	robot = basicAuthorization(robotUser, pass)
	return reg, pass, robot, pushedDigest(t, reg, robotRepo, robotTag, robot)
}

func TestHarborAdapter(t *testing.T) {
	const user, repo, tag = robotUser, robotRepo, robotTag
	reg, pass, robot, digest := robotRegistry(t)
	if status, _ := manifestStatus(t, reg, repo, tag, ""); status != http.StatusUnauthorized {
		t.Fatalf("the registry answers %d to a manifest GET without credentials, want 401", status)
	}
	// assayd pulls through a gate, so that the scan is pending until the
	// test has seen the adapter say so.
	gate := newRegistryGate(t, reg)
	regURL := "http://" + gate.Addr

	key := randomHex(20)
	a := startHarborAdapter(t, "api_key", key, []string{regURL}, "dpkg")
	c := a.client(t, apiKeyAuth(key))
	checkHarborMetadata(t, c)

	// Status codes of bad requests.
	scanBody := harborScanBody(regURL, robot, repo, digest, tag, ociManifest)
	expectStatus(t, "GET /metadata with a wrong key", c.with(apiKeyAuth(key+"x")).metadata(), http.StatusUnauthorized)
	expectStatus(t, "POST /scan with a wrong key", c.with(apiKeyAuth(randomHex(20))).submit(scanBody, conforming), http.StatusUnauthorized)
	expectStatus(t, "POST /scan without a key", c.with(noAuth).submit(scanBody, breaksSpec), http.StatusUnauthorized)
	expectStatus(t, "POST /scan of bad JSON", c.submit([]byte(`{"registry": {"url": "`+regURL+`"`), breaksSpec), http.StatusBadRequest)
	expectStatus(t, "POST /scan with a number for registry.url", c.submit([]byte(`{"registry": {"url": 7}, "artifact": {"repository": "`+repo+`", "digest": "`+digest+`"}}`), breaksSpec), http.StatusBadRequest)
	expectStatus(t, "POST /scan naming an unlisted registry", c.submit(harborScanBody("http://127.0.0.1:1", robot, repo, digest, tag, ociManifest), conforming), http.StatusUnprocessableEntity)
	expectStatus(t, "POST /scan of a bad digest", c.submit(harborScanBody(regURL, robot, repo, "sha256:1234", tag, ociManifest), conforming), http.StatusUnprocessableEntity)
	expectStatus(t, "GET the report of an unknown scan", c.report("no-such-scan", harborVulnHarbor, ""), http.StatusNotFound)

	start := time.Now()
	id := accepted(t, "the Debian image", c.submit(scanBody, conforming))
	expectStatus(t, "GET a report as application/x-nonsense", c.report(id, "application/x-nonsense", ""), http.StatusNotImplemented)
	expectStatus(t, "GET the SBOM without sbom_media_type", c.report(id, harborSBOM, ""), http.StatusBadRequest)
	for _, k := range harborKinds {
		// Held at the gate: pending, and the adapter says when to ask again.
		r := c.report(id, k.accept, k.sbomType)
		if secs, err := strconv.Atoi(r.header.Get("Refresh-After")); r.status != http.StatusFound || err != nil || secs < 0 {
			t.Errorf("report %s of a pending scan: %s, want 302 with Refresh-After: <seconds>", k, r)
		}
	}
	// Harbor's pollers start while the scan is still held; the gate opens
	// once each of them has had its first 302 (the five above, five more).
	go func() {
		for c.found() < 2*len(harborKinds) {
			select {
			case <-t.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		gate.Open()
	}()
	reports := pollAll(c, id, harborKinds)
	gate.Open()
	t.Logf("scan %s: every report in %s, %d answers 302", id, time.Since(start).Round(time.Millisecond), c.found())
	want, ids := debianWant(t), harborIDs(t)
	checkReports(t, reports, repo, digest, want, ids)
	if t.Failed() {
		t.FailNow()
	}

	// Failed scans: a digest the registry does not have, and the robot's
	// password wrong; Harbor reads 500 and the error's message. The latter
	// asks for the same image as a Docker v2 manifest, a digest assayd has
	// not scanned, so that no stored report can answer for it.
	skopeoPush(t, reg, repo+":"+tag+"-docker", user+":"+pass, "--format", "v2s2")
	docker := pushedDigest(t, reg, repo, tag+"-docker", robot)
	wrong := randomHex(16)
	missing := "sha256:" + randomHex(32)
	failed := map[string]string{
		"a digest the registry does not have": accepted(t, "a missing digest", c.submit(harborScanBody(regURL, robot, repo, missing, "", ociManifest), conforming)),
		"a wrong robot password":              accepted(t, "a wrong password", c.submit(harborScanBody(regURL, basicAuthorization(user, wrong), repo, docker, tag+"-docker", dockerManifest), conforming)),
	}
	var wg sync.WaitGroup
	for what, fid := range failed {
		wg.Go(func() {
			r := c.poll(fid, harborKind{accept: harborVulnHarbor}, harborPollCap, harborScanTimeout)
			if r.status != http.StatusInternalServerError || harborErrorMessage(r) == "" {
				t.Errorf("the report of a scan of %s: %s, want 500 with an error message", what, r)
				return
			}
			t.Logf("a scan of %s: 500 %q", what, harborErrorMessage(r))
		})
	}
	wg.Wait()

	// Restart durability: the finished scan's reports survive SIGKILL.
	a.d.kill()
	a.d.restart()
	a.waitListening(t)
	after := map[harborKind]harborResponse{}
	for _, k := range harborKinds {
		after[k] = c.report(id, k.accept, k.sbomType)
	}
	checkReports(t, after, repo, digest, want, ids)

	assertNoSecrets(t, a.d, c, map[string]string{
		"robot password":                pass,
		"robot Basic credentials":       strings.TrimPrefix(robot, "Basic "),
		"wrong robot password":          wrong,
		"wrong robot Basic credentials": strings.TrimPrefix(basicAuthorization(user, wrong), "Basic "),
		"adapter API key":               key,
	})
}

// checkReports checks the answers for every kind of a finished scan of the
// Debian image: 200, and each in its format.
func checkReports(t *testing.T, reports map[harborKind]harborResponse, repo, digest string, want map[string]bool, ids map[string][]string) {
	t.Helper()
	for _, k := range harborKinds {
		r := reports[k]
		if r.status != http.StatusOK {
			t.Errorf("report %s: %s, want 200", k, r)
			continue
		}
		switch {
		case k.accept == harborVulnRaw:
			checkRawReport(t, r, digest, want)
		case k.sbomType != "":
			checkSBOMReport(t, r, k.sbomType, digest)
		default:
			checkVulnReport(t, k.accept, r, repo, digest, want, ids)
		}
	}
}

// Each way Harbor authenticates to the adapter: the right credentials get
// the metadata; none, wrong ones, or the right secret sent as another mode
// get 401.
func TestHarborAdapterAuthModes(t *testing.T) {
	secret := randomHex(20)
	modes := []struct {
		mode, secret string
		right, other func(*http.Request)
		wrong        func(*http.Request)
	}{
		{"api_key", secret, apiKeyAuth(secret), bearerAuth(secret), apiKeyAuth(randomHex(20))},
		{"bearer", secret, bearerAuth(secret), apiKeyAuth(secret), bearerAuth(randomHex(20))},
		{"basic", "harbor-admin:" + secret, basicAuth("harbor-admin", secret), bearerAuth("harbor-admin:" + secret), basicAuth("harbor-admin", randomHex(20))},
	}
	for _, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			a := startHarborAdapter(t, m.mode, m.secret, []string{"http://127.0.0.1:1"}, "")
			c := a.client(t, m.right)
			checkHarborMetadata(t, c)
			expectStatus(t, "no credentials", c.with(noAuth).do(http.MethodGet, "/metadata", nil, nil, nil, breaksSpec), http.StatusUnauthorized)
			expectStatus(t, "wrong credentials", c.with(m.wrong).metadata(), http.StatusUnauthorized)
			expectStatus(t, "the secret in another mode's header", c.with(m.other).metadata(), http.StatusUnauthorized)
			expectStatus(t, "a report with no credentials", c.with(noAuth).do(http.MethodGet, "/scan/x/report", nil, http.Header{"Accept": {harborVulnHarbor}}, nil, breaksSpec), http.StatusUnauthorized)
			assertNoSecrets(t, a.d, c, map[string]string{"adapter secret": secret})
		})
	}
}

// A registry behind token auth, as Harbor's own is: Harbor hands the
// adapter a JWT scoped to repository:<repo>:pull, which the adapter must
// send as it is. The registry (distribution 2.8) verifies the token the
// test mints against the test's root certificate.
func TestHarborBearerRegistry(t *testing.T) {
	const repo, tag = "team/debian", "12"
	reg := newTokenRegistry(t)
	skopeoPush(t, reg.Addr, repo+":"+tag, reg.PushUser+":"+reg.PushPass)
	jwt := reg.Mint(t, repo)
	if status, _ := manifestStatus(t, reg.Addr, repo, tag, ""); status != http.StatusUnauthorized {
		t.Fatalf("the token registry answers %d to a manifest GET without a token, want 401", status)
	}
	if status, _ := manifestStatus(t, reg.Addr, repo, tag, "Bearer "+reg.Mint(t, "team/other")); status != http.StatusUnauthorized {
		t.Fatalf("the token registry answers %d to a token for another repository, want 401", status)
	}
	digest := pushedDigest(t, reg.Addr, repo, tag, "Bearer "+jwt)

	token := randomHex(20)
	regURL := "http://" + reg.Addr
	a := startHarborAdapter(t, "bearer", token, []string{regURL}, "dpkg")
	c := a.client(t, bearerAuth(token))
	checkHarborMetadata(t, c)
	id := accepted(t, "with a pull token", c.submit(harborScanBody(regURL, "Bearer "+jwt, repo, digest, tag, ociManifest), conforming))
	r := c.poll(id, harborKind{accept: harborVulnHarbor}, harborPollCap, harborScanTimeout)
	if r.status != http.StatusOK {
		t.Fatalf("the report of a scan with a pull token: %s, want 200", r)
	}
	checkVulnReport(t, "with a pull token", r, repo, digest, debianWant(t), harborIDs(t))
	sig := jwt[strings.LastIndex(jwt, ".")+1:]
	assertNoSecrets(t, a.d, c, map[string]string{"pull token": jwt, "pull token's signature": sig, "adapter token": token})
}

// firstOK polls the report of scan id as kind every interval, Refresh-After
// ignored, and returns when it was first 200 (the adapter's own latency).
func firstOK(c *harborClient, id string, kind harborKind, every, timeout time.Duration) (time.Time, harborResponse) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := c.report(id, kind.accept, kind.sbomType)
		if r.status != http.StatusFound || time.Now().After(deadline) {
			return time.Now(), r
		}
		time.Sleep(every)
	}
}

// harborWait is how long one scan request took to a 200 vulnerability
// report: polled tightly (the adapter) and on Harbor's schedule (the user).
type harborWait struct {
	id              string
	adapter, harbor time.Duration
}

// timeHarborScan POSTs body and polls its Harbor vulnerability report both
// ways at once.
func timeHarborScan(tb testing.TB, c *harborClient, body []byte) harborWait {
	tb.Helper()
	kind := harborKind{accept: harborVulnHarbor}
	start := time.Now()
	r := c.submit(body, conforming)
	var sr struct {
		ID string `json:"id"`
	}
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &sr) != nil {
		tb.Fatalf("POST /scan: %s", r)
	}
	w := harborWait{id: sr.ID}
	var wg sync.WaitGroup
	wg.Go(func() {
		at, r := firstOK(c, sr.ID, kind, 50*time.Millisecond, harborScanTimeout)
		if r.status != http.StatusOK {
			tb.Errorf("scan %s: %s", sr.ID, r)
		}
		w.adapter = at.Sub(start)
	})
	wg.Go(func() {
		// Refresh-After as the adapter says, uncapped: Harbor's own waits.
		if r := c.poll(sr.ID, kind, harborScanTimeout, harborScanTimeout); r.status != http.StatusOK {
			tb.Errorf("scan %s on Harbor's schedule: %s", sr.ID, r)
		}
		w.harbor = time.Since(start)
	})
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	return w
}

// BenchmarkHarborFlow: from POST /scan to the first 200 of the Harbor
// vulnerability report, the shared Debian image in Debian's docker-registry
// behind htpasswd, the robot's Basic credentials in the request, the
// slice's analyzers and the shared OSV data. Each figure twice: polled
// every 50 ms (the adapter's latency) and on Harbor's schedule (the first
// GET after 2 s, then Refresh-After; what a Harbor user waits). Per run, on
// a fresh daemon: cold, the first scan (empty state dir, content store and
// layer cache); rescan, the same artifact again, as Harbor's "scan" button
// asks; new digest, the same image pushed as a Docker v2 manifest, a
// digest new to the daemon over the same layers.
//
//	ASSAY_E2E=1 ASSAY_BIN=$PWD/bin go test -run '^$' -bench HarborFlow -benchtime 1x -v ./e2e/
func BenchmarkHarborFlow(b *testing.B) {
	const user, repo, tag, runs = robotUser, robotRepo, robotTag, 3
	reg, pass, robot, digest := robotRegistry(b)
	skopeoPush(b, reg, repo+":"+tag+"-docker", user+":"+pass, "--format", "v2s2")
	oci := harborScanBody("http://"+reg, robot, repo, digest, tag, ociManifest)
	docker := harborScanBody("http://"+reg, robot, repo, pushedDigest(b, reg, repo, tag+"-docker", robot), tag+"-docker", dockerManifest)

	var cold, rescan, fresh []harborWait
	for i := range runs {
		func() {
			s := newBenchScope(b)
			defer s.close()
			key := randomHex(20)
			a := startHarborAdapter(s, "api_key", key, []string{"http://" + reg}, benchPlugins)
			c := a.client(s, apiKeyAuth(key))
			w1 := timeHarborScan(s, c, oci)
			w2 := timeHarborScan(s, c, oci)
			w3 := timeHarborScan(s, c, docker)
			cold, rescan, fresh = append(cold, w1), append(rescan, w2), append(fresh, w3)
			b.Logf("run %d: cold %s (Harbor sees %s); rescan %s (%s; scan id %s, the cold one %s); new digest %s (%s)", i+1,
				benchMs(w1.adapter), benchMs(w1.harbor), benchMs(w2.adapter), benchMs(w2.harbor), w2.id, w1.id,
				benchMs(w3.adapter), benchMs(w3.harbor))
		}()
	}
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	for _, m := range []struct {
		name  string
		waits []harborWait
	}{{"cold", cold}, {"rescan", rescan}, {"newdigest", fresh}} {
		var adapter, harbor []time.Duration
		for _, w := range m.waits {
			adapter, harbor = append(adapter, w.adapter), append(harbor, w.harbor)
		}
		med, lo, hi := benchSpread(adapter)
		hmed, hlo, hhi := benchSpread(harbor)
		b.Logf("%-9s submit → first 200: adapter median %s [%s, %s]; on Harbor's schedule median %s [%s, %s]",
			m.name, benchMs(med), benchMs(lo), benchMs(hi), benchMs(hmed), benchMs(hlo), benchMs(hhi))
		b.ReportMetric(benchMsf(med), m.name+"-ms")
		b.ReportMetric(benchMsf(hmed), m.name+"-harbor-ms")
	}
}

// The robot credentials of a scan live in memory only: a scan that assayd
// accepted and was killed before it could pull fails after the restart
// with a message asking for a resubmission, rather than pulling without
// them; the resubmitted scan gets its report.
func TestHarborCredentialsDoNotOutliveTheDaemon(t *testing.T) {
	const repo, tag = robotRepo, robotTag
	reg, pass, robot, digest := robotRegistry(t)
	gate := newRegistryGate(t, reg)
	regURL := "http://" + gate.Addr
	key := randomHex(20)
	a := startHarborAdapter(t, "api_key", key, []string{regURL}, "")
	c := a.client(t, apiKeyAuth(key))
	body := harborScanBody(regURL, robot, repo, digest, tag, ociManifest)

	id := accepted(t, "the scan held at the gate", c.submit(body, conforming))
	expectStatus(t, "the held scan's report", c.report(id, harborVulnHarbor, ""), http.StatusFound)
	a.d.kill()
	gate.Open()
	a.d.restart()
	a.waitListening(t)
	r := c.poll(id, harborKind{accept: harborVulnHarbor}, 200*time.Millisecond, time.Minute)
	if r.status != http.StatusInternalServerError || !strings.Contains(harborErrorMessage(r), "held in memory only") {
		t.Fatalf("the scan accepted before the restart: %s", r)
	}
	again := accepted(t, "the resubmitted scan", c.submit(body, conforming))
	if r := c.poll(again, harborKind{accept: harborVulnHarbor}, 200*time.Millisecond, time.Minute); r.status != http.StatusOK {
		t.Fatalf("the resubmitted scan: %s", r)
	}
	assertNoSecrets(t, a.d, c, map[string]string{"robot password": pass, "its Basic value": strings.TrimPrefix(robot, "Basic "), "the API key": key})
}
