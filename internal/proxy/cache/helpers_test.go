package cache

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
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
	c, err := New(Options{Config: cfg, ClusterDomain: "mesos.", MasterDomains: []string{config.DCOSDirectory, config.DCOSGlobal}, Now: clk.Now})
	require.NoError(t, err)
	return c
}

// insert builds the reply to (name, qtype, opts) and inserts it.
func insert(t testing.TB, c *Cache, query *dns.Msg, s testsupport.ReplySpec) bool {
	t.Helper()
	b, err := query.Pack()
	require.NoError(t, err)
	var q dnswire.Query
	require.NoError(t, q.Parse(b))
	r, err := dnswire.ParseResponse(&q, testsupport.PackReply(t, query, s))
	require.NoError(t, err)
	return c.Insert(&q, r)
}

// get looks the query up and unpacks the reply.
func get(t testing.TB, c *Cache, query *dns.Msg) (*dns.Msg, Status, bool) {
	t.Helper()
	b, err := query.Pack()
	require.NoError(t, err)
	var q dnswire.Query
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
