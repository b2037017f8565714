package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// NormalizeDomain returns name as a lower-case fully qualified domain name.
func NormalizeDomain(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty domain name")
	}
	fqdn := dns.Fqdn(strings.ToLower(name))
	if _, ok := dns.IsDomainName(fqdn); !ok {
		return "", fmt.Errorf("not a domain name: %q", name)
	}
	return fqdn, nil
}

// NormalizeHostPort parses an IP address with an optional port ("192.0.2.1",
// "192.0.2.1:53", "[2001:db8::1]:53", "2001:db8::1") and returns it as
// host:port, using defaultPort when none is given. Host names are rejected:
// a resolver must not depend on resolution to find its upstreams.
func NormalizeHostPort(s string, defaultPort int) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("port 0 in %q", s)
		}
		return ap.String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, uint16(defaultPort)).String(), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("not an IP address or IP:port: %q", s)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", fmt.Errorf("not an IP address: %q in %q", host, s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("bad port %q in %q", port, s)
	}
	return "", fmt.Errorf("not an IP:port: %q", s)
}
