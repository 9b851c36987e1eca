// Package harbor serves Harbor's Pluggable Scanner API v1.2 (the
// scanner-adapter API, goharbor/pluggable-scanner-spec): Harbor registers
// assay as a scanner, asks it to scan an artifact of its registry, and
// polls for the reports in Harbor's formats. Scans go through the same
// queue as any other, with the registry credentials Harbor sends held in
// memory for that pull only; reports are the stored ones, so a restart of
// assayd loses no finished scan.
package harbor

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/distribution/reference"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/httpjson"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// Prefix is the path Harbor is given as the adapter's URL (it appends
// /metadata, /scan, …).
const Prefix = "/api/v1"

// Media types of the API itself.
const (
	mediaMetadata     = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	mediaScanResponse = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	mediaError        = "application/vnd.scanner.adapter.error+json; version=1.0"
	// The artifacts assay scans: image manifests.
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// Auth modes, as harbor.auth names them.
const (
	AuthBearer = "bearer"
	AuthBasic  = "basic"
	AuthAPIKey = "api_key"
)

// Service is what the adapter asks of the daemon.
type Service interface {
	// Submit queues a scan (daemon/queue semantics: an equal queued or
	// running scan is returned instead).
	Submit(ctx context.Context, req scans.Request) (scans.Scan, bool, error)
	Scan(ctx context.Context, id string) (scans.Scan, error)
	// ReportOfScan is the report one scan of the digest produced.
	ReportOfScan(ctx context.Context, digest, scanID string) (*report.Report, error)
}

// Options configure New.
type Options struct {
	Service Service
	// Auth is AuthBearer, AuthBasic or AuthAPIKey; Secret is the token,
	// the key, or user:password.
	Auth, Secret string
	// Registries are the registry URLs (scheme://host[:port]) a scan
	// request may name.
	Registries []string
	// Version is assay's, shown as the scanner's.
	Version string
	// DBUpdatedAt says when the vulnerability data last changed (zero:
	// never); it must not do I/O: /metadata answers from memory.
	DBUpdatedAt func() time.Time
	// MaxBodyBytes caps a scan request; 0 means 1 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Handler serves the adapter API under Prefix.
type Handler struct {
	o   Options
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the adapter's handler. It panics without a Service.
func New(o Options) *Handler {
	if o.Service == nil {
		panic("harbor: Options.Service is nil")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{o: o, log: o.Logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+Prefix+"/metadata", h.serveMetadata)
	h.mux.HandleFunc("POST "+Prefix+"/scan", h.serveScan)
	h.mux.HandleFunc("GET "+Prefix+"/scan/{id}/report", h.serveReport)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path+" (the adapter serves GET "+Prefix+"/metadata, POST "+Prefix+"/scan, GET "+Prefix+"/scan/{id}/report)")
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &httpjson.StatusWriter{ResponseWriter: w}
	defer func() {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "harbor request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.Status()), slog.Duration("duration", time.Since(start)))
	}()
	if !h.authenticated(r) {
		switch h.o.Auth {
		case AuthBearer:
			sw.Header().Set("WWW-Authenticate", `Bearer realm="assay"`)
		case AuthBasic:
			sw.Header().Set("WWW-Authenticate", `Basic realm="assay"`)
		}
		writeError(sw, http.StatusUnauthorized, "unauthenticated: "+h.wants())
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// authenticated checks the request against the configured mode, in
// constant time.
func (h *Handler) authenticated(r *http.Request) bool {
	var got string
	switch h.o.Auth {
	case AuthBearer:
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return false
		}
		got = strings.TrimSpace(tok)
	case AuthBasic:
		user, pass, ok := r.BasicAuth()
		if !ok {
			return false
		}
		got = user + ":" + pass
	case AuthAPIKey:
		got = r.Header.Get("X-ScannerAdapter-API-Key")
	default:
		return false
	}
	return h.o.Secret != "" && subtle.ConstantTimeCompare([]byte(got), []byte(h.o.Secret)) == 1
}

func (h *Handler) wants() string {
	switch h.o.Auth {
	case AuthBearer:
		return "send Authorization: Bearer TOKEN with the token of harbor.secret_file"
	case AuthBasic:
		return "send HTTP Basic credentials, the user:password of harbor.secret_file"
	case AuthAPIKey:
		return "send the X-ScannerAdapter-API-Key header with the key of harbor.secret_file"
	}
	return "harbor.auth is not configured"
}

// metadata is ScannerAdapterMetadata.
type metadata struct {
	Scanner      scanner           `json:"scanner"`
	Capabilities []capability      `json:"capabilities"`
	Properties   map[string]string `json:"properties"`
}

type scanner struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
}

type capability struct {
	Type                 string         `json:"type"`
	ConsumesMimeTypes    []string       `json:"consumes_mime_types"`
	ProducesMimeTypes    []string       `json:"produces_mime_types"`
	AdditionalAttributes map[string]any `json:"additional_attributes,omitempty"`
}

func (h *Handler) scanner() scanner {
	return scanner{Name: "assay", Vendor: "assay", Version: h.o.Version}
}

func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) {
	md := metadata{
		Scanner: h.scanner(),
		Properties: map[string]string{
			"harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
		},
	}
	for _, c := range []string{capVulnerability, capSBOM} {
		cp := capability{Type: c, ConsumesMimeTypes: []string{mediaOCIManifest, mediaDockerManifest}}
		for _, p := range produced {
			if p.capability == c {
				cp.ProducesMimeTypes = append(cp.ProducesMimeTypes, p.mediaType)
			}
		}
		if c == capSBOM {
			cp.AdditionalAttributes = map[string]any{"sbom_media_types": sbomMediaTypes()}
		}
		md.Capabilities = append(md.Capabilities, cp)
	}
	if h.o.DBUpdatedAt != nil {
		if t := h.o.DBUpdatedAt(); !t.IsZero() {
			md.Properties["harbor.scanner-adapter/vulnerability-database-updated-at"] = t.UTC().Format(time.RFC3339)
		}
	}
	writeJSON(w, http.StatusOK, mediaMetadata, md)
}

// scanRequest is ScanRequest.
type scanRequest struct {
	Registry struct {
		URL           string `json:"url"`
		Authorization string `json:"authorization"`
	} `json:"registry"`
	Artifact            artifact `json:"artifact"`
	EnabledCapabilities []struct {
		Type              string   `json:"type"`
		ProducesMimeTypes []string `json:"produces_mime_types"`
		Parameters        *struct {
			SBOMMediaTypes []string `json:"sbom_media_types"`
		} `json:"parameters"`
	} `json:"enabled_capabilities"`
}

type artifact struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	MimeType   string `json:"mime_type,omitempty"`
}

func (h *Handler) serveScan(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the scan request is larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "reading the scan request: "+err.Error())
		return
	}
	var req scanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "the scan request is not valid JSON of the ScanRequest schema: "+err.Error())
		return
	}
	u, status, err := h.checkRequest(&req)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	image := u.Host + "/" + req.Artifact.Repository
	if req.Artifact.Tag != "" {
		image += ":" + req.Artifact.Tag
	}
	image += "@" + req.Artifact.Digest
	sr := scans.Request{Image: image, Trigger: "harbor"}
	if a := strings.TrimSpace(req.Registry.Authorization); a != "" {
		sr.Auth = &scans.RegistryAuth{Host: u.Host, Authorization: a}
	}
	sc, _, err := h.o.Service.Submit(r.Context(), sr)
	switch {
	case errors.Is(err, errdefs.ErrBusy):
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "the scan queue is full: "+err.Error())
		return
	case errors.Is(err, errdefs.ErrInvalid):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, mediaScanResponse, map[string]string{"id": sc.ID})
}

