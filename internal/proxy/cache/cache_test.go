package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

func TestHitRewritesForClient(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, nil)
	stored := testsupport.NewQuery("www.example.com.", dns.TypeA, testsupport.WithEDNS(4096, false))
	require.True(t, insert(t, c, stored, testsupport.ReplySpec{
		Answer:  testsupport.ARecords(t, "www.example.com.", 300, 2),
		Extra:   []dns.RR{testsupport.RR(t, "ns.example.com. 600 IN A 192.0.2.53")},
		OptSize: 4096,
	}))

	tests := []struct {
		name    string
		query   *dns.Msg
		wantOPT bool
	}{
		{"no EDNS, other casing", testsupport.NewQuery("WWW.Example.COM.", dns.TypeA, testsupport.WithID(77)), false},
		{"EDNS", testsupport.NewQuery("www.EXAMPLE.com.", dns.TypeA, testsupport.WithID(78), testsupport.WithEDNS(1232, false)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, st, _ := get(t, c, tt.query)
			require.Equal(t, Fresh, st)
			require.Equal(t, tt.query.Id, m.Id)
			require.Equal(t, tt.query.Question[0].Name, m.Question[0].Name, "client casing restored")
			require.True(t, m.Response)
			require.True(t, m.RecursionDesired)
			require.True(t, m.RecursionAvailable)
			require.False(t, m.Truncated)
			require.Len(t, m.Answer, 2)
			require.Len(t, m.Extra, map[bool]int{false: 1, true: 2}[tt.wantOPT])
			opt := m.IsEdns0()
			require.Equal(t, tt.wantOPT, opt != nil)
			if opt != nil {
				require.Equal(t, uint16(dnswire.MaxUDPSize), opt.UDPSize())
				require.False(t, opt.Do())
			}
			// The additional record is capped at the entry's lifetime.
			require.Equal(t, []uint32{300, 300, 300}, testsupport.TTLs(m))
		})
	}
	require.Equal(t, uint64(2), c.Stats().Hits)
}

func TestTTLDecrementAndExpiry(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.StaleMaxAge = 0 })
	q := testsupport.NewQuery("a.example.", dns.TypeA)
	require.True(t, insert(t, c, q, testsupport.ReplySpec{
		Answer: []dns.RR{testsupport.RR(t, "a.example. 300 IN CNAME b.example."), testsupport.RR(t, "b.example. 100 IN A 192.0.2.1")},
		Ns:     []dns.RR{testsupport.RR(t, "example. 86400 IN NS ns.example.")},
		Extra:  []dns.RR{testsupport.RR(t, "ns.example. 50 IN A 192.0.2.53")},
	}))
	// The entry lives 100 s (the lowest answer TTL); every TTL counts down
	// from its own value, never below 0, and never above what is left of
	// the entry's life.
	steps := []struct {
		advance time.Duration
		want    []uint32 // nil: miss
	}{
		{0, []uint32{100, 100, 100, 50}},
		{40 * time.Second, []uint32{60, 60, 60, 10}},
		{20 * time.Second, []uint32{40, 40, 40, 0}},
		{39*time.Second + 500*time.Millisecond, []uint32{1, 1, 1, 0}},
		{500 * time.Millisecond, nil}, // 100 s: expired
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		m, st, _ := get(t, c, q)
		if s.want == nil {
			require.Equal(t, Miss, st, "step %d", i)
			continue
		}
		require.Equal(t, Fresh, st, "step %d", i)
		require.Equal(t, s.want, testsupport.TTLs(m), "step %d", i)
	}
	require.Zero(t, c.Stats().Entries, "an expired entry past its stale age is dropped")

	// With maxTTL below the records' TTLs, clients see the clamp too.
	c = newTestCache(t, clk, func(cfg *config.Cache) { cfg.MaxTTL = config.Duration(time.Minute) })
	require.True(t, insert(t, c, q, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "a.example.", 86400, 1)}))
	clk.Advance(15 * time.Second)
	m, st, _ := get(t, c, q)
	require.Equal(t, Fresh, st)
	require.Equal(t, []uint32{45}, testsupport.TTLs(m))
}

