package proxy

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// Cache behaviour through the real listeners, against fake upstreams on
// loopback that count the queries they receive. Time in the cache comes
// from an injected clock, so TTLs expire without sleeping.

// startCachedNode starts a proxy with the cache on, its clock clk, and
// the root group ups.
func startCachedNode(t testing.TB, clk *testsupport.Clock, ups []*testsupport.Upstream, edit func(c *config.Config)) *node {
	t.Helper()
	nd := runNode(t, clk.Now, func(c *config.Config) {
		c.Upstreams = nil
		for _, u := range ups {
			c.Upstreams = append(c.Upstreams, u.Addr())
		}
		if edit != nil {
			edit(c)
		}
	})
	require.NotNil(t, nd.Cache)
	return nd
}

func answerTTL(t testing.TB, m *dns.Msg) uint32 {
	t.Helper()
	require.NotEmpty(t, m.Answer)
	return m.Answer[0].Header().Ttl
}

func queries(ups ...*testsupport.Upstream) int {
	n := 0
	for _, u := range ups {
		n += u.Queries()
	}
	return n
}

func TestCacheHitTTLAndExpiry(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithTTL(60))
	clk := testsupport.NewClock()
	n := startCachedNode(t, clk, []*testsupport.Upstream{u}, nil)

	r := ask(t, n.addr, "udp", msg("www.Example.", dns.TypeA))
	require.Equal(t, uint32(60), answerTTL(t, r))
	require.Equal(t, 1, u.Queries())

	// Hit after miss, over UDP and TCP, with each client's ID and casing.
	for _, network := range []string{"udp", "tcp"} {
		q := msg("WWW.example.", dns.TypeA)
		r = ask(t, n.addr, network, q)
		require.Equal(t, q.Id, r.Id)
		require.Equal(t, "WWW.example.", r.Question[0].Name)
		require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	}
	require.Equal(t, 1, u.Queries(), "answered from the cache")

	// TTL decrement.
	clk.Advance(25 * time.Second)
	r = ask(t, n.addr, "udp", msg("www.example.", dns.TypeA))
	require.Equal(t, uint32(35), answerTTL(t, r))
	require.Equal(t, 1, u.Queries())

	// Expiry refetches (and a fresh answer beats the stale entry).
	clk.Advance(36 * time.Second)
	r = ask(t, n.addr, "udp", msg("www.example.", dns.TypeA))
	require.Equal(t, uint32(60), answerTTL(t, r))
	require.Equal(t, 2, u.Queries())
	s := n.Cache.Stats()
	require.Equal(t, uint64(3), s.Hits)
	require.Equal(t, 1, s.Entries)
}

func TestCacheNegative(t *testing.T) {
	soa := func(zone string, ttl, minimum uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns: "ns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: minimum}
	}
	handler := func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNameError)
		zone := "example."
		if dns.IsSubDomain("mesos.", req.Question[0].Name) {
			zone = "mesos."
		}
		m.Ns = []dns.RR{soa(zone, 300, 20)}
		if zone == "mesos." {
			m.Ns = []dns.RR{soa(zone, 3600, 3600)}
		}
		return m
	}
	root := testsupport.StartUpstream(t, testsupport.WithHandler(handler))
	master := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.4:0"), testsupport.WithHandler(handler))
	clk := testsupport.NewClock()
	n := startCachedNode(t, clk, []*testsupport.Upstream{root}, func(c *config.Config) {
		c.Masters = []string{master.Addr()}
	})
	tests := []struct {
		name     string
		upstream *testsupport.Upstream
		ttl      time.Duration // SOA minimum 20 s; cluster clamp 30 s
	}{
		{"gone.example.", root, 20 * time.Second},
		{"gone.marathon.mesos.", master, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.upstream.Reset()
			r := ask(t, n.addr, "udp", msg(tt.name, dns.TypeA))
			require.Equal(t, dns.RcodeNameError, r.Rcode)
			require.Len(t, r.Ns, 1)
			clk.Advance(tt.ttl - time.Second)
			r = ask(t, n.addr, "udp", msg(tt.name, dns.TypeA))
			require.Equal(t, dns.RcodeNameError, r.Rcode)
			require.Equal(t, 1, tt.upstream.Queries(), "cached for the negative TTL")
			clk.Advance(time.Second)
			r = ask(t, n.addr, "udp", msg(tt.name, dns.TypeA))
			require.Equal(t, dns.RcodeNameError, r.Rcode)
			require.Equal(t, 2, tt.upstream.Queries(), "and not longer")
		})
	}
}

