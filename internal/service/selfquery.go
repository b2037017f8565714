package service

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/zones"
)

// SelfQueryAddr turns a listen address into one a local client can reach:
// a wildcard address becomes the loopback address of its family.
func SelfQueryAddr(listen string) (string, error) {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil {
		return "", fmt.Errorf("service: self-query address %q: %w", listen, err)
	}
	switch {
	case ap.Addr() == netip.IPv4Unspecified():
		ap = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
	case ap.Addr() == netip.IPv6Unspecified():
		ap = netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
	}
	return ap.String(), nil
}

// SelfQuery asks addr for ready.spartan A over network ("udp" or "tcp")
// and checks the answer is the local zone's: NOERROR with A 127.0.0.1. It
// is what dig @ADDR ready.spartan checks from outside, done from inside.
func SelfQuery(ctx context.Context, network, addr string) error {
	q := new(dns.Msg)
	q.SetQuestion(zones.ReadyName, dns.TypeA)
	q.RecursionDesired = false
	c := &dns.Client{Net: network}
	r, _, err := c.ExchangeContext(ctx, q, addr)
	if err != nil {
		return fmt.Errorf("self-query %s %s: %w", network, addr, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("self-query %s %s: rcode %s", network, addr, dns.RcodeToString[r.Rcode])
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && a.A.Equal(net.IPv4(127, 0, 0, 1)) {
			return nil
		}
	}
	return fmt.Errorf("self-query %s %s: no A 127.0.0.1 in the answer", network, addr)
}
