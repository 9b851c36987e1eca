package host

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogHCLog is an hclog.Logger that writes to a slog.Logger: go-plugin logs
// through it, and so do the plugin's own log lines, which go-plugin reads
// from the plugin's stderr and logs through a Named child.
//
// go-plugin's own messages are moved one level down (its info is assayd's
// debug, its errors are assayd's warnings: the run's outcome is reported
// as an error anyway); the plugin's lines keep their level and carry
// source=plugin.
type slogHCLog struct {
	l       *slog.Logger
	name    string
	implied []any
	plugin  bool
}

var _ hclog.Logger = (*slogHCLog)(nil)

func newSlogHCLog(l *slog.Logger) *slogHCLog { return &slogHCLog{l: l} }

func (b *slogHCLog) level(lv hclog.Level) slog.Level {
	var sl slog.Level
	switch lv {
	case hclog.Trace:
		sl = slog.LevelDebug - 4
	case hclog.Debug, hclog.NoLevel:
		sl = slog.LevelDebug
	case hclog.Info:
		sl = slog.LevelInfo
	case hclog.Warn:
		sl = slog.LevelWarn
	default:
		sl = slog.LevelError
	}
	if !b.plugin && sl > slog.LevelDebug {
		sl -= 4
	}
	return sl
}

func (b *slogHCLog) Log(lv hclog.Level, msg string, args ...any) {
	if lv == hclog.Off {
		return
	}
	sl := b.level(lv)
	ctx := context.Background()
	if !b.l.Enabled(ctx, sl) {
		return
	}
	all := make([]any, 0, len(b.implied)+len(args)+4)
	if b.plugin {
		all = append(all, "source", "plugin")
	}
	if b.name != "" {
		all = append(all, "logger", b.name)
	}
	all = append(all, b.implied...)
	all = append(all, args...)
	b.l.Log(ctx, sl, msg, all...)
}

func (b *slogHCLog) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *slogHCLog) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *slogHCLog) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *slogHCLog) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *slogHCLog) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }

func (b *slogHCLog) enabled(lv hclog.Level) bool {
	return b.l.Enabled(context.Background(), b.level(lv))
}

func (b *slogHCLog) IsTrace() bool { return b.enabled(hclog.Trace) }
func (b *slogHCLog) IsDebug() bool { return b.enabled(hclog.Debug) }
func (b *slogHCLog) IsInfo() bool  { return b.enabled(hclog.Info) }
func (b *slogHCLog) IsWarn() bool  { return b.enabled(hclog.Warn) }
func (b *slogHCLog) IsError() bool { return b.enabled(hclog.Error) }

func (b *slogHCLog) ImpliedArgs() []any { return b.implied }

func (b *slogHCLog) With(args ...any) hclog.Logger {
	c := *b
	c.implied = append(append([]any(nil), b.implied...), args...)
	return &c
}

func (b *slogHCLog) Name() string { return b.name }

// Named is how go-plugin makes the logger for the plugin's stderr (named
// after the binary, v1.8.0 client.go logStderr); its other named loggers
// are its own ("stdio", "yamux").
func (b *slogHCLog) Named(name string) hclog.Logger {
	c := *b
	c.plugin = b.plugin || (name != "stdio" && name != "yamux")
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (b *slogHCLog) ResetNamed(name string) hclog.Logger {
	c := *b
	c.name = ""
	c.plugin = false
	return c.Named(name)
}

// SetLevel does nothing: the slog handler decides.
func (b *slogHCLog) SetLevel(hclog.Level) {}

// GetLevel returns the lowest hclog level the slog handler lets through.
func (b *slogHCLog) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if b.enabled(lv) {
			return lv
		}
	}
	return hclog.Off
}

func (b *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(opts), "", 0)
}

func (b *slogHCLog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	lv := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		lv = opts.ForceLevel
	}
	return stdWriter{b: b, lv: lv}
}

type stdWriter struct {
	b  *slogHCLog
	lv hclog.Level
}

func (w stdWriter) Write(p []byte) (int, error) {
	w.b.Log(w.lv, string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// pluginLogLevel is the level the plugin is asked to log at (through
// sdk.LogLevelEnv): as verbose as assayd's log would show.
func pluginLogLevel(l *slog.Logger) string {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, slog.LevelDebug-4):
		return "trace"
	case l.Enabled(ctx, slog.LevelDebug):
		return "debug"
	case l.Enabled(ctx, slog.LevelInfo):
		return "info"
	case l.Enabled(ctx, slog.LevelWarn):
		return "warn"
	case l.Enabled(ctx, slog.LevelError):
		return "error"
	}
	return "off"
}
