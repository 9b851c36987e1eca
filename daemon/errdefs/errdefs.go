// Package errdefs holds the small set of error kinds the daemon uses. Only
// the API layer maps them to HTTP status codes.
package errdefs

import "errors"

var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request or input is malformed or impossible.
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the request contradicts the current state.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: a dependency cannot serve now; retrying may help.
	ErrUnavailable = errors.New("unavailable")
	// ErrDenied: the caller may not do this.
	ErrDenied = errors.New("denied")
	// ErrBusy: the daemon holds as much work as it takes (scan.max_queued);
	// the same request later will be accepted.
	ErrBusy = errors.New("busy")
)