// checkRequest validates the fields (422 for a bad value, 501 for what
// assay cannot do) and returns the registry's URL.
func (h *Handler) checkRequest(req *scanRequest) (*url.URL, int, error) {
	invalid := func(format string, args ...any) (*url.URL, int, error) {
		return nil, http.StatusUnprocessableEntity, fmt.Errorf(format, args...)
	}
	u, err := url.Parse(req.Registry.URL)
	if req.Registry.URL == "" {
		return invalid("registry.url is required")
	}
	if err != nil || u.Host == "" {
		return invalid("registry.url %q is not a URL", req.Registry.URL)
	}
	if !slices.ContainsFunc(h.o.Registries, func(s string) bool { return sameRegistry(s, u) }) {
		return invalid("registry.url %q is not one of harbor.registries", req.Registry.URL)
	}
	if a := strings.TrimSpace(req.Registry.Authorization); a != "" {
		if err := checkAuthorization(a); err != nil {
			return invalid("registry.authorization: %v", err)
		}
	}
	a := req.Artifact
	if a.Repository == "" {
		return invalid("artifact.repository is required")
	}
	if named, err := reference.ParseNormalizedNamed("registry.invalid/" + a.Repository); err != nil || reference.Path(named) != a.Repository {
		return invalid("artifact.repository %q is not a repository name", a.Repository)
	}
	if err := scans.CheckDigest(a.Digest); err != nil {
		return invalid("artifact.%v", err)
	}
	if a.Tag != "" && !anchoredTag.MatchString(a.Tag) {
		return invalid("artifact.tag %q is not a tag", a.Tag)
	}
	if a.MimeType != "" && !isManifestType(a.MimeType) {
		return nil, http.StatusNotImplemented, fmt.Errorf("artifact.mime_type %q: assay scans image manifests (%s, %s)", a.MimeType, mediaOCIManifest, mediaDockerManifest)
	}
	for i, c := range req.EnabledCapabilities {
		if c.Type != capVulnerability && c.Type != capSBOM {
			return nil, http.StatusNotImplemented, fmt.Errorf("enabled_capabilities[%d].type %q: assay has the vulnerability and sbom capabilities", i, c.Type)
		}
		for _, m := range c.ProducesMimeTypes {
			if p, ok := lookupProduced(m); !ok || p.capability != c.Type {
				return nil, http.StatusNotImplemented, fmt.Errorf("enabled_capabilities[%d].produces_mime_types: %q is not a report type of the %s capability", i, m, c.Type)
			}
		}
		if c.Parameters != nil {
			for _, m := range c.Parameters.SBOMMediaTypes {
				if !slices.Contains(sbomMediaTypes(), m) {
					return nil, http.StatusNotImplemented, fmt.Errorf("enabled_capabilities[%d].parameters.sbom_media_types: %q is not one of %s", i, m, strings.Join(sbomMediaTypes(), ", "))
				}
			}
		}
	}
	return u, 0, nil
}

