package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/scans"
)

// nodeContainerd starts a containerd that is not assayd's: the node's, in
// node mode. bin is the containerd binary to run.
func nodeContainerd(t *testing.T, bin string) string {
	t.Helper()
	dir := shortTempDir(t)
	m, err := images.StartManaged(context.Background(), images.ManagedOptions{Binary: bin, Dir: filepath.Join(dir, "node"), StartTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })
	return m.Address()
}

// Node mode: assayd is a client of a containerd it did not start, in the
// configured namespace; with watch_images, an image pulled on the node (as
// kubelet would) is scanned without being asked.
func TestNodeModeScanOnPull(t *testing.T) {
	ctrBin := filepath.Join(binDir, "containerd")
	addr := nodeContainerd(t, ctrBin)
	reg := newRegistry(t)
	ref, digest := reg.push(t, "node/app:1")
	d := startDaemon(t, daemonOpts{args: []string{
		"--containerd.address", "unix://" + addr,
		"--containerd.namespace", "k8s.io",
		"--containerd.watch_images=true",
	}})
	if strings.Contains(d.log.String(), "managed containerd serving") {
		t.Fatal("assayd started its own containerd in node mode")
	}
	// "kubelet" pulls the image on the node.
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	if _, err := c.Pull(ctx, ref, client.WithPullUnpack); err != nil {
		t.Fatal(err)
	}
	var sc scans.Scan
	waitFor(t, 30*time.Second, "a scan started by the pull", func() bool {
		list, _, _ := d.Client.Scans(context.Background(), scans.Filter{})
		for _, s := range list {
			if s.Trigger == "containerd" {
				sc = s
				return true
			}
		}
		return false
	})
	if !strings.HasSuffix(sc.Image, "@"+digest) {
		t.Fatalf("scan image %s, want the pulled digest %s", sc.Image, digest)
	}
	d.waitStatus(sc.ID, scans.Done, 60*time.Second)
	// The node's image record is the node's: assayd must not delete it.
	if _, err := c.ImageService().Get(ctx, ref); err != nil {
		t.Fatalf("the node's image record is gone after the scan: %v", err)
	}
	// An API scan in node mode too.
	ref2, _ := reg.push(t, "node/other:1")
	d.waitStatus(d.submit(ref2).ID, scans.Done, 60*time.Second)
}

// Node mode against Debian's containerd 1.6.20 (older API: no Transfer
// service): pull, view and events still work.
func TestNodeModeDebianContainerd(t *testing.T) {
	const debian = "/usr/bin/containerd"
	if _, err := os.Stat(debian); err != nil {
		t.Skip("Debian's containerd package is not installed (apt-get install containerd)")
	}
	out, _ := exec.Command(debian, "--version").Output()
	t.Logf("node containerd: %s", strings.TrimSpace(string(out)))
	addr := nodeContainerd(t, debian)
	reg := newRegistry(t)
	ref, digest := reg.push(t, "old/app:1")
	d := startDaemon(t, daemonOpts{args: []string{"--containerd.address", addr, "--containerd.watch_images=true"}})
	sc := d.waitStatus(d.submit(ref).ID, scans.Done, 60*time.Second)
	if sc.Digest != digest {
		t.Fatalf("digest %s, want %s", sc.Digest, digest)
	}
}
