package images

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// distribution starts Debian's docker-registry (distribution 2.8) on
// loopback with htpasswd authentication and returns its host:port.
func distribution(t *testing.T, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("docker-registry missing: apt-get install docker-registry")
	}
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: %s/data}}
http: {addr: %s}
auth:
  htpasswd: {realm: assay-test, path: %s/htpasswd}
`, dir, addr, dir)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("docker-registry did not start: %s", out)
	return ""
}

// A private registry needs credentials: without registries.auth_file the
// pull is refused, with it the image is acquired.
func TestPrivateRegistryWithAuthFile(t *testing.T) {
	e := newEnv(t, Limits{})
	host := distribution(t, "scanner", "s3cret-pass")
	ref, err := name.ParseReference(host + "/private/img:1")
	if err != nil {
		t.Fatal(err)
	}
	img := image(t, "linux/amd64", tarLayer(t, file{name: "hello", body: "private"}))
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "scanner", Password: "s3cret-pass"})); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.im.Acquire(ctx, "noauth", ref.String(), "linux/amd64"); err == nil || !strings.Contains(strings.ToLower(err.Error()), "unauthorized") && !strings.Contains(err.Error(), "401") {
		t.Fatalf("pull without credentials: %v, want unauthorized", err)
	}
	e.noLeftovers(t)

	auth := filepath.Join(t.TempDir(), "config.json")
	cred := base64.StdEncoding.EncodeToString([]byte("scanner:s3cret-pass"))
	os.WriteFile(auth, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, cred)), 0o600)
	e.im.o.AuthFile = auth
	got, err := e.im.Acquire(ctx, "auth", ref.String(), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(got.Root, "hello"))
	if string(data) != "private" {
		t.Fatalf("content %q", data)
	}
	d, _ := img.Digest()
	if got.Digest != d.String() {
		t.Fatalf("digest %s, want %s", got.Digest, d)
	}
	got.Release(ctx)
	e.noLeftovers(t)
}
