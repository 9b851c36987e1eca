package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// DefaultSocket is where assayd listens unless configured otherwise.
const DefaultSocket = "/run/assay/assayd.sock"

// baseURL is what requests are addressed to; the host is ignored by the
// server and the transport only ever dials the socket.
const baseURL = "http://assay"

// Client talks to one assayd socket. It is safe for concurrent use.
type Client struct {
	socket  string
	base    string // baseURL for the socket; the server's URL for NewRemote
	token   string // a bearer token, for NewRemote
	timeout time.Duration
	http    *http.Client
}

// Option adjusts a Client made by New.
type Option func(*Client)

// WithTimeout bounds every request to d; zero means no bound beyond the
// caller's context. For Events it bounds only the wait for the response
// header, since the stream itself is meant to stay open.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// New returns a Client of the assayd socket at socketPath.
func New(socketPath string, opts ...Option) *Client {
	c := &Client{socket: socketPath, base: baseURL}
	for _, o := range opts {
		o(c)
	}
	tr := &http.Transport{
		// Proxy stays nil: HTTP_PROXY must never apply to a local socket.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socketPath)
			if err != nil {
				return nil, &ConnectError{Socket: socketPath, Err: err}
			}
			return conn, nil
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	c.http = &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c
}

// NewRemote returns a Client of assayd's TCP API at server
// (https://HOST:PORT, or http:// on loopback), authenticating with a
// bearer token; roots, if not nil, are the CAs its certificate may chain
// to (else the system's).
func NewRemote(server, token string, roots *x509.CertPool, opts ...Option) (*Client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("client: server %q: want https://HOST:PORT: %w", server, errdefs.ErrInvalid)
	}
	if token == "" {
		return nil, fmt.Errorf("client: a token is needed to reach %s: %w", server, errdefs.ErrInvalid)
	}
	c := &Client{socket: server, base: strings.TrimSuffix(server, "/"), token: token}
	for _, o := range opts {
		o(c)
	}
	c.http = &http.Client{
		// Proxy stays nil: the token goes to the server named, nowhere else.
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			MaxIdleConns:    4,
			IdleConnTimeout: 30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

// Socket is the socket path the Client dials (or the server's URL).
func (c *Client) Socket() string { return c.socket }

// CloseIdleConnections releases kept-alive connections; the Client stays
// usable.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// ConnectError says the socket could not be reached: assayd is not running,
// the path is wrong, or the caller may not connect.
type ConnectError struct {
	Socket string
	Err    error
}

func (e *ConnectError) Error() string {
	cause := e.Err
	// "connect: no such file or directory" says it; the *net.OpError around
	// it would repeat the socket path.
	var op *net.OpError
	if errors.As(cause, &op) && op.Err != nil {
		cause = op.Err
	}
	hint := "is assayd running? set --socket or ASSAY_SOCKET"
	if e.denied() {
		hint = "you must be root or in the group that owns the socket"
	}
	return fmt.Sprintf("cannot reach assayd at %s: %v (%s)", e.Socket, cause, hint)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, errdefs.ErrDenied) hold for a refused permission
// and errors.Is(err, errdefs.ErrUnavailable) for anything else.
func (e *ConnectError) Is(target error) bool {
	if e.denied() {
		return target == errdefs.ErrDenied
	}
	return target == errdefs.ErrUnavailable
}

func (e *ConnectError) denied() bool {
	return errors.Is(e.Err, syscall.EACCES) || errors.Is(e.Err, syscall.EPERM) || errors.Is(e.Err, os.ErrPermission)
}

// APIError is an error answer of the API: {"error":{"code","message"}} with
// its HTTP status. Status is 0 for an error sent inside the event stream.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("assayd: %s (%s)", msg, e.Code)
}

// Is maps the API's error codes back to the errdefs sentinels.
func (e *APIError) Is(target error) bool {
	switch e.Code {
	case "not_found":
		return target == errdefs.ErrNotFound
	case "invalid_argument":
		return target == errdefs.ErrInvalid
	case "conflict":
		return target == errdefs.ErrConflict
	case "unavailable", "slow_consumer":
		// slow_consumer ends an event stream that fell behind; reconnecting helps.
		return target == errdefs.ErrUnavailable
	case "permission_denied":
		return target == errdefs.ErrDenied
	}
	return false
}

// codeForStatus names the code of an error answer whose body is not the
// API's error object (a proxy, a panic page, a health body).
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_argument"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "permission_denied"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "internal"
}

