package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a helper process: an assayd that crashes with
// a sandbox running, or one that is not root.
const (
	helperEnv       = "ASSAY_SANDBOX_TEST_HELPER"
	helperStateEnv  = "ASSAY_SANDBOX_TEST_STATE"
	helperLayersEnv = "ASSAY_SANDBOX_TEST_LAYERS"
	helperBinEnv    = "ASSAY_SANDBOX_TEST_BIN"
	helperDeathEnv  = "ASSAY_SANDBOX_TEST_PDEATH"
)

func runHelper(mode string) int {
	switch mode {
	case "unprivileged":
		_, err := NewManager(Config{StateDir: os.Getenv(helperStateEnv)})
		fmt.Println(err)
		return 0
	case "crash":
		// Start a sandbox, say its pid, and wait to be killed.
		m, err := NewManager(Config{
			StateDir:      os.Getenv(helperStateEnv),
			noParentDeath: os.Getenv(helperDeathEnv) != "1",
		})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		var layers []string
		if l := os.Getenv(helperLayersEnv); l != "" {
			layers = strings.Split(l, ":")
		}
		sb, err := m.start(context.Background(), spec{
			binary: os.Getenv(helperBinEnv),
			layers: layers,
			lim:    m.cfg.tighten(Limits{}),
		})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println(sb.pid, sb.id)
		select {}
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// TestCleanupAfterCrash kills an assayd (a helper process) that has a
// sandbox running, then checks that Cleanup removes every trace of it.
func TestCleanupAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pdeath bool // whether the sandbox dies with its parent
	}{
		{"sandbox dies with assayd", true},
		{"sandbox outlives assayd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needIntegration(t)
			stateDir := testConfig(t).StateDir
			before := takeSnapshot(t, stateDir)
			upper, lower := makeLayers(t)

			cmd := exec.Command("/proc/self/exe", "-test.run=^$")
			cmd.Env = append(os.Environ(),
				helperEnv+"=crash",
				helperStateEnv+"="+stateDir,
				helperLayersEnv+"="+upper+":"+lower,
				helperBinEnv+"="+bin("idle"),
				helperDeathEnv+"="+map[bool]string{true: "1", false: "0"}[tc.pdeath],
			)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("helper: %q %v", line, err)
			}
			var pid int
			var id string
			if _, err := fmt.Sscan(line, &pid, &id); err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("helper said %q", line)
			}
			// The crash.
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()

			alive := func() bool {
				data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				return err == nil && !strings.Contains(string(data), ") Z ")
			}
			if tc.pdeath {
				deadline := time.Now().Add(5 * time.Second)
				for alive() && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if alive() {
					t.Errorf("sandbox %d outlived its parent despite the parent-death signal", pid)
				}
			} else if !alive() {
				t.Fatalf("sandbox %d died with its parent; the test wants it running", pid)
			}
			// Leftovers: the container, mounts, cgroups, dirs.
			if ms, _ := mountsUnder(stateDir); len(ms) == 0 {
				t.Errorf("no mounts left to clean up?")
			}
			if cgs, _ := ourCgroups(); len(cgs) == 0 {
				t.Errorf("no cgroups left to clean up?")
			}

			removed, err := Cleanup(stateDir)
			if err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if removed != 1 {
				t.Errorf("Cleanup removed %d sandboxes, want 1", removed)
			}
			if alive() {
				t.Errorf("sandbox %d still running after Cleanup", pid)
			}
			// The crashed Manager's private bind of its state dir stays (a
			// new Manager reuses it); the test removes it.
			_ = unix.Unmount(stateDir, unix.MNT_DETACH)
			after := waitSnapshot(t, stateDir, before)
			after.stateEntries, before.stateEntries = nil, nil
			if d := before.diff(after); d != "" {
				t.Errorf("left behind after Cleanup:\n%s", d)
			}
			for _, sub := range []string{"run", "sandboxes", "sock"} {
				ents, _ := os.ReadDir(filepath.Join(stateDir, sub))
				if len(ents) != 0 {
					t.Errorf("%s/%s not empty after Cleanup: %d entries", stateDir, sub, len(ents))
				}
			}
			if n, err := Cleanup(stateDir); err != nil || n != 0 {
				t.Errorf("second Cleanup: %d, %v", n, err)
			}
			_ = os.RemoveAll(stateDir)
		})
	}
}

// TestUnprivileged: a non-root assayd gets a clear error.
func TestUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		_, err := NewManager(Config{StateDir: t.TempDir()})
		if err == nil || err.Error() != "sandbox: assayd must run as root" {
			t.Fatalf("err = %v", err)
		}
		return
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=unprivileged", helperStateEnv+"=/nonexistent/state")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	exe, _ := os.Executable()
	if st, err := os.Stat(exe); err == nil && st.Mode().Perm()&0o005 != 0o005 {
		t.Skipf("the test binary %s is not executable by others", exe)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("cannot run the test binary as nobody: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "sandbox: assayd must run as root" {
		t.Errorf("got %q", got)
	}
	_ = strconv.Itoa
}
