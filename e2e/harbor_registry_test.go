package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The registries Harbor's scanner adapter pulls from in these tests: Debian's
// docker-registry (distribution 2.8) with the two kinds of credentials
// Harbor hands an adapter, a robot account's password (htpasswd, Basic)
// and a JWT scoped to repository:<repo>:pull (token auth).

// debianArchive is the shared real Debian 12 image.
const debianArchive = "../../shared/testdata/images/debian-12-minbase.oci.tar"

// runDockerRegistry runs Debian's docker-registry on loopback with auth
// (a YAML mapping under "auth:", "" for none) and returns its address.
func runDockerRegistry(tb testing.TB, auth string) string {
	tb.Helper()
	if auth == "" {
		return startDockerRegistry(tb, "")
	}
	return startDockerRegistry(tb, "auth:\n"+auth)
}

// htpasswdRegistry runs docker-registry that lets in only user:pass (HTTP
// Basic against an htpasswd file of bcrypt hashes, the only kind
// distribution reads).
func htpasswdRegistry(tb testing.TB, user, pass string) string {
	tb.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return runDockerRegistry(tb, fmt.Sprintf("  htpasswd: {realm: assay-e2e, path: %s}\n", file))
}

// tokenRegistry is docker-registry with token auth and the token server
// its realm names. The server gives a token for any requested scope to
// PushUser:PushPass (what skopeo needs to push); Mint makes the token
// Harbor would hand an adapter.
type tokenRegistry struct {
	Addr               string
	PushUser, PushPass string

	service, issuer string
	key             *ecdsa.PrivateKey
	certDER         []byte
}

func newTokenRegistry(tb testing.TB) *tokenRegistry {
	tb.Helper()
	r := &tokenRegistry{PushUser: "e2e-pusher", PushPass: randomHex(16), service: "assay-e2e-registry", issuer: "assay-e2e-token-issuer"}
	var err error
	if r.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	// One self-signed certificate is the registry's whole root bundle and
	// the token's x5c chain: distribution verifies the chain up to the
	// bundle, then the ES256 signature with the leaf's key.
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: r.issuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if r.certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &r.key.PublicKey, r.key); err != nil {
		tb.Fatal(err)
	}
	bundle := filepath.Join(tb.TempDir(), "token-root.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.certDER}), 0o644); err != nil {
		tb.Fatal(err)
	}
	realm := httptest.NewServer(http.HandlerFunc(r.serveToken))
	tb.Cleanup(realm.Close)
	r.Addr = runDockerRegistry(tb, fmt.Sprintf("  token: {realm: %q, service: %q, issuer: %q, rootcertbundle: %s}\n",
		realm.URL+"/token", r.service, r.issuer, bundle))
	return r
}

// serveToken is the realm of the distribution token protocol: GET with
// service and scope parameters and Basic credentials, answered with
// {"token": ...}.
func (r *tokenRegistry) serveToken(w http.ResponseWriter, req *http.Request) {
	user, pass, ok := req.BasicAuth()
	if !ok || user != r.PushUser || pass != r.PushPass || req.URL.Query().Get("service") != r.service {
		w.Header().Set("WWW-Authenticate", `Basic realm="assay-e2e-token"`)
		http.Error(w, "credentials required", http.StatusUnauthorized)
		return
	}
	var access []tokenAccess
	for _, scope := range req.URL.Query()["scope"] {
		for _, s := range strings.Fields(scope) {
			// type:name:actions, the name possibly holding a colon (host:port/...).
			typ, rest, ok1 := strings.Cut(s, ":")
			i := strings.LastIndex(rest, ":")
			if !ok1 || i < 0 {
				http.Error(w, "bad scope "+s, http.StatusBadRequest)
				return
			}
			access = append(access, tokenAccess{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")})
		}
	}
	tok, err := r.sign(user, access, 5*time.Minute)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
}

// tokenAccess is one entry of a token's access claim.
type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Mint returns a token that lets its bearer pull repo and nothing else,
// as Harbor's core hands one to a scanner adapter.
func (r *tokenRegistry) Mint(tb testing.TB, repo string) string {
	tb.Helper()
	tok, err := r.sign("robot$harbor+scan", []tokenAccess{{Type: "repository", Name: repo, Actions: []string{"pull"}}}, 30*time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// sign makes a compact JWS of the claims distribution 2.8 reads
// (registry/auth/token: iss, sub, aud as one string, exp, nbf, iat, jti,
// access), signed ES256 (r||s, as libtrust verifies it) with the x5c
// header naming the signing certificate.
func (r *tokenRegistry) sign(subject string, access []tokenAccess, ttl time.Duration) (string, error) {
	now := time.Now()
	if access == nil {
		access = []tokenAccess{}
	}
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(r.certDER)}})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": r.issuer, "sub": subject, "aud": r.service,
		"exp": now.Add(ttl).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": randomHex(8), "access": access,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	rr, ss, err := ecdsa.Sign(rand.Reader, r.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// skopeoPush copies the shared Debian archive to addr/repoTag with creds
// (user:password) over plain HTTP; extra are more skopeo copy flags.
func skopeoPush(tb testing.TB, addr, repoTag, creds string, extra ...string) {
	tb.Helper()
	args := append([]string{"copy", "--dest-tls-verify=false", "--dest-creds", creds}, extra...)
	out, err := exec.Command("skopeo", append(args, "oci-archive:"+debianArchive, "docker://"+addr+"/"+repoTag)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("skopeo copy to %s/%s: %v\n%s", addr, repoTag, err, out)
	}
}

// manifestStatus GETs a manifest of repo (tag or digest) with the given
// Authorization header ("" for none) and returns the status and the
// Docker-Content-Digest header.
func manifestStatus(tb testing.TB, addr, repo, ref, authorization string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
}

// pushedDigest is the manifest digest of repo:tag, read with authorization.
func pushedDigest(tb testing.TB, addr, repo, tag, authorization string) string {
	tb.Helper()
	status, digest := manifestStatus(tb, addr, repo, tag, authorization)
	if status != http.StatusOK || digest == "" {
		tb.Fatalf("GET %s/v2/%s/manifests/%s with credentials: status %d, digest %q", addr, repo, tag, status, digest)
	}
	return digest
}

// basicAuthorization is the Authorization header value of user:pass.
func basicAuthorization(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// registryGate forwards to a registry, holding every manifest request until
// Open: how a test keeps a scan pending for as long as it needs (the
// registry itself still answers and authenticates every request).
type registryGate struct {
	Addr string

	once sync.Once
	open chan struct{}
}

func newRegistryGate(tb testing.TB, registry string) *registryGate {
	tb.Helper()
	g := &registryGate{open: make(chan struct{})}
	target := &url.URL{Scheme: "http", Host: registry}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			select {
			case <-g.open:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(func() { g.Open(); srv.Close() })
	g.Addr = strings.TrimPrefix(srv.URL, "http://")
	return g
}

// Open lets held and future manifest requests through.
func (g *registryGate) Open() { g.once.Do(func() { close(g.open) }) }
