// Command probe tries, from inside a sandbox, what a hostile plugin would
// try, and prints one "name=result" line per attempt: "ok[:detail]" if it
// worked, "err:ERRNO" (e.g. "err:EPERM") if it failed with an errno, or
// "err:text" otherwise. The test decides what is expected.
//
// Usage: probe PORT HOSTPID
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		return // a copy started by a check
	}
	port, hostPid := os.Args[1], os.Args[2]
	report := func(name string, detail string, err error) {
		if err != nil {
			fmt.Printf("%s=err:%s\n", name, errText(err))
			return
		}
		if detail != "" {
			fmt.Printf("%s=ok:%s\n", name, detail)
			return
		}
		fmt.Printf("%s=ok\n", name)
	}
	check := func(name string, err error) { report(name, "", err) }

	// Identity and privileges.
	report("uid", strconv.Itoa(os.Getuid())+","+strconv.Itoa(os.Getgid()), nil)
	report("pid", strconv.Itoa(os.Getpid())+","+strconv.Itoa(os.Getppid()), nil)
	caps, err := capLines()
	report("caps", caps, err)
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	report("no_new_privs", strconv.Itoa(nnp), err)
	seccompMode, err := statusField("Seccomp")
	report("seccomp_mode", seccompMode, err)
	host, err := os.Hostname()
	report("hostname", host, err)

	// A layer blob passed as descriptor 3 (when one is): readable, and
	// neither writable through it nor reopenable for writing.
	if _, err := unix.FcntlInt(3, unix.F_GETFD, 0); err == nil {
		f := os.NewFile(3, "layer")
		buf := make([]byte, 11)
		n, err := f.ReadAt(buf, 0)
		report("fd3_read", string(buf[:n]), err)
		_, err = f.WriteAt([]byte("x"), 0)
		check("fd3_write", err)
		w, err := os.OpenFile("/proc/self/fd/3", os.O_WRONLY, 0)
		if err == nil {
			w.Close()
		}
		check("fd3_reopen_write", err)
	} else {
		check("fd3_open", err)
	}

	// The network: loopback only, and not the host's.
	var names []string
	ifs, err := net.Interfaces()
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	report("interfaces", strings.Join(names, ","), err)
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 2*time.Second)
	if err == nil {
		conn.Close()
	}
	check("tcp_host_port", err)
	_, err = unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	check("socket_vsock", err)

	// The file system: read-only root, read-only image, nothing of the
	// host.
	check("write_root", os.WriteFile("/x", []byte("x"), 0o644))
	check("write_target", os.WriteFile("/target/x", []byte("x"), 0o644))
	check("mkdir_target", os.Mkdir("/target/etc/x", 0o755))
	check("write_target_file", os.WriteFile("/target/etc/shadow", []byte("x"), 0o644))
	check("write_tmp", os.WriteFile("/tmp/x", []byte("x"), 0o644))
	// go-plugin's socket dir, when there is one: a tiny tmpfs, not a
	// host directory to fill.
	if _, err := os.Stat("/sock"); err == nil {
		check("sock_fill", os.WriteFile("/sock/big", make([]byte, 1<<20), 0o600))
		os.Remove("/sock/big")
		check("sock_inodes", manyFiles("/sock", 100))
	}
	check("exec_tmp", execTmp())
	check("exec_target", forkExec("/target/bin/true"))
	_, err = os.ReadFile("/etc/shadow")
	check("read_host_shadow", err)
	_, err = os.Stat("/sys")
	check("stat_sys", err)
	_, err = os.Stat("/proc/sys/kernel/hostname")
	check("stat_proc_sys", err)
	check("write_proc_sys", os.WriteFile("/proc/sys/kernel/hostname", []byte("x"), 0o644))
	for _, p := range []string{"kcore", "keys", "timer_list", "sched_debug", "latency_stats"} {
		data, err := os.ReadFile("/proc/" + p)
		report("read_proc_"+p, strconv.Itoa(len(data)), err)
	}
	root, err := os.Readlink("/proc/1/root")
	report("proc1_root", root, err)
	ents, err := os.ReadDir("/proc/1/root")
	var list []string
	for _, e := range ents {
		list = append(list, e.Name())
	}
	sort.Strings(list)
	report("proc1_root_list", strings.Join(list, ","), err)
	_, err = os.ReadFile("/proc/" + hostPid + "/environ")
	check("read_host_environ", err)
	var procs []string
	pents, _ := os.ReadDir("/proc")
	for _, e := range pents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			procs = append(procs, e.Name())
		}
	}
	report("proc_pids", strings.Join(procs, ","), nil)
	_, err = os.Stat("/dev/sda")
	check("stat_dev_sda", err)
	devs, _ := os.ReadDir("/dev")
	var dl []string
	for _, e := range devs {
		dl = append(dl, e.Name())
	}
	sort.Strings(dl)
	report("dev_list", strings.Join(dl, ","), nil)

	// The image, with its own ownership.
	for _, f := range []struct{ name, path string }{
		{"target_shadow", "/target/etc/shadow"},
		{"target_id_rsa", "/target/root/.ssh/id_rsa"},
		{"target_user_file", "/target/home/user/notes"},
		{"target_user_secret", "/target/home/user/secret"},
		{"target_whiteout", "/target/etc/removed"},
	} {
		var st unix.Stat_t
		if err := unix.Stat(f.path, &st); err != nil {
			report(f.name+"_stat", "", err)
		} else {
			report(f.name+"_stat", fmt.Sprintf("%d:%d:%o", st.Uid, st.Gid, st.Mode&0o7777), nil)
		}
		data, err := os.ReadFile(f.path)
		report(f.name+"_read", strings.TrimSpace(string(data)), err)
	}

	// System calls the seccomp filter refuses.
	check("mount", unix.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
	check("umount", unix.Unmount("/proc", unix.MNT_DETACH))
	check("ptrace", unix.PtraceAttach(os.Getpid()))
	_, err = unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	check("keyctl", err)
	_, err = unix.AddKey("user", "k", []byte("v"), unix.KEY_SPEC_PROCESS_KEYRING)
	check("add_key", err)
	check("unshare_user", unix.Unshare(unix.CLONE_NEWUSER))
	check("unshare_net", unix.Unshare(unix.CLONE_NEWNET))
	check("setns", unix.Setns(0, 0))
	check("clone_newuser", cloneNewUser())
	check("clone3", clone3())
	check("bpf", bpf())
	check("mknod", unix.Mknod("/tmp/null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	check("mknod_fifo", unix.Mkfifo("/tmp/fifo", 0o600))
	_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&[30]uint32{})), 0)
	check("io_uring_setup", errnoErr(e))
	_, _, e = unix.Syscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0)
	check("personality_no_aslr", errnoErr(e))
	_, _, e = unix.Syscall(unix.SYS_PERSONALITY, 0, 0, 0)
	check("personality_linux", errnoErr(e))
	_, _, e = unix.Syscall(unix.SYS_USERFAULTFD, 0, 0, 0)
	check("userfaultfd", errnoErr(e))
	_, _, e = unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&unix.PerfEventAttr{})), 0, 0xffffffffffffffff, 0xffffffffffffffff, 0, 0)
	check("perf_event_open", errnoErr(e))
	check("chroot", unix.Chroot("/tmp"))
	check("sethostname", unix.Sethostname([]byte("x")))
	check("setuid_1000", setuid(1000))
	fmt.Println("done=ok")
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
	}
	return err.Error()
}