func TestPolicy(t *testing.T) {
	inMesos := "app.marathon.mesos."
	outside := "www.example.com."
	tests := []struct {
		name  string
		qname string
		qtype uint16
		mod   func(*config.Cache)
		spec  func(t *testing.T) testsupport.ReplySpec
		want  time.Duration // 0: not cached
	}{
		{"positive: lowest answer TTL", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Answer: append(testsupport.ARecords(t, outside, 300, 1), testsupport.RR(t, outside+" 120 IN A 192.0.2.9"))}
		}, 120 * time.Second},
		{"positive: clamped to maxTTL", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Answer: testsupport.ARecords(t, outside, 86400, 1)}
		}, time.Hour},
		{"positive: raised to minTTL", outside, dns.TypeA, func(c *config.Cache) { c.MinTTL = config.Duration(30 * time.Second) },
			func(t *testing.T) testsupport.ReplySpec {
				return testsupport.ReplySpec{Answer: testsupport.ARecords(t, outside, 5, 1)}
			}, 30 * time.Second},
		{"positive: zero TTL not cached", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Answer: testsupport.ARecords(t, outside, 0, 1)}
		}, 0},
		{"positive: zero TTL with minTTL", outside, dns.TypeA, func(c *config.Cache) { c.MinTTL = config.Duration(5 * time.Second) },
			func(t *testing.T) testsupport.ReplySpec {
				return testsupport.ReplySpec{Answer: testsupport.ARecords(t, outside, 0, 1)}
			}, 5 * time.Second},
		{"positive: TTL with the high bit counts as zero", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Answer: testsupport.ARecords(t, outside, 1<<31, 1)}
		}, 0},
		{"NXDOMAIN: SOA minimum below SOA TTL", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "example.com.", 900, 60)}}
		}, 60 * time.Second},
		{"NXDOMAIN: SOA TTL below SOA minimum", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "example.com.", 45, 600)}}
		}, 45 * time.Second},
		{"NXDOMAIN: clamped to negativeMaxTTL", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "example.com.", 86400, 86400)}}
		}, time.Hour},
		{"NXDOMAIN in the cluster domain: clamped to 30s", inMesos, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "mesos.", 3600, 3600)}}
		}, 30 * time.Second},
		{"NXDOMAIN for the cluster domain itself", "MESOS.", dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "mesos.", 3600, 3600)}}
		}, 30 * time.Second},
		{"NXDOMAIN in a look-alike domain is not clamped as cluster", "app.notmesos.", dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "notmesos.", 3600, 3600)}}
		}, time.Hour},
		{"NXDOMAIN in thisdcos.directory: clamped as cluster", "web.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "thisdcos.directory.", 3600, 3600)}}
		}, 30 * time.Second},
		{"NODATA in thisdcos.global: clamped as cluster", "Web.Marathon.AUTOIP.dcos.thisdcos.global.", dns.TypeAAAA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Ns: []dns.RR{testsupport.SOA(t, "thisdcos.directory.", 3600, 3600)}}
		}, 30 * time.Second},
		{"NXDOMAIN below a look-alike of thisdcos.directory is not clamped", "thisdcos.directory.example.com.", dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "example.com.", 3600, 3600)}}
		}, time.Hour},
		{"NXDOMAIN without SOA: negativeTTL", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError}
		}, 5 * time.Second},
		{"NODATA with SOA", outside, dns.TypeAAAA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Ns: []dns.RR{testsupport.SOA(t, "example.com.", 300, 120)}}
		}, 120 * time.Second},
		{"NODATA without SOA", outside, dns.TypeAAAA, nil, func(t *testing.T) testsupport.ReplySpec { return testsupport.ReplySpec{} }, 5 * time.Second},
		{"NODATA in the cluster domain", inMesos, dns.TypeAAAA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Ns: []dns.RR{testsupport.SOA(t, "mesos.", 60, 60)}}
		}, 30 * time.Second},
		{"NXDOMAIN after a CNAME: lowest of the chain and SOA", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Answer: []dns.RR{testsupport.RR(t, outside+" 10 IN CNAME gone.example.com.")},
				Ns: []dns.RR{testsupport.SOA(t, "example.com.", 300, 300)}}
		}, 10 * time.Second},
		{"NXDOMAIN with SOA minimum 0: not cached", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(t, "example.com.", 300, 0)}}
		}, 0},
		{"SERVFAIL: servFailTTL", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeServerFailure}
		}, time.Second},
		{"SERVFAIL with servFailTTL 0: not cached", outside, dns.TypeA, func(c *config.Cache) { c.ServFailTTL = 0 },
			func(t *testing.T) testsupport.ReplySpec { return testsupport.ReplySpec{Rcode: dns.RcodeServerFailure} }, 0},
		{"REFUSED: not cached", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Rcode: dns.RcodeRefused}
		}, 0},
		{"truncated: not cached", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{TC: true, Answer: testsupport.ARecords(t, outside, 300, 1)}
		}, 0},
		{"TSIG-signed: not cached", outside, dns.TypeA, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Answer: testsupport.ARecords(t, outside, 300, 1), Extra: []dns.RR{&dns.TSIG{
				Hdr:       dns.RR_Header{Name: "key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
				Algorithm: dns.HmacSHA256, MACSize: 1, MAC: "00", OrigId: 1, TimeSigned: 1, Fudge: 300}}}
		}, 0},
		{"AXFR: not cached", outside, dns.TypeAXFR, nil, func(t *testing.T) testsupport.ReplySpec {
			return testsupport.ReplySpec{Answer: []dns.RR{testsupport.SOA(t, "example.com.", 300, 300)}}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testsupport.NewClock()
			c := newTestCache(t, clk, tt.mod)
			query := testsupport.NewQuery(tt.qname, tt.qtype)
			b, err := query.Pack()
			require.NoError(t, err)
			var q dnswire.Query
			require.NoError(t, q.Parse(b))
			r, err := dnswire.ParseResponse(&q, testsupport.PackReply(t, query, tt.spec(t)))
			require.NoError(t, err)
			ttl, ok := c.TTL(&q, r)
			require.Equal(t, tt.want > 0, ok)
			require.Equal(t, tt.want, ttl)
			require.Equal(t, ok, c.Insert(&q, r))
			if !ok {
				_, st, _ := get(t, c, query)
				require.Equal(t, Miss, st)
				return
			}
			// Cached for exactly the TTL, and not longer.
			clk.Advance(tt.want - time.Millisecond)
			m, st, _ := get(t, c, query)
			require.Equal(t, Fresh, st)
			require.Equal(t, tt.spec(t).Rcode, m.Rcode)
			clk.Advance(time.Millisecond)
			_, st, _ = get(t, c, query)
			require.NotEqual(t, Fresh, st)
		})
	}
}

