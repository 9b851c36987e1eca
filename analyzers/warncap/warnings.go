// Package warncap sends an analyzer's warnings, at most Max of them per
// analysis; the rest are counted and reported in one last warning. Every
// text is made valid UTF-8, since the protocol carries only UTF-8.
package warncap

import (
	"fmt"
	"strings"

	"github.com/assayhq/assay/plugins/sdk"
)

// Max bounds the warnings of one analysis.
const Max = 100

// Capped sends warnings through an emitter, up to Max. Its zero value
// discards nothing and sends nothing: set Emit.
type Capped struct {
	Emit       sdk.Emitter
	sent       int
	suppressed int
}

// Warn sends a warning about path, or counts it when Max were sent.
func (c *Capped) Warn(path, format string, args ...any) error {
	if c.sent >= Max {
		c.suppressed++
		return nil
	}
	c.sent++
	return c.Emit.Warning(sdk.Warning{Message: ValidUTF8(fmt.Sprintf(format, args...)), Path: ValidUTF8(path)})
}

// Flush sends the count of the warnings that were not sent, if any.
func (c *Capped) Flush() error {
	if c.suppressed == 0 {
		return nil
	}
	return c.Emit.Warning(sdk.Warning{Message: fmt.Sprintf("warnings not sent (at most %d per analysis): %d more", Max, c.suppressed)})
}

// ValidUTF8 replaces invalid UTF-8 (file names of an image may hold any
// bytes) with U+FFFD.
func ValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
