package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// A real image in a real registry comes out as a stored report; the CLI
// waits with progress, prints it, and finds it by digest and by reference.
func TestScanReportsImage(t *testing.T) {
	reg := newRegistry(t)
	ref, digest := reg.push(t, "demo/app:1")
	d := startDaemon(t, daemonOpts{})

	out, errOut, code := d.assay("scan", "--wait", "-o", "json", ref)
	if code != 0 {
		t.Fatalf("assay scan --wait: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "done") {
		t.Errorf("no progress line on stderr: %q", errOut)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	if rep.Digest != digest || rep.Image != ref || rep.Platform != "linux/amd64" || len(rep.Layers) != 1 {
		t.Fatalf("report: digest %s image %s platform %s layers %d; want %s %s", rep.Digest, rep.Image, rep.Platform, len(rep.Layers), digest, ref)
	}
	// No analyzer exists yet: the scan did not look, so it is not healthy.
	if rep.Verdict != report.Incomplete {
		t.Fatalf("verdict %s, want incomplete", rep.Verdict)
	}
	got, err := d.Client.Report(context.Background(), digest)
	if err != nil || got.ScanID != rep.ScanID {
		t.Fatalf("GET /v1/reports/%s: %v %+v", digest, err, got)
	}
	out, _, code = d.assay("report", ref)
	if code != 0 || !strings.Contains(out, digest) || !strings.Contains(out, "incomplete") {
		t.Fatalf("assay report %s: exit %d\n%s", ref, code, out)
	}
	if _, err := d.Client.Report(context.Background(), "sha256:"+strings.Repeat("0", 64)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("report of an unknown digest: %v, want not found", err)
	}
	// A reference that does not exist fails with the registry's reason.
	bad := d.submit(reg.Host + "/demo/missing:1")
	failed := d.waitStatus(bad.ID, scans.Failed, 30*time.Second)
	if !strings.Contains(failed.Error, "not found") {
		t.Fatalf("missing image error %q", failed.Error)
	}
	if _, _, code := d.assay("scan", "--wait", reg.Host+"/demo/missing:1"); code != 4 {
		t.Fatalf("scan --wait of a missing image: exit %d, want 4", code)
	}
}

// Two workers, five slow images: never more than two in flight; the same
// image submitted again while queued or running is the same scan.
func TestConcurrencyAndDedupe(t *testing.T) {
	reg := newRegistry(t)
	var refs []string
	for i := 0; i < 5; i++ {
		ref, _ := reg.push(t, fmt.Sprintf("slow/img%d:1", i))
		refs = append(refs, ref)
	}
	d := startDaemon(t, daemonOpts{args: []string{"--scan.concurrency", "2"}})
	var ids []string
	for _, ref := range refs {
		ids = append(ids, d.submit(ref).ID)
	}
	again, dedup, err := d.Client.Submit(context.Background(), scans.Request{Image: refs[0]})
	if err != nil || !dedup || again.ID != ids[0] {
		t.Fatalf("resubmit: id %s dedup %v err %v, want %s", again.ID, dedup, err, ids[0])
	}
	waitFor(t, 10*time.Second, "two scans in flight", func() bool { n, _ := reg.stats(); return n == 2 })
	time.Sleep(300 * time.Millisecond) // give a wrongly started third worker time to show up
	if _, maxIn := reg.stats(); maxIn != 2 {
		t.Fatalf("%d scans in flight with scan.concurrency 2", maxIn)
	}
	queued, _, err := d.Client.Scans(context.Background(), scans.Filter{Status: []scans.Status{scans.Queued}})
	if err != nil || len(queued) != 3 {
		t.Fatalf("queued scans: %d (err %v), want 3", len(queued), err)
	}
	reg.Open()
	for _, id := range ids {
		d.waitStatus(id, scans.Done, 30*time.Second)
	}
	if _, maxIn := reg.stats(); maxIn != 2 {
		t.Fatalf("max in flight %d", maxIn)
	}
}

// DELETE reaches a queued scan at once and a running one through its context.
func TestCancel(t *testing.T) {
	reg := newRegistry(t)
	slowRef, _ := reg.push(t, "slow/cancel:1")
	otherRef, _ := reg.push(t, "slow/queued:1")
	d := startDaemon(t, daemonOpts{args: []string{"--scan.concurrency", "1"}})
	running := d.submit(slowRef)
	queued := d.submit(otherRef)
	d.waitStatus(running.ID, scans.Pulling, 10*time.Second)
	waitFor(t, 10*time.Second, "the registry request in flight", func() bool { n, _ := reg.stats(); return n == 1 })

	out, errOut, code := d.assay("cancel", queued.ID)
	if code != 0 {
		t.Fatalf("assay cancel: %d %s %s", code, out, errOut)
	}
	d.waitStatus(queued.ID, scans.Cancelled, 5*time.Second)
	if _, err := d.Client.Cancel(context.Background(), running.ID); err != nil {
		t.Fatal(err)
	}
	sc := d.waitStatus(running.ID, scans.Cancelled, 10*time.Second)
	if sc.Error == "" {
		t.Fatal("a cancelled scan carries no reason")
	}
	// The held registry request was abandoned: cancellation reached the pull.
	waitFor(t, 10*time.Second, "the pull to be abandoned", func() bool { n, _ := reg.stats(); return n == 0 })
	if _, err := d.Client.Cancel(context.Background(), running.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("cancel of a finished scan: %v, want conflict", err)
	}
}

// SIGKILL while one scan runs and two wait: the restarted daemon finishes
// all three, each exactly once.
func TestKillDuringQueuedAndRunningScans(t *testing.T) {
	reg := newRegistry(t)
	var refs []string
	for i := 0; i < 3; i++ {
		ref, _ := reg.push(t, fmt.Sprintf("slow/kill%d:1", i))
		refs = append(refs, ref)
	}
	d := startDaemon(t, daemonOpts{args: []string{"--scan.concurrency", "1"}})
	var ids []string
	for _, ref := range refs {
		ids = append(ids, d.submit(ref).ID)
	}
	d.waitStatus(ids[0], scans.Pulling, 10*time.Second)
	waitFor(t, 10*time.Second, "the first scan in flight", func() bool { n, _ := reg.stats(); return n == 1 })
	d.kill()
	reg.Open()
	took := d.restart()
	t.Logf("SIGKILL to serving again: %s", took)
	for i, id := range ids {
		sc := d.waitStatus(id, scans.Done, 30*time.Second)
		wantAttempts := 1
		if i == 0 {
			wantAttempts = 2
		}
		if sc.Attempts != wantAttempts {
			t.Errorf("scan %d: %d attempts, want %d", i, sc.Attempts, wantAttempts)
		}
		out, errOut, code := runCLIRaw(d.Sock, "/v1/reports/"+sc.Digest+"/history")
		var hist struct{ Reports []report.Report }
		if code != 0 || json.Unmarshal([]byte(out), &hist) != nil || len(hist.Reports) != 1 {
			t.Errorf("scan %d: history %s %s, want exactly 1 report", i, out, errOut)
		}
	}
	// The restarted daemon takes new work too.
	ref, _ := reg.push(t, "demo/ok:1")
	d.waitStatus(d.submit(ref).ID, scans.Done, 30*time.Second)
}

// A client that stops reading /v1/events is dropped; the daemon goes on.
func TestSlowEventsReaderIsDropped(t *testing.T) {
	reg := newRegistry(t)
	ref, _ := reg.push(t, "demo/events:1")
	d := startDaemon(t, daemonOpts{args: []string{"--api.event_buffer", "4", "--scan.concurrency", "2"}})

	conn, err := net.Dial("unix", d.Sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events HTTP/1.1\r\nHost: assay\r\n\r\n")
	waitFor(t, 5*time.Second, "the subscriber", func() bool { return metric(t, d, "assay_event_subscribers") == 1 })

	// Generate far more events than the buffer and socket hold, without
	// reading: digest-pinned references that do not exist fail fast, each
	// a new scan with three events.
	repo := ref[:strings.LastIndex(ref, ":")]
	for i := 0; metric(t, d, "assay_event_subscribers") != 0; {
		if i > 3000 {
			t.Fatal("the slow reader was never dropped")
		}
		for j := 0; j < 50; j, i = j+1, i+1 {
			d.submit(fmt.Sprintf("%s@sha256:%064x", repo, i+1))
		}
	}
	// The daemon still serves and scans.
	if _, err := d.Client.Health(context.Background()); err != nil {
		t.Fatalf("health after dropping a reader: %v", err)
	}
	// The dropped reader finds the final error line at the end of its stream.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last string
	lines := 0
	for sc.Scan() {
		last = sc.Text()
		lines++
	}
	var ev scans.Event
	if err := json.Unmarshal([]byte(last), &ev); err != nil || ev.Type != "error" || ev.Error == nil || ev.Error.Code != "slow_consumer" {
		t.Fatalf("last of %d lines is %q, want the slow_consumer error", lines, last)
	}
}

// metric reads one gauge from /v1/metrics.
func metric(t *testing.T, d *daemonProc, name string) float64 {
	t.Helper()
	out, _, code := runCLIRaw(d.Sock, "/v1/metrics")
	if code != 0 {
		t.Fatalf("metrics: %s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, name+" "), &v)
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// runCLIRaw fetches a path with curl over the socket, as a user would.
func runCLIRaw(sock, path string) (string, string, int) {
	cmd := exec.Command("curl", "-sS", "--fail-with-body", "--unix-socket", sock, "http://assay"+path)
	out, err := cmd.Output()
	if err != nil {
		return string(out), err.Error(), 1
	}
	return string(out), "", 0
}

// The socket is 0660 root:group; a caller outside the group cannot connect,
// and when the mode is opened wider, the peer-credential check refuses it.
func TestPermissionRefusal(t *testing.T) {
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	d := startDaemon(t, daemonOpts{args: []string{"--socket.group", "0"}})
	fi, err := os.Stat(d.Sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v (err %v), want 0660", fi.Mode().Perm(), err)
	}
	_, errOut, code := runCLI(d.Sock, nobody, "health")
	if code != 1 || !strings.Contains(strings.ToLower(errOut), "permission denied") {
		t.Fatalf("nobody on a 0660 socket: exit %d, %q", code, errOut)
	}

	open := startDaemon(t, daemonOpts{args: []string{"--socket.group", "0", "--socket.mode", "0666"}})
	_, errOut, code = runCLI(open.Sock, nobody, "health")
	if code != 1 || !strings.Contains(errOut, "permission_denied") && !strings.Contains(errOut, "65534") {
		t.Fatalf("nobody on a 0666 socket: exit %d, %q; want refusal by peer credentials", code, errOut)
	}
	_, errOut, code = runCLI(open.Sock, nobody, "scan", "127.0.0.1:1/x:1")
	if code != 1 {
		t.Fatalf("nobody submitting: exit %d, %q", code, errOut)
	}
	if _, _, code := runCLI(open.Sock, nil, "health"); code != 0 {
		t.Fatal("root refused")
	}
	// A member of the group by supplementary groups may write.
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{0}}
	if out, errOut, code := runCLI(open.Sock, member, "health"); code != 0 {
		t.Fatalf("group member refused: %s %s", out, errOut)
	}
}

// Roles from groups: readers read, scanners scan and cancel their own
// scans, admins also scan with a policy of their own and prune the cache.
func TestRoles(t *testing.T) {
	d := startDaemon(t, daemonOpts{args: []string{"--socket.read_group", "1", "--socket.group", "2", "--socket.admin_group", "3", "--socket.mode", "0666"}})
	as := func(gid uint32) *syscall.Credential {
		return &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{gid}}
	}
	reader, scanner, admin := as(1), as(2), as(3)
	if out, errOut, code := runCLI(d.Sock, reader, "health"); code != 0 {
		t.Fatalf("reader refused health: %s %s", out, errOut)
	}
	if _, errOut, code := runCLI(d.Sock, reader, "scan", "127.0.0.1:1/x:1"); code == 0 || !strings.Contains(errOut, "needs the scan role") {
		t.Errorf("reader submitting: exit %d, %q", code, errOut)
	}
	out, errOut, code := runCLI(d.Sock, scanner, "scan", "-o", "json", "127.0.0.1:1/x:1")
	var sc scans.Scan
	if code != 0 || json.Unmarshal([]byte(out), &sc) != nil || sc.SubmittedBy == nil || *sc.SubmittedBy != 65534 {
		t.Fatalf("scanner submitting: exit %d, %s %s", code, out, errOut)
	}
	if _, errOut, code := runCLI(d.Sock, scanner, "scan", "--min-severity", "critical", "127.0.0.1:1/y:1"); code == 0 || !strings.Contains(errOut, "admin role") {
		t.Errorf("scanner with a policy of its own: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI(d.Sock, scanner, "cache", "prune"); code == 0 || !strings.Contains(errOut, "admin role") {
		t.Errorf("scanner pruning the cache: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI(d.Sock, admin, "scan", "--min-severity", "critical", "127.0.0.1:1/y:1"); code != 0 {
		t.Errorf("admin with a policy of its own: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI(d.Sock, admin, "cache", "prune"); code != 0 {
		t.Errorf("admin pruning the cache: exit %d, %q", code, errOut)
	}
}

// A live socket is never stolen; a stale one is replaced.
func TestSocketIsNotStolen(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	cmd := exec.Command(filepath.Join(binDir, "assayd"), "--config", "/dev/null", "--socket.path", d.Sock, "--state_dir", shortTempDir(t))
	cmd.Env = daemonEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("second daemon on a live socket: err %v\n%s", err, out)
	}
	if _, err := d.Client.Health(context.Background()); err != nil {
		t.Fatalf("first daemon lost its socket: %v", err)
	}
	d.kill() // leaves the socket file behind
	if _, err := os.Stat(d.Sock); err != nil {
		t.Fatalf("expected a stale socket after SIGKILL: %v", err)
	}
	d.restart()
}

// SIGTERM drains: running scans are put back and resume at the next start.
func TestSigtermDrainsAndResumes(t *testing.T) {
	reg := newRegistry(t)
	ref, _ := reg.push(t, "slow/term:1")
	d := startDaemon(t, daemonOpts{args: []string{"--shutdown.timeout", "500ms"}})
	sc := d.submit(ref)
	d.waitStatus(sc.ID, scans.Pulling, 10*time.Second)
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := d.cmd.Wait()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("assayd exit after SIGTERM: %v\n%s", err, d.log.String())
	}
	if took > 10*time.Second {
		t.Fatalf("SIGTERM took %s", took)
	}
	if _, err := os.Stat(d.Sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after a clean stop: %v", err)
	}
	reg.Open()
	d.restart()
	got := d.waitStatus(sc.ID, scans.Done, 30*time.Second)
	if got.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", got.Attempts)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
