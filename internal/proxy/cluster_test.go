package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// logBuffer collects a node's log lines; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

const unservedWarning = "no upstreams for cluster domain mesos.: set masters or zones"

// clusterNames are names in the default cluster domain, in odd casings.
var clusterNames = []struct {
	name  string
	qtype uint16
}{
	{"leader.mesos.", dns.TypeA},
	{"Marathon.MESOS.", dns.TypeA},
	{"_leader._tcp.mesos.", dns.TypeSRV},
	{"a.b.c.marathon.mesos.", dns.TypeAAAA},
	{"mesos.", dns.TypeSOA},
	// The DC/OS domains are the masters' alone too.
	{"web.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA},
	{"Leader.DCOS.ThisDCOS.Global.", dns.TypeA},
	{"thisdcos.directory.", dns.TypeSOA},
}

// TestClusterNamesNeverReachRoot starts the smallest configuration, a
// root group and nothing for the cluster domain, and checks that cluster
// names are answered SERVFAIL by the proxy itself while the counting root
// upstream sees none of them, with the cache on and off; other names are
// forwarded as usual.
func TestClusterNamesNeverReachRoot(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(map[bool]string{false: "no cache", true: "cache"}[cached], func(t *testing.T) {
			root := testsupport.StartUpstream(t)
			var logs logBuffer
			n := runNodeLogged(t, testsupport.NewClock().Now, logs.logger(), func(c *config.Config) {
				c.Upstreams = []string{root.Addr()}
				c.Cache.Disabled = !cached
			})
			require.False(t, ClusterServed(n.Table(), "mesos."))
			for range 2 { // the second round would be a cache hit
				for _, q := range clusterNames {
					for _, network := range []string{"udp", "tcp"} {
						r := ask(t, n.addr, network, msg(q.name, q.qtype))
						require.Equal(t, dns.RcodeServerFailure, r.Rcode, "%s %s", q.name, network)
						require.Equal(t, q.name, r.Question[0].Name)
						require.Empty(t, r.Answer)
					}
				}
			}
			require.Zero(t, root.Queries(), "a cluster name reached the root group")
			require.Equal(t, uint64(4*len(clusterNames)), n.Forwarder.Stats().Unrouted)

			// Everything else still goes to the root group, names that
			// merely contain the cluster domain's label too.
			others := []string{"www.example.", "mesos.example.", "xmesos.", "thisdcos.directory.example.", "directory."}
			for _, name := range others {
				r := ask(t, n.addr, "udp", msg(name, dns.TypeA))
				require.Equal(t, testsupport.DefaultIP.String(), firstA(r), name)
			}
			require.Equal(t, len(others), root.Queries())
			require.Equal(t, 1, strings.Count(logs.String(), unservedWarning), logs.String())
		})
	}
}

// TestClusterSubzoneGroupOnly checks that a group for part of the cluster
// domain serves that part, while the rest of the domain still never falls
// to the root group.
func TestClusterSubzoneGroupOnly(t *testing.T) {
	root := testsupport.StartUpstream(t)
	marathon := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.4:0"))
	var logs logBuffer
	n := runNodeLogged(t, nil, logs.logger(), func(c *config.Config) {
		c.Cache.Disabled = true
		c.Upstreams = []string{root.Addr()}
		c.Zones = map[string][]string{"marathon.mesos.": {marathon.Addr()}}
	})
	r := ask(t, n.addr, "udp", msg("web.marathon.mesos.", dns.TypeA))
	require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	require.Equal(t, 1, marathon.Queries())
	r = ask(t, n.addr, "tcp", msg("leader.mesos.", dns.TypeA))
	require.Equal(t, dns.RcodeServerFailure, r.Rcode)
	require.Zero(t, root.Queries())
	require.Contains(t, logs.String(), unservedWarning)
}