func decodeError(status int, body []byte) *APIError {
	var env struct {
		Error *scans.ErrorBody `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil && env.Error.Code != "" {
		return &APIError{Status: status, Code: env.Error.Code, Message: env.Error.Message}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Status: status, Code: codeForStatus(status), Message: msg}
}

// timeoutError is the cause of a request cut by WithTimeout.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("assayd did not answer within %s", e.d)
}

func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// send makes one request with in as its JSON body (none when nil); the
// response body is the caller's to close.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any) (*http.Response, error) {
	if in == nil {
		return c.sendBody(ctx, method, path, query, nil, "", -1)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: encode request: %w", method, path, err)
	}
	return c.sendBody(ctx, method, path, query, bytes.NewReader(b), "application/json", int64(len(b)))
}

// sendBody makes one request with body of contentType and size (-1:
// unknown); the response body is the caller's to close.
func (c *Client) sendBody(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string, size int64) (*http.Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "assay-client")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(ctx, method, path, err)
	}
	return resp, nil
}

func transportError(ctx context.Context, method, path string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, context.Cause(ctx))
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("client: %s %s: %w", method, path, err)
}

// roundTrip makes one request and reads the whole answer. On an error
// answer it returns the body too, with an *APIError.
func (c *Client) roundTrip(ctx context.Context, method, path string, query url.Values, in any) ([]byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, &timeoutError{c.timeout})
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, query, in)
	if err != nil {
		return nil, err
	}
	return readAnswer(ctx, method, path, resp)
}

// readAnswer reads and closes resp's body; a non-2xx answer is an
// *APIError, returned with the body.
func readAnswer(ctx context.Context, method, path string, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, fmt.Errorf("client: %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return b, decodeError(resp.StatusCode, b)
	}
	return b, nil
}

// call makes one request and decodes a successful JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	b, err := c.roundTrip(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("client: %s %s: decode response: %w", method, path, err)
	}
	return nil
}

// segment escapes one path segment and refuses an empty one, which would
// name a different route.
func segment(what, v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("client: empty %s: %w", what, errdefs.ErrInvalid)
	}
	return url.PathEscape(v), nil
}

// Submit asks for a scan. deduplicated is true when an equal scan was
// already queued or running and that one is returned.
func (c *Client) Submit(ctx context.Context, req scans.Request) (s scans.Scan, deduplicated bool, err error) {
	var out struct {
		scans.Scan
		Deduplicated bool `json:"deduplicated"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/scans", nil, req, &out); err != nil {
		return scans.Scan{}, false, err
	}
	return out.Scan, out.Deduplicated, nil
}

// Scan returns one scan.
func (c *Client) Scan(ctx context.Context, id string) (scans.Scan, error) {
	seg, err := segment("scan id", id)
	if err != nil {
		return scans.Scan{}, err
	}
	var s scans.Scan
	err = c.call(ctx, http.MethodGet, "/v1/scans/"+seg, nil, nil, &s)
	return s, err
}

