package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
)

// TargetPath is where a sandbox shows the image: read-only, nosuid, nodev,
// noexec, with the image's own owners.
const TargetPath = "/target"

// Paths inside a sandbox.
const (
	pluginPath = "/plugin"  // the program, bound read-only from the host
	targetPath = TargetPath // the image
	sockPath   = "/sock"    // go-plugin's socket dir, bound read-write

	// The tmpfs on a socket dir: room for go-plugin's socket and no more.
	sockTmpfsBytes  = 64 << 10
	sockTmpfsInodes = 16
)

// limitPoll is how often a running sandbox's limit counters are read.
const limitPoll = 100 * time.Millisecond

// spec is one sandbox's program and inputs.
type spec struct {
	binary  string     // host path of a static executable
	args    []string   // after argv[0]
	env     []string   // the whole environment
	layers  []string   // image layer dirs, top first; may be empty
	files   []*os.File // read-only files passed as descriptors 3, 4, ...
	sockDir string     // host dir bound at /sock, or ""
	lim     limits
	ctx     context.Context // its end kills the sandbox; may be nil
	ctxFrom time.Time       // when ctx was given, to put its deadline in words
}

// sandbox is one running container. supervise owns its end: it waits for
// the init, kills on a breached limit, and tears everything down.
type sandbox struct {
	m   *Manager
	id  string
	dir string // m.boxDir/id: rootfs and mount points
	sp  spec

	p           *libcontainer.Process
	pid         int
	sockMounted bool // the tmpfs on sp.sockDir
	cgPaths     map[string]string
	peak        atomic.Uint64 // the cgroup's peak memory, read at teardown
	requested   time.Time     // when start was called
	started     time.Time     // when the program was started

	// stdout and stderr are the read ends of the program's output pipes;
	// their owner (Runner or test) closes them.
	stdout, stderr *os.File

	mu     sync.Mutex
	c      *libcontainer.Container
	reason *ExitError // why we killed it, first reason wins
	memory int64      // the limits in force (LimitResources lowers them)
	pids   int64

	done chan struct{}
	err  error // set before done is closed
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return idPrefix + hex.EncodeToString(b)
}

// start sets up and starts a sandbox. On error nothing is left behind.
func (m *Manager) start(ctx context.Context, sp spec) (_ *sandbox, retErr error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := checkInputs(sp); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &sandbox{m: m, id: newID(), sp: sp, done: make(chan struct{}), requested: time.Now(),
		memory: sp.lim.memory, pids: sp.lim.pids}
	s.dir = filepath.Join(m.boxDir, s.id)
	if err := m.track(s); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			retErr = fmt.Errorf("sandbox: starting %s: %w", filepath.Base(sp.binary), retErr)
			if err := s.teardown(true); err != nil {
				retErr = errors.Join(retErr, err)
			}
			closeFiles(s.stdout, s.stderr)
			m.untrack(s)
		}
	}()

	rootfs, err := s.makeRootfs()
	if err != nil {
		return nil, err
	}
	target, err := s.mountTarget()
	if err != nil {
		return nil, err
	}
	if sp.sockDir != "" {
		// The plugin creates its socket there as the sandbox's root, in
		// a tmpfs of a few pages and inodes: the one writable place it
		// shares with the host holds a socket, not the host's disk.
		opts := fmt.Sprintf("size=%d,nr_inodes=%d,mode=0700,uid=%d,gid=%d", sockTmpfsBytes, sockTmpfsInodes, m.cfg.UIDStart, m.cfg.GIDStart)
		if err := unix.Mount("tmpfs", sp.sockDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
			return nil, fmt.Errorf("mounting the socket dir's tmpfs: %w", err)
		}
		s.sockMounted = true
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := s.config(rootfs, target)

	var wOut, wErr *os.File
	if s.stdout, wOut, err = os.Pipe(); err != nil {
		return nil, err
	}
	if s.stderr, wErr, err = os.Pipe(); err != nil {
		closeFiles(wOut)
		return nil, err
	}
	p := &libcontainer.Process{
		Args:   append([]string{pluginPath}, sp.args...),
		Env:    sp.env,
		UID:    0,
		GID:    0,
		Cwd:    "/",
		Stdout: wOut,
		Stderr: wErr,
		Init:   true,
		// Layer blobs, open read-only: the plugin reads them through
		// these descriptors and can open nothing of the host.
		ExtraFiles: sp.files,
	}
	// If ctx ends while libcontainer starts the init (a hung mount can
	// hold it), kill what runs in the sandbox's cgroup: that fails Run
	// instead of blocking the starter thread, and every start behind it.
	stopWatch := context.AfterFunc(ctx, func() { killCgroupProcs(s.id) })
	err = m.onStarter(ctx, func() error {
		c, err := libcontainer.Create(m.runDir, s.id, cfg)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.c = c
		s.mu.Unlock()
		if err := c.Run(p); err != nil {
			m.reapStrays()
			time.AfterFunc(250*time.Millisecond, func() {
				_ = m.onStarterWait(func() error { m.reapStrays(); return nil })
			})
			return err
		}
		pid, err := p.Pid()
		s.mu.Lock()
		s.p, s.pid = p, pid
		s.mu.Unlock()
		return err
	})
	// The sandbox holds the write ends now; ours would keep the readers
	// from ever seeing EOF.
	closeFiles(wOut, wErr)
	if !stopWatch() {
		// The watch killed it: say why first.
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}
	if err != nil {
		return nil, err
	}
	s.started = time.Now()
	st, err := s.container().State()
	if err != nil {
		return nil, err
	}
	s.cgPaths = st.CgroupPaths
	go s.supervise()
	// Killed (Close, Kill) while starting: the signal found no process.
	s.mu.Lock()
	killed := s.reason != nil
	s.mu.Unlock()
	if killed {
		_ = s.container().Signal(unix.SIGKILL)
	}
	return s, nil
}

