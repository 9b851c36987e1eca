package sandbox

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// go-plugin's environment variables for its socket dir (plugin package
// constants EnvUnixSocketDir and EnvUnixSocketGroup).
const (
	envSocketDir   = "PLUGIN_UNIX_SOCKET_DIR"
	envSocketGroup = "PLUGIN_UNIX_SOCKET_GROUP"
)

// Runner runs a go-plugin plugin in a sandbox. It implements go-plugin's
// runner.Runner; get one from Manager.RunnerFunc.
type Runner struct {
	m       *Manager
	logger  hclog.Logger
	sp      spec
	hostDir string // go-plugin's socket dir on the host

	mu     sync.Mutex
	sb     *sandbox
	stdout *cappedReader
	stderr *cappedReader
	// socks are O_PATH descriptors of the plugin's sockets, which the
	// host dials as /proc/self/fd/N: the inode checked, whatever the
	// plugin does to the name later. Closed when the sandbox ends.
	socks []*os.File
}

var _ runner.Runner = (*Runner)(nil)

// RunnerFunc returns a go-plugin ClientConfig.RunnerFunc that starts
// cmd.Path (the verified plugin binary on the host; static, since the
// sandbox holds nothing else) as the init of a sandbox whose /target is an
// id-mapped read-only overlay of layers (image layer dirs, top first as in
// overlayfs's lowerdir; one dir for a single-layer image). lim tightens the
// Manager's limits; lim.Timeout is the wall-clock limit.
//
// go-plugin passes exec.Command("") when ClientConfig.Cmd is nil, as it
// must be with RunnerFunc: set cmd.Path (and Args) in a wrapper, or use
// RunnerFuncContext, which takes the binary. Set SkipHostEnv: cmd.Env is
// passed on whole, less go-plugin's socket variables, which are rewritten.
// Set UnixSocketConfig.TempDir to m.SocketTempDir(). The plugin's stdin is
// /dev/null whatever cmd.Stdin is.
func (m *Manager) RunnerFunc(layers []string, lim Limits) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return m.runnerFunc(nil, "", layers, nil, lim)
}

// RunnerFuncFiles is RunnerFunc for a plugin that reads layer blobs
// rather than a tree: files (open read-only by the caller, who closes
// them after the run) become the plugin's descriptors 3, 4, ... in order;
// there is no /target.
func (m *Manager) RunnerFuncFiles(files []*os.File, lim Limits) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return m.runnerFunc(nil, "", nil, files, lim)
}

// RunnerFuncContext is RunnerFunc with the caller's context, whose end
// (deadline or cancellation) kills the sandbox, and the binary to run
// (when not "", it replaces cmd.Path).
func (m *Manager) RunnerFuncContext(ctx context.Context, binary string, layers []string, lim Limits) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return m.runnerFunc(ctx, binary, layers, nil, lim)
}

func (m *Manager) runnerFunc(ctx context.Context, binary string, layers []string, files []*os.File, lim Limits) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	layers = append([]string(nil), layers...)
	files = append([]*os.File(nil), files...)
	ctxFrom := time.Now()
	return func(logger hclog.Logger, cmd *exec.Cmd, tmpDir string) (runner.Runner, error) {
		bin := binary
		if bin == "" {
			bin = cmd.Path
		}
		if bin == "" {
			// go-plugin made the socket dir and forgets it on this error.
			if tmpDir != "" {
				_ = os.RemoveAll(tmpDir)
			}
			return nil, errors.New("sandbox: no plugin binary: cmd.Path is empty (go-plugin passes exec.Command(\"\") with RunnerFunc); set it in a wrapper or use RunnerFuncContext")
		}
		var args []string
		if len(cmd.Args) > 1 {
			args = append(args, cmd.Args[1:]...)
		}
		if logger == nil {
			logger = hclog.NewNullLogger()
		}
		return &Runner{
			m:       m,
			logger:  logger,
			hostDir: tmpDir,
			sp: spec{
				binary:  bin,
				args:    args,
				env:     pluginEnv(cmd.Env, tmpDir),
				layers:  layers,
				files:   files,
				sockDir: tmpDir,
				lim:     m.cfg.tighten(lim),
				ctx:     ctx,
				ctxFrom: ctxFrom,
			},
		}, nil
	}
}

