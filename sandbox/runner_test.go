package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
)

var testHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "ASSAY_SANDBOX_TEST",
	MagicCookieValue: "sandbox",
}

// nopPlugin is the host side of testdata/plugin's plugin.
type nopPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (nopPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (nopPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return "nop", nil
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newPluginClient is what plugins/host does: a go-plugin client whose
// plugin runs in a sandbox of m. It returns the client and a pointer to
// the runner once started.
func newPluginClient(t testing.TB, m *Manager, rf func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error), binary string) (*plugin.Client, **Runner) {
	var r *Runner
	logger := hclog.New(&hclog.LoggerOptions{Name: "host", Output: testLogWriter{t}, Level: hclog.Debug})
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  testHandshake,
		Plugins:          plugin.PluginSet{"nop": nopPlugin{}},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		RunnerFunc: func(l hclog.Logger, cmd *exec.Cmd, dir string) (runner.Runner, error) {
			if binary != "" {
				cmd.Path, cmd.Args = binary, []string{binary}
			}
			rr, err := rf(l, cmd, dir)
			if err == nil {
				r = rr.(*Runner)
			}
			return rr, err
		},
		SkipHostEnv:      true,
		AutoMTLS:         true,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: m.SocketTempDir()},
		Logger:           logger,
		StartTimeout:     30 * time.Second,
	})
	return client, &r
}

// TestRunnerGoPlugin runs a real go-plugin plugin in a sandbox: handshake
// over stdout, the socket through the bind-mounted dir, mTLS, a health
// check, a graceful shutdown, and nothing left behind.
func TestRunnerGoPlugin(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	upper, lower := makeLayers(t)
	client, rp := newPluginClient(t, m, m.RunnerFunc([]string{upper, lower}, Limits{Timeout: time.Minute}), bin("plugin"))
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	r := *rp
	if err := rpc.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if v, err := rpc.Dispense("nop"); err != nil || v != "nop" {
		t.Fatalf("Dispense: %v %v", v, err)
	}
	// The host dials the socket it checked through a descriptor of it:
	// the address is /proc/self/fd/N, which names a socket in the host's
	// socket dir.
	addr := client.ReattachConfig().Addr
	target, err := os.Readlink(addr.String())
	if addr.Network() != "unix" || !strings.HasPrefix(addr.String(), "/proc/self/fd/") || err != nil || !strings.HasPrefix(target, m.SocketTempDir()+"/") {
		t.Errorf("plugin address %s %s (%s, %v) is not a descriptor of a socket in the host socket dir", addr.Network(), addr, target, err)
	}
	if !strings.HasPrefix(r.ID(), idPrefix) || r.Name() != bin("plugin") {
		t.Errorf("ID %q Name %q", r.ID(), r.Name())
	}
	checkHostView(t, m, r.Pid(), []*os.File{r.stdout.f, r.stderr.f}, false)

	client.Kill() // closes the connection: the plugin exits by itself
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox not torn down 10s after Kill")
	}
	if err := r.Err(); err != nil {
		t.Errorf("plugin ended with %v, want a clean exit", err)
	}
	if ents, _ := os.ReadDir(m.SocketTempDir()); len(ents) != 0 {
		t.Errorf("socket dirs left: %v", ents)
	}
	assertIdle(t, m)
}

// TestRunnerDeadline: the caller's context ends a plugin that is serving;
// the reason is there for the host to report.
func TestRunnerDeadline(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	client, rp := newPluginClient(t, m, m.RunnerFuncContext(ctx, bin("plugin"), nil, Limits{}), "")
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := rpc.Ping(); err != nil {
		t.Fatal(err)
	}
	r := *rp
	select {
	case <-r.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("not killed at the deadline")
	}
	if !errors.Is(r.Err(), context.DeadlineExceeded) || !strings.HasPrefix(Reason(r.Err()), "deadline exceeded (limit 2") {
		t.Errorf("err %v, reason %q", r.Err(), Reason(r.Err()))
	}
	if !client.Exited() {
		time.Sleep(100 * time.Millisecond)
	}
	client.Kill()
	if ents, _ := os.ReadDir(m.SocketTempDir()); len(ents) != 0 {
		t.Errorf("socket dirs left: %v", ents)
	}
	assertIdle(t, m)
}

// TestRunnerStartFails: a Start that fails leaves nothing, go-plugin's
// socket dir included.
func TestRunnerStartFails(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	client, _ := newPluginClient(t, m, m.RunnerFunc([]string{"/nonexistent/layer"}, Limits{}), bin("plugin"))
	if _, err := client.Client(); err == nil || !strings.Contains(err.Error(), "layer") {
		t.Fatalf("err = %v, want a layer error", err)
	}
	client.Kill()
	if ents, _ := os.ReadDir(m.SocketTempDir()); len(ents) != 0 {
		t.Errorf("socket dirs left: %v", ents)
	}
	client2, _ := newPluginClient(t, m, m.RunnerFunc(nil, Limits{}), "")
	if _, err := client2.Client(); err == nil || !strings.Contains(err.Error(), "cmd.Path is empty") {
		t.Fatalf("no binary: err = %v", err)
	}
	client2.Kill()
	assertIdle(t, m)
	_ = filepath.Join
}
