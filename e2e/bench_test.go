package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/client"
	"github.com/assayhq/assay/daemon/scans"
)

// Benchmarks print figures; they assert nothing about time. `make bench`.

func percentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}

// POST /v1/scans over the socket: a new scan each time (a durable, fsynced
// bbolt transaction before the 202). The references point at a closed
// loopback port so the workers' part fails fast and stays out of the way.
func BenchmarkSubmitScan(b *testing.B) {
	d := startDaemon(b, daemonOpts{})
	defer d.kill()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, _, err := d.Client.Submit(ctx, scans.Request{Image: fmt.Sprintf("127.0.0.1:9/bench/x@sha256:%064x", i+1)}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, lat)
}

// GET /v1/reports/{digest} of a stored report.
func BenchmarkGetReport(b *testing.B) {
	reg := newRegistry(b)
	ref, digest := reg.push(b, "bench/report:1")
	d := startDaemon(b, daemonOpts{})
	defer d.kill()
	ctx := context.Background()
	sc := d.submit(ref)
	d.waitStatus(sc.ID, scans.Done, 30*time.Second)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := d.Client.Report(ctx, digest); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, lat)
}

// Resident memory of an idle daemon, two seconds after it serves.
func BenchmarkIdleRSS(b *testing.B) {
	d := startDaemon(b, daemonOpts{})
	defer d.kill()
	time.Sleep(2 * time.Second)
	for i := 0; i < b.N; i++ {
		_ = i
	}
	rss := procStatusBytes(d.cmd.Process.Pid, "VmRSS")
	if rss == 0 {
		b.Fatal("no VmRSS for assayd")
	}
	b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
}

// From SIGKILL of a daemon holding queued scans to the restarted daemon
// answering /v1/health.
func BenchmarkRestartAfterKill(b *testing.B) {
	d := startDaemon(b, daemonOpts{})
	defer d.kill()
	for i := 0; i < 100; i++ {
		d.submit(fmt.Sprintf("127.0.0.1:9/bench/k@sha256:%064x", i+1))
	}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.kill()
		total += d.restart()
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/restart")
}

// GET /v1/reports/{digest} over the TCP API with TLS and a bearer token:
// one kept-alive connection, p50/p99.
func BenchmarkGetReportTCP(b *testing.B) {
	dir := b.TempDir()
	caFile, certFile, keyFile := testCA(b, dir)
	tokensFile := filepath.Join(dir, "tokens")
	os.WriteFile(tokensFile, []byte("read read-token-0123456789\n"), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	reg := newRegistry(b)
	ref, digest := reg.push(b, "bench/report:1")
	d := startDaemon(b, daemonOpts{args: []string{"--api.listen", addr, "--api.tokens_file", tokensFile, "--api.tls_cert_file", certFile, "--api.tls_key_file", keyFile}})
	defer d.kill()
	d.waitStatus(d.submit(ref).ID, scans.Done, 30*time.Second)
	pem, _ := os.ReadFile(caFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := client.NewRemote("https://"+addr, "read-token-0123456789", roots)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := c.Report(ctx, digest); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, lat)
}
