package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/assayhq/assay/plugins/host"
	"github.com/assayhq/assay/plugins/sdk"
)

// binDir holds the plugin binaries TestMain builds: the example plugin and
// the hostile ones under testdata/.
var binDir string

var testPlugins = []string{
	"../example/cmd/assay-example",
	"./testdata/flood",
	"./testdata/crash",
	"./testdata/nohandshake",
	"./testdata/spin",
	"./testdata/logbomb",
	"./testdata/badaddr",
	"./testdata/broker",
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "assay-plugins-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Built as plugins are shipped: static, trimmed.
	args := append([]string{"build", "-trimpath", "-o", dir + "/"}, testPlugins...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugins: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's plugins directory, cache directory and host.
type env struct {
	t        *testing.T
	plugDir  string
	cacheDir string
	logs     *logBuffer
	opts     host.Options
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// The cache directory must be short: socket paths live under it.
	cache, err := os.MkdirTemp("", "assay-cache-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, plugDir: t.TempDir(), cacheDir: cache, logs: &logBuffer{t: t}}
	t.Cleanup(func() {
		e.logs.close()
		os.RemoveAll(cache)
	})
	e.opts = host.Options{
		Dir:            e.plugDir,
		CacheDir:       filepath.Join(cache, "c"),
		StartTimeout:   10 * time.Second,
		MaxResultBytes: 1 << 20,
		Caps:           sdk.Resources{MemoryBytes: 128 << 20, Pids: 64, Timeout: 2 * time.Minute},
		Logger:         slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug - 4})),
	}
	return e
}

func (e *env) host() *host.Host {
	e.t.Helper()
	h, err := host.New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// install copies a built plugin into the plugins directory as name and
// writes its manifest; version is what the plugin describes itself with.
func (e *env) install(name, bin, version string) host.Manifest {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(binDir, bin))
	if err != nil {
		e.t.Fatal(err)
	}
	file := "assay-" + name
	if err := os.WriteFile(filepath.Join(e.plugDir, file), data, 0o755); err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	m := host.Manifest{Name: name, Version: version, Binary: file, SHA256: hex.EncodeToString(sum[:])}
	e.writeManifest(m)
	return m
}

func (e *env) writeManifest(m host.Manifest) {
	e.t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.plugDir, m.Name+host.ManifestSuffix), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// checkClean asserts that a run left nothing behind: no child process, no
// process running a binary from the plugins or cache directory, nothing in
// the cache directory.
func (e *env) checkClean() {
	e.t.Helper()
	if procs := leftovers(e.plugDir, e.cacheDir); len(procs) > 0 {
		e.t.Errorf("processes left behind: %q", procs)
	}
	entries, err := os.ReadDir(e.opts.CacheDir)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, en := range entries {
		e.t.Errorf("left in the cache directory: %s", en.Name())
	}
}

// leftovers scans /proc for children of this process and for processes
// whose executable lies under one of dirs.
func leftovers(dirs ...string) []string {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", en.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(self) {
			out = append(out, fmt.Sprintf("child %d %s state %s", pid, stat[:i+1], f[0]))
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", en.Name(), "exe"))
		for _, d := range dirs {
			if exe != "" && strings.HasPrefix(exe, d) {
				out = append(out, fmt.Sprintf("%d %s", pid, exe))
			}
		}
	}
	return out
}

