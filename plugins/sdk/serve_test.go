package sdk

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// A plugin's slog records become hclog JSON lines, which go-plugin's host
// side parses (@level, @message, and the attributes as keys).
func TestHCLogHandler(t *testing.T) {
	var buf bytes.Buffer
	hl := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &buf, JSONFormat: true})
	l := slog.New(newHCLogHandler(hl)).With("analyzer", "dpkg").WithGroup("file")
	l.Debug("not shown")
	l.Warn("truncated", "path", "/var/lib/dpkg/status", slog.Group("limit", "bytes", 10))
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	want := map[string]any{
		"@level": "warn", "@message": "truncated", "analyzer": "dpkg",
		"file.path": "/var/lib/dpkg/status", "file.limit.bytes": float64(10),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, buf.String())
		}
	}
}

func TestNewLoggerLevel(t *testing.T) {
	for in, want := range map[string]hclog.Level{"": hclog.Info, "debug": hclog.Debug, "TRACE": hclog.Trace, "off": hclog.Off, "junk": hclog.Info} {
		if got := newLogger(in).GetLevel(); got != want {
			t.Errorf("newLogger(%q) level %v, want %v", in, got, want)
		}
	}
}
