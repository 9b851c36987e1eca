// Package e2e runs the built binaries (bin/assayd, bin/assay) as processes
// against real registries and talks to them over their real socket. It runs
// only with ASSAY_E2E=1 (make test-e2e), as root.
package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/assayhq/assay/daemon/client"
	"github.com/assayhq/assay/daemon/scans"
)

var binDir string

func TestMain(m *testing.M) {
	if os.Getenv("ASSAY_E2E") != "1" {
		fmt.Println("e2e: skipped; set ASSAY_E2E=1 (make test-e2e) to run the built binaries")
		os.Exit(0)
	}
	binDir = os.Getenv("ASSAY_BIN")
	if binDir == "" {
		binDir, _ = filepath.Abs("../bin")
	}
	for _, b := range []string{"assayd", "assay"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			fmt.Printf("e2e: %s missing in %s: run make build\n", b, binDir)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// testRegistry is go-containerregistry's registry on loopback, with a gate
// that holds manifest requests of repositories under "slow/" until opened:
// that is how tests keep scans running for as long as they need.
type testRegistry struct {
	*httptest.Server
	Host string

	mu       sync.Mutex
	open     chan struct{}
	opened   bool
	inFlight int
	maxIn    int
	gets     map[string]int // manifest GETs per repository
	blobGets int            // blob GETs, the test's own excepted
}

func newRegistry(t testing.TB) *testRegistry {
	r := &testRegistry{open: make(chan struct{}), gets: map[string]int{}}
	inner := registry.New(registry.Logger(nullLogger()))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if repo, ok := blobRepo(req.URL.Path); ok && req.Method == http.MethodGet && strings.HasPrefix(repo, "slowblob/") && req.Header.Get("X-Test-Push") == "" {
			r.hold(req.Context())
		}
		if _, ok := blobRepo(req.URL.Path); ok && req.Method == http.MethodGet && req.Header.Get("X-Test-Push") == "" {
			r.mu.Lock()
			r.blobGets++
			r.mu.Unlock()
		}
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			if repo, ok := manifestRepo(req.URL.Path); ok {
				r.mu.Lock()
				if req.Method == http.MethodGet {
					r.gets[repo]++
				}
				r.mu.Unlock()
				if strings.HasPrefix(repo, "slow/") && req.Header.Get("X-Test-Push") == "" {
					r.hold(req.Context())
				}
			}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { r.Open(); r.Server.Close() })
	r.Host = strings.TrimPrefix(r.Server.URL, "http://")
	return r
}

func nullLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func blobRepo(p string) (string, bool) {
	p = strings.TrimPrefix(p, "/v2/")
	i := strings.LastIndex(p, "/blobs/")
	if i < 0 || strings.Contains(p[i:], "/uploads/") {
		return "", false
	}
	return p[:i], true
}

func manifestRepo(p string) (string, bool) {
	p = strings.TrimPrefix(p, "/v2/")
	i := strings.LastIndex(p, "/manifests/")
	if i < 0 {
		return "", false
	}
	return p[:i], true
}

func (r *testRegistry) hold(ctx context.Context) {
	r.mu.Lock()
	r.inFlight++
	r.maxIn = max(r.maxIn, r.inFlight)
	ch := r.open
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// Open lets held and future slow requests through.
func (r *testRegistry) Open() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.opened {
		close(r.open)
		r.opened = true
	}
}

func (r *testRegistry) stats() (inFlight, maxIn int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight, r.maxIn
}

// blobs returns how many blob GETs the registry served (configs and
// layers), the test's own pushes excepted.
func (r *testRegistry) blobs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets
}

func (r *testRegistry) manifestGets(repo string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[repo]
}

// push writes a random one-layer image to repo:tag and returns ref and digest.
func (r *testRegistry) push(t testing.TB, repoTag string) (string, string) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	// Pushing HEADs manifests: the test's own requests pass the gate.
	if err := remote.Write(ref, img, remote.WithTransport(directTransport{})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.String(), d.String()
}

// pushImage writes img to repo:tag and returns the reference and digest.
func (r *testRegistry) pushImage(t testing.TB, repoTag string, img v1.Image) (string, string) {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(directTransport{})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.String(), d.String()
}

// fileLayer is a layer holding src at dest.
func fileLayer(t testing.TB, src, dest string) v1.Layer {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return tarLayer(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dest, Mode: 0o755, Size: int64(len(data))})
		tw.Write(data)
	})
}

// dirLayer is a layer holding the tree under src at prefix.
func dirLayer(t testing.TB, src, prefix string) v1.Layer {
	t.Helper()
	return tarLayer(t, func(tw *tar.Writer) {
		err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			name := filepath.ToSlash(filepath.Join(prefix, rel))
			if name == "." || name == "" {
				return nil
			}
			switch {
			case fi.IsDir():
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
			case fi.Mode().IsRegular():
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
					return err
				}
				_, err = tw.Write(data)
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// whiteoutLayer deletes path (an OCI whiteout).
func whiteoutLayer(t testing.TB, path string) v1.Layer {
	t.Helper()
	dir, base := filepath.Split(path)
	return tarLayer(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + ".wh." + base, Mode: 0o644})
	})
}