// logBuffer collects the host's log, and shows it in the test's output.
type logBuffer struct {
	t    *testing.T
	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.done && testing.Verbose() {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (l *logBuffer) close() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// collect runs m and returns its items.
func collect(ctx context.Context, h *host.Host, m host.Manifest, req sdk.Request) (host.Result, []sdk.Item, error) {
	var items []sdk.Item
	res, err := h.Run(ctx, m, req, func(it sdk.Item) error {
		items = append(items, it)
		return nil
	})
	return res, items, err
}

func debianRoot(t *testing.T) string {
	root := t.TempDir()
	for p, c := range map[string]string{
		"usr/lib/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
		"bin/sh":             "x",
		"etc/passwd":         "root:x:0:0::/root:/bin/sh\n",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(root, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	return root
}

// hostError asserts that err is a *host.Error with the given status and
// reason and a message containing want.
func hostError(t *testing.T, err error, status host.Status, reason host.Reason, want string) *host.Error {
	t.Helper()
	t.Logf("error: %v", err)
	var he *host.Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T) is not a *host.Error", err, err)
	}
	if he.Status != status || he.Reason != reason || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v\nwant status %s, reason %s, containing %q", err, status, reason, want)
	}
	if host.StatusOf(err) != status {
		t.Fatalf("StatusOf = %s, want %s", host.StatusOf(err), status)
	}
	return he
}

func TestRunExample(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	h := e.host()
	res, items, err := collect(ctxTimeout(t, time.Minute), h, m, sdk.Request{Root: debianRoot(t), MaxFiles: 100, MaxFileBytes: 1 << 20})
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, e.logs)
	}
	if host.StatusOf(err) != host.StatusOK {
		t.Errorf("StatusOf(nil) = %s", host.StatusOf(err))
	}
	var got []string
	for _, it := range items {
		if it.Warning == nil {
			t.Fatalf("unexpected item %+v", it)
		}
		got = append(got, it.Warning.Path+": "+it.Warning.Message)
	}
	want := []string{"/etc/os-release: distribution: Debian GNU/Linux 12 (bookworm)", "/: 3 regular files"}
	if !slices.Equal(got, want) {
		t.Errorf("items\n%q\nwant\n%q", got, want)
	}
	d := res.Description
	if d.Name != "example" || d.Version != "0.1.0" || d.Resources != (sdk.Resources{MemoryBytes: 64 << 20, Pids: 16, Timeout: time.Minute}) {
		t.Errorf("description = %+v", d)
	}
	if res.Items != 2 || res.Bytes <= 0 || res.Bytes != items[0].Size+items[1].Size {
		t.Errorf("result = %+v", res)
	}
	e.checkClean()
}

func TestDescribe(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	e.opts.Caps = sdk.Resources{MemoryBytes: 32 << 20, Timeout: 10 * time.Second}
	d, err := e.host().Describe(ctxTimeout(t, time.Minute), m)
	if err != nil {
		t.Fatal(err)
	}
	// Clamped to the caps where there is one, as asked where there is not.
	if d.Resources != (sdk.Resources{MemoryBytes: 32 << 20, Pids: 16, Timeout: 10 * time.Second}) {
		t.Errorf("resources = %+v", d.Resources)
	}
	e.checkClean()
}

// recordingRunner wraps the plain exec runner and records how it was
// called: what a sandbox's RunnerFunc receives.
type recordingRunner struct {
	mu     sync.Mutex
	calls  int
	cmd    *exec.Cmd
	tmpDir string
	limits [2]int64
}

func (r *recordingRunner) start(l hclog.Logger, cmd *exec.Cmd, tmpDir string) (runner.Runner, error) {
	r.mu.Lock()
	r.calls++
	r.cmd, r.tmpDir = cmd, tmpDir
	r.mu.Unlock()
	inner, err := host.NewExecRunner(l, cmd, tmpDir)
	if err != nil {
		return nil, err
	}
	return limitingRunner{inner, r}, nil
}

type limitingRunner struct {
	runner.Runner
	r *recordingRunner
}

func (l limitingRunner) LimitResources(mem, pids int64) error {
	l.r.mu.Lock()
	l.r.limits = [2]int64{mem, pids}
	l.r.mu.Unlock()
	return nil
}

