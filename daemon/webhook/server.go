package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/assayhq/assay/daemon/netaddr"
)

// shutdownTimeout bounds the graceful shutdown; a variable for tests.
var shutdownTimeout = 5 * time.Second

// Server is the notification endpoint on its own TCP listener.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	err  error
}

// Serve listens on addr (host:port; port 0 picks one) and serves the handler
// until ctx ends, then shuts down gracefully: in-flight notifications get up
// to 5s to finish before their connections are closed. It returns once the
// listener is bound, so an error means nothing is being served (invalid
// options, or the address is taken).
//
// Requests do not inherit ctx's cancellation: a Submit under way when
// shutdown starts may complete within the bound, and the registry
// redelivers anything that does not.
func Serve(ctx context.Context, addr string, o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	h := NewHandler(o)
	ln, err := netaddr.Listen(ctx, addr, o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("webhook: listen: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "webhook")
	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		},
		done: make(chan struct{}),
	}
	log.Info("webhook: listening", "addr", ln.Addr().String(), "tls", o.CertFile != "")
	go s.run(ctx)
	return s, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Wait blocks until the server has stopped and returns why, or nil after a
// clean shutdown. It may be called any number of times.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

func (s *Server) run(ctx context.Context) {
	defer close(s.done)
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	select {
	case err := <-served:
		// Serve stopped before ctx ended: the listener failed.
		s.err = fmt.Errorf("webhook: serve: %w", err)
		return
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.err = errors.Join(fmt.Errorf("webhook: shutdown: %w", err), s.srv.Close())
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.err = errors.Join(s.err, fmt.Errorf("webhook: serve: %w", err))
	}
}