func TestCacheServFail(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithTTL(60))
	clk := testsupport.NewClock()
	n := startCachedNode(t, clk, []*testsupport.Upstream{u}, nil)

	t.Run("not cached over a good entry", func(t *testing.T) {
		ask(t, n.addr, "udp", msg("good.example.", dns.TypeA))
		clk.Advance(61 * time.Second)
		u.SetBehavior(testsupport.ServFail)
		r := ask(t, n.addr, "udp", msg("good.example.", dns.TypeA))
		require.Equal(t, dns.RcodeSuccess, r.Rcode, "the expired good entry is served stale")
		require.Equal(t, uint32(30), answerTTL(t, r))
		u.SetBehavior(testsupport.Answer)
		before := u.Queries()
		r = ask(t, n.addr, "udp", msg("good.example.", dns.TypeA))
		require.Equal(t, dns.RcodeSuccess, r.Rcode)
		require.Equal(t, uint32(60), answerTTL(t, r), "fresh answer: the SERVFAIL did not shadow it")
		require.Equal(t, before+1, u.Queries())
	})
	t.Run("cached for servFailTTL without an entry", func(t *testing.T) {
		u.SetBehavior(testsupport.ServFail)
		defer u.SetBehavior(testsupport.Answer)
		before := u.Queries()
		r := ask(t, n.addr, "udp", msg("bad.example.", dns.TypeA))
		require.Equal(t, dns.RcodeServerFailure, r.Rcode)
		r = ask(t, n.addr, "udp", msg("bad.example.", dns.TypeA))
		require.Equal(t, dns.RcodeServerFailure, r.Rcode)
		require.Equal(t, before+1, u.Queries())
		clk.Advance(time.Second)
		u.SetBehavior(testsupport.Answer)
		r = ask(t, n.addr, "udp", msg("bad.example.", dns.TypeA))
		require.Equal(t, dns.RcodeSuccess, r.Rcode)
		require.Equal(t, before+2, u.Queries())
	})
}

// burst sends clients identical queries for name at once, every fourth
// over TCP when mixed, and checks each reply. Both fake upstreams hold
// their replies until every client waits on the proxy's race (the
// Forwarder's Waiting gauge) and each has received want queries: so the
// race cannot end before the last client joined it, however slowly the
// clients arrive, and neither upstream misses its leg.
func burst(t *testing.T, clients int, mixed bool, want int) *node {
	t.Helper()
	var cond atomic.Pointer[func() bool]
	released := make(chan struct{}) // closed the first time cond holds
	var once sync.Once
	handler := func(req *dns.Msg) *dns.Msg {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		bail := time.After(time.Minute) // a broken proxy must not hang the test
		for {
			if (*cond.Load())() {
				once.Do(func() { close(released) })
			}
			select {
			case <-released:
			case <-tick.C:
				continue
			case <-bail:
				return nil
			}
			break
		}
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IP(testsupport.DefaultIP.AsSlice())}}
		return m
	}
	u1 := testsupport.StartUpstream(t, testsupport.WithHandler(handler))
	u2 := testsupport.StartUpstream(t, testsupport.WithHandler(handler))
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{u1, u2}, func(c *config.Config) {
		c.RaceTimeout = config.Duration(2 * time.Minute)
	})
	ready := func() bool {
		return n.Forwarder.Stats().Waiting == int64(clients) && u1.Queries() >= want && u2.Queries() >= want
	}
	cond.Store(&ready)

	var wg sync.WaitGroup
	replies := make([]*dns.Msg, clients)
	sent := make([]*dns.Msg, clients)
	errs := make([]error, clients)
	for i := range clients {
		network := "udp"
		if mixed && i%4 == 0 {
			network = "tcp"
		}
		sent[i] = msg("burst.example.", dns.TypeA)
		wg.Go(func() {
			c := &dns.Client{Net: network, Timeout: 2 * time.Minute}
			replies[i], _, errs[i] = c.Exchange(sent[i], n.addr)
		})
	}
	wg.Wait()
	for i, r := range replies {
		require.NoError(t, errs[i])
		require.Equal(t, sent[i].Id, r.Id)
		require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	}
	require.Equal(t, want, u1.Queries())
	require.Equal(t, want, u2.Queries())
	require.Zero(t, n.Forwarder.Stats().Waiting)
	return n
}

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	// One race per transport (a TCP client's race retries truncation over
	// TCP), each sent to both upstreams.
	const clients = 100
	n := burst(t, clients, true, 2)
	require.Equal(t, uint64(clients-2), n.Cache.Stats().Coalesced)
}

