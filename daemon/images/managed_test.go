package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// managedIntegration skips unless ASSAY_INTEGRATION=1; then it insists on
// root and on the containerd binary (ASSAY_CONTAINERD, else the one make
// build puts in bin/), whose absolute path it returns.
func managedIntegration(t testing.TB) string {
	t.Helper()
	if os.Getenv("ASSAY_INTEGRATION") != "1" {
		t.Skip("integration test: set ASSAY_INTEGRATION=1 (make test-integration), as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("integration tests need root (containerd)")
	}
	b := os.Getenv("ASSAY_CONTAINERD")
	if b == "" {
		b = "../../bin/containerd"
	}
	b, err := filepath.Abs(b)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(b); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("containerd binary missing at %s (make build, or set ASSAY_CONTAINERD): %v", b, err)
	}
	return b
}

// managedTempDir is a fresh directory under /tmp, short enough for the
// sockets, removed after the test.
func managedTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "assay-m-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type managedTestWriter struct{ t testing.TB }

func (w managedTestWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func managedTestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(managedTestWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// managedStart starts a managed containerd in dir and stops it after the test.
func managedStart(t testing.TB, bin, dir string) *Managed {
	t.Helper()
	m, err := StartManaged(context.Background(), ManagedOptions{Binary: bin, Dir: dir, StartTimeout: 30 * time.Second, Logger: managedTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return m
}

func managedDial(t testing.TB, address string) *client.Client {
	t.Helper()
	c, err := client.New(address, client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("version: %v", err)
	}
	return c
}

// managedStartByHand runs a containerd the way a crashed assayd would have
// left it: no supervision, no parent-death signal. It waits until it serves.
func managedStartByHand(t testing.TB, bin, config, sock, logPath string) *exec.Cmd {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-waited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := client.New(sock, client.WithTimeout(time.Second))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = c.Version(ctx)
			cancel()
			c.Close()
			if err == nil {
				return cmd
			}
		}
		select {
		case <-waited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("containerd %s exited before serving:\n%s", bin, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd %s not serving on %s: %v", bin, sock, err)
		}
	}
}

// managedProcsNaming lists the processes whose command line mentions s.
func managedProcsNaming(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// managedProcState is the state letter of pid ("" when it is gone).
func managedProcState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

func managedReadPID(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func managedEventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestManagedConfig(t *testing.T) {
	cfg := managedConfig("/var/lib/assay/containerd")
	for _, want := range []string{
		"version = 3\n",
		`root = "/var/lib/assay/containerd/root"`,
		`state = "/var/lib/assay/containerd/state"`,
		`address = "/var/lib/assay/containerd/containerd.sock"`,
		`address = "/var/lib/assay/containerd/containerd.sock.ttrpc"`,
		`address = "/var/lib/assay/containerd/debug.sock"`,
		`"io.containerd.grpc.v1.cri",`,
		`"io.containerd.nri.v1.nri",`,
		"[metrics]\n  address = \"\"",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if got := managedTOMLString(`a"b\c`); got != `"a\"b\\c"` {
		t.Errorf("quoted: %s", got)
	}
	for _, p := range managedRequiredPlugins {
		if slices.Contains(managedDisabledPlugins, p) {
			t.Errorf("%s both required and disabled", p)
		}
	}
	if !slices.IsSorted(managedRequiredPlugins) {
		t.Error("managedRequiredPlugins not sorted")
	}
}

func TestManagedLogRotation(t *testing.T) {
	dir := managedTempDir(t)
	m := &Managed{binary: "/x/containerd", logf: filepath.Join(dir, managedLogName)}
	if err := os.WriteFile(m.logf, bytes.Repeat([]byte("x"), managedLogMax+1), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := m.openLog()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err := os.Stat(m.logf + ".1"); err != nil || fi.Size() != managedLogMax+1 {
		t.Errorf("previous log not kept as .1: %v", err)
	}
	if fi, err := os.Stat(m.logf); err != nil || fi.Size() > 1024 {
		t.Errorf("log not restarted: %v", err)
	}
	// Under the limit it appends.
	f, _ = m.openLog()
	f.Close()
	if b, _ := os.ReadFile(m.logf); bytes.Count(b, []byte("=== ")) != 2 {
		t.Errorf("log not appended: %q", b)
	}
}

func TestManagedOptionsInvalid(t *testing.T) {
	ctx := context.Background()
	long := "/tmp/" + strings.Repeat("d", 100)
	for name, o := range map[string]ManagedOptions{
		"no binary":  {Dir: "/tmp/x"},
		"no dir":     {Binary: "/bin/true"},
		"long dir":   {Binary: "/bin/true", Dir: long},
		"not a file": {Binary: "/tmp", Dir: "/tmp/assay-m-invalid"},
	} {
		if m, err := StartManaged(ctx, o); err == nil {
			m.Stop(ctx)
			t.Errorf("%s: started", name)
		}
	}
}

// TestManagedReapChecks runs without containerd: only a process of the
// same binary whose command line names the config is stopped.
func TestManagedReapChecks(t *testing.T) {
	dir := managedTempDir(t)
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	config := filepath.Join(dir, managedConfigName)
	start := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waited := make(chan struct{})
		go func() { cmd.Wait(); close(waited) }()
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-waited
		})
		return cmd
	}
	// "sleep 60; :" keeps the shell from exec-ing sleep.
	ours := start(sh, "-c", "sleep 60; :", "--config", config)
	otherConfig := start(sh, "-c", "sleep 60; :", "--config", config+".other")
	foreign := start("sleep", "60")
	m := &Managed{log: managedTestLogger(t), binary: sh, config: config, pid: filepath.Join(dir, managedPIDName)}
	if err := managedWriteFile(m.pid, []byte(strconv.Itoa(foreign.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	managedEventually(t, 5*time.Second, "children running", func() bool {
		return m.ours(ours.Process.Pid) && !m.ours(otherConfig.Process.Pid)
	})
	if err := m.reapPrevious(); err != nil {
		t.Fatal(err)
	}
	if st := managedProcState(ours.Process.Pid); st != "" && st != "Z" {
		t.Errorf("process of the same binary and config still running (state %s)", st)
	}
	for _, c := range []*exec.Cmd{otherConfig, foreign} {
		if st := managedProcState(c.Process.Pid); st == "" || st == "Z" {
			t.Errorf("%v was killed", c.Args)
		}
	}
}

func TestManagedLifecycle(t *testing.T) {
	bin := managedIntegration(t)
	dir := filepath.Join(managedTempDir(t), "containerd")
	m := managedStart(t, bin, dir)
	c := managedDial(t, m.Address())
	ctx := context.Background()

	if m.Address() != filepath.Join(dir, managedSocketName) {
		t.Errorf("address %s", m.Address())
	}
	pid := m.PID()
	if pid == 0 || managedReadPID(t, filepath.Join(dir, managedPIDName)) != pid {
		t.Fatalf("pid %d, pidfile disagrees", pid)
	}
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := c.Version(ctx)
	if err != nil || v.Version == "" {
		t.Fatalf("version %+v: %v", v, err)
	}
	t.Logf("containerd %s, pid %d", v.Version, pid)

	resp, err := c.IntrospectionService().Plugins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]bool{}
	for _, p := range resp.Plugins {
		loaded[p.Type+"."+p.ID] = p.InitErr == nil
	}
	for _, id := range managedDisabledPlugins {
		if loaded[id] {
			t.Errorf("%s is loaded", id)
		}
	}
	for _, id := range append([]string{"io.containerd.server.v1.grpc", "io.containerd.server.v1.ttrpc", "io.containerd.server.v1.debug"}, managedRequiredPlugins...) {
		if !loaded[id] {
			t.Errorf("%s is not loaded", id)
		}
	}

	// The child's whole environment is PATH; it leads its own process group.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if vars := strings.Split(strings.TrimRight(string(env), "\x00"), "\x00"); len(vars) != 1 || !strings.HasPrefix(vars[0], "PATH=") {
		t.Errorf("child environment %q", vars)
	}
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("child process group %d (%v), want its own", pgid, err)
	}
	// pprof on the debug socket.
	if _, err := os.Stat(filepath.Join(dir, managedDebugName)); err != nil {
		t.Errorf("debug socket: %v", err)
	}

	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d still exists after Stop: %v (state %q)", pid, err, managedProcState(pid))
	}
	if _, err := os.Stat(filepath.Join(dir, managedPIDName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile after Stop: %v", err)
	}
	if left := managedProcsNaming(dir); len(left) != 0 {
		t.Errorf("processes naming %s after Stop: %v", dir, left)
	}
	if m.PID() != 0 {
		t.Errorf("PID after Stop: %d", m.PID())
	}
	if err := m.WaitReady(ctx); err == nil {
		t.Error("WaitReady after Stop succeeded")
	}
	if err := m.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestManagedRestartsKilledChild(t *testing.T) {
	bin := managedIntegration(t)
	dir := filepath.Join(managedTempDir(t), "containerd")
	m := managedStart(t, bin, dir)
	c := managedDial(t, m.Address())

	first := m.PID()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	managedEventually(t, 30*time.Second, "no restart", func() bool { return m.Restarts() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	second := m.PID()
	if second == 0 || second == first {
		t.Fatalf("pid after restart %d (was %d)", second, first)
	}
	if got := managedReadPID(t, filepath.Join(dir, managedPIDName)); got != second {
		t.Errorf("pidfile %d, child %d", got, second)
	}
	// The client made before the kill reconnects.
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("version after restart: %v", err)
	}
	if st := managedProcState(first); st != "" {
		t.Errorf("killed child %d left as %q", first, st)
	}
	log, _ := os.ReadFile(filepath.Join(dir, managedLogName))
	if n := bytes.Count(log, []byte("=== ")); n != 2 {
		t.Errorf("containerd.log has %d start markers, want 2", n)
	}
}

func TestManagedReapsPreviousChild(t *testing.T) {
	bin := managedIntegration(t)
	dir := filepath.Join(managedTempDir(t), "containerd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, managedConfigName)
	if err := managedWriteFile(config, []byte(managedConfig(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	old := managedStartByHand(t, bin, config, filepath.Join(dir, managedSocketName), filepath.Join(dir, managedLogName))
	if err := managedWriteFile(filepath.Join(dir, managedPIDName), []byte(strconv.Itoa(old.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	m := managedStart(t, bin, dir)
	if st := managedProcState(old.Process.Pid); st != "" && st != "Z" {
		t.Fatalf("previous containerd %d still running (state %s)", old.Process.Pid, st)
	}
	if m.PID() == old.Process.Pid {
		t.Fatal("the previous containerd was taken for the new child")
	}
	managedDial(t, m.Address())
}

func TestManagedSparesForeignPID(t *testing.T) {
	bin := managedIntegration(t)
	dir := filepath.Join(managedTempDir(t), "containerd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	if err := managedWriteFile(filepath.Join(dir, managedPIDName), []byte(strconv.Itoa(sleep.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	m := managedStart(t, bin, dir)
	if st := managedProcState(sleep.Process.Pid); st == "" || st == "Z" {
		t.Fatalf("foreign process in the pidfile was killed (state %q)", st)
	}
	if m.PID() == sleep.Process.Pid {
		t.Fatal("foreign process taken for the child")
	}
	managedDial(t, m.Address())
}

// TestManagedChildDiesWithParent SIGKILLs a process that started a
// managed containerd (this test binary, re-run as a helper) and expects the
// child to die with it. The helper first retires 50 OS threads, which must
// not kill the child.
func TestManagedChildDiesWithParent(t *testing.T) {
	bin := managedIntegration(t)
	dir := filepath.Join(managedTempDir(t), "containerd")
	cmd := exec.Command(os.Args[0], "-test.run=^TestManagedHelperProcess$")
	cmd.Env = append(os.Environ(), "ASSAY_MANAGED_HELPER_DIR="+dir, "ASSAY_CONTAINERD="+bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := 0
	sc := bufio.NewScanner(out)
	for pid == 0 && sc.Scan() {
		fmt.Sscanf(sc.Text(), "CHILD %d", &pid)
	}
	if pid == 0 {
		t.Fatalf("helper reported no child: %v", sc.Err())
	}
	if st := managedProcState(pid); st == "" || st == "Z" {
		t.Fatalf("child died while its parent lives (state %q)", st)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	t.Cleanup(func() {
		for _, p := range managedProcsNaming(dir) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	managedEventually(t, 5*time.Second, "containerd outlived its parent", func() bool {
		st := managedProcState(pid)
		return st == "" || st == "Z"
	})
	if left := managedProcsNaming(dir); len(left) != 0 {
		t.Errorf("processes naming %s: %v", dir, left)
	}
}

// TestManagedHelperProcess is the parent for TestManagedChildDiesWithParent.
func TestManagedHelperProcess(t *testing.T) {
	dir := os.Getenv("ASSAY_MANAGED_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process of TestManagedChildDiesWithParent")
	}
	m, err := StartManaged(context.Background(), ManagedOptions{Binary: os.Getenv("ASSAY_CONTAINERD"), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// A goroutine that exits locked to its thread takes the thread with it.
	for range 50 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
		}()
		<-done
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Printf("CHILD %d\n", m.PID())
	time.Sleep(time.Minute)
}

// TestManagedImagePath proves the trimmed plugin set still does what
// images.go needs: content, an image record, unpack into overlayfs, a
// read-only view that mounts.
func TestManagedImagePath(t *testing.T) {
	bin := managedIntegration(t)
	base := managedTempDir(t)
	m := managedStart(t, bin, filepath.Join(base, "containerd"))
	c := managedDial(t, m.Address())
	ctx := namespaces.WithNamespace(context.Background(), "assay-test")

	lease, err := c.LeasesService().Create(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer c.LeasesService().Delete(ctx, lease)
	ctx = leases.WithLease(ctx, lease.ID)

	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "etc/hello", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6})
	tw.Write([]byte("hello\n"))
	tw.Close()

	cs := c.ContentStore()
	write := func(mediaType string, b []byte) ocispec.Descriptor {
		desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := content.WriteBlob(ctx, cs, desc.Digest.String(), bytes.NewReader(b), desc); err != nil {
			t.Fatal(err)
		}
		return desc
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	layerDesc := write(ocispec.MediaTypeImageLayer, layer.Bytes())
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDesc.Digest}},
	}
	cfgDesc := write(ocispec.MediaTypeImageConfig, mustJSON(cfg))
	manifest := write(ocispec.MediaTypeImageManifest, mustJSON(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}))
	rec, err := c.ImageService().Create(ctx, images.Image{Name: "test.example/hello:1", Target: manifest})
	if err != nil {
		t.Fatal(err)
	}
	img := client.NewImage(c, rec)
	if err := img.Unpack(ctx, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sn := c.SnapshotService("overlayfs")
	mounts, err := sn.View(ctx, "assay-test-view", identity.ChainID(diffIDs).String())
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(base, "view")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(mounts, target); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(target, "etc/hello"))
	if uerr := mount.UnmountAll(target, 0); uerr != nil {
		t.Error(uerr)
	}
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("read through the view: %q, %v", got, err)
	}
	if err := sn.Remove(ctx, "assay-test-view"); err != nil {
		t.Error(err)
	}
}

// BenchmarkManagedStart reports how long a child takes from exec to
// answering Version: in a fresh directory, and in one that a previous child
// used (the restart case).
func BenchmarkManagedStart(b *testing.B) {
	bin := managedIntegration(b)
	log := slog.New(slog.DiscardHandler)
	run := func(b *testing.B, dir func(i int) string) {
		var serve time.Duration
		for i := 0; i < b.N; i++ {
			d := dir(i)
			b.StartTimer()
			m, err := StartManaged(context.Background(), ManagedOptions{Binary: bin, Dir: d, Logger: log})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			m.mu.Lock()
			serve += m.serveTook
			m.mu.Unlock()
			if err := m.Stop(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(serve.Microseconds())/1e3/float64(b.N), "ms-exec-to-serving/op")
	}
	b.Run("fresh", func(b *testing.B) {
		b.StopTimer()
		base := managedTempDir(b)
		run(b, func(i int) string { return filepath.Join(base, strconv.Itoa(i)) })
	})
	b.Run("existing", func(b *testing.B) {
		b.StopTimer()
		dir := filepath.Join(managedTempDir(b), "containerd")
		run(b, func(int) string { return dir })
	})
}
