package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseProbe turns probe's "name=result" lines into a map.
func parseProbe(t *testing.T, lines []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, "=")
		if ok {
			got[k] = v
		}
	}
	if got["done"] != "ok" {
		t.Fatalf("probe did not finish; output:\n%s", strings.Join(lines, "\n"))
	}
	return got
}

// TestProbe runs the hostile probe against a two-layer image and checks
// every escape it tries fails and the image reads with its own owners.
func TestProbe(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	port, accepted := hostListener(t)
	upper, lower := makeLayers(t)
	// A socket dir as go-plugin makes one.
	sockDir, err := os.MkdirTemp(m.SocketTempDir(), "plugin-dir")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	r := startProgram(t, m, nil, "probe", []string{strconv.Itoa(port), strconv.Itoa(os.Getpid())}, []string{upper, lower}, Limits{},
		func(sp *spec) { sp.sockDir = sockDir })
	stdout, stderr, err := r.wait(t)
	if err != nil {
		t.Fatalf("probe: %v\nstderr:\n%s", err, stderr)
	}
	got := parseProbe(t, stdout)
	want := map[string]string{
		// /sock is a tiny tmpfs: neither bytes nor inodes of the host.
		"sock_fill":    "err:ENOSPC",
		"sock_inodes":  "err:ENOSPC",
		"uid":          "ok:0,0",
		"pid":          "ok:1,0",
		"caps":         "ok:CapInh=0000000000000000,CapPrm=0000000000000000,CapEff=0000000000000000,CapBnd=0000000000000000,CapAmb=0000000000000000",
		"no_new_privs": "ok:1",
		"fd3_open":     "err:EBADF", // no descriptor beyond 0-2 unless a layer is passed
		"seccomp_mode": "ok:2",
		"hostname":     "ok:sandbox",
		"interfaces":   "ok:lo",
		// Nothing listens on the port in the sandbox's own loopback.
		"tcp_host_port": "err:ECONNREFUSED",
		"socket_vsock":  "err:EPERM",

		"write_root":        "err:EROFS",
		"write_target":      "err:EROFS",
		"mkdir_target":      "err:EROFS",
		"write_target_file": "err:EROFS",
		"write_tmp":         "ok",
		"exec_tmp":          "err:EACCES", // noexec
		"exec_target":       "err:EACCES", // noexec
		"read_host_shadow":  "err:ENOENT", // the root holds no /etc
		"stat_sys":          "err:ENOENT",
		"write_proc_sys":    "err:EROFS",
		"proc1_root":        "ok:/",
		"proc1_root_list":   "ok:dev,plugin,proc,sock,target,tmp",
		"read_host_environ": "err:ENOENT", // the host's pids are not in the sandbox's pid namespace
		"stat_dev_sda":      "err:ENOENT",
		"dev_list":          "ok:fd,full,null,ptmx,random,stderr,stdin,stdout,tty,urandom,zero",

		"target_shadow_stat":      "ok:0:42:600",
		"target_shadow_read":      "ok:root:$6$secret:19000:0:99999:7:::",
		"target_id_rsa_stat":      "ok:0:0:600",
		"target_id_rsa_read":      "ok:-----BEGIN OPENSSH PRIVATE KEY-----",
		"target_user_file_stat":   "ok:1000:1000:644",
		"target_user_file_read":   "ok:notes of user 1000",
		"target_user_secret_stat": "ok:1000:1000:600",
		"target_user_secret_read": "err:EACCES", // no CAP_DAC_READ_SEARCH, by design
		"target_whiteout_stat":    "err:ENOENT",
		"target_whiteout_read":    "err:ENOENT",
		"mount":                   "err:EPERM",
		"umount":                  "err:EPERM",
		"ptrace":                  "err:EPERM",
		"keyctl":                  "err:EPERM",
		"add_key":                 "err:EPERM",
		"unshare_user":            "err:EPERM",
		"unshare_net":             "err:EPERM",
		"setns":                   "err:EPERM",
		"clone_newuser":           "err:EPERM",
		"clone3":                  "err:ENOSYS",
		"bpf":                     "err:EPERM",
		"mknod":                   "err:EPERM",
		"mknod_fifo":              "err:EPERM", // mknodat is refused whole
		"io_uring_setup":          "err:EPERM",
		"personality_no_aslr":     "err:EPERM",
		"personality_linux":       "ok",
		"userfaultfd":             "err:EPERM",
		"perf_event_open":         "err:EPERM",
		"chroot":                  "err:EPERM",
		"sethostname":             "err:EPERM",
		"setuid_1000":             "err:EPERM",
		"stat_proc_sys":           "ok",
		"proc_pids":               "ok:1",
	}
	// Masked /proc files read empty (those this kernel has).
	for _, p := range []string{"kcore", "keys", "timer_list", "sched_debug", "latency_stats"} {
		want["read_proc_"+p] = "err:ENOENT"
		if _, err := os.Stat("/proc/" + p); err == nil {
			want["read_proc_"+p] = "ok:0"
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != "done" {
			t.Errorf("unchecked probe result %s = %q", k, got[k])
		}
	}
	if n := accepted(); n != 0 {
		t.Errorf("the host listener accepted %d connections from the sandbox", n)
	}
	assertIdle(t, m)
}

// TestSingleLayer: a one-layer image (containerd's bind mount of one
// snapshot dir) is id-mapped directly, without overlayfs.
func TestSingleLayer(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	_, lower := makeLayers(t)
	r := startProgram(t, m, nil, "probe", []string{"1", "1"}, []string{lower}, Limits{})
	stdout, stderr, err := r.wait(t)
	if err != nil {
		t.Fatalf("probe: %v\nstderr:\n%s", err, stderr)
	}
	got := parseProbe(t, stdout)
	for k, w := range map[string]string{
		"target_shadow_stat":    "ok:0:42:600",
		"target_shadow_read":    "ok:root:$6$secret:19000:0:99999:7:::",
		"target_id_rsa_read":    "ok:-----BEGIN OPENSSH PRIVATE KEY-----",
		"target_user_file_stat": "ok:1000:1000:644",
		"target_whiteout_read":  "ok:whited out above",
		"write_target":          "err:EROFS",
		"exec_target":           "err:EACCES",
	} {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	assertIdle(t, m)
}

func TestForkBomb(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	r := startProgram(t, m, nil, "forkbomb", nil, nil, Limits{Pids: 32})
	_, stderr, err := r.wait(t)
	if !errors.Is(err, ErrTooManyProcesses) {
		t.Fatalf("err = %v, want too many processes\nstderr:\n%.2000s", err, stderr)
	}
	if got, want := Reason(err), "too many processes (limit 32)"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
	assertIdle(t, m)
}

func TestOutOfMemory(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	r := startProgram(t, m, nil, "memhog", nil, nil, Limits{Memory: 32 << 20})
	_, stderr, err := r.wait(t)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("err = %v, want out of memory\nstderr:\n%.2000s", err, stderr)
	}
	if got, want := Reason(err), "out of memory (limit 32 MiB)"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
	assertIdle(t, m)
}

func TestDeadline(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	t.Run("Limits.Timeout", func(t *testing.T) {
		start := time.Now()
		r := startProgram(t, m, nil, "spin", nil, nil, Limits{Timeout: time.Second})
		_, _, err := r.wait(t)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if got, want := Reason(err), "deadline exceeded (limit 1s)"; got != want {
			t.Errorf("Reason = %q, want %q", got, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v to kill at a 1s deadline", d)
		}
		assertIdle(t, m)
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r := startProgram(t, m, ctx, "spin", nil, nil, Limits{})
		_, _, err := r.wait(t)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if !strings.HasPrefix(Reason(err), "deadline exceeded (limit 1") {
			t.Errorf("Reason = %q", Reason(err))
		}
		assertIdle(t, m)
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		r := startProgram(t, m, ctx, "spin", nil, nil, Limits{})
		if l := r.firstLine(t); l != "spinning" {
			t.Fatalf("first line %q", l)
		}
		cancel()
		_, _, err := r.wait(t)
		if !errors.Is(err, context.Canceled) || Reason(err) != "canceled" {
			t.Fatalf("err = %v, want canceled", err)
		}
		assertIdle(t, m)
	})
}

func TestExitStatus(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	r := startProgram(t, m, nil, "exit0", nil, nil, Limits{})
	if _, _, err := r.wait(t); err != nil {
		t.Errorf("exit0: %v", err)
	}
	// A go-plugin plugin started without its magic cookie exits 1.
	r = startProgram(t, m, nil, "plugin", nil, nil, Limits{})
	_, stderr, err := r.wait(t)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Kind != Exited || ee.Code != 1 || Reason(err) != "exit status 1" {
		t.Errorf("plugin without cookie: err = %v, want exit status 1", err)
	}
	if !strings.Contains(stderr, "plugin") {
		t.Errorf("stderr not forwarded: %q", stderr)
	}
	assertIdle(t, m)
}

// TestHostView looks at a running sandbox from the host: other namespaces,
// an unprivileged host uid, no capabilities, no fd of the host.
func TestHostView(t *testing.T) {
	cfg := testConfig(t)
	m := newTestManager(t, cfg)
	upper, lower := makeLayers(t)
	r := startProgram(t, m, nil, "idle", nil, []string{upper, lower}, Limits{})
	if l := r.firstLine(t); l != "ready" {
		t.Fatalf("first line %q", l)
	}
	pid := r.sb.pid
	checkHostView(t, m, pid, []*os.File{r.sb.stdout, r.sb.stderr}, true)
	// The image mounts on the host: id-mapped layers, read-only overlay.
	mi, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var layers, overlays int
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[4], r.sb.dir+"/") {
			continue
		}
		opts := "," + f[5] + ","
		for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !strings.Contains(opts, ","+o+",") {
				t.Errorf("%s mounted without %s: %s", f[4], o, f[5])
			}
		}
		switch {
		case strings.Contains(line, " - overlay "):
			overlays++
		case strings.Contains(opts, ",idmapped,"):
			layers++
		default:
			t.Errorf("unexpected mount %s", line)
		}
	}
	if layers != 2 || overlays != 1 {
		t.Errorf("%d id-mapped layers and %d overlays mounted, want 2 and 1", layers, overlays)
	}
	killCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.sb.kill(killCtx); err != nil {
		t.Fatal(err)
	}
	_, _, err = r.wait(t)
	if !errors.Is(err, ErrKilled) || Reason(err) != "killed" {
		t.Errorf("err = %v, want killed", err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("process %d still exists", pid)
	}
	assertIdle(t, m)
}

