package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ggtypes "github.com/google/go-containerregistry/pkg/v1/types"
)

// integration skips unless ASSAY_INTEGRATION=1, and then insists on root.
func integration(t testing.TB) {
	t.Helper()
	if os.Getenv("ASSAY_INTEGRATION") != "1" {
		t.Skip("integration test: set ASSAY_INTEGRATION=1 (make test-integration), as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("integration tests need root (mounts, containerd)")
	}
}

func containerdBinary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("ASSAY_CONTAINERD"); b != "" {
		return b
	}
	b, err := filepath.Abs("../../bin/containerd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("containerd binary missing at %s: run make build", b)
	}
	return b
}

// env is a managed containerd and an Images on it, in a fresh directory.
type env struct {
	dir string
	m   *Managed
	im  *Images
}

func newEnv(t testing.TB, lim Limits) *env {
	t.Helper()
	integration(t)
	// ASSAY_BENCH_DIR puts containerd's root elsewhere (e.g. a tmpfs) to
	// compare where pull time goes.
	base := os.Getenv("ASSAY_BENCH_DIR")
	if base == "" {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "assay-img-")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := StartManaged(ctx, ManagedOptions{Binary: containerdBinary(t), Dir: filepath.Join(dir, "containerd"), StartTimeout: 30 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, m.Address(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, m: m, im: New(c, Options{Namespace: "assay-test", ViewsDir: filepath.Join(dir, "views"), Limits: lim, UnpackPoll: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})}
	t.Cleanup(func() {
		c.Close()
		m.Stop(context.Background())
		mounts, _ := mountsUnder(dir)
		for _, mp := range mounts {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
		os.RemoveAll(dir)
	})
	return e
}

func (e *env) noLeftovers(t testing.TB) {
	t.Helper()
	mounts, views, leases, err := e.im.Leftovers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if mounts+views+leases != 0 {
		t.Fatalf("leftovers: %d mounts, %d views, %d leases", mounts, views, leases)
	}
	entries, _ := os.ReadDir(e.im.o.ViewsDir)
	if len(entries) != 0 {
		t.Fatalf("leftover view directories: %v", entries)
	}
}

// testRegistry is go-containerregistry's registry on loopback; it counts
// blob downloads so tests can tell whether layers were fetched.
type testRegistry struct {
	*httptest.Server
	host     string
	blobGets atomic.Int64
	corrupt  atomic.Value // a blob digest whose bytes are served altered
}

func newRegistry(t testing.TB) *testRegistry {
	r := &testRegistry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") && req.Header.Get("X-Test-Push") == "" {
			r.blobGets.Add(1)
		}
		if d, _ := r.corrupt.Load().(string); d != "" && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/blobs/"+d) {
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			body[len(body)/2] ^= 0xff
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

func (r *testRegistry) push(t testing.TB, repoTag string, img v1.Image) (string, string) {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.String(), d.String()
}

// debianImage loads the shared real Debian 12 image from its OCI archive.
func debianImage(t testing.TB) v1.Image {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("tar", "-xf", "../../../shared/testdata/images/debian-12-minbase.oci.tar", "-C", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("untar the shared Debian image: %v %s", err, out)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type file struct {
	name string
	body string
	size int64 // for large zero-filled files; body ignored when > 0
}

func tarLayer(t testing.TB, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if strings.HasSuffix(f.name, "/") {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: f.name, Mode: 0o755})
			continue
		}
		size := int64(len(f.body))
		if f.size > 0 {
			size = f.size
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: size})
		if f.size > 0 {
			io.CopyN(tw, zeros{}, f.size)
		} else {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func image(t testing.TB, platform string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := v1.ParsePlatform(platform)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The real Debian image comes out as a mounted, read-only view whose
// digest is the registry's; release leaves nothing behind.
func TestAcquireDebianReadOnlyView(t *testing.T) {
	e := newEnv(t, Limits{MaxImageBytes: 1 << 30, MaxLayers: 16, MaxUnpackedBytes: 1 << 30})
	reg := newRegistry(t)
	ref, digest := reg.push(t, "library/debian:12", debianImage(t))
	ctx := context.Background()
	img, err := e.im.Acquire(ctx, "scan1", ref, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != digest || img.Platform != "linux/amd64" || len(img.Layers) != 1 || img.Layers[0].DiffID == "" || img.Layers[0].Size <= 0 {
		t.Fatalf("image: %+v; want digest %s", img, digest)
	}
	data, err := os.ReadFile(filepath.Join(img.Root, "etc/debian_version"))
	if err != nil || !strings.HasPrefix(string(data), "12.") {
		t.Fatalf("debian_version: %q %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(img.Root, "var/lib/dpkg/status")); err != nil {
		t.Fatal(err)
	}
	if len(img.LayerDirs) != 1 {
		t.Fatalf("layer dirs of a one-layer image: %v", img.LayerDirs)
	}
	if _, err := os.Stat(filepath.Join(img.LayerDirs[0], "etc/debian_version")); err != nil {
		t.Fatalf("the layer dir does not hold the layer: %v", err)
	}
	err = os.WriteFile(filepath.Join(img.Root, "etc/hacked"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write into the view: %v, want EROFS", err)
	}
	if err := os.Chmod(filepath.Join(img.Root, "etc/passwd"), 0o777); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("chmod in the view: %v, want EROFS", err)
	}
	if err := img.Release(ctx); err != nil {
		t.Fatal(err)
	}
	e.noLeftovers(t)
	if _, err := os.Stat(img.Root); !os.IsNotExist(err) {
		t.Fatalf("view directory left: %v", err)
	}
	// The image record existed only for the scan.
	if _, err := e.im.c.ImageService().Get(e.im.ctx(ctx), "docker.io/library/debian:12"); err == nil {
		t.Fatal("an unrelated image record exists")
	}
}

// What an upper layer deletes (a whiteout) is not in the view.
func TestWhiteoutHidden(t *testing.T) {
	e := newEnv(t, Limits{})
	reg := newRegistry(t)
	l1 := tarLayer(t, file{name: "data/"}, file{name: "data/deleted", body: "secret"}, file{name: "data/kept", body: "ok"})
	l2 := tarLayer(t, file{name: "data/"}, file{name: "data/.wh.deleted"})
	ref, _ := reg.push(t, "wh/img:1", image(t, "linux/amd64", l1, l2))
	img, err := e.im.Acquire(context.Background(), "wh", ref, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	defer img.Release(context.Background())
	if _, err := os.Stat(filepath.Join(img.Root, "data/kept")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(img.Root, "data/deleted")); !os.IsNotExist(err) {
		t.Fatalf("a whited-out file is visible: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(img.Root, "data/.wh.deleted")); !os.IsNotExist(err) {
		t.Fatalf("the whiteout marker is visible: %v", err)
	}
	if len(img.LayerDirs) != 2 {
		t.Fatalf("layer dirs %v, want 2", img.LayerDirs)
	}
	// Top layer first: it holds the whiteout (a 0/0 character device).
	fi, err := os.Lstat(filepath.Join(img.LayerDirs[0], "data/deleted"))
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("top layer dir %s does not hold the whiteout: %v %v", img.LayerDirs[0], fi, err)
	}
}

// An index with two platforms: the asked platform's manifest is scanned.
func TestIndexPlatformSelection(t *testing.T) {
	e := newEnv(t, Limits{})
	reg := newRegistry(t)
	amd := image(t, "linux/amd64", tarLayer(t, file{name: "arch", body: "amd64"}))
	arm := image(t, "linux/arm64", tarLayer(t, file{name: "arch", body: "arm64"}))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, ggtypes.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	ref, _ := name.ParseReference(reg.host + "/multi/img:1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	armDigest, _ := arm.Digest()
	for _, tc := range []struct{ platform, want, digest string }{{"linux/arm64", "arm64", armDigest.String()}, {"linux/amd64", "amd64", ""}} {
		img, err := e.im.Acquire(context.Background(), "idx-"+tc.want, ref.String(), tc.platform)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(img.Root, "arch"))
		if string(data) != tc.want || img.Platform != tc.platform || img.IndexDigest != idxDigest.String() || len(img.Platforms) != 2 {
			t.Fatalf("%s: content %q, image %+v", tc.platform, data, img)
		}
		if tc.digest != "" && img.Digest != tc.digest {
			t.Fatalf("%s: digest %s, want %s", tc.platform, img.Digest, tc.digest)
		}
		img.Release(context.Background())
	}
	e.noLeftovers(t)
}

// Limits: too large or too many layers are refused before any layer is
// downloaded; a gzip bomb is stopped while unpacking and cleaned up.
func TestLimits(t *testing.T) {
	e := newEnv(t, Limits{MaxImageBytes: 64 << 10, MaxLayers: 2, MaxUnpackedBytes: 64 << 20})
	reg := newRegistry(t)
	ctx := context.Background()

	big := image(t, "linux/amd64", tarLayer(t, file{name: "big", body: strings.Repeat("x", 1) + string(randomBytes(200<<10))}))
	ref, _ := reg.push(t, "limits/big:1", big)
	before := reg.blobGets.Load()
	_, err := e.im.Acquire(ctx, "big", ref, "linux/amd64")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_image_bytes") {
		t.Fatalf("oversized image: %v", err)
	}
	if n := reg.blobGets.Load() - before; n > 1 { // the config blob at most
		t.Fatalf("%d blobs downloaded for an image refused by size", n)
	}

	many := image(t, "linux/amd64", tarLayer(t, file{name: "a", body: "1"}), tarLayer(t, file{name: "b", body: "2"}), tarLayer(t, file{name: "c", body: "3"}))
	ref, _ = reg.push(t, "limits/many:1", many)
	if _, err := e.im.Acquire(ctx, "many", ref, "linux/amd64"); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_layers") {
		t.Fatalf("too many layers: %v", err)
	}

	// 1 GiB of zeros gzips to about 1 MiB: the compressed size passes, the
	// unpacked size must not.
	e.im.o.Limits.MaxImageBytes = 64 << 20
	bomb := image(t, "linux/amd64", gzipBomb(t, 1<<30))
	ref, _ = reg.push(t, "limits/bomb:1", bomb)
	start := time.Now()
	_, err = e.im.Acquire(ctx, "bomb", ref, "linux/amd64")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_unpacked_bytes") {
		t.Fatalf("gzip bomb: %v", err)
	}
	t.Logf("gzip bomb stopped after %s: %v", time.Since(start), err)

	// Empty files cost inodes, not bytes: limits.max_entries counts them
	// (here the whole unpack is faster than the first measurement, so the
	// check after the pull catches it).
	e.im.o.Limits.MaxEntries = 1000
	var empties []file
	for i := range 3000 {
		empties = append(empties, file{name: fmt.Sprintf("e%05d", i)})
	}
	ref, _ = reg.push(t, "limits/empty:1", image(t, "linux/amd64", tarLayer(t, empties...)))
	_, err = e.im.Acquire(ctx, "empty", ref, "linux/amd64")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_entries") {
		t.Fatalf("3000 empty files over limits.max_entries 1000: %v", err)
	}
	e.noLeftovers(t)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	f, _ := os.Open("/dev/urandom")
	io.ReadFull(f, b)
	f.Close()
	return b
}

// gzipBomb is a layer holding one file of n zero bytes.
func gzipBomb(t testing.TB, n int64) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: n})
	io.CopyN(tw, zeros{}, n)
	tw.Close()
	gz.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithCompressedCaching)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A crash leaves a mounted view and a lease; Cleanup removes both.
func TestCleanupAfterCrash(t *testing.T) {
	e := newEnv(t, Limits{})
	reg := newRegistry(t)
	ref, _ := reg.push(t, "crash/img:1", image(t, "linux/amd64", tarLayer(t, file{name: "f", body: "x"})))
	img, err := e.im.Acquire(context.Background(), "crash", ref, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	mounts, views, leases, _ := e.im.Leftovers(context.Background())
	if mounts != 1 || views != 1 || leases != 1 {
		t.Fatalf("while held: %d mounts %d views %d leases, want 1 each", mounts, views, leases)
	}
	_ = img // never released: the "crash"
	n, err := e.im.Cleanup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("cleanup removed %d things, want the mount, view, image record and lease", n)
	}
	e.noLeftovers(t)
}

// registries.config_path: a containerd-style hosts directory sends a
// registry name to a mirror (here the loopback registry, over plain HTTP).
func TestHostsDirMirror(t *testing.T) {
	e := newEnv(t, Limits{})
	reg := newRegistry(t)
	img := image(t, "linux/amd64", tarLayer(t, file{name: "m", body: "mirrored"}))
	reg.push(t, "mirror/img:1", img)
	hosts := t.TempDir()
	os.MkdirAll(filepath.Join(hosts, "registry.invalid:5000"), 0o755)
	toml := "server = \"http://" + reg.host + "\"\n\n[host.\"http://" + reg.host + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
	os.WriteFile(filepath.Join(hosts, "registry.invalid:5000", "hosts.toml"), []byte(toml), 0o644)
	e.im.o.HostsDir = hosts
	got, err := e.im.Acquire(context.Background(), "mirror", "registry.invalid:5000/mirror/img:1", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release(context.Background())
	data, _ := os.ReadFile(filepath.Join(got.Root, "m"))
	d, _ := img.Digest()
	if string(data) != "mirrored" || got.Digest != d.String() {
		t.Fatalf("through the mirror: %q %s", data, got.Digest)
	}
}

// Fetch downloads the layers not skipped while they are read: a pipe per
// layer that needs the blob (the same blob twice: two pipes, one
// download), the bytes are the blob's, WaitLayers vouches for them, and
// a skipped layer is never downloaded.
func TestFetchStreamsLayers(t *testing.T) {
	e := newEnv(t, Limits{MaxImageBytes: 1 << 30, MaxLayers: 16})
	e.im.o.ContentDir = filepath.Join(e.dir, "containerd", "root", "io.containerd.content.v1.content")
	reg := newRegistry(t)
	big := tarLayer(t, file{name: "big", size: 8 << 20})
	cached := tarLayer(t, file{name: "cached", body: "x"})
	ref, _ := reg.push(t, "feed/img:1", image(t, "linux/amd64", big, cached, big))
	bigDigest, _ := big.Digest()
	cachedDigest, _ := cached.Digest()
	ctx := context.Background()
	before := reg.blobGets.Load()
	img, err := e.im.Fetch(ctx, "feed1", ref, "linux/amd64", func(d string) bool { return d == cachedDigest.String() })
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	for range 2 {
		f, err := img.OpenLayer(ctx, bigDigest.String())
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := f.Stat(); st.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("layer opened while downloading is a %v, want a pipe", st.Mode())
		}
		files = append(files, f)
	}
	sums := make([]string, 2)
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			h := sha256.New()
			io.Copy(h, f)
			sums[i] = "sha256:" + hex.EncodeToString(h.Sum(nil))
		}()
	}
	wg.Wait()
	for i, sum := range sums {
		if sum != bigDigest.String() {
			t.Errorf("reader %d got %s, want %s", i, sum, bigDigest)
		}
	}
	if err := img.WaitLayers(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reg.blobGets.Load() - before; got != 2 {
		t.Errorf("%d blob GETs, want 2 (the config and the big layer once)", got)
	}
	// Once every pipe is taken, the stored, verified blob is opened.
	f, err := img.OpenLayer(ctx, bigDigest.String())
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); !st.Mode().IsRegular() {
		t.Errorf("a third open is a %v, want the content store's file", st.Mode())
	}
	f.Close()
	if err := img.Release(ctx); err != nil {
		t.Fatal(err)
	}
	e.noLeftovers(t)

	// Readers that never read, or stop early, do not hold up Release.
	img, err = e.im.Fetch(ctx, "feed2", ref, "linux/amd64", nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err = img.OpenLayer(ctx, bigDigest.String())
	if err != nil {
		t.Fatal(err)
	}
	f.Read(make([]byte, 100))
	f.Close()
	done := make(chan error)
	go func() { done <- img.Release(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Release waits for readers that went away")
	}
	e.noLeftovers(t)
}

// A blob whose bytes are not its digest's is read through the pipe (that
// cannot be helped while streaming) but WaitLayers fails, so that nothing
// read from it is trusted.
func TestFetchCorruptBlobFailsWait(t *testing.T) {
	e := newEnv(t, Limits{MaxImageBytes: 1 << 30, MaxLayers: 16})
	reg := newRegistry(t)
	l := tarLayer(t, file{name: "data", size: 1 << 20})
	ref, _ := reg.push(t, "feed/bad:1", image(t, "linux/amd64", l))
	d, _ := l.Digest()
	reg.corrupt.Store(d.String())
	ctx := context.Background()
	img, err := e.im.Fetch(ctx, "bad1", ref, "linux/amd64", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Release(ctx)
	f, err := img.OpenLayer(ctx, d.String())
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, f)
	f.Close()
	if err := img.WaitLayers(ctx); err == nil || !strings.Contains(err.Error(), d.String()) {
		t.Fatalf("WaitLayers after a corrupt blob: %v, want an error naming %s", err, d)
	}
}
