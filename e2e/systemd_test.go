package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/scans"
)

// systemdRoot is a Debian 12 root with systemd, made once with debootstrap
// and kept outside the repository (about a minute and a half the first
// time; the mirror is the one apt uses).
func systemdRoot(t *testing.T) string {
	t.Helper()
	home, _ := os.UserHomeDir()
	cache := filepath.Join(home, ".cache", "assay-systemd")
	root := filepath.Join(cache, "root")
	if _, err := os.Stat(filepath.Join(root, "lib/systemd/systemd")); err == nil {
		return root
	}
	os.MkdirAll(cache, 0o755)
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus,libseccomp2,ca-certificates",
		"bookworm", tmp, "http://deb.debian.org/debian").CombinedOutput()
	if err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(err)
	}
	return root
}

// booted is a Debian 12 system booted by systemd-nspawn with systemd as
// PID 1, sharing this host's network (its loopback is ours).
type booted struct {
	root   string
	t      *testing.T
	nspawn *exec.Cmd
	leader int
}

func boot(t *testing.T) *booted {
	t.Helper()
	for _, tool := range []string{"debootstrap", "systemd-nspawn", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (e2e/deps.sh installs debootstrap and systemd-container)", tool)
		}
	}
	dir := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", "--reflink=auto", systemdRoot(t), dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the root: %v %s", err, out)
	}
	b := &booted{t: t}
	b.nspawn = exec.Command("systemd-nspawn", "-D", dir, "--register=no", "--keep-unit", "--boot", "--capability=all", "--console=read-only")
	log := &syncBuffer{}
	b.nspawn.Stdout, b.nspawn.Stderr = log, log
	if err := b.nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b.leader > 0 {
			b.run("systemctl", "poweroff")
		}
		done := make(chan struct{})
		go func() { b.nspawn.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.nspawn.Process.Signal(syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("systemd-nspawn output:\n%s", log.String())
		}
	})
	waitFor(t, 60*time.Second, "systemd as PID 1 in the container", func() bool {
		out, _ := exec.Command("pgrep", "-P", fmt.Sprint(b.nspawn.Process.Pid)).Output()
		fmt.Sscan(string(out), &b.leader)
		if b.leader == 0 {
			return false
		}
		state, _ := b.run("systemctl", "is-system-running")
		return strings.TrimSpace(state) == "running" || strings.TrimSpace(state) == "degraded"
	})
	b.root = dir
	return b
}

// run runs a command inside the booted system.
func (b *booted) run(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"-t", fmt.Sprint(b.leader), "-a"}, args...)...).CombinedOutput()
	return string(out), err
}