// checkHostView checks the sandboxed process pid from the host. ours are
// the read ends of its stdout and stderr; strict demands that every fd
// beyond 0-2 be an anonymous inode (an idle program opens nothing).
func checkHostView(t *testing.T, m *Manager, pid int, ours []*os.File, strict bool) {
	t.Helper()
	proc := fmt.Sprintf("/proc/%d", pid)
	for _, ns := range []string{"user", "pid", "net", "mnt", "uts", "ipc", "cgroup"} {
		mine, err1 := os.Readlink("/proc/thread-self/ns/" + ns)
		theirs, err2 := os.Readlink(proc + "/ns/" + ns)
		if err1 != nil || err2 != nil {
			t.Fatalf("ns %s: %v %v", ns, err1, err2)
		}
		if mine == theirs {
			t.Errorf("the sandbox shares the host's %s namespace (%s)", ns, mine)
		}
	}
	status, err := os.ReadFile(proc + "/status")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	u, g := m.cfg.UIDStart, m.cfg.GIDStart
	for k, want := range map[string]string{
		"Uid":        fmt.Sprintf("%d %d %d %d", u, u, u, u),
		"Gid":        fmt.Sprintf("%d %d %d %d", g, g, g, g),
		"Groups":     "",
		"CapInh":     "0000000000000000",
		"CapPrm":     "0000000000000000",
		"CapEff":     "0000000000000000",
		"CapBnd":     "0000000000000000",
		"CapAmb":     "0000000000000000",
		"NoNewPrivs": "1",
		"Seccomp":    "2",
	} {
		if fields[k] != want {
			t.Errorf("%s: %s = %q, want %q", proc, k, fields[k], want)
		}
	}
	uidMap, _ := os.ReadFile(proc + "/uid_map")
	if got, want := strings.Join(strings.Fields(string(uidMap)), " "), fmt.Sprintf("0 %d %d", u, m.cfg.UIDCount); got != want {
		t.Errorf("uid_map = %q, want %q", got, want)
	}

	// No fd of ours may be in the sandbox: compare the objects behind the
	// fds (pipe and socket inodes, paths) with every fd this process has.
	hostObjects := map[string]bool{}
	self, _ := os.ReadDir("/proc/self/fd")
	for _, e := range self {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(l, "anon_inode:") {
			hostObjects[l] = true
		}
	}
	allowed := map[string]bool{"/dev/null": true}
	for _, f := range ours {
		l, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		allowed[l] = true
	}
	fds, err := os.ReadDir(proc + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for _, e := range fds {
		n, _ := strconv.Atoi(e.Name())
		l, err := os.Readlink(proc + "/fd/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, e.Name()+" -> "+l)
		switch {
		case n <= 2:
			if !allowed[l] {
				t.Errorf("fd %d -> %s: not /dev/null or our pipe", n, l)
			}
		case hostObjects[l] || allowed[l]:
			t.Errorf("fd %d -> %s leaked from the host", n, l)
		case strings.HasPrefix(l, "/"):
			t.Errorf("fd %d -> %s: a host path", n, l)
		case strict && !strings.HasPrefix(l, "anon_inode:"):
			t.Errorf("fd %d -> %s: unexpected", n, l)
		}
	}
	t.Logf("fds of the sandboxed process: %s", strings.Join(list, ", "))
	if len(fds) < 3 {
		t.Errorf("only %d fds", len(fds))
	}
	_ = filepath.Join
}

// TestStartFailure: a program the sandbox cannot exec (a dynamic binary
// finds no loader in the sandbox's empty root) fails after the container
// was created, and leaves nothing behind; so does a program that is not
// there.
func TestStartFailure(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	upper, lower := makeLayers(t)
	sb, err := m.start(context.Background(), spec{binary: "/bin/true", layers: []string{upper, lower}, lim: m.cfg.tighten(Limits{})})
	if err == nil {
		// runc init finds /plugin, so Start succeeds; execve fails.
		stderr, _ := io.ReadAll(sb.stderr)
		err = sb.wait(context.Background())
		closeFiles(sb.stdout, sb.stderr)
		t.Logf("stderr: %s", stderr)
		if err == nil {
			t.Fatal("a dynamic binary ran in the empty root")
		}
	}
	t.Logf("error: %v", err)
	assertIdle(t, m)
	_, err = m.start(context.Background(), spec{binary: "/nonexistent", lim: m.cfg.tighten(Limits{})})
	if err == nil || !strings.Contains(err.Error(), "sandbox: ") {
		t.Errorf("err = %v", err)
	}
	assertIdle(t, m)
}

// TestConcurrent starts many sandboxes at once, some killed, some ending
// by themselves, and checks they all end cleanly.
func TestConcurrent(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	upper, lower := makeLayers(t)
	const n = 24
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- func() error {
				name := []string{"exit0", "idle", "probe"}[i%3]
				var args []string
				if name == "probe" {
					args = []string{"1", "1"}
				}
				sb, err := m.start(context.Background(), spec{binary: bin(name), args: args, layers: []string{upper, lower}, lim: m.cfg.tighten(Limits{})})
				if err != nil {
					return err
				}
				defer closeFiles(sb.stdout, sb.stderr)
				go func() { _, _ = io.Copy(io.Discard, sb.stdout) }()
				go func() { _, _ = io.Copy(io.Discard, sb.stderr) }()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if name == "idle" {
					time.Sleep(100 * time.Millisecond)
					if err := sb.kill(ctx); err != nil {
						return err
					}
					if err := sb.wait(ctx); !errors.Is(err, ErrKilled) {
						return fmt.Errorf("idle: %v", err)
					}
					return nil
				}
				if err := sb.wait(ctx); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				return nil
			}()
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	assertIdle(t, m)
}

// TestLimitResources lowers a running sandbox's limits (never raises them)
// and checks the cgroup and the reason for a breach follow.
func TestLimitResources(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	r := startProgram(t, m, nil, "idle", nil, nil, Limits{})
	if l := r.firstLine(t); l != "ready" {
		t.Fatalf("first line %q", l)
	}
	run := &Runner{sb: r.sb}
	read := func(ctrl, file string) string {
		p := r.sb.cgPaths[ctrl]
		data, err := os.ReadFile(filepath.Join(p, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	memFile, pidsCtrl, memCtrl := "memory.limit_in_bytes", "pids", "memory"
	if _, ok := r.sb.cgPaths["memory"]; !ok {
		memFile, pidsCtrl, memCtrl = "memory.max", "", ""
	}
	if err := run.LimitResources(64<<20, 16); err != nil {
		t.Fatal(err)
	}
	if got := read(memCtrl, memFile); got != strconv.Itoa(64<<20) {
		t.Errorf("memory limit %s", got)
	}
	if got := read(pidsCtrl, "pids.max"); got != "16" {
		t.Errorf("pids limit %s", got)
	}
	if err := run.LimitResources(1<<30, 1000); err != nil {
		t.Fatal(err)
	}
	if got := read(memCtrl, memFile); got != strconv.Itoa(64<<20) {
		t.Errorf("memory limit raised to %s", got)
	}
	if err := r.sb.kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.wait(t)
	if !errors.Is(err, ErrKilled) {
		t.Errorf("err %v", err)
	}
	if err := run.LimitResources(32<<20, 8); err == nil {
		t.Error("lowering an ended sandbox's limits: no error")
	}
	assertIdle(t, m)
}

// TestStartCanceled cancels starts at every stage: each either fails with
// nothing left or starts a sandbox that then ends normally.
func TestStartCanceled(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	upper, lower := makeLayers(t)
	var failed, started int
	for i := range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*time.Millisecond)
		sb, err := m.start(ctx, spec{binary: bin("exit0"), layers: []string{upper, lower}, lim: m.cfg.tighten(Limits{})})
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("timeout %dms: %v", i, err)
			}
			failed++
		} else {
			started++
			if err := sb.wait(context.Background()); err != nil {
				t.Errorf("timeout %dms: started, then %v", i, err)
			}
			closeFiles(sb.stdout, sb.stderr)
		}
		assertIdle(t, m)
	}
	t.Logf("%d starts canceled, %d completed", failed, started)
}

// TestLayerFiles: a file passed to the sandbox (a layer blob) is the
// program's descriptor 3, readable and nothing more; a file open for
// writing is refused before anything starts.
func TestLayerFiles(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	blob := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(blob, []byte("layer-bytes and more"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, err := m.start(context.Background(), spec{
		binary: bin("probe"), args: []string{"1", "1"}, env: []string{"PATH=/"},
		files: []*os.File{f}, lim: m.cfg.tighten(Limits{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(sb.stdout)
	sb.stdout.Close()
	io.Copy(io.Discard, sb.stderr)
	sb.stderr.Close()
	if err := sb.wait(context.Background()); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	got := parseProbe(t, strings.Split(strings.TrimSpace(string(out)), "\n"))
	for k, w := range map[string]string{
		"fd3_read":  "ok:layer-bytes",
		"fd3_write": "err:EBADF",
	} {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if !strings.HasPrefix(got["fd3_reopen_write"], "err:") {
		t.Errorf("fd3_reopen_write = %q: the blob could be opened for writing", got["fd3_reopen_write"])
	}
	if data, _ := os.ReadFile(blob); string(data) != "layer-bytes and more" {
		t.Errorf("the blob changed: %q", data)
	}
	rw, err := os.OpenFile(blob, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := m.start(context.Background(), spec{binary: bin("probe"), args: []string{"1", "1"}, files: []*os.File{rw}, lim: m.cfg.tighten(Limits{})}); err == nil || !strings.Contains(err.Error(), "not open read-only") {
		t.Errorf("a file open for writing: %v", err)
	}
	assertIdle(t, m)
}
