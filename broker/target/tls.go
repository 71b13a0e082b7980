package target

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSOptions configures how clients connect to an mqtts:// or wss:// target.
type TLSOptions struct {
	// CAFile is a PEM file of the certificate authorities that sign the broker's certificate;
	// empty uses the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for brokers that require one.
	CertFile string
	KeyFile  string
	// Insecure skips verification of the broker's certificate (for test brokers with
	// self-signed certificates; never for production brokers).
	Insecure bool
	// ServerName overrides the name the broker's certificate is verified against.
	ServerName string
}

// Config builds the client TLS configuration. Errors name the file at fault.
func (o TLSOptions) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure, ServerName: o.ServerName}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: ca file %s: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.CertFile != "" || o.KeyFile != "":
		return nil, errors.New("tls: a client certificate needs both a cert file and a key file")
	}
	return cfg, nil
}

// empty reports whether no option is set.
func (o TLSOptions) empty() bool { return o == TLSOptions{} }
