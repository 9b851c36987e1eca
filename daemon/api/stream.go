package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// eventFilter selects the events a /v1/events client asked for.
type eventFilter struct {
	image string
	// types is nil for every type.
	types []string
	// minSeverity and verdict, when set, pass only report events.
	minSeverity report.Severity
	verdict     report.Verdict
}

var eventTypes = []string{"report", "scan"}

func parseEventFilter(q map[string]string) (eventFilter, error) {
	f := eventFilter{image: q["image"]}
	if v, ok := q["type"]; ok {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if !slices.Contains(eventTypes, t) {
				return f, errors.New("type: want scan or report, got " + strconv.Quote(t))
			}
			f.types = append(f.types, t)
		}
	}
	if v, ok := q["min_severity"]; ok {
		s, err := report.ParseSeverity(v)
		if err != nil {
			return f, errors.New("min_severity: " + strings.TrimPrefix(err.Error(), "report: "))
		}
		f.minSeverity = s
	}
	if v, ok := q["verdict"]; ok {
		vd, err := report.ParseVerdict(v)
		if err != nil {
			return f, errors.New("verdict: " + strings.TrimPrefix(err.Error(), "report: "))
		}
		f.verdict = vd
	}
	if (f.minSeverity != "" || f.verdict != "") && f.types != nil && !slices.Contains(f.types, "report") {
		return f, errors.New("min_severity and verdict select report events, which type excludes")
	}
	return f, nil
}

func (f eventFilter) match(e scans.Event) bool {
	if f.types != nil && !slices.Contains(f.types, e.Type) {
		return false
	}
	if f.image != "" {
		if !(e.Scan != nil && e.Scan.Image == f.image || e.Report != nil && e.Report.Image == f.image) {
			return false
		}
	}
	if f.minSeverity == "" && f.verdict == "" {
		return true
	}
	if e.Type != "report" || e.Report == nil {
		return false
	}
	if f.verdict != "" && e.Report.Verdict != f.verdict {
		return false
	}
	if f.minSeverity != "" {
		// Max is the most severe level found; with no findings there is none.
		s := e.Report.Summary
		if s.Total() == 0 || !s.Max().AtLeast(f.minSeverity) {
			return false
		}
	}
	return true
}

// serveEvents streams matching events as NDJSON until the client goes away,
// the source ends the subscription, or a write cannot complete in time.
func (h *handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "image", "type", "min_severity", "verdict")
	if !ok {
		return
	}
	f, err := parseEventFilter(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	if h.o.Events == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the event stream is not enabled")
		return
	}
	// Subscribe before the headers go out: a client that has the response
	// sees every event published after that.
	sub := h.o.Events.Subscribe(h.o.EventBuffer)
	defer sub.Close()

	ctx := r.Context()
	rc := http.NewResponseController(w)
	// A stream outlives any server-wide read timeout; the GET has no body.
	_ = rc.SetReadDeadline(time.Time{})
	// Bound whatever the server writes after we return (the end of the
	// chunked body); the connection is not reused after a stream.
	defer func() { _ = rc.SetWriteDeadline(time.Now().Add(h.writeTimeout)) }()

	hdr := w.Header()
	hdr.Set("Content-Type", "application/x-ndjson")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Connection", "close")
	// send writes one chunk within the write timeout, then lifts the
	// deadline so an idle stream is not cut.
	send := func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(h.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if len(b) > 0 {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Time{})
		return nil
	}
	w.WriteHeader(http.StatusOK)
	if err := send(nil); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C():
			if !ok {
				if sub.Dropped() {
					h.log.Debug("api: event stream dropped a slow consumer", "path", r.URL.Path)
					b, _ := json.Marshal(scans.Event{
						Type: "error",
						Time: time.Now().UTC(),
						Error: &scans.ErrorBody{
							Code:    "slow_consumer",
							Message: "the client fell behind the event stream and was dropped; reconnect to resume",
						},
					})
					_ = send(append(b, '\n'))
				}
				return
			}
			if !f.match(e) {
				continue
			}
			b, err := json.Marshal(e)
			if err != nil {
				h.log.Error("api: encode event", "type", e.Type, "err", err)
				continue
			}
			if err := send(append(b, '\n')); err != nil {
				return
			}
		}
	}
}
