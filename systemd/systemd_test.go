package systemd_test

// Checks for the systemd integration files in this directory.
//
// Two kinds of tests:
//   - static ones parse the files and run everywhere: required directives, hardening
//     directives that must stay out because they break assayd, and consistency between
//     the units, sysusers.d and tmpfiles.d;
//   - integration ones run systemd's own tools (systemd-analyze verify,
//     systemd-sysusers, systemd-tmpfiles). Without those tools they are skipped, unless
//     ASSAY_INTEGRATION=1 is set, in which case they fail: CI must install the systemd
//     package (and procps, which provides /bin/kill used by ExecReload=).
//
// How `systemd-analyze verify` is run, and why (found with systemd 252, Debian 12, in a
// container where PID 1 is not systemd; verify does not need a running systemd):
//   - the units are copied to a temporary directory and the ExecStart= binary is pointed
//     at a temporary executable: verify checks that every Exec*= binary exists and is
//     executable ("Command ... is not executable"), and /usr/local/bin/assayd is not
//     installed where the tests run. /bin/kill (ExecReload=) is checked as it is.
//   - both files are passed by path; verify puts their directory first in the unit
//     search path, so Requires=assayd.socket resolves to the copy under test.
//   - --recursive-errors=no: only errors in the named units decide the exit status,
//     not ones in system units pulled in as dependencies (sysinit.target, ...), which
//     vary between machines. With systemd 252 the flag matters in a second way: an
//     unknown directive (a typo) only makes verify exit non-zero when
//     --recursive-errors is given explicitly; without it the warning is printed and the
//     exit status is 0.
//   - --man=no: do not look up man pages for Documentation= (man-db may be absent).
//   - SYSTEMD_LOG_LEVEL=info is forced and other SYSTEMD_* variables are removed:
//     verify decides the exit status from what it logs, and an inherited
//     SYSTEMD_LOG_LEVEL=err hides the warnings AND turns the exit status to 0.
//   - a run passes if the exit status is 0 and no output line mentions our units.
//     Other output (noise about the host's own units on some machines) is only logged.
//   - TestVerifyRejectsBrokenUnits proves that this setup does fail on broken units.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	serviceFile  = "assayd.service"
	socketFile   = "assayd.socket"
	sysusersFile = "assay.sysusers.conf"
	tmpfilesFile = "assay.tmpfiles.conf"

	execStartBinary = "/usr/local/bin/assayd"
	execStart       = execStartBinary + " --config /etc/assay/assayd.yaml"
	socketPath      = "/run/assay/assayd.sock"
	runtimeDir      = "/run/assay"
	stateDir        = "/var/lib/assay"
	socketGroup     = "assay"
	shutdownDrain   = 30 * time.Second
)

// ---------------------------------------------------------------------------------
// Parsing helpers.

// unit is a parsed systemd unit file: section -> key -> values in file order.
type unit map[string]map[string][]string

// parseUnit reads a unit file the way systemd does for the purposes of these tests:
// "#" and ";" start comment lines, "[Section]" headers, "Key=Value" assignments, a
// trailing backslash continues a line, keys may repeat.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	var pending string
	for n, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				t.Fatalf("%s:%d: malformed section header %q", path, n+1, line)
			}
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a Key=Value line inside a section: %q", path, n+1, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		u[section][key] = append(u[section][key], value)
	}
	return u
}

