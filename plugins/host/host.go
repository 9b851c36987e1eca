package host

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/assayhq/assay/plugins/sdk"
)

// Defaults for zero Options fields.
const (
	DefaultStartTimeout   = 10 * time.Second
	DefaultMaxResultBytes = 64 << 20
	DefaultMaxLogBytes    = 1 << 20
)

// crashGrace is how long the host waits, after a call broke, for the
// plugin's exit to be noticed before it calls the failure an RPC error.
const crashGrace = 2 * time.Second

// killGrace is how long go-plugin's Kill (whose graceful part waits 2 s)
// may take before the host kills the plugin through its runner.
const killGrace = 5 * time.Second

// maxCacheDirLen keeps the host-side socket path (CacheDir/run-N/
// plugin-dirN/pluginN) within the 107 bytes a Unix socket path may have.
const maxCacheDirLen = 107 - len("/run-4294967295/plugin-dir4294967295/plugin4294967295")

// maxSocketDirLen is the same for Options.SocketDir.
const maxSocketDirLen = 107 - len("/plugin-dir4294967295/plugin4294967295")

// Options configure a Host.
type Options struct {
	// Dir is the plugins directory (plugins.dir): manifests and binaries.
	Dir string
	// CacheDir is a private directory (made 0700) where each run gets a
	// directory of its own with the verified copy of the binary and the
	// go-plugin socket directory. It must be short (at most 54 bytes),
	// because the socket path under it must fit a Unix socket address.
	CacheDir string
	// VerifiedDir, if set, is a private directory (made 0700) where the
	// verified copy of each plugin binary is kept, by SHA-256, and reused
	// while the file in Dir is unchanged (same device, inode, size,
	// modification and change times): a run then neither copies nor
	// hashes it again. Empty: every run copies and verifies.
	VerifiedDir string
	// SocketDir is where go-plugin makes each run's socket directory
	// (UnixSocketConfig.TempDir): the sandbox's SocketTempDir. It must
	// exist, and be short (at most 69 bytes). Empty: the run's own
	// directory in CacheDir.
	SocketDir string
	// Runner starts the plugin, normally in the sandbox. nil runs it as a
	// plain child process with the host's privileges, no isolation and no
	// limits: for tests only.
	Runner RunnerFunc
	// StartTimeout bounds go-plugin's handshake, and Describe.
	// Zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// MaxResultBytes caps the bytes of AnalyzeResponse messages (their
	// wire size) one run may receive; it also caps a single message.
	// Zero means DefaultMaxResultBytes.
	MaxResultBytes int64
	// MaxLogBytes caps what one run's plugin may log into the host's log.
	// Zero means DefaultMaxLogBytes.
	MaxLogBytes int64
	// Caps are the largest resources a plugin may get; a zero field puts
	// no cap on it. What a plugin asks for in Describe is clamped to them
	// (asking for nothing gets the cap), its Timeout bounds Analyze, and a
	// Runner that is a ResourceLimiter is told the rest.
	Caps sdk.Resources
	// Logger receives go-plugin's log and the plugin's own, bridged from
	// hclog. nil discards them.
	Logger *slog.Logger
}

// Host runs analyzer plugins. It is safe for concurrent use: every run has
// its own process, directory and connection.
type Host struct {
	o   Options
	log *slog.Logger
}

