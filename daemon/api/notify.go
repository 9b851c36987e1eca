package api

import (
	"context"
	"net/http"

	"github.com/assayhq/assay/daemon/notify"
)

// NotifyService is the notifications' outbox as the API shows it
// (*notify.Notifier).
type NotifyService interface {
	Status(ctx context.Context) (notify.Status, error)
	Retry(ctx context.Context, eventID string) (int, error)
}

// retryResponse is POST /v1/notify/retry.
type retryResponse struct {
	Retried int `json:"retried"`
}

func (h *handler) notifier(w http.ResponseWriter) (NotifyService, bool) {
	if h.o.Notify == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "notifications are off (notify.webhooks is empty)")
		return nil, false
	}
	return h.o.Notify, true
}

func (h *handler) serveNotify(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	n, ok := h.notifier(w)
	if !ok {
		return
	}
	st, err := n.Status(r.Context())
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// serveNotifyRetry sends dead letters again: those of ?event=ID, or all.
func (h *handler) serveNotifyRetry(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "event")
	if !ok {
		return
	}
	n, ok := h.notifier(w)
	if !ok {
		return
	}
	c, err := n.Retry(r.Context(), q["event"])
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, retryResponse{Retried: c})
}
