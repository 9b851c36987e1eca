package host

import (
	"errors"
	"fmt"
)

// Status is the outcome of one plugin run, as a report records it.
type Status string

// Statuses. A run that returns a nil error is StatusOK.
const (
	StatusOK      Status = "ok"
	StatusFailed  Status = "failed"
	StatusTimeout Status = "timeout"
)

// Reason says why a run failed.
type Reason string

// Reasons.
const (
	// ReasonRefused: the manifest is invalid or the binary does not match
	// its SHA-256. Nothing was started.
	ReasonRefused Reason = "refused"
	// ReasonStart: the runner (the sandbox) could not start the plugin.
	ReasonStart Reason = "start"
	// ReasonHandshake: the plugin did not complete go-plugin's handshake
	// within StartTimeout, exited before it, or answered with something
	// else than an assay analyzer over gRPC.
	ReasonHandshake Reason = "handshake"
	// ReasonCrashed: the plugin process exited during a call; the error
	// says how (exit status, signal, the panic line).
	ReasonCrashed Reason = "crashed"
	// ReasonResultCap: the plugin sent more than MaxResultBytes.
	ReasonResultCap Reason = "result-cap"
	// ReasonProtocol: the plugin broke the contract: a description that
	// does not match its manifest, an invalid item, a kind it did not
	// declare.
	ReasonProtocol Reason = "protocol"
	// ReasonLimit: the plugin stopped at a limit of the request (the
	// entries or bytes of the image's layers): the image is refused.
	ReasonLimit Reason = "limit"
	// ReasonRPC: a call failed: the plugin returned an error, or the
	// connection broke while the process lived on.
	ReasonRPC Reason = "rpc"
	// ReasonDeadline: the caller's deadline (or the plugin's clamped
	// timeout) passed. Its Status is StatusTimeout.
	ReasonDeadline Reason = "deadline"
	// ReasonCancelled: the caller's context was cancelled.
	ReasonCancelled Reason = "cancelled"
	// ReasonHost: the host itself failed (the cache directory, or the
	// caller's emit function returned an error, which is wrapped).
	ReasonHost Reason = "host"
)

// Error is the error of a failed plugin run.
type Error struct {
	Plugin string
	Status Status
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("host: plugin %s: %s (%s): %v", e.Plugin, e.Status, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// StatusOf returns the status a run that returned err ends with: ok for
// nil, the Error's status, or failed for any other error.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return StatusFailed
}
