package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/assayhq/assay/plugins/host"
	"github.com/assayhq/assay/plugins/sdk"
)

// benchPluginRun is the whole analyzer path through a sandbox: verify and
// copy the example plugin, start it as a sandbox's init, go-plugin
// handshake over AutoMTLS, Describe, one Analyze of an empty /target, stop
// and tear down.
func benchPluginRun(b *testing.B) {
	benchPlugin(b, true, "example", "../plugins/example/cmd/assay-example", nil, "")
}

// benchPluginUnsandboxed is the same path with the plugin as a plain child
// process: the difference is what the sandbox costs.
func benchPluginUnsandboxed(b *testing.B) {
	benchPlugin(b, false, "example", "../plugins/example/cmd/assay-example", nil, "")
}

// BenchmarkDebianInventory is the built-in plugin's dpkg and os-release
// extractors inventorying the shared Debian 12 image's one layer, the
// gzip blob handed to the sandbox as a read-only descriptor, the whole
// plugin path included (start, handshake, stream, teardown).
//
//	ASSAY_INTEGRATION=1 go test -tags seccomp -run '^$' -bench DebianInventory -benchtime 5x ./sandbox/
func BenchmarkDebianInventory(b *testing.B) {
	needIntegration(b)
	oci := filepath.Join(workDir, "debian-oci")
	if _, err := os.Stat(filepath.Join(oci, "index.json")); err != nil {
		os.MkdirAll(oci, 0o755)
		if out, err := exec.Command("tar", "-xf", "../../shared/testdata/images/debian-12-minbase.oci.tar", "-C", oci).CombinedOutput(); err != nil {
			b.Fatalf("untar the shared image: %v %s", err, out)
		}
	}
	// The one layer is the largest blob.
	blobs, _ := filepath.Glob(filepath.Join(oci, "blobs/sha256/*"))
	var layer string
	var size int64
	for _, bl := range blobs {
		if fi, err := os.Stat(bl); err == nil && fi.Size() > size {
			layer, size = bl, fi.Size()
		}
	}
	var packages int
	benchPlugin(b, true, "builtin", "../analyzers/cmd/assay-builtin", nil, layer, &packages)
	b.ReportMetric(float64(packages), "packages")
}

// benchPlugin runs the plugin built from pkg b.N times. With blob set,
// it is a layer plugin given that layer blob; else a tree plugin over
// layers.
func benchPlugin(b *testing.B, sandboxed bool, name, pkg string, layers []string, blob string, count ...*int) {
	cfg := testConfig(b)
	cfg.StateDir = filepath.Join(workDir, "bp") // socket paths must stay short
	m := newTestManager(b, cfg)
	dir := filepath.Join(workDir, "bench-plugins")
	os.MkdirAll(dir, 0o755)
	bin := filepath.Join(dir, "assay-"+name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the %s plugin: %v\n%s", name, err, out)
	}
	data, _ := os.ReadFile(bin)
	sum := sha256.Sum256(data)
	man := host.Manifest{Name: name, Version: "0.1.0", Binary: "assay-" + name, SHA256: hex.EncodeToString(sum[:])}
	if blob != "" {
		man.Input, man.Extractors = host.InputLayers, []string{"dpkg", "os-release"}
	}
	cache, err := os.MkdirTemp("/tmp", "bp-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(cache) })
	peak := &peakRecorder{}
	o := host.Options{Dir: dir, CacheDir: cache, Logger: slog.New(peak)}
	if sandboxed {
		o.SocketDir = m.SocketTempDir()
		o.Runner = host.RunnerFunc(m.RunnerFunc(layers, Limits{}))
	}
	root := TargetPath
	if !sandboxed {
		root = b.TempDir() // an empty image root, like the sandbox's
	}
	benchLatency(b, func() error {
		req := sdk.Request{Root: root, MaxFiles: 10}
		if blob != "" {
			f, err := os.Open(blob)
			if err != nil {
				return err
			}
			defer f.Close()
			o.Runner = host.RunnerFunc(m.RunnerFuncFiles([]*os.File{f}, Limits{}))
			req = sdk.Request{Layers: []sdk.Layer{{Index: 1, Digest: "sha256:" + filepath.Base(blob), FD: 3}}, Extractors: man.Extractors}
		}
		h, err := host.New(o)
		if err != nil {
			return err
		}
		n := 0
		_, err = h.Run(context.Background(), man, req, func(it sdk.Item) error {
			if it.Package != nil {
				n++
			}
			return nil
		})
		for _, c := range count {
			*c = n
		}
		return err
	})
	if sandboxed {
		b.ReportMetric(float64(peak.max.Load())/(1<<20), "peak-MiB")
	}
}

// peakRecorder is a slog handler that keeps the largest peak_memory_bytes
// the sandbox logs when a plugin's sandbox ends.
type peakRecorder struct{ max atomic.Uint64 }

func (p *peakRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (p *peakRecorder) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *peakRecorder) WithGroup(string) slog.Handler            { return p }
func (p *peakRecorder) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "peak_memory_bytes" {
			var v uint64
			switch a.Value.Kind() {
			case slog.KindUint64:
				v = a.Value.Uint64()
			case slog.KindInt64:
				v = uint64(a.Value.Int64())
			default:
				fmt.Sscan(a.Value.String(), &v)
			}
			for {
				cur := p.max.Load()
				if v <= cur || p.max.CompareAndSwap(cur, v) {
					break
				}
			}
		}
		return true
	})
	return nil
}
