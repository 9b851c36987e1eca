package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

const webhookToken = "e2e-webhook-token-0123456789"

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// dockerRegistry runs Debian's docker-registry (distribution 2.8) on
// loopback, sending push notifications to notify (when not "").
func dockerRegistry(t testing.TB, notify string) string {
	t.Helper()
	extra := ""
	if notify != "" {
		extra = fmt.Sprintf(`notifications:
  endpoints:
    - name: assay
      url: %s
      headers: {Authorization: ["Bearer %s"]}
      timeout: 2s
      threshold: 3
      backoff: 1s
`, notify, webhookToken)
	}
	return startDockerRegistry(t, extra)
}

// startDockerRegistry runs Debian's docker-registry on loopback, its
// configuration extended by extra (YAML), and returns its address once it
// answers (any answer: 401 with auth).
func startDockerRegistry(tb testing.TB, extra string) string {
	tb.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		tb.Fatal("docker-registry missing: apt-get install docker-registry")
	}
	dir := tb.TempDir()
	addr := freePort(tb)
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s/data}, delete: {enabled: true}}\nhttp: {addr: %s}\n", dir, addr) + extra
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if tb.Failed() {
			tb.Logf("docker-registry %s log:\n%s", addr, log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("docker-registry did not start:\n%s", log.String())
	return ""
}

// registryDigest asks the registry for the manifest digest of repo:tag.
func registryDigest(t testing.TB, addr, repo, tag string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	if d == "" {
		t.Fatalf("no digest for %s:%s (status %d)", repo, tag, resp.StatusCode)
	}
	return d
}

// A push to a real registry alone starts a scan: the registry notifies the
// webhook, assayd pulls the real Debian image through its containerd, and
// the report's digest is the registry's.
func TestPushNotificationStartsScan(t *testing.T) {
	hook := freePort(t)
	reg := dockerRegistry(t, "http://"+hook+"/")
	d := startDaemon(t, daemonOpts{args: []string{
		"--webhook.listen", hook,
		"--webhook.token", webhookToken,
		"--webhook.registries", reg + "=" + reg,
	}})
	out, err := exec.Command("skopeo", "copy", "--dest-tls-verify=false",
		"oci-archive:../../shared/testdata/images/debian-12-minbase.oci.tar",
		"docker://"+reg+"/library/debian:12").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	digest := registryDigest(t, reg, "library/debian", "12")

	var sc scans.Scan
	waitFor(t, 30*time.Second, "a scan started by the push", func() bool {
		list, _, err := d.Client.Scans(context.Background(), scans.Filter{})
		if err != nil || len(list) == 0 {
			return false
		}
		sc = list[0]
		return true
	})
	if sc.Trigger != "webhook" || !strings.HasSuffix(sc.Image, "/library/debian@"+digest) {
		t.Fatalf("scan from the push: %+v", sc)
	}
	sc = d.waitStatus(sc.ID, scans.Done, 60*time.Second)
	rep, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Digest != digest || rep.Platform != "linux/amd64" || len(rep.Layers) != 1 || rep.Layers[0].DiffID == "" || rep.ConfigDigest == "" {
		t.Fatalf("report: %+v", rep)
	}
	if rep.Verdict != report.Incomplete {
		t.Fatalf("verdict %s without analyzers", rep.Verdict)
	}
	// The registry's retries and a second push of the same image start no
	// second scan.
	exec.Command("skopeo", "copy", "--dest-tls-verify=false",
		"oci-archive:../../shared/testdata/images/debian-12-minbase.oci.tar",
		"docker://"+reg+"/library/debian:12").Run()
	time.Sleep(2 * time.Second)
	list, _, _ := d.Client.Scans(context.Background(), scans.Filter{})
	if len(list) != 1 {
		t.Fatalf("%d scans after a second push of the same image, want 1", len(list))
	}
	assertNoLeftovers(t, d)

	// The webhook refuses a request without the token and garbage with it.
	resp, err := http.Post("http://"+hook+"/", "application/vnd.docker.distribution.events.v2+json", strings.NewReader(`{"events":[]}`))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without token: %v %v", err, resp)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+hook+"/", strings.NewReader(`{"events": [ {"action": "push", "target": 7`))
	req.Header.Set("Authorization", "Bearer "+webhookToken)
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage: %v %v", err, resp)
	}
	if _, err := d.Client.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// assertNoLeftovers counts mounts, views and leases of assayd in its
// managed containerd.
func assertNoLeftovers(t testing.TB, d *daemonProc) {
	t.Helper()
	ctx := context.Background()
	c, err := images.Dial(ctx, filepath.Join(d.State, "containerd", "containerd.sock"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	im := images.New(c, images.Options{Namespace: "assay", ViewsDir: filepath.Join(d.State, "views")})
	mounts, views, leases, err := im.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mounts+views+leases != 0 {
		t.Fatalf("leftovers: %d mounts, %d views, %d leases", mounts, views, leases)
	}
}

func managedPID(t testing.TB, d *daemonProc) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.State, "containerd", "containerd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// The managed containerd killed during a pull: assayd restarts it, the
// scan fails cleanly, nothing leaks, and the next scan works.
func TestContainerdKilledDuringPull(t *testing.T) {
	reg := newRegistry(t)
	ref, _ := reg.push(t, "slowblob/img:1")
	d := startDaemon(t, daemonOpts{})
	sc := d.submit(ref)
	waitFor(t, 20*time.Second, "the pull to hold a blob", func() bool { n, _ := reg.stats(); return n >= 1 })
	old := managedPID(t, d)
	syscall.Kill(old, syscall.SIGKILL)
	reg.Open()
	got := d.waitTerminal(sc.ID, 60*time.Second)
	t.Logf("scan after containerd was killed: %s %q", got.Status, got.Error)
	waitFor(t, 20*time.Second, "a new containerd", func() bool {
		_, err := d.Client.Health(context.Background())
		return err == nil && managedPID(t, d) != old
	})
	ref2, _ := reg.push(t, "demo/after:1")
	d.waitStatus(d.submit(ref2).ID, scans.Done, 60*time.Second)
	if got.Status != scans.Done {
		// A failed attempt left nothing behind either.
		d.waitStatus(d.submit(ref).ID, scans.Done, 60*time.Second)
	}
	assertNoLeftovers(t, d)
	if !strings.Contains(d.log.String(), "restart") {
		t.Fatalf("no restart of containerd was logged:\n%s", d.log.String())
	}
}

// assayd SIGKILLed mid-pull, holding a lease: the restarted daemon removes
// the leftovers and finishes the scan once.
func TestAssaydKilledMidScanCleansUp(t *testing.T) {
	reg := newRegistry(t)
	ref, _ := reg.push(t, "slowblob/kill:1")
	d := startDaemon(t, daemonOpts{})
	sc := d.submit(ref)
	waitFor(t, 20*time.Second, "the pull to hold a blob", func() bool { n, _ := reg.stats(); return n >= 1 })
	d.kill()
	reg.Open()
	d.restart()
	got := d.waitStatus(sc.ID, scans.Done, 60*time.Second)
	if got.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", got.Attempts)
	}
	if !strings.Contains(d.log.String(), "removed leftovers of an earlier run") {
		t.Fatalf("the restarted daemon removed nothing:\n%s", d.log.String())
	}
	assertNoLeftovers(t, d)
	// No containerd of the killed daemon survives it.
	out, _ := exec.Command("pgrep", "-f", filepath.Join(d.State, "containerd")).Output()
	if n := len(bytes.Fields(out)); n != 1 {
		t.Fatalf("%d containerd processes for this state dir, want 1 (the new one)", n)
	}
}

func (d *daemonProc) waitTerminal(id string, timeout time.Duration) scans.Scan {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		sc, err := d.Client.Scan(context.Background(), id)
		if err == nil && sc.Status.Terminal() {
			return sc
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("scan %s did not end", id)
	return scans.Scan{}
}

// An index with two platforms and scan.platforms naming both: one scan per
// platform, each with the platform's manifest digest.
func TestIndexScannedPerConfiguredPlatform(t *testing.T) {
	reg := newRegistry(t)
	ref, digests := reg.pushIndex(t, "multi/app:1", "linux/amd64", "linux/arm64")
	d := startDaemon(t, daemonOpts{args: []string{"--scan.platforms", "linux/amd64,linux/arm64"}})
	first := d.submit(ref)
	d.waitStatus(first.ID, scans.Done, 60*time.Second)
	var list []scans.Scan
	waitFor(t, 30*time.Second, "the second platform's scan", func() bool {
		list, _, _ = d.Client.Scans(context.Background(), scans.Filter{Status: []scans.Status{scans.Done}})
		return len(list) == 2
	})
	got := map[string]string{}
	for _, sc := range list {
		rep, err := d.Client.Report(context.Background(), sc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		got[rep.Platform] = rep.Digest
	}
	for p, want := range digests {
		if got[p] != want {
			t.Fatalf("platform %s: report digest %q, want %s (all: %v)", p, got[p], want, got)
		}
	}
}