func (r *recordingRunner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func TestRunnerContract(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	rec := &recordingRunner{}
	e.opts.Runner = rec.start
	e.opts.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Setenv("ASSAY_SECRET_OF_THE_HOST", "x")
	if _, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: debianRoot(t)}); err != nil {
		t.Fatal(err)
	}
	if rec.calls != 1 {
		t.Fatalf("runner called %d times", rec.calls)
	}
	if !strings.HasPrefix(rec.cmd.Path, e.opts.CacheDir+"/run-") || filepath.Base(rec.cmd.Path) != m.Binary {
		t.Errorf("cmd.Path = %s, want the verified copy under %s", rec.cmd.Path, e.opts.CacheDir)
	}
	if !strings.HasPrefix(rec.tmpDir, filepath.Dir(rec.cmd.Path)+"/") {
		t.Errorf("socket dir %s is not in the run directory %s", rec.tmpDir, filepath.Dir(rec.cmd.Path))
	}
	env := map[string]string{}
	for _, kv := range rec.cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, want := range map[string]string{
		sdk.Handshake.MagicCookieKey: sdk.Handshake.MagicCookieValue,
		"PLUGIN_UNIX_SOCKET_DIR":     rec.tmpDir,
		"PLUGIN_MULTIPLEX_GRPC":      "true",
		"PLUGIN_PROTOCOL_VERSIONS":   "1",
		sdk.LogLevelEnv:              "debug",
	} {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}
	if !strings.Contains(env["PLUGIN_CLIENT_CERT"], "BEGIN CERTIFICATE") {
		t.Error("no AutoMTLS client certificate in the environment")
	}
	for _, k := range []string{"ASSAY_SECRET_OF_THE_HOST", "PATH", "HOME"} {
		if _, ok := env[k]; ok {
			t.Errorf("the host's %s leaked into the plugin's environment", k)
		}
	}
	if rec.limits != [2]int64{64 << 20, 16} {
		t.Errorf("LimitResources got %v", rec.limits)
	}
	e.checkClean()
}

// With Options.SocketDir (the sandbox's SocketTempDir), go-plugin's socket
// directory is made there, and removed after the run, also when the runner
// failed to start.
func TestSocketDir(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	e.opts.SocketDir = filepath.Join(e.cacheDir, "s")
	if err := os.Mkdir(e.opts.SocketDir, 0o700); err != nil {
		t.Fatal(err)
	}
	rec := &recordingRunner{}
	e.opts.Runner = rec.start
	if _, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: debianRoot(t)}); err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(rec.tmpDir) != e.opts.SocketDir {
		t.Errorf("socket dir %s, want one in %s", rec.tmpDir, e.opts.SocketDir)
	}
	e.opts.Runner = func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) { return nil, errors.New("no sandbox") }
	if _, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()}); host.StatusOf(err) != host.StatusFailed {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(e.opts.SocketDir); len(ents) != 0 {
		t.Errorf("left in the socket directory: %v", ents)
	}
	e.checkClean()
}

func TestWrongSHA256IsRefused(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	m.SHA256 = strings.Repeat("ab", 32)
	rec := &recordingRunner{}
	e.opts.Runner = rec.start
	_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusFailed, host.ReasonRefused, "the manifest says "+m.SHA256+": refusing to run it")
	if rec.count() != 0 {
		t.Error("the runner was called for a binary that failed verification")
	}
	e.checkClean()
}

func TestBinaryReplacedAfterDiscover(t *testing.T) {
	e := newEnv(t)
	e.install("example", "assay-example", "0.1.0")
	ms, err := host.Discover(e.plugDir)
	if err != nil || len(ms) != 1 {
		t.Fatalf("Discover = %v, %v", ms, err)
	}
	// Another (valid, executable) plugin takes the example's place.
	crash, _ := os.ReadFile(filepath.Join(binDir, "crash"))
	if err := os.WriteFile(filepath.Join(e.plugDir, ms[0].Binary), crash, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &recordingRunner{}
	e.opts.Runner = rec.start
	_, _, err = collect(ctxTimeout(t, time.Minute), e.host(), ms[0], sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusFailed, host.ReasonRefused, "refusing to run it")
	if rec.count() != 0 {
		t.Error("the runner was called for a replaced binary")
	}
	e.checkClean()
}

// A swap between verification and start changes nothing: the verified
// copy is what runs.
func TestOnlyTheVerifiedCopyRuns(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	crash, _ := os.ReadFile(filepath.Join(binDir, "crash"))
	host.SetTestHookVerified(func(src string) {
		if err := os.WriteFile(src, crash, 0o755); err != nil {
			t.Error(err)
		}
	})
	defer host.SetTestHookVerified(nil)
	res, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: debianRoot(t)})
	if err != nil || res.Description.Name != "example" {
		t.Fatalf("Run = %+v, %v", res.Description, err)
	}
	e.checkClean()
}

