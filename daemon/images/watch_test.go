package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type watchHit struct{ name, digest string }

// watchRecorder collects found calls.
type watchRecorder struct{ ch chan watchHit }

func newWatchRecorder() *watchRecorder { return &watchRecorder{ch: make(chan watchHit, 100)} }

func (r *watchRecorder) found(_ context.Context, name, digest string) {
	r.ch <- watchHit{name, digest}
}

// expect waits for the next call, which must be for d.
func (r *watchRecorder) expect(t testing.TB, d digest.Digest, within time.Duration) watchHit {
	t.Helper()
	select {
	case h := <-r.ch:
		if h.digest != d.String() {
			t.Fatalf("found %s (%s), want %s", h.digest, h.name, d)
		}
		return h
	case <-time.After(within):
		t.Fatalf("%s not found within %s", d, within)
	}
	return watchHit{}
}

// none asserts that no call comes for a while.
func (r *watchRecorder) none(t testing.TB, wait time.Duration) {
	t.Helper()
	select {
	case h := <-r.ch:
		t.Fatalf("unexpected call: %s %s", h.name, h.digest)
	case <-time.After(wait):
	}
}

// watchStart runs WatchImages until the test ends, and checks it returns nil.
func watchStart(t testing.TB, ctx context.Context, c WatchClient, r *watchRecorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- WatchImages(ctx, c, r.found, managedTestLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("WatchImages: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("WatchImages did not return after cancel")
		}
	})
}

func watchDigest(s string) digest.Digest { return digest.FromString(s) }

func watchImage(name string, d digest.Digest) images.Image {
	return images.Image{Name: name, Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1234}}
}

// watchFake is a WatchClient over an in-memory image store. Events are
// sent by the test; breakAll fails every open subscription.
type watchFake struct {
	mu     sync.Mutex
	imgs   map[string]images.Image
	subs   []watchFakeSub
	nsubs  int
	filter []string
}

type watchFakeSub struct {
	ctx  context.Context
	evs  chan *events.Envelope
	errs chan error
}

var (
	_ WatchClient  = (*watchFake)(nil)
	_ images.Store = (*watchFake)(nil)
)

func (f *watchFake) Subscribe(ctx context.Context, filters ...string) (<-chan *events.Envelope, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := watchFakeSub{ctx: ctx, evs: make(chan *events.Envelope), errs: make(chan error, 1)}
	f.subs = append(f.subs, s)
	f.nsubs++
	f.filter = filters
	return s.evs, s.errs
}

func (f *watchFake) subscriptions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nsubs
}

func (f *watchFake) breakAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.subs {
		s.errs <- errors.New("connection reset")
		close(s.errs)
	}
	f.subs = nil
}

// publish sends an event to every subscription, as containerd does.
func (f *watchFake) publish(t testing.TB, topic string, ev any) {
	t.Helper()
	a, err := typeurl.MarshalAny(ev)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	subs := append([]watchFakeSub(nil), f.subs...)
	f.mu.Unlock()
	for _, s := range subs {
		select {
		case s.evs <- &events.Envelope{Timestamp: time.Now(), Namespace: "ns", Topic: topic, Event: a}:
		case <-s.ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("event not taken")
		}
	}
}

func (f *watchFake) ImageService() images.Store { return f }

func (f *watchFake) Get(_ context.Context, name string) (images.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.imgs[name]
	if !ok {
		return images.Image{}, fmt.Errorf("image %q: %w", name, cerrdefs.ErrNotFound)
	}
	return img, nil
}

func (f *watchFake) List(context.Context, ...string) ([]images.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []images.Image
	for _, img := range f.imgs {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *watchFake) Create(_ context.Context, img images.Image) (images.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imgs[img.Name] = img
	return img, nil
}

func (f *watchFake) Update(ctx context.Context, img images.Image, _ ...string) (images.Image, error) {
	return f.Create(ctx, img)
}

func (f *watchFake) Delete(_ context.Context, name string, _ ...images.DeleteOpt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.imgs, name)
	return nil
}

func TestWatchImagesNeedsNamespace(t *testing.T) {
	f := &watchFake{imgs: map[string]images.Image{}}
	err := WatchImages(context.Background(), f, func(context.Context, string, string) {}, nil)
	if err == nil {
		t.Fatal("no error without a namespace")
	}
}

// TestWatchImagesFake covers the watcher's logic without containerd.
func TestWatchImagesFake(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	f := &watchFake{imgs: map[string]images.Image{}}
	d0, d1, d2, d3 := watchDigest("pre"), watchDigest("one"), watchDigest("during outage"), watchDigest("updated")
	f.Create(ctx, watchImage("reg.example/pre:1", d0))
	f.Create(ctx, watchImage(d0.String(), d0)) // CRI's config-id record

	r := newWatchRecorder()
	watchStart(t, ctx, f, r)
	if h := r.expect(t, d0, 5*time.Second); h.name != "reg.example/pre:1" {
		t.Errorf("found under %q", h.name)
	}
	managedEventually(t, 5*time.Second, "no subscription", func() bool { return f.subscriptions() == 1 })
	for _, want := range []string{`namespace=="k8s.io"`, `topic=="/images/create"`} {
		if !strings.Contains(strings.Join(f.filter, " "), want) {
			t.Errorf("filters %q lack %s", f.filter, want)
		}
	}

	// A pull as CRI does it: three records, one target.
	for _, name := range []string{"reg.example/app:1", "reg.example/app@" + d1.String(), d1.String()} {
		f.Create(ctx, watchImage(name, d1))
		f.publish(t, "/images/create", &apievents.ImageCreate{Name: name})
	}
	r.expect(t, d1, 5*time.Second)
	// An event for an image already gone is skipped.
	f.publish(t, "/images/create", &apievents.ImageCreate{Name: "reg.example/gone:1"})

	// containerd goes away; an image arrives meanwhile without an event.
	f.breakAll()
	f.Create(ctx, watchImage("reg.example/outage:1", d2))
	r.expect(t, d2, 5*time.Second)
	if n := f.subscriptions(); n != 2 {
		t.Errorf("%d subscriptions, want 2", n)
	}

	// A tag moved to another manifest.
	f.Update(ctx, watchImage("reg.example/app:1", d3))
	f.publish(t, "/images/update", &apievents.ImageUpdate{Name: "reg.example/app:1"})
	r.expect(t, d3, 5*time.Second)

	// Past the settling resync nothing repeats.
	r.none(t, watchSettle+500*time.Millisecond)
}

