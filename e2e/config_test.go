package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func assayd(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	// A daemon that wrongly starts is stopped after a while and counts as a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "assayd"), args...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// Flags beat the environment, which beats the file, which beats defaults.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "assayd.yaml")
	os.WriteFile(file, []byte("scan:\n  concurrency: 3\n  timeout: 7m\nlog:\n  level: warn\nstate_dir: /srv/file\n"), 0o600)
	out, code := assayd(t, []string{"ASSAY_SCAN_CONCURRENCY=5", "ASSAY_LOG_LEVEL=error"},
		"config", "print", "--config", file, "--scan.concurrency", "9")
	if code != 0 {
		t.Fatalf("config print: %d\n%s", code, out)
	}
	for _, want := range []string{
		"concurrency: 9",               // flag over env and file
		"level: error",                 // env over file
		"timeout: 7m0s",                // file over default
		"state_dir: /srv/file",         // file over default
		"path: /run/assay/assayd.sock", // default
	} {
		if !strings.Contains(out, want) {
			t.Errorf("effective config lacks %q:\n%s", want, out)
		}
	}
}

// Every kind of bad configuration stops the daemon at start with an error
// naming the key; `config validate` says the same of a file.
func TestConfigValidationErrors(t *testing.T) {
	cases := []struct {
		name, file string
		env, args  []string
		key        string
		ownPaths   bool // the case sets socket.path or state_dir itself
	}{
		{name: "unknown key", file: "scan:\n  concurrancy: 2\n", key: "scan.concurrancy"},
		{name: "unknown section", file: "scanner:\n  concurrency: 2\n", key: "scanner"},
		{name: "wrong type", file: "scan:\n  concurrency: many\n", key: "scan.concurrency"},
		{name: "duration without unit", file: "scan:\n  timeout: 5\n", key: "scan.timeout"},
		{name: "negative size", file: "api:\n  max_body_bytes: -1\n", key: "api.max_body_bytes"},
		{name: "relative socket", file: "socket:\n  path: run/assayd.sock\n", key: "socket.path", ownPaths: true},
		{name: "concurrency 0", file: "scan:\n  concurrency: 0\n", key: "scan.concurrency"},
		{name: "bad log format", file: "log:\n  format: xml\n", key: "log.format"},
		{name: "unknown group", file: "socket:\n  group: no-such-group-assay\n", key: "socket.group"},
		{name: "bad env", env: []string{"ASSAY_SCAN_CONCURRENCY=-4"}, key: "scan.concurrency"},
		{name: "bad flag", args: []string{"--scan.timeout", "-1s"}, key: "scan.timeout"},
		{name: "relative state_dir flag", args: []string{"--state_dir", "state"}, key: "state_dir", ownPaths: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTempDir(t)
			file := filepath.Join(dir, "assayd.yaml")
			os.WriteFile(file, []byte(tc.file), 0o600)
			args := []string{"--config", file}
			if !tc.ownPaths {
				args = append(args, "--socket.path", filepath.Join(dir, "s.sock"), "--state_dir", filepath.Join(dir, "st"))
			}
			args = append(args, tc.args...)
			out, code := assayd(t, tc.env, args...)
			if code == 0 || !strings.Contains(out, tc.key) {
				t.Fatalf("assayd started (exit %d) or did not name %s:\n%s", code, tc.key, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "s.sock")); err == nil {
				t.Fatal("a socket was created by a daemon with a bad configuration")
			}
			if tc.file != "" {
				out, code := assayd(t, nil, "config", "validate", file)
				if code == 0 || !strings.Contains(out, tc.key) {
					t.Fatalf("config validate: exit %d, no %s:\n%s", code, tc.key, out)
				}
			}
		})
	}
	out, code := assayd(t, nil, "config", "validate", "../configs/assayd.yaml")
	if code != 0 {
		t.Fatalf("the shipped configs/assayd.yaml does not validate:\n%s", out)
	}
	if out, code := assayd(t, nil, "--config", "/nonexistent/assayd.yaml"); code == 0 || !strings.Contains(out, "/nonexistent/assayd.yaml") {
		t.Fatalf("a missing named config file: exit %d\n%s", code, out)
	}
}
