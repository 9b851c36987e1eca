package host

import "io"

// Test-only access to unexported parts.

var (
	NewExecRunner = newExecRunner
	UnsafeLogJSON = unsafeLogJSON
	NewSlogHCLog  = newSlogHCLog
)

// SetTestHookVerified sets the hook run between verification and start.
func SetTestHookVerified(f func(src string)) { testHookVerified = f }

// NewLogFilter returns the stderr filter over src and a function that
// returns the panic line it saw.
func NewLogFilter(src io.ReadCloser, max int64) (io.ReadCloser, func() string) {
	f := newLogFilter(max).attach(src)
	return f, f.panicLine
}
