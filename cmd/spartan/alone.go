package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/service"
	"github.com/spartan-dns/spartan/internal/zones/mesos"
)

// masterCheck is the self-check of master mode running alone (no proxy,
// so no ready.spartan to ask): every authoritative listener must answer
// the zone's SOA over UDP and TCP with NOERROR, which it does once the
// first poll has ended, as Mesos-DNS starts serving only after its first
// reload. With no DNS port (Mesos-DNS's dnsOn false) the HTTP API must
// answer /v1/version instead.
func masterCheck(ms *mesos.Service, domain string) func(context.Context) error {
	return func(ctx context.Context) error {
		addrs := ms.Addrs()
		if len(addrs) == 0 {
			return httpCheck(ctx, ms.Master.HTTPAddr())
		}
		errs := make([]error, 2*len(addrs))
		var g errgroup.Group
		for i, a := range addrs {
			for j, network := range []string{"udp", "tcp"} {
				g.Go(func() error {
					errs[2*i+j] = soaCheck(ctx, network, a, domain)
					return nil
				})
			}
		}
		_ = g.Wait()
		return errors.Join(errs...)
	}
}

// soaCheck asks the listener at listen for domain's SOA.
func soaCheck(ctx context.Context, network, listen, domain string) error {
	addr, err := service.SelfQueryAddr(listen)
	if err != nil {
		return err
	}
	q := new(dns.Msg)
	q.SetQuestion(domain, dns.TypeSOA)
	q.RecursionDesired = false
	r, _, err := (&dns.Client{Net: network}).ExchangeContext(ctx, q, addr)
	if err != nil {
		return fmt.Errorf("self-query %s %s: %w", network, addr, err)
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return fmt.Errorf("self-query %s %s: %s SOA: rcode %s", network, addr, domain, dns.RcodeToString[r.Rcode])
	}
	return nil
}

// httpCheck asks the HTTP API at listen for /v1/version.
func httpCheck(ctx context.Context, listen string) error {
	addr, err := service.SelfQueryAddr(listen)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/version", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("self-check %s: %w", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("self-check %s/v1/version: %s", addr, resp.Status)
	}
	return nil
}
