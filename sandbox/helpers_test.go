package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The integration tier: real sandboxes, as root, with ASSAY_INTEGRATION=1.
var (
	integration = os.Getenv("ASSAY_INTEGRATION") == "1"
	workDir     string // 0711, holds bin/ and the tests' state dirs
	binDir      string // the testdata programs, built static
)

// programs are the testdata commands TestMain builds.
var programs = []string{"probe", "forkbomb", "memhog", "spin", "idle", "exit0", "plugin"}

func TestMain(m *testing.M) {
	Init() // a sandbox's init is this test binary re-executed
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if integration && os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "assay-sandbox-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o711); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		workDir = dir
		binDir = filepath.Join(dir, "bin")
		if err := buildPrograms(binDir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := warmUp(filepath.Join(dir, "warm-up")); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox warm-up:", err)
			return 1
		}
	}
	return m.Run()
}

func buildPrograms(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	for _, p := range programs {
		args = append(args, "./testdata/"+p)
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building test programs: %v\n%s", err, out)
	}
	return nil
}

// warmUp runs one sandbox so that the process-wide handles libcontainer
// and the cgroup code open once (the cgroup root, /) are open before the
// tests count fds.
func warmUp(stateDir string) error {
	m, err := NewManager(Config{StateDir: stateDir})
	if err != nil {
		return err
	}
	sb, err := m.start(context.Background(), spec{binary: bin("exit0"), lim: m.cfg.tighten(Limits{})})
	if err != nil {
		m.Close()
		return err
	}
	err = sb.wait(context.Background())
	closeFiles(sb.stdout, sb.stderr)
	return errors.Join(err, m.Close(), os.RemoveAll(stateDir))
}

func bin(name string) string { return filepath.Join(binDir, name) }

func needIntegration(t testing.TB) {
	t.Helper()
	if !integration {
		t.Skip("starts real sandboxes: set ASSAY_INTEGRATION=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Skip("starts real sandboxes: needs root")
	}
}

// testConfig is a Config for a test: its own state dir, small limits.
func testConfig(t testing.TB) Config {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return Config{
		StateDir: filepath.Join(workDir, "state-"+name),
		Memory:   128 << 20,
		Pids:     64,
		Timeout:  time.Minute,
	}
}

// newTestManager starts a Manager and, when the test ends, closes it and
// checks that nothing is left of its sandboxes anywhere on the host.
func newTestManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	needIntegration(t)
	before := takeSnapshot(t, cfg.StateDir)
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		after := waitSnapshot(t, cfg.StateDir, before)
		if d := before.diff(after); d != "" {
			t.Errorf("left behind after Close:\n%s", d)
		}
		_ = os.RemoveAll(cfg.StateDir)
	})
	return m
}

// snapshot is what a sandbox could leave behind on the host.
type snapshot struct {
	sandboxProcs []string // processes with a host uid in the sandbox range
	children     int      // our child processes
	fds          int      // our open fds
	mounts       int      // lines of our mountinfo
	stateMounts  []string // mount points below the state dir
	cgroups      []string // our sandbox cgroups, every hierarchy
	stateEntries []string // entries of state/{run,sandboxes,sock}
}

func takeSnapshot(t testing.TB, stateDir string) snapshot {
	t.Helper()
	var s snapshot
	s.sandboxProcs = procsInRange(DefaultUIDStart, DefaultUIDCount)
	s.children = countChildren()
	s.fds = countFDs()
	mi, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	s.mounts = strings.Count(string(mi), "\n")
	if s.stateMounts, err = mountsUnder(stateDir); err != nil {
		t.Fatal(err)
	}
	if s.cgroups, err = ourCgroups(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"run", "sandboxes", "sock"} {
		ents, _ := os.ReadDir(filepath.Join(stateDir, sub))
		for _, e := range ents {
			s.stateEntries = append(s.stateEntries, sub+"/"+e.Name())
		}
	}
	return s
}

// waitSnapshot takes snapshots until one matches want or 3 s pass: the
// kernel finishes some of a sandbox's end (reaping, rmdir) asynchronously.
func waitSnapshot(t testing.TB, stateDir string, want snapshot) snapshot {
	t.Helper()
	var s snapshot
	for range 60 {
		s = takeSnapshot(t, stateDir)
		if want.diff(s) == "" {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func (s snapshot) diff(o snapshot) string {
	var b strings.Builder
	if !slices.Equal(s.sandboxProcs, o.sandboxProcs) {
		fmt.Fprintf(&b, "sandbox processes: %v -> %v\n", s.sandboxProcs, o.sandboxProcs)
	}
	if s.children != o.children {
		fmt.Fprintf(&b, "child processes: %d -> %d\n", s.children, o.children)
		for _, c := range listChildren() {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	if s.fds != o.fds {
		fmt.Fprintf(&b, "open fds: %d -> %d\n", s.fds, o.fds)
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Fprintf(&b, "  fd %s -> %s\n", e.Name(), l)
		}
	}
	if s.mounts != o.mounts {
		fmt.Fprintf(&b, "mounts: %d -> %d\n", s.mounts, o.mounts)
	}
	if !slices.Equal(s.stateMounts, o.stateMounts) {
		fmt.Fprintf(&b, "mounts under the state dir: %v -> %v\n", s.stateMounts, o.stateMounts)
	}
	if !slices.Equal(s.cgroups, o.cgroups) {
		fmt.Fprintf(&b, "cgroups: %v -> %v\n", s.cgroups, o.cgroups)
	}
	if !slices.Equal(s.stateEntries, o.stateEntries) {
		fmt.Fprintf(&b, "state dir entries: %v -> %v\n", s.stateEntries, o.stateEntries)
	}
	return b.String()
}

// assertIdle checks, after a sandbox ended, that the Manager holds
// nothing: no sandbox dirs, state, mounts, cgroups or processes.
func assertIdle(t testing.TB, m *Manager) {
	t.Helper()
	want := snapshot{}
	var s snapshot
	for range 60 {
		s = snapshot{sandboxProcs: procsInRange(m.cfg.UIDStart, m.cfg.UIDCount)}
		s.stateMounts, _ = mountsUnder(m.cfg.StateDir)
		s.cgroups, _ = ourCgroups()
		for _, sub := range []string{"run", "sandboxes"} {
			ents, _ := os.ReadDir(filepath.Join(m.cfg.StateDir, sub))
			for _, e := range ents {
				s.stateEntries = append(s.stateEntries, sub+"/"+e.Name())
			}
		}
		if want.diff(s) == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("left behind by a sandbox:\n%s", want.diff(s))
}

func procsInRange(start, count uint32) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					uid, _ := strconv.ParseUint(f[0], 10, 32)
					if uid >= uint64(start) && uid < uint64(start)+uint64(count) {
						out = append(out, e.Name())
					}
				}
			}
		}
	}
	return out
}