func TestServFailNeverShadowsGoodEntry(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.StaleMaxAge = config.Duration(time.Hour) })
	q := testsupport.NewQuery("svc.example.", dns.TypeA)
	good := testsupport.ReplySpec{Answer: testsupport.ARecords(t, "svc.example.", 60, 1)}
	servfail := testsupport.ReplySpec{Rcode: dns.RcodeServerFailure}

	require.True(t, insert(t, c, q, good))
	require.False(t, insert(t, c, q, servfail), "fresh entry kept")
	m, st, _ := get(t, c, q)
	require.Equal(t, Fresh, st)
	require.Equal(t, dns.RcodeSuccess, m.Rcode)

	clk.Advance(2 * time.Minute) // expired, still servable stale
	require.False(t, insert(t, c, q, servfail), "stale-servable entry kept")
	_, st, _ = get(t, c, q)
	require.Equal(t, Stale, st)

	clk.Advance(time.Hour) // past the stale age
	require.True(t, insert(t, c, q, servfail))
	m, st, _ = get(t, c, q)
	require.Equal(t, Fresh, st)
	require.Equal(t, dns.RcodeServerFailure, m.Rcode)
	clk.Advance(time.Second)
	_, st, _ = get(t, c, q)
	require.Equal(t, Miss, st, "SERVFAIL is never served stale")

	// A good answer replaces a cached SERVFAIL at once.
	require.True(t, insert(t, c, q, servfail))
	require.True(t, insert(t, c, q, good))
	m, st, _ = get(t, c, q)
	require.Equal(t, Fresh, st)
	require.Equal(t, dns.RcodeSuccess, m.Rcode)
}

