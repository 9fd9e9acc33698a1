// Package pki keeps the cluster's certificate authority. The CA is made
// on a cluster's first start and kept in one PEM file (certificate and
// key) that every member is given; each process then issues itself a
// certificate at start-up. Peers must present a certificate signed by
// the CA, so anything outside the cluster is refused during the TLS
// handshake.
//
// The CA file is the cluster's secret: whoever holds it can join.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// serverName is the name every member's certificate carries; identity
// comes from the CA signature, not from host names.
const serverName = "cairn"

// CA is a loaded cluster certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// LoadOrCreate loads the CA from path, creating it if the file does not
// exist. created says which happened.
func LoadOrCreate(path string) (ca *CA, created bool, err error) {
	ca, err = Load(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return ca, false, err
	}
	ca, err = create(path)
	return ca, err == nil, err
}

func create(path string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "cairn cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(100, 0, 0),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create cluster CA: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write cluster CA %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write cluster CA %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return Load(path)
}

// Load reads a CA file written by LoadOrCreate.
func Load(path string) (*CA, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	ca := &CA{}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			ca.cert, err = x509.ParseCertificate(b.Bytes)
		case "EC PRIVATE KEY":
			ca.key, err = x509.ParseECPrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("cluster CA %s: %w", path, err)
		}
	}
	if ca.cert == nil || ca.key == nil || !ca.cert.IsCA {
		return nil, fmt.Errorf("cluster CA %s: not a cairn CA file (want a CA certificate and its EC key)", path)
	}
	return ca, nil
}

// ClusterID identifies the cluster: a digest of the CA certificate.
func (ca *CA) ClusterID() string {
	sum := sha256.Sum256(ca.cert.Raw)
	return hex.EncodeToString(sum[:8])
}

// issue makes a fresh key and a certificate for it signed by the CA.
func (ca *CA) issue() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: serverName},
		DNSNames:     []string{serverName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}, nil
}

// TLSConfig returns a TLS 1.3 configuration that presents a certificate
// from this CA and accepts only peers with one, in both directions.
func (ca *CA) TLSConfig() (*tls.Config, error) {
	cert, err := ca.issue()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   serverName,
		NextProtos:   []string{wire.ALPN},
		MinVersion:   tls.VersionTLS13,
	}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// ErrOtherCluster means a data directory was made by a different cluster.
var ErrOtherCluster = errors.New("data directory belongs to another cluster")

// ClaimDir records the cluster ID in dir on first start and, on later
// starts, refuses a directory that another cluster made, so that a
// server never mixes two clusters' data.
func (ca *CA) ClaimDir(dir string) error {
	err := ca.CheckDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.WriteFile(filepath.Join(dir, "cluster-id"), []byte(ca.ClusterID()+"\n"), 0o600)
	}
	return err
}

// CheckDir fails with ErrOtherCluster if another cluster claimed dir, and
// with an error matching os.ErrNotExist if no cluster has yet.
func (ca *CA) CheckDir(dir string) error {
	want := ca.ClusterID()
	b, err := os.ReadFile(filepath.Join(dir, "cluster-id"))
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(b)); got != want {
		return fmt.Errorf("%s: %w (it has cluster %s, this cluster is %s)", dir, ErrOtherCluster, got, want)
	}
	return nil
}