// get returns the effective (last) value of key, and whether it is set.
func (u unit) get(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// words returns all space-separated words assigned to key over all its lines.
func (u unit) words(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// confEntries returns the non-comment lines of a sysusers.d/tmpfiles.d file, split into
// whitespace-separated fields (neither file uses quoted fields with spaces).
func confEntries(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Fields(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type tmpfilesEntry struct {
	typ, path, mode, user, group, age string
}

func tmpfilesEntries(t *testing.T) map[string]tmpfilesEntry {
	t.Helper()
	m := map[string]tmpfilesEntry{}
	for _, f := range confEntries(t, tmpfilesFile) {
		if len(f) < 6 {
			t.Fatalf("%s: entry %q: want 6 fields (type path mode user group age)", tmpfilesFile, strings.Join(f, " "))
		}
		if _, dup := m[f[1]]; dup {
			t.Fatalf("%s: duplicate entry for %s", tmpfilesFile, f[1])
		}
		m[f[1]] = tmpfilesEntry{f[0], f[1], f[2], f[3], f[4], f[5]}
	}
	return m
}

// systemdDuration parses the systemd time spans used in our units ("40s", "2min",
// "1min 30s") into a time.Duration. A bare number means seconds.
func systemdDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	units := map[string]time.Duration{
		"ms": time.Millisecond, "s": time.Second, "sec": time.Second,
		"m": time.Minute, "min": time.Minute, "h": time.Hour,
	}
	var total time.Duration
	for _, part := range strings.Fields(s) {
		i := strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' })
		num, suffix := part, "s"
		if i >= 0 {
			num, suffix = part[:i], part[i:]
		}
		n, err := strconv.Atoi(num)
		u, ok := units[suffix]
		if err != nil || !ok {
			t.Fatalf("cannot parse systemd time span %q", s)
		}
		total += time.Duration(n) * u
	}
	return total
}

// ---------------------------------------------------------------------------------
// Static checks: these run everywhere.

func TestServiceUnit(t *testing.T) {
	u := parseUnit(t, serviceFile)

	for _, key := range []string{"Requires", "After"} {
		if !slices.Contains(u.words("Unit", key), socketFile) {
			t.Errorf("[Unit] %s= must include %s (socket activation)", key, socketFile)
		}
	}

	want := []struct{ key, value, why string }{
		{"Type", "notify", "assayd sends READY=1 once the socket serves"},
		{"NotifyAccess", "main", "containerd (a child) must not be able to signal readiness"},
		{"ExecStart", execStart, "installed binary and config path"},
		{"ExecReload", "/bin/kill -HUP $MAINPID", "SIGHUP reloads the log level"},
		{"WatchdogSec", "30s", "assayd pings at WATCHDOG_USEC/2"},
		{"Restart", "on-failure", ""},
		{"RestartSec", "2s", ""},
		{"KillMode", "mixed", "SIGTERM to assayd only, SIGKILL to leftover containerd/sandboxes"},
		{"Delegate", "yes", "assayd manages cgroups for sandboxes"},
		{"StateDirectory", "assay", "/var/lib/assay"},
		{"StateDirectoryMode", "0711", ""},
		{"ProtectSystem", "strict", "assayd writes state_dir and /run/assay only"},
		{"ProtectHome", "yes", "assayd reads nothing in /home or /root"},
		{"PrivateTmp", "yes", "assayd keeps nothing in /tmp"},
		{"MemoryMax", "6G", "a ceiling for assayd, containerd and the sandboxes"},
		{"LockPersonality", "yes", ""},
		{"RestrictRealtime", "yes", ""},
		{"ProtectKernelModules", "yes", ""},
	}
	for _, w := range want {
		got, ok := u.get("Service", w.key)
		if !ok || got != w.value {
			t.Errorf("[Service] %s=%q, want %q (%s)", w.key, got, w.value, w.why)
		}
		if n := len(u["Service"][w.key]); n > 1 {
			t.Errorf("[Service] %s= is set %d times; set it once", w.key, n)
		}
	}

	stop, ok := u.get("Service", "TimeoutStopSec")
	if !ok {
		t.Errorf("[Service] TimeoutStopSec= missing")
	} else if d := systemdDuration(t, stop); d <= shutdownDrain || d > 2*shutdownDrain {
		t.Errorf("[Service] TimeoutStopSec=%s: want a bit more than the %v drain", stop, shutdownDrain)
	}
	for _, key := range []string{"LimitNOFILE", "TasksMax"} {
		if _, ok := u.get("Service", key); !ok {
			t.Errorf("[Service] %s= missing", key)
		}
	}

	families := u.words("Service", "RestrictAddressFamilies")
	for _, af := range []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"} {
		if !slices.Contains(families, af) {
			t.Errorf("RestrictAddressFamilies= lacks %s (got %v)", af, families)
		}
	}

	// The bounding set may only be narrowed with a deny list ("~..."), and must keep what
	// mounting, namespaces, cgroups and runc need.
	caps := u.words("Service", "CapabilityBoundingSet")
	if len(caps) > 0 && !strings.HasPrefix(caps[0], "~") {
		t.Errorf("CapabilityBoundingSet=%v: use a deny list (~CAP_...), see the comment in %s", caps, serviceFile)
	}
	if len(caps) > 0 {
		caps[0] = strings.TrimPrefix(caps[0], "~")
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_CHOWN",
		"CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_MKNOD", "CAP_SETFCAP", "CAP_NET_ADMIN",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_SYS_RESOURCE", "CAP_SYS_PTRACE", "CAP_AUDIT_WRITE"} {
		if slices.Contains(caps, c) {
			t.Errorf("CapabilityBoundingSet= drops %s, which assayd/containerd/runc need", c)
		}
	}

	// Settings that would break assayd. Each is explained in assayd.service.
	forbidden := []struct{ key, why string }{
		{"RuntimeDirectory", "removes or re-chowns /run/assay and the socket owned by assayd.socket"},
		{"NoNewPrivileges", "inherited by containerd/runc/sandboxes (setuid helpers, SELinux transitions)"},
		{"ProtectKernelTunables", "over-mounts in /proc make procfs mounts in sandbox user namespaces fail"},
		{"ProtectKernelLogs", "over-mounts /proc/kmsg: procfs mounts in sandbox user namespaces fail"},
		{"ProtectControlGroups", "assayd writes its delegated cgroup subtree"},
		{"ProtectHostname", "seccomp blocks sethostname() in sandbox UTS namespaces too"},
		{"ProtectClock", "implies a DeviceAllow= allow-list that the sandbox cgroups inherit"},
		{"PrivateDevices", "hides devices, drops CAP_MKNOD, closes the device policy"},
		{"DeviceAllow", "turns the device policy into an allow-list"},
		{"PrivateUsers", "assayd needs real root"},
		{"PrivateNetwork", "assayd pulls images over the network"},
		{"RestrictNamespaces", "assayd creates namespaces"},
		{"RestrictSUIDSGID", "layer extraction must recreate setuid/setgid files"},
		{"MemoryDenyWriteExecute", "inherited by sandboxes: breaks JITs there"},
		{"SystemCallArchitectures", "would block 32-bit programs in sandboxes"},
		{"ProcSubset", "hides /proc/sys and /proc/filesystems from runc"},
		{"DynamicUser", "assayd runs as root"},
	}
	for _, f := range forbidden {
		v, ok := u.get("Service", f.key)
		if !ok || f.key != "RuntimeDirectory" && slices.Contains([]string{"no", "false", "0", "off", ""}, v) {
			continue
		}
		t.Errorf("[Service] %s=%s must not be set: %s", f.key, v, f.why)
	}
	if v, ok := u.get("Service", "User"); ok && v != "root" {
		t.Errorf("[Service] User=%s: assayd must run as root (mounts, namespaces, cgroups)", v)
	}
	if v, _ := u.get("Service", "ProtectSystem"); v == "strict" {
		rw := u.words("Service", "ReadWritePaths")
		for _, p := range []string{stateDir, runtimeDir} {
			if !slices.Contains(rw, p) && !slices.Contains(rw, "-"+p) {
				t.Errorf("ProtectSystem=strict without ReadWritePaths=%s", p)
			}
		}
	}

	if got := u.words("Install", "Also"); !slices.Contains(got, socketFile) {
		t.Errorf("[Install] Also= should name %s, got %v", socketFile, got)
	}
}

func TestSocketUnit(t *testing.T) {
	u := parseUnit(t, socketFile)
	want := []struct{ section, key, value string }{
		{"Socket", "ListenStream", socketPath},
		{"Socket", "SocketMode", "0660"},
		{"Socket", "SocketUser", "root"},
		{"Socket", "SocketGroup", socketGroup},
		{"Socket", "DirectoryMode", "0750"},
		{"Socket", "Service", serviceFile},
		{"Install", "WantedBy", "sockets.target"},
	}
	for _, w := range want {
		if got, _ := u.get(w.section, w.key); got != w.value {
			t.Errorf("[%s] %s=%q, want %q", w.section, w.key, got, w.value)
		}
	}
	if n := len(u["Socket"]["ListenStream"]); n != 1 {
		t.Errorf("want exactly one ListenStream= (assayd takes the first unix listener), got %d", n)
	}
	if v, ok := u.get("Socket", "Accept"); ok && v != "no" && v != "false" {
		t.Errorf("Accept=%s: assayd expects the listening socket, not per-connection instances", v)
	}
}

func TestSysusersConf(t *testing.T) {
	var groups []string
	for _, f := range confEntries(t, sysusersFile) {
		switch f[0] {
		case "g":
			if len(f) < 2 {
				t.Fatalf("%s: malformed g entry %q", sysusersFile, strings.Join(f, " "))
			}
			groups = append(groups, f[1])
			if f[1] == socketGroup && (len(f) < 3 || f[2] != "-") {
				t.Errorf("%s: group %s should have a dynamically allocated GID (\"-\"), got %q", sysusersFile, socketGroup, strings.Join(f, " "))
			}
		case "u", "m", "r":
		default:
			t.Errorf("%s: unknown entry type in %q", sysusersFile, strings.Join(f, " "))
		}
	}
	if !slices.Contains(groups, socketGroup) {
		t.Errorf("%s: no \"g %s -\" entry; the socket group must be created", sysusersFile, socketGroup)
	}
}

func TestTmpfilesConf(t *testing.T) {
	m := tmpfilesEntries(t)
	want := []tmpfilesEntry{
		{"d", runtimeDir, "0750", "root", socketGroup, "-"},
		{"d", stateDir, "0711", "root", "root", "-"},
	}
	for _, w := range want {
		if got, ok := m[w.path]; !ok {
			t.Errorf("%s: no entry for %s", tmpfilesFile, w.path)
		} else if got != w {
			t.Errorf("%s: %s entry is %+v, want %+v", tmpfilesFile, w.path, got, w)
		}
	}
}

// The files describe the same directories and group; they must not drift apart.
func TestFilesAgree(t *testing.T) {
	svc, sock := parseUnit(t, serviceFile), parseUnit(t, socketFile)
	tmp := tmpfilesEntries(t)

	listen, _ := sock.get("Socket", "ListenStream")
	if dir := filepath.Dir(listen); tmp[dir].path == "" {
		t.Errorf("socket directory %s (from ListenStream=%s) has no tmpfiles.d entry", dir, listen)
	} else {
		group, _ := sock.get("Socket", "SocketGroup")
		if tmp[dir].group != group {
			t.Errorf("%s is group %q in %s but the socket is group %q: members could not reach the socket",
				dir, tmp[dir].group, tmpfilesFile, group)
		}
		if mode, _ := sock.get("Socket", "DirectoryMode"); tmp[dir].mode != mode {
			t.Errorf("%s mode: %s in %s, DirectoryMode=%s in %s", dir, tmp[dir].mode, tmpfilesFile, mode, socketFile)
		}
	}

	sd, _ := svc.get("Service", "StateDirectory")
	sdMode, _ := svc.get("Service", "StateDirectoryMode")
	e, ok := tmp["/var/lib/"+sd]
	if !ok {
		t.Errorf("no tmpfiles.d entry for StateDirectory=%s", sd)
	} else if e.mode != sdMode || e.user != "root" || e.group != "root" {
		t.Errorf("%s: tmpfiles.d says %s %s:%s, StateDirectoryMode=%s root:root; systemd and tmpfiles would fight",
			e.path, e.mode, e.user, e.group, sdMode)
	}
}

// ---------------------------------------------------------------------------------
// Integration checks with systemd's tools.

// requireTool returns the path of a systemd tool, or skips the test when it is missing
// (fails instead when ASSAY_INTEGRATION=1).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("ASSAY_INTEGRATION") == "1" {
		t.Fatalf("%s not found (ASSAY_INTEGRATION=1): install the systemd package (apt-get install -y systemd)", name)
	}
	t.Skipf("%s not found; install the systemd package, set ASSAY_INTEGRATION=1 to make this a failure", name)
	return ""
}

