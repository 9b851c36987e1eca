package e2e

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/assayhq/assay/daemon/client"
	"github.com/assayhq/assay/daemon/scans"
)

// Benchmarks of the first slice on the built binaries: push to report,
// a cold scan of a multi-layer image, an OSV import. They print figures
// (b.ReportMetric, b.Logf) and assert nothing about time. Each does a fixed
// number of runs whatever b.N is (the work is outside b.Loop), so
// -benchtime 1x and make bench's 2000x cost the same.
//
//	ASSAY_E2E=1 ASSAY_BIN=$PWD/../bin go test -run '^$' -bench 'PushToReport|ColdScanMultiLayer|DBImport' -benchtime 1x -v .

// benchPlugins are the analyzers the slice benchmarks enable.
const benchPlugins = "dpkg,gobinary,npm,python,java,ruby,rust,rpm"

// benchRuns is how many scans each scan benchmark measures.
const benchRuns = 5

// benchScope is a testing.TB whose Cleanup and TempDir belong to one run:
// they end at close, not with the benchmark, so the runs' daemons,
// containerds and registries never live at once.
type benchScope struct {
	testing.TB
	mu  sync.Mutex
	fns []func()
}

func newBenchScope(tb testing.TB) *benchScope {
	s := &benchScope{TB: tb}
	tb.Cleanup(s.close) // after a Fatal that skipped the deferred close
	return s
}

func (s *benchScope) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fns = append(s.fns, f)
}