func listChildren() []string {
	var out []string
	me := strconv.Itoa(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		data, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		f := map[string]string{}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				f[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		if f["PPid"] == me {
			out = append(out, fmt.Sprintf("pid %s %s state %s uid %s", e.Name(), f["Name"], f["State"], f["Uid"]))
		}
	}
	return out
}

func countChildren() int {
	n := 0
	me := strconv.Itoa(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == me {
			n++
		}
	}
	return n
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// running is a sandboxed program started by a test, without go-plugin.
type running struct {
	sb     *sandbox
	lines  chan string // stdout, line by line
	mu     sync.Mutex
	stdout []string
	stderr strings.Builder
	copied sync.WaitGroup
}

// startProgram runs a testdata program in a sandbox of m.
func startProgram(t testing.TB, m *Manager, ctx context.Context, name string, args, layers []string, lim Limits, opts ...func(*spec)) *running {
	t.Helper()
	sp := spec{
		binary: bin(name),
		args:   args,
		env:    []string{"PATH=/", "GOTRACEBACK=single"},
		layers: layers,
		lim:    m.cfg.tighten(lim),
		ctx:    ctx,
	}
	for _, o := range opts {
		o(&sp)
	}
	sb, err := m.start(context.Background(), sp)
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	r := &running{sb: sb, lines: make(chan string, 1024)}
	r.copied.Add(2)
	go func() {
		defer r.copied.Done()
		defer close(r.lines)
		sc := bufio.NewScanner(sb.stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.stdout = append(r.stdout, sc.Text())
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		defer r.copied.Done()
		data, _ := io.ReadAll(io.LimitReader(sb.stderr, 1<<20))
		_, _ = io.Copy(io.Discard, sb.stderr)
		r.mu.Lock()
		r.stderr.Write(data)
		r.mu.Unlock()
	}()
	return r
}

// wait waits for the program's end and the sandbox's teardown.
func (r *running) wait(t testing.TB) (stdout []string, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = r.sb.wait(ctx)
	r.copied.Wait()
	closeFiles(r.sb.stdout, r.sb.stderr)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stdout, r.stderr.String(), err
}

// firstLine waits for the program's first stdout line.
func (r *running) firstLine(t testing.TB) string {
	t.Helper()
	select {
	case l, ok := <-r.lines:
		if !ok {
			t.Fatal("the program ended without output")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no output from the program in 30s")
	}
	return ""
}

// hostListener listens on 127.0.0.1 in the host's network namespace and
// counts the connections it accepts.
func hostListener(t testing.TB) (port int, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// makeLayers writes a two-layer image the way containerd's overlayfs
// snapshotter stores it: lower holds root-only secrets and a user's files;
// upper deletes /etc/removed with a whiteout and adds a file. It returns
// the layer dirs top first.
func makeLayers(t testing.TB) (upper, lower string) {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "layers-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	lower, upper = filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
	type file struct {
		path     string
		mode     os.FileMode
		uid, gid int
		data     string
	}
	for _, f := range []file{
		{"lower/etc/shadow", 0o600, 0, 42, "root:$6$secret:19000:0:99999:7:::"},
		{"lower/etc/removed", 0o644, 0, 0, "whited out above"},
		{"lower/root/.ssh/id_rsa", 0o600, 0, 0, "-----BEGIN OPENSSH PRIVATE KEY-----"},
		{"lower/home/user/notes", 0o644, 1000, 1000, "notes of user 1000"},
		{"lower/home/user/secret", 0o600, 1000, 1000, "secret of user 1000"},
		{"upper/etc/added", 0o644, 0, 0, "added by the upper layer"},
	} {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{{"lower/root", 0o700, 0, 0}, {"lower/root/.ssh", 0o700, 0, 0}, {"lower/home/user", 0o755, 1000, 1000}} {
		p := filepath.Join(dir, d.path)
		if err := os.Chown(p, d.uid, d.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	// A program in the image: /target is noexec.
	exe, err := os.ReadFile(bin("exit0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(lower, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "bin/true"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	// An overlayfs whiteout: a 0/0 character device.
	if err := unix.Mknod(filepath.Join(upper, "etc/removed"), unix.S_IFCHR|0o000, 0); err != nil {
		t.Fatal(err)
	}
	return upper, lower
}
