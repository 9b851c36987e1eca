package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"

	"github.com/assayhq/assay/daemon/errdefs"
)

// The managed containerd's files, all under ManagedOptions.Dir.
const (
	managedSocketName = "containerd.sock"
	managedTTRPCName  = "containerd.sock.ttrpc"
	managedDebugName  = "debug.sock"
	managedConfigName = "config.toml"
	managedPIDName    = "containerd.pid"
	managedLogName    = "containerd.log"
)

const (
	// managedLogMax: a larger containerd.log is moved to containerd.log.1
	// (replacing the one before) when a child starts.
	managedLogMax = 10 << 20
	// managedSunPathMax is the longest unix socket path the kernel takes.
	managedSunPathMax = 107

	managedStopGrace     = 10 * time.Second
	managedReapGrace     = 5 * time.Second
	managedBackoffMin    = 250 * time.Millisecond
	managedBackoffMax    = 10 * time.Second
	managedHealthyRun    = time.Minute
	managedProbeInterval = 10 * time.Millisecond
	managedProbeTimeout  = 2 * time.Second
	managedStartDefault  = 30 * time.Second
)

// managedDisabledPlugins are containerd v2.4 plugins assayd does not use.
// Each is either a leaf or an optional dependency of what remains: the gRPC
// server takes the metrics plugins if present, the mount manager takes any
// mount handlers, the metadata store needs only one snapshotter.
// TestManagedImagePath checks that an image still unpacks and mounts.
var managedDisabledPlugins = []string{
	// CRI: assayd is no kubelet.
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.grpc.v1.cri",
	"io.containerd.podsandbox.controller.v1.podsandbox",
	// NRI: nothing to adjust, no containers run.
	"io.containerd.nri.v1.nri",
	// Tracing and metrics: nothing collects them.
	"io.containerd.internal.v1.tracing",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.ttrpc.v1.otelttrpc",
	"io.containerd.metrics.v1.grpc-otel",
	"io.containerd.metrics.v1.grpc-prometheus",
	"io.containerd.server.v1.metrics",
	"io.containerd.server.v1.grpc-tcp",
	// Snapshotters other than overlayfs and native, and erofs support.
	"io.containerd.snapshotter.v1.blockfile",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.erofs",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.differ.v1.erofs",
	"io.containerd.mount-handler.v1.erofs",
}

// managedRequiredPlugins must load, or containerd exits at start instead of
// failing later in a pull: the services the image path uses.
var managedRequiredPlugins = []string{
	"io.containerd.grpc.v1.content",
	"io.containerd.grpc.v1.diff",
	"io.containerd.grpc.v1.events",
	"io.containerd.grpc.v1.images",
	"io.containerd.grpc.v1.introspection",
	"io.containerd.grpc.v1.leases",
	"io.containerd.grpc.v1.namespaces",
	"io.containerd.grpc.v1.snapshots",
	"io.containerd.grpc.v1.version",
	"io.containerd.snapshotter.v1.overlayfs",
}

// ManagedOptions configure the containerd child that assayd runs itself.
type ManagedOptions struct {
	// Binary is the containerd binary.
	Binary string
	// Dir is private to this child: root/, state/, tmp/, the sockets,
	// config.toml, containerd.pid and containerd.log.
	Dir string
	// StartTimeout bounds how long a child may take to serve (30s if 0).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Managed is a containerd child process, restarted when it dies, that
// cannot outlive assayd.
type Managed struct {
	o      ManagedOptions
	log    *slog.Logger
	binary string // absolute, symlinks resolved: what /proc/<pid>/exe shows
	dir    string
	config string
	sock   string
	pid    string // pidfile path
	logf   string

	cancel   context.CancelFunc // ends the supervisor's context
	stopOnce sync.Once
	stop     chan struct{} // closed by Stop
	done     chan struct{} // closed when the supervisor has returned

	mu        sync.Mutex
	gen       *managedGen
	restarts  int
	serveTook time.Duration // exec to serving, last start
}

// managedChild is one containerd process.
type managedChild struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	exited  chan struct{} // closed when reaped; state and waitErr are set then
	state   *os.ProcessState
	waitErr error
}

// managedGen is one child's life as seen by WaitReady.
type managedGen struct {
	child   *managedChild
	ready   chan struct{} // closed when the child serves
	readyAt time.Time     // under Managed.mu
	next    chan struct{} // closed when a later child replaces this one
}

