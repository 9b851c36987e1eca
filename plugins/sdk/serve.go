package sdk

import (
	"context"
	"log/slog"
	"os"
	"slices"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// LogLevelEnv names the environment variable through which the host sets a
// plugin's log level: trace, debug, info, warn, error or off. Unset or
// unknown means info.
const LogLevelEnv = "ASSAY_PLUGIN_LOG_LEVEL"

// Serve serves a as an analyzer plugin over go-plugin's gRPC transport and
// returns when the host closes the connection. It is all a plugin's main
// needs to call. Run by hand (without the host's handshake cookie) it
// prints a short explanation and exits with status 1.
//
// Logs go to stderr as hclog JSON, which the host reads and folds into its
// own log; slog's default logger is pointed there too, so plugin code logs
// with log/slog. Under the host's AutoMTLS and PLUGIN_UNIX_SOCKET_DIR
// go-plugin does the rest.
func Serve(a Analyzer) {
	log := newLogger(os.Getenv(LogLevelEnv))
	slog.SetDefault(slog.New(newHCLogHandler(log)))
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Impl: a}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          log,
	})
}

// newLogger returns the hclog logger a plugin writes to stderr with, at the
// given level (see LogLevelEnv).
func newLogger(level string) hclog.Logger {
	lv := hclog.LevelFromString(level)
	if lv == hclog.NoLevel {
		lv = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Level:      lv,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// hclogHandler is a slog.Handler that writes through an hclog.Logger, so a
// plugin's slog records reach the host the way go-plugin expects them.
type hclogHandler struct {
	l     hclog.Logger
	attrs []any
	group string
}

// newHCLogHandler returns a slog.Handler writing to l.
func newHCLogHandler(l hclog.Logger) *hclogHandler { return &hclogHandler{l: l} }

var _ slog.Handler = (*hclogHandler)(nil)

func hclogLevel(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelDebug:
		return hclog.Trace
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	}
	return hclog.Error
}

// Enabled implements slog.Handler.
func (h *hclogHandler) Enabled(_ context.Context, l slog.Level) bool {
	lv := h.l.GetLevel()
	return lv != hclog.Off && hclogLevel(l) >= lv
}

// Handle implements slog.Handler.
func (h *hclogHandler) Handle(_ context.Context, r slog.Record) error {
	args := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		args = appendAttr(args, h.group, a)
		return true
	})
	h.l.Log(hclogLevel(r.Level), r.Message, args...)
	return nil
}

func appendAttr(args []any, group string, a slog.Attr) []any {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return args
	}
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, ga := range a.Value.Group() {
			args = appendAttr(args, key, ga)
		}
		return args
	}
	return append(args, key, a.Value.Any())
}

// WithAttrs implements slog.Handler.
func (h *hclogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		h2.attrs = appendAttr(h2.attrs, h.group, a)
	}
	return &h2
}

// WithGroup implements slog.Handler.
func (h *hclogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	if h.group != "" {
		name = h.group + "." + name
	}
	h2.group = name
	return &h2
}
