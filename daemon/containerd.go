package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/distribution/reference"

	"github.com/assayhq/assay/daemon/config"
	"github.com/assayhq/assay/daemon/images"
)

// ctrd is the containerd assayd talks to: its own child (managed mode, the
// default) or the node's (containerd.address set).
type ctrd struct {
	client  *client.Client
	managed *images.Managed
}

func startContainerd(ctx context.Context, cfg *config.Config, log *slog.Logger) (*ctrd, error) {
	c := &ctrd{}
	address := cfg.Containerd.Address
	if address == "" {
		bin := cfg.Containerd.Binary
		if bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("daemon: locating the containerd binary: %w", err)
			}
			bin = filepath.Join(filepath.Dir(exe), "containerd")
		}
		start := time.Now()
		m, err := images.StartManaged(ctx, images.ManagedOptions{
			Binary:       bin,
			Dir:          filepath.Join(cfg.StateDir, "containerd"),
			StartTimeout: cfg.Containerd.StartTimeout,
			Logger:       log,
		})
		if err != nil {
			return nil, fmt.Errorf("daemon: managed containerd (containerd.binary %s): %w", bin, err)
		}
		log.Info("managed containerd serving", "pid", m.PID(), "address", m.Address(), "took", time.Since(start).Round(time.Millisecond))
		c.managed = m
		address = m.Address()
	}
	cl, err := images.Dial(ctx, address, 10*time.Second)
	if err != nil {
		c.close()
		return nil, err
	}
	c.client = cl
	return c, nil
}

// ready is the health of containerd: it must answer.
func (c *ctrd) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.client.Version(ctx); err != nil {
		return fmt.Errorf("containerd does not answer: %w", err)
	}
	return nil
}

func (c *ctrd) close() {
	if c.client != nil {
		c.client.Close()
	}
	if c.managed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.managed.Stop(ctx); err != nil {
			slog.Warn("stopping the managed containerd", "err", err)
		}
	}
}

func hostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// pinned turns an image name and its target digest into repo@digest.
func pinned(name, digest string) (string, error) {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", err
	}
	return reference.TrimNamed(n).String() + "@" + digest, nil
}
