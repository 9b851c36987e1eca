// Package httpjson writes the JSON responses that assayd's HTTP endpoints
// (the socket API and the registry webhook) share, errors included:
// {"error": {"code", "message"}}.
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