// reapStrays reaps runc init's intermediate processes that libcontainer
// leaves as zombie children of assayd when a start fails midway: zombies
// whose parent is this process, still named "runc:[..." (no program was
// executed), and no live sandbox's init. It runs on the starter thread
// after a failed Run, when no other start is in progress, so it takes
// nothing a start or a supervisor will wait for; and once more a little
// later, for processes that die after Run gave up on them.
func (m *Manager) reapStrays() {
	me := strconv.Itoa(os.Getpid())
	live := m.livePids()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || live[pid] {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		f := map[string]string{}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				f[k] = strings.TrimSpace(v)
			}
		}
		if !strings.HasPrefix(f["State"], "Z") || f["PPid"] != me || !strings.HasPrefix(f["Name"], "runc:[") {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

func checkInputs(sp spec) error {
	if !filepath.IsAbs(sp.binary) {
		return fmt.Errorf("program path %q is not absolute", sp.binary)
	}
	st, err := os.Stat(sp.binary)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", sp.binary)
	}
	for _, l := range sp.layers {
		if !filepath.IsAbs(l) {
			return fmt.Errorf("layer path %q is not absolute", l)
		}
		st, err := os.Stat(l)
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("layer %s is not a directory", l)
		}
	}
	for _, f := range sp.files {
		// A descriptor open for writing would let the plugin change a
		// host file: only read-only ones go in.
		fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			return fmt.Errorf("file %s: %w", f.Name(), err)
		}
		if fl&unix.O_ACCMODE != unix.O_RDONLY {
			return fmt.Errorf("file %s is not open read-only", f.Name())
		}
	}
	return nil
}

func (s *sandbox) container() *libcontainer.Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// makeRootfs creates the sandbox's root: empty mount points and nothing
// else. It is mounted read-only in the sandbox.
func (s *sandbox) makeRootfs() (string, error) {
	// 0710, group the sandbox's root: its init traverses to the root
	// filesystem as that group; no other user of the host reaches the
	// image's files mounted below (target, l/N), whatever their modes.
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chown(s.dir, 0, int(s.m.cfg.GIDStart)); err != nil {
		return "", err
	}
	if err := os.Chmod(s.dir, 0o710); err != nil {
		return "", err
	}
	rootfs := filepath.Join(s.dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return "", err
	}
	for _, d := range []string{"proc", "dev", "tmp", targetPath, sockPath} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			return "", err
		}
	}
	f, err := os.OpenFile(filepath.Join(rootfs, pluginPath), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	return rootfs, f.Close()
}

// mountTarget builds the image view on the host, below s.dir: each layer
// id-mapped through the sandboxes' user namespace, then one read-only
// overlay of them (overlayfs itself cannot be id-mapped). A single layer
// is used directly (overlayfs wants two lower dirs without an upper one).
// It returns "" when there are no layers: /target stays an empty dir.
func (s *sandbox) mountTarget() (string, error) {
	layers := s.sp.layers
	if len(layers) == 0 {
		return "", nil
	}
	userns := int(s.m.userns.Fd())
	target := filepath.Join(s.dir, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		return "", err
	}
	if len(layers) == 1 {
		return target, idmapMount(layers[0], target, userns)
	}
	lowers := make([]string, len(layers))
	for i, l := range layers {
		lowers[i] = filepath.Join(s.dir, "l", strconv.Itoa(i))
		if err := os.MkdirAll(lowers[i], 0o755); err != nil {
			return "", err
		}
		if err := idmapMount(l, lowers[i], userns); err != nil {
			return "", err
		}
	}
	return target, overlayMount(lowers, target)
}

