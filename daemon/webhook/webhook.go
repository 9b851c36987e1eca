package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/assayhq/assay/daemon/httpjson"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/scans"
)

// Trigger is the scans.Request trigger of every request this package makes.
const Trigger = "webhook"

// DefaultMaxBodyBytes bounds a notification body when Options.MaxBodyBytes is
// zero. Distribution sends one small envelope per batch (a few KiB per event).
const DefaultMaxBodyBytes = 1 << 20

// Submitter is what the webhook needs from the daemon.
type Submitter interface {
	// Submit queues a scan, or returns the queued or running scan of the
	// same image with created=false.
	Submit(ctx context.Context, req scans.Request) (scans.Scan, bool, error)
	// Scanned reports whether a finished report already exists for this
	// manifest digest (so a redelivery after the scan finished does not start
	// a second scan).
	Scanned(ctx context.Context, digest string) (bool, error)
}

// Options configure the handler.
type Options struct {
	// Token is the bearer token the registry sends (required).
	Token string
	// Registries maps a registry name as seen in events (host[:port], from
	// target.url, else request.host) to the address to pull from
	// (host[:port]). Events from any other registry are skipped. Names are
	// matched case-insensitively and otherwise exactly: "reg:443" and "reg"
	// are different names.
	Registries map[string]string
	// MaxBodyBytes bounds the body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Submitter receives the scan requests (required).
	Submitter Submitter
	// Logger receives refusals and decisions; nil discards them.
	Logger *slog.Logger
	// CertFile and KeyFile, both set, make Serve speak TLS (a PEM
	// certificate chain and its key); both empty, plain HTTP.
	CertFile, KeyFile string
}

