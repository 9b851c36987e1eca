package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer"
)

// Cleanup removes what sandboxes of an earlier assayd left under stateDir
// and in the cgroup hierarchies: it kills their processes, destroys their
// containers (libcontainer state under stateDir/run), unmounts everything
// mounted below stateDir, removes our cgroups (the assay-sandboxes/assay-*
// cgroups in every v1 hierarchy and in v2) and the per-sandbox and socket
// dirs, and last the private bind NewManager made of stateDir on itself.
// It returns how many sandboxes it found. Run it at start, before
// NewManager, and after a test's assayd is killed, while no Manager uses
// stateDir: it would destroy their sandboxes too.
func Cleanup(stateDir string) (removed int, err error) {
	if !filepath.IsAbs(stateDir) {
		return 0, fmt.Errorf("sandbox: cleanup: state dir %q is not absolute", stateDir)
	}
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	found := map[string]bool{}
	var errs []error
	runDir := filepath.Join(stateDir, "run")

	// Containers first: their processes hold the mounts and cgroups.
	entries, err := os.ReadDir(runDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		id := e.Name()
		found[id] = true
		if err := destroyContainer(runDir, id); err != nil {
			errs = append(errs, err)
		}
	}
	ids, err := sweepCgroups()
	if err != nil {
		errs = append(errs, err)
	}
	for id := range ids {
		found[id] = true
	}
	if _, err := unmountUnder(stateDir); err != nil {
		errs = append(errs, err)
	}
	for _, sub := range []string{"sandboxes", "sock", "run"} {
		dir := filepath.Join(stateDir, sub)
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range entries {
			if sub == "sandboxes" {
				found[e.Name()] = true
			}
			if err := removeDir(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Last, NewManager's private bind of stateDir on itself, which would
	// keep stateDir from being removed; the next NewManager makes it again.
	if _, err := unmountSelfBind(stateDir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return len(found), fmt.Errorf("sandbox: cleanup of %s: %w", stateDir, err)
	}
	return len(found), nil
}

// destroyContainer kills and destroys a leftover container; a state dir
// libcontainer cannot load is removed (its cgroups are swept separately).
func destroyContainer(runDir, id string) error {
	c, err := libcontainer.Load(runDir, id)
	if err != nil {
		if strings.HasPrefix(id, idPrefix) {
			return removeDir(filepath.Join(runDir, id))
		}
		return fmt.Errorf("loading leftover container %s: %w", id, err)
	}
	if st, err := c.Status(); err == nil && st != libcontainer.Stopped {
		_ = c.Signal(unix.SIGKILL)
		// Not our child: wait for it to go (reaped by whoever inherited it).
		for range 250 {
			if st, err := c.Status(); err != nil || st == libcontainer.Stopped {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := c.Destroy(); err != nil {
		return fmt.Errorf("destroying leftover container %s: %w", id, err)
	}
	return nil
}