func TestResultCap(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single=%v", single), func(t *testing.T) {
			e := newEnv(t)
			m := e.install("flood", "flood", "1")
			const max = 64 << 10
			e.opts.MaxResultBytes = max
			opts := map[string]string{"bytes": strconv.Itoa(10 * max)}
			if single {
				opts["single"] = "1"
			}
			start := time.Now()
			res, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir(), Options: opts})
			hostError(t, err, host.StatusFailed, host.ReasonResultCap, fmt.Sprintf("sent more than %d bytes", max))
			if res.Bytes > max {
				t.Errorf("%d bytes were handed on, the cap is %d", res.Bytes, max)
			}
			t.Logf("stopped after %v, %d items, %d bytes", time.Since(start), res.Items, res.Bytes)
			e.checkClean()
		})
	}
}

func TestCrash(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"exit", "the plugin process ended during analyze: exit status 3"},
		{"panic", "exit status 2: panic: crash plugin: boom"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e := newEnv(t)
			m := e.install("crash", "crash", "1")
			res, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir(), Options: map[string]string{"mode": tc.mode}})
			hostError(t, err, host.StatusFailed, host.ReasonCrashed, tc.want)
			if res.Items > 10 {
				t.Errorf("%d items", res.Items)
			}
			e.checkClean()
		})
	}
}

func TestUndeclaredKind(t *testing.T) {
	e := newEnv(t)
	m := e.install("crash", "crash", "1")
	_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir(), Options: map[string]string{"mode": "undeclared"}})
	hostError(t, err, host.StatusFailed, host.ReasonProtocol, "sent a finding but did not declare that kind")
	e.checkClean()
}

func TestNoHandshake(t *testing.T) {
	e := newEnv(t)
	m := e.install("nohandshake", "nohandshake", "1")
	e.opts.StartTimeout = 2 * time.Second
	start := time.Now()
	_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusFailed, host.ReasonHandshake, "timeout while waiting for plugin to start")
	if d := time.Since(start); d < 2*time.Second || d > 15*time.Second {
		t.Errorf("took %v with a 2s start timeout", d)
	}
	e.checkClean()
}

func TestDeadlineDuringHandshake(t *testing.T) {
	e := newEnv(t)
	m := e.install("nohandshake", "nohandshake", "1")
	start := time.Now()
	_, _, err := collect(ctxTimeout(t, 1*time.Second), e.host(), m, sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusTimeout, host.ReasonDeadline, "deadline passed while starting")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %v: the caller's deadline did not cut the 10s start timeout short", d)
	}
	e.checkClean()
}

func TestSpinTimesOut(t *testing.T) {
	e := newEnv(t)
	m := e.install("spin", "spin", "1")
	start := time.Now()
	res, items, err := collect(ctxTimeout(t, 2*time.Second), e.host(), m, sdk.Request{Root: t.TempDir()})
	he := hostError(t, err, host.StatusTimeout, host.ReasonDeadline, "deadline passed during analyze")
	if !errors.Is(he, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap context.DeadlineExceeded", err)
	}
	if len(items) != 1 || res.Description.Name != "spin" {
		t.Errorf("items %+v, description %+v", items, res.Description)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	e.checkClean()
}

func TestClampedTimeout(t *testing.T) {
	e := newEnv(t)
	m := e.install("spin", "spin", "1")
	e.opts.Caps.Timeout = time.Second
	_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusTimeout, host.ReasonDeadline, "deadline passed during analyze")
	e.checkClean()
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	m := e.install("spin", "spin", "1")
	ctx, cancel := context.WithCancel(ctxTimeout(t, time.Minute))
	_, err := e.host().Run(ctx, m, sdk.Request{Root: t.TempDir()}, func(sdk.Item) error {
		cancel()
		return nil
	})
	he := hostError(t, err, host.StatusFailed, host.ReasonCancelled, "cancelled during analyze")
	if !errors.Is(he, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
	e.checkClean()
}

func TestEmitError(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	errStore := errors.New("store full")
	_, err := e.host().Run(ctxTimeout(t, time.Minute), m, sdk.Request{Root: t.TempDir()}, func(sdk.Item) error { return errStore })
	he := hostError(t, err, host.StatusFailed, host.ReasonHost, "store full")
	if !errors.Is(he, errStore) {
		t.Errorf("%v does not wrap the emit error", err)
	}
	e.checkClean()
}

func TestLogBomb(t *testing.T) {
	e := newEnv(t)
	m := e.install("logbomb", "logbomb", "1")
	e.opts.MaxLogBytes = 256 << 10
	_, items, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	if err != nil || len(items) != 1 {
		t.Fatalf("Run = %v, %d items", err, len(items))
	}
	logs := e.logs.String()
	for _, want := range []string{
		`malformed log line from the plugin: {\"@message\":1}`,
		`malformed log line from the plugin:  {\"@level\":[\"error\"]`,
		`malformed log line from the plugin: {\"@message\":\"x\",\"@timestamp\":7}`,
		"the plugin logged more than 262144 bytes; the rest of its log is dropped",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if n := strings.Count(logs, strings.Repeat("y", 1000)); n > 300 {
		t.Errorf("%d of the plugin's 3000 long lines reached the log; the cap is 256 KiB", n)
	}
	e.checkClean()
}

func TestBadAddress(t *testing.T) {
	e := newEnv(t)
	m := e.install("badaddr", "badaddr", "1")
	_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusFailed, host.ReasonHandshake, `offered a "tcp" address`)
	e.checkClean()
}

func TestDescriptionMustMatchManifest(t *testing.T) {
	e := newEnv(t)
	m := e.install("other", "assay-example", "0.1.0")
	_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusFailed, host.ReasonProtocol, `describes itself as "example", its manifest says "other"`)
	// The version is the plugin's; the manifest's is informational.
	m = e.install("example", "assay-example", "9")
	res, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	if err != nil || res.Description.Version != "0.1.0" {
		t.Errorf("Run with another manifest version: %v, %+v", err, res.Description)
	}
	e.checkClean()
}

