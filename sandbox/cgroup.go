package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/fscommon"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer/specconv"

	// The cgroup managers need it to apply device rules (eBPF on v2).
	_ "github.com/opencontainers/cgroups/devices"
)

// Cgroups. Each sandbox gets the cgroup <parent>/<id> (id starts with
// idPrefix), inside assayd's own, so that the service's limits (TasksMax,
// MemoryMax, KillMode) cover its sandboxes:
//
//   - cgroup v1: cgroupParent, relative, which libcontainer places below
//     assayd's cgroup in every mounted hierarchy (and below its cgroup in
//     the v2 hierarchy of a hybrid host, which holds no controllers);
//   - cgroup v2: a cgroup holding processes cannot give controllers to
//     children, so assayd first moves its own processes (and containerd's,
//     if already started) into a leaf <own>/daemon, enables the memory,
//     pids and cpu controllers in <own>, and puts the sandboxes in
//     <own>/cgroupParent (absolute). systemd must delegate <own>
//     (Delegate=yes, as assayd.service does). Where that cannot be done
//     (assayd in the root cgroup, or sharing its cgroup with processes
//     not its own), the sandboxes go beside assayd's cgroup as before, and
//     the reason is logged.
//
// A sandbox never runs without its limits: when its cgroup cannot be made,
// starting it fails (RootlessCgroups, which would ignore that, is never set).
//
// assayd runs as root, so it may create cgroups. When it may not (a
// read-only /sys/fs/cgroup, no delegation), starting a sandbox fails with
// libcontainer's "container could not join or create cgroup" error: the
// sandbox never runs without its limits (RootlessCgroups, which would
// ignore the failure, is never set).
const (
	cgroupParent = "assay-sandboxes"
	idPrefix     = "assay-"
)

func cgroupConfig(id string, l limits, swapAccounting bool) *cgroups.Cgroup {
	var devs []*devconfig.Rule
	for _, d := range specconv.AllowedDevices {
		devs = append(devs, &d.Rule)
	}
	pids := l.pids
	r := &cgroups.Resources{
		Memory:    l.memory,
		PidsLimit: &pids,
		CpuShares: l.cpuShares,
		Devices:   devs,
	}
	if cgroups.IsCgroup2UnifiedMode() {
		r.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(l.cpuShares)
		r.MemorySwap = l.memory // swap.max 0; ignored without swap
	} else if swapAccounting {
		r.MemorySwap = l.memory
	}
	return &cgroups.Cgroup{Path: sandboxCgroupParent() + "/" + id, Resources: r}
}

var (
	parentOnce sync.Once
	parentPath = cgroupParent
	parentNote string // why the v2 delegation was not used, if it was not
)

// sandboxCgroupParent is the parent of the sandboxes' cgroups: relative
// (v1), or absolute below assayd's delegated cgroup (v2). The first call
// on v2 moves assayd's processes into their leaf.
func sandboxCgroupParent() string {
	parentOnce.Do(func() {
		if !cgroups.IsCgroup2UnifiedMode() {
			return
		}
		own, err := ownCgroupV2("/proc/self/cgroup")
		if err == nil {
			var p string
			if p, err = delegateV2(cgroupFS, "/sys/fs/cgroup", own, os.Getpid()); err == nil {
				parentPath = p
				return
			}
		}
		parentNote = err.Error()
	})
	return parentPath
}

// CgroupPlacement says where sandbox cgroups go and, on cgroup v2 when
// they cannot go inside assayd's own cgroup, why (else "").
func CgroupPlacement() (parent, note string) {
	p := sandboxCgroupParent()
	return p, parentNote
}

// ownCgroupV2 reads the process's v2 cgroup ("0::/path").
func ownCgroupV2(procFile string) (string, error) {
	b, err := os.ReadFile(procFile)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 line in %s", procFile)
}

// cgroupFiles reads and writes cgroup files (cgroupFS; tests use plain
// files instead).
type cgroupFiles struct {
	pids      func(dir string) ([]int, error)
	writeProc func(dir string, pid int) error
	write     func(dir, file, data string) error
}

var cgroupFS = cgroupFiles{cgroups.GetPids, cgroups.WriteCgroupProc, cgroups.WriteFile}

