// Package metrics holds the daemon's Prometheus metrics. It only counts;
// the API serves them at /v1/metrics.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// Gauges are read when scraped.
type Gauges struct {
	Queued      func() float64
	Running     func() float64
	Subscribers func() float64
}

// Metrics is the daemon's registry and its instruments.
type Metrics struct {
	Registry *prometheus.Registry
	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New registers the daemon's metrics, the Go runtime's and the process's.
func New(version string, g Gauges) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assay_scans_finished_total",
			Help: "Scans that ended, by final status and verdict.",
		}, []string{"status", "verdict"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "assay_scan_duration_seconds",
			Help:    "Wall-clock time of scans from start to end, by final status.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"status"}),
	}
	r.MustRegister(
		m.finished, m.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assay_scans_queued", Help: "Scans waiting for a worker."}, g.Queued),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assay_scans_running", Help: "Scans a worker holds now."}, g.Running),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assay_event_subscribers", Help: "Clients following /v1/events."}, g.Subscribers),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assay_build_info", Help: "Build information.", ConstLabels: prometheus.Labels{"version": version}}, func() float64 { return 1 }),
	)
	return m
}

// ScanFinished counts one ended scan.
func (m *Metrics) ScanFinished(status scans.Status, verdict report.Verdict, took time.Duration) {
	v := string(verdict)
	if v == "" {
		v = "none"
	}
	m.finished.WithLabelValues(string(status), v).Inc()
	if took > 0 {
		m.duration.WithLabelValues(string(status)).Observe(took.Seconds())
	}
}

// CacheCounts are the layer cache's figures, read when scraped.
type CacheCounts struct {
	Entries, Bytes, Hits, Misses, Evictions int64
}

// LayerCache registers the layer cache's metrics, read from stats.
func (m *Metrics) LayerCache(stats func() CacheCounts) {
	get := func(f func(CacheCounts) int64) func() float64 {
		return func() float64 { return float64(f(stats())) }
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assay_layer_cache_entries", Help: "Entries in the layer cache (one per layer and extractor)."}, get(func(c CacheCounts) int64 { return c.Entries })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assay_layer_cache_bytes", Help: "Size of the layer cache's entries."}, get(func(c CacheCounts) int64 { return c.Bytes })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "assay_layer_cache_hits_total", Help: "Layer cache lookups that found a valid entry."}, get(func(c CacheCounts) int64 { return c.Hits })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "assay_layer_cache_misses_total", Help: "Layer cache lookups that found nothing valid (absent, expired or corrupt)."}, get(func(c CacheCounts) int64 { return c.Misses })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "assay_layer_cache_evictions_total", Help: "Layer cache entries removed for size or age."}, get(func(c CacheCounts) int64 { return c.Evictions })),
	)
}