// Validate reports what is wrong with o, if anything.
func (o Options) Validate() error {
	var errs []error
	if o.Token == "" {
		errs = append(errs, errors.New("a bearer token is required"))
	}
	if o.Submitter == nil {
		errs = append(errs, errors.New("a submitter is required"))
	}
	if o.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max body bytes %d is negative", o.MaxBodyBytes))
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("a TLS certificate and key go together: set both or neither"))
	}
	lower := make(map[string]string, len(o.Registries))
	for _, k := range slices.Sorted(maps.Keys(o.Registries)) {
		if !validAuthority(k) {
			errs = append(errs, fmt.Errorf("registry name %q is not host[:port]", k))
		}
		if prev, dup := lower[strings.ToLower(k)]; dup {
			errs = append(errs, fmt.Errorf("registry names %q and %q differ only in case", prev, k))
		}
		lower[strings.ToLower(k)] = k
		if err := validPullAddress(o.Registries[k]); err != nil {
			errs = append(errs, fmt.Errorf("registry %q: %w", k, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("webhook: options: %w: %w", err, errdefs.ErrInvalid)
	}
	return nil
}

// handler serves registry notifications; see the package comment.
type handler struct {
	tokenSum   [sha256.Size]byte
	registries map[string]string
	maxBody    int64
	sub        Submitter
	log        *slog.Logger
}

// NewHandler returns the notification endpoint. It panics if o is invalid
// (see Options.Validate): the daemon's config validation and Serve check the
// options first, so an invalid one here is a programming error, and failing
// loudly beats serving an endpoint that refuses or accepts everything.
func NewHandler(o Options) http.Handler {
	if err := o.Validate(); err != nil {
		panic(err)
	}
	h := &handler{
		tokenSum:   sha256.Sum256([]byte(o.Token)),
		registries: make(map[string]string, len(o.Registries)),
		maxBody:    o.MaxBodyBytes,
		sub:        o.Submitter,
		log:        o.Logger,
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "webhook")
	for k, v := range o.Registries {
		h.registries[strings.ToLower(k)] = v
	}
	if len(h.registries) == 0 {
		h.log.Warn("webhook: no registries mapped; every push will be skipped")
	}
	return h
}

// counts is the 202 body.
type counts struct {
	Accepted     int `json:"accepted"`
	Deduplicated int `json:"deduplicated"`
	Ignored      int `json:"ignored"`
	Skipped      int `json:"skipped"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" && r.URL.Path != "/events" {
		writeError(w, http.StatusNotFound, "not_found", "webhook: no such path; POST notifications to / or /events")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "webhook: only POST is allowed")
		return
	}
	if reason, ok := h.authorized(r); !ok {
		h.log.Warn("webhook: refused", "reason", reason, "remote", r.RemoteAddr)
		// Connection: close spares net/http from draining an unauthenticated
		// body to keep the connection alive: nothing of it is read.
		w.Header().Set("Connection", "close")
		w.Header().Set("WWW-Authenticate", `Bearer realm="assay"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "webhook: a valid bearer token is required")
		return
	}
	if ct := r.Header.Get("Content-Type"); !eventsContentType(ct) {
		h.log.Warn("webhook: unsupported content type", "content_type", clip(ct), "remote", r.RemoteAddr)
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"webhook: want Content-Type application/vnd.docker.distribution.events.v2+json (or v1, or application/json)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			h.log.Warn("webhook: body too large", "limit", h.maxBody, "remote", r.RemoteAddr)
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("webhook: body exceeds %d bytes", h.maxBody))
			return
		}
		h.log.Warn("webhook: read body", "error", err, "remote", r.RemoteAddr)
		writeError(w, http.StatusBadRequest, "invalid_argument", "webhook: read body: "+err.Error())
		return
	}
	events, err := parseEnvelope(body)
	if err != nil {
		h.log.Warn("webhook: malformed envelope", "error", clip(err.Error()), "remote", r.RemoteAddr, "bytes", len(body))
		writeError(w, http.StatusBadRequest, "invalid_argument", clip(err.Error()))
		return
	}

	// Each event is judged on its own. A bad event inside a well-formed
	// envelope is skipped and counted rather than failing the envelope with a
	// 400: distribution retries an envelope until it answers 2xx/3xx and
	// delivers in order, so an event it will always send the same way would
	// block every later notification forever. (A registry always sends a
	// well-formed envelope, so the 400 above only answers other callers.)
	// Only a failure that a retry can cure - the daemon cannot record a scan
	// now - fails the envelope.
	var c counts
	seen := make(map[string]bool) // digests handled earlier in this envelope
	for i, raw := range events {
		o, err := h.handleEvent(r.Context(), i, raw, seen)
		if err != nil {
			h.log.Warn("webhook: cannot queue a scan now; asking the registry to redeliver",
				"error", err, "event", i, "remote", r.RemoteAddr)
			w.Header().Set("Retry-After", "10")
			writeError(w, http.StatusServiceUnavailable, "unavailable", "webhook: cannot queue a scan now, retry later")
			return
		}
		switch o {
		case accepted:
			c.Accepted++
		case deduplicated:
			c.Deduplicated++
		case ignored:
			c.Ignored++
		case skipped:
			c.Skipped++
		}
	}
	h.log.Debug("webhook: envelope handled", "events", len(events), "accepted", c.Accepted,
		"deduplicated", c.Deduplicated, "ignored", c.Ignored, "skipped", c.Skipped, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, c)
}

// authorized checks the bearer token in constant time. It compares SHA-256
// sums so that neither the comparison nor its length check depends on how
// much of the token a caller guessed.
func (h *handler) authorized(r *http.Request) (reason string, ok bool) {
	v := r.Header.Get("Authorization")
	if v == "" {
		return "missing authorization", false
	}
	scheme, tok, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "not a bearer token", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) != 1 {
		return "wrong bearer token", false
	}
	return "", true
}

// eventsContentType accepts the envelope media types: distribution 2.x sends
// ...events.v1+json (2.8 does, though its documentation shows v2), 3.x sends
// ...events.v2+json, and application/json is what a hand-written or proxying
// sender uses. The envelope shape is the same in all three.
func eventsContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/vnd.docker.distribution.events.v2+json",
		"application/vnd.docker.distribution.events.v1+json",
		"application/json":
		return true
	}
	return false
}

// outcome is what became of one event.
type outcome int

