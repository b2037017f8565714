package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// DoTPort is the port of a DNS over TLS upstream given without one (RFC
// 7858).
const DoTPort = 853

// tlsScheme prefixes a DNS over TLS upstream.
const tlsScheme = "tls://"

// Upstream is one upstream server as written in an upstream group:
// "IP[:port]" for plain DNS over UDP (TCP for truncated replies), or
// "tls://IP[:port][#server-name]" for DNS over TLS.
type Upstream struct {
	// Addr is the server's address.
	Addr netip.AddrPort
	// TLS says queries go over TLS (RFC 7858), never in clear text.
	TLS bool
	// ServerName is the name the server's certificate is verified
	// against (TLS only); empty means the certificate must cover Addr's
	// IP address.
	ServerName string
}

// String returns the upstream in its normalized form: "IP:port",
// "[IPv6]:port", "tls://IP:port" or "tls://IP:port#name".
func (u Upstream) String() string {
	if !u.TLS {
		return u.Addr.String()
	}
	if u.ServerName == "" {
		return tlsScheme + u.Addr.String()
	}
	return tlsScheme + u.Addr.String() + "#" + u.ServerName
}

// ParseUpstream parses one upstream of a group: an IP address with an
// optional port (defaultPort when none), or "tls://" followed by an IP
// address, an optional port (DoTPort when none) and an optional
// "#server-name", the name the server's certificate is checked against. A
// host name is refused as an address: a resolver must not depend on
// resolution to find its upstreams.
func ParseUpstream(s string, defaultPort int) (Upstream, error) {
	rest, isTLS := strings.CutPrefix(s, tlsScheme)
	if !isTLS {
		if strings.Contains(s, "://") {
			return Upstream{}, fmt.Errorf("unknown scheme in %q: want an IP address, IP:port or tls://IP[:port]#name", s)
		}
		hp, err := NormalizeHostPort(s, defaultPort)
		if err != nil {
			return Upstream{}, err
		}
		return Upstream{Addr: netip.MustParseAddrPort(hp)}, nil
	}
	addr, name, hasName := strings.Cut(rest, "#")
	if addr == "" {
		return Upstream{}, fmt.Errorf("no address in %q", s)
	}
	hp, err := NormalizeHostPort(addr, DoTPort)
	if err != nil {
		return Upstream{}, fmt.Errorf("in %q: %w", s, err)
	}
	u := Upstream{Addr: netip.MustParseAddrPort(hp), TLS: true}
	if hasName {
		if u.ServerName, err = serverName(name); err != nil {
			return Upstream{}, fmt.Errorf("in %q: %w", s, err)
		}
	}
	return u, nil
}

// serverName checks the name a DoT server's certificate must carry: a
// host name (not an address, which the address part already gives).
func serverName(name string) (string, error) {
	if name == "" {
		return "", errors.New(`empty server name after "#"`)
	}
	// The name is compared in its normal form: "192.0.2.1." is an
	// address as much as "192.0.2.1" is.
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if _, err := netip.ParseAddr(name); err == nil {
		return "", fmt.Errorf("server name %q is an IP address: leave the name out to check the certificate against the address", name)
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" || strings.ContainsAny(name, " \\#/:@*") {
		return "", fmt.Errorf("not a host name: %q", name)
	}
	// Every label must be 1 to 63 bytes: ".." or "a..b" name nothing a
	// certificate could carry.
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("not a host name: %q", name)
		}
	}
	return name, nil
}

// NormalizeUpstream returns the normalized form of an upstream (see
// ParseUpstream and Upstream.String).
func NormalizeUpstream(s string, defaultPort int) (string, error) {
	u, err := ParseUpstream(s, defaultPort)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// LoadTLSRoots reads a PEM file of CA certificates for verifying DNS over
// TLS upstreams. Every PEM block must be a certificate that parses, and
// there must be at least one: a file that silently trusts nothing would
// turn every TLS upstream unhealthy with no hint why.
func LoadTLSRoots(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if strings.TrimSpace(string(rest)) != "" {
				return nil, fmt.Errorf("%s: text that is not a PEM block after %d certificates", file, n)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is a %q, not a CERTIFICATE", file, n+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// TLSRoots returns the CA pool DNS over TLS upstreams are verified
// against: the certificates of TLSCAFile, or nil (the system roots) when
// it is empty.
func (c *Config) TLSRoots() (*x509.CertPool, error) {
	if c.TLSCAFile == "" {
		return nil, nil
	}
	pool, err := LoadTLSRoots(c.TLSCAFile)
	if err != nil {
		return nil, fieldErr("tlsCAFile", "%v", err)
	}
	return pool, nil
}
