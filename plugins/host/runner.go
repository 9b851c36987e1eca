package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// RunnerFunc starts a plugin; it is go-plugin's ClientConfig.RunnerFunc.
// cmd.Path is the host path of the verified copy of the binary, cmd.Args
// its argv, cmd.Env the complete environment the plugin needs (go-plugin's
// handshake variables, PLUGIN_UNIX_SOCKET_DIR set to tmpDir as seen by
// the host, sdk.LogLevelEnv); tmpDir is the per-run socket directory.
type RunnerFunc func(log hclog.Logger, cmd *exec.Cmd, tmpDir string) (runner.Runner, error)

// ResourceLimiter is an optional ability of a runner.Runner: after the
// plugin described itself, the host passes the resources it asked for,
// clamped to Options.Caps, so that the sandbox can lower its limits (it
// started the plugin at the caps). A failure is logged, not fatal: the
// caps still hold.
type ResourceLimiter interface {
	LimitResources(memoryBytes, pids int64) error
}

// execRunner runs a plugin as a plain child process, with no sandbox: it is
// what a nil Options.Runner means, for tests only. Unlike go-plugin's own
// runner it gives the plugin no stdin and retries a start that failed with
// ETXTBSY (the verified copy was just written; a concurrent fork elsewhere
// in the process may briefly hold its write descriptor).
type execRunner struct {
	tmpl *exec.Cmd

	mu             sync.Mutex
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
}

var _ runner.Runner = (*execRunner)(nil)

func newExecRunner(_ hclog.Logger, cmd *exec.Cmd, _ string) (runner.Runner, error) {
	return &execRunner{tmpl: cmd}, nil
}

func (r *execRunner) Start(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		cmd := exec.Command(r.tmpl.Path)
		cmd.Args = r.tmpl.Args
		cmd.Env = r.tmpl.Env
		cmd.Dir = r.tmpl.Dir
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			stdout.Close()
			return err
		}
		err = cmd.Start()
		if err == nil {
			r.mu.Lock()
			r.cmd, r.stdout, r.stderr = cmd, stdout, stderr
			r.mu.Unlock()
			return nil
		}
		stdout.Close()
		stderr.Close()
		if !errors.Is(err, syscall.ETXTBSY) || attempt >= 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (r *execRunner) Wait(context.Context) error {
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		return errors.New("host: plugin not started")
	}
	return cmd.Wait()
}

func (r *execRunner) Kill(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *execRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *execRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *execRunner) Name() string          { return r.tmpl.Path }

func (r *execRunner) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return ""
	}
	return strconv.Itoa(r.cmd.Process.Pid)
}

func (r *execRunner) Diagnose(context.Context) string { return "" }

func (r *execRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *execRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// tracked wraps the runner of one run. It records how the process ended
// and whether it ended on its own (before the host began to stop it),
// refuses an address outside the run's socket directory, filters the
// plugin's stderr (see logFilter), and lets the host kill the plugin while
// go-plugin is still waiting for its handshake.
type tracked struct {
	runner.Runner
	socketDir string
	stderr    *logFilter

	exited chan struct{} // closed when Wait returned

	mu       sync.Mutex
	started  bool
	stopping bool // the host or go-plugin began to stop the plugin
	killReq  bool
	selfExit bool // Wait returned before anyone began to stop it
	waitErr  error
	startErr error
}

func newTracked(r runner.Runner, socketDir string, maxLog int64) *tracked {
	return &tracked{Runner: r, socketDir: socketDir, stderr: newLogFilter(maxLog), exited: make(chan struct{})}
}

func (t *tracked) Start(ctx context.Context) error {
	err := t.Runner.Start(ctx)
	t.mu.Lock()
	t.started = err == nil
	t.startErr = err
	kill := t.started && t.killReq
	t.mu.Unlock()
	if kill {
		_ = t.Runner.Kill(context.Background())
	}
	return err
}

func (t *tracked) Wait(ctx context.Context) error {
	err := t.Runner.Wait(ctx)
	t.mu.Lock()
	t.waitErr = err
	t.selfExit = !t.stopping
	t.mu.Unlock()
	close(t.exited)
	return err
}

func (t *tracked) Kill(ctx context.Context) error {
	t.mu.Lock()
	t.stopping = true
	t.mu.Unlock()
	return t.Runner.Kill(ctx)
}

// abort kills the plugin now if it is running, or as soon as its runner
// has started it; it is safe to call while go-plugin's Start is running.
func (t *tracked) abort() {
	t.mu.Lock()
	t.stopping, t.killReq = true, true
	started := t.started
	t.mu.Unlock()
	if started {
		_ = t.Runner.Kill(context.Background())
	}
}

func (t *tracked) markStopping() {
	t.mu.Lock()
	t.stopping = true
	t.mu.Unlock()
}

// crash reports whether the process exited on its own, waiting up to grace
// for its exit to be noticed, and how it ended.
func (t *tracked) crash(grace time.Duration) (string, bool) {
	select {
	case <-t.exited:
	default:
		if grace <= 0 {
			return "", false
		}
		select {
		case <-t.exited:
		case <-time.After(grace):
			return "", false
		}
	}
	t.mu.Lock()
	self, werr := t.selfExit, t.waitErr
	t.mu.Unlock()
	if !self {
		return "", false
	}
	how := "exited with status 0"
	if werr != nil {
		how = werr.Error()
	}
	if p := t.stderr.panicLine(); p != "" {
		how += ": " + p
	}
	return how, true
}

func (t *tracked) hasStarted() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started, t.startErr
}

