package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

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
			for _, name := range []string{"www.example.", "mesos.example.", "xmesos."} {
				r := ask(t, n.addr, "udp", msg(name, dns.TypeA))
				require.Equal(t, testsupport.DefaultIP.String(), firstA(r), name)
			}
			require.Equal(t, 3, root.Queries())
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