// TestClusterReloadDropsMasters reloads a node that had masters with a
// configuration that has none: from then on cluster names get SERVFAIL
// instead of reaching the root group, and the change is logged.
func TestClusterReloadDropsMasters(t *testing.T) {
	root := testsupport.StartUpstream(t)
	master := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.4:0"))
	var logs logBuffer
	var cfg config.Config
	n := runNodeLogged(t, testsupport.NewClock().Now, logs.logger(), func(c *config.Config) {
		c.Upstreams = []string{root.Addr()}
		c.Masters = []string{master.Addr()}
		cfg = *c
	})
	require.True(t, ClusterServed(n.Table(), "mesos."))
	require.NotContains(t, logs.String(), unservedWarning)
	r := ask(t, n.addr, "udp", msg("leader.mesos.", dns.TypeA))
	require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	require.Equal(t, 1, master.Queries())

	cfg.Listen = []string{n.addr}
	cfg.Masters = nil
	require.NoError(t, cfg.Validate())
	_, err := n.Reload(&cfg)
	require.NoError(t, err)
	require.False(t, ClusterServed(n.Table(), "mesos."))
	require.Equal(t, 1, strings.Count(logs.String(), unservedWarning), logs.String())
	r = ask(t, n.addr, "udp", msg("other.mesos.", dns.TypeA))
	require.Equal(t, dns.RcodeServerFailure, r.Rcode)
	require.Zero(t, root.Queries())
	require.Equal(t, 1, master.Queries())
}

// TestDCOSDomainsFollowMasters: thisdcos.directory and thisdcos.global go
// to the masters' group exactly like the cluster domain, never to the
// root group; a zones entry for one of them overrides the masters, as one
// for the cluster domain does.
func TestDCOSDomainsFollowMasters(t *testing.T) {
	for _, override := range []bool{false, true} {
		t.Run(map[bool]string{false: "masters", true: "zones entry"}[override], func(t *testing.T) {
			root := testsupport.StartUpstream(t)
			master := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.4:0"))
			zone := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.5:0"))
			n := runNode(t, testsupport.NewClock().Now, func(c *config.Config) {
				c.Upstreams = []string{root.Addr()}
				c.Masters = []string{master.Addr()}
				c.Cache.Disabled = true // every query reaches a group
				if override {
					c.Zones = map[string][]string{"thisdcos.directory.": {zone.Addr()}}
				}
			})
			for _, network := range []string{"udp", "tcp"} {
				r := ask(t, n.addr, network, msg("web.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA))
				require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
				r = ask(t, n.addr, network, msg("Web.Marathon.AutoIP.dcos.ThisDCOS.Global.", dns.TypeAAAA))
				require.Equal(t, dns.RcodeSuccess, r.Rcode)
			}
			wantZone, wantMaster := 0, 4
			if override {
				wantZone, wantMaster = 2, 2
			}
			require.Equal(t, wantZone, zone.Queries())
			require.Equal(t, wantMaster, master.Queries())
			require.Zero(t, root.Queries(), "a DC/OS name reached the root group")
		})
	}
}

// TestDCOSNegativeAnswersClampedAsCluster: a negative answer from the
// masters for a DC/OS name is cached no longer than
// clusterNegativeMaxTTL, as one for a cluster name, whatever the SOA says.
func TestDCOSNegativeAnswersClampedAsCluster(t *testing.T) {
	clk := testsupport.NewClock()
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "thisdcos.directory.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
		Ns: "ns.thisdcos.directory.", Mbox: "root.ns.thisdcos.directory.", Serial: 1, Minttl: 3600}
	master := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.4:0"), testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		resp := new(dns.Msg)
		resp.SetRcode(req, dns.RcodeNameError)
		resp.Authoritative = true
		resp.Ns = []dns.RR{soa}
		return resp
	}))
	root := testsupport.StartUpstream(t)
	n := runNode(t, clk.Now, func(c *config.Config) {
		c.Upstreams = []string{root.Addr()}
		c.Masters = []string{master.Addr()}
	})
	for i, name := range []string{"new-task.marathon.agentip.dcos.thisdcos.directory.", "new-task.marathon.agentip.dcos.thisdcos.global."} {
		r := ask(t, n.addr, "udp", msg(name, dns.TypeA))
		require.Equal(t, dns.RcodeNameError, r.Rcode)
		r = ask(t, n.addr, "udp", msg(name, dns.TypeA))
		require.Equal(t, dns.RcodeNameError, r.Rcode)
		require.Equal(t, 2*i+1, master.Queries(), "the second query is a cache hit")
		// Past the cluster clamp (30s by default), the master is asked again.
		clk.Advance(config.Default().Cache.ClusterNegativeMaxTTL.D() + time.Second)
		r = ask(t, n.addr, "udp", msg(name, dns.TypeA))
		require.Equal(t, dns.RcodeNameError, r.Rcode)
		require.Equal(t, 2*i+2, master.Queries(), "%s: the negative answer outlived clusterNegativeMaxTTL", name)
	}
	require.Zero(t, root.Queries())
}