// config is the container: every namespace, the sandboxes' id mapping, no
// capabilities, no new privileges, seccomp, cgroup limits, a read-only
// root holding the program and its mounts only.
func (s *sandbox) config(rootfs, target string) *configs.Config {
	const noexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	cfg := s.m.cfg
	l := s.sp.lim
	mounts := []*configs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: noexec},
		{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_STRICTATIME, Data: "mode=755,size=64k"},
		{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: noexec, Data: fmt.Sprintf("mode=1777,size=%d", l.tmpfsBytes)},
		{Source: s.sp.binary, Destination: pluginPath, Device: "bind", Flags: unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV},
	}
	if target != "" {
		mounts = append(mounts, &configs.Mount{Source: target, Destination: targetPath, Device: "bind", Flags: unix.MS_BIND | unix.MS_RDONLY | noexec})
	}
	if s.sp.sockDir != "" {
		mounts = append(mounts, &configs.Mount{Source: s.sp.sockDir, Destination: sockPath, Device: "bind", Flags: unix.MS_BIND | noexec})
	}
	spec := specconv.Example()
	oomScore := 1000 // the host's OOM killer takes a sandbox before assayd
	umask := uint32(0o077)
	c := &configs.Config{
		Rootfs:          rootfs,
		Readonlyfs:      true,
		Mounts:          mounts,
		Devices:         specconv.AllowedDevices,
		MaskPaths:       spec.Linux.MaskedPaths,
		ReadonlyPaths:   spec.Linux.ReadonlyPaths,
		Capabilities:    &configs.Capabilities{}, // empty sets: none at all
		NoNewPrivileges: true,
		Namespaces: configs.Namespaces{
			{Type: configs.NEWNS}, {Type: configs.NEWUTS}, {Type: configs.NEWIPC}, {Type: configs.NEWPID},
			{Type: configs.NEWUSER}, {Type: configs.NEWNET}, {Type: configs.NEWCGROUP},
		},
		Networks:    []*configs.Network{{Type: "loopback"}},
		Hostname:    "sandbox",
		UIDMappings: []configs.IDMap{{ContainerID: 0, HostID: int64(cfg.UIDStart), Size: int64(cfg.UIDCount)}},
		GIDMappings: []configs.IDMap{{ContainerID: 0, HostID: int64(cfg.GIDStart), Size: int64(cfg.GIDCount)}},
		Cgroups:     cgroupConfig(s.id, l, s.m.swapAccounting),
		Rlimits: []configs.Rlimit{
			{Type: unix.RLIMIT_NOFILE, Hard: 4096, Soft: 4096},
			{Type: unix.RLIMIT_CORE, Hard: 0, Soft: 0},
		},
		OomScoreAdj: &oomScore,
		Umask:       &umask,
		// If assayd dies, so do its sandboxes. This covers runc init's
		// first stage; Init sets it again in the last (see there).
		ParentDeathSignal: int(unix.SIGKILL),
	}
	c.Seccomp = s.m.seccomp
	return c
}

// supervise waits for the sandbox to end, enforces its limits meanwhile,
// and tears it down.
func (s *sandbox) supervise() {
	defer s.m.untrack(s)
	exited := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := s.p.Wait()
		exited <- st
	}()
	tick := time.NewTicker(limitPoll)
	defer tick.Stop()
	var deadline <-chan time.Time
	if t := s.sp.lim.timeout; t > 0 {
		timer := time.NewTimer(t - time.Since(s.started))
		defer timer.Stop()
		deadline = timer.C
	}
	var ctxDone <-chan struct{}
	if s.sp.ctx != nil {
		ctxDone = s.sp.ctx.Done()
	}
	var st *os.ProcessState
wait:
	for {
		select {
		case st = <-exited:
			break wait
		case <-tick.C:
			if r := s.breach(); r != nil {
				s.killWith(r)
			}
		case <-deadline:
			s.killWith(&ExitError{Kind: DeadlineExceeded, Limit: s.sp.lim.timeout.String()})
			deadline = nil
		case <-ctxDone:
			r := &ExitError{Kind: ctxErrKind(s.sp.ctx.Err())}
			if d, ok := s.sp.ctx.Deadline(); ok && r.Kind == DeadlineExceeded {
				from := s.sp.ctxFrom
				if from.IsZero() {
					from = s.requested
				}
				r.Limit = d.Sub(from).Round(100 * time.Millisecond).String()
			}
			s.killWith(r)
			ctxDone = nil
		}
	}
	exitErr := s.classify(st)
	tdErr := s.teardown(false)
	if exitErr != nil {
		s.err = errors.Join(exitErr, tdErr)
	} else {
		s.err = tdErr
	}
	close(s.done)
}