func TestCacheIdenticalUDPMissesOneQueryPerUpstream(t *testing.T) {
	const clients = 100
	n := burst(t, clients, false, 1)
	require.Equal(t, uint64(clients-1), n.Cache.Stats().Coalesced)
}

func TestCacheServeStaleWhenUpstreamsDie(t *testing.T) {
	u1 := testsupport.StartUpstream(t, testsupport.WithTTL(60))
	u2 := testsupport.StartUpstream(t, testsupport.WithTTL(60))
	clk := testsupport.NewClock()
	n := startCachedNode(t, clk, []*testsupport.Upstream{u1, u2}, func(c *config.Config) {
		c.Cache.StaleMaxAge = config.Duration(time.Hour)
		c.Cache.ClientTimeout = config.Duration(200 * time.Millisecond)
		c.RaceTimeout = config.Duration(time.Second)
	})
	ask(t, n.addr, "udp", msg("svc.example.", dns.TypeA))
	ask(t, n.addr, "udp", msg("other.example.", dns.TypeA))
	clk.Advance(2 * time.Minute)

	// Refusing sockets: the race fails at once, the stale answer follows.
	u1.Stop()
	u2.Stop()
	r := ask(t, n.addr, "udp", msg("svc.example.", dns.TypeA))
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	require.Equal(t, uint32(30), answerTTL(t, r))

	// Black holes: the client deadline (200 ms) passes long before the
	// race's (1 s); the client gets the stale answer.
	u1.SetBehavior(testsupport.Blackhole)
	u2.SetBehavior(testsupport.Blackhole)
	u1.Start()
	u2.Start()
	r = ask(t, n.addr, "tcp", msg("other.example.", dns.TypeA))
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Equal(t, uint32(30), answerTTL(t, r))
	require.Positive(t, queries(u1, u2), "the upstreams were tried first")

	// Past the maximum stale age: SERVFAIL.
	clk.Advance(time.Hour)
	r = ask(t, n.addr, "udp", msg("svc.example.", dns.TypeA))
	require.Equal(t, dns.RcodeServerFailure, r.Rcode)
	require.Empty(t, r.Answer)
	require.Equal(t, uint64(2), n.Cache.Stats().Stale)
}

func TestCachePrefetch(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithTTL(60))
	clk := testsupport.NewClock()
	n := startCachedNode(t, clk, []*testsupport.Upstream{u}, func(c *config.Config) { c.Cache.PrefetchHits = 3 })
	for range 4 {
		ask(t, n.addr, "udp", msg("popular.example.", dns.TypeA))
	}
	ask(t, n.addr, "udp", msg("rare.example.", dns.TypeA))
	require.Equal(t, 2, u.Queries())
	clk.Advance(55 * time.Second) // under 10% of 60 s left
	r := ask(t, n.addr, "udp", msg("popular.example.", dns.TypeA))
	require.Equal(t, uint32(5), answerTTL(t, r), "the client is answered from the cache")
	r = ask(t, n.addr, "udp", msg("rare.example.", dns.TypeA))
	require.Equal(t, uint32(5), answerTTL(t, r))
	require.Eventually(t, func() bool { return u.Queries() == 3 }, 10*time.Second, 5*time.Millisecond,
		"one background refresh of the popular name")
	require.Eventually(t, func() bool {
		return answerTTL(t, ask(t, n.addr, "udp", msg("popular.example.", dns.TypeA))) == 60
	}, 10*time.Second, 5*time.Millisecond, "refreshed entry")
	clk.Advance(10 * time.Second) // the old entry would have expired
	r = ask(t, n.addr, "udp", msg("popular.example.", dns.TypeA))
	require.Equal(t, uint32(50), answerTTL(t, r))
	require.Equal(t, 3, u.Queries(), "no miss for the popular name; the rare one was not prefetched")
	require.Equal(t, uint64(1), n.Cache.Stats().Prefetch)
}

