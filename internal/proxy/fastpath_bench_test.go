package proxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// BenchmarkServeFast is the query path's own cost per query, without
// sockets: a cache hit (parse, client ACL, the local-name checks every
// query goes through, cache lookup and reply patching) and the node's own
// name (answered through dns.Msg, like ready.spartan). Allocations are
// the robust figure; ns/op moves with the machine's load.
func BenchmarkServeFast(b *testing.B) {
	u := testsupport.StartUpstream(b, testsupport.WithTTL(86400))
	n := startCachedNode(b, testsupport.NewClock(), []*testsupport.Upstream{u}, func(c *config.Config) {
		c.Cache.PrefetchHits = 0
		c.NodeAddress = "192.0.2.7"
	})
	for _, bc := range []struct {
		name, qname string
	}{
		{"cache hit", "www.example.com."},
		{"thisnode", "thisnode.thisdcos.directory."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := msg(bc.qname, dns.TypeA)
			require.NotEmpty(b, ask(b, n.addr, "udp", m).Answer)
			wire, err := m.Pack()
			require.NoError(b, err)
			req := &server.Request{Msg: wire, Client: netip.MustParseAddrPort("127.0.0.1:40000"), Received: time.Now()}
			dst := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if out, ok := n.Forwarder.ServeFast(req, dst); !ok || len(out) == 0 {
					b.Fatal("not answered on the fast path")
				}
			}
		})
	}
}