func (s *benchScope) TempDir() string {
	dir, err := os.MkdirTemp("", "assay-bench-")
	if err != nil {
		s.Fatal(err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// close runs the clean-ups, last registered first.
func (s *benchScope) close() {
	for {
		s.mu.Lock()
		if len(s.fns) == 0 {
			s.mu.Unlock()
			return
		}
		f := s.fns[len(s.fns)-1]
		s.fns = s.fns[:len(s.fns)-1]
		s.mu.Unlock()
		f()
	}
}

// benchDaemon starts assayd with the slice's analyzers and JSON logs (the
// figures are read from them), stopped with SIGTERM at the scope's end.
func benchDaemon(tb testing.TB, extra ...string) *daemonProc {
	tb.Helper()
	d := startDaemon(tb, daemonOpts{args: append([]string{
		"--log.format", "json",
		"--plugins.dir", filepath.Join(binDir, "plugins"),
		"--plugins.enabled", benchPlugins,
	}, extra...)})
	tb.Cleanup(func() { benchStop(d) })
	return d
}

// benchWebhookDaemon starts Debian's docker-registry notifying a new
// assayd's webhook, and returns the daemon and the registry's address.
func benchWebhookDaemon(tb testing.TB) (*daemonProc, string) {
	tb.Helper()
	hook := freePort(tb)
	reg := dockerRegistry(tb, "http://"+hook+"/")
	d := benchDaemon(tb,
		"--webhook.listen", hook,
		"--webhook.token", webhookToken,
		"--webhook.registries", reg+"="+reg)
	return d, reg
}

// benchStop stops assayd the way systemd does (SIGTERM: it stops its
// containerd and unmounts), killing it after 30s.
func benchStop(d *daemonProc) {
	if d.cmd == nil || d.cmd.Process == nil || d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// benchImport imports the shared OSV data with `assay db import` and
// returns the CLI's wall time.
func benchImport(tb testing.TB, d *daemonProc) (time.Duration, string) {
	tb.Helper()
	start := time.Now()
	out, errOut, code := d.assay("db", "import", "../../shared/testdata/osv")
	took := time.Since(start)
	if code != 0 {
		tb.Fatalf("assay db import ../../shared/testdata/osv: exit %d\n%s%s", code, out, errOut)
	}
	return took, out
}

// benchResetPeak resets the process's VmHWM to its current RSS.
func benchResetPeak(tb testing.TB, pid int) {
	tb.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		tb.Fatalf("resetting the peak RSS of pid %d: %v", pid, err)
	}
}

// benchUniqueImage is base plus one tiny layer of its own, so each push is
// a new digest.
func benchUniqueImage(tb testing.TB, base v1.Image, label string) v1.Image {
	tb.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	data := []byte(label + " " + hex.EncodeToString(nonce) + "\n")
	img, err := mutate.AppendLayers(base, tarLayer(tb, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/assay-bench-" + label, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}))
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// benchWebhookScan waits for the scan the push of digest started and for
// it to be done.
func benchWebhookScan(tb testing.TB, d *daemonProc, digest string, timeout time.Duration) scans.Scan {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		list, _, err := d.Client.Scans(context.Background(), scans.Filter{})
		if err == nil {
			for _, sc := range list {
				if strings.HasSuffix(sc.Image, "@"+digest) {
					return d.waitStatus(sc.ID, scans.Done, time.Until(deadline))
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("no scan of %s started by the push within %s", digest, timeout)
	return scans.Scan{}
}

// benchPhases keeps, from /v1/events, when each scan first reached each
// status (the record's updated_at of that change).
type benchPhases struct {
	mu   sync.Mutex
	seen map[string]map[scans.Status]time.Time
}

func recordBenchPhases(tb testing.TB, d *daemonProc) *benchPhases {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := d.Client.Events(ctx, client.EventFilter{Type: "scan"})
	if err != nil {
		cancel()
		tb.Fatalf("opening the event stream: %v", err)
	}
	p := &benchPhases{seen: map[string]map[scans.Status]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := st.Next()
			if err != nil {
				return
			}
			if ev.Scan == nil {
				continue
			}
			p.mu.Lock()
			m := p.seen[ev.Scan.ID]
			if m == nil {
				m = map[scans.Status]time.Time{}
				p.seen[ev.Scan.ID] = m
			}
			if _, ok := m[ev.Scan.Status]; !ok {
				m[ev.Scan.Status] = ev.Scan.UpdatedAt
			}
			p.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { cancel(); st.Close(); <-done })
	return p
}

// at is when scan id reached status, waiting a little for the event.
func (p *benchPhases) at(id string, status scans.Status) (time.Time, bool) {
	for range 100 {
		p.mu.Lock()
		t, ok := p.seen[id][status]
		p.mu.Unlock()
		if ok {
			return t, true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, false
}

// benchLogLine is the part of one JSON line of assayd's log the figures
// read.
type benchLogLine struct {
	Time     time.Time       `json:"time"`
	Msg      string          `json:"msg"`
	Scan     string          `json:"scan"`
	Plugin   string          `json:"plugin"`
	Analyzer string          `json:"analyzer"`
	Took     int64           `json:"took"` // slog's JSON handler writes durations in ns
	Peak     uint64          `json:"peak_memory_bytes"`
	Status   json.RawMessage `json:"status"`
	Error    json.RawMessage `json:"error"`
}

func benchLogLines(log string) []benchLogLine {
	var out []benchLogLine
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var l benchLogLine
		if json.Unmarshal([]byte(line), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// benchScan is what one scan cost.
type benchScan struct {
	label string
	// total is created_at → finished_at: the webhook creates the record as
	// the notification arrives; the report is stored in the transaction
	// that sets finished_at.
	total time.Duration
	// queue is created_at → started_at, pull is started_at → analyzing
	// (resolve, pull, unpack, view), analyze is analyzing → matching (the
	// analyzers, two at a time), match is matching → finished_at (matching,
	// policy, verdict, storing the report).
	queue, pull, analyze, match time.Duration
	phasesKnown                 bool
	scanTook                    time.Duration            // "scan finished" took
	took                        map[string]time.Duration // "analyzer finished" took per analyzer
	peak                        map[string]uint64        // "sandbox ended" peak_memory_bytes per analyzer
	failures                    []string                 // "analyzer did not finish"
	packages, findings          int
}

// measureBenchScan reads the figures of the done scan sc from its record,
// the event stream and the daemon's log written since logFrom.
func measureBenchScan(tb testing.TB, d *daemonProc, p *benchPhases, sc scans.Scan, logFrom int, label string) benchScan {
	tb.Helper()
	if sc.StartedAt == nil || sc.FinishedAt == nil {
		tb.Fatalf("scan %s without started_at or finished_at: %+v", sc.ID, sc)
	}
	f := benchScan{label: label, total: sc.FinishedAt.Sub(sc.CreatedAt), queue: sc.StartedAt.Sub(sc.CreatedAt),
		took: map[string]time.Duration{}, peak: map[string]uint64{}}
	analyzing, ok1 := p.at(sc.ID, scans.Analyzing)
	matching, ok2 := p.at(sc.ID, scans.Matching)
	if ok1 && ok2 {
		f.phasesKnown = true
		f.pull = analyzing.Sub(*sc.StartedAt)
		f.analyze = matching.Sub(analyzing)
		f.match = sc.FinishedAt.Sub(matching)
	}
	// Scans run one at a time here: every analyzer line since logFrom is
	// this scan's. "scan finished" is logged after the record is stored.
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := d.log.String()[logFrom:]
		f.took, f.peak, f.failures = map[string]time.Duration{}, map[string]uint64{}, nil
		finished := false
		for _, l := range benchLogLines(log) {
			switch {
			case l.Msg == "analyzer finished":
				f.took[l.Plugin] = time.Duration(l.Took)
			case l.Msg == "analyzer did not finish":
				f.failures = append(f.failures, l.Plugin+": "+string(l.Error))
			case l.Msg == "sandbox ended" && l.Analyzer != "":
				f.peak[l.Analyzer] = max(f.peak[l.Analyzer], l.Peak)
			case l.Msg == "scan finished" && l.Scan == sc.ID:
				f.scanTook = time.Duration(l.Took)
				finished = true
			}
		}
		if finished || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rep, err := d.Client.Report(context.Background(), sc.Digest); err == nil {
		f.packages, f.findings = len(rep.Packages), len(rep.Findings)
	}
	return f
}

func (f benchScan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s total %7s", f.label, benchMs(f.total))
	if f.phasesKnown {
		fmt.Fprintf(&b, " = queue %s + pull/unpack %s + analyze %s + match/store %s", benchMs(f.queue), benchMs(f.pull), benchMs(f.analyze), benchMs(f.match))
	}
	fmt.Fprintf(&b, " (worker's took %s); %d packages, %d findings\n           analyzers:", benchMs(f.scanTook), f.packages, f.findings)
	for _, n := range benchKeys(f.took) {
		fmt.Fprintf(&b, " %s %s/%.1fMiB", n, benchMs(f.took[n]), benchMiB(f.peak[n]))
	}
	for _, x := range f.failures {
		fmt.Fprintf(&b, "\n           NOT FINISHED %s", x)
	}
	return b.String()
}

func benchMs(d time.Duration) string { return d.Round(time.Millisecond).String() }

func benchMiB[N int64 | uint64](n N) float64 { return float64(n) / (1 << 20) }

func benchKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// benchSpread is the median, min and max of ds.
func benchSpread(ds []time.Duration) (med, lo, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func benchMsf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// reportBenchScans prints the runs and their metrics; assaydPeak and
// containerdPeak are VmHWM in bytes over the measured scans.
func reportBenchScans(b *testing.B, runs []benchScan, assaydPeak, containerdPeak int64) {
	b.ReportMetric(0, "ns/op")
	var total, queue, pull, analyze, match []time.Duration
	took := map[string][]time.Duration{}
	peak := map[string]uint64{}
	for _, r := range runs {
		b.Logf("%s", r)
		total = append(total, r.total)
		if r.phasesKnown {
			queue, pull = append(queue, r.queue), append(pull, r.pull)
			analyze, match = append(analyze, r.analyze), append(match, r.match)
		}
		for n, d := range r.took {
			took[n] = append(took[n], d)
		}
		for n, p := range r.peak {
			peak[n] = max(peak[n], p)
		}
	}
	med, lo, hi := benchSpread(total)
	b.ReportMetric(benchMsf(med), "median-ms")
	b.ReportMetric(benchMsf(lo), "min-ms")
	b.ReportMetric(benchMsf(hi), "max-ms")
	for _, ph := range []struct {
		name string
		ds   []time.Duration
	}{{"queue", queue}, {"pull", pull}, {"analyze", analyze}, {"match", match}} {
		m, l, h := benchSpread(ph.ds)
		b.ReportMetric(benchMsf(m), ph.name+"-median-ms")
		b.Logf("phase %-8s median %7s  min %7s  max %7s", ph.name, benchMs(m), benchMs(l), benchMs(h))
	}
	var peaks []uint64
	for _, n := range benchKeys(took) {
		m, l, h := benchSpread(took[n])
		b.Logf("analyzer %-9s took median %7s  min %7s  max %7s  peak memory (max) %6.1f MiB", n, benchMs(m), benchMs(l), benchMs(h), benchMiB(peak[n]))
		peaks = append(peaks, peak[n])
	}
	slices.Sort(peaks)
	slices.Reverse(peaks)
	var top2 uint64
	for _, p := range peaks[:min(2, len(peaks))] {
		top2 += p
	}
	b.ReportMetric(benchMiB(assaydPeak), "assayd-peak-MiB")
	b.ReportMetric(benchMiB(top2), "top2-plugins-peak-MiB")
	b.ReportMetric(benchMiB(assaydPeak)+benchMiB(top2), "assayd+plugins-peak-MiB")
	b.ReportMetric(benchMiB(containerdPeak), "containerd-peak-MiB")
	b.Logf("total created_at→finished_at median %s, min %s, max %s over %d scans", benchMs(med), benchMs(lo), benchMs(hi), len(total))
	b.Logf("assayd peak RSS (VmHWM, reset before the pushes) %.1f MiB; two largest plugin peaks %.1f MiB; assayd+plugins peak %.1f MiB; managed containerd peak RSS %.1f MiB",
		benchMiB(assaydPeak), benchMiB(top2), benchMiB(assaydPeak)+benchMiB(top2), benchMiB(containerdPeak))
}

// benchContentBlobs describes what the managed containerd holds: blobs in
// its content store and overlayfs snapshots.
func benchContentBlobs(d *daemonProc) string {
	root := filepath.Join(d.State, "containerd", "root")
	count := func(dir string) string {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if os.IsNotExist(err) {
			return "0 (no directory yet)"
		}
		if err != nil {
			return err.Error()
		}
		return strconv.Itoa(len(ents))
	}
	return fmt.Sprintf("%s blobs in the content store, %s overlayfs snapshots",
		count("io.containerd.content.v1.content/blobs/sha256"), count("io.containerd.snapshotter.v1.overlayfs/snapshots"))
}

// From a registry's push notification to the report stored, for five
// images that are the shared Debian image plus a tiny layer of their own,
// pushed to Debian's docker-registry that notifies assayd's webhook.
// cold: each image on a fresh daemon (new state dir, new managed
// containerd, empty content store); warm: five images on one daemon after
// a first one.
func BenchmarkPushToReport(b *testing.B) {
	base := loadDebian(b)
	b.Run("cold", func(b *testing.B) {
		var runs []benchScan
		var assaydPeak, containerdPeak int64
		for i := range benchRuns {
			func() {
				s := newBenchScope(b)
				defer s.close()
				d, reg := benchWebhookDaemon(s)
				benchImport(s, d)
				phases := recordBenchPhases(s, d)
				img := benchUniqueImage(s, base, fmt.Sprintf("cold-%d", i))
				pid, cpid := d.cmd.Process.Pid, managedPID(s, d)
				benchResetPeak(s, pid)
				benchResetPeak(s, cpid)
				mark := len(d.log.String())
				digest := pushTo(s, reg, fmt.Sprintf("bench/cold:%d", i), img)
				sc := benchWebhookScan(s, d, digest, 5*time.Minute)
				runs = append(runs, measureBenchScan(s, d, phases, sc, mark, fmt.Sprintf("cold %d", i+1)))
				assaydPeak = max(assaydPeak, vmHWM(s, pid))
				containerdPeak = max(containerdPeak, vmHWM(s, cpid))
			}()
		}
		for b.Loop() {
		}
		reportBenchScans(b, runs, assaydPeak, containerdPeak)
	})
	b.Run("warm", func(b *testing.B) {
		s := newBenchScope(b)
		defer s.close()
		d, reg := benchWebhookDaemon(s)
		benchImport(s, d)
		phases := recordBenchPhases(s, d)
		mark := len(d.log.String())
		digest := pushTo(s, reg, "bench/warm:first", benchUniqueImage(s, base, "warm-first"))
		first := measureBenchScan(s, d, phases, benchWebhookScan(s, d, digest, 5*time.Minute), mark, "first")
		b.Logf("not counted: %s", first)
		pid, cpid := d.cmd.Process.Pid, managedPID(s, d)
		benchResetPeak(s, pid)
		benchResetPeak(s, cpid)
		var runs []benchScan
		for i := range benchRuns {
			img := benchUniqueImage(s, base, fmt.Sprintf("warm-%d", i))
			blobs := benchContentBlobs(d)
			mark := len(d.log.String())
			digest := pushTo(s, reg, fmt.Sprintf("bench/warm:%d", i), img)
			sc := benchWebhookScan(s, d, digest, 5*time.Minute)
			runs = append(runs, measureBenchScan(s, d, phases, sc, mark, fmt.Sprintf("warm %d", i+1)))
			b.Logf("warm %d: before the push, containerd held %s", i+1, blobs)
		}
		assaydPeak, containerdPeak := vmHWM(s, pid), vmHWM(s, cpid)
		for b.Loop() {
		}
		reportBenchScans(b, runs, assaydPeak, containerdPeak)
	})
}

// benchContainerdProfile takes a CPU profile of the managed containerd over its
// debug socket for the given time and writes it to path.
func benchContainerdProfile(ctx context.Context, d *daemonProc, seconds int, path string) error {
	sock := filepath.Join(d.State, "containerd", "debug.sock")
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://containerd/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("profiling containerd over %s: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("profiling containerd: %s %s", resp.Status, body)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// A cold scan of a multi-layer image (the shared Debian image, an npm app,
// a Go binary, Debian's Python packages, a whiteout; as in
// TestSliceEndToEnd) submitted over the API to a fresh daemon each time:
// submit → report stored (created_at → finished_at), and where the time
// goes. A sixth, untimed run takes a CPU profile of containerd during the
// pull.
func BenchmarkColdScanMultiLayer(b *testing.B) {
	img, err := mutate.AppendLayers(loadDebian(b),
		dirLayer(b, "../analyzers/npm/testdata/app", "app"),
		fileLayer(b, buildGoProg(b), "usr/local/bin/prog"),
		dirLayer(b, "../analyzers/python/testdata/debian", ""),
		whiteoutLayer(b, "usr/lib/python3/dist-packages/six-1.16.0.egg-info"),
	)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	layers, _ := img.Layers()
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}
	reg := newRegistry(b)
	ref, _ := reg.pushImage(b, "bench/multi:1", img)
	b.Logf("image %s: %d layers, %.1f MiB compressed", ref, len(layers), benchMiB(size))

	scanOnce := func(s testing.TB, label string, during func(*daemonProc)) (benchScan, int64, int64) {
		d := benchDaemon(s)
		benchImport(s, d)
		phases := recordBenchPhases(s, d)
		pid, cpid := d.cmd.Process.Pid, managedPID(s, d)
		benchResetPeak(s, pid)
		benchResetPeak(s, cpid)
		mark := len(d.log.String())
		if during != nil {
			during(d)
		}
		sc := d.waitStatus(d.submit(ref).ID, scans.Done, 5*time.Minute)
		f := measureBenchScan(s, d, phases, sc, mark, label)
		return f, vmHWM(s, pid), vmHWM(s, cpid)
	}
	var runs []benchScan
	var assaydPeak, containerdPeak int64
	for i := range benchRuns {
		func() {
			s := newBenchScope(b)
			defer s.close()
			f, ap, cp := scanOnce(s, fmt.Sprintf("cold %d", i+1), nil)
			runs = append(runs, f)
			assaydPeak, containerdPeak = max(assaydPeak, ap), max(containerdPeak, cp)
		}()
	}
	for b.Loop() {
	}
	reportBenchScans(b, runs, assaydPeak, containerdPeak)
	b.ReportMetric(benchMiB(size), "image-MiB")

	// Where containerd spends the pull: a CPU profile over its debug socket
	// for about the median pull, in a run of its own.
	var pulls []time.Duration
	for _, r := range runs {
		pulls = append(pulls, r.pull)
	}
	medPull, _, _ := benchSpread(pulls)
	seconds := max(2, int(medPull.Seconds()+0.999))
	s := newBenchScope(b)
	defer s.close()
	prof := filepath.Join(s.TempDir(), "containerd.pprof")
	var perr error
	var wg sync.WaitGroup
	f, _, _ := scanOnce(s, "profiled", func(d *daemonProc) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			perr = benchContainerdProfile(context.Background(), d, seconds, prof)
		}()
		time.Sleep(100 * time.Millisecond) // the profile starts before the submit
	})
	wg.Wait()
	b.Logf("not counted: %s", f)
	if perr != nil {
		b.Logf("no containerd profile: %v", perr)
		return
	}
	for _, view := range []struct{ what, args string }{
		{"top functions by own time", "-top -nodecount=15"},
		{"paths into system calls, by cumulative time", "-top -cum -nodecount=30 -focus=Syscall6"},
	} {
		args := append([]string{"tool", "pprof"}, strings.Fields(view.args)...)
		out, err := exec.Command("go", append(args, filepath.Join(binDir, "containerd"), prof)...).CombinedOutput()
		if err != nil {
			b.Logf("go tool pprof %s: %v\n%s", view.args, err, out)
			return
		}
		b.Logf("containerd CPU profile of the first %ds of the scan (pull %s in that run), %s (go tool pprof %s):\n%s", seconds, benchMs(f.pull), view.what, view.args, out)
	}
}

// `assay db import ../../shared/testdata/osv` on a fresh daemon, and the
// size of vulndb.db after it; three runs.
func BenchmarkDBImport(b *testing.B) {
	var took []time.Duration
	var size int64
	var status string
	for i := range 3 {
		func() {
			s := newBenchScope(b)
			defer s.close()
			d := startDaemon(s, daemonOpts{})
			s.Cleanup(func() { benchStop(d) })
			t, out := benchImport(s, d)
			took = append(took, t)
			fi, err := os.Stat(filepath.Join(d.State, "vulndb.db"))
			if err != nil {
				s.Fatalf("vulndb.db after the import: %v", err)
			}
			size = fi.Size()
			b.Logf("import %d: %s, vulndb.db %d bytes; %s", i+1, benchMs(t), fi.Size(), strings.TrimSpace(out))
			if status == "" {
				status, _, _ = d.assay("db", "status")
			}
		}()
	}
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	med, lo, hi := benchSpread(took)
	b.ReportMetric(benchMsf(med), "median-ms")
	b.ReportMetric(benchMsf(lo), "min-ms")
	b.ReportMetric(benchMsf(hi), "max-ms")
	b.ReportMetric(benchMiB(size), "vulndb-MiB")
	b.Logf("assay db status after an import:\n%s", status)
}