// New checks o, fills in defaults and makes o.CacheDir.
func New(o Options) (*Host, error) {
	if o.Dir == "" || o.CacheDir == "" {
		return nil, errors.New("host: Dir and CacheDir are required")
	}
	var err error
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if o.CacheDir, err = filepath.Abs(o.CacheDir); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if len(o.CacheDir) > maxCacheDirLen {
		return nil, fmt.Errorf("host: cache directory %s is longer than %d bytes: plugin socket paths under it would not fit a Unix socket address", o.CacheDir, maxCacheDirLen)
	}
	if o.SocketDir != "" {
		if o.SocketDir, err = filepath.Abs(o.SocketDir); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		if len(o.SocketDir) > maxSocketDirLen {
			return nil, fmt.Errorf("host: socket directory %s is longer than %d bytes: plugin socket paths under it would not fit a Unix socket address", o.SocketDir, maxSocketDirLen)
		}
		if fi, err := os.Stat(o.SocketDir); err != nil {
			return nil, fmt.Errorf("host: socket directory: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("host: socket directory %s is not a directory", o.SocketDir)
		}
	}
	if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("host: cache directory: %w", err)
	}
	if err := os.Chmod(o.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("host: cache directory: %w", err)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = DefaultMaxResultBytes
	}
	if o.MaxLogBytes <= 0 {
		o.MaxLogBytes = DefaultMaxLogBytes
	}
	if o.Caps.MemoryBytes < 0 || o.Caps.Pids < 0 || o.Caps.Timeout < 0 {
		return nil, errors.New("host: negative caps")
	}
	l := o.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Host{o: o, log: l}, nil
}