func TestRunnerFails(t *testing.T) {
	e := newEnv(t)
	m := e.install("example", "assay-example", "0.1.0")
	e.opts.Runner = func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
		return nil, errors.New("sandbox: no user namespaces")
	}
	_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	hostError(t, err, host.StatusFailed, host.ReasonStart, "sandbox: no user namespaces")
	e.checkClean()
}

func TestConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	ex := e.install("example", "assay-example", "0.1.0")
	spin := e.install("spin", "spin", "1")
	crash := e.install("crash", "crash", "1")
	h := e.host()
	root := debianRoot(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				_, _, errs[i] = collect(ctxTimeout(t, time.Minute), h, ex, sdk.Request{Root: root})
			case 1:
				_, _, errs[i] = collect(ctxTimeout(t, 3*time.Second), h, spin, sdk.Request{Root: root})
			case 2:
				_, _, errs[i] = collect(ctxTimeout(t, time.Minute), h, crash, sdk.Request{Root: root, Options: map[string]string{"mode": "exit"}})
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		want := []host.Status{host.StatusOK, host.StatusTimeout, host.StatusFailed}[i%3]
		if got := host.StatusOf(err); got != want {
			t.Errorf("run %d: %s (%v), want %s", i, got, err, want)
		}
	}
	e.checkClean()
}

// Run by hand, a plugin explains itself and exits (sdk.Serve checks the
// handshake cookie).
func TestPluginRunByHand(t *testing.T) {
	out, err := exec.Command(filepath.Join(binDir, "assay-example")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "This binary is a plugin") {
		t.Errorf("run by hand: %v\n%s", err, out)
	}
}

