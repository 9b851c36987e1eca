package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assayhq/assay/daemon/scans"
)

// healthResponse is the body of GET /v1/health.
type healthResponse struct {
	// Status is "ok" or "unavailable".
	Status        string      `json:"status"`
	Version       string      `json:"version"`
	UptimeSeconds int64       `json:"uptime_seconds"`
	Queue         *queueStats `json:"queue,omitempty"`
	// Analyzers are the enabled analyzer plugins, each with its version
	// and (a layer plugin's) extractors.
	Analyzers []AnalyzerInfo `json:"analyzers"`
	// Error says why the daemon is unavailable, in the API's error shape.
	Error *scans.ErrorBody `json:"error,omitempty"`
}

// AnalyzerInfo is an enabled analyzer plugin, as health shows it.
type AnalyzerInfo struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extractors []string `json:"extractors,omitempty"`
}

type queueStats struct {
	Queued  int `json:"queued"`
	Running int `json:"running"`
}

func (h *handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	resp := healthResponse{
		Status:        "ok",
		Version:       h.o.Version,
		UptimeSeconds: int64(time.Since(h.started) / time.Second),
		Analyzers:     append([]AnalyzerInfo{}, h.o.Analyzers...),
	}
	unavailable := func(reason string) {
		resp.Status = "unavailable"
		resp.Error = &scans.ErrorBody{Code: "unavailable", Message: reason}
		writeJSON(w, http.StatusServiceUnavailable, resp)
	}
	if h.o.Ready != nil {
		if err := h.o.Ready(); err != nil {
			unavailable(err.Error())
			return
		}
	}
	queued, running, err := h.o.Service.QueueStats(r.Context())
	if err != nil {
		unavailable("queue: " + err.Error())
		return
	}
	resp.Queue = &queueStats{Queued: queued, Running: running}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if h.o.Metrics == nil {
		writeError(w, http.StatusNotFound, "not_found", "metrics are not enabled")
		return
	}
	h.metrics.ServeHTTP(w, r)
}

// newMetricsHandler serves the gatherer; gathering errors are logged and
// whatever could be gathered is still served.
func newMetricsHandler(h *handler) http.Handler {
	if h.o.Metrics == nil {
		return nil
	}
	return promhttp.HandlerFor(h.o.Metrics, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