// RemoveStale removes the run directories that a previous assayd left in
// CacheDir, and its kept copies in VerifiedDir. Call it once at start,
// before any run.
func (h *Host) RemoveStale() error {
	entries, err := os.ReadDir(h.o.CacheDir)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	var errs []error
	if h.o.VerifiedDir != "" {
		errs = append(errs, os.RemoveAll(h.o.VerifiedDir))
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "run-") {
			errs = append(errs, os.RemoveAll(filepath.Join(h.o.CacheDir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// Result is what a run produced besides its items.
type Result struct {
	// Description is the plugin's own, with Resources clamped to the
	// caps. It is set once Describe succeeded, also when Analyze failed.
	Description sdk.Description
	// Items and Bytes count what was handed to emit.
	Items int64
	Bytes int64
}

// Describe verifies, starts and describes the plugin, then stops it.
func (h *Host) Describe(ctx context.Context, m Manifest) (sdk.Description, error) {
	res, err := h.run(ctx, m, nil, nil)
	return res.Description, err
}

// Run verifies m's binary, starts the verified copy, describes it, and
// runs one analysis of req, calling emit for each item in the order the
// plugin sent them. It stops the plugin and removes the run's files before
// it returns, whatever happened. ctx bounds everything after
// verification; its deadline reaches the plugin. A non-nil error is an
// *Error; items emitted before it stay emitted.
func (h *Host) Run(ctx context.Context, m Manifest, req sdk.Request, emit func(sdk.Item) error) (Result, error) {
	if emit == nil {
		return Result{}, errors.New("host: Run needs an emit function")
	}
	return h.run(ctx, m, &req, emit)
}

// testHookVerified, when set by a test, runs between verification and
// start with the path of the binary in the plugins directory.
var testHookVerified func(src string)

// run is one plugin run. req == nil only describes.
func (h *Host) run(ctx context.Context, m Manifest, req *sdk.Request, emit func(sdk.Item) error) (res Result, err error) {
	r := &run{h: h, m: m, log: h.log.With("analyzer", m.Name)}
	if err := m.Validate(); err != nil {
		return res, r.fail(StatusFailed, ReasonRefused, fmt.Errorf("manifest: %w", err))
	}
	if err := ctx.Err(); err != nil {
		return res, r.ctxFail(ctx, "before start")
	}
	dir, err := os.MkdirTemp(h.o.CacheDir, "run-")
	if err != nil {
		return res, r.fail(StatusFailed, ReasonHost, err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			r.log.Warn("removing the run directory", "dir", dir, "error", rmErr)
		}
	}()
	bin, err := h.verified(m, dir)
	if err != nil {
		return res, err
	}
	if testHookVerified != nil {
		testHookVerified(filepath.Join(h.o.Dir, m.Binary))
	}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     sdk.Handshake,
		Plugins:             sdk.PluginMap,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:            true,
		SkipHostEnv:         true,
		RunnerFunc:          r.runnerFunc(bin),
		StartTimeout:        h.o.StartTimeout,
		Logger:              newSlogHCLog(r.log),
		GRPCBrokerMultiplex: true,
		UnixSocketConfig:    &plugin.UnixSocketConfig{TempDir: cmp.Or(h.o.SocketDir, dir)},
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(int(min(h.o.MaxResultBytes, math.MaxInt32)))),
			grpc.WithChainStreamInterceptor(refuseBroker),
		},
	})
	defer r.stop(client)

	rpc, err := r.start(ctx, client)
	if err != nil {
		return res, err
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return res, r.fail(StatusFailed, ReasonHandshake, err)
	}
	c, ok := raw.(sdk.Client)
	if !ok {
		return res, r.fail(StatusFailed, ReasonHandshake, fmt.Errorf("dispensed %T", raw))
	}

	dctx, cancel := context.WithTimeout(ctx, h.o.StartTimeout)
	d, err := c.Describe(dctx)
	cancel()
	if err != nil {
		return res, r.callFail(dctx, "describe", err)
	}
	if err := d.Validate(); err != nil {
		return res, r.fail(StatusFailed, ReasonProtocol, err)
	}
	if d.Name != m.Name {
		return res, r.fail(StatusFailed, ReasonProtocol, fmt.Errorf("the plugin describes itself as %q, its manifest says %q", d.Name, m.Name))
	}
	if d.Version != m.Version {
		// The sha256 pins the binary; the version is what it says.
		r.log.Debug("the plugin's version differs from its manifest's", "version", d.Version, "manifest_version", m.Version)
	}
	d.Resources = clampResources(d.Resources, h.o.Caps)
	res.Description = d
	if req == nil {
		return res, nil
	}
	if rl, ok := r.runner().Runner.(ResourceLimiter); ok {
		if err := rl.LimitResources(d.Resources.MemoryBytes, d.Resources.Pids); err != nil {
			r.log.Warn("lowering the sandbox's limits to what the plugin asked for", "error", err)
		}
	}

	actx := ctx
	if d.Resources.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, d.Resources.Timeout)
		defer cancel()
	}
	layers := map[int]bool{}
	for _, l := range req.Layers {
		layers[l.Index] = true
	}
	err = c.Analyze(actx, *req, func(it sdk.Item) error {
		if err := it.Validate(); err != nil {
			return &protocolError{err}
		}
		switch k := it.Kind(); k {
		case sdk.KindWarning:
		case sdk.KindEntries, sdk.KindOwned, sdk.KindOSRelease, sdk.KindLayerEnd:
			if len(layers) == 0 {
				return &protocolError{fmt.Errorf("sent a %s item but was given no layers", k)}
			}
		default:
			if !d.Produces(k) {
				return &protocolError{fmt.Errorf("sent a %s but did not declare that kind (kinds %q)", k, d.Kinds)}
			}
		}
		if (len(layers) > 0 || it.Layer != 0) && !layers[it.Layer] {
			return &protocolError{fmt.Errorf("sent an item of layer %d, which it was not given", it.Layer)}
		}
		if res.Bytes+it.Size > h.o.MaxResultBytes {
			return &capError{h.o.MaxResultBytes}
		}
		res.Bytes += it.Size
		res.Items++
		if err := emit(it); err != nil {
			return &emitError{err}
		}
		return nil
	})
	if err != nil {
		return res, r.callFail(actx, "analyze", err)
	}
	return res, nil
}

// brokerStream is go-plugin's connection-broker stream, which the client
// opens to the plugin as it connects.
const brokerStream = "/plugin.GRPCBroker/StartStream"