// toolEnv is the environment for systemd tools: no inherited SYSTEMD_* settings (log
// level, unit paths, pager, colors), and a log level that shows warnings.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SYSTEMD_") {
			env = append(env, kv)
		}
	}
	return append(env, "SYSTEMD_LOG_LEVEL=info", "SYSTEMD_LOG_COLOR=0", "SYSTEMD_LOG_LOCATION=0", "SYSTEMD_PAGER=cat")
}

func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = toolEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out", name, args)
	}
	return out.String(), err
}

// stageUnits copies both units into a fresh directory, applies edit to their contents
// (file name -> contents) and points ExecStart= at a stub executable in that directory.
// It returns the paths of the socket and service copies.
func stageUnits(t *testing.T, edit func(files map[string]string)) (dir, socket, service string) {
	t.Helper()
	dir = t.TempDir()
	stub := filepath.Join(dir, "bin", "assayd")
	if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, name := range []string{socketFile, serviceFile} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	old := "\nExecStart=" + execStartBinary + " "
	if n := strings.Count(files[serviceFile], old); n != 1 {
		t.Fatalf("%s: want exactly one line starting %q, found %d", serviceFile, strings.TrimSpace(old), n)
	}
	files[serviceFile] = strings.Replace(files[serviceFile], old, "\nExecStart="+stub+" ", 1)
	if edit != nil {
		edit(files)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, filepath.Join(dir, socketFile), filepath.Join(dir, serviceFile)
}

// verify runs systemd-analyze verify on the staged units. ok reports a clean result:
// exit status 0 and no output line about our units. ours holds those lines.
func verify(t *testing.T, analyze, dir, socket, service string) (ok bool, ours []string, output string) {
	t.Helper()
	out, err := runTool(t, analyze, "verify", "--man=no", "--recursive-errors=no", socket, service)
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.Contains(line, dir) || strings.Contains(line, "assay") {
			ours = append(ours, line)
		} else {
			t.Logf("systemd-analyze (not about our units, ignored): %s", line)
		}
	}
	if err != nil {
		if _, isExit := err.(*exec.ExitError); !isExit {
			t.Fatalf("running %s: %v", analyze, err)
		}
	}
	return err == nil && len(ours) == 0, ours, out
}