// breach reports a breached cgroup limit, from the kernel's counters.
func (s *sandbox) breach() *ExitError {
	oom, pidsMax := limitCounters(s.cgPaths)
	s.mu.Lock()
	memory, pids := s.memory, s.pids
	s.mu.Unlock()
	switch {
	case oom > 0:
		return &ExitError{Kind: OutOfMemory, Limit: formatBytes(memory)}
	case pidsMax > 0:
		return &ExitError{Kind: TooManyProcesses, Limit: strconv.FormatInt(pids, 10)}
	}
	return nil
}

// lower lowers the running sandbox's memory and pids limits; a value that
// is not positive or not lower than the limit in force is ignored.
func (s *sandbox) lower(memory, pids int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return errors.New("sandbox: not running")
	}
	cfg := s.c.Config()
	cg := *cfg.Cgroups
	res := *cg.Resources
	changed := false
	if memory > 0 && memory < s.memory {
		if memory < 16<<20 {
			memory = 16 << 20
		}
		res.Memory = memory
		if res.MemorySwap != 0 {
			res.MemorySwap = memory
		}
		changed = true
	}
	if pids > 0 && pids < s.pids {
		if pids < 8 {
			pids = 8
		}
		res.PidsLimit = &pids
		changed = true
	}
	if !changed {
		return nil
	}
	cg.Resources = &res
	cfg.Cgroups = &cg
	if err := s.c.Set(cfg); err != nil {
		return fmt.Errorf("sandbox: lowering the limits of %s: %w", s.id, err)
	}
	s.memory, s.pids = res.Memory, *res.PidsLimit
	return nil
}

// classify turns the init's end into Wait's error: the reason we killed it
// for, else a limit the counters show was breached, else its exit status.
// A breach counts even if the program then exited 0: its work was cut.
func (s *sandbox) classify(st *os.ProcessState) error {
	s.mu.Lock()
	r := s.reason
	s.mu.Unlock()
	if r == nil {
		r = s.breach() // before teardown removes the counters
	}
	var ws syscall.WaitStatus
	if st != nil {
		ws, _ = st.Sys().(syscall.WaitStatus)
	}
	if r != nil {
		if st != nil && ws.Signaled() {
			r.Signal = ws.Signal()
		}
		return r
	}
	switch {
	case st == nil:
		return errors.New("sandbox: lost the program's exit status")
	case ws.Signaled():
		return &ExitError{Kind: Signaled, Signal: ws.Signal()}
	case ws.ExitStatus() != 0:
		return &ExitError{Kind: Exited, Code: ws.ExitStatus()}
	}
	return nil
}

// killWith records why the sandbox is being killed (the first reason wins)
// and kills it: SIGKILL to its init ends its whole pid namespace.
func (s *sandbox) killWith(r *ExitError) {
	s.mu.Lock()
	if s.reason == nil {
		s.reason = r
	}
	c := s.c
	s.mu.Unlock()
	if c != nil {
		_ = c.Signal(unix.SIGKILL)
	}
}

// kill kills the sandbox and waits for its teardown, or for ctx.
func (s *sandbox) kill(ctx context.Context) error {
	s.killWith(&ExitError{Kind: Killed})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sandbox: waiting for %s to end: %w", s.id, ctx.Err())
	}
}

// wait waits for the sandbox's end and teardown, or for ctx.
func (s *sandbox) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return fmt.Errorf("sandbox: waiting for %s: %w", s.id, ctx.Err())
	}
}

// teardown removes everything of the sandbox: the container (its cgroups
// and libcontainer state), the image mounts, the per-sandbox dir. reap
// kills and reaps a started init first (start's failure path).
func (s *sandbox) teardown(reap bool) error {
	var errs []error
	if c := s.container(); c != nil {
		if reap && s.p != nil {
			_ = c.Signal(unix.SIGKILL)
			_, _ = s.p.Wait()
		}
		s.peak.Store(memoryPeak(s.cgPaths))
		if err := c.Destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := unmountUnder(s.dir); err != nil {
		errs = append(errs, err)
	}
	if s.sockMounted {
		if err := unix.Unmount(s.sp.sockDir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting the socket dir: %w", err))
		}
		s.sockMounted = false
	}
	if err := removeDir(s.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox: cleaning up %s: %w", s.id, err)
	}
	return nil
}

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			_ = f.Close()
		}
	}
}