// refuseBroker keeps the broker stream from opening: the analyzer contract
// needs no extra connections, and through that stream a plugin could make
// the host keep an entry per message for ever (go-plugin v1.8.0 never
// removes a knock's). Without the stream go-plugin's broker stops at once
// and whatever the plugin sends it is never read.
func refuseBroker(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method == brokerStream {
		return nil, status.Error(codes.PermissionDenied, "host: the plugin connection broker is not offered")
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// fileID tells whether a file is still the one verified.
type fileID struct {
	dev, ino, size       uint64
	mtime, ctime         int64
	mtimeNsec, ctimeNsec int64
}

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Sec, mtimeNsec: st.Mtim.Nsec, ctime: st.Ctim.Sec, ctimeNsec: st.Ctim.Nsec}, true
}

// Prepare verifies m's binary and keeps the verified copy (VerifiedDir),
// so that its first run does not pay for the copy: assayd prepares its
// enabled plugins at start. Without VerifiedDir it does nothing.
func (h *Host) Prepare(m Manifest) error {
	if h.o.VerifiedDir == "" {
		return nil
	}
	if err := m.Validate(); err != nil {
		return &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonRefused, Err: fmt.Errorf("manifest: %w", err)}
	}
	_, err := h.verified(m, "")
	return err
}

// verifiedCopies remembers, per VerifiedDir and SHA-256, which file of the
// plugins directory the kept copy was verified from.
var (
	verifiedMu     sync.Mutex
	verifiedCopies = map[string]fileID{}
)

// verified returns the path of a verified copy of m's binary: the kept
// one (VerifiedDir) while the source is unchanged, else a fresh copy,
// into VerifiedDir or the run's dir.
func (h *Host) verified(m Manifest, runDir string) (string, error) {
	if h.o.VerifiedDir == "" {
		p, _, err := h.copyVerified(m, runDir)
		return p, err
	}
	key := h.o.VerifiedDir + "\x00" + m.SHA256
	// <sha256>/<binary>: the file keeps its name, which the plugin's log
	// lines carry.
	kept := filepath.Join(h.o.VerifiedDir, m.SHA256, m.Binary)
	if fi, err := os.Stat(filepath.Join(h.o.Dir, m.Binary)); err == nil {
		if id, ok := idOf(fi); ok {
			verifiedMu.Lock()
			was, seen := verifiedCopies[key]
			verifiedMu.Unlock()
			if st, err := os.Lstat(kept); seen && was == id && err == nil && st.Mode().IsRegular() {
				return kept, nil
			}
		}
	}
	if err := os.MkdirAll(h.o.VerifiedDir, 0o700); err != nil {
		return "", &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonHost, Err: err}
	}
	tmp, err := os.MkdirTemp(h.o.VerifiedDir, "tmp-")
	if err != nil {
		return "", &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonHost, Err: err}
	}
	defer os.RemoveAll(tmp)
	p, id, err := h.copyVerified(m, tmp)
	if err != nil {
		return "", err
	}
	// A run still using the previous copy keeps its inode.
	if err := os.MkdirAll(filepath.Dir(kept), 0o700); err != nil {
		return "", &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonHost, Err: err}
	}
	if err := os.Rename(p, kept); err != nil {
		return "", &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonHost, Err: err}
	}
	verifiedMu.Lock()
	verifiedCopies[key] = id
	verifiedMu.Unlock()
	return kept, nil
}