// StartManaged writes the generated config, stops a containerd that a
// crashed assayd left running on Dir, starts a child and waits until it
// serves, at most StartTimeout. ctx bounds only the start: the child runs,
// and is restarted when it dies, until Stop.
func StartManaged(ctx context.Context, o ManagedOptions) (*Managed, error) {
	if o.Binary == "" || o.Dir == "" {
		return nil, fmt.Errorf("images: managed containerd needs a binary and a directory: %w", errdefs.ErrInvalid)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = managedStartDefault
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("images: managed containerd dir: %v: %w", err, errdefs.ErrInvalid)
	}
	if strings.ContainsFunc(dir, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("images: managed containerd dir %q has control characters: %w", dir, errdefs.ErrInvalid)
	}
	if n := len(filepath.Join(dir, managedTTRPCName)); n > managedSunPathMax {
		return nil, fmt.Errorf("images: managed containerd dir %s too long for its sockets (%d > %d bytes): %w", dir, n, managedSunPathMax, errdefs.ErrInvalid)
	}
	bin, err := filepath.Abs(o.Binary)
	if err == nil {
		bin, err = filepath.EvalSymlinks(bin)
	}
	if err != nil {
		return nil, fmt.Errorf("images: containerd binary: %v: %w", err, errdefs.ErrInvalid)
	}
	if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("images: containerd binary %s is not an executable file: %w", bin, errdefs.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("images: managed containerd dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("images: managed containerd dir: %w", err)
	}

	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &Managed{
		o:      o,
		log:    log.With("component", "containerd"),
		binary: bin,
		dir:    dir,
		config: filepath.Join(dir, managedConfigName),
		sock:   filepath.Join(dir, managedSocketName),
		pid:    filepath.Join(dir, managedPIDName),
		logf:   filepath.Join(dir, managedLogName),
		cancel: cancel,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	err = managedWriteFile(m.config, []byte(managedConfig(dir)), 0o600)
	if err == nil {
		err = m.reapPrevious()
	}
	if err == nil {
		// A stale socket would answer "connection refused" until the
		// child replaces it; without it readiness is one stat.
		for _, name := range []string{managedSocketName, managedTTRPCName, managedDebugName} {
			if rerr := os.Remove(filepath.Join(dir, name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = fmt.Errorf("images: remove stale socket: %w", rerr)
			}
		}
	}
	if err == nil {
		err = m.startChild(ctx, false)
	}
	if err != nil {
		cancel()
		os.Remove(m.pid)
		return nil, err
	}
	go m.supervise(sctx)
	return m, nil
}

// Address is the containerd gRPC socket.
func (m *Managed) Address() string { return m.sock }

// PID is the running child's process id, 0 while there is none.
func (m *Managed) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen == nil || managedClosed(m.gen.child.exited) {
		return 0
	}
	return m.gen.child.pid
}

// Restarts counts the children started after the first.
func (m *Managed) Restarts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restarts
}

// WaitReady returns when the current child serves: at once if it does, else
// when it or the next one does.
func (m *Managed) WaitReady(ctx context.Context) error {
	for {
		m.mu.Lock()
		g := m.gen
		m.mu.Unlock()
		if managedClosed(m.stop) {
			return fmt.Errorf("images: managed containerd is stopped: %w", errdefs.ErrUnavailable)
		}
		ready, exited := g.ready, g.child.exited
		if managedClosed(exited) {
			ready, exited = nil, nil // dead: wait for the next child
		} else if managedClosed(ready) {
			return nil
		}
		select {
		case <-ready:
		case <-exited:
		case <-g.next:
		case <-m.stop:
		case <-ctx.Done():
			return fmt.Errorf("images: wait for managed containerd: %w", ctx.Err())
		}
	}
}

// Stop ends supervision and the child: SIGTERM, then SIGKILL after 10s or
// when ctx ends. It removes the pidfile.
func (m *Managed) Stop(ctx context.Context) error {
	m.stopOnce.Do(func() {
		close(m.stop)
		m.cancel()
	})
	<-m.done
	m.mu.Lock()
	g := m.gen
	m.mu.Unlock()
	err := m.terminate(ctx, g.child)
	if rerr := os.Remove(m.pid); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("images: remove pidfile: %w", rerr))
	}
	return err
}

// terminate stops c and waits until it is reaped.
func (m *Managed) terminate(ctx context.Context, c *managedChild) error {
	if managedClosed(c.exited) {
		return nil
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		m.log.Warn("signal containerd", "pid", c.pid, "err", err)
	}
	grace := time.NewTimer(managedStopGrace)
	defer grace.Stop()
	select {
	case <-c.exited:
		m.log.Info("containerd stopped", "pid", c.pid)
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	m.log.Warn("containerd did not stop after SIGTERM; killing it", "pid", c.pid)
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		m.log.Warn("kill containerd", "pid", c.pid, "err", err)
	}
	reap := time.NewTimer(managedReapGrace)
	defer reap.Stop()
	select {
	case <-c.exited:
		return nil
	case <-reap.C:
		return fmt.Errorf("images: containerd pid %d did not exit after SIGKILL: %w", c.pid, errdefs.ErrUnavailable)
	}
}