// sameRegistry compares a configured registry URL with a requested one:
// scheme and host[:port], ignoring a trailing slash.
func sameRegistry(configured string, u *url.URL) bool {
	c, err := url.Parse(configured)
	return err == nil && strings.EqualFold(c.Scheme, u.Scheme) && strings.EqualFold(c.Host, u.Host) &&
		strings.Trim(u.Path, "/") == "" && u.User == nil && u.RawQuery == ""
}

// checkAuthorization accepts "Basic base64(user:password)" and "Bearer
// TOKEN". Its errors never show the value.
func checkAuthorization(a string) error {
	if strings.ContainsFunc(a, unicode.IsControl) {
		return errors.New("must be one line")
	}
	scheme, value, _ := strings.Cut(a, " ")
	value = strings.TrimSpace(value)
	switch strings.ToLower(scheme) {
	case "basic":
		b, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return errors.New("the Basic credentials are not base64")
		}
		if user, _, ok := strings.Cut(string(b), ":"); !ok || user == "" {
			return errors.New("the Basic credentials are not user:password")
		}
	case "bearer":
		if value == "" {
			return errors.New("the Bearer token is empty")
		}
	default:
		return errors.New(`want "Basic base64(user:password)" or "Bearer TOKEN"`)
	}
	return nil
}

var anchoredTag = regexp.MustCompile(`^` + reference.TagRegexp.String() + `$`)

func isManifestType(m string) bool {
	mt, _, err := mime.ParseMediaType(m)
	return err == nil && (mt == mediaOCIManifest || mt == mediaDockerManifest)
}

// Refresh-After values: a queued scan may wait behind others; a running
// one ends in seconds.
const (
	refreshQueued  = 5
	refreshRunning = 1
)

func (h *Handler) serveReport(w http.ResponseWriter, r *http.Request) {
	p, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("Accept %q: assay produces %s", r.Header.Get("Accept"), producedList()))
		return
	}
	var sbomType string
	if p.capability == capSBOM {
		// A "+" sent unescaped arrives as a space.
		sbomType = strings.ReplaceAll(r.URL.Query().Get("sbom_media_type"), " ", "+")
		if !slices.Contains(sbomMediaTypes(), sbomType) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("sbom_media_type %q: want one of %s", sbomType, strings.Join(sbomMediaTypes(), ", ")))
			return
		}
	}
	sc, err := h.o.Service.Scan(r.Context(), r.PathValue("id"))
	if errors.Is(err, errdefs.ErrNotFound) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	switch sc.Status {
	case scans.Done:
	case scans.Failed:
		writeError(w, http.StatusInternalServerError, "the scan failed: "+sc.Error)
		return
	case scans.Cancelled:
		writeError(w, http.StatusInternalServerError, "the scan was cancelled: "+sc.Error)
		return
	default:
		refresh := refreshRunning
		if sc.Status == scans.Queued {
			refresh = refreshQueued
		}
		w.Header().Set("Refresh-After", strconv.Itoa(refresh))
		w.WriteHeader(http.StatusFound)
		return
	}
	rep, err := h.o.Service.ReportOfScan(r.Context(), sc.Digest, sc.ID)
	if errors.Is(err, errdefs.ErrNotFound) {
		// Reports beyond store.reports_per_image are pruned.
		writeError(w, http.StatusInternalServerError, "the report of scan "+sc.ID+" is no longer stored (store.reports_per_image): scan again")
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	body, err := p.encode(h, sc, rep, sbomType)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", p.mediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// negotiate picks the produced type an Accept header asks for: Harbor
// sends exactly one. Without a header, Harbor's vulnerability report.
func negotiate(accept string) (producedType, bool) {
	if strings.TrimSpace(accept) == "" {
		return produced[0], true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		for _, p := range produced {
			pmt, pparams, _ := mime.ParseMediaType(p.mediaType)
			if mt != pmt {
				continue
			}
			if v, ok := params["version"]; ok && v != pparams["version"] {
				continue
			}
			return p, true
		}
	}
	return producedType{}, false
}

func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	level := slog.LevelError
	if r.Context().Err() != nil {
		level = slog.LevelDebug
	}
	h.log.Log(r.Context(), level, "harbor adapter: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, err.Error())
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, contentType = http.StatusInternalServerError, mediaError
		b, _ = json.Marshal(errorBody(err.Error()))
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

type errorResponse struct {
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

func errorBody(msg string) errorResponse {
	var e errorResponse
	e.Error.Message = msg
	return e
}

// writeError writes the adapter's ErrorResponse.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, mediaError, errorBody(msg))
}
