package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
)

// blockingScanner holds every scan until released or cancelled.
type blockingScanner struct {
	release  chan struct{}
	active   atomic.Int32
	maxSeen  atomic.Int32
	started  chan string
	panicOn  string
	finished atomic.Int32
}

func newBlocking() *blockingScanner {
	return &blockingScanner{release: make(chan struct{}), started: make(chan string, 100)}
}

func (b *blockingScanner) Scan(ctx context.Context, sc scans.Scan, progress func(scans.Status)) (*report.Report, error) {
	if sc.Image == b.panicOn {
		panic("hostile image")
	}
	n := b.active.Add(1)
	defer b.active.Add(-1)
	for {
		m := b.maxSeen.Load()
		if n <= m || b.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	b.started <- sc.ID
	progress(scans.Analyzing)
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	progress(scans.Matching)
	b.finished.Add(1)
	return &report.Report{Image: sc.Image, Digest: "sha256:" + strings.Repeat("a", 64)}, nil
}

type recorder struct {
	mu     sync.Mutex
	events []scans.Event
}

func (r *recorder) Publish(e scans.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func setup(t *testing.T, sc Scanner, concurrency int, timeout time.Duration) (*Queue, *store.Store, *recorder) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := &recorder{}
	q := New(Options{Store: st, Scanner: sc, Publisher: rec, Concurrency: concurrency, Timeout: timeout, MaxAttempts: 3})
	return q, st, rec
}

func waitStatus(t *testing.T, st *store.Store, id string, want scans.Status) scans.Scan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Status == want {
			return sc
		}
		time.Sleep(5 * time.Millisecond)
	}
	sc, _ := st.Get(context.Background(), id)
	t.Fatalf("scan %s: status %s, want %s", id, sc.Status, want)
	return sc
}

func TestConcurrencyIsBounded(t *testing.T) {
	b := newBlocking()
	q, st, _ := setup(t, b, 2, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, time.Second); close(done) }()
	var ids []string
	for _, img := range []string{"r/a", "r/b", "r/c", "r/d", "r/e"} {
		sc, created, err := q.Submit(ctx, scans.Request{Image: img})
		if err != nil || !created {
			t.Fatal(err)
		}
		ids = append(ids, sc.ID)
	}
	<-b.started
	<-b.started
	select {
	case id := <-b.started:
		t.Fatalf("a third scan (%s) started with concurrency 2", id)
	case <-time.After(200 * time.Millisecond):
	}
	close(b.release)
	for _, id := range ids {
		waitStatus(t, st, id, scans.Done)
	}
	if m := b.maxSeen.Load(); m != 2 {
		t.Fatalf("max concurrent scans %d, want 2", m)
	}
	cancel()
	<-done
}

func TestSubmitValidatesAndDedupes(t *testing.T) {
	q, _, _ := setup(t, newBlocking(), 1, time.Minute)
	ctx := context.Background()
	for _, bad := range []scans.Request{{Image: ""}, {Image: "UPPER/case"}, {Image: "r/a", Platform: "linux"}, {Image: "r/a", Platform: "linux//x"}} {
		if _, _, err := q.Submit(ctx, bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("submit %+v: err=%v, want invalid", bad, err)
		}
	}
	a, _, _ := q.Submit(ctx, scans.Request{Image: "r/a"})
	b, created, _ := q.Submit(ctx, scans.Request{Image: "index.docker.io/r/a:latest"})
	if created || b.ID != a.ID {
		t.Fatal("the same image by another spelling was not deduplicated")
	}
	d := "r/a@sha256:" + strings.Repeat("b", 64)
	c, _, _ := q.Submit(ctx, scans.Request{Image: d})
	if c.Digest != "sha256:"+strings.Repeat("b", 64) {
		t.Fatalf("digest reference: scan digest %q", c.Digest)
	}
	e, created, _ := q.Submit(ctx, scans.Request{Image: "other/name@sha256:" + strings.Repeat("b", 64)})
	if created || e.ID != c.ID {
		t.Fatal("the same digest under another name was not deduplicated")
	}
}

