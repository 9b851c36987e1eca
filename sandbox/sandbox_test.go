package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer/configs"
)

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
		is   error
	}{
		{nil, "", nil},
		{&ExitError{Kind: OutOfMemory, Limit: formatBytes(256 << 20)}, "out of memory (limit 256 MiB)", ErrOutOfMemory},
		{&ExitError{Kind: TooManyProcesses, Limit: "64"}, "too many processes (limit 64)", ErrTooManyProcesses},
		{&ExitError{Kind: DeadlineExceeded, Limit: (30 * time.Second).String()}, "deadline exceeded (limit 30s)", context.DeadlineExceeded},
		{&ExitError{Kind: Canceled}, "canceled", context.Canceled},
		{&ExitError{Kind: Killed}, "killed", ErrKilled},
		{&ExitError{Kind: Exited, Code: 3}, "exit status 3", nil},
		{&ExitError{Kind: Signaled, Signal: syscall.SIGSEGV}, "killed by signal SIGSEGV", nil},
		// Wrapped and joined with a clean-up error, as Wait may return it.
		{errors.Join(fmt.Errorf("plugin: %w", &ExitError{Kind: OutOfMemory, Limit: "1 GiB"}), errors.New("sandbox: cleaning up")), "out of memory (limit 1 GiB)", ErrOutOfMemory},
		{errors.New("sandbox: starting x: boom"), "sandbox: starting x: boom", nil},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if tc.is != nil && !errors.Is(tc.err, tc.is) {
			t.Errorf("errors.Is(%v, %v) = false", tc.err, tc.is)
		}
	}
	if errors.Is(&ExitError{Kind: Killed}, ErrOutOfMemory) {
		t.Error("killed is out of memory?")
	}
	if got := (&ExitError{Kind: OutOfMemory, Limit: "256 MiB"}).Error(); got != "sandbox: out of memory (limit 256 MiB)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{256 << 20: "256 MiB", 1 << 30: "1 GiB", 1536 << 20: "1536 MiB", 4096: "4 KiB", 1000: "1000 bytes"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	c := Config{StateDir: "/var/lib/assay/sandbox"}
	c.setDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.UIDStart != 1000000000 || c.UIDCount != 65536 || c.GIDStart != c.UIDStart || c.GIDCount != c.UIDCount {
		t.Errorf("ids %d:%d %d:%d", c.UIDStart, c.UIDCount, c.GIDStart, c.GIDCount)
	}
	if c.Memory != 512<<20 || c.Pids != 256 || c.CPUShares != 512 || c.TmpfsBytes != 16<<20 || c.LogBytes != 1<<20 {
		t.Errorf("defaults %+v", c)
	}
	for _, bad := range []Config{
		{StateDir: "relative"},
		{StateDir: "/s", UIDStart: 0, UIDCount: 10, GIDStart: 5, GIDCount: 5}, // would map host root
		{StateDir: "/s", UIDStart: 4294967000, UIDCount: 65536},
		{StateDir: "/s", Pids: 2},
		{StateDir: "/s", CPUShares: 1 << 20},
	} {
		bad.setDefaults()
		if err := bad.validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestTighten(t *testing.T) {
	c := Config{StateDir: "/s", Timeout: time.Minute}
	c.setDefaults()
	l := c.tighten(Limits{Memory: 256 << 20, Pids: 1 << 20, CPUShares: 4096, Timeout: time.Hour, LogBytes: 10})
	want := limits{memory: 256 << 20, pids: 256, cpuShares: 512, tmpfsBytes: 16 << 20, logBytes: 10, timeout: time.Minute}
	if l != want {
		t.Errorf("tighten = %+v, want %+v (never loosened)", l, want)
	}
	l = c.tighten(Limits{CPUShares: 100, Timeout: time.Second, TmpfsBytes: 1 << 20})
	if l.cpuShares != 100 || l.timeout != time.Second || l.tmpfsBytes != 1<<20 || l.memory != 512<<20 {
		t.Errorf("tighten = %+v", l)
	}
	c.Timeout = 0
	if l := c.tighten(Limits{Timeout: time.Second}); l.timeout != time.Second {
		t.Errorf("timeout with no default: %v", l.timeout)
	}
}

func TestSeccompProfile(t *testing.T) {
	p, err := seccompProfile()
	if err != nil {
		t.Fatal(err)
	}
	// An allowlist: what it does not name fails (a new kernel's calls).
	if p.DefaultAction != configs.Errno || p.DefaultErrnoRet != nil && *p.DefaultErrnoRet != uint(unix.EPERM) {
		t.Fatalf("default action %v (errno %v), want EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	if len(p.Architectures) != 0 {
		t.Errorf("architectures %v: only the native one (other ABIs killed)", p.Architectures)
	}
	allowed := map[string][]*configs.Syscall{}
	errno := map[string]uint{}
	for _, s := range p.Syscalls {
		switch s.Action {
		case configs.Allow:
			allowed[s.Name] = append(allowed[s.Name], s)
		case configs.Errno:
			errno[s.Name] = *s.ErrnoRet
		}
	}
	for _, name := range deniedSyscalls {
		if _, ok := allowed[name]; ok {
			t.Errorf("%s is allowed", name)
		}
	}
	if errno["clone3"] != uint(unix.ENOSYS) {
		t.Errorf("clone3: errno %d, want ENOSYS (so that runtimes fall back to clone)", errno["clone3"])
	}
	// clone is allowed only without namespace flags.
	for _, c := range allowed["clone"] {
		if len(c.Args) != 1 || c.Args[0].Value&unix.CLONE_NEWUSER == 0 || c.Args[0].ValueTwo != 0 {
			t.Errorf("clone allowed with %+v: namespace flags must be refused", c.Args)
		}
	}
	// personality and socket only conditionally.
	for _, name := range []string{"personality", "socket"} {
		for _, c := range allowed[name] {
			if len(c.Args) == 0 {
				t.Errorf("%s allowed unconditionally", name)
			}
		}
	}
	// What Go's runtime and the analyzers need.
	for _, name := range []string{"read", "write", "openat", "mmap", "munmap", "futex", "clone", "execve", "exit_group", "epoll_pwait", "epoll_ctl", "rt_sigaction", "rt_sigprocmask", "sched_yield", "getrandom", "newfstatat", "fstat", "pread64", "memfd_create", "prctl", "tgkill", "nanosleep", "accept4", "bind", "listen"} {
		if _, ok := allowed[name]; !ok {
			t.Errorf("%s is not allowed", name)
		}
	}
}

func TestPluginEnv(t *testing.T) {
	env := pluginEnv([]string{
		"PLUGIN_MIN_PORT=0",
		"PLUGIN_UNIX_SOCKET_DIR=/var/lib/assay/sandbox/sock/plugin-dir123",
		"PLUGIN_UNIX_SOCKET_GROUP=assay",
		"ASSAY_PLUGIN=x",
	}, "/var/lib/assay/sandbox/sock/plugin-dir123")
	want := []string{"PLUGIN_MIN_PORT=0", "ASSAY_PLUGIN=x", "PLUGIN_UNIX_SOCKET_DIR=/sock"}
	if !slices.Equal(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}
}

func TestAddrTranslation(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{hostDir: dir}
	ln, err := net.Listen("unix", filepath.Join(dir, "plugin123"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Symlink("/run/containerd/containerd.sock", filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		net, addr, want string
		ok              bool
	}{
		{"unix", "/sock/plugin123", "/proc/self/fd/", true},
		{"unix", "/sock/evil", "", false}, // a symlink the plugin left
		{"unix", "/sock/file", "", false},
		{"unix", "/sock/missing", "", false},
		{"unix", "/sock/../etc/passwd", "", false},
		{"unix", "/sock", "", false},
		{"unix", "/tmp/plugin123", "", false},
		{"tcp", "127.0.0.1:1234", "", false},
	} {
		n, a, err := r.PluginToHost(tc.net, tc.addr)
		if (err == nil) != tc.ok || !strings.HasPrefix(a, tc.want) || (tc.want == "") != (a == "") || (tc.ok && n != "unix") {
			t.Errorf("PluginToHost(%s, %s) = %s %s %v", tc.net, tc.addr, n, a, err)
		}
	}
	r.closeSocks()
	n, a, err := r.HostToPlugin("unix", filepath.Join(dir, "broker7"))
	if err != nil || n != "unix" || a != "/sock/broker7" {
		t.Errorf("HostToPlugin = %s %s %v", n, a, err)
	}
	if _, _, err := r.HostToPlugin("unix", dir+"x/broker"); err == nil {
		t.Error("HostToPlugin outside the socket dir: no error")
	}
	if _, _, err := r.HostToPlugin("tcp", "127.0.0.1:1"); err == nil {
		t.Error("HostToPlugin tcp: no error")
	}
}

func TestCappedReader(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var warned int
	r := newCappedReader(pr, 10, "stderr", func(string, ...any) { warned++ })
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Far more than a pipe holds: the writer must never block for good.
		for range 100 {
			if _, err := pw.Write(make([]byte, 4096)); err != nil {
				t.Error(err)
				break
			}
		}
		pw.Close()
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if want := string(make([]byte, 10)) + "\n[sandbox: stderr truncated after 10 bytes]\n"; string(got) != want {
		t.Errorf("read %q", got)
	}
	if warned != 1 {
		t.Errorf("warned %d times", warned)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if (*cappedReader)(nil).Close() != nil {
		t.Error("nil Close")
	}
	if !strings.HasPrefix(newID(), idPrefix) || len(newID()) != len(idPrefix)+16 {
		t.Errorf("id %q", newID())
	}
}

func TestUnder(t *testing.T) {
	for _, tc := range []struct {
		path, dir, rel string
		ok             bool
	}{
		{"/a/b/c", "/a/b", "c", true},
		{"/a/b/c/d", "/a/b", "c/d", true},
		{"/a/b", "/a/b", "", false},
		{"/a/bc", "/a/b", "", false},
		{"/a/b/../c", "/a/b", "", false},
	} {
		rel, ok := under(tc.path, tc.dir)
		if rel != tc.rel || ok != tc.ok {
			t.Errorf("under(%s, %s) = %q %v", tc.path, tc.dir, rel, ok)
		}
	}
}

// TestUnmountSelfBind: Cleanup removes NewManager's bind of the state dir
// on itself, never a file system mounted there.
func TestUnmountSelfBind(t *testing.T) {
	needIntegration(t)
	dir := t.TempDir()
	if ok, err := unmountSelfBind(dir); ok || err != nil {
		t.Fatalf("not a mount point: %v %v", ok, err)
	}
	bound, err := privateSelfBind(dir)
	if err != nil || !bound {
		t.Fatalf("privateSelfBind: %v %v", bound, err)
	}
	if again, err := privateSelfBind(dir); again || err != nil {
		t.Errorf("second privateSelfBind: %v %v", again, err)
	}
	if ok, err := unmountSelfBind(dir); !ok || err != nil {
		t.Fatalf("self bind not unmounted: %v %v", ok, err)
	}
	if ms, _ := getMounts(mountinfo.SingleEntryFilter(dir)); len(ms) != 0 {
		t.Fatalf("still mounted")
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	if ok, err := unmountSelfBind(dir); ok || err != nil {
		t.Errorf("unmounted a tmpfs: %v %v", ok, err)
	}
}

// The plugin owns its socket dir: after the host checked its socket, it
// may swap the name for a symlink to a socket of the host's. The host
// dials what it checked, not the name again.
func TestAddrTranslationSwap(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{hostDir: dir}
	defer r.closeSocks()
	plugin, err := net.Listen("unix", filepath.Join(dir, "plugin1"))
	if err != nil {
		t.Fatal(err)
	}
	defer plugin.Close()
	hostSock := filepath.Join(t.TempDir(), "host.sock")
	hostLn, err := net.Listen("unix", hostSock)
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	_, addr, err := r.PluginToHost("unix", "/sock/plugin1")
	if err != nil {
		t.Fatal(err)
	}
	// The swap, between the check and the dial.
	if err := os.Rename(filepath.Join(dir, "plugin1"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostSock, filepath.Join(dir, "plugin1")); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer conn.Close()
	accepted := make(chan string, 2)
	for name, ln := range map[string]net.Listener{"plugin": plugin, "host": hostLn} {
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
				accepted <- name
			}
		}()
	}
	select {
	case got := <-accepted:
		if got != "plugin" {
			t.Errorf("the dial reached the %s's socket, want the plugin's it checked", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no listener accepted the connection")
	}
}

// On cgroup v2 assayd's delegated cgroup holds its sandboxes: its
// processes move into a leaf, the controllers are enabled, the sandboxes'
// parent is inside it. (This host is cgroup v1: a tree of plain files
// stands in for cgroupfs.)
func TestDelegateV2(t *testing.T) {
	root := t.TempDir()
	own := "/system.slice/assayd.service"
	dir := filepath.Join(root, own)
	os.MkdirAll(filepath.Join(dir, "daemon"), 0o755)
	os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("123\n456\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "daemon", "cgroup.procs"), nil, 0o644)
	var moved []int
	files := cgroupFiles{
		pids: func(dir string) ([]int, error) {
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			var out []int
			for _, f := range strings.Fields(string(b)) {
				n, _ := strconv.Atoi(f)
				out = append(out, n)
			}
			return out, err
		},
		writeProc: func(dir string, pid int) error {
			if dir != filepath.Join(root, own, "daemon") {
				t.Errorf("a process moved into %s", dir)
			}
			moved = append(moved, pid)
			return nil
		},
		write: func(dir, file, data string) error { return os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644) },
	}
	parent, err := delegateV2(files, root, own, 123)
	if err != nil {
		t.Fatal(err)
	}
	if parent != own+"/"+cgroupParent {
		t.Errorf("parent %q, want inside %s", parent, own)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); string(b) != "+memory +pids +cpu" {
		t.Errorf("subtree_control %q", b)
	}
	if !slices.Equal(moved, []int{123, 456}) {
		t.Errorf("moved into the leaf: %v, want every process of the cgroup", moved)
	}
	// Not taken over: the root cgroup, or a cgroup without assayd in it.
	if _, err := delegateV2(files, root, "/", 123); err == nil {
		t.Error("the root cgroup was taken over")
	}
	if _, err := delegateV2(files, root, own, 999); err == nil || !strings.Contains(err.Error(), "does not hold assayd") {
		t.Errorf("a cgroup without assayd: %v", err)
	}
	// The process's own v2 cgroup.
	f := filepath.Join(t.TempDir(), "cgroup")
	os.WriteFile(f, []byte("1:name=systemd:/x\n0::/system.slice/assayd.service\n"), 0o644)
	if got, err := ownCgroupV2(f); err != nil || got != own {
		t.Errorf("ownCgroupV2 = %q, %v", got, err)
	}
}
