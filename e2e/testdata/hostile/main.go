// Command hostile is an analyzer plugin that attacks its sandbox. One
// binary per behaviour is built with -ldflags "-X main.mode=MODE" (and
// -X main.port=PORT for "tcp"); its name is "hostile-MODE". What an attack
// achieved is reported as warnings ("mount: operation not permitted"), so
// the e2e test can read in the report that it failed.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
)

var (
	mode = "none"
	port = "0"
)

type hostile struct{}

func (hostile) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "hostile-" + mode, Version: "1", Kinds: []string{sdk.KindPackage}}, nil
}

func warn(emit sdk.Emitter, what string, err error) error {
	msg := "ok"
	if err != nil {
		msg = err.Error()
	}
	return emit.Warning(sdk.Warning{Message: what + ": " + msg})
}

func (hostile) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	switch mode {
	case "escape":
		// Each attempt reports what happened; the test wants them all refused.
		checks := []struct {
			what string
			fn   func() error
		}{
			{"write-target", func() error { return os.WriteFile(req.Root+"/pwned", []byte("x"), 0o644) }},
			{"read-host-shadow", func() error { _, err := os.ReadFile("/etc/shadow"); return err }},
			{"proc1-root-etc", func() error { _, err := os.ReadDir("/proc/1/root/etc"); return err }},
			{"parent-environ", func() error { _, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", os.Getppid())); return err }},
			{"mount", func() error { return syscall.Mount("none", "/tmp", "tmpfs", 0, "") }},
			{"ptrace", func() error {
				_, _, e := syscall.RawSyscall(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, 1, 0)
				return errnoErr(e)
			}},
			{"keyctl", func() error {
				_, _, e := syscall.RawSyscall(250 /* keyctl */, 0, 0, 0)
				return errnoErr(e)
			}},
			{"unshare", func() error { return syscall.Unshare(syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS) }},
			{"bpf", func() error {
				_, _, e := syscall.RawSyscall(321 /* bpf */, 0, 0, 0)
				return errnoErr(e)
			}},
			{"mknod", func() error { return syscall.Mknod("/tmp/dev", syscall.S_IFCHR|0o600, 1<<8|3) }},
			{"chown-caps", func() error {
				// Container root holds no capability: giving its own file
				// away (CAP_CHOWN) must fail.
				if err := os.WriteFile("/tmp/own", []byte("x"), 0o600); err != nil {
					return err
				}
				return os.Chown("/tmp/own", 1, 1)
			}},
		}
		for _, c := range checks {
			if err := warn(emit, c.what, c.fn()); err != nil {
				return err
			}
		}
		// The image's root-only files are readable through the id-mapped view.
		if data, err := os.ReadFile(req.Root + "/etc/shadow"); err == nil && len(data) > 0 {
			return warn(emit, "read-image-shadow", nil)
		} else {
			return warn(emit, "read-image-shadow", errors.Join(err, errors.New("empty")))
		}
	case "filltmp":
		// Fill /tmp: the sandbox's tmpfs must stop it at its size.
		f, err := os.Create("/tmp/fill")
		if err != nil {
			return warn(emit, "filltmp", err)
		}
		buf := make([]byte, 1<<20)
		var n int64
		for {
			w, err := f.Write(buf)
			n += int64(w)
			if err != nil {
				f.Close()
				return warn(emit, "filltmp", fmt.Errorf("%w after %d MiB", err, n>>20))
			}
			if n > 1<<30 {
				return warn(emit, "filltmp", nil)
			}
		}
	case "tcp":
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 2*time.Second)
		if c != nil {
			c.Close()
		}
		return warn(emit, "tcp-host", err)
	case "forkbomb":
		for {
			cmd := exec.Command("/proc/self/exe")
			cmd.Env = []string{"HOSTILE_CHILD=1"}
			_ = cmd.Start()
		}
	case "alloc":
		var hold [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			hold = append(hold, b)
		}
	case "spin":
		for {
		}
	case "crash":
		emit.Package(sdk.Package{Ecosystem: "Go", Name: "half", Version: "1"})
		os.Exit(3)
	}
	return nil
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func main() {
	if os.Getenv("HOSTILE_CHILD") == "1" {
		time.Sleep(time.Hour)
		return
	}
	if mode == "nohandshake" {
		time.Sleep(time.Hour)
		return
	}
	_ = strings.TrimSpace
	sdk.Serve(hostile{})
}
