package webhook

// The integration test pushes a real image to a real CNCF distribution
// registry (Debian's docker-registry, distribution 2.8) and checks that its
// notifications become exactly one scan request. It runs only with
// ASSAY_INTEGRATION=1 and then needs docker-registry and skopeo
// (apt-get install -y docker-registry skopeo); no root, no network beyond
// loopback.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegistryIntegration(t *testing.T) {
	if os.Getenv("ASSAY_INTEGRATION") != "1" {
		t.Skip("integration: set ASSAY_INTEGRATION=1 to push an image to a real docker-registry")
	}
	for _, bin := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found (ASSAY_INTEGRATION=1): apt-get install -y docker-registry skopeo", bin)
		}
	}
	image := filepath.Join(repoRoot(t), "..", "shared", "testdata", "images", "debian-12-minbase.oci.tar")
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("test image: %v", err)
	}

	t.Run("Host", func(t *testing.T) {
		// Without http.host, distribution builds target.url from the Host
		// the pusher used, and request.host is that Host too: the name in
		// events is 127.0.0.1:<port>. It is mapped to localhost:<port> so the
		// test sees the mapping applied.
		port := freePort(t)
		name := fmt.Sprintf("127.0.0.1:%d", port)
		testRegistryPush(t, image, port, "", name, fmt.Sprintf("localhost:%d", port))
	})
	t.Run("HTTPHost", func(t *testing.T) {
		// With http.host set, target.url carries the configured host while
		// request.host still says 127.0.0.1:<port>. Only the http.host name
		// is mapped, so the request proves target.url wins. (http.host must
		// resolve: the registry also puts it in upload Location headers.)
		port := freePort(t)
		name := fmt.Sprintf("localhost:%d", port)
		testRegistryPush(t, image, port, "http://"+name, name, fmt.Sprintf("127.0.0.1:%d", port))
	})
}

// testRegistryPush runs a registry on port (with http.host = httpHost unless
// empty) notifying a webhook that maps eventName to mapped, pushes image and
// checks the one scan request.
func testRegistryPush(t *testing.T, image string, port int, httpHost, eventName, mapped string) {
	ctx := t.Context()
	sub := newFake()
	logs := &logBuffer{}
	t.Cleanup(func() { t.Logf("webhook logs:\n%s", logs) })
	srv, err := Serve(ctx, "127.0.0.1:0", Options{
		Token:      testToken,
		Registries: map[string]string{eventName: mapped},
		Submitter:  sub,
		Logger:     newLogger(logs),
	})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	regAddr := fmt.Sprintf("127.0.0.1:%d", port)
	hostLine := ""
	if httpHost != "" {
		hostLine = "\n  host: " + httpHost
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s%s
notifications:
  endpoints:
    - name: assay
      url: http://%s/
      headers:
        Authorization: [Bearer %s]
      timeout: 1s
      threshold: 5
      backoff: 1s
`, filepath.Join(dir, "storage"), regAddr, hostLine, srv.Addr(), testToken)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	regLog, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer regLog.Close()
	reg := exec.CommandContext(ctx, "docker-registry", "serve", configPath)
	reg.Stdout, reg.Stderr = regLog, regLog
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = reg.Process.Kill()
		_ = reg.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(regLog.Name())
			t.Logf("registry log:\n%s", b)
		}
	})
	waitHTTP(t, "http://"+regAddr+"/v2/", 15*time.Second)

	pushCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ref := "docker://" + regAddr + "/library/debian:12"
	cp := exec.CommandContext(pushCtx, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "oci-archive:"+image, ref)
	cp.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}

	digest := servedDigest(t, "http://"+regAddr+"/v2/library/debian/manifests/12")
	want := mapped + "/library/debian@" + digest
	t.Logf("registry serves library/debian:12 as %s; want a scan of %s", digest, want)

	deadline := time.Now().Add(20 * time.Second)
	for len(sub.requests()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no scan request within 20s of the push")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Give late or redelivered notifications (the HEAD above is a pull
	// event) a moment to arrive: there must still be exactly one request.
	time.Sleep(2 * time.Second)
	got := sub.requests()
	if len(got) != 1 || got[0].Image != want || got[0].Trigger != "webhook" {
		t.Fatalf("scan requests %+v, want exactly one of %s (trigger webhook)", got, want)
	}
	if l := logs.String(); !strings.Contains(l, "registry="+eventName) {
		t.Errorf("the queued scan was not logged with registry=%s", eventName)
	}
}

// servedDigest is the Docker-Content-Digest the registry answers for a
// manifest HEAD that accepts every manifest and index type.
func servedDigest(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range []string{
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	} {
		req.Header.Add("Accept", mt)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	d := res.Header.Get("Docker-Content-Digest")
	if res.StatusCode != http.StatusOK || !validDigest(d) {
		t.Fatalf("HEAD %s: %s, Docker-Content-Digest %q", url, res.Status, d)
	}
	return d
}

func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v: %v", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the registry binds; the registry would then fail to start
// and waitHTTP would say so.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// repoRoot is the directory holding go.mod, found upwards from the test's
// package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
