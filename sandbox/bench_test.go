package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSandboxStartStop measures one sandbox's life (start a static
// program that exits at once, wait, tear down) against `runc run` of the
// same program with Debian's runc, and the memory an idle sandbox holds.
//
//	ASSAY_INTEGRATION=1 go test -tags seccomp -run '^$' -bench SandboxStartStop -benchtime 200x ./sandbox/
func BenchmarkSandboxStartStop(b *testing.B) {
	needIntegration(b)
	b.Run("sandbox", func(b *testing.B) {
		m := newTestManager(b, testConfig(b))
		benchLatency(b, func() error { return runOnce(m, nil) })
	})
	b.Run("sandbox-2-layer-image", func(b *testing.B) {
		m := newTestManager(b, testConfig(b))
		upper, lower := makeLayers(b)
		benchLatency(b, func() error { return runOnce(m, []string{upper, lower}) })
	})
	b.Run("plugin-handshake-analyze", benchPluginRun)
	b.Run("plugin-handshake-analyze-unsandboxed", benchPluginUnsandboxed)
	b.Run("runc-run", func(b *testing.B) {
		runc := findRunc(b)
		bundle := runcBundle(b)
		root := filepath.Join(workDir, "runc-root")
		b.Cleanup(func() { os.RemoveAll(root) })
		i := 0
		benchLatency(b, func() error {
			i++
			cmd := exec.Command(runc, "--root", root, "run", "--bundle", bundle, fmt.Sprintf("bench-%d", i))
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v: %s", runc, err, out)
			}
			return nil
		})
	})
	b.Run("idle-memory", func(b *testing.B) {
		m := newTestManager(b, testConfig(b))
		const n = 8
		var rss, cg uint64
		var runs []*running
		for range n {
			r := startProgram(b, m, nil, "idle", nil, nil, Limits{})
			if l := r.firstLine(b); l != "ready" {
				b.Fatalf("first line %q", l)
			}
			runs = append(runs, r)
		}
		time.Sleep(200 * time.Millisecond)
		for _, r := range runs {
			pids, err := cgroupPids(r.sb.cgPaths)
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range pids {
				rss += vmRSS(p)
			}
			u, err := memoryUsage(r.sb.cgPaths)
			if err != nil {
				b.Fatal(err)
			}
			cg += u
		}
		for _, r := range runs {
			_ = r.sb.kill(context.Background())
			_, _, _ = r.wait(b)
		}
		b.ReportMetric(float64(rss)/n/1024, "rss-KiB/sandbox")
		b.ReportMetric(float64(cg)/n/1024, "cgroup-KiB/sandbox")
	})
}

func runOnce(m *Manager, layers []string) error {
	sb, err := m.start(context.Background(), spec{binary: bin("exit0"), layers: layers, lim: m.cfg.tighten(Limits{})})
	if err != nil {
		return err
	}
	err = sb.wait(context.Background())
	closeFiles(sb.stdout, sb.stderr)
	return err
}

// benchLatency runs f b.N times and reports the p50 and p99 latency.
func benchLatency(b *testing.B, f func() error) {
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(d)
	pct := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func findRunc(b *testing.B) string {
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	b.Skip("no runc: apt-get install -y runc")
	return ""
}

// runcBundle makes an OCI bundle whose root holds only exit0, with `runc
// spec`'s defaults plus what the sandbox has: a user namespace with the
// same mapping, a read-only root, no capabilities.
func runcBundle(b *testing.B) string {
	dir := filepath.Join(workDir, "bundle")
	b.Cleanup(func() { os.RemoveAll(dir) })
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "proc"), 0o755); err != nil {
		b.Fatal(err)
	}
	for _, d := range []string{"dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	data, err := os.ReadFile(bin("exit0"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "exit0"), data, 0o755); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(findRunc(b), "spec", "--bundle", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v %s", err, out)
	}
	var spec map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/exit0"}
	proc["capabilities"] = map[string]any{}
	spec["root"] = map[string]any{"path": "rootfs", "readonly": true}
	linux := spec["linux"].(map[string]any)
	linux["namespaces"] = append(linux["namespaces"].([]any), map[string]any{"type": "user"})
	idmap := []map[string]any{{"containerID": 0, "hostID": DefaultUIDStart, "size": DefaultUIDCount}}
	linux["uidMappings"], linux["gidMappings"] = idmap, idmap
	out, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

func cgroupPids(paths map[string]string) ([]int, error) {
	p := paths["pids"]
	if p == "" {
		p = paths[""]
	}
	data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	return pids, nil
}

// vmRSS is a process's resident set, in bytes.
func vmRSS(pid int) uint64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}
