package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// EventFilter selects events; zero values select everything.
type EventFilter struct {
	// MinSeverity keeps report events with a finding at least this severe.
	MinSeverity report.Severity
	Verdict     report.Verdict
	Image       string
	// Type is "scan" or "report"; empty means both.
	Type string
}

// EventStream reads the NDJSON answer of GET /v1/events.
type EventStream struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	body   io.ReadCloser
	dec    *json.Decoder
	raw    json.RawMessage
	err    error
	once   sync.Once
}

// Events opens the event stream. The stream lives as long as ctx or until
// Close; the Client's timeout bounds only the wait for the response header.
func (c *Client) Events(ctx context.Context, f EventFilter) (*EventStream, error) {
	q := url.Values{}
	setIf(q, "min_severity", string(f.MinSeverity))
	setIf(q, "verdict", string(f.Verdict))
	setIf(q, "image", f.Image)
	setIf(q, "type", f.Type)

	ctx, cancel := context.WithCancelCause(ctx)
	var timer *time.Timer
	if c.timeout > 0 {
		timer = time.AfterFunc(c.timeout, func() { cancel(&timeoutError{c.timeout}) })
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/events", q, nil)
	if timer != nil && !timer.Stop() && err == nil {
		// The header came as the timer fired: the stream is already cut.
		resp.Body.Close()
		err = fmt.Errorf("client: GET /v1/events: %w", context.Cause(ctx))
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel(nil)
		return nil, decodeError(resp.StatusCode, b)
	}
	return &EventStream{ctx: ctx, cancel: cancel, body: resp.Body, dec: json.NewDecoder(resp.Body)}, nil
}

// Next returns the next event. It returns io.EOF when the server ends the
// stream cleanly, and an error wrapping an *APIError when the server ends it
// with an "error" line (for example when it drops a slow client). Once Next
// has failed it keeps returning the same error.
func (s *EventStream) Next() (scans.Event, error) {
	if s.err != nil {
		return scans.Event{}, s.err
	}
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		switch {
		case s.ctx.Err() != nil:
			s.err = fmt.Errorf("client: events: %w", context.Cause(s.ctx))
		case errors.Is(err, io.EOF):
			s.err = io.EOF
		default:
			s.err = fmt.Errorf("client: events: %w", err)
		}
		return scans.Event{}, s.err
	}
	var ev scans.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		s.err = fmt.Errorf("client: events: bad event %.200s: %w", raw, err)
		return scans.Event{}, s.err
	}
	s.raw = raw
	if ev.Type == "error" || ev.Error != nil {
		e := &APIError{Code: "internal", Message: "event stream ended with an error"}
		if ev.Error != nil {
			e.Code, e.Message = ev.Error.Code, ev.Error.Message
		}
		s.err = fmt.Errorf("client: events: %w", e)
		return scans.Event{}, s.err
	}
	return ev, nil
}

// Raw is the last line Next read, as the server sent it (without the
// newline).
func (s *EventStream) Raw() json.RawMessage { return s.raw }

// Close ends the stream. It is safe to call more than once.
func (s *EventStream) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel(nil)
		err = s.body.Close()
	})
	return err
}
