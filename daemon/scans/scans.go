// Package scans defines a scan request, its record and its lifecycle. It is
// shared by the store, the queue, the API and the client; it holds data, no
// behaviour that needs I/O.
package scans

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/assayhq/assay/daemon/report"
)

// Status is where a scan is in its life.
type Status string

const (
	Queued    Status = "queued"
	Pulling   Status = "pulling"
	Analyzing Status = "analyzing"
	Matching  Status = "matching"
	Done      Status = "done"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{Queued, Pulling, Analyzing, Matching, Done, Failed, Cancelled}

// Terminal reports whether no further change will happen.
func (s Status) Terminal() bool { return s == Done || s == Failed || s == Cancelled }

// Running reports whether a worker holds the scan.
func (s Status) Running() bool { return s == Pulling || s == Analyzing || s == Matching }

// CheckDigest accepts a manifest digest as the API takes one: sha256 with
// 64 or sha512 with 128 lower-case hex digits.
func CheckDigest(d string) error {
	algo, hex, _ := strings.Cut(d, ":")
	var want int
	switch algo {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Errorf("digest %q: want sha256:<64 hex> or sha512:<128 hex>", d)
	}
	if len(hex) != want || strings.IndexFunc(hex, func(c rune) bool { return !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') }) >= 0 {
		return fmt.Errorf("digest %q: want %s:<%d lower-case hex digits>", d, algo, want)
	}
	return nil
}

// ParseStatus accepts a status name.
func ParseStatus(s string) (Status, error) {
	for _, v := range Statuses {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("scans: unknown status %q", s)
}

// Request is what a trigger (API, webhook, containerd event) asks for.
type Request struct {
	// Image is a reference: registry/repo:tag, registry/repo@digest, or both.
	Image string `json:"image"`
	// Platform optionally pins os/arch[/variant]; empty means the configured default.
	Platform string `json:"platform,omitempty"`
	// Trigger says where the request came from: api, webhook, containerd.
	Trigger string `json:"trigger,omitempty"`
	// Policy is added to the configured policy for this scan's report (a
	// daemon/policy.Policy as JSON; the API validates it).
	Policy json.RawMessage `json:"policy,omitempty"`
	// SubmittedBy is the uid of the API caller that asked for the scan
	// (nil for the webhook and containerd events).
	SubmittedBy *uint32 `json:"submitted_by,omitempty"`
	// Auth is a registry credential for this scan's pull (Harbor's
	// robot account). It is held in memory only: never stored, logged
	// or reported.
	Auth *RegistryAuth `json:"-"`
}

// RegistryAuth is the Authorization header value ("Basic …" or
// "Bearer …") to pull one scan's image from one registry host with. Its
// String and LogValue hide the secret.
type RegistryAuth struct {
	// Host is the registry's host[:port]; no other host is sent it.
	Host          string
	Authorization string
}

func (a RegistryAuth) String() string { return "registry credentials for " + a.Host }

// LogValue keeps the secret out of logs.
func (a RegistryAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// GoString keeps the secret out of %#v.
func (a RegistryAuth) GoString() string { return a.String() }

// Scan is the durable record of one scan.
type Scan struct {
	ID       string `json:"id"`
	Image    string `json:"image"`
	Platform string `json:"platform,omitempty"`
	Trigger  string `json:"trigger,omitempty"`
	// Policy is the request's policy, kept for its report.
	Policy json.RawMessage `json:"policy,omitempty"`
	// SubmittedBy is the uid of the API caller that asked for it, if any:
	// that caller may cancel it without the admin role.
	SubmittedBy *uint32 `json:"submitted_by,omitempty"`
	// InMemoryAuth says the request came with registry credentials
	// (Request.Auth), which are held in memory only: a scan that a
	// restart interrupted fails rather than pull without them.
	InMemoryAuth bool `json:"in_memory_auth,omitempty"`
	// Auth is that credential while the daemon that accepted it runs;
	// the queue sets it for the scanner.
	Auth *RegistryAuth `json:"-"`
	// DedupeKey identifies "the same image" while the scan is queued or running.
	DedupeKey string `json:"-"`
	// Digest is the manifest digest, known once resolved (or from the reference).
	Digest string `json:"digest,omitempty"`
	Status Status `json:"status"`
	// Error says why a scan failed or was cancelled.
	Error string `json:"error,omitempty"`
	// Attempts counts how many times a worker started this scan; more than
	// one means a daemon crash or shutdown interrupted an earlier attempt.
	Attempts   int        `json:"attempts"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Verdict and Summary copy the report's, once done.
	Verdict report.Verdict  `json:"verdict,omitempty"`
	Summary *report.Summary `json:"summary,omitempty"`
}

// Filter selects scans in a listing. Zero values select everything.
type Filter struct {
	Status []Status
	// Image matches the requested reference exactly.
	Image  string
	Digest string
	// After is a scan ID: list scans created after it (paging cursor).
	After string
	// Limit caps the page size; 0 means the store's default.
	Limit int
}

// Event is one line of the /v1/events stream.
type Event struct {
	// Type is "scan" (a state change) or "report" (a finished report).
	Type   string         `json:"type"`
	Time   time.Time      `json:"time"`
	Scan   *Scan          `json:"scan,omitempty"`
	Report *report.Report `json:"report,omitempty"`
	// Error is set on the final line sent to a client that is being dropped.
	Error *ErrorBody `json:"error,omitempty"`
}

// ErrorBody is the error object of the API: {"error": {"code", "message"}}.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