// supervise restarts the child when it exits before Stop.
func (m *Managed) supervise(ctx context.Context) {
	defer close(m.done)
	backoff := managedBackoffMin
	for {
		m.mu.Lock()
		g := m.gen
		m.mu.Unlock()
		select {
		case <-m.stop:
			return
		case <-g.child.exited:
		}
		if managedClosed(m.stop) {
			return
		}
		m.mu.Lock()
		healthy := !g.readyAt.IsZero() && time.Since(g.readyAt) >= managedHealthyRun
		m.mu.Unlock()
		if healthy {
			backoff = managedBackoffMin
		}
		m.log.Error("containerd exited unexpectedly; restarting",
			"pid", g.child.pid, "status", g.child.status(), "ran", time.Since(g.child.started).Round(time.Millisecond), "restart_in", backoff)
		for {
			t := time.NewTimer(backoff)
			select {
			case <-m.stop:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, managedBackoffMax)
			err := m.startChild(ctx, true)
			if err == nil {
				break
			}
			if managedClosed(m.stop) {
				return
			}
			m.log.Error("containerd restart failed", "err", err, "retry_in", backoff)
		}
	}
}

// startChild starts a child, makes it current and waits until it serves;
// a child that does not serve in time is killed.
func (m *Managed) startChild(ctx context.Context, restart bool) error {
	c, err := m.spawn()
	if err != nil {
		return err
	}
	g := &managedGen{child: c, ready: make(chan struct{}), next: make(chan struct{})}
	m.mu.Lock()
	if m.gen != nil {
		close(m.gen.next)
	}
	m.gen = g
	if restart {
		m.restarts++
	}
	m.mu.Unlock()
	m.log.Debug("containerd started", "pid", c.pid)

	wctx, cancel := context.WithTimeout(ctx, m.o.StartTimeout)
	defer cancel()
	if err := m.waitServing(wctx, c); err != nil {
		if !managedClosed(c.exited) {
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		if tail := m.logTail(5); tail != "" {
			err = fmt.Errorf("%w; containerd.log: %s", err, tail)
		}
		return err
	}
	took := time.Since(c.started)
	m.mu.Lock()
	g.readyAt = time.Now()
	m.serveTook = took
	m.mu.Unlock()
	close(g.ready)
	m.log.Info("containerd serving", "pid", c.pid, "address", m.sock, "took", took.Round(time.Millisecond), "restart", restart)
	return nil
}

// spawn starts containerd from a goroutine locked to its OS thread for the
// child's whole life. Pdeathsig fires when the thread that forked the child
// exits, not the process: an unlocked goroutine's thread may be retired by
// the runtime while assayd runs on, which would kill a healthy child. The
// thread ends only after the child has been reaped (a goroutine that exits
// locked takes its thread with it), or with assayd itself.
func (m *Managed) spawn() (*managedChild, error) {
	logf, err := m.openLog()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(m.binary, "--config", m.config)
	cmd.Dir = m.dir
	cmd.Env = managedEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // a terminal's ^C reaches assayd, which stops the child in order
		Pdeathsig: syscall.SIGKILL,
	}
	c := &managedChild{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		c.started = time.Now()
		err := cmd.Start()
		logf.Close()
		if err != nil {
			started <- err
			return
		}
		c.pid = cmd.Process.Pid
		started <- nil
		c.waitErr = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("images: start containerd: %w", err)
	}
	if err := managedWriteFile(m.pid, []byte(strconv.Itoa(c.pid)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		<-c.exited
		return nil, fmt.Errorf("images: write containerd pidfile: %w", err)
	}
	return c, nil
}

// waitServing polls until containerd answers Version on the socket, from
// the child c itself.
func (m *Managed) waitServing(ctx context.Context, c *managedChild) error {
	var last error
	tick := time.NewTicker(managedProbeInterval)
	defer tick.Stop()
	for {
		if _, err := os.Stat(m.sock); err == nil {
			if last = m.probe(ctx, c.pid); last == nil {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("images: containerd exited before serving (%s): %w", c.status(), errdefs.ErrUnavailable)
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("images: containerd not serving after %s: %v: %w", m.o.StartTimeout, last, errdefs.ErrUnavailable)
		case <-tick.C:
		}
	}
}

func (m *Managed) probe(ctx context.Context, pid int) error {
	cl, err := client.New(m.sock, client.WithTimeout(managedProbeTimeout))
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, managedProbeTimeout)
	defer cancel()
	if _, err := cl.Version(pctx); err != nil {
		return err
	}
	// An older containerd still on the socket must not pass for the child.
	if srv, err := cl.IntrospectionService().Server(pctx); err == nil && srv.Pid != 0 && int(srv.Pid) != pid {
		return fmt.Errorf("socket served by pid %d, not by the child %d", srv.Pid, pid)
	}
	return nil
}

// reapPrevious stops a containerd that a previous assayd left running on
// this directory: the one in the pidfile, and any other process of the same
// binary whose command line names this config. Nothing else is signalled.
func (m *Managed) reapPrevious() error {
	pids := map[int]bool{}
	if b, err := os.ReadFile(m.pid); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			pids[pid] = true
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() && m.ours(pid) {
			pids[pid] = true
		}
	}
	var errs []error
	for pid := range pids {
		if err := m.reap(pid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Managed) reap(pid int) error {
	// The pidfd pins the process: a pid reused after the check below is
	// not signalled.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // gone
	}
	defer unix.Close(fd)
	if !m.ours(pid) {
		m.log.Warn("pidfile names a process that is not this containerd; leaving it alone", "pid", pid, "pidfile", m.pid)
		return nil
	}
	m.log.Warn("stopping containerd left running by a previous assayd", "pid", pid)
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return nil
			}
			return fmt.Errorf("images: signal previous containerd %d: %w", pid, err)
		}
		if managedPidfdWait(fd, managedReapGrace) {
			return nil
		}
	}
	return fmt.Errorf("images: previous containerd %d does not exit: %w", pid, errdefs.ErrUnavailable)
}

