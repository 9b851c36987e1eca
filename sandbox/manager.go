package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
)

// Manager starts sandboxes. One per StateDir; safe for concurrent use.
type Manager struct {
	cfg            Config
	runDir         string // libcontainer state
	boxDir         string // per-sandbox root file systems and mount points
	sockDir        string // base of go-plugin socket dirs (SocketTempDir)
	swapAccounting bool
	selfBound      bool             // StateDir is our private bind mount
	seccomp        *configs.Seccomp // nil with DisableSeccomp

	userns *os.File // a user namespace with the sandboxes' id mapping

	// All sandbox processes are forked by one OS thread that lives as long
	// as the Manager: a child's parent-death signal fires when the thread
	// that forked it exits, not the process, and Go ends threads at will
	// (any goroutine that exits while locked to one).
	starter chan func()

	startMu sync.RWMutex // held shared while using starter; Close stops it
	stopped bool

	mu     sync.Mutex
	closed bool
	live   map[string]*sandbox
	wg     sync.WaitGroup
}

// NewManager prepares cfg.StateDir and returns a Manager. assayd must run as
// root: the sandbox maps a subordinate id range (newuidmap-free), makes
// id-mapped mounts of image layers and creates cgroups, none of which an
// unprivileged process may do here. Run Cleanup(cfg.StateDir) first.
func NewManager(cfg Config) (*Manager, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("sandbox: assayd must run as root")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !cfg.DisableSeccomp && !seccomp.Enabled {
		return nil, errors.New("sandbox: this binary was built without seccomp support: build with cgo and -tags seccomp (libseccomp-dev), or set DisableSeccomp")
	}
	var filter *configs.Seccomp
	if !cfg.DisableSeccomp {
		var err error
		if filter, err = seccompProfile(); err != nil {
			return nil, err
		}
	}
	m := &Manager{
		cfg:            cfg,
		runDir:         filepath.Join(cfg.StateDir, "run"),
		boxDir:         filepath.Join(cfg.StateDir, "sandboxes"),
		sockDir:        filepath.Join(cfg.StateDir, "sock"),
		swapAccounting: v1SwapAccounting(),
		seccomp:        filter,
		starter:        make(chan func()),
		live:           map[string]*sandbox{},
	}
	for _, d := range []string{cfg.StateDir, m.runDir, m.boxDir, m.sockDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	if err := checkTraversable(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	bound, err := privateSelfBind(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	m.selfBound = bound
	go m.starterLoop()
	if err := m.onStarterWait(func() error {
		f, err := newUserns(cfg.UIDStart, cfg.UIDCount, cfg.GIDStart, cfg.GIDCount)
		m.userns = f
		return err
	}); err != nil {
		m.stopStarter()
		if m.selfBound {
			_ = unmount(cfg.StateDir)
		}
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return m, nil
}

// SocketTempDir is where go-plugin should make its socket dirs
// (plugin.UnixSocketConfig.TempDir), so that Cleanup finds them after a
// crash and the sandbox can reach them.
func (m *Manager) SocketTempDir() string { return m.sockDir }

// Close kills the sandboxes still running, waits for their clean-up, and
// releases the Manager. It is for orderly shutdown and tests.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	live := make([]*sandbox, 0, len(m.live))
	for _, s := range m.live {
		live = append(live, s)
	}
	m.mu.Unlock()
	for _, s := range live {
		s.killWith(&ExitError{Kind: Killed})
	}
	m.wg.Wait()
	_ = m.onStarterWait(func() error { m.reapStrays(); return nil })
	m.stopStarter()
	var errs []error
	if m.userns != nil {
		errs = append(errs, m.userns.Close())
	}
	if m.selfBound {
		errs = append(errs, unmount(m.cfg.StateDir))
	}
	return errors.Join(errs...)
}

func (m *Manager) starterLoop() {
	// Never unlocked: the thread ends with the goroutine, after Close.
	runtime.LockOSThread()
	for f := range m.starter {
		f()
	}
}

func (m *Manager) stopStarter() {
	m.startMu.Lock()
	defer m.startMu.Unlock()
	if !m.stopped {
		m.stopped = true
		close(m.starter)
	}
}

var (
	errClosed = errors.New("sandbox: manager closed")
	errNotRun = errors.New("not run")
)

// onStarter runs f on the starter thread, unless ctx ends while f waits
// for its turn.
func (m *Manager) onStarter(ctx context.Context, f func() error) error {
	err := m.submit(ctx.Done(), f)
	if err == errNotRun {
		return ctx.Err()
	}
	return err
}

// onStarterWait runs f on the starter thread, however long it waits.
func (m *Manager) onStarterWait(f func() error) error { return m.submit(nil, f) }

func (m *Manager) submit(cancel <-chan struct{}, f func() error) error {
	m.startMu.RLock()
	defer m.startMu.RUnlock()
	if m.stopped {
		return errClosed
	}
	done := make(chan error, 1)
	select {
	case m.starter <- func() { done <- f() }:
	case <-cancel:
		return errNotRun
	}
	return <-done
}

// newUserns returns a handle on a new user namespace with the sandboxes'
// mapping, for id-mapped mounts, which need one before the sandbox exists.
// A child is cloned into it and stopped by PTRACE_TRACEME at its exec, so
// no program runs; the handle outlives the child. Runs on a locked thread
// (ptrace). The same trick as runc's libcontainer/internal/userns.
func newUserns(uidStart, uidCount, gidStart, gidCount uint32) (*os.File, error) {
	proc, err := os.StartProcess("/proc/self/exe", []string{"assay-sandbox-userns"}, &os.ProcAttr{
		Env: []string{},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(uidStart), Size: int(uidCount)}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(gidStart), Size: int(gidCount)}},
			Ptrace:      true,
			Pdeathsig:   syscall.SIGKILL,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("starting a process in a new user namespace: %w", err)
	}
	defer func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", proc.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening the user namespace: %w", err)
	}
	return f, nil
}

// track registers a running sandbox; it fails after Close.
func (m *Manager) track(s *sandbox) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.live[s.id] = s
	m.wg.Add(1)
	return nil
}

// livePids are the host pids of the running sandboxes' inits.
func (m *Manager) livePids() map[int]bool {
	m.mu.Lock()
	live := make([]*sandbox, 0, len(m.live))
	for _, s := range m.live {
		live = append(live, s)
	}
	m.mu.Unlock()
	pids := map[int]bool{}
	for _, s := range live {
		s.mu.Lock()
		if s.pid > 0 {
			pids[s.pid] = true
		}
		s.mu.Unlock()
	}
	return pids
}

func (m *Manager) untrack(s *sandbox) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live[s.id]; ok {
		delete(m.live, s.id)
		m.wg.Done()
	}
}

// ctxErrKind maps a context's end to a Kind.
func ctxErrKind(err error) Kind {
	if errors.Is(err, context.DeadlineExceeded) {
		return DeadlineExceeded
	}
	return Canceled
}