// copyVerified copies the binary into dir, hashing what it copies, and
// returns the copy's path (and which file it was copied from) if the hash
// is the manifest's. The copy, in a directory only the host can reach, is
// what runs: replacing the file in the plugins directory after this point
// changes nothing.
func (h *Host) copyVerified(m Manifest, dir string) (string, fileID, error) {
	refuse := func(err error) error {
		return &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonRefused, Err: err}
	}
	srcPath := filepath.Join(h.o.Dir, m.Binary)
	src, err := os.Open(srcPath)
	if err != nil {
		return "", fileID{}, refuse(err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return "", fileID{}, refuse(err)
	}
	if !fi.Mode().IsRegular() {
		return "", fileID{}, refuse(fmt.Errorf("%s is not a regular file", srcPath))
	}
	id, _ := idOf(fi)
	dstPath := filepath.Join(dir, m.Binary)
	// Executable and readable by all (the sandbox may run the plugin as
	// another uid through a bind mount of this one file), writable by
	// none; the directory around it is private.
	dst, err := os.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o555)
	if err != nil {
		return "", fileID{}, &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonHost, Err: err}
	}
	hash := sha256.New()
	_, cerr := io.Copy(io.MultiWriter(dst, hash), src)
	if err := errors.Join(cerr, dst.Close()); err != nil {
		os.Remove(dstPath)
		return "", fileID{}, &Error{Plugin: m.Name, Status: StatusFailed, Reason: ReasonHost, Err: fmt.Errorf("copying %s: %w", srcPath, err)}
	}
	if sum := hex.EncodeToString(hash.Sum(nil)); sum != m.SHA256 {
		os.Remove(dstPath)
		return "", fileID{}, refuse(fmt.Errorf("sha256 of %s is %s, the manifest says %s: refusing to run it", srcPath, sum, m.SHA256))
	}
	return dstPath, id, nil
}

func clampResources(want, caps sdk.Resources) sdk.Resources {
	clamp := func(w, c int64) int64 {
		if c > 0 && (w <= 0 || w > c) {
			return c
		}
		return w
	}
	return sdk.Resources{
		MemoryBytes: clamp(want.MemoryBytes, caps.MemoryBytes),
		Pids:        clamp(want.Pids, caps.Pids),
		Timeout:     time.Duration(clamp(int64(want.Timeout), int64(caps.Timeout))),
	}
}

// run is the state of one plugin run.
type run struct {
	h   *Host
	m   Manifest
	log *slog.Logger

	mu      sync.Mutex
	t       *tracked // set by runnerFunc, inside go-plugin's Start
	sockDir string   // go-plugin's socket directory for this run
}

func (r *run) runner() *tracked {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t
}

func (r *run) runnerFunc(bin string) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(l hclog.Logger, cmd *exec.Cmd, tmpDir string) (runner.Runner, error) {
		r.mu.Lock()
		r.sockDir = tmpDir
		r.mu.Unlock()
		cmd.Path = bin
		cmd.Args = []string{bin}
		cmd.Dir = "/"
		cmd.Stdin = nil
		cmd.Env = append(cmd.Env, sdk.LogLevelEnv+"="+pluginLogLevel(r.log))
		start := r.h.o.Runner
		if start == nil {
			start = newExecRunner
		}
		inner, err := start(l, cmd, tmpDir)
		if err != nil {
			return nil, err
		}
		t := newTracked(inner, tmpDir, r.h.o.MaxLogBytes)
		r.mu.Lock()
		r.t = t
		r.mu.Unlock()
		return t, nil
	}
}

// start runs go-plugin's Start (the runner, then the handshake), killing
// the plugin if ctx ends first.
func (r *run) start(ctx context.Context, client *plugin.Client) (plugin.ClientProtocol, error) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			if t := r.runner(); t != nil {
				t.abort()
			}
		case <-done:
		}
	}()
	rpc, err := client.Client()
	close(done)
	if err == nil {
		return rpc, nil
	}
	if ctx.Err() != nil {
		return nil, r.ctxFail(ctx, "while starting")
	}
	t := r.runner()
	if t == nil {
		return nil, r.fail(StatusFailed, ReasonStart, err)
	}
	if started, serr := t.hasStarted(); !started {
		if serr == nil {
			serr = err
		}
		return nil, r.fail(StatusFailed, ReasonStart, serr)
	}
	if how, ok := t.crash(0); ok {
		err = fmt.Errorf("%w (%s)", err, how)
	}
	return nil, r.fail(StatusFailed, ReasonHandshake, fmt.Errorf("go-plugin handshake (start timeout %v): %w", r.h.o.StartTimeout, err))
}