func TestServeStale(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.StaleMaxAge = config.Duration(time.Hour) })
	query := testsupport.NewQuery("Stale.Example.", dns.TypeA, testsupport.WithEDNS(1232, true), testsupport.WithID(9))
	require.True(t, insert(t, c, query, testsupport.ReplySpec{
		Answer: testsupport.ARecords(t, "stale.example.", 60, 2),
		Ns:     []dns.RR{testsupport.RR(t, "example. 7200 IN NS ns.example.")},
	}))
	b, err := query.Pack()
	require.NoError(t, err)
	var q dnswire.Query
	require.NoError(t, q.Parse(b))

	clk.Advance(61 * time.Second)
	_, st, _ := c.Get(&q, nil, q.UDPLimit())
	require.Equal(t, Stale, st)
	out, ok := c.WriteStale(&q, nil, q.UDPLimit())
	require.True(t, ok)
	m := new(dns.Msg)
	require.NoError(t, m.Unpack(out))
	require.Equal(t, uint16(9), m.Id)
	require.Equal(t, "Stale.Example.", m.Question[0].Name)
	require.Equal(t, []uint32{30, 30, 30}, testsupport.TTLs(m))
	require.True(t, m.IsEdns0().Do())
	require.Equal(t, uint64(1), c.Stats().Stale)

	clk.Advance(time.Hour)
	_, st, _ = c.Get(&q, nil, q.UDPLimit())
	require.Equal(t, Miss, st)
	_, ok = c.WriteStale(&q, nil, q.UDPLimit())
	require.False(t, ok)

	// Fresh entries are not "stale".
	require.True(t, insert(t, c, query, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "stale.example.", 60, 1)}))
	_, ok = c.WriteStale(&q, nil, q.UDPLimit())
	require.True(t, ok, "WriteStale serves any unexpired or stale-servable entry")
}

func TestPrefetchSignal(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.PrefetchHits = 3 })
	popular := testsupport.NewQuery("popular.example.", dns.TypeA)
	quiet := testsupport.NewQuery("quiet.example.", dns.TypeA)
	require.True(t, insert(t, c, popular, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "popular.example.", 100, 1)}))
	require.True(t, insert(t, c, quiet, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "quiet.example.", 100, 1)}))

	for range 3 {
		_, st, pf := get(t, c, popular)
		require.Equal(t, Fresh, st)
		require.False(t, pf, "plenty of TTL left")
	}
	clk.Advance(89 * time.Second) // 11% left
	_, _, pf := get(t, c, popular)
	require.False(t, pf)
	clk.Advance(2 * time.Second) // 9% left
	_, _, pf = get(t, c, popular)
	require.True(t, pf)
	_, _, pf = get(t, c, popular)
	require.False(t, pf, "signalled once per entry")
	_, _, pf = get(t, c, quiet)
	require.False(t, pf, "one hit is not popular")
	require.Equal(t, uint64(1), c.Stats().Prefetch)

	// The refreshed entry can be prefetched again.
	require.True(t, insert(t, c, popular, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "popular.example.", 100, 1)}))
	clk.Advance(95 * time.Second)
	for i := range 3 {
		_, _, pf = get(t, c, popular)
		require.Equal(t, i == 2, pf)
	}
}

