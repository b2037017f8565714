package watchdog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Prober checks the proxy's health.
type Prober interface {
	// Probe reports whether the proxy is serving; err explains a failure.
	Probe(ctx context.Context) (ok bool, err error)
}

// DNSProber asks every address for Name's A record at once; the proxy is
// up when any of them answers it correctly (NOERROR with an A record for
// the name), as a client with all of them in resolv.conf would succeed.
type DNSProber struct {
	// Addrs are ip:port addresses.
	Addrs []string
	// Name is the fully qualified name asked, e.g. "ready.spartan.".
	Name string
	// Timeout bounds each query.
	Timeout time.Duration
}

// Probe implements Prober.
func (p *DNSProber) Probe(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the first good answer ends the others
	type result struct {
		addr string
		err  error
	}
	results := make(chan result, len(p.Addrs))
	var wg sync.WaitGroup
	for _, addr := range p.Addrs {
		wg.Go(func() { results <- result{addr, p.probeOne(ctx, addr)} })
	}
	var errs []error
	for range p.Addrs {
		r := <-results
		if r.err == nil {
			cancel()
			wg.Wait()
			return true, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.addr, r.err))
	}
	wg.Wait()
	return false, errors.Join(errs...)
}

func (p *DNSProber) probeOne(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(p.Name, dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: p.Timeout}
	resp, _, err := c.ExchangeContext(ctx, q, addr)
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("%s A: rcode %s", p.Name, dns.RcodeToString[resp.Rcode])
	}
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok && strings.EqualFold(a.Hdr.Name, p.Name) {
			return nil
		}
	}
	return fmt.Errorf("%s A: no A record in the answer", p.Name)
}
