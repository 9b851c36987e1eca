package sandbox

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Kind says why a sandbox ended other than by a clean exit.
type Kind int

const (
	// Exited: the program exited with a non-zero status.
	Exited Kind = iota + 1
	// Signaled: the program died of a signal the sandbox did not send
	// (a crash, or the host's OOM killer outside the sandbox's cgroup).
	Signaled
	// OutOfMemory: the sandbox reached its memory limit; the kernel
	// killed a process in it and the sandbox was then killed whole.
	OutOfMemory
	// TooManyProcesses: a fork or thread creation failed at the pids
	// limit; the sandbox was then killed.
	TooManyProcesses
	// DeadlineExceeded: the wall-clock limit (Limits.Timeout or the
	// deadline of the caller's context) passed; the sandbox was killed.
	DeadlineExceeded
	// Canceled: the caller's context was canceled; the sandbox was killed.
	Canceled
	// Killed: the caller killed the sandbox (Runner.Kill).
	Killed
)

// Sentinels for errors.Is on a sandbox's exit error.
var (
	ErrOutOfMemory      = errors.New("sandbox: out of memory")
	ErrTooManyProcesses = errors.New("sandbox: too many processes")
	ErrKilled           = errors.New("sandbox: killed")
)

// ExitError is what Wait returns when the sandboxed program did not exit
// with status 0. Reason gives a one-line explanation for a report.
type ExitError struct {
	Kind Kind
	// Limit is the breached limit in words ("256 MiB", "64", "30s") when
	// Kind is OutOfMemory, TooManyProcesses or DeadlineExceeded.
	Limit string
	// Code is the exit status when Kind is Exited.
	Code int
	// Signal is the signal the program died of, if it died of one.
	Signal syscall.Signal
}

func (e *ExitError) Error() string { return "sandbox: " + e.Reason() }

// Reason is e's explanation without the package prefix, e.g.
// "out of memory (limit 256 MiB)".
func (e *ExitError) Reason() string {
	switch e.Kind {
	case Exited:
		return fmt.Sprintf("exit status %d", e.Code)
	case Signaled:
		return "killed by signal " + signalName(e.Signal)
	case OutOfMemory:
		return "out of memory (limit " + e.Limit + ")"
	case TooManyProcesses:
		return "too many processes (limit " + e.Limit + ")"
	case DeadlineExceeded:
		if e.Limit == "" {
			return "deadline exceeded"
		}
		return "deadline exceeded (limit " + e.Limit + ")"
	case Canceled:
		return "canceled"
	case Killed:
		return "killed"
	}
	return fmt.Sprintf("ended (kind %d)", int(e.Kind))
}

// Is makes errors.Is(err, ErrOutOfMemory), ErrTooManyProcesses, ErrKilled,
// context.DeadlineExceeded and context.Canceled work on an ExitError.
func (e *ExitError) Is(target error) bool {
	switch target {
	case ErrOutOfMemory:
		return e.Kind == OutOfMemory
	case ErrTooManyProcesses:
		return e.Kind == TooManyProcesses
	case ErrKilled:
		return e.Kind == Killed
	case context.DeadlineExceeded:
		return e.Kind == DeadlineExceeded
	case context.Canceled:
		return e.Kind == Canceled
	}
	return false
}

// Reason explains why a sandbox ended, from the error its Wait returned:
// "" for nil, e.g. "out of memory (limit 256 MiB)" for a limit, the error
// text otherwise. The host reports it as "failed: " + Reason(err).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Reason()
	}
	return err.Error()
}

func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("%d", int(s))
}

// formatBytes writes n the way limits are configured: "256 MiB".
func formatBytes(n int64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
	)
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib && n%kib == 0:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d bytes", n)
}