const (
	accepted outcome = iota
	deduplicated
	ignored
	skipped
)

// handleEvent acts on one event. An error means the daemon could not record
// a scan now and the envelope must be redelivered.
func (h *handler) handleEvent(ctx context.Context, i int, raw json.RawMessage, seen map[string]bool) (outcome, error) {
	ev, err := parseEvent(raw)
	if err != nil {
		h.log.Warn("webhook: skipping malformed event", "event", i, "error", clip(err.Error()))
		return skipped, nil
	}
	log := h.log.With("event", clip(ev.ID), "action", clip(ev.Action),
		"repository", clip(ev.Target.Repository), "digest", clip(ev.Target.Digest))
	if ev.Action != "push" {
		log.Debug("webhook: ignoring event: not a push")
		return ignored, nil
	}
	switch kind := manifestKind(ev.Target.MediaType); kind {
	case kindOther:
		log.Debug("webhook: ignoring push: not a manifest or index", "media_type", clip(ev.Target.MediaType))
		return ignored, nil
	case kindSchema1:
		// Schema 1 is deprecated and containerd 2 no longer pulls it; a scan
		// could only fail. Distribution 2.8 refuses such pushes by default.
		log.Info("webhook: ignoring push of a schema 1 manifest: not scannable", "media_type", clip(ev.Target.MediaType))
		return ignored, nil
	}

	if !validDigest(ev.Target.Digest) {
		log.Warn("webhook: skipping push: invalid digest")
		return skipped, nil
	}
	regName := ev.registryName()
	addr, ok := h.registries[strings.ToLower(regName)]
	if !ok {
		// assay never pulls from a host the operator did not configure.
		log.Warn("webhook: skipping push from an unmapped registry", "registry", clip(regName))
		return skipped, nil
	}
	if err := validRepository(addr, ev.Target.Repository); err != nil {
		log.Warn("webhook: skipping push: invalid repository", "error", clip(err.Error()))
		return skipped, nil
	}
	digest := ev.Target.Digest
	if seen[digest] {
		log.Debug("webhook: digest already handled in this envelope")
		return deduplicated, nil
	}

	done, err := h.sub.Scanned(ctx, digest)
	if err != nil {
		return 0, fmt.Errorf("webhook: scanned %s: %w", digest, err)
	}
	if done {
		seen[digest] = true
		log.Debug("webhook: digest already scanned")
		return deduplicated, nil
	}
	req := scans.Request{Image: addr + "/" + ev.Target.Repository + "@" + digest, Trigger: Trigger}
	sc, created, err := h.sub.Submit(ctx, req)
	switch {
	case errors.Is(err, errdefs.ErrInvalid):
		// The daemon will never take this request; redelivery cannot help.
		log.Warn("webhook: skipping push: the daemon refused the request", "image", req.Image, "error", err)
		return skipped, nil
	case err != nil:
		// ErrUnavailable, a cancelled request or anything unexpected: the
		// registry redelivers, and what was queued before dedupes then.
		return 0, fmt.Errorf("webhook: submit %s: %w", req.Image, err)
	}
	seen[digest] = true
	if !created {
		log.Debug("webhook: scan already queued or running", "scan", sc.ID, "status", sc.Status)
		return deduplicated, nil
	}
	log.Info("webhook: scan queued", "scan", sc.ID, "image", req.Image, "tag", clip(ev.Target.Tag), "registry", clip(regName))
	return accepted, nil
}

// registryName is the registry as the event names it: the host of
// target.url, which distribution builds from its http.host setting or the
// request's Host, else request.host.
func (ev *event) registryName() string {
	if ev.Target.URL != "" {
		if u, err := url.Parse(ev.Target.URL); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return ev.Request.Host
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

func writeError(w http.ResponseWriter, status int, code, message string) {
	httpjson.Error(w, status, code, message)
}

// clip bounds a sender-controlled string before it reaches a log line or a
// response.
func clip(s string) string {
	const limit = 256
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// errorResponse names the shared error body for this package's tests and docs.
type errorResponse = httpjson.ErrorResponse