func TestDOAndCDAreSeparateEntries(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, nil)
	plain := testsupport.NewQuery("sec.example.", dns.TypeA)
	do := testsupport.NewQuery("sec.example.", dns.TypeA, testsupport.WithEDNS(1232, true))
	cd := testsupport.NewQuery("sec.example.", dns.TypeA, testsupport.WithCD())
	noDO := testsupport.NewQuery("sec.example.", dns.TypeA, testsupport.WithEDNS(1232, false))

	require.True(t, insert(t, c, do, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "sec.example.", 300, 2), AD: true, OptSize: 1232}))
	for _, q := range []*dns.Msg{plain, cd, noDO} {
		_, st, _ := get(t, c, q)
		require.Equal(t, Miss, st)
	}
	m, st, _ := get(t, c, do)
	require.Equal(t, Fresh, st)
	require.Len(t, m.Answer, 2)
	require.True(t, m.AuthenticatedData)

	require.True(t, insert(t, c, cd, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "sec.example.", 300, 1)}))
	m, st, _ = get(t, c, cd)
	require.Equal(t, Fresh, st)
	require.True(t, m.CheckingDisabled)
	require.Len(t, m.Answer, 1)
	_, st, _ = get(t, c, plain)
	require.Equal(t, Miss, st)
	require.Equal(t, 2, c.Stats().Entries)
}

func TestADBitOnlyForClientsThatAsk(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, nil)
	q := testsupport.NewQuery("ad.example.", dns.TypeA)
	require.True(t, insert(t, c, q, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "ad.example.", 300, 1), AD: true}))
	m, _, _ := get(t, c, q)
	require.False(t, m.AuthenticatedData)
	withAD := testsupport.NewQuery("ad.example.", dns.TypeA)
	withAD.AuthenticatedData = true
	m, _, _ = get(t, c, withAD)
	require.True(t, m.AuthenticatedData)
}

func TestHashCollisionIsAMiss(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, nil)
	other := testsupport.NewQuery("other.example.", dns.TypeA)
	require.True(t, insert(t, c, other, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "other.example.", 300, 1)}))
	var qo, qt dnswire.Query
	bo, _ := other.Pack()
	require.NoError(t, qo.Parse(bo))
	bt, _ := testsupport.NewQuery("target.example.", dns.TypeA).Pack()
	require.NoError(t, qt.Parse(bt))
	// Simulate a 64-bit collision: file other's entry under target's hash.
	c.mu.Lock()
	e, ok := c.lru.Peek(c.hash(&qo))
	require.True(t, ok)
	c.lru.Add(c.hash(&qt), e)
	c.mu.Unlock()
	_, st, _ := c.Get(&qt, nil, 512)
	require.Equal(t, Miss, st)
	_, ok = c.WriteStale(&qt, nil, 512)
	require.False(t, ok)
}

func TestTruncation(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, nil)
	name := "big.example."
	// 40 A records: about 700 bytes, over 512 and under 1232.
	require.True(t, insert(t, c, testsupport.NewQuery(name, dns.TypeA), testsupport.ReplySpec{Answer: testsupport.ARecords(t, name, 300, 40)}))
	require.True(t, insert(t, c, testsupport.NewQuery(name, dns.TypeTXT, testsupport.WithEDNS(4096, true)), testsupport.ReplySpec{
		Answer: []dns.RR{testsupport.RR(t, name+" 300 IN TXT "+fmt.Sprintf("%q %q %q %q %q %q", string(make([]byte, 250)), "a", "b", "c", "d", "e")),
			testsupport.RR(t, name+" 300 IN TXT "+fmt.Sprintf("%q %q %q %q %q", string(make([]byte, 250)), string(make([]byte, 250)), string(make([]byte, 250)), string(make([]byte, 250)), "x"))},
		Ns: []dns.RR{testsupport.RR(t, "example. 300 IN NS ns.example.")},
	}))
	tests := []struct {
		name    string
		query   *dns.Msg
		limit   int // 0: the query's UDP limit
		wantTC  bool
		wantOPT bool
	}{
		{"512 without EDNS", testsupport.NewQuery(name, dns.TypeA), 0, true, false},
		{"EDNS 1232 fits", testsupport.NewQuery(name, dns.TypeA, testsupport.WithEDNS(1232, false)), 0, false, true},
		{"EDNS too small for TXT", testsupport.NewQuery(name, dns.TypeTXT, testsupport.WithEDNS(4096, true)), 0, true, true},
		{"TCP takes everything", testsupport.NewQuery(name, dns.TypeTXT, testsupport.WithEDNS(4096, true)), 65535, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.query.Pack()
			require.NoError(t, err)
			var q dnswire.Query
			require.NoError(t, q.Parse(b))
			limit := tt.limit
			if limit == 0 {
				limit = q.UDPLimit()
			}
			out, st, _ := c.Get(&q, nil, limit)
			require.Equal(t, Fresh, st)
			require.LessOrEqual(t, len(out), limit)
			m := new(dns.Msg)
			require.NoError(t, m.Unpack(out))
			require.Equal(t, tt.wantTC, m.Truncated)
			require.Equal(t, tt.wantOPT, m.IsEdns0() != nil)
			require.Len(t, m.Question, 1)
			if tt.wantTC {
				require.Empty(t, m.Answer)
				require.Empty(t, m.Ns)
				require.Len(t, m.Extra, map[bool]int{false: 0, true: 1}[tt.wantOPT])
			} else {
				require.NotEmpty(t, m.Answer)
			}
		})
	}
}