func (t *tracked) Stderr() io.ReadCloser { return t.stderr.attach(t.Runner.Stderr()) }

// PluginToHost accepts only a Unix socket inside the run's socket
// directory: the handshake line is the plugin's to write, and the host
// must not be talked into dialling anything else.
func (t *tracked) PluginToHost(pn, pa string) (string, string, error) {
	hn, ha, err := t.Runner.PluginToHost(pn, pa)
	if err != nil {
		return hn, ha, err
	}
	if hn != "unix" {
		return "", "", fmt.Errorf("the plugin offered a %q address; only a Unix socket in its socket directory is accepted", hn)
	}
	// A runner may hand back a descriptor of the socket it checked
	// (/proc/self/fd/N, so that the name cannot be swapped before the
	// dial): the socket it names is what must be in the directory.
	path := ha
	if strings.HasPrefix(ha, "/proc/self/fd/") {
		if path, err = os.Readlink(ha); err != nil {
			return "", "", fmt.Errorf("the plugin's socket %q: %w", ha, err)
		}
	}
	rel, err := filepath.Rel(t.socketDir, filepath.Clean(path))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", "", fmt.Errorf("the plugin offered the socket %q, outside its socket directory %s", path, t.socketDir)
	}
	return hn, ha, nil
}

// logLineMax is the longest stderr line that is looked at as a whole; it
// matches go-plugin's default PluginLogBufferSize, above which go-plugin
// does not parse a line either.
const logLineMax = 64 << 10

// logFilter sits between the plugin's stderr and go-plugin's log reader.
//
// It defuses lines that would crash the host: go-plugin (v1.8.0,
// log_entry.go parseJSON) asserts that "@message", "@level" and
// "@timestamp" of a JSON log line are strings, so a plugin printing
// {"@message":1} would panic a goroutine of assayd. Such lines are passed on
// as plain text. It also caps the bytes of log a plugin can put into
// assayd's log (the rest is read and dropped, so the plugin never blocks
// on a full pipe), and remembers the first "panic:" or "fatal error:" line
// for the crash report.
type logFilter struct {
	src io.ReadCloser
	br  *bufio.Reader
	max int64

	pending  []byte
	cont     bool // inside a line longer than logLineMax
	written  int64
	dropping bool

	mu     sync.Mutex
	panicL string
}

func newLogFilter(max int64) *logFilter { return &logFilter{max: max} }

func (f *logFilter) attach(src io.ReadCloser) *logFilter {
	f.src = src
	f.br = bufio.NewReaderSize(src, logLineMax)
	return f
}

func (f *logFilter) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		line, isPrefix, err := f.br.ReadLine()
		if err != nil {
			return 0, err
		}
		whole := !f.cont && !isPrefix
		first := !f.cont
		f.cont = isPrefix
		if f.dropping {
			continue
		}
		if first {
			f.notePanic(line)
		}
		switch {
		case whole && unsafeLogJSON(line):
			line = append([]byte("[WARN] malformed log line from the plugin: "), line...)
		case first && isPrefix:
			// Too long to check: make sure nobody parses it as JSON.
			line = append([]byte("[DEBUG] "), line...)
		}
		out := append(line[:len(line):len(line)], '\n')
		if isPrefix {
			out = line
		}
		if f.max > 0 && f.written+int64(len(out)) > f.max {
			f.dropping = true
			out = fmt.Appendf(nil, "\n[WARN] the plugin logged more than %d bytes; the rest of its log is dropped\n", f.max)
		}
		f.written += int64(len(out))
		f.pending = out
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

func (f *logFilter) Close() error { return f.src.Close() }

func (f *logFilter) notePanic(line []byte) {
	if !bytes.HasPrefix(line, []byte("panic: ")) && !bytes.HasPrefix(line, []byte("fatal error: ")) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicL == "" {
		s := string(line)
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		f.panicL = strings.ToValidUTF8(s, "?")
	}
}

func (f *logFilter) panicLine() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.panicL
}

// unsafeLogJSON reports whether go-plugin's parseJSON would panic on line.
func unsafeLogJSON(line []byte) bool {
	// JSON allows leading white space, and so does go-plugin's parser.
	if t := bytes.TrimLeft(line, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return false
	}
	var raw map[string]any
	if json.Unmarshal(line, &raw) != nil {
		return false
	}
	for _, k := range []string{"@message", "@level", "@timestamp"} {
		if v, ok := raw[k]; ok {
			if _, isString := v.(string); !isString {
				return true
			}
		}
	}
	return false
}