// watchDialNS connects to address with ctx in namespace ns.
func watchDialNS(t testing.TB, address, ns string) (*client.Client, context.Context) {
	t.Helper()
	return managedDial(t, address), namespaces.WithNamespace(context.Background(), ns)
}

func watchCreate(t testing.TB, ctx context.Context, c *client.Client, names []string, d digest.Digest) {
	t.Helper()
	for _, name := range names {
		if _, err := c.ImageService().Create(ctx, watchImage(name, d)); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
}

func TestWatchImagesManaged(t *testing.T) {
	bin := managedIntegration(t)
	m := managedStart(t, bin, filepath.Join(managedTempDir(t), "containerd"))
	c, ctx := watchDialNS(t, m.Address(), "assay-watch")
	other := namespaces.WithNamespace(context.Background(), "elsewhere")

	d0, d1, d2 := watchDigest("before"), watchDigest("pulled"), watchDigest("other namespace")
	watchCreate(t, ctx, c, []string{"reg.example/before:1"}, d0)

	r := newWatchRecorder()
	watchStart(t, ctx, c, r)
	r.expect(t, d0, 10*time.Second)

	start := time.Now()
	watchCreate(t, ctx, c, []string{"reg.example/app:1", "reg.example/app@" + d1.String(), d1.String()}, d1)
	h := r.expect(t, d1, 10*time.Second)
	t.Logf("found %s as %s after %s", h.digest, h.name, time.Since(start))
	if h.name == d1.String() {
		t.Errorf("reported under its bare digest")
	}
	watchCreate(t, other, c, []string{"reg.example/else:1"}, d2)
	r.none(t, watchSettle+500*time.Millisecond)
}

func TestWatchImagesManagedRestart(t *testing.T) {
	bin := managedIntegration(t)
	m := managedStart(t, bin, filepath.Join(managedTempDir(t), "containerd"))
	c, ctx := watchDialNS(t, m.Address(), "assay-watch")

	r := newWatchRecorder()
	watchStart(t, ctx, c, r)
	d0 := watchDigest("first")
	watchCreate(t, ctx, c, []string{"reg.example/first:1"}, d0)
	r.expect(t, d0, 10*time.Second)

	if err := syscall.Kill(m.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	managedEventually(t, 30*time.Second, "no restart", func() bool { return m.Restarts() == 1 })
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	// A puller (kubelet, ctr) is another client; the watcher's own
	// connection is what has to recover.
	puller := managedDial(t, m.Address())
	start := time.Now()
	d1 := watchDigest("after restart")
	watchCreate(t, ctx, puller, []string{"reg.example/after:1"}, d1)
	r.expect(t, d1, 30*time.Second)
	t.Logf("found after restart in %s", time.Since(start))
	r.none(t, watchSettle+500*time.Millisecond)
}

// TestWatchImagesContainerd16 runs the watcher against Debian's containerd
// 1.6 (apt-get install containerd), started by hand in a temp dir, and
// through a restart of it.
func TestWatchImagesContainerd16(t *testing.T) {
	managedIntegration(t)
	const bin = "/usr/bin/containerd"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s absent (apt-get install containerd for Debian's 1.6): %v", bin, err)
	}
	dir := managedTempDir(t)
	sock := filepath.Join(dir, "containerd.sock")
	config := filepath.Join(dir, "config.toml")
	q := managedTOMLString
	cfg := fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %s
[ttrpc]
  address = %s
[plugins."io.containerd.internal.v1.opt"]
  path = %s
`, q(filepath.Join(dir, "root")), q(filepath.Join(dir, "state")), q(sock), q(sock+".ttrpc"), q(filepath.Join(dir, "opt")))
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "containerd.log")
	cd := managedStartByHand(t, bin, config, sock, logPath)
	c, ctx := watchDialNS(t, sock, "assay-watch")
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd %s", v.Version)

	d0, d1, d2 := watchDigest("16 before"), watchDigest("16 pulled"), watchDigest("16 after restart")
	watchCreate(t, ctx, c, []string{"reg.example/before:1"}, d0)
	r := newWatchRecorder()
	watchStart(t, ctx, c, r)
	r.expect(t, d0, 10*time.Second)
	watchCreate(t, ctx, c, []string{"reg.example/app:1", "reg.example/app@" + d1.String(), d1.String()}, d1)
	r.expect(t, d1, 10*time.Second)

	if err := cd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	managedEventually(t, 10*time.Second, "containerd 1.6 still running", func() bool {
		st := managedProcState(cd.Process.Pid)
		return st == "" || st == "Z"
	})
	managedStartByHand(t, bin, config, sock, logPath)
	puller := managedDial(t, sock)
	start := time.Now()
	watchCreate(t, ctx, puller, []string{"reg.example/after:1"}, d2)
	r.expect(t, d2, 30*time.Second)
	t.Logf("found after restart in %s", time.Since(start))
	r.none(t, watchSettle+500*time.Millisecond)
}