func statusField(key string) (string, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("no " + key)
}

func capLines() (string, error) {
	var out []string
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		v, err := statusField(k)
		if err != nil {
			return "", err
		}
		out = append(out, k+"="+v)
	}
	return strings.Join(out, ","), nil
}

// execTmp copies this program to /tmp and runs it: /tmp is noexec.
func execTmp() error {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return err
	}
	if err := os.WriteFile("/tmp/self", self, 0o755); err != nil {
		return err
	}
	return forkExec("/tmp/self")
}

func forkExec(path string) error {
	pid, err := syscall.ForkExec(path, []string{path}, nil)
	if err == nil {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
	return err
}

func cloneNewUser() error {
	pid, err := syscall.ForkExec("/plugin", []string{"x"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER},
	})
	if err == nil {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
	return err
}

func clone3() error {
	// struct clone_args with exit_signal SIGCHLD only; the child exits.
	args := [11]uint64{}
	args[4] = uint64(syscall.SIGCHLD)
	pid, _, e := unix.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), 0)
	if e != 0 {
		return e
	}
	if pid == 0 {
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	var ws syscall.WaitStatus
	syscall.Wait4(int(pid), &ws, 0, nil)
	return nil
}

func bpf() error {
	// BPF_MAP_CREATE of a tiny array.
	attr := [5]uint32{2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1, 0}
	_, _, e := unix.Syscall(unix.SYS_BPF, 0, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	return errnoErr(e)
}

func setuid(uid int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(uid), 0, 0)
	return errnoErr(e)
}

// manyFiles creates n empty files in dir, stopping at the first error,
// and removes them.
func manyFiles(dir string, n int) error {
	var err error
	for i := range n {
		p := fmt.Sprintf("%s/f%d", dir, i)
		if err = os.WriteFile(p, nil, 0o600); err != nil {
			break
		}
		defer os.Remove(p)
	}
	return err
}