func tarLayer(t testing.TB, fill func(*tar.Writer)) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	fill(tw)
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageWithFile is a linux/amd64 image of one layer holding src at dest.
func imageWithFile(t testing.TB, src, dest string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, fileLayer(t, src, dest))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// loadDebian reads the shared real Debian 12 image from its OCI archive.
func loadDebian(t testing.TB) v1.Image {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", "../../shared/testdata/images/debian-12-minbase.oci.tar", "-C", dir).CombinedOutput(); err != nil {
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

// pushIndex writes an index of one random image per platform and returns
// the reference and each platform's manifest digest.
func (r *testRegistry) pushIndex(t testing.TB, repoTag string, platforms ...string) (string, map[string]string) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	digests := map[string]string{}
	for _, p := range platforms {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		plat, _ := v1.ParsePlatform(p)
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = plat.OS, plat.Architecture
		img, _ = mutate.ConfigFile(img, cf)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
		d, _ := img.Digest()
		digests[p] = d.String()
	}
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithTransport(directTransport{})); err != nil {
		t.Fatal(err)
	}
	return ref.String(), digests
}

// directTransport marks requests so the gate lets the test's own pushes pass.
type directTransport struct{}

func (d directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Test-Push", "1")
	return http.DefaultTransport.RoundTrip(req)
}

// daemonProc is a running bin/assayd.
type daemonProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	Sock   string
	State  string
	Client *client.Client
	log    *syncBuffer
	args   []string
	env    []string
	bin    string
}

type daemonOpts struct {
	state string   // reuse a state dir (restart); "" makes one
	sock  string   // socket path; "" makes one
	args  []string // extra flags
	env   []string // extra environment
	// bin is the assayd binary to run; "" is the one built in bin/.
	bin string
	// defaults leaves the plugins to assayd's defaults (every plugin found
	// next to the binary); otherwise a test that names no plugins.* flag
	// runs without analyzers, as most of these tests are about the daemon.
	defaults bool
}

func startDaemon(t testing.TB, o daemonOpts) *daemonProc {
	t.Helper()
	dir := shortTempDir(t)
	if o.state == "" {
		o.state = filepath.Join(dir, "state")
	}
	if o.sock == "" {
		o.sock = filepath.Join(dir, "assayd.sock")
	}
	args := o.args
	if !o.defaults && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--plugins.") }) {
		args = append(slices.Clone(args), "--plugins.enabled=")
	}
	d := &daemonProc{t: t, Sock: o.sock, State: o.state, log: &syncBuffer{}, args: args, env: o.env, bin: o.bin}
	d.start()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("assayd log:\n%s", d.log.String())
		}
	})
	return d
}

func (d *daemonProc) start() {
	d.t.Helper()
	args := append([]string{"--config", "/dev/null", "--socket.path", d.Sock, "--state_dir", d.State, "--log.level", "debug"}, d.args...)
	bin := d.bin
	if bin == "" {
		bin = filepath.Join(binDir, "assayd")
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = append(daemonEnv(), d.env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.Client = client.New(d.Sock)
	d.waitReady(15 * time.Second)
}

func (d *daemonProc) waitReady(timeout time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.Client.Health(ctx)
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if d.cmd.ProcessState != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.t.Fatalf("assayd did not become healthy within %s; log:\n%s", timeout, d.log.String())
	return 0
}

// kill sends SIGKILL and reaps the process.
func (d *daemonProc) kill() {
	if d.cmd == nil || d.cmd.Process == nil || d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
}

// restart starts a new daemon on the same state and socket.
func (d *daemonProc) restart() time.Duration {
	start := time.Now()
	d.start()
	return time.Since(start)
}

func (d *daemonProc) submit(image string) scans.Scan {
	d.t.Helper()
	sc, _, err := d.Client.Submit(context.Background(), scans.Request{Image: image})
	if err != nil {
		d.t.Fatalf("submit %s: %v", image, err)
	}
	return sc
}

func (d *daemonProc) waitStatus(id string, want scans.Status, timeout time.Duration) scans.Scan {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	var sc scans.Scan
	var err error
	for time.Now().Before(deadline) {
		sc, err = d.Client.Scan(context.Background(), id)
		if err == nil && sc.Status == want {
			return sc
		}
		if err == nil && sc.Status.Terminal() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("scan %s: status %s (err %v, error text %q), want %s", id, sc.Status, err, sc.Error, want)
	return sc
}

// assay runs the CLI against this daemon.
func (d *daemonProc) assay(args ...string) (string, string, int) {
	return runCLI(d.Sock, nil, args...)
}

func runCLI(sock string, cred *syscall.Credential, args ...string) (string, string, int) {
	cmd := exec.Command(filepath.Join(binDir, "assay"), append([]string{"--socket", sock}, args...)...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return out.String(), errb.String(), code
}

// cleanEnv is the environment without ASSAY_* and systemd variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ASSAY_") || strings.HasPrefix(kv, "LISTEN_") || strings.HasPrefix(kv, "NOTIFY_SOCKET") || strings.HasPrefix(kv, "WATCHDOG_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// daemonEnv is the environment of a daemon under test: cleanEnv, and no
// vulnerability data sources unless the test names some
// (--vulndb.sources): the default fetches OSV's public archives, and
// tests send nothing beyond loopback.
func daemonEnv() []string { return append(cleanEnv(), "ASSAY_VULNDB_SOURCES=") }

// shortTempDir keeps socket paths under the 108-byte sun_path limit.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "assay-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() {
		// A SIGKILLed assayd leaves its sandbox state dir bound on itself.
		unmountUnder(dir)
		os.RemoveAll(dir)
	})
	return dir
}

func unmountUnder(dir string) {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var mps []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mps = append(mps, f[4])
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	for _, mp := range mps {
		syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
