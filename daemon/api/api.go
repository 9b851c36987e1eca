package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assayhq/assay/daemon/events"
	"github.com/assayhq/assay/daemon/httpjson"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
)

// Service is what the API asks of the daemon. Errors wrap the kinds in
// daemon/errdefs with %w; anything else is reported as an internal error.
type Service interface {
	// Submit queues a scan. created is false when an existing queued or
	// running scan of the same image is returned instead.
	Submit(ctx context.Context, req scans.Request) (s scans.Scan, created bool, err error)
	Scan(ctx context.Context, id string) (scans.Scan, error)
	Scans(ctx context.Context, f scans.Filter) (list []scans.Scan, next string, err error)
	// Cancel returns the scan as cancelled, or still running while the
	// cancellation propagates; ErrConflict when it has already finished.
	Cancel(ctx context.Context, id string) (scans.Scan, error)
	// Report is the latest report of a manifest digest assessed with the
	// configured policy.
	Report(ctx context.Context, digest string) (*report.Report, error)
	// ReportOfScan is the report one scan of the digest produced (its
	// request's own policy, if any, applied).
	ReportOfScan(ctx context.Context, digest, scanID string) (*report.Report, error)
	// ReportForImage is the latest report whose Image equals this reference.
	ReportForImage(ctx context.Context, image string) (*report.Report, error)
	// ReportHistory lists the reports of a manifest digest, newest first.
	ReportHistory(ctx context.Context, digest string) ([]*report.Report, error)
	QueueStats(ctx context.Context) (queued, running int, err error)
}

// EventSource is where /v1/events subscribes; *events.Broker implements it.
type EventSource interface {
	Subscribe(buffer int) *events.Subscription
}

var _ EventSource = (*events.Broker)(nil)

// Options configures NewHandler. Service is required.
type Options struct {
	Service Service
	// Events feeds /v1/events; nil makes that route answer 503.
	Events EventSource
	// Analyzers are the enabled analyzer plugins, for GET /v1/health.
	Analyzers []AnalyzerInfo
	// Tokens authenticate the callers of a TCP listener (requests marked
	// by TCPConnContext); nil refuses them all.
	Tokens *Tokens
	// Authorizer decides from peer credentials; nil allows root and the
	// daemon's own uid only.
	Authorizer Authorizer
	// Metrics is served at /v1/metrics; nil makes that route answer 404.
	Metrics prometheus.Gatherer
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// EventBuffer is the per-stream event buffer; 0 means events.DefaultBuffer.
	EventBuffer int
	Version     string
	// Logger receives request logs (debug) and internal errors; nil discards.
	Logger *slog.Logger
	// Ready reports health: nil when ready. nil means always ready.
	Ready func() error
	// Vulns serves the database and cross-image routes; nil answers 503.
	Vulns VulnService
	// MaxImportBytes caps POST /v1/db/import; 0 means
	// DefaultMaxImportBytes.
	MaxImportBytes int64
	// Cache serves /v1/cache; nil (the cache is off) answers 503.
	Cache CacheService
	// Notify serves /v1/notify; nil (no receivers) answers 503.
	Notify NotifyService
}

// CacheService is the layer cache as the API shows it
// (*store.LayerCache).
type CacheService interface {
	Stats() store.CacheStats
	Prune() (int, error)
	Clear() (int, error)
}

const (
	// DefaultMaxBodyBytes caps request bodies when Options.MaxBodyBytes is 0.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxImportBytes caps an uploaded OSV archive.
	DefaultMaxImportBytes = 2 << 30
	// eventWriteTimeout bounds each write of the event stream, so a client
	// that stops reading cannot pin its handler.
	eventWriteTimeout = 10 * time.Second
)

type handler struct {
	o            Options
	log          *slog.Logger
	started      time.Time
	writeTimeout time.Duration
	// mux dispatches the routes table; paths knows each route's path
	// without its method, to tell 405 from 404.
	mux     *http.ServeMux
	paths   *http.ServeMux
	metrics http.Handler
}

// route is one entry of the handler table.
type route struct {
	method string
	path   string // a ServeMux path pattern; also the OpenAPI path
	role   Role   // the least role that may call it
	serve  func(*handler, http.ResponseWriter, *http.Request)
}

