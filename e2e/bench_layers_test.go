package e2e

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/assayhq/assay/daemon/scans"
)

// peerTrivy is the trivy binary the layer benchmarks run beside assay:
// ASSAY_PEER_TRIVY, else where ../shared/tools/build-peer.sh puts it.
func peerTrivy() string {
	if p := os.Getenv("ASSAY_PEER_TRIVY"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "assay-peers", "trivy")
}

// trivyInventory lists ref's packages with trivy, cold (memory cache, no
// database), as the peer figure: wall time and peak RSS.
func trivyInventory(tb testing.TB, trivy, ref string) (time.Duration, int64) {
	tb.Helper()
	cache := tb.TempDir()
	cmd := exec.Command(trivy, "image", "--insecure", "--skip-db-update", "--offline-scan", "--cache-backend", "memory",
		"--cache-dir", cache, "--format", "cyclonedx", "--quiet", "--output", filepath.Join(cache, "out.json"), ref)
	cmd.Env = append(cleanEnv(), "HOME="+cache)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		tb.Fatalf("trivy: %v\n%s", err, out)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rss int64
	if ru != nil {
		rss = ru.Maxrss << 10
	}
	return took, rss
}

// benchLayerImage is the multi-layer image of the cold benchmark (Debian
// base, npm app, Go binary, Debian's Python packages, a whiteout).
func benchLayerImage(tb testing.TB) v1.Image {
	img, err := mutate.AppendLayers(loadDebian(tb),
		dirLayer(tb, "../analyzers/npm/testdata/app", "app"),
		fileLayer(tb, buildGoProg(tb), "usr/local/bin/prog"),
		dirLayer(tb, "../analyzers/python/testdata/debian", ""),
		whiteoutLayer(tb, "usr/lib/python3/dist-packages/six-1.16.0.egg-info"),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// BenchmarkLayersVsTrivy: the layer path side by side with trivy's
// inventory of the same image from the same loopback registry, in one
// run. Figures are ratios of medians to trivy's cold time:
//
//   - cold: a fresh daemon (empty content store and layer cache), submit →
//     report stored;
//
//   - warm: the same layers under a new manifest digest (a changed config
//     label), on the daemon that scanned them;
//
//   - new layer: one small new layer on the cached base;
//
//   - steady cold: the layer cache emptied on the running daemon (the
//     content store is empty between scans), a new manifest digest;
//
//   - peak RSS: assayd's VmHWM plus the largest sandbox peak, vs trivy's.
//
//     ASSAY_E2E=1 ASSAY_BIN=$PWD/bin go test -run '^$' -bench LayersVsTrivy -benchtime 1x -v ./e2e/
func BenchmarkLayersVsTrivy(b *testing.B) {
	img := benchLayerImage(b)
	reg := newRegistry(b)
	ref, _ := reg.pushImage(b, "bench/layers:1", img)
	trivy := peerTrivy()
	if _, err := os.Stat(trivy); err != nil {
		b.Logf("no trivy at %s (ASSAY_PEER_TRIVY, or ../shared/tools/build-peer.sh): assay's figures only", trivy)
		trivy = ""
	}
	const runs = 3
	var peer, cold, warm, grown, steady []time.Duration
	var peerRSS, assayRSS int64
	var coldScan, warmScan, steadyScan benchScan
	for i := range runs {
		if trivy != "" {
			t, rss := trivyInventory(b, trivy, ref)
			peer = append(peer, t)
			peerRSS = max(peerRSS, rss)
		}
		func() {
			s := newBenchScope(b)
			defer s.close()
			d := benchDaemon(s)
			phases := recordBenchPhases(s, d)
			pid := d.cmd.Process.Pid
			benchResetPeak(s, pid)
			mark := len(d.log.String())
			sc := d.waitStatus(d.submit(ref).ID, scans.Done, 5*time.Minute)
			f := measureBenchScan(s, d, phases, sc, mark, fmt.Sprintf("cold %d", i+1))
			cold = append(cold, f.total)
			coldScan = f
			var plugin uint64
			for _, p := range f.peak {
				plugin = max(plugin, p)
			}
			assayRSS = max(assayRSS, vmHWM(s, pid)+int64(plugin))

			// The same layers under a new config: a new image to scan.
			scanRelabelled := func(label, tag, what string) benchScan {
				relabelled, err := mutate.Config(img, v1.Config{Labels: map[string]string{label: fmt.Sprint(i)}})
				if err != nil {
					s.Fatal(err)
				}
				ref, _ := reg.pushImage(s, fmt.Sprintf("bench/layers:%s%d", tag, i), relabelled)
				mark := len(d.log.String())
				sc := d.waitStatus(d.submit(ref).ID, scans.Done, 5*time.Minute)
				return measureBenchScan(s, d, phases, sc, mark, fmt.Sprintf("%s %d", what, i+1))
			}
			warmScan = scanRelabelled("run", "warm", "warm")
			warm = append(warm, warmScan.total)

			more, err := mutate.AppendLayers(img, tarLayer(s, func(tw *tar.Writer) {
				regFile(tw, "srv/node_modules/minimist/package.json", 0o644, []byte(fmt.Sprintf(`{"name":"minimist","version":"1.2.%d"}`, i)))
			}))
			if err != nil {
				s.Fatal(err)
			}
			ref3, _ := reg.pushImage(s, fmt.Sprintf("bench/layers:grown%d", i), more)
			sc = d.waitStatus(d.submit(ref3).ID, scans.Done, 5*time.Minute)
			grown = append(grown, sc.FinishedAt.Sub(sc.CreatedAt))

			// Cold again on the running daemon: the layer cache emptied,
			// the content store empty since the scans released their
			// leases; what a long-running worker pays for a new image.
			if _, err := d.Client.PruneCache(context.Background(), true); err != nil {
				s.Fatal(err)
			}
			steadyScan = scanRelabelled("again", "again", "steady cold")
			steady = append(steady, steadyScan.total)
		}()
	}
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	b.Logf("last cold scan: %s", coldScan)
	b.Logf("last warm scan: %s", warmScan)
	b.Logf("last steady cold scan: %s", steadyScan)
	med := func(ds []time.Duration) time.Duration { m, _, _ := benchSpread(ds); return m }
	b.Logf("assay cold %v, steady cold %v, warm %v, one new layer %v; peak RSS assayd+plugin %.1f MiB", cold, steady, warm, grown, benchMiB(assayRSS))
	b.ReportMetric(benchMsf(med(cold)), "cold-ms")
	b.ReportMetric(benchMsf(med(warm)), "warm-ms")
	b.ReportMetric(benchMsf(med(grown)), "newlayer-ms")
	b.ReportMetric(benchMsf(med(steady)), "steadycold-ms")
	if trivy == "" {
		return
	}
	p := med(peer)
	b.Logf("trivy %v; peak RSS %.1f MiB", peer, benchMiB(peerRSS))
	b.ReportMetric(benchMsf(p), "trivy-ms")
	b.ReportMetric(float64(med(cold))/float64(p), "cold/trivy")
	b.ReportMetric(float64(med(warm))/float64(p), "warm/trivy")
	b.ReportMetric(float64(med(steady))/float64(p), "steadycold/trivy")
	b.ReportMetric(float64(med(grown))/float64(p), "newlayer/trivy")
	b.ReportMetric(float64(assayRSS)/float64(peerRSS), "rss/trivy")
}

// BenchmarkSharedBaseThroughput: 100 distinct images sharing the Debian
// base, each with one small unique layer, pushed and submitted at once to
// one daemon (scan.concurrency 2): images per minute, and assayd's peak
// RSS.
//
//	ASSAY_E2E=1 ASSAY_BIN=$PWD/bin go test -run '^$' -bench SharedBaseThroughput -benchtime 1x -v ./e2e/
func BenchmarkSharedBaseThroughput(b *testing.B) {
	const n = 100
	base := loadDebian(b)
	reg := newRegistry(b)
	var refs []string
	for i := range n {
		img, err := mutate.AppendLayers(base, tarLayer(b, func(tw *tar.Writer) {
			regFile(tw, fmt.Sprintf("srv/app%d/node_modules/left-pad/package.json", i), 0o644, []byte(fmt.Sprintf(`{"name":"left-pad","version":"1.%d.0"}`, i)))
		}))
		if err != nil {
			b.Fatal(err)
		}
		ref, _ := reg.pushImage(b, fmt.Sprintf("bench/shared:%d", i), img)
		refs = append(refs, ref)
	}
	s := newBenchScope(b)
	defer s.close()
	d := benchDaemon(s, "--scan.concurrency", "2")
	pid := d.cmd.Process.Pid
	start := time.Now()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc, _, err := d.Client.Submit(context.Background(), scans.Request{Image: ref})
			if err != nil {
				b.Error(err)
				return
			}
			ids[i] = sc.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != "" {
			d.waitStatus(id, scans.Done, 10*time.Minute)
		}
	}
	took := time.Since(start)
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n)/took.Minutes(), "images/min")
	b.ReportMetric(benchMiB(vmHWM(s, pid)), "assayd-peak-MiB")
	b.Logf("%d images sharing a base in %s", n, benchMs(took))
}
