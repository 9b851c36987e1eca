package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/client"
)

// assayd under systemd-socket-activate serves the socket it is passed
// (LISTEN_FDS) instead of binding its own.
func TestSocketActivation(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Fatal("systemd-socket-activate missing: apt-get install systemd")
	}
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "activated.sock")
	cmd := exec.Command(sa, "-l", sock, filepath.Join(binDir, "assayd"),
		"--config", "/dev/null", "--state_dir", filepath.Join(dir, "state"),
		// A socket.path that is never bound: the daemon must use the passed socket.
		"--socket.path", filepath.Join(dir, "unused.sock"))
	cmd.Env = daemonEnv()
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	})
	c := client.New(sock)
	waitFor(t, 15*time.Second, "the activated daemon", func() bool {
		_, err := c.Health(context.Background())
		return err == nil
	})
	// The daemon answers on the socket a moment before it logs that it
	// serves.
	waitFor(t, 5*time.Second, "the daemon to report socket activation", func() bool {
		return strings.Contains(log.String(), "activated=true")
	})
	if _, err := os.Stat(filepath.Join(dir, "unused.sock")); !os.IsNotExist(err) {
		t.Fatalf("the daemon bound socket.path although a socket was passed: %v", err)
	}
}

// sd_notify: READY=1 once serving, WATCHDOG=1 when WATCHDOG_USEC is set,
// STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := shortTempDir(t)
	nsock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	d := &daemonProc{t: t, Sock: filepath.Join(dir, "a.sock"), State: filepath.Join(dir, "state"), log: &syncBuffer{},
		env: []string{"NOTIFY_SOCKET=" + nsock, "WATCHDOG_USEC=200000"}}
	// WATCHDOG_PID unset: the watchdog applies to this process.
	d.start()
	t.Cleanup(d.kill)
	want := func(s string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, s) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s notification", s)
			}
		}
	}
	want("READY=1")
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	d.cmd.Process.Signal(syscall.SIGTERM)
	want("STOPPING=1")
	d.cmd.Wait()
}

// SIGHUP re-reads the configuration: the log level changes at runtime; a
// broken file is reported and the running configuration stays.
func TestSighupReloadsLogLevel(t *testing.T) {
	dir := shortTempDir(t)
	cfg := filepath.Join(dir, "assayd.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log:\n  level: info\n")
	d := &daemonProc{t: t, Sock: filepath.Join(dir, "a.sock"), State: filepath.Join(dir, "state"), log: &syncBuffer{}}
	d.cmd = exec.Command(filepath.Join(binDir, "assayd"), "--config", cfg, "--socket.path", d.Sock, "--state_dir", d.State)
	d.cmd.Env = daemonEnv()
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.Client = client.New(d.Sock)
	t.Cleanup(d.kill)
	d.waitReady(15 * time.Second)
	d.Client.Health(context.Background())
	if strings.Contains(d.log.String(), "api request") {
		t.Fatal("debug lines at level info")
	}
	write("log:\n  level: debug\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "the reload", func() bool { return strings.Contains(d.log.String(), "configuration reloaded") })
	d.Client.Health(context.Background())
	waitFor(t, 5*time.Second, "a debug line", func() bool { return strings.Contains(d.log.String(), "api request") })

	write("log:\n  level: loud\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "the failed reload", func() bool { return strings.Contains(d.log.String(), "reload failed") })
	if !strings.Contains(d.log.String(), "log.level") {
		t.Fatalf("the reload error does not name the key:\n%s", d.log.String())
	}
	if _, err := d.Client.Health(context.Background()); err != nil {
		t.Fatalf("daemon unhealthy after a failed reload: %v", err)
	}
}