func (b *booted) must(args ...string) string {
	b.t.Helper()
	out, err := b.run(args...)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestUnderSystemd installs the Debian package on a Debian 12 booted with
// systemd as PID 1 and checks the service as systemd runs it: the socket
// starts it, READY=1 arrives, it scans an image from a registry on the
// host's loopback, stop drains, the watchdog restarts a hung daemon, a
// restart keeps every accepted scan, and the socket is the assay group's.
func TestUnderSystemd(t *testing.T) {
	if out, err := exec.Command("make", "-C", "..", "deb").CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob("../bin/assay_*_amd64.deb")
	if len(debs) == 0 {
		t.Fatal("no package")
	}
	reg := newRegistry(t)
	ref, _ := reg.pushImage(t, "library/debian:12", loadDebian(t))

	b := boot(t)
	data, err := os.ReadFile(debs[len(debs)-1])
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(b.root, "opt/assay.deb"), data, 0o644)
	// The container shares the host's network: no vulnerability data
	// fetching (the default reaches OSV's public archives).
	dropIn := filepath.Join(b.root, "etc/systemd/system/assayd.service.d")
	os.MkdirAll(dropIn, 0o755)
	os.WriteFile(filepath.Join(dropIn, "offline.conf"), []byte("[Service]\nEnvironment=ASSAY_VULNDB_SOURCES=\n"), 0o644)
	b.must("dpkg", "-i", "/opt/assay.deb")
	if out, _ := b.run("systemctl", "is-active", "assayd.socket"); strings.TrimSpace(out) != "active" {
		t.Fatalf("assayd.socket after install: %s", out)
	}
	if out, _ := b.run("systemctl", "is-active", "assayd.service"); strings.TrimSpace(out) == "active" {
		t.Errorf("assayd.service runs before any connection")
	}
	// The first connection starts the daemon; Type=notify: active means
	// READY=1 arrived.
	if out := b.must("assay", "health"); !strings.Contains(out, "builtin") {
		t.Errorf("health through socket activation: %s", out)
	}
	if out := b.must("systemctl", "show", "-p", "ActiveState,SubState", "assayd.service"); !strings.Contains(out, "ActiveState=active") || !strings.Contains(out, "SubState=running") {
		t.Errorf("after the first connection: %s", out)
	}

	// A scan of an image on the host's registry.
	out := b.must("sh", "-c", "assay scan --wait -o json "+ref+" 2>/dev/null")
	var rep struct {
		Packages  []struct{ Ecosystem string } `json:"packages"`
		Analyzers []struct{ Name, Status, Error string }
	}
	err = json.Unmarshal([]byte(out), &rep)
	var fs syscall.Statfs_t
	syscall.Statfs("/sys/fs/cgroup", &fs)
	switch {
	case err == nil && len(rep.Packages) >= 88:
	case fs.Type != 0x63677270 && err == nil && len(rep.Analyzers) > 0 && strings.Contains(rep.Analyzers[0].Error, "read-only file system"):
		// This host is cgroup v1: systemd-nspawn gives the container its
		// controller hierarchies (cpuset, memory, pids...) read-only, only
		// name=systemd is writable, so no sandbox cgroup can be made and
		// assayd refuses to run an analyzer without its limits. On a
		// cgroup v2 host the container's subtree is delegated.
		t.Logf("the scan ran and stored its report, but its analyzers could not start in a container on this cgroup v1 host: %s", rep.Analyzers[0].Error)
	default:
		journal, _ := b.run("journalctl", "-u", "assayd.service", "--no-pager")
		t.Errorf("the scan under systemd: %d packages, %v, analyzers %+v\njournal:\n%s", len(rep.Packages), err, rep.Analyzers, journal)
	}

	// Accepted scans survive a restart.
	for i := range 3 {
		b.must("assay", "scan", fmt.Sprintf("127.0.0.1:1/none/x%d:1", i))
	}
	b.must("systemctl", "restart", "assayd.service")
	out = b.must("sh", "-c", "assay status -o json 2>/dev/null")
	var st struct{ Scans []scans.Scan }
	json.Unmarshal([]byte(out), &st)
	if len(st.Scans) < 4 {
		t.Errorf("after systemctl restart: %d scans, want the 4 accepted: %s", len(st.Scans), out)
	}

	// Stop drains and exits cleanly.
	b.must("systemctl", "stop", "assayd.service")
	if out := b.must("systemctl", "show", "-p", "Result", "assayd.service"); strings.TrimSpace(out) != "Result=success" {
		t.Errorf("systemctl stop: %s", out)
	}

	// A hung daemon (SIGSTOP) is killed by the watchdog and restarted.
	b.must("assay", "health")
	pid := strings.TrimPrefix(strings.TrimSpace(b.must("systemctl", "show", "-p", "MainPID", "assayd.service")), "MainPID=")
	b.must("systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", "assayd.service")
	waitFor(t, 3*time.Minute, "the watchdog to restart the hung daemon", func() bool {
		now := strings.TrimPrefix(strings.TrimSpace(b.must("systemctl", "show", "-p", "MainPID", "assayd.service")), "MainPID=")
		return now != pid && now != "0"
	})
	if out := b.must("journalctl", "-u", "assayd.service", "--no-pager"); !strings.Contains(out, "Watchdog timeout") {
		t.Errorf("no watchdog timeout in the journal")
	}
	b.must("assay", "health")

	// The socket is the assay group's: a member uses it, another user not.
	b.must("useradd", "-M", "alice")
	b.must("useradd", "-M", "bob")
	b.must("gpasswd", "-a", "alice", "assay")
	if out, err := b.run("runuser", "-u", "alice", "--", "assay", "health"); err != nil {
		t.Errorf("a member of assay: %v %s", err, out)
	}
	if out, err := b.run("runuser", "-u", "bob", "--", "assay", "health"); err == nil || !strings.Contains(strings.ToLower(out), "permission denied") {
		t.Errorf("a user outside assay: %v %s", err, out)
	}
}