func TestEvictionKeepsBounds(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		clk := testsupport.NewClock()
		probe := newTestCache(t, clk, nil)
		require.True(t, insert(t, probe, testsupport.NewQuery("host-000.example.", dns.TypeA), testsupport.ReplySpec{Answer: testsupport.ARecords(t, "host-000.example.", 300, 1)}))
		one := probe.Stats().Bytes
		require.Greater(t, one, int64(EntryOverhead))

		c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.MaxBytes = 10*one + one/2 })
		for i := range 100 {
			name := fmt.Sprintf("host-%03d.example.", i)
			require.True(t, insert(t, c, testsupport.NewQuery(name, dns.TypeA), testsupport.ReplySpec{Answer: testsupport.ARecords(t, name, 300, 1)}))
			if i == 95 { // keep an old entry in use: LRU, not FIFO
				_, st, _ := get(t, c, testsupport.NewQuery("host-086.example.", dns.TypeA))
				require.Equal(t, Fresh, st)
			}
			require.LessOrEqual(t, c.Stats().Bytes, int64(c.cfg.MaxBytes))
		}
		s := c.Stats()
		require.Equal(t, 10, s.Entries)
		require.Equal(t, 10*one, s.Bytes)
		require.Equal(t, uint64(90), s.Evictions)
		for i := 91; i < 100; i++ {
			_, st, _ := get(t, c, testsupport.NewQuery(fmt.Sprintf("host-%03d.example.", i), dns.TypeA))
			require.Equal(t, Fresh, st, "recent entry %d kept", i)
		}
		_, st, _ := get(t, c, testsupport.NewQuery("host-086.example.", dns.TypeA))
		require.Equal(t, Fresh, st, "recently used entry kept")
		_, st, _ = get(t, c, testsupport.NewQuery("host-090.example.", dns.TypeA))
		require.Equal(t, Miss, st, "least recently used entry evicted")
	})
	t.Run("entries", func(t *testing.T) {
		clk := testsupport.NewClock()
		c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.MaxEntries = 5 })
		for i := range 20 {
			name := fmt.Sprintf("n%d.example.", i)
			require.True(t, insert(t, c, testsupport.NewQuery(name, dns.TypeA), testsupport.ReplySpec{Answer: testsupport.ARecords(t, name, 300, 1)}))
		}
		s := c.Stats()
		require.Equal(t, 5, s.Entries)
		require.Equal(t, uint64(15), s.Evictions)
	})
	t.Run("replacing an entry keeps the byte count exact", func(t *testing.T) {
		clk := testsupport.NewClock()
		c := newTestCache(t, clk, nil)
		q := testsupport.NewQuery("r.example.", dns.TypeA)
		require.True(t, insert(t, c, q, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "r.example.", 300, 1)}))
		one := c.Stats().Bytes
		require.True(t, insert(t, c, q, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "r.example.", 300, 1)}))
		require.Equal(t, one, c.Stats().Bytes)
		require.Equal(t, 1, c.Stats().Entries)
	})
	t.Run("an entry larger than the whole budget is refused", func(t *testing.T) {
		clk := testsupport.NewClock()
		c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.MaxBytes = 400 })
		require.False(t, insert(t, c, testsupport.NewQuery("big.example.", dns.TypeA), testsupport.ReplySpec{Answer: testsupport.ARecords(t, "big.example.", 300, 40)}))
		require.Zero(t, c.Stats().Bytes)
	})
}

