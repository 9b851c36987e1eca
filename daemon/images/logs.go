package images

import (
	"context"
	"io"
	"log/slog"

	clog "github.com/containerd/log"
	"github.com/sirupsen/logrus"
)

// BridgeLogs sends what the containerd client library logs (through
// logrus) to l, one level down: the library's info is assayd's debug.
func BridgeLogs(l *slog.Logger) {
	lg := clog.L.Logger
	lg.SetOutput(io.Discard)
	lg.SetLevel(logrus.InfoLevel)
	lg.ReplaceHooks(logrus.LevelHooks{})
	lg.AddHook(slogHook{l})
}

type slogHook struct{ l *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelWarn
	case e.Level == logrus.WarnLevel:
		level = slog.LevelInfo
	}
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "component", "containerd-client")
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	h.l.Log(ctx, level, e.Message, attrs...)
	return nil
}