// TestCachePrefetchOverTCP prefetches an entry that a TCP client filled
// because the upstream truncates over UDP: the refresh goes over TCP too,
// where the upstream answers, instead of coming back truncated and
// letting the entry expire.
func TestCachePrefetchOverTCP(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Truncate), testsupport.WithTTL(60))
	clk := testsupport.NewClock()
	n := startCachedNode(t, clk, []*testsupport.Upstream{u}, func(c *config.Config) { c.Cache.PrefetchHits = 3 })
	r := ask(t, n.addr, "tcp", msg("tc.example.", dns.TypeA))
	require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	require.Equal(t, 1, u.QueriesTCP(), "truncated over UDP, retried over TCP")
	for range 3 {
		r = ask(t, n.addr, "udp", msg("tc.example.", dns.TypeA))
		require.Equal(t, testsupport.DefaultIP.String(), firstA(r), "a UDP client is answered from the cache")
	}
	require.Equal(t, 2, u.Queries())
	clk.Advance(55 * time.Second) // under 10% of 60 s left
	require.Equal(t, uint32(5), answerTTL(t, ask(t, n.addr, "udp", msg("tc.example.", dns.TypeA))))
	require.Eventually(t, func() bool { return u.QueriesTCP() == 2 }, 10*time.Second, 5*time.Millisecond,
		"the background refresh went over TCP")
	require.Eventually(t, func() bool {
		return answerTTL(t, ask(t, n.addr, "udp", msg("tc.example.", dns.TypeA))) == 60
	}, 10*time.Second, 5*time.Millisecond, "refreshed entry")
	clk.Advance(10 * time.Second) // the old entry would have expired
	r = ask(t, n.addr, "udp", msg("tc.example.", dns.TypeA))
	require.Equal(t, uint32(50), answerTTL(t, r))
	require.Equal(t, 4, u.Queries(), "one prefetch (UDP, then TCP), no miss")
	require.Equal(t, 2, u.QueriesTCP())
	require.Zero(t, n.Cache.Stats().Stale)
}

func TestCacheDOAndCDSeparateEntries(t *testing.T) {
	u := testsupport.StartUpstream(t)
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{u}, nil)
	variants := []func() *dns.Msg{
		func() *dns.Msg { return msg("sec.example.", dns.TypeA) },
		func() *dns.Msg { m := msg("sec.example.", dns.TypeA); m.SetEdns0(1232, true); return m },
		func() *dns.Msg { m := msg("sec.example.", dns.TypeA); m.CheckingDisabled = true; return m },
		func() *dns.Msg {
			m := msg("sec.example.", dns.TypeA)
			m.SetEdns0(1232, true)
			m.CheckingDisabled = true
			return m
		},
	}
	for i, v := range variants {
		ask(t, n.addr, "udp", v())
		require.Equal(t, i+1, u.Queries(), "variant %d is its own entry", i)
		last := u.LastQuery()
		require.Equal(t, v().CheckingDisabled, last.CheckingDisabled, "CD forwarded")
		require.Equal(t, v().IsEdns0() != nil && v().IsEdns0().Do(), last.IsEdns0().Do(), "DO forwarded")
	}
	for i, v := range variants {
		r := ask(t, n.addr, "udp", v())
		require.Equal(t, v().CheckingDisabled, r.CheckingDisabled)
		require.Equal(t, v().IsEdns0() != nil, r.IsEdns0() != nil, "variant %d", i)
	}
	require.Equal(t, len(variants), u.Queries())
	require.Equal(t, len(variants), n.Cache.Stats().Entries)
}

func TestCacheEvictionKeepsByteBound(t *testing.T) {
	u := testsupport.StartUpstream(t)
	const maxBytes = 8 << 10
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{u}, func(c *config.Config) {
		c.Cache.MaxBytes = maxBytes
	})
	for i := range 100 {
		ask(t, n.addr, "udp", msg(fmt.Sprintf("host-%03d.example.", i), dns.TypeA))
		require.LessOrEqual(t, n.Cache.Stats().Bytes, int64(maxBytes))
	}
	s := n.Cache.Stats()
	require.Positive(t, s.Evictions)
	require.Less(t, s.Entries, 100)
	require.Equal(t, uint64(100-s.Entries), s.Evictions)
	// The newest name is still a hit, the oldest was evicted.
	ask(t, n.addr, "udp", msg("host-099.example.", dns.TypeA))
	require.Equal(t, 100, u.Queries())
	ask(t, n.addr, "udp", msg("host-000.example.", dns.TypeA))
	require.Equal(t, 101, u.Queries())
}

func TestCacheTruncatesForUDPClients(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithHandler(bigHandler))
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{u}, nil)
	// Warm over TCP, where the whole answer fits.
	r := ask(t, n.addr, "tcp", msg("big.example.", dns.TypeA))
	require.False(t, r.Truncated)
	full := len(r.Answer)
	require.Greater(t, full, 20)

	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second, UDPSize: 512}
	r, _, err := c.Exchange(msg("big.example.", dns.TypeA), n.addr)
	require.NoError(t, err)
	require.True(t, r.Truncated)
	require.Empty(t, r.Answer)
	r = ask(t, n.addr, "tcp", msg("big.example.", dns.TypeA))
	require.Len(t, r.Answer, full)
	require.Equal(t, 1, u.Queries(), "both answered from the cache")
}