// pluginEnv is env with go-plugin's socket dir pointed at the sandbox's and
// its socket group dropped (no group names exist in the sandbox).
func pluginEnv(env []string, hostDir string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if strings.HasPrefix(kv, envSocketDir+"=") || strings.HasPrefix(kv, envSocketGroup+"=") {
			continue
		}
		out = append(out, kv)
	}
	if hostDir != "" {
		out = append(out, envSocketDir+"="+sockPath)
	}
	return out
}

// Start starts the sandbox. If it fails, everything is cleaned up,
// go-plugin's socket dir included (go-plugin's Kill skips a runner whose ID
// is empty).
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sb != nil {
		return errors.New("sandbox: runner already started")
	}
	sb, err := r.m.start(ctx, r.sp)
	if err != nil {
		if r.hostDir != "" {
			_ = os.RemoveAll(r.hostDir)
		}
		return err
	}
	r.sb = sb
	logf := func(format string, a ...any) { r.logger.Warn(fmt.Sprintf(format, a...)) }
	r.stdout = newCappedReader(sb.stdout, r.sp.lim.logBytes, "stdout", logf)
	r.stderr = newCappedReader(sb.stderr, r.sp.lim.logBytes, "stderr", logf)
	r.logger.Debug("plugin started in sandbox", "path", r.sp.binary, "sandbox", sb.id, "pid", sb.pid)
	return nil
}

// Wait waits for the plugin to end and the sandbox to be torn down. Its
// error is nil for exit status 0, else an *ExitError (see Reason), joined
// with any clean-up error. It can be called again for the same result.
func (r *Runner) Wait(ctx context.Context) error {
	sb := r.sandbox()
	if sb == nil {
		return errors.New("sandbox: not started")
	}
	err := sb.wait(ctx)
	select {
	case <-sb.done:
		// Both pipes are at EOF or nobody reads them any more.
		r.stdout.Close()
		r.stderr.Close()
		r.closeSocks()
		r.logger.Info("sandbox ended", "sandbox", sb.id, "peak_memory_bytes", sb.peak.Load())
	default:
	}
	return err
}

// PeakMemory is the most memory the sandbox held, known once it ended.
func (r *Runner) PeakMemory() uint64 {
	if sb := r.sandbox(); sb != nil {
		return sb.peak.Load()
	}
	return 0
}

// Kill kills the sandbox and waits for its teardown. Killing an ended
// sandbox does nothing.
func (r *Runner) Kill(ctx context.Context) error {
	sb := r.sandbox()
	if sb == nil {
		r.closeSocks()
		return nil
	}
	err := sb.kill(ctx)
	r.closeSocks()
	return err
}

// LimitResources lowers the running sandbox's memory and pids limits to
// what the plugin asked for (plugins/host's ResourceLimiter); it never
// raises them, and keeps at least 16 MiB and 8 pids. A limit below what the
// sandbox already uses fails (the kernel cannot reclaim enough) and leaves
// the limits as they were.
func (r *Runner) LimitResources(memoryBytes, pids int64) error {
	sb := r.sandbox()
	if sb == nil {
		return errors.New("sandbox: not started")
	}
	return sb.lower(memoryBytes, pids)
}

// Stdout is the plugin's stdout (go-plugin's handshake), capped.
func (r *Runner) Stdout() io.ReadCloser { return r.stdout }

// Stderr is the plugin's stderr (go-plugin forwards it to the logger),
// capped: past the Limits' LogBytes it is read and dropped.
func (r *Runner) Stderr() io.ReadCloser { return r.stderr }

// Name is the plugin binary's host path.
func (r *Runner) Name() string { return r.sp.binary }

// ID is the sandbox's id, "" before a successful Start.
func (r *Runner) ID() string {
	if sb := r.sandbox(); sb != nil {
		return sb.id
	}
	return ""
}

// Pid is the host pid of the plugin (the sandbox's init), 0 before Start.
func (r *Runner) Pid() int {
	if sb := r.sandbox(); sb != nil {
		return sb.pid
	}
	return 0
}

// Done is closed when the sandbox has ended and been torn down; nil
// before Start.
func (r *Runner) Done() <-chan struct{} {
	if sb := r.sandbox(); sb != nil {
		return sb.done
	}
	return nil
}

// Err is what Wait returns, once Done is closed.
func (r *Runner) Err() error {
	if sb := r.sandbox(); sb != nil {
		select {
		case <-sb.done:
			return sb.err
		default:
		}
	}
	return nil
}