func TestVerifyUnits(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	dir, socket, service := stageUnits(t, nil)
	ok, ours, out := verify(t, analyze, dir, socket, service)
	if !ok {
		hint := ""
		if strings.Contains(out, "/bin/kill") {
			hint = "\n(/bin/kill is used by ExecReload=: install the procps package)"
		}
		t.Fatalf("systemd-analyze verify --man=no --recursive-errors=no %s %s failed.\nAbout our units:\n%s\nFull output:\n%s%s",
			socket, service, strings.Join(ours, "\n"), out, hint)
	}

	// Informational: systemd's own exposure rating of the service (not an assertion; the
	// score is high by nature for a root daemon that creates namespaces and mounts).
	if sec, err := runTool(t, analyze, "security", "--offline=yes", "--no-pager", service); err == nil {
		for _, line := range strings.Split(sec, "\n") {
			if strings.Contains(line, "Overall exposure level") {
				t.Log(strings.TrimSpace(line))
			}
		}
	}
}

// The verification must be able to fail: each broken copy of the units has to be
// rejected, with a message about our unit.
func TestVerifyRejectsBrokenUnits(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	replace := func(file, old, new string) func(map[string]string) {
		return func(files map[string]string) {
			if !strings.Contains(files[file], old) {
				t.Fatalf("%s does not contain %q", file, old)
			}
			files[file] = strings.Replace(files[file], old, new, 1)
		}
	}
	cases := []struct {
		name string
		edit func(map[string]string)
	}{
		{"invalid service type", replace(serviceFile, "\nType=notify\n", "\nType=notifyx\n")},
		{"unknown directive", replace(serviceFile, "\nKillMode=mixed\n", "\nKillMode=mixed\nKillModeTypo=mixed\n")},
		{"invalid kill mode", replace(serviceFile, "\nKillMode=mixed\n", "\nKillMode=mixedx\n")},
		{"missing executable", func(files map[string]string) {
			// What verify says about the real unit where assayd is not installed.
			lines := strings.Split(files[serviceFile], "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, "ExecStart=") {
					lines[i] = "ExecStart=/nonexistent/assayd --config /etc/assay/assayd.yaml"
				}
			}
			files[serviceFile] = strings.Join(lines, "\n")
		}},
		{"invalid socket mode", replace(socketFile, "\nSocketMode=0660\n", "\nSocketMode=0990\n")},
		{"unknown socket directive", replace(socketFile, "\nSocketGroup=assay\n", "\nSocketGroup=assay\nSocketGrup=assay\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, socket, service := stageUnits(t, tc.edit)
			ok, ours, out := verify(t, analyze, dir, socket, service)
			if ok {
				t.Fatalf("systemd-analyze verify accepted a broken unit; output:\n%s", out)
			}
			if len(ours) == 0 {
				t.Fatalf("verify failed, but without a message about our units; output:\n%s", out)
			}
			t.Logf("rejected as expected: %s", strings.Join(ours, " | "))
		})
	}
}