func TestCacheFlush(t *testing.T) {
	u := testsupport.StartUpstream(t)
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{u}, nil)
	ask(t, n.addr, "udp", msg("a.example.", dns.TypeA))
	ask(t, n.addr, "udp", msg("b.example.", dns.TypeA))
	removed, err := n.Cache.FlushName("a.example.")
	require.NoError(t, err)
	require.Equal(t, 1, removed)
	ask(t, n.addr, "udp", msg("a.example.", dns.TypeA))
	ask(t, n.addr, "udp", msg("b.example.", dns.TypeA))
	require.Equal(t, 3, u.Queries())
	n.Cache.Flush()
	ask(t, n.addr, "udp", msg("b.example.", dns.TypeA))
	require.Equal(t, 4, u.Queries())
}

func TestShutdownGraceEndsCachedRaces(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Blackhole))
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{u}, func(c *config.Config) {
		c.RaceTimeout = config.Duration(time.Hour) // only the grace can end the race
		c.ShutdownGrace = config.Duration(100 * time.Millisecond)
	})
	const clients = 2 // the second joins the first one's race
	got := make(chan *dns.Msg, clients)
	for range clients {
		go func() {
			c := &dns.Client{Timeout: time.Minute}
			r, _, _ := c.Exchange(msg("hang.example.", dns.TypeA), n.addr)
			got <- r
		}()
	}
	require.Eventually(t, func() bool { return n.Forwarder.Stats().Waiting == clients }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, u.Queries())
	n.cancel()
	require.NoError(t, <-n.done, "shutdown ends once the grace period is over")
	n.done <- nil
	for range clients {
		r := <-got
		require.NotNil(t, r, "a waiting query was dropped on shutdown")
		require.Equal(t, dns.RcodeServerFailure, r.Rcode)
	}
}

// TestMalformedRecordDataNeverWinsOrCached: a fast upstream answering A
// with 3 bytes of record data loses to a slower one's correct answer
// (the malformed reply is held like SERVFAIL), the client gets the correct
// answer, and the entry the cache keeps, served to the next client, is the
// correct one.
func TestMalformedRecordDataNeverWinsOrCached(t *testing.T) {
	bad := testsupport.StartUpstream(t, testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = []dns.RR{&dns.RFC3597{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
			Rdata: "cb0071"}}
		return m
	}))
	good := testsupport.StartUpstream(t, testsupport.WithLatency(50*time.Millisecond))
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{bad, good}, nil)

	for i, network := range []string{"udp", "tcp"} {
		r := ask(t, n.addr, network, msg("www.example.", dns.TypeA))
		require.Equal(t, dns.RcodeSuccess, r.Rcode)
		require.Len(t, r.Answer, 1)
		require.Equal(t, testsupport.DefaultIP.String(), firstA(r), "query %d", i)
	}
	require.Equal(t, 1, bad.Queries())
	require.Equal(t, 1, good.Queries(), "the second query is a cache hit")
	require.Equal(t, uint64(1), n.Cache.Stats().Hits)
}

// TestOutOfBailiwickAnswerNotCached: records in a reply are cached only
// as the answer to its question. A reply to www.example.com A that
// carries, after a CNAME to cdn.example.net, an A record for an unrelated
// victim.example.org makes no entry for victim.example.org: asking for it
// goes upstream and gets the upstream's own answer.
func TestOutOfBailiwickAnswerNotCached(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		switch dns.CanonicalName(q.Name) {
		case "www.example.com.":
			m.Answer = []dns.RR{
				&dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: "cdn.example.net."},
				&dns.A{Hdr: dns.RR_Header{Name: "cdn.example.net.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 10)},
				&dns.A{Hdr: dns.RR_Header{Name: "victim.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: testsupport.ForgedIP.AsSlice()},
			}
		case "victim.example.org.":
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 20)}}
		}
		return m
	}))
	n := startCachedNode(t, testsupport.NewClock(), []*testsupport.Upstream{u}, nil)

	r := ask(t, n.addr, "udp", msg("www.example.com.", dns.TypeA))
	require.Len(t, r.Answer, 3, "the reply is relayed whole")
	require.Equal(t, 1, u.Queries())

	r = ask(t, n.addr, "udp", msg("victim.example.org.", dns.TypeA))
	require.Equal(t, 2, u.Queries(), "not a cache hit: asked upstream")
	require.Len(t, r.Answer, 1)
	require.Equal(t, "192.0.2.20", firstA(r))
	require.Zero(t, n.Cache.Stats().Hits)
	require.Equal(t, 2, n.Cache.Stats().Entries)
}
