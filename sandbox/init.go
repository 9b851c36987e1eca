package sandbox

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer"

	// nsenter's cgo constructor sets up the namespaces of a sandbox's init
	// before the Go runtime starts; it does nothing in other processes.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// Init must be the first thing main (and TestMain of any test binary that
// starts sandboxes) calls. A sandbox's init is this same binary re-executed
// as "<argv0> init" by libcontainer: then Init sets up the sandbox and
// execs the plugin, and never returns. Otherwise it returns at once.
func Init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// nsexec forks this process twice before Go starts, and a fork
		// clears the parent-death signal libcontainer set on the first:
		// set it again, so a sandbox dies with the assayd that started it.
		// (Its parent is the Manager's starter thread, which lives as long
		// as the Manager; libcontainer restores the signal after changing
		// the process's ids, and the plugin's exec keeps it.)
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
		libcontainer.Init() // does not return
	}
}

// Keep the main goroutine on the main thread for good, so that no other
// goroutine ever runs there. libcontainer locks goroutines to threads and
// moves those threads into a container's mount namespace (to open mount
// sources); a locked goroutine that exits takes its thread with it, except
// the main thread, which Go cannot end: it is parked for good instead,
// still in the dead container's mount namespace, pinning that namespace
// and its mounts and making /proc/self/mountinfo (the main thread's view)
// show the container's mounts to the whole process. During init the main
// goroutine is on the main thread, so this lock holds it there.
func init() {
	runtime.LockOSThread()
}
