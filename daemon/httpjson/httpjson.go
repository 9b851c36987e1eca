// Package httpjson writes the JSON responses that assayd's HTTP endpoints
// (the socket API and the registry webhook) share, errors included:
// {"error": {"code", "message"}}; and the status recorder of their
// request logs (the Harbor adapter's too).
package httpjson

import (
	"encoding/json"
	"net/http"

	"github.com/assayhq/assay/daemon/scans"
)

// ErrorResponse is the body of every error.
type ErrorResponse struct {
	Error scans.ErrorBody `json:"error"`
}

// Write encodes v before writing anything, so that an encoding failure can
// still become a clean 500.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorResponse{scans.ErrorBody{Code: "internal", Message: "encode response: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Error writes {"error": {"code", "message"}} with status.
func Error(w http.ResponseWriter, status int, code, message string) {
	Write(w, status, ErrorResponse{scans.ErrorBody{Code: code, Message: message}})
}

// StatusWriter records a response's status for a request log. Unwrap lets
// http.ResponseController reach the connection (flush, deadlines).
type StatusWriter struct {
	http.ResponseWriter
	code int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController.Flush calls, so flush errors
// reach the event stream; Flush serves code that asserts http.Flusher.
func (w *StatusWriter) FlushError() error {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *StatusWriter) Flush() { _ = w.FlushError() }

func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *StatusWriter) Status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
