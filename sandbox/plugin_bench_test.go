package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/assayhq/assay/plugins/host"
	"github.com/assayhq/assay/plugins/sdk"
)

// benchPluginRun is the whole analyzer path through a sandbox: verify and
// copy the example plugin, start it as a sandbox's init, go-plugin
// handshake over AutoMTLS, Describe, one Analyze of an empty /target, stop
// and tear down.
func benchPluginRun(b *testing.B) { benchPlugin(b, true) }

// benchPluginUnsandboxed is the same path with the plugin as a plain child
// process: the difference is what the sandbox costs.
func benchPluginUnsandboxed(b *testing.B) { benchPlugin(b, false) }

func benchPlugin(b *testing.B, sandboxed bool) {
	cfg := testConfig(b)
	cfg.StateDir = filepath.Join(workDir, "bp") // socket paths must stay short
	m := newTestManager(b, cfg)
	dir := filepath.Join(workDir, "bench-plugins")
	os.MkdirAll(dir, 0o755)
	bin := filepath.Join(dir, "assay-example")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../plugins/example/cmd/assay-example")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the example plugin: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(bin)
	sum := sha256.Sum256(data)
	man := host.Manifest{Name: "example", Version: "0.1.0", Binary: "assay-example", SHA256: hex.EncodeToString(sum[:])}
	cache, err := os.MkdirTemp("/tmp", "bp-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(cache) })
	o := host.Options{Dir: dir, CacheDir: cache}
	if sandboxed {
		o.SocketDir = m.SocketTempDir()
		o.Runner = host.RunnerFunc(m.RunnerFunc(nil, Limits{}))
	}
	h, err := host.New(o)
	if err != nil {
		b.Fatal(err)
	}
	root := TargetPath
	if !sandboxed {
		root = b.TempDir() // an empty image root, like the sandbox's
	}
	benchLatency(b, func() error {
		_, err := h.Run(context.Background(), man, sdk.Request{Root: root, MaxFiles: 10}, func(sdk.Item) error { return nil })
		return err
	})
}