func TestNewChecksOptions(t *testing.T) {
	if _, err := host.New(host.Options{Dir: "x"}); err == nil {
		t.Error("New without CacheDir succeeded")
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 60))
	if _, err := host.New(host.Options{Dir: "x", CacheDir: long}); err == nil || !strings.Contains(err.Error(), "Unix socket") {
		t.Errorf("New with a long CacheDir: %v", err)
	}
	e := newEnv(t)
	if err := os.MkdirAll(e.opts.CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(e.opts.CacheDir, "run-stale"), 0o700)
	h := e.host()
	if fi, err := os.Stat(e.opts.CacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v, %v", fi.Mode(), err)
	}
	if err := h.RemoveStale(); err != nil {
		t.Fatal(err)
	}
	e.checkClean()
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := strings.Repeat("0a", 32)
	write("bin-b", "b")
	write("bin-a", "a")
	write("zeta.plugin.json", `{"name":"zeta","version":"1","binary":"bin-b","sha256":"`+strings.ToUpper(sum)+`"}`)
	write("alpha.plugin.json", `{"name":"alpha","version":"2","binary":"bin-a","sha256":"`+sum+`"}`)
	write("README", "not a manifest")
	ms, err := host.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []host.Manifest{
		{Name: "alpha", Version: "2", Binary: "bin-a", SHA256: sum},
		{Name: "zeta", Version: "1", Binary: "bin-b", SHA256: sum},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("Discover = %+v", ms)
	}

	for name, tc := range map[string]struct{ content, want string }{
		"json":     {`{"name":`, "bad.plugin.json: unexpected EOF"},
		"unknown":  {`{"name":"bad","version":"1","binary":"bin-a","sha256":"` + sum + `","sha":"x"}`, `unknown field "sha"`},
		"filename": {`{"name":"good","version":"1","binary":"bin-a","sha256":"` + sum + `"}`, `name "good" wants the file name good.plugin.json`},
		"missing":  {`{"name":"bad","version":"1","binary":"nope","sha256":"` + sum + `"}`, "binary nope: stat"},
		"path":     {`{"name":"bad","version":"1","binary":"../bin-a","sha256":"` + sum + `"}`, `invalid binary "../bin-a"`},
		"dotdot":   {`{"name":"bad","version":"1","binary":"..","sha256":"` + sum + `"}`, `invalid binary ".."`},
		"sha":      {`{"name":"bad","version":"1","binary":"bin-a","sha256":"abc"}`, `invalid sha256 "abc"`},
		"version":  {`{"name":"bad","binary":"bin-a","sha256":"` + sum + `"}`, `invalid version ""`},
		"trailing": {`{"name":"bad","version":"1","binary":"bin-a","sha256":"` + sum + `"} {}`, "data after the JSON object"},
	} {
		t.Run(name, func(t *testing.T) {
			write("bad.plugin.json", tc.content)
			defer os.Remove(filepath.Join(dir, "bad.plugin.json"))
			_, err := host.Discover(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.plugin.json") {
				t.Errorf("Discover = %v, want an error naming bad.plugin.json and containing %q", err, tc.want)
			}
		})
	}
	if _, err := host.Discover(filepath.Join(dir, "nope")); err == nil {
		t.Error("Discover of a missing directory succeeded")
	}
}

func TestLogFilter(t *testing.T) {
	in := strings.Join([]string{
		`{"@message":"fine","@level":"info"}`,
		`{"@message":1}`,
		"\t{\"@timestamp\":false}",
		`[1,2]`,
		`plain text`,
		`panic: first`,
		`panic: second`,
		strings.Repeat("{", 70<<10),
		`{"@level":{}}`,
	}, "\n") + "\n"
	f, panicLine := host.NewLogFilter(io.NopCloser(strings.NewReader(in)), 0)
	out, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 9 {
		t.Fatalf("%d lines out", len(lines))
	}
	for _, l := range lines {
		if host.UnsafeLogJSON([]byte(l)) {
			t.Errorf("unsafe line passed: %.80s", l)
		}
	}
	if lines[0] != `{"@message":"fine","@level":"info"}` || lines[4] != "plain text" {
		t.Errorf("good lines changed: %q, %q", lines[0], lines[4])
	}
	if !strings.HasPrefix(lines[7], "[DEBUG] {{{") || len(lines[7]) != 8+70<<10 {
		t.Errorf("long line: %.20q (%d bytes)", lines[7], len(lines[7]))
	}
	if panicLine() != "panic: first" {
		t.Errorf("panic line %q", panicLine())
	}

	f, _ = host.NewLogFilter(io.NopCloser(strings.NewReader(strings.Repeat("0123456789\n", 1000))), 100)
	out, _ = io.ReadAll(f)
	if len(out) > 200 || !strings.Contains(string(out), "logged more than 100 bytes") {
		t.Errorf("capped output: %q", out)
	}
}

