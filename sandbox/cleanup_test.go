package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a helper process: an assayd that crashes with
// a sandbox running, or one that is not root.
const (
	helperEnv       = "ASSAY_SANDBOX_TEST_HELPER"
	helperStateEnv  = "ASSAY_SANDBOX_TEST_STATE"
	helperLayersEnv = "ASSAY_SANDBOX_TEST_LAYERS"
	helperBinEnv    = "ASSAY_SANDBOX_TEST_BIN"
)

func runHelper(mode string) int {
	switch mode {
	case "unprivileged":
		_, err := NewManager(Config{StateDir: os.Getenv(helperStateEnv)})
		fmt.Println(err)
		return 0
	case "crash":
		// Start a sandbox, say its pid once it runs, and wait to be killed.
		m, err := NewManager(Config{StateDir: os.Getenv(helperStateEnv)})
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
		// Wait for "ready" and keep reading, so that the sandbox can only
		// die of our death, not of a broken pipe.
		line, err := bufio.NewReader(sb.stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			fmt.Println("error:", line, err)
			return 1
		}
		go func() { _, _ = io.Copy(io.Discard, sb.stdout) }()
		go func() { _, _ = io.Copy(io.Discard, sb.stderr) }()
		fmt.Println(sb.pid, sb.id)
		select {}
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(data), ") Z ")
}

// TestCleanupAfterCrash kills an assayd (a helper process) that has a
// sandbox running: the sandbox dies with it (parent-death signal), and
// Cleanup then removes every trace of it.
func TestCleanupAfterCrash(t *testing.T) {
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
	var pid int
	var id string
	if _, serr := fmt.Sscan(line, &pid, &id); err != nil || serr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q (%v)", line, err)
	}
	// The crash.
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	deadline := time.Now().Add(5 * time.Second)
	for processAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if processAlive(pid) {
		t.Errorf("sandbox %d outlived its parent despite the parent-death signal", pid)
	}
	// Leftovers: the container's state, mounts, cgroups, dirs.
	if ms, _ := mountsUnder(stateDir); len(ms) == 0 {
		t.Errorf("no mounts left to clean up?")
	}
	if cgs, _ := ourCgroups(); len(cgs) == 0 {
		t.Errorf("no cgroups left to clean up?")
	}
	if ents, _ := os.ReadDir(filepath.Join(stateDir, "run")); len(ents) != 1 {
		t.Errorf("libcontainer state: %d entries, want 1", len(ents))
	}

	removed, err := Cleanup(stateDir)
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if removed != 1 {
		t.Errorf("Cleanup removed %d sandboxes, want 1", removed)
	}
	after := waitSnapshot(t, stateDir, before)
	after.stateEntries, before.stateEntries = nil, nil
	if d := before.diff(after); d != "" {
		t.Errorf("left behind after Cleanup:\n%s", d)
	}
	for _, sub := range []string{"run", "sandboxes", "sock"} {
		if ents, _ := os.ReadDir(filepath.Join(stateDir, sub)); len(ents) != 0 {
			t.Errorf("%s/%s not empty after Cleanup: %d entries", stateDir, sub, len(ents))
		}
	}
	if n, err := Cleanup(stateDir); err != nil || n != 0 {
		t.Errorf("second Cleanup: %d, %v", n, err)
	}
	_ = os.RemoveAll(stateDir)
}

// TestCleanupLiveSandbox: Cleanup kills and removes a sandbox that is still
// running (one whose assayd is gone without killing it: here, a Manager
// that simply never stops it).
func TestCleanupLiveSandbox(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	upper, lower := makeLayers(t)
	r := startProgram(t, m, nil, "idle", nil, []string{upper, lower}, Limits{})
	if l := r.firstLine(t); l != "ready" {
		t.Fatalf("first line %q", l)
	}
	pid := r.sb.pid
	removed, err := Cleanup(m.cfg.StateDir)
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if removed != 1 {
		t.Errorf("Cleanup removed %d sandboxes, want 1", removed)
	}
	if processAlive(pid) {
		t.Errorf("sandbox %d still running after Cleanup", pid)
	}
	// The Manager sees its sandbox die and finds nothing left to remove.
	_, _, err = r.wait(t)
	t.Logf("the abandoned sandbox's Wait: %v", err)
	if err == nil {
		t.Error("Wait = nil for a sandbox killed by Cleanup")
	}
	assertIdle(t, m)
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

// TestImageHiddenFromOtherUsers: while a sandbox runs, the image it reads
// is mounted on the host below its directory; no other user of the host
// (here nobody) can read a file of it, even one the image makes readable
// by all.
func TestImageHiddenFromOtherUsers(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	upper, lower := makeLayers(t)
	r := startProgram(t, m, nil, "idle", nil, []string{upper, lower}, Limits{})
	if l := r.firstLine(t); l != "ready" {
		t.Fatalf("first line %q", l)
	}
	defer r.sb.kill(context.Background())
	for _, p := range []string{
		filepath.Join(r.sb.dir, "target", "home", "user", "notes"),
		filepath.Join(r.sb.dir, "l", "1", "home", "user", "notes"),
	} {
		// Root can: the file is there, readable by all in the image.
		if _, err := os.ReadFile(p); err != nil {
			t.Fatalf("root cannot read %s: %v", p, err)
		}
		cmd := exec.Command("cat", p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("nobody read %s: %v %s", p, err, out)
		}
	}
}