// Scans lists scans; next is the cursor of the following page (pass it as
// Filter.After), empty on the last page.
func (c *Client) Scans(ctx context.Context, f scans.Filter) (list []scans.Scan, next string, err error) {
	q := url.Values{}
	if len(f.Status) > 0 {
		st := make([]string, len(f.Status))
		for i, s := range f.Status {
			st[i] = string(s)
		}
		q.Set("status", strings.Join(st, ","))
	}
	setIf(q, "image", f.Image)
	setIf(q, "digest", f.Digest)
	setIf(q, "after", f.After)
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	var out struct {
		Scans []scans.Scan `json:"scans"`
		Next  string       `json:"next"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/scans", q, nil, &out); err != nil {
		return nil, "", err
	}
	return out.Scans, out.Next, nil
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// Cancel cancels a queued or running scan; a finished one is a conflict.
func (c *Client) Cancel(ctx context.Context, id string) (scans.Scan, error) {
	seg, err := segment("scan id", id)
	if err != nil {
		return scans.Scan{}, err
	}
	var s scans.Scan
	err = c.call(ctx, http.MethodDelete, "/v1/scans/"+seg, nil, nil, &s)
	return s, err
}

// Report returns the latest report of a manifest digest.
func (c *Client) Report(ctx context.Context, digest string) (*report.Report, error) {
	return decodeReport(c.ReportJSON(ctx, digest))
}

// ReportJSON is Report as the API sent it, for callers that pass it on and
// must not lose fields this client does not know.
func (c *Client) ReportJSON(ctx context.Context, digest string) (json.RawMessage, error) {
	seg, err := segment("digest", digest)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, http.MethodGet, "/v1/reports/"+seg, nil, nil)
}

// ScanReportJSON is the report one scan of digest produced, as the API
// sent it: with the scan request's own policy, if it had one.
func (c *Client) ScanReportJSON(ctx context.Context, digest, scanID string) (json.RawMessage, error) {
	seg, err := segment("digest", digest)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, http.MethodGet, "/v1/reports/"+seg, url.Values{"scan": {scanID}}, nil)
}

// ReportForImage returns the latest report for an image reference.
func (c *Client) ReportForImage(ctx context.Context, image string) (*report.Report, error) {
	return decodeReport(c.ReportForImageJSON(ctx, image))
}

// ReportForImageJSON is ReportForImage as the API sent it.
func (c *Client) ReportForImageJSON(ctx context.Context, image string) (json.RawMessage, error) {
	if image == "" {
		return nil, fmt.Errorf("client: empty image reference: %w", errdefs.ErrInvalid)
	}
	return c.roundTrip(ctx, http.MethodGet, "/v1/reports", url.Values{"image": {image}}, nil)
}

func decodeReport(b json.RawMessage, err error) (*report.Report, error) {
	if err != nil {
		return nil, err
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("client: decode report: %w", err)
	}
	return &r, nil
}

// ReportHistory returns the reports of a digest, as the API orders them.
func (c *Client) ReportHistory(ctx context.Context, digest string) ([]report.Report, error) {
	seg, err := segment("digest", digest)
	if err != nil {
		return nil, err
	}
	var out struct {
		Reports []report.Report `json:"reports"`
	}
	err = c.call(ctx, http.MethodGet, "/v1/reports/"+seg+"/history", nil, nil, &out)
	return out.Reports, err
}

// Health is the answer of GET /v1/health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
	// UptimeSeconds is a float so that either an integer or a fraction decodes.
	UptimeSeconds float64    `json:"uptime_seconds"`
	Queue         QueueStats `json:"queue"`
	// Analyzers are the enabled analyzer plugins.
	Analyzers []AnalyzerInfo `json:"analyzers"`
}

// AnalyzerInfo is an enabled analyzer plugin (and a layer plugin's
// selected extractors).
type AnalyzerInfo struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extractors []string `json:"extractors,omitempty"`
}

// QueueStats counts the scans waiting and the scans being worked on.
type QueueStats struct {
	Queued  int `json:"queued"`
	Running int `json:"running"`
}

// Health asks assayd how it is. When assayd answers 503 with a health body,
// that body is returned along with the *APIError (code unavailable).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	b, err := c.roundTrip(ctx, http.MethodGet, "/v1/health", nil, nil)
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable:
		var body struct {
			Health
			Error *scans.ErrorBody `json:"error"`
		}
		if json.Unmarshal(b, &body) != nil || body.Status == "" {
			return Health{}, err
		}
		if body.Error == nil {
			// A health body without the reason: say what it does say.
			err = &APIError{Status: apiErr.Status, Code: "unavailable", Message: "assayd reports status " + body.Status}
		}
		return body.Health, err
	case err != nil:
		return Health{}, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return Health{}, fmt.Errorf("client: GET /v1/health: decode response: %w", err)
	}
	return h, nil
}

// Wait polls a scan every interval (a second when every <= 0) until it is
// terminal and returns it. progress, when not nil, sees the scan each time
// its status changes, the first answer included. On error Wait returns the
// scan as last seen, so a caller can say where it got to.
func (c *Client) Wait(ctx context.Context, id string, every time.Duration, progress func(scans.Scan)) (scans.Scan, error) {
	if every <= 0 {
		every = time.Second
	}
	var last scans.Scan
	for {
		s, err := c.Scan(ctx, id)
		if err != nil {
			return last, err
		}
		if s.Status != last.Status && progress != nil {
			progress(s)
		}
		last = s
		if s.Status.Terminal() {
			return s, nil
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("client: wait for scan %s: %w", id, context.Cause(ctx))
		case <-t.C:
		}
	}
}
