package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// idmapMount mounts the directory src at dst read-only, nosuid, nodev and
// noexec, with its owners shown through the user namespace userns: an id k
// on disk appears as the host id that k maps to in userns, so inside a
// sandbox with the same mapping it appears as k again. Only root can make
// id-mapped mounts, and only of file systems that support them (ext4, xfs,
// btrfs, tmpfs since 6.3...; not overlayfs).
func idmapMount(src, dst string, userns int) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{
		Attr_set:    unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
		Userns_fd:   uint64(userns),
		Propagation: unix.MS_PRIVATE,
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("id-mapping %s (mount_setattr; the file system may not support id-mapped mounts): %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s to %s: %w", src, dst, err)
	}
	return nil
}

// overlayMount mounts a read-only overlay of lowers (top first) at dst.
// overlayfs needs at least two lower dirs when it has no upper dir.
func overlayMount(lowers []string, dst string) error {
	for _, l := range lowers {
		if strings.ContainsAny(l, ":,\\") {
			return fmt.Errorf("overlay lower dir %q has a character overlayfs options cannot hold", l)
		}
	}
	data := "lowerdir=" + strings.Join(lowers, ":")
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("overlay of %d layers: mount options are %d bytes, above the kernel's %d", len(lowers), len(data), os.Getpagesize())
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("overlay", dst, "overlay", flags, data); err != nil {
		return fmt.Errorf("mounting overlay of %d layers at %s: %w", len(lowers), dst, err)
	}
	return nil
}

// unmount detaches the mount at path; nothing mounted there is not an
// error. It retries a busy mount briefly, then detaches it lazily: the
// sandbox is gone, so nothing of ours can still be using it.
func unmount(path string) error {
	var err error
	for range 5 {
		err = unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			// Not a mount point (any more), or gone.
			return nil
		case errors.Is(err, unix.EBUSY):
			time.Sleep(10 * time.Millisecond)
			continue
		}
		break
	}
	if err2 := unix.Unmount(path, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH); err2 != nil && !errors.Is(err2, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}

// getMounts reads this thread's mount table. /proc/self is the main
// thread's view, which need not be ours (see init).
func getMounts(filter mountinfo.FilterFunc) ([]*mountinfo.Info, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := mountinfo.GetMountsFromReader(f, filter)
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return ms, nil
}

// mountsUnder lists mount points strictly below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	ms, err := getMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return !strings.HasPrefix(m.Mountpoint, dir+"/"), false
	})
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, m := range ms {
		paths = append(paths, m.Mountpoint)
	}
	// Deepest first; a mount point listed twice (stacked) is unmounted
	// twice.
	sort.SliceStable(paths, func(i, j int) bool {
		return strings.Count(paths[i], "/") > strings.Count(paths[j], "/")
	})
	return paths, nil
}

// unmountUnder unmounts everything below dir and reports how many mounts it
// removed.
func unmountUnder(dir string) (int, error) {
	paths, err := mountsUnder(dir)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, p := range paths {
		if err := unmount(p); err != nil {
			errs = append(errs, err)
		}
	}
	return len(paths), errors.Join(errs...)
}

// removeDir removes dir and its content, refusing if anything is still
// mounted below it: RemoveAll must never walk into an image.
func removeDir(dir string) error {
	left, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("not removing %s: %d mounts remain below it (%s)", dir, len(left), left[0])
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// privateSelfBind makes dir a mount point of its own with private
// propagation, unless it already is a mount point, so that sandbox mounts
// below it do not propagate into other mount namespaces that share the
// host's (systemd makes / shared). It reports whether it mounted.
func privateSelfBind(dir string) (bool, error) {
	dir = filepath.Clean(dir)
	ms, err := getMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil {
		return false, fmt.Errorf("checking whether %s is a mount point: %w", dir, err)
	}
	if len(ms) > 0 {
		return false, nil
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return false, fmt.Errorf("bind-mounting %s on itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		return false, fmt.Errorf("making %s private: %w", dir, err)
	}
	return true, nil
}

// checkTraversable reports the first directory on path's way from / that
// others cannot search. The sandbox's init resolves its root file system
// as the sandbox's root, which is nobody on the host.
func checkTraversable(path string) error {
	p := filepath.Clean(path)
	for {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() && st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s (on the way to %s) is mode %v: the sandbox needs o+x on every directory above its state", p, path, st.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
		p = filepath.Dir(p)
	}
}

// unmountSelfBind unmounts dir if it is a bind mount of itself, the private
// bind NewManager makes, and not a file system mounted there by an operator.
// It reports whether it unmounted.
func unmountSelfBind(dir string) (bool, error) {
	dir = filepath.Clean(dir)
	ms, err := getMounts(nil)
	if err != nil {
		return false, err
	}
	var self, parent *mountinfo.Info
	for _, m := range ms {
		switch {
		case m.Mountpoint == dir:
			self = m // the last one is on top
		case m.Mountpoint == "/" || strings.HasPrefix(dir, m.Mountpoint+"/"):
			if parent == nil || len(m.Mountpoint) >= len(parent.Mountpoint) {
				parent = m
			}
		}
	}
	if self == nil || parent == nil {
		return false, nil
	}
	rel, err := filepath.Rel(parent.Mountpoint, dir)
	if err != nil || self.Major != parent.Major || self.Minor != parent.Minor || self.Root != filepath.Join(parent.Root, rel) {
		return false, nil
	}
	return true, unmount(dir)
}
