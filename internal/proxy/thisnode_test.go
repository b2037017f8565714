package proxy

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// TestThisNode: the proxy answers the node's own name itself, in both
// DC/OS domains, over UDP and TCP, with the upstreams dead: A or AAAA of
// nodeAddress as its family matches, NODATA (authoritative, no record)
// otherwise and when the address is unknown. The answer keeps the
// question's name and casing.
func TestThisNode(t *testing.T) {
	dead := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Blackhole))
	for _, tc := range []struct {
		name    string
		edit    func(c *config.Config)
		a, aaaa string // "" means NODATA
	}{
		{"IPv4 nodeAddress", func(c *config.Config) { c.NodeAddress = "192.0.2.7" }, "192.0.2.7", ""},
		{"IPv6 nodeAddress", func(c *config.Config) { c.NodeAddress = "2001:db8::7" }, "", "2001:db8::7"},
		{"no nodeAddress, no masters: no record", nil, "", ""},
		// The kernel's source address towards a loopback master.
		{"no nodeAddress: towards the first master", func(c *config.Config) { c.Masters = []string{"127.0.0.4:61053", "192.0.2.11"} },
			"127.0.0.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := runNode(t, nil, func(c *config.Config) {
				c.Upstreams = []string{dead.Addr()}
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			for _, name := range []string{"thisnode.thisdcos.directory.", "ThisNode.ThisDCOS.Global."} {
				for _, network := range []string{"udp", "tcp"} {
					for qtype, want := range map[uint16]string{dns.TypeA: tc.a, dns.TypeAAAA: tc.aaaa, dns.TypeMX: ""} {
						r := ask(t, n.addr, network, msg(name, qtype))
						require.Equal(t, dns.RcodeSuccess, r.Rcode, "%s %s %s", name, dns.TypeToString[qtype], network)
						require.True(t, r.Authoritative)
						require.Equal(t, name, r.Question[0].Name)
						if want == "" {
							require.Empty(t, r.Answer, "%s %s", name, dns.TypeToString[qtype])
							continue
						}
						require.Len(t, r.Answer, 1)
						require.Equal(t, name, r.Answer[0].Header().Name)
						require.Equal(t, qtype, r.Answer[0].Header().Rrtype)
						require.Equal(t, uint32(thisNodeTTL), r.Answer[0].Header().Ttl)
						switch rr := r.Answer[0].(type) {
						case *dns.A:
							require.Equal(t, want, rr.A.String())
						case *dns.AAAA:
							require.Equal(t, want, rr.AAAA.String())
						}
					}
				}
			}
			// Only the exact names are local: a name below them goes to
			// the masters (here: none, so SERVFAIL).
			r := ask(t, n.addr, "udp", msg("x.thisnode.thisdcos.directory.", dns.TypeA))
			require.Equal(t, dns.RcodeServerFailure, r.Rcode)
			require.Zero(t, dead.Queries())
		})
	}
}

// TestThisNodeRoutedInterface: without nodeAddress, the node's address is
// the one of the interface that routes to the first master, not the
// proxy's listen address; with no route to it, the names have no record.
func TestThisNodeRoutedInterface(t *testing.T) {
	ns := testsupport.NewNetNS(t)
	ns.AddAddr(t, "192.0.2.7/32")
	ns.Run(t, "ip", "route", "add", "203.0.113.0/24", "dev", "lo", "src", "192.0.2.7")
	for _, tc := range []struct {
		master, want string
	}{
		{"203.0.113.11", "192.0.2.7"},
		{"192.0.2.99", ""}, // unreachable: no route
	} {
		var n *node
		ns.Do(t, func() {
			n = runNode(t, nil, func(c *config.Config) {
				c.Upstreams = []string{"203.0.113.53"}
				c.Masters = []string{tc.master}
			})
		})
		out, err := ns.Dig(t, n.addr, "thisnode.thisdcos.directory", "A")
		require.NoError(t, err)
		r, err := testsupport.ParseDig(out)
		require.NoError(t, err)
		require.Equal(t, "NOERROR", r.Rcode, out)
		if tc.want == "" {
			require.Empty(t, r.Answer, out)
			continue
		}
		require.Len(t, r.Answer, 1, out)
		require.Equal(t, tc.want, r.Answer[0].(*dns.A).A.String())
	}
}

// TestThisNodeReload: a reload takes the new nodeAddress (and would find
// the default again from the new masters).
func TestThisNodeReload(t *testing.T) {
	dead := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Blackhole))
	var cfg config.Config
	n := runNode(t, nil, func(c *config.Config) {
		c.Upstreams = []string{dead.Addr()}
		c.NodeAddress = "192.0.2.7"
		cfg = *c
	})
	r := ask(t, n.addr, "udp", msg("thisnode.thisdcos.directory.", dns.TypeA))
	require.Equal(t, "192.0.2.7", firstA(r))

	cfg.Listen = []string{n.addr}
	cfg.NodeAddress = "192.0.2.8"
	require.NoError(t, cfg.Validate())
	_, err := n.Reload(&cfg)
	require.NoError(t, err)
	r = ask(t, n.addr, "udp", msg("thisnode.thisdcos.directory.", dns.TypeA))
	require.Equal(t, "192.0.2.8", firstA(r))

	cfg.NodeAddress = ""
	_, err = n.Reload(&cfg)
	require.NoError(t, err)
	r = ask(t, n.addr, "udp", msg("thisnode.thisdcos.directory.", dns.TypeA))
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Empty(t, r.Answer, "no nodeAddress and no masters: no record")
}