func TestSlogBridge(t *testing.T) {
	var buf bytes.Buffer
	l := host.NewSlogHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if l.GetLevel() != hclog.Debug || l.IsTrace() || !l.IsDebug() {
		t.Errorf("level %v", l.GetLevel())
	}
	l.Info("go-plugin says", "k", 1)
	l.Named("assay-example").With("a", "b").Warn("the plugin says", "k", 2)
	l.Trace("dropped")
	got := buf.String()
	for _, want := range []string{
		"level=DEBUG msg=\"go-plugin says\" k=1",
		"level=WARN msg=\"the plugin says\" source=plugin logger=assay-example a=b k=2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "dropped") {
		t.Error("trace went through a debug logger")
	}
}

// The analyzer contract needs no connection broker: its stream is never
// opened, so a plugin cannot make the host keep an entry per message
// through it (go-plugin v1.8.0 never removes a knock's). The plugin sees
// every stream the host opens.
func TestBrokerIsRefused(t *testing.T) {
	e := newEnv(t)
	m := e.install("broker", "broker", "1")
	_, items, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: t.TempDir()})
	if err != nil || len(items) != 1 || items[0].Warning == nil {
		t.Fatalf("Run = %v, %+v", err, items)
	}
	if msg := items[0].Warning.Message; msg != "broker stream opened: false" {
		t.Errorf("the plugin says %q: the host opened the broker stream", msg)
	}
	e.checkClean()
}

// verifiedEnv is an env with VerifiedDir and the example plugin: inode is
// its kept verified copy's, run runs it once, replace puts other bytes in
// its binary's place (as a new file).
func verifiedEnv(t *testing.T) (e *env, m host.Manifest, inode func() uint64, run func() error, replace func([]byte)) {
	e = newEnv(t)
	e.opts.VerifiedDir = filepath.Join(t.TempDir(), "verified")
	m = e.install("example", "assay-example", "0.1.0")
	kept := filepath.Join(e.opts.VerifiedDir, m.SHA256, m.Binary)
	inode = func() uint64 {
		t.Helper()
		fi, err := os.Stat(kept)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	run = func() error {
		_, _, err := collect(ctxTimeout(t, time.Minute), e.host(), m, sdk.Request{Root: debianRoot(t)})
		return err
	}
	replace = func(data []byte) {
		os.Remove(filepath.Join(e.plugDir, m.Binary))
		os.WriteFile(filepath.Join(e.plugDir, m.Binary), data, 0o755)
	}
	return e, m, inode, run, replace
}

// With VerifiedDir, a binary verified once is not copied nor hashed again
// while its file is unchanged; a replaced file is verified again (and
// refused when it is not the manifest's).
func TestVerifiedCopyIsKept(t *testing.T) {
	e, m, inode, run, replace := verifiedEnv(t)
	if err := run(); err != nil {
		t.Fatal(err)
	}
	first := inode()
	if err := run(); err != nil {
		t.Fatal(err)
	}
	if inode() != first {
		t.Error("the unchanged binary was copied again")
	}
	// Another binary in its place, the manifest unchanged: refused.
	orig, _ := os.ReadFile(filepath.Join(e.plugDir, m.Binary))
	crash, _ := os.ReadFile(filepath.Join(binDir, "crash"))
	replace(crash)
	hostError(t, run(), host.StatusFailed, host.ReasonRefused, "refusing to run it")
	// The same bytes again, as a new file: verified again, runs.
	replace(orig)
	if err := run(); err != nil {
		t.Fatal(err)
	}
	if inode() == first {
		t.Error("a new file was not verified again")
	}
	e.checkClean()
}

// Prepare makes the verified copy before the first run, which then uses
// it; a binary that does not match its manifest is refused by Prepare.
func TestPrepareVerifiesBeforeTheFirstRun(t *testing.T) {
	e, m, inode, run, replace := verifiedEnv(t)
	if err := e.host().Prepare(m); err != nil {
		t.Fatal(err)
	}
	prepared := inode()
	if err := run(); err != nil {
		t.Fatal(err)
	}
	if inode() != prepared {
		t.Error("the first run copied the binary again")
	}
	crash, _ := os.ReadFile(filepath.Join(binDir, "crash"))
	replace(crash)
	hostError(t, e.host().Prepare(m), host.StatusFailed, host.ReasonRefused, "refusing to run it")
}
