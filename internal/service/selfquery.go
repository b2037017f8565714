package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"

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

// SelfQueryTarget is one listener the self-check asks: Network "udp" or
// "tcp", and an address a local client can reach.
type SelfQueryTarget struct {
	Network, Addr string
}

// SelfQueryTargets returns one target per bound listener: udp and tcp are
// the listen addresses (with socket activation the two lists may differ,
// or one may be empty), each made reachable with SelfQueryAddr. No
// listener at all is an error.
func SelfQueryTargets(udp, tcp []string) ([]SelfQueryTarget, error) {
	var out []SelfQueryTarget
	for _, l := range []struct {
		network string
		addrs   []string
	}{{"udp", udp}, {"tcp", tcp}} {
		for _, a := range l.addrs {
			addr, err := SelfQueryAddr(a)
			if err != nil {
				return nil, err
			}
			out = append(out, SelfQueryTarget{Network: l.network, Addr: addr})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("service: no listener to self-query")
	}
	return out, nil
}

// SelfQueryAll runs SelfQuery against every target at once and returns nil
// only when every one answered: one wedged or unreachable listener is
// enough to fail the check. The error joins the failures in target order.
// ctx bounds the whole check.
func SelfQueryAll(ctx context.Context, targets []SelfQueryTarget) error {
	if len(targets) == 0 {
		return errors.New("self-query: no listener to query")
	}
	errs := make([]error, len(targets))
	var g errgroup.Group
	for i, tg := range targets {
		g.Go(func() error {
			errs[i] = SelfQuery(ctx, tg.Network, tg.Addr)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}
