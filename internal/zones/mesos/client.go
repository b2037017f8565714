package mesos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
)

// newStateClient returns the HTTP client the Mesos masters are asked
// with, and the URL scheme: HTTPS when master.MesosHTTPSOn, verified
// against master.CACertFile (the system roots without it) and presenting
// master.CertFile when set, as Mesos-DNS's httpcli.TLSConfig does.
func newStateClient(cfg config.Master) (*http.Client, string, error) {
	tr := &http.Transport{
		// Never through an environment proxy: the masters are local.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: time.Duration(cfg.StateTimeoutSeconds) * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
	}
	scheme := "http"
	if cfg.MesosHTTPSOn {
		scheme = "https"
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CACertFile != "" {
			pem, err := os.ReadFile(cfg.CACertFile)
			if err != nil {
				return nil, "", fmt.Errorf("master.CACertFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, "", fmt.Errorf("master.CACertFile: %s: no PEM certificate in it", cfg.CACertFile)
			}
			tc.RootCAs = pool
		}
		if cfg.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, "", fmt.Errorf("master.CertFile: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr}, scheme, nil
}

// newRequest returns a GET of path on the master at addr (host:port),
// with Basic credentials when master.MesosCredentials has a principal
// (Mesos's http_authenticators=basic, Mesos-DNS's mesosAuthentication
// "basic").
func (m *Master) newRequest(ctx context.Context, addr, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.scheme+"://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "spartan")
	if c := m.cfg.MesosCredentials; c.Principal != "" {
		req.SetBasicAuth(c.Principal, c.Secret)
	}
	return req, nil
}