// delegateV2 makes own (a cgroup path below the v2 mount root) hold the
// sandboxes: every process in own moves into own/daemon, the controllers
// sandboxes need are enabled in own, and own/cgroupParent is returned.
// self must be one of own's processes: a cgroup shared with processes not
// assayd's is not taken over.
func delegateV2(fs cgroupFiles, root, own string, self int) (string, error) {
	if own == "/" || own == "" {
		return "", errors.New("assayd is in the root cgroup: its sandboxes go beside it")
	}
	dir := filepath.Join(root, own)
	pids, err := fs.pids(dir)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", dir, err)
	}
	if !slices.Contains(pids, self) {
		return "", fmt.Errorf("%s does not hold assayd (pid %d)", dir, self)
	}
	leaf := filepath.Join(dir, "daemon")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		return "", fmt.Errorf("cgroup %s is not delegated to assayd (Delegate=yes): %w", own, err)
	}
	for _, pid := range pids {
		if err := fs.writeProc(leaf, pid); err != nil && !errors.Is(err, syscall.ESRCH) {
			return "", fmt.Errorf("moving pid %d into %s: %w", pid, leaf, err)
		}
	}
	if err := fs.write(dir, "cgroup.subtree_control", "+memory +pids +cpu"); err != nil {
		return "", fmt.Errorf("enabling controllers in %s: %w", dir, err)
	}
	return filepath.Join(own, cgroupParent), nil
}

// v1SwapAccounting tells whether the v1 memory controller accounts swap
// (memory.memsw.*), without which a memory+swap limit cannot be set.
func v1SwapAccounting() bool {
	if cgroups.IsCgroup2UnifiedMode() {
		return false
	}
	mnt, err := cgroups.FindCgroupMountpoint("", "memory")
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(mnt, "memory.memsw.limit_in_bytes"))
	return err == nil
}

// cgroupParents returns the directories that hold our sandboxes' cgroups:
// one per v1 hierarchy (keyed by controller, "" for the v2 hierarchy of a
// hybrid host), or one ("") on a v2 host. Nothing is created.
func cgroupParents() (map[string]string, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: sandboxCgroupParent(), Resources: &cgroups.Resources{}})
	if err != nil {
		return nil, fmt.Errorf("finding cgroup paths: %w", err)
	}
	return m.GetPaths(), nil
}

// limitCounters reads how often the sandbox's cgroup hit its memory limit
// with an OOM kill and its pids limit with a failed fork.
func limitCounters(paths map[string]string) (oomKills, pidsMax uint64) {
	memPath, pidsPath := paths["memory"], paths["pids"]
	oomFile := "memory.oom_control"
	if cgroups.IsCgroup2UnifiedMode() {
		memPath, pidsPath = paths[""], paths[""]
		oomFile = "memory.events"
	}
	if memPath != "" {
		oomKills, _ = fscommon.GetValueByKey(memPath, oomFile, "oom_kill")
	}
	if pidsPath != "" {
		pidsMax, _ = fscommon.GetValueByKey(pidsPath, "pids.events", "max")
	}
	return oomKills, pidsMax
}

// memoryUsage is the cgroup's current memory charge, in bytes.
func memoryUsage(paths map[string]string) (uint64, error) {
	if cgroups.IsCgroup2UnifiedMode() {
		return fscommon.GetCgroupParamUint(paths[""], "memory.current")
	}
	return fscommon.GetCgroupParamUint(paths["memory"], "memory.usage_in_bytes")
}

// memoryPeak is the most memory the sandbox's cgroup held (v1
// memory.max_usage_in_bytes, v2 memory.peak); 0 when unknown.
func memoryPeak(paths map[string]string) uint64 {
	var v uint64
	var err error
	if cgroups.IsCgroup2UnifiedMode() {
		v, err = fscommon.GetCgroupParamUint(paths[""], "memory.peak")
	} else {
		v, err = fscommon.GetCgroupParamUint(paths["memory"], "memory.max_usage_in_bytes")
	}
	if err != nil {
		return 0
	}
	return v
}

// removeCgroup kills whatever is left in the cgroup dir and removes it.
func removeCgroup(dir string) error {
	for range 50 {
		pids, err := cgroups.GetAllPids(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cgroups.RemovePath(dir); err != nil {
		return fmt.Errorf("removing cgroup %s: %w", dir, err)
	}
	return nil
}

// killCgroupProcs kills every process in the sandbox id's cgroups.
func killCgroupProcs(id string) {
	parents, err := cgroupParents()
	if err != nil {
		return
	}
	for _, parent := range parents {
		pids, _ := cgroups.GetPids(filepath.Join(parent, id))
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// sweepCgroups removes our sandboxes' cgroups in every hierarchy and returns
// the ids it found.
func sweepCgroups() (map[string]bool, error) {
	parents, err := cgroupParents()
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	var errs []error
	for _, parent := range parents {
		entries, err := os.ReadDir(parent)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), idPrefix) {
				continue
			}
			ids[e.Name()] = true
			if err := removeCgroup(filepath.Join(parent, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return ids, errors.Join(errs...)
}

// ourCgroups lists the sandbox cgroups present, as "controller:path", for
// tests and diagnostics.
func ourCgroups() ([]string, error) {
	parents, err := cgroupParents()
	if err != nil {
		return nil, err
	}
	var out []string
	for ctrl, parent := range parents {
		entries, err := os.ReadDir(parent)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), idPrefix) {
				out = append(out, ctrl+":"+filepath.Join(parent, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