func TestFlush(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, nil)
	for _, q := range []*dns.Msg{
		testsupport.NewQuery("x.example.", dns.TypeA), testsupport.NewQuery("X.example.", dns.TypeAAAA),
		testsupport.NewQuery("x.example.", dns.TypeA, testsupport.WithEDNS(1232, true)), testsupport.NewQuery("y.example.", dns.TypeA),
		testsupport.NewQuery("sub.x.example.", dns.TypeA),
	} {
		name := q.Question[0].Name
		require.True(t, insert(t, c, q, testsupport.ReplySpec{Answer: testsupport.ARecords(t, name, 300, 1)}))
	}
	require.Equal(t, 5, c.Stats().Entries)
	n, err := c.FlushName("X.EXAMPLE")
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 2, c.Stats().Entries)
	_, st, _ := get(t, c, testsupport.NewQuery("x.example.", dns.TypeA))
	require.Equal(t, Miss, st)
	_, st, _ = get(t, c, testsupport.NewQuery("y.example.", dns.TypeA))
	require.Equal(t, Fresh, st)
	_, err = c.FlushName("bad..name")
	require.Error(t, err)

	c.Flush()
	s := c.Stats()
	require.Zero(t, s.Entries)
	require.Zero(t, s.Bytes)
	require.Zero(t, s.Evictions, "flushing is not eviction")
}

func TestAnswersLeaveOutServFail(t *testing.T) {
	clk := testsupport.NewClock()
	c := newTestCache(t, clk, func(cfg *config.Cache) { cfg.MaxEntries = 3 })
	servfail := testsupport.ReplySpec{Rcode: dns.RcodeServerFailure}
	nx := testsupport.ReplySpec{Rcode: dns.RcodeNameError}
	answer := func(name string) testsupport.ReplySpec {
		return testsupport.ReplySpec{Answer: testsupport.ARecords(t, name, 300, 1)}
	}
	count := func() (int, int) { s := c.Stats(); return s.Entries, s.Answers }

	require.True(t, insert(t, c, testsupport.NewQuery("f1.example.", dns.TypeA), servfail))
	require.True(t, insert(t, c, testsupport.NewQuery("f2.example.", dns.TypeA), servfail))
	e, a := count()
	require.Equal(t, [2]int{2, 0}, [2]int{e, a}, "SERVFAILs are entries, not answers")

	require.True(t, insert(t, c, testsupport.NewQuery("nx.example.", dns.TypeA), nx))
	e, a = count()
	require.Equal(t, [2]int{3, 1}, [2]int{e, a}, "NXDOMAIN is an answer")

	require.True(t, insert(t, c, testsupport.NewQuery("a.example.", dns.TypeA), answer("a.example."))) // evicts f1
	e, a = count()
	require.Equal(t, [2]int{3, 2}, [2]int{e, a})

	// An answer replacing a SERVFAIL, then a SERVFAIL replacing an
	// expired answer past its stale age.
	require.True(t, insert(t, c, testsupport.NewQuery("f2.example.", dns.TypeA), answer("f2.example.")))
	e, a = count()
	require.Equal(t, [2]int{3, 3}, [2]int{e, a})
	clk.Advance(301*time.Second + time.Duration(c.cfg.StaleMaxAge))
	require.True(t, insert(t, c, testsupport.NewQuery("f2.example.", dns.TypeA), servfail))
	e, a = count()
	require.Equal(t, [2]int{3, 2}, [2]int{e, a})

	_, err := c.FlushName("a.example.")
	require.NoError(t, err)
	e, a = count()
	require.Equal(t, [2]int{2, 1}, [2]int{e, a})
	c.Flush()
	e, a = count()
	require.Equal(t, [2]int{0, 0}, [2]int{e, a})
}