// ours tells whether pid runs this binary with this config.
func (m *Managed) ours(pid int) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	exe, err := os.Readlink(proc + "/exe")
	if err != nil {
		return false
	}
	// A binary replaced since (an upgrade) shows as "path (deleted)".
	if strings.TrimSuffix(exe, " (deleted)") != m.binary {
		return false
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(cmdline, []byte{0}) {
		if a := string(arg); a == m.config || a == "--config="+m.config {
			return true
		}
	}
	return false
}

// managedPidfdWait reports whether the process exits within d.
func managedPidfdWait(fd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
	}
}

func (m *Managed) openLog() (*os.File, error) {
	if fi, err := os.Stat(m.logf); err == nil && fi.Size() > managedLogMax {
		if err := os.Rename(m.logf, m.logf+".1"); err != nil {
			return nil, fmt.Errorf("images: rotate containerd log: %w", err)
		}
	}
	f, err := os.OpenFile(m.logf, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("images: containerd log: %w", err)
	}
	fmt.Fprintf(f, "=== %s assayd starts %s\n", time.Now().UTC().Format(time.RFC3339Nano), m.binary)
	return f, nil
}

// logTail is the last n lines of containerd.log, for start errors.
func (m *Managed) logTail(n int) string {
	f, err := os.Open(m.logf)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 4096
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func (c *managedChild) status() string {
	if c.state != nil {
		return c.state.String()
	}
	if c.waitErr != nil {
		return c.waitErr.Error()
	}
	return "unknown"
}

// managedEnv is the child's whole environment: PATH, for the helpers
// containerd runs (unpigz). Nothing of systemd's (NOTIFY_SOCKET, LISTEN_*,
// WATCHDOG_*) may reach it, or it would notify and take assayd's sockets.
func managedEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return []string{"PATH=" + path}
}

// managedConfig is the child's config.toml. Version 3 (containerd 2.0 to
// 2.3's format; 2.4 migrates it on load) keeps older 2.x binaries usable.
func managedConfig(dir string) string {
	q := managedTOMLString
	list := func(xs []string) string {
		var b strings.Builder
		b.WriteString("[\n")
		for _, x := range xs {
			fmt.Fprintf(&b, "  %s,\n", q(x))
		}
		b.WriteString("]")
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by assayd at every start of its containerd; edits are lost.
version = 3
root = %s
state = %s
temp = %s
imports = []
disabled_plugins = %s
required_plugins = %s

[grpc]
  address = %s

[ttrpc]
  address = %s

[debug]
  address = %s
  level = "info"

[metrics]
  address = ""

[timeouts]
  # Fail instead of waiting for ever when another containerd holds the database.
  "io.containerd.timeout.bolt.open" = "10s"
`,
		q(filepath.Join(dir, "root")),
		q(filepath.Join(dir, "state")),
		q(filepath.Join(dir, "tmp")),
		list(managedDisabledPlugins),
		list(managedRequiredPlugins),
		q(filepath.Join(dir, managedSocketName)),
		q(filepath.Join(dir, managedTTRPCName)),
		q(filepath.Join(dir, managedDebugName)),
	)
	return b.String()
}

// managedTOMLString quotes s as a TOML basic string; callers reject control
// characters.
func managedTOMLString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func managedWriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func managedClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
