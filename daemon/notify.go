package daemon

import (
	"log/slog"
	"os"

	"github.com/assayhq/assay/daemon/config"
	"github.com/assayhq/assay/daemon/events"
	"github.com/assayhq/assay/daemon/notify"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
)

// newNotifier makes the notifier of notify.webhooks and turns the store's
// outbox on; nil when no receiver is configured (the outbox stays off).
func newNotifier(cfg *config.Config, st *store.Store, log *slog.Logger) *notify.Notifier {
	if len(cfg.Notify.Webhooks) == 0 {
		return nil
	}
	st.EnableOutbox()
	var rs []notify.Receiver
	for _, w := range cfg.Notify.Webhooks {
		sev, _ := report.ParseSeverity(w.MinSeverity) // validated
		if w.MinSeverity == "" {
			sev = ""
		}
		rs = append(rs, notify.Receiver{URL: w.URL, Secret: w.Secret(), MinSeverity: sev, VerdictChangedOnly: w.VerdictChangedOnly, Images: w.Images})
	}
	host, _ := os.Hostname()
	return notify.New(notify.Options{
		Store:     st,
		Receivers: rs,
		Timeout:   cfg.Notify.Timeout,
		MaxAge:    cfg.Notify.MaxAge,
		Source:    "/assayd/" + host,
		UserAgent: "assayd/" + Version,
		Logger:    log,
	})
}

// kickingPublisher publishes to the event stream, wakes the notifier
// when a change it may have to tell of was stored, and asks for a
// re-match when a report was matched against data older than the
// database's (the data changed while the scan ran).
type kickingPublisher struct {
	broker *events.Broker
	n      *notify.Notifier // nil: notifications are off
	// stale tells a report matched before the database's last change;
	// rematch asks for a pass. Both may be nil.
	stale   func(*report.Report) bool
	rematch func()
}

func (p kickingPublisher) Publish(e scans.Event) {
	p.broker.Publish(e)
	if p.n != nil && (e.Report != nil || e.Scan != nil && e.Scan.Status == scans.Failed) {
		p.n.Kick()
	}
	if e.Report != nil && p.stale != nil && p.rematch != nil && p.stale(e.Report) {
		p.rematch()
	}
}