// Diagnose explains a failed handshake.
func (r *Runner) Diagnose(context.Context) string {
	msg := "The plugin runs in a sandbox that holds only its binary: it must be a static executable (CGO_ENABLED=0) for this architecture."
	if sb := r.sandbox(); sb != nil {
		select {
		case <-sb.done:
			if sb.err != nil {
				msg += "\nThe sandbox ended: " + Reason(sb.err)
			}
		default:
		}
	}
	return msg
}

// PluginToHost turns the plugin's socket path into the host's.
func (r *Runner) PluginToHost(pluginNet, pluginAddr string) (string, string, error) {
	if pluginNet != "unix" {
		return "", "", fmt.Errorf("sandbox: the plugin listens on %s %s: only unix sockets in %s reach the host (the sandbox's network is its own loopback)", pluginNet, pluginAddr, sockPath)
	}
	rel, ok := under(pluginAddr, sockPath)
	if !ok || r.hostDir == "" || strings.Contains(rel, "/") {
		return "", "", fmt.Errorf("sandbox: plugin socket %s is not in %s", pluginAddr, sockPath)
	}
	// The plugin owns the dir: it could leave a symlink there, or swap
	// one in after a check, to make the host dial a socket of the host's.
	// So the name is opened once, without following a link, and the host
	// dials that inode through /proc/self/fd, never the name again.
	host := filepath.Join(r.hostDir, rel)
	fd, err := unix.Open(host, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", "", fmt.Errorf("sandbox: plugin socket %s: %w", pluginAddr, err)
	}
	f := os.NewFile(uintptr(fd), host)
	st, err := f.Stat()
	if err != nil || st.Mode().Type() != os.ModeSocket {
		f.Close()
		if err == nil {
			err = fmt.Errorf("not a socket (%v)", st.Mode().Type())
		}
		return "", "", fmt.Errorf("sandbox: plugin socket %s: %w", pluginAddr, err)
	}
	r.mu.Lock()
	r.socks = append(r.socks, f)
	r.mu.Unlock()
	return "unix", fmt.Sprintf("/proc/self/fd/%d", f.Fd()), nil
}

// closeSocks closes the descriptors PluginToHost kept.
func (r *Runner) closeSocks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.socks {
		f.Close()
	}
	r.socks = nil
}

// HostToPlugin turns a host socket path (go-plugin's broker) into the
// plugin's.
func (r *Runner) HostToPlugin(hostNet, hostAddr string) (string, string, error) {
	if hostNet != "unix" {
		return "", "", fmt.Errorf("sandbox: the plugin cannot reach %s %s: only unix sockets in the socket dir", hostNet, hostAddr)
	}
	rel, ok := under(hostAddr, r.hostDir)
	if !ok || r.hostDir == "" {
		return "", "", fmt.Errorf("sandbox: host socket %s is not in the plugin's socket dir %s", hostAddr, r.hostDir)
	}
	return "unix", filepath.Join(sockPath, rel), nil
}

// under returns path relative to dir if it is strictly below it.
func under(path, dir string) (string, bool) {
	rel, err := filepath.Rel(dir, filepath.Clean(path))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

func (r *Runner) sandbox() *sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sb
}

// cappedReader passes on the first limit bytes of f, then one note, then
// reads and drops the rest until EOF, so the program never blocks on a full
// pipe. It closes f at EOF.
type cappedReader struct {
	f     *os.File
	limit int64
	name  string
	warn  func(string, ...any)

	mu     sync.Mutex
	n      int64
	noted  bool
	closed bool
}

func newCappedReader(f *os.File, limit int64, name string, warn func(string, ...any)) *cappedReader {
	return &cappedReader{f: f, limit: limit, name: name, warn: warn}
}

func (r *cappedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.n < r.limit {
		if rest := r.limit - r.n; int64(len(p)) > rest {
			p = p[:rest]
		}
		k, err := r.f.Read(p)
		r.n += int64(k)
		if err != nil {
			r.Close()
		}
		return k, err
	}
	if !r.noted {
		r.noted = true
		if r.warn != nil {
			r.warn("sandbox: plugin %s exceeded %d bytes; the rest is dropped", r.name, r.limit)
		}
		note := fmt.Sprintf("\n[sandbox: %s truncated after %d bytes]\n", r.name, r.limit)
		return copy(p, note), nil
	}
	buf := make([]byte, 32<<10)
	for {
		if _, err := r.f.Read(buf); err != nil {
			r.Close()
			return 0, err
		}
	}
}

// Close closes the pipe; it can be called more than once.
func (r *cappedReader) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.f.Close()
}
