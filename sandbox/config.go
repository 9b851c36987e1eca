package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Defaults, the same as configs/assayd.yaml's sandbox section.
const (
	DefaultUIDStart   = 1000000000
	DefaultUIDCount   = 65536
	DefaultMemory     = 512 << 20
	DefaultPids       = 256
	DefaultCPUShares  = 512
	DefaultTmpfsBytes = 16 << 20
	DefaultLogBytes   = 1 << 20
)

// Config is the Manager's configuration: where sandboxes keep their state,
// the host ids their user namespaces map to, and the default limits of
// every sandbox. Zero fields take the defaults above.
type Config struct {
	// StateDir holds libcontainer state, per-sandbox root filesystems and
	// mount points, and go-plugin socket dirs. Absolute; created 0711
	// (the sandbox's init must be able to traverse it, nothing more).
	// Use a dedicated directory: Cleanup removes whatever it finds there.
	StateDir string

	// Container uids 0..UIDCount-1 map to host UIDStart..; likewise for
	// gids. Host uid 0 is never mapped: UIDStart and GIDStart must not be
	// 0. The plugin runs as container uid 0 (host UIDStart) with no
	// capabilities; image files are shown through the same mapping, so
	// image root owns what it owns on disk.
	UIDStart, UIDCount uint32
	GIDStart, GIDCount uint32 // default to UIDStart, UIDCount

	// Memory caps the sandbox's memory (cgroup memory limit, swap
	// included where the kernel accounts it; /tmp is charged too), bytes.
	Memory int64
	// Pids caps processes and threads in the sandbox.
	Pids int64
	// CPUShares is the sandbox's cgroup v1 cpu.shares (converted to
	// cpu.weight on cgroup v2).
	CPUShares uint64
	// TmpfsBytes is the size of the sandbox's /tmp.
	TmpfsBytes int64
	// LogBytes caps what is forwarded of each of the program's stdout and
	// stderr; the rest is read and dropped.
	LogBytes int64
	// Timeout is the default wall-clock limit of one sandbox; 0 means
	// none (the caller's context still applies).
	Timeout time.Duration

	// DisableSeccomp turns the seccomp filter off. The filter is on by
	// default and needs a binary built with cgo and -tags seccomp (and
	// libseccomp); NewManager fails without them unless this is set.
	DisableSeccomp bool
}

// Limits tighten a Manager's limits for one sandbox. A zero field keeps the
// Manager's value; a value above the Manager's is lowered to it: limits can
// be tightened per plugin, never loosened.
type Limits struct {
	Memory     int64
	Pids       int64
	CPUShares  uint64
	TmpfsBytes int64
	LogBytes   int64
	Timeout    time.Duration
}

func (c *Config) setDefaults() {
	if c.UIDStart == 0 && c.UIDCount == 0 {
		c.UIDStart, c.UIDCount = DefaultUIDStart, DefaultUIDCount
	}
	if c.GIDStart == 0 && c.GIDCount == 0 {
		c.GIDStart, c.GIDCount = c.UIDStart, c.UIDCount
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.Pids == 0 {
		c.Pids = DefaultPids
	}
	if c.CPUShares == 0 {
		c.CPUShares = DefaultCPUShares
	}
	if c.TmpfsBytes == 0 {
		c.TmpfsBytes = DefaultTmpfsBytes
	}
	if c.LogBytes == 0 {
		c.LogBytes = DefaultLogBytes
	}
}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !filepath.IsAbs(c.StateDir) {
		bad("StateDir must be an absolute path, got %q", c.StateDir)
	}
	checkRange := func(what string, start, count uint32) {
		switch {
		case start == 0:
			bad("%s range must not start at 0: host root is never mapped", what)
		case count == 0:
			bad("%s range must map at least 1 id", what)
		case uint64(start)+uint64(count) > 1<<32-1:
			bad("%s range %d:%d runs past the last mappable id", what, start, count)
		}
	}
	checkRange("uid", c.UIDStart, c.UIDCount)
	checkRange("gid", c.GIDStart, c.GIDCount)
	if c.Memory < 16<<20 {
		// The sandbox's init is assayd itself until it execs the plugin.
		bad("Memory must be at least 16 MiB, got %d", c.Memory)
	}
	if c.Pids < 8 {
		bad("Pids must be at least 8, got %d", c.Pids)
	}
	if c.CPUShares < 2 || c.CPUShares > 262144 {
		bad("CPUShares must be 2 to 262144, got %d", c.CPUShares)
	}
	if c.TmpfsBytes < 4096 {
		bad("TmpfsBytes must be at least 4096, got %d", c.TmpfsBytes)
	}
	if c.LogBytes < 0 || c.Timeout < 0 {
		bad("LogBytes and Timeout must not be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("sandbox: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// limits is what one sandbox gets: the Manager's, tightened by lim.
type limits struct {
	memory     int64
	pids       int64
	cpuShares  uint64
	tmpfsBytes int64
	logBytes   int64
	timeout    time.Duration
}

func (c *Config) tighten(lim Limits) limits {
	minPos := func(a, b int64) int64 {
		if b > 0 && b < a {
			return b
		}
		return a
	}
	l := limits{
		memory:     minPos(c.Memory, lim.Memory),
		pids:       minPos(c.Pids, lim.Pids),
		cpuShares:  c.CPUShares,
		tmpfsBytes: minPos(c.TmpfsBytes, lim.TmpfsBytes),
		logBytes:   minPos(c.LogBytes, lim.LogBytes),
		timeout:    c.Timeout,
	}
	if lim.CPUShares >= 2 && lim.CPUShares < l.cpuShares {
		l.cpuShares = lim.CPUShares
	}
	if lim.Timeout > 0 && (l.timeout == 0 || lim.Timeout < l.timeout) {
		l.timeout = lim.Timeout
	}
	return l
}