func TestCancelRunningAndTimeoutAndPanic(t *testing.T) {
	b := newBlocking()
	b.panicOn = "r/panic"
	q, st, rec := setup(t, b, 3, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx, time.Second)
	slow, _, _ := q.Submit(ctx, scans.Request{Image: "r/slow"})
	<-b.started
	q.o.Timeout = time.Minute // the next scans get a long deadline
	victim, _, _ := q.Submit(ctx, scans.Request{Image: "r/victim"})
	<-b.started
	if _, err := q.Cancel(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	got := waitStatus(t, st, victim.ID, scans.Cancelled)
	if got.Error == "" {
		t.Fatal("cancelled scan has no reason")
	}
	got = waitStatus(t, st, slow.ID, scans.Failed)
	if !strings.Contains(got.Error, "timed out") {
		t.Fatalf("timed-out scan error %q", got.Error)
	}
	p, _, _ := q.Submit(ctx, scans.Request{Image: "r/panic"})
	got = waitStatus(t, st, p.ID, scans.Failed)
	if !strings.Contains(got.Error, "panicked") {
		t.Fatalf("panicking scan error %q", got.Error)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var sawAnalyzing bool
	for _, e := range rec.events {
		if e.Scan != nil && e.Scan.ID == victim.ID && e.Scan.Status == scans.Analyzing {
			sawAnalyzing = true
		}
	}
	if !sawAnalyzing {
		t.Fatal("no analyzing event was published")
	}
}

func TestShutdownRequeuesRunningScans(t *testing.T) {
	b := newBlocking()
	q, st, _ := setup(t, b, 1, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, 100*time.Millisecond); close(done) }()
	sc, _, _ := q.Submit(ctx, scans.Request{Image: "r/a"})
	<-b.started
	cancel()
	<-done
	got, _ := st.Get(context.Background(), sc.ID)
	if got.Status != scans.Queued || got.Attempts != 1 {
		t.Fatalf("after shutdown: %+v, want queued with 1 attempt", got)
	}
	// The next daemon picks it up and finishes it once.
	close(b.release)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go q.Run(ctx2, time.Second)
	got = waitStatus(t, st, sc.ID, scans.Done)
	if got.Attempts != 2 || b.finished.Load() != 1 {
		t.Fatalf("resumed scan: attempts %d, finished %d times", got.Attempts, b.finished.Load())
	}
}

// authScanner records the credentials each scan was given.
type authScanner struct {
	mu   sync.Mutex
	seen map[string]*scans.RegistryAuth
}

func (a *authScanner) Scan(ctx context.Context, sc scans.Scan, progress func(scans.Status)) (*report.Report, error) {
	a.mu.Lock()
	a.seen[sc.ID] = sc.Auth
	a.mu.Unlock()
	return &report.Report{Image: sc.Image, Digest: "sha256:" + strings.Repeat("b", 64)}, nil
}

// Registry credentials reach the scanner and are never stored; a scan
// that carried some and outlived its daemon fails rather than pull
// without them; a scan with credentials is not merged with one without.
func TestRegistryAuthInMemoryOnly(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	as := &authScanner{seen: map[string]*scans.RegistryAuth{}}
	q := New(Options{Store: st, Scanner: as, Concurrency: 1, Timeout: time.Minute, MaxAttempts: 3})
	img := "reg.example:5000/app@sha256:" + strings.Repeat("c", 64)
	secret := "Basic cm9ib3Q6czNjcjN0LXBhc3N3b3Jk"
	auth := &scans.RegistryAuth{Host: "reg.example:5000", Authorization: secret}

	anon, _, err := q.Submit(context.Background(), scans.Request{Image: img})
	if err != nil {
		t.Fatal(err)
	}
	withAuth, created, err := q.Submit(context.Background(), scans.Request{Image: img, Trigger: "harbor", Auth: auth})
	if err != nil || !created || withAuth.ID == anon.ID || !withAuth.InMemoryAuth {
		t.Fatalf("a scan with credentials: %+v created %v err %v (anonymous one %s)", withAuth, created, err, anon.ID)
	}
	// A second request with fresher credentials joins it and replaces them.
	fresh := &scans.RegistryAuth{Host: "reg.example:5000", Authorization: "Bearer fresh-token"}
	again, created, err := q.Submit(context.Background(), scans.Request{Image: img, Trigger: "harbor", Auth: fresh})
	if err != nil || created || again.ID != withAuth.ID {
		t.Fatalf("the same request again: %+v created %v err %v", again, created, err)
	}
	// A scan accepted by the daemon before a restart: its credentials
	// are gone.
	lost, _, err := q.Submit(context.Background(), scans.Request{Image: img, Platform: "linux/arm64", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	q.forgetAuth(lost.ID)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, time.Second); close(done) }()
	waitStatus(t, st, anon.ID, scans.Done)
	waitStatus(t, st, withAuth.ID, scans.Done)
	failed := waitStatus(t, st, lost.ID, scans.Failed)
	cancel()
	<-done
	if !strings.Contains(failed.Error, "held in memory only") {
		t.Errorf("the scan whose credentials were lost: %q", failed.Error)
	}
	as.mu.Lock()
	if as.seen[anon.ID] != nil || as.seen[withAuth.ID] == nil || *as.seen[withAuth.ID] != *fresh {
		t.Errorf("credentials the scanner got: anonymous %v, with auth %v", as.seen[anon.ID], as.seen[withAuth.ID])
	}
	if _, ran := as.seen[lost.ID]; ran {
		t.Error("the scan without its credentials ran")
	}
	as.mu.Unlock()
	if len(q.auth) != 0 {
		t.Errorf("credentials kept after the scans ended: %d", len(q.auth))
	}
	st.Close()
	for _, secret := range []string{secret, "cm9ib3Q6czNjcjN0", "fresh-token"} {
		data, err := os.ReadFile(filepath.Join(dir, "db"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the store holds the credential %q", secret)
		}
	}
	if s := fmt.Sprintf("%v %+v %#v", *auth, *auth, *auth); strings.Contains(s, "cm9ib3Q") {
		t.Errorf("formatting shows the credential: %s", s)
	}
}