// Applies assay.sysusers.conf and assay.tmpfiles.conf to an empty alternate root with
// the real tools, as the install steps do on a host, and checks the result.
func TestSysusersTmpfilesApply(t *testing.T) {
	sysusers := requireTool(t, "systemd-sysusers")
	tmpfiles := requireTool(t, "systemd-tmpfiles")
	if os.Geteuid() != 0 {
		t.Skip("needs root: systemd-tmpfiles chowns the directories it creates")
	}
	abs := func(name string) string {
		p, err := filepath.Abs(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(t, sysusers, "--root="+root, abs(sysusersFile)); err != nil {
		t.Fatalf("systemd-sysusers --root=%s %s: %v\n%s", root, sysusersFile, err, out)
	}
	groupFile, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	gid := -1
	for _, line := range strings.Split(string(groupFile), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == socketGroup {
			if gid, err = strconv.Atoi(f[2]); err != nil {
				t.Fatalf("bad group line %q", line)
			}
		}
	}
	if gid < 0 {
		t.Fatalf("systemd-sysusers did not create group %s:\n%s", socketGroup, groupFile)
	}

	// tmpfiles resolves "assay" from the alternate root's /etc/group.
	if out, err := runTool(t, tmpfiles, "--root="+root, "--create", abs(tmpfilesFile)); err != nil {
		t.Fatalf("systemd-tmpfiles --root=%s --create %s: %v\n%s", root, tmpfilesFile, err, out)
	}
	for _, w := range []struct {
		path string
		mode os.FileMode
		uid  uint32
		gid  uint32
	}{
		{runtimeDir, 0o750, 0, uint32(gid)},
		{stateDir, 0o711, 0, 0},
	} {
		fi, err := os.Stat(filepath.Join(root, w.path))
		if err != nil {
			t.Errorf("%s not created: %v", w.path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != w.mode || st.Uid != w.uid || st.Gid != w.gid {
			t.Errorf("%s: dir=%v mode=%o owner=%d:%d, want directory %o %d:%d",
				w.path, fi.IsDir(), fi.Mode().Perm(), st.Uid, st.Gid, w.mode, w.uid, w.gid)
		}
	}

	// And the tools do reject broken entries, so the checks above can fail.
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte(fmt.Sprintf("d %s 0750 root no-such-group-assay -\n", runtimeDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(t, tmpfiles, "--root="+root, "--create", bad); err == nil {
		t.Errorf("systemd-tmpfiles accepted an entry with an unknown group:\n%s", out)
	}
}
