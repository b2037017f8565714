package proxy

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// startMeteredNode is runNode with a metrics registry and no cache.
func startMeteredNode(t *testing.T, edit func(c *config.Config)) (*node, *metrics.Metrics) {
	t.Helper()
	pc, ln, err := server.Listen(context.Background(), "127.0.0.1:0")
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Listen = []string{pc.LocalAddr().String()}
	cfg.Metrics = ""
	cfg.Cache.Disabled = true
	edit(&cfg)
	require.NoError(t, cfg.Validate())
	m := metrics.New()
	n, err := NewNode(context.Background(), NodeOptions{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Metrics: m,
		PacketConns: []net.PacketConn{pc}, Listeners: []net.Listener{ln}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	nd := &node{Node: n, addr: pc.LocalAddr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { nd.done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-nd.done)
	})
	return nd, m
}

// A root group of a DoT upstream, verified against tlsCAFile, answers
// clients over UDP and TCP through one connection, which the metrics
// report; a zone group of a UDP upstream is unaffected. Without
// tlsCAFile the system roots do not know the test CA: the client gets
// SERVFAIL, the certificate error is counted, and the query never goes
// out in clear text.
func TestDoTUpstreamThroughNode(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	leaf := ca.Issue(t, "srv", testsupport.LeafSpec{DNSNames: []string{"dns.test"}})
	srv := testsupport.StartUnboundDoT(t, leaf)
	corp := testsupport.StartUpstream(t)
	url := srv.URL("dns.test")

	n, m := startMeteredNode(t, func(c *config.Config) {
		c.Upstreams = []string{url}
		c.Zones = map[string][]string{"corp.test.": {corp.Addr()}}
		c.TLSCAFile = ca.File
		c.RaceTimeout = config.Duration(20 * time.Second) // answers are checked, not speed
	})
	for _, network := range []string{"udp", "tcp", "udp"} {
		r := ask(t, n.addr, network, msg("www.dot.test.", dns.TypeA))
		require.Equal(t, dns.RcodeSuccess, r.Rcode)
		require.Equal(t, testsupport.DoTZoneAddr, firstA(r))
	}
	r := ask(t, n.addr, "udp", msg("host.corp.test.", dns.TypeA))
	require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	require.Equal(t, 1, corp.Queries())
	g := testsupport.Gather(t, m.Registry())
	require.Equal(t, 1.0, g.Must(t, "spartan_upstream_tls_handshakes_total", "group", ".", "upstream", url))
	require.Equal(t, 0.0, g.Must(t, "spartan_upstream_tls_resumptions_total", "upstream", url))
	require.Equal(t, 0.0, g.Must(t, "spartan_upstream_tls_certificate_errors_total", "upstream", url))
	require.Equal(t, 1.0, g.Must(t, "spartan_upstream_tls_connections", "upstream", url))
	require.Equal(t, 3.0, g.Must(t, "spartan_upstream_wins_total", "upstream", url))
	_, ok := g.Value("spartan_upstream_tls_handshakes_total", "upstream", corp.Addr())
	require.False(t, ok, "a UDP upstream has no TLS metrics")

	n2, m2 := startMeteredNode(t, func(c *config.Config) {
		c.Upstreams = []string{url}
		c.RaceTimeout = config.Duration(20 * time.Second)
	})
	r = ask(t, n2.addr, "udp", msg("www.dot.test.", dns.TypeA))
	require.Equal(t, dns.RcodeServerFailure, r.Rcode)
	g = testsupport.Gather(t, m2.Registry())
	require.Equal(t, 1.0, g.Must(t, "spartan_upstream_tls_certificate_errors_total", "upstream", url))
	require.Equal(t, 0.0, g.Must(t, "spartan_upstream_healthy", "upstream", url))
}

// A TLS upstream is not "this proxy's own address" even on the proxy's
// own address and port: the proxy does not serve TLS there, so no loop.
func TestTLSUpstreamOnOwnPortKept(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = []string{"127.0.0.1:5399"}
	cfg.Upstreams = []string{"tls://127.0.0.1:5399#dns.test", "127.0.0.1:5399", "192.0.2.1"}
	require.NoError(t, cfg.Validate())
	got, err := RootUpstreams(&cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, []string{"tls://127.0.0.1:5399#dns.test", "192.0.2.1:53"}, got)
}
