package proxy

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// heldHandler answers every A question with testsupport.DefaultIP, except
// that it holds the reply to hold until release is closed.
func heldHandler(hold string, release <-chan struct{}) func(*dns.Msg) *dns.Msg {
	return func(req *dns.Msg) *dns.Msg {
		// Names compare ignoring case: the proxy randomizes it (0x20).
		if strings.EqualFold(req.Question[0].Name, hold) {
			select {
			case <-release:
			case <-time.After(time.Minute):
				return nil
			}
		}
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IP(testsupport.DefaultIP.AsSlice()),
		}}
		return m
	}
}

// TestReloadClosesRetiredTables swaps the upstream table many times, with
// clients querying throughout and one race held open on the first table:
// every query is answered, the held race completes on its old table, and
// only the tables still in use stay open (the current one, and the first
// while its race runs); after Run nothing stays open and no table can be
// swapped in.
func TestReloadClosesRetiredTables(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(map[bool]string{false: "no cache", true: "cache"}[cached], func(t *testing.T) {
			release := make(chan struct{})
			u := testsupport.StartUpstream(t, testsupport.WithHandler(heldHandler("held.example.", release)))
			// A second, silent upstream makes every race multi-leg: the
			// losing leg still winds down when its table is closed.
			dead := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Blackhole))
			var cfg config.Config
			n := runNode(t, testsupport.NewClock().Now, func(c *config.Config) {
				c.Upstreams = []string{u.Addr(), dead.Addr()}
				c.Cache.Disabled = !cached
				c.RaceTimeout = config.Duration(time.Minute)
				cfg = *c
			})
			require.Equal(t, 1, n.Forwarder.Stats().Tables)

			held := make(chan *dns.Msg, 1)
			go func() {
				c := &dns.Client{Timeout: 2 * time.Minute}
				r, _, _ := c.Exchange(msg("held.example.", dns.TypeA), n.addr)
				held <- r
			}()
			require.Eventually(t, func() bool { return u.LastQuery() != nil }, 30*time.Second, 5*time.Millisecond)

			// Clients query while the tables are swapped under them.
			const swaps = 50
			stop := make(chan struct{})
			var answered atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for c := range 4 {
				wg.Go(func() {
					cl := &dns.Client{Timeout: 30 * time.Second}
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						r, _, err := cl.Exchange(msg(fmt.Sprintf("c%d-%d.example.", c, i), dns.TypeA), n.addr)
						if err == nil && firstA(r) != testsupport.DefaultIP.String() {
							err = fmt.Errorf("reply %s without the answer", dns.RcodeToString[r.Rcode])
						}
						if err != nil {
							errs <- fmt.Errorf("client %d, query %d: %w", c, i, err)
							return
						}
						answered.Add(1)
					}
				})
			}
			for range swaps {
				next := cfg
				next.Upstreams = []string{u.Addr(), dead.Addr()}
				_, err := n.Reload(&next)
				require.NoError(t, err)
				r := ask(t, n.addr, "tcp", msg(fmt.Sprintf("swap-%d.example.", answered.Load()), dns.TypeA))
				require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Positive(t, answered.Load())

			// The first table stays open for its held race; every other
			// retired one is closed.
			require.Eventually(t, func() bool { return n.Forwarder.Stats().Tables == 2 }, 30*time.Second, 5*time.Millisecond,
				"live tables: %d", n.Forwarder.Stats().Tables)
			close(release)
			r := <-held
			require.NotNil(t, r, "the race on the retired table did not complete")
			require.Equal(t, dns.RcodeSuccess, r.Rcode)
			require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
			require.Eventually(t, func() bool { return n.Forwarder.Stats().Tables == 1 }, 30*time.Second, 5*time.Millisecond,
				"live tables: %d", n.Forwarder.Stats().Tables)

			n.cancel()
			require.NoError(t, <-n.done)
			n.done <- nil // for the cleanup
			require.Zero(t, n.Forwarder.Stats().Tables)
			_, err := n.Reload(&cfg)
			require.ErrorIs(t, err, ErrClosed)
			require.Zero(t, n.Forwarder.Stats().Tables)
		})
	}
}