// routes is the handler table, sorted by path, then method.
var routes = []route{
	{"GET", "/v1/cache", RoleRead, (*handler).serveCache},
	{"POST", "/v1/cache/prune", RoleAdmin, (*handler).serveCachePrune},
	{"GET", "/v1/db", RoleRead, (*handler).serveDB},
	{"POST", "/v1/db/import", RoleAdmin, (*handler).serveDBImport},
	{"GET", "/v1/events", RoleRead, (*handler).serveEvents},
	{"GET", "/v1/health", RoleRead, (*handler).serveHealth},
	{"GET", "/v1/metrics", RoleRead, (*handler).serveMetrics},
	{"GET", "/v1/notify", RoleRead, (*handler).serveNotify},
	{"POST", "/v1/notify/retry", RoleAdmin, (*handler).serveNotifyRetry},
	{"GET", "/v1/packages", RoleRead, (*handler).servePackages},
	{"GET", "/v1/reports", RoleRead, (*handler).serveReportForImage},
	{"GET", "/v1/reports/{digest}", RoleRead, (*handler).serveReport},
	{"GET", "/v1/reports/{digest}/history", RoleRead, (*handler).serveReportHistory},
	{"GET", "/v1/scans", RoleRead, (*handler).serveListScans},
	{"POST", "/v1/scans", RoleScan, (*handler).serveSubmit},
	{"DELETE", "/v1/scans/{id}", RoleScan, (*handler).serveCancel},
	{"GET", "/v1/scans/{id}", RoleRead, (*handler).serveScan},
	{"GET", "/v1/vulnerabilities/{id}", RoleRead, (*handler).serveVulnerability},
}

// NewHandler returns the /v1 API handler. It panics if o.Service is nil.
func NewHandler(o Options) http.Handler {
	if o.Service == nil {
		panic("api: Options.Service is nil")
	}
	if o.Authorizer == nil {
		o.Authorizer = GroupAuthorizer{SelfUID: uint32(os.Getuid())}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = events.DefaultBuffer
	}
	h := &handler{
		o:            o,
		log:          o.Logger,
		started:      time.Now(),
		writeTimeout: eventWriteTimeout,
		mux:          http.NewServeMux(),
		paths:        http.NewServeMux(),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.metrics = newMetricsHandler(h)
	seen := make(map[string]bool)
	for _, rt := range routes {
		h.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			if role := roleFrom(r.Context()); role < rt.role {
				writeError(w, http.StatusForbidden, "permission_denied",
					fmt.Sprintf("%s %s needs the %s role; this caller has %s", rt.method, rt.path, rt.role, role))
				return
			}
			rt.serve(h, w, r)
		})
		if !seen[rt.path] {
			seen[rt.path] = true
			h.paths.Handle(rt.path, http.NotFoundHandler())
		}
	}
	// Everything the table does not match, including a known path with
	// another method, lands here.
	h.mux.HandleFunc("/", h.serveUnmatched)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &httpjson.StatusWriter{ResponseWriter: w}
	peer, hasPeer := PeerFrom(r.Context())
	defer func() {
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.Status()),
			slog.Duration("duration", time.Since(start)),
		}
		if hasPeer {
			attrs = append(attrs, slog.Uint64("uid", uint64(peer.UID)), slog.Int("pid", int(peer.PID)))
		}
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "api request", attrs...)
	}()

	// A browser must never drive the daemon (a page could otherwise reach a
	// socket forwarded to TCP): refuse what only browsers send.
	if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Referer") != "" {
		writeError(sw, http.StatusForbidden, "permission_denied", "browser requests are not allowed")
		return
	}
	var role Role
	switch {
	case overTCP(r.Context()):
		// A TCP caller proves itself with a bearer token of its role.
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || h.o.Tokens == nil {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="assay"`)
			writeError(sw, http.StatusUnauthorized, "unauthenticated", "a bearer token is required (Authorization: Bearer TOKEN)")
			return
		}
		var err error
		if role, err = h.o.Tokens.Role(strings.TrimSpace(token)); err != nil {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="assay", error="invalid_token"`)
			writeError(sw, http.StatusUnauthorized, "unauthenticated", err.Error())
			return
		}
	case !hasPeer:
		writeError(sw, http.StatusForbidden, "permission_denied", "peer credentials unavailable: connect over the daemon's Unix socket")
		return
	default:
		var err error
		if role, err = h.o.Authorizer.Role(peer); err != nil {
			writeError(sw, http.StatusForbidden, "permission_denied", err.Error())
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), roleKey{}, role))
	// ServeMux would route HEAD to GET handlers; the API has no HEAD.
	if r.Method == http.MethodHead {
		h.serveUnmatched(sw, r)
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// serveUnmatched answers 405 with Allow for a known path, else 404.
func (h *handler) serveUnmatched(w http.ResponseWriter, r *http.Request) {
	_, pat := h.paths.Handler(r)
	var allow []string
	for _, rt := range routes {
		if pat != "" && rt.path == pat {
			allow = append(allow, rt.method)
		}
	}
	if len(allow) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path)
		return
	}
	slices.Sort(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
		"method "+r.Method+" not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
}

type roleKey struct{}

// roleFrom is the caller's role, as ServeHTTP found it.
func roleFrom(ctx context.Context) Role {
	r, _ := ctx.Value(roleKey{}).(Role)
	return r
}
