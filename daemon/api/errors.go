package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/assayhq/assay/daemon/httpjson"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/assayhq/assay/daemon/errdefs"
)

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

func writeError(w http.ResponseWriter, status int, code, message string) {
	httpjson.Error(w, status, code, message)
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf(format, args...))
}

// RetryAfterBusy is the Retry-After, in seconds, of a request refused
// because the queue is full.
const RetryAfterBusy = "10"

// errorStatus maps an error kind of daemon/errdefs to a status and code.
// This is the only place the kinds become HTTP.
func errorStatus(err error) (status int, code string) {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, errdefs.ErrInvalid):
		return http.StatusBadRequest, "invalid_argument"
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, errdefs.ErrDenied):
		return http.StatusForbidden, "permission_denied"
	case errors.Is(err, errdefs.ErrBusy):
		return http.StatusTooManyRequests, "resource_exhausted"
	}
	return http.StatusInternalServerError, "internal"
}

// serviceError writes err, returned by the Service, as an API error.
func (h *handler) serviceError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := errorStatus(err)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", RetryAfterBusy)
	}
	if status == http.StatusInternalServerError {
		level := slog.LevelError
		if r.Context().Err() != nil {
			level = slog.LevelDebug // the client went away; not our fault
		}
		h.log.Log(r.Context(), level, "api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, code, err.Error())
}

// decodeBody reads a JSON object into v: absent or application/json content
// type, at most MaxBodyBytes, no unknown fields, nothing after the object.
// It writes the error response itself and reports whether decoding worked.
func (h *handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
				fmt.Sprintf("content type %q not supported: send application/json", ct))
			return false
		}
	}
	body := http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Exactly one value: the next read must be the end of the body.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
			var mb *http.MaxBytesError
			if errors.As(terr, &mb) {
				err = terr
			}
		}
	}
	if err == nil {
		return true
	}
	var (
		mb  *http.MaxBytesError
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mb):
		writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large",
			fmt.Sprintf("request body larger than %d bytes", mb.Limit))
	case errors.Is(err, io.EOF):
		badRequest(w, "request body is empty: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		badRequest(w, "request body: truncated JSON")
	case errors.As(err, &syn):
		badRequest(w, "request body: malformed JSON at offset %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			badRequest(w, "request body: want a JSON object, got %s", typ.Value)
		} else {
			badRequest(w, "request body: field %q: want %s, got %s", typ.Field, typ.Type, typ.Value)
		}
	case errors.Is(err, errTrailing):
		badRequest(w, "request body: unexpected data after the JSON object")
	default:
		// encoding/json reports unknown fields only as text.
		badRequest(w, "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return false
}

var errTrailing = errors.New("trailing data")

// errorResponse names the shared error body for this package's tests and docs.
type errorResponse = httpjson.ErrorResponse
