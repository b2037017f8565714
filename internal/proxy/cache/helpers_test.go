package cache

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

func testConfig() config.Cache {
	return config.Default().Cache
}

func newTestCache(t testing.TB, clk *testsupport.Clock, mod func(*config.Cache)) *Cache {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(Options{Config: cfg, ClusterDomain: "mesos.", Now: clk.Now})
	require.NoError(t, err)
	return c
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	require.NoError(t, err)
	return r
}

func soa(t testing.TB, zone string, ttl, minimum uint32) dns.RR {
	return rr(t, fmt.Sprintf("%s %d IN SOA ns.%s hostmaster.%s 1 60 60 86400 %d", zone, ttl, zone, zone, minimum))
}

// reply builds the upstream reply to query with the given rcode and
// sections, as an upstream would send it (with its own OPT when the query
// had one).
type replySpec struct {
	rcode   int
	answer  []dns.RR
	ns      []dns.RR
	extra   []dns.RR
	tc, ad  bool
	optSize uint16 // 0: no OPT
}

func packReply(t testing.TB, query *dns.Msg, s replySpec) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetRcode(query, s.rcode)
	m.Id = 0xBEEF // upstream leg ID, never the client's
	m.RecursionAvailable = true
	m.Truncated = s.tc
	m.AuthenticatedData = s.ad
	m.Answer = s.answer
	m.Ns = s.ns
	m.Extra = s.extra
	if s.optSize > 0 {
		m.SetEdns0(s.optSize, true)
	}
	m.Compress = true
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

func aRecords(t testing.TB, name string, ttl uint32, n int) []dns.RR {
	out := make([]dns.RR, n)
	for i := range out {
		out[i] = rr(t, fmt.Sprintf("%s %d IN A 10.0.%d.%d", name, ttl, i/250, i%250+1))
	}
	return out
}

// insert builds the reply to (name, qtype, opts) and inserts it.
func insert(t testing.TB, c *Cache, query *dns.Msg, s replySpec) bool {
	t.Helper()
	b, err := query.Pack()
	require.NoError(t, err)
	var q Query
	require.NoError(t, q.Parse(b))
	r, err := ParseResponse(&q, packReply(t, query, s))
	require.NoError(t, err)
	return c.Insert(&q, r)
}

// get looks the query up and unpacks the reply.
func get(t testing.TB, c *Cache, query *dns.Msg) (*dns.Msg, Status, bool) {
	t.Helper()
	b, err := query.Pack()
	require.NoError(t, err)
	var q Query
	require.NoError(t, q.Parse(b))
	out, st, pf := c.Get(&q, make([]byte, 0, 512), q.UDPLimit())
	if st != Fresh {
		require.Empty(t, out)
		return nil, st, pf
	}
	m := new(dns.Msg)
	require.NoError(t, m.Unpack(out), "reply from cache does not unpack")
	return m, st, pf
}

func ttls(m *dns.Msg) []uint32 {
	var out []uint32
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, r := range sec {
			if r.Header().Rrtype != dns.TypeOPT {
				out = append(out, r.Header().Ttl)
			}
		}
	}
	return out
}
