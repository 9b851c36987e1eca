package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA writes a CA and a server certificate for 127.0.0.1 signed by it,
// and returns the CA file, the certificate file and the key file.
func testCA(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "assay test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "assayd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return caFile, certFile, keyFile
}

// The /v1 API over TCP with TLS: each token's role decides; an unknown
// or expired token, and a client that does not trust the certificate,
// get nothing.
func TestTCPAPI(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := testCA(t, dir)
	tokens := map[string]string{"read": "read-token-0123456789", "scan": "scan-token-0123456789", "admin": "admin-token-0123456789", "old": "old-token-0123456789"}
	tokensFile := filepath.Join(dir, "tokens")
	os.WriteFile(tokensFile, []byte("read "+tokens["read"]+"\nscan "+tokens["scan"]+"\nadmin "+tokens["admin"]+"\nadmin "+tokens["old"]+" 2020-01-01\n"), 0o600)
	tokenFile := func(name string) string {
		p := filepath.Join(dir, name+".token")
		os.WriteFile(p, []byte(tokens[name]+"\n"), 0o600)
		return p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := startDaemon(t, daemonOpts{args: []string{"--api.listen", addr, "--api.tokens_file", tokensFile, "--api.tls_cert_file", certFile, "--api.tls_key_file", keyFile}})
	remote := func(token string, args ...string) (string, string, int) {
		return runCLI(d.Sock, nil, append([]string{"--server", "https://" + addr, "--token-file", tokenFile(token), "--ca-file", caFile}, args...)...)
	}
	if out, errOut, code := remote("read", "health"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("reader's health: exit %d %s %s", code, out, errOut)
	}
	if _, errOut, code := remote("read", "scan", "127.0.0.1:1/x:1"); code == 0 || !strings.Contains(errOut, "needs the scan role") {
		t.Errorf("reader scanning: exit %d %s", code, errOut)
	}
	if _, errOut, code := remote("scan", "scan", "127.0.0.1:1/x:1"); code != 0 {
		t.Errorf("scanner scanning: exit %d %s", code, errOut)
	}
	if _, errOut, code := remote("scan", "cache", "prune"); code == 0 || !strings.Contains(errOut, "admin role") {
		t.Errorf("scanner pruning: exit %d %s", code, errOut)
	}
	if _, errOut, code := remote("admin", "cache", "prune"); code != 0 {
		t.Errorf("admin pruning: exit %d %s", code, errOut)
	}
	if _, errOut, code := remote("old", "health"); code == 0 || !strings.Contains(errOut, "expired") {
		t.Errorf("expired token: exit %d %s", code, errOut)
	}
	tokens["nobody"] = "unknown-token-0123456789"
	if _, errOut, code := remote("nobody", "health"); code == 0 || !strings.Contains(errOut, "unknown token") {
		t.Errorf("unknown token: exit %d %s", code, errOut)
	}
	// Without the CA the certificate is not trusted.
	if _, errOut, code := runCLI(d.Sock, nil, "--server", "https://"+addr, "--token-file", tokenFile("admin"), "health"); code == 0 || !strings.Contains(errOut, "certificate") {
		t.Errorf("untrusted certificate: exit %d %s", code, errOut)
	}
}