// stop always ends the plugin: go-plugin's Kill (a graceful shutdown
// through its controller, then the runner's Kill after 2 s), then the
// runner's Kill once more, so that a sandbox is destroyed even when the
// plugin exited by itself or never got an address.
//
// go-plugin's graceful shutdown is an RPC without a deadline, which a
// plugin can leave unanswered; after killGrace the runner's Kill ends the
// process, and with it that RPC.
func (r *run) stop(client *plugin.Client) {
	t := r.runner()
	if t != nil {
		t.markStopping()
	}
	killed := make(chan struct{})
	go func() {
		client.Kill()
		close(killed)
	}()
	select {
	case <-killed:
	case <-time.After(killGrace):
		r.log.Warn("the plugin did not stop; killing it")
		if t != nil {
			_ = t.Kill(context.Background())
		}
		<-killed
	}
	if t != nil {
		if err := t.Kill(context.Background()); err != nil {
			r.log.Warn("killing the plugin", "error", err)
		}
	}
	// go-plugin removes the socket directory in Kill only if the runner
	// had started.
	r.mu.Lock()
	sockDir := r.sockDir
	r.mu.Unlock()
	if sockDir != "" {
		if err := os.RemoveAll(sockDir); err != nil {
			r.log.Warn("removing the socket directory", "dir", sockDir, "error", err)
		}
	}
}

func (r *run) fail(s Status, reason Reason, err error) *Error {
	return &Error{Plugin: r.m.Name, Status: s, Reason: reason, Err: err}
}

func (r *run) ctxFail(ctx context.Context, when string) *Error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return r.fail(StatusTimeout, ReasonDeadline, fmt.Errorf("deadline passed %s: %w", when, err))
	}
	return r.fail(StatusFailed, ReasonCancelled, fmt.Errorf("cancelled %s: %w", when, err))
}

type protocolError struct{ err error }

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

type capError struct{ max int64 }

func (e *capError) Error() string { return fmt.Sprintf("sent more than %d bytes", e.max) }

type emitError struct{ err error }

func (e *emitError) Error() string { return "emit: " + e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// callFail classifies the failure of a call made with ctx.
func (r *run) callFail(ctx context.Context, op string, err error) *Error {
	var (
		pe *protocolError
		ce *capError
		ee *emitError
	)
	switch {
	case errors.As(err, &pe):
		return r.fail(StatusFailed, ReasonProtocol, fmt.Errorf("%s: %w", op, pe.err))
	case errors.As(err, &ce):
		return r.fail(StatusFailed, ReasonResultCap, ce)
	case errors.As(err, &ee):
		return r.fail(StatusFailed, ReasonHost, ee)
	case ctx.Err() != nil:
		return r.ctxFail(ctx, "during "+op)
	}
	t := r.runner()
	grace := time.Duration(0)
	switch status.Code(errors.Unwrap(err)) {
	case codes.Unavailable, codes.Internal, codes.Canceled:
		// The connection broke: most likely the process died, which
		// the runner's Wait tells a moment later.
		grace = crashGrace
	}
	if how, ok := t.crash(grace); ok {
		return r.fail(StatusFailed, ReasonCrashed, fmt.Errorf("the plugin process ended during %s: %s", op, how))
	}
	if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == codes.ResourceExhausted &&
		strings.Contains(st.Message(), "larger than max") {
		return r.fail(StatusFailed, ReasonResultCap, fmt.Errorf("sent more than %d bytes in one message", r.h.o.MaxResultBytes))
	}
	if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == codes.ResourceExhausted {
		return r.fail(StatusFailed, ReasonLimit, errors.New(st.Message()))
	}
	return r.fail(StatusFailed, ReasonRPC, err)
}
