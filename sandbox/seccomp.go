package sandbox

import (
	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer/configs"
)

// The seccomp profile: allow by default, refuse with EPERM what an analyzer
// never needs and what has a history of kernel escapes. The sandbox holds
// no capabilities, so most of these would fail anyway; the filter is the
// second wall, and it closes what an unprivileged process may otherwise
// do (create a user namespace and gain capabilities in it, use io_uring,
// bpf, userfaultfd, keyrings, perf).
//
// System calls unknown to libseccomp on this architecture are skipped by
// libcontainer. Calls of another ABI (i386 int 0x80, x32) are not in the
// filter's architecture list, so libseccomp kills the caller.
var deniedSyscalls = []string{
	// Mounts and views of file systems.
	"mount", "umount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"open_by_handle_at", "name_to_handle_at", "quotactl", "quotactl_fd",
	"mknod", "mknodat",
	// Namespaces (clone with CLONE_NEWUSER is refused below).
	"unshare", "setns",
	// Other processes.
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
	// Kernel attack surface with a record of escapes.
	"bpf", "perf_event_open", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"keyctl", "add_key", "request_key",
	// The machine: modules, kexec, swap, reboot, logs, accounting, clocks.
	"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
	"swapon", "swapoff", "reboot", "syslog", "acct",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
	"sethostname", "setdomainname", "vhangup",
	// Obsolete or hardware-level calls.
	"iopl", "ioperm", "modify_ldt", "uselib", "ustat", "sysfs", "_sysctl",
	"lookup_dcookie", "nfsservctl", "fanotify_init",
	// NUMA placement of other processes' memory.
	"mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages",
}

// personalityFlags are the personality(2) bits that change address-space
// layout or exec semantics (no ASLR, READ_IMPLIES_EXEC, page zero, ...).
// A call setting any of them is refused. The query personality(0xffffffff)
// sets all of them and is refused too; nothing in a Go plugin uses it.
var personalityFlags = []uint64{
	0x0040000, // ADDR_NO_RANDOMIZE
	0x0080000, // FDPIC_FUNCPTRS
	0x0100000, // MMAP_PAGE_ZERO
	0x0200000, // ADDR_COMPAT_LAYOUT
	0x0400000, // READ_IMPLIES_EXEC
	0x0800000, // ADDR_LIMIT_32BIT
	0x1000000, // SHORT_INODE
	0x2000000, // WHOLE_SECONDS
	0x4000000, // STICKY_TIMEOUTS
	0x8000000, // ADDR_LIMIT_3GB
}

const afVsock = 40 // AF_VSOCK: not network-namespaced; reaches the hypervisor.

// seccompProfile builds the filter. Comparisons on int arguments are masked
// to 32 bits: the kernel ignores the upper half, so must the filter.
func seccompProfile() *configs.Seccomp {
	eperm := uint(unix.EPERM)
	enosys := uint(unix.ENOSYS)
	s := &configs.Seccomp{DefaultAction: configs.Allow}
	for _, name := range deniedSyscalls {
		s.Syscalls = append(s.Syscalls, &configs.Syscall{Name: name, Action: configs.Errno, ErrnoRet: &eperm})
	}
	// clone(2) with CLONE_NEWUSER: the one namespace an unprivileged
	// process may create, and with it a full capability set inside. (On
	// amd64 and arm64 the flags are argument 0.)
	s.Syscalls = append(s.Syscalls, &configs.Syscall{
		Name: "clone", Action: configs.Errno, ErrnoRet: &eperm,
		Args: []*configs.Arg{{Index: 0, Value: unix.CLONE_NEWUSER, ValueTwo: unix.CLONE_NEWUSER, Op: configs.MaskEqualTo}},
	})
	// clone3 passes its flags in memory a filter cannot read: answer
	// ENOSYS so libc and Go fall back to clone, which is checked above.
	s.Syscalls = append(s.Syscalls, &configs.Syscall{Name: "clone3", Action: configs.Errno, ErrnoRet: &enosys})
	// Several conditions on one argument are ORed by libcontainer: any
	// listed bit refuses the call.
	pers := &configs.Syscall{Name: "personality", Action: configs.Errno, ErrnoRet: &eperm}
	for _, bit := range personalityFlags {
		pers.Args = append(pers.Args, &configs.Arg{Index: 0, Value: bit, ValueTwo: bit, Op: configs.MaskEqualTo})
	}
	s.Syscalls = append(s.Syscalls, pers)
	s.Syscalls = append(s.Syscalls, &configs.Syscall{
		Name: "socket", Action: configs.Errno, ErrnoRet: &eperm,
		Args: []*configs.Arg{{Index: 0, Value: 0xffffffff, ValueTwo: afVsock, Op: configs.MaskEqualTo}},
	})
	return s
}
