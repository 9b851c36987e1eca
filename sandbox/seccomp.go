package sandbox

import (
	"fmt"
	"slices"

	cseccomp "github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The seccomp profile is an allowlist: containerd's default profile (the
// one moby and containerd give containers), as for a process without any
// capability, so that every system call it does not list (a new kernel's
// included) fails with EPERM, and clone3 with ENOSYS (libc and Go fall
// back to clone, whose namespace flags the filter can read). Its
// conditional rules stay: clone only without namespace flags, personality
// only with harmless values, socket only for listed address families
// (not AF_VSOCK, which is not network-namespaced, nor AF_ALG).
//
// deniedSyscalls are then taken out of what it allows: an analyzer needs
// none of them, and they have a record of kernel escapes or reach other
// processes (io_uring, keyrings, userfaultfd, ptrace, NUMA placement of
// other processes' memory, device nodes).
//
// Only the native architecture is in the filter: a call of another ABI
// (i386 int 0x80, x32) kills the caller.
var deniedSyscalls = []string{
	// Mounts and views of file systems.
	"mount", "umount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"open_by_handle_at", "name_to_handle_at", "quotactl", "quotactl_fd",
	"mknod", "mknodat",
	// Namespaces.
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

// seccompProfile builds the filter.
func seccompProfile() (*configs.Seccomp, error) {
	prof := cseccomp.DefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}})
	prof.Architectures = nil // the native one only
	var kept []specs.LinuxSyscall
	for _, sc := range prof.Syscalls {
		if sc.Action == specs.ActAllow {
			sc.Names = slices.DeleteFunc(slices.Clone(sc.Names), func(n string) bool { return slices.Contains(deniedSyscalls, n) })
			if len(sc.Names) == 0 {
				continue
			}
		}
		kept = append(kept, sc)
	}
	prof.Syscalls = kept
	s, err := specconv.SetupSeccomp(prof)
	if err != nil {
		return nil, fmt.Errorf("sandbox: seccomp profile: %w", err)
	}
	return s, nil
}
