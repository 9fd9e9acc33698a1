package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-fs/cairn/internal/wire"
)

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	ca, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("CA file mode %v, want 0600 (it holds the key)", fi.Mode().Perm())
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v", created, err)
	}
	if ca.ClusterID() != again.ClusterID() || len(ca.ClusterID()) != 16 {
		t.Fatalf("cluster ID changed on reload: %s vs %s", ca.ClusterID(), again.ClusterID())
	}
	other, _, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if other.ClusterID() == ca.ClusterID() {
		t.Fatal("two CAs share a cluster ID")
	}
}

func TestLoadBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not a pem file"), 0o600)
	if _, err := Load(garbage); err == nil {
		t.Error("garbage loaded")
	}
	// LoadOrCreate must not overwrite a file that exists but is bad.
	if _, _, err := LoadOrCreate(garbage); err == nil {
		t.Error("LoadOrCreate accepted garbage")
	}
	if b, _ := os.ReadFile(garbage); string(b) != "not a pem file" {
		t.Error("LoadOrCreate overwrote an existing file")
	}
	// A certificate without its key is refused.
	src := filepath.Join(dir, "ca.pem")
	if _, _, err := LoadOrCreate(src); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(src)
	certOnly := filepath.Join(dir, "cert-only")
	i := len(b)
	for j := range b {
		if string(b[j:min(j+len("-----BEGIN EC"), len(b))]) == "-----BEGIN EC" {
			i = j
			break
		}
	}
	os.WriteFile(certOnly, b[:i], 0o600)
	if _, err := Load(certOnly); err == nil {
		t.Error("a CA file without its key loaded")
	}
}

func TestTLSConfig(t *testing.T) {
	ca, _, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c1, err := ca.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := ca.TLSConfig()
	if c1.MinVersion != tls.VersionTLS13 {
		t.Error("TLS below 1.3 allowed")
	}
	if c1.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("ClientAuth = %v, want RequireAndVerifyClientCert", c1.ClientAuth)
	}
	if len(c1.NextProtos) != 1 || c1.NextProtos[0] != wire.ALPN {
		t.Errorf("NextProtos = %v", c1.NextProtos)
	}
	if c1.InsecureSkipVerify {
		t.Error("InsecureSkipVerify set")
	}
	// Each call issues a fresh leaf, and each verifies against the CA for
	// both server and client use.
	leaf1, err := x509.ParseCertificate(c1.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	leaf2, _ := x509.ParseCertificate(c2.Certificates[0].Certificate[0])
	if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
		t.Error("two TLSConfig calls issued the same serial")
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf1.Verify(x509.VerifyOptions{Roots: c1.RootCAs, DNSName: c1.ServerName, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("leaf does not verify for %v: %v", usage, err)
		}
	}
	other, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "ca.pem"))
	oc, _ := other.TLSConfig()
	if _, err := leaf1.Verify(x509.VerifyOptions{Roots: oc.RootCAs, DNSName: c1.ServerName}); err == nil {
		t.Error("a leaf verifies against another cluster's CA")
	}
}

func TestClaimDir(t *testing.T) {
	dir := t.TempDir()
	ca, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "ca.pem"))
	other, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "ca.pem"))
	if err := ca.ClaimDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := ca.ClaimDir(dir); err != nil {
		t.Fatalf("second claim by the same cluster: %v", err)
	}
	if err := other.ClaimDir(dir); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("claim by another cluster: %v, want ErrOtherCluster", err)
	}
	// The refused claim left the directory to its owner.
	if err := ca.ClaimDir(dir); err != nil {
		t.Fatalf("owner's claim after a refused one: %v", err)
	}
}
