package images

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/go-digest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/assayhq/assay/daemon/errdefs"
)

// WatchClient is what WatchImages needs of a containerd client.
type WatchClient interface {
	Subscribe(ctx context.Context, filters ...string) (<-chan *events.Envelope, <-chan error)
	ImageService() images.Store
}

var _ WatchClient = (*client.Client)(nil)

// watchConn is an optional ability of a WatchClient (*client.Client has
// it): its gRPC connection, whose own reconnect backoff (growing to the
// client's timeout, 10s by default) a reconnecting watcher cuts short.
type watchConn interface {
	Conn() any
}

var _ watchConn = (*client.Client)(nil)

const (
	watchBackoffMin = 250 * time.Millisecond
	watchBackoffMax = 5 * time.Second
	// watchSettle: a second listing this long after each subscription, for
	// images created before the server had registered it (the subscribe
	// call returns before that, with no way to tell when).
	watchSettle = time.Second
)

// WatchImages follows image creation in the namespace that ctx carries and
// calls found once per target digest for the life of the watcher, with one
// of the names that point at it. Names that are bare digests (CRI's
// sha256:<config id> records) are skipped. Events are lossy, so every
// (re)subscription is followed by a full listing. When the subscription
// fails (containerd restarted) it subscribes again with backoff until ctx
// ends; it returns nil then. found runs on the watcher's goroutine and
// should only enqueue.
func WatchImages(ctx context.Context, c WatchClient, found func(ctx context.Context, name, digest string), log *slog.Logger) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return fmt.Errorf("images: watch: %v: %w", err, errdefs.ErrInvalid)
	}
	if c == nil || found == nil {
		return fmt.Errorf("images: watch needs a client and a callback: %w", errdefs.ErrInvalid)
	}
	if log == nil {
		log = slog.Default()
	}
	w := &watchState{
		c:     c,
		found: found,
		log:   log.With("component", "image-watch", "namespace", ns),
		seen:  map[digest.Digest]bool{},
		filters: []string{
			"namespace==" + strconv.Quote(ns) + `,topic=="/images/create"`,
			"namespace==" + strconv.Quote(ns) + `,topic=="/images/update"`,
		},
	}
	backoff := watchBackoffMin
	for {
		established, err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if established {
			backoff = watchBackoffMin
		}
		w.log.Warn("image events interrupted; subscribing again", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		watchReconnect(ctx, c, backoff)
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// watchReconnect asks c's gRPC connection, if it has one, to dial again now
// rather than after its own backoff, and waits up to d for it: calls made
// meanwhile would fail at once.
func watchReconnect(ctx context.Context, c WatchClient, d time.Duration) {
	wc, ok := c.(watchConn)
	if !ok {
		return
	}
	conn, ok := wc.Conn().(*grpc.ClientConn)
	if !ok || conn == nil {
		return
	}
	conn.ResetConnectBackoff()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if s == connectivity.Idle {
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, s) {
			return
		}
	}
}

type watchState struct {
	c       WatchClient
	found   func(ctx context.Context, name, digest string)
	log     *slog.Logger
	filters []string
	seen    map[digest.Digest]bool
}

// session subscribes, lists, and follows events until the subscription
// fails. established tells whether it got as far as a complete listing.
func (w *watchState) session(ctx context.Context) (established bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errs := w.c.Subscribe(sctx, w.filters...)
	if err := w.resync(sctx); err != nil {
		return false, err
	}
	w.log.Debug("following image events")
	settle := time.NewTimer(watchSettle)
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err, ok := <-errs:
			if !ok || err == nil {
				err = fmt.Errorf("images: event subscription closed: %w", errdefs.ErrUnavailable)
			}
			return true, err
		case <-settle.C:
			if err := w.resync(sctx); err != nil {
				return true, err
			}
		case env := <-evs:
			w.event(sctx, env)
		}
	}
}

// resync offers every image in the namespace.
func (w *watchState) resync(ctx context.Context) error {
	imgs, err := w.c.ImageService().List(ctx)
	if err != nil {
		return fmt.Errorf("images: list images: %w", err)
	}
	for _, img := range imgs {
		w.offer(ctx, img)
	}
	return nil
}

func (w *watchState) event(ctx context.Context, env *events.Envelope) {
	if env == nil || env.Event == nil {
		return
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		w.log.Warn("undecodable image event", "topic", env.Topic, "err", err)
		return
	}
	var name string
	switch e := v.(type) {
	case *apievents.ImageCreate:
		name = e.Name
	case *apievents.ImageUpdate:
		name = e.Name
	default:
		return
	}
	if watchDigestName(name) {
		return
	}
	img, err := w.c.ImageService().Get(ctx, name)
	if err != nil {
		if !cerrdefs.IsNotFound(err) {
			// A failing connection also ends the subscription, and the
			// listing after it finds the image.
			w.log.Warn("look up image", "name", name, "err", err)
		}
		return
	}
	w.offer(ctx, img)
}

func (w *watchState) offer(ctx context.Context, img images.Image) {
	d := img.Target.Digest
	if watchDigestName(img.Name) || d == "" || w.seen[d] {
		return
	}
	w.seen[d] = true
	w.log.Debug("image found", "name", img.Name, "digest", d)
	w.found(ctx, img.Name, d.String())
}

// watchDigestName: a name that is only a digest, as CRI names an image by
// its config id.
func watchDigestName(name string) bool {
	_, err := digest.Parse(name)
	return err == nil
}
