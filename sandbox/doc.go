// Package sandbox runs an analyzer plugin as the init process of a
// libcontainer container: a go-plugin runner.Runner (Manager.RunnerFunc)
// and the clean-up of what a crashed assayd left (Cleanup). It does not
// verify plugins (plugins/host does), pull or mount images (daemon/images
// gives it the layer dirs), or interpret results.
//
// # What a sandbox is
//
// Every namespace (user, mount, pid, network with loopback only, uts, ipc,
// cgroup). A read-only root holding only empty mount points and the
// plugin: /plugin (the static binary, bound read-only), /target (the
// image), /tmp (tmpfs, TmpfsBytes, nosuid, nodev, noexec), /proc (with
// runc's masked and read-only paths), /dev (runc's minimal devices), /sock
// (go-plugin's socket dir: a 64 KiB, 16-inode tmpfs, read-write). No
// capabilities in any set, no new privileges, a seccomp allowlist
// (seccomp.go: containerd's default profile for a process without
// capabilities, less what an analyzer never needs), cgroup limits on
// memory, pids and CPU weight (inside assayd's own cgroup), a wall-clock
// limit, and stdout/stderr capped. The sandbox's directory on the host is
// 0710, group the sandbox's root: no other host user reaches the image
// mounted there. The host dials the plugin's socket through a descriptor of
// the inode it checked, never the name again.
//
// # Ids and privilege
//
// Container ids 0..Config.UIDCount-1 map to host ids from UIDStart (a
// subordinate range no host user has: host root is never mapped). The
// plugin runs as container uid 0, which is host uid UIDStart, with empty
// capability sets (bounding included, so an exec as uid 0 gains nothing)
// and no_new_privs (setuid bits and file capabilities do nothing). Its user
// namespace is created by root, so no host process gains capabilities in it,
// and creating another one, the only way an unprivileged process regains
// capabilities, is refused by seccomp (unshare, setns, clone with
// CLONE_NEWUSER, clone3). Being uid 0 inside gives the plugin the owner's
// rights over what the image's root owns (read-only) and over its own /tmp
// and socket dir; nothing of the host is owned by UIDStart. All sandboxes
// share UIDStart; they meet in no namespace and no file, but share per-uid
// kernel accounting (the pids cgroup, not RLIMIT_NPROC, bounds processes).
//
// # The image at /target
//
// Each layer dir is mounted below the sandbox's dir with an id-mapped mount
// (open_tree, mount_setattr MOUNT_ATTR_IDMAP through a user namespace with
// the sandboxes' mapping, move_mount), read-only, nosuid, nodev, noexec;
// a read-only overlay of those mounts (layers top first, as overlayfs's
// lowerdir) is bound at /target. A single layer is bound directly
// (overlayfs needs two lower dirs without an upper one). An image file
// owned by k on disk shows as host UIDStart+k, which is k in the sandbox:
// the plugin, as uid 0 without capabilities, reads image root's 0600 files
// (/etc/shadow, /root/.ssh/id_rsa) but not another user's 0600 files, and
// ids at or above UIDCount show as the overflow id (65534). overlayfs
// itself cannot be id-mapped (EINVAL), hence one mount per layer. Needs
// root and a layer file system that supports id-mapped mounts (ext4, xfs,
// btrfs, tmpfs; kernel 5.19 or later for overlayfs on them).
//
// # Cgroups
//
// See cgroup.go: assay-sandboxes/<id> relative to assayd's own cgroup,
// through libcontainer's fs managers: on this cgroup v1 host (hybrid) in
// every v1 hierarchy and in the v2 one; on a v2 host below the parent of
// assayd's cgroup, with cpu.weight converted from CPUShares. A sandbox
// whose cgroup cannot be created does not start. A memory limit reached
// (the kernel's OOM kill count) or a pids limit reached (a failed fork)
// kills the whole sandbox; Wait then returns an *ExitError saying so, and
// Reason(err) gives "out of memory (limit 256 MiB)".
//
// # Clean-up
//
// A sandbox ends in one place (supervise): its container is destroyed
// (cgroups, libcontainer state), its mounts are unmounted and its dir is
// removed, whether the plugin exited, was killed by Kill or a limit, or
// go-plugin only called Wait. Sandboxes die with assayd (parent-death
// signal, see Init). Cleanup removes what is left after a crash: run it at
// start, before NewManager.
//
// # What assayd's main must do
//
// Call Init first thing in main (and TestMain of any test binary that
// starts sandboxes): the sandbox's init is the same binary re-executed as
// "<argv0> init". The binary must be built with cgo (libcontainer's nsenter
// is C) and, for the seccomp filter, -tags seccomp with libseccomp-dev
// installed; without the tag NewManager refuses unless DisableSeccomp is
// set. Importing this package also pins the main goroutine to the main
// thread (see init.go). assayd must run as root; NewManager says
// "sandbox: assayd must run as root" otherwise.
package sandbox
