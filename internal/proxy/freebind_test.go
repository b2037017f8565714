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
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// TestListenBeforeAddressExists starts a node, in a network namespace of
// its own, on an address no interface has yet: IP_FREEBIND lets it bind,
// as it must when the service starts before spartan-iface. Once the
// address is added the node answers on it over UDP and TCP, from that
// address.
func TestListenBeforeAddressExists(t *testing.T) {
	ns := testsupport.NewNetNS(t) // skips unless root with ip netns
	const addr = "192.0.2.53:53"
	cfg := config.Default()
	cfg.Listen = []string{addr}
	cfg.Upstreams = []string{"192.0.2.1:53"} // never asked: only the local zone is queried
	cfg.Metrics = ""
	require.NoError(t, cfg.Validate())

	var n *Node
	var err error
	ns.Do(t, func() { // NewNode binds cfg.Listen on this thread, in ns
		n, err = NewNode(context.Background(), NodeOptions{Config: &cfg, Logger: slog.New(slog.DiscardHandler)})
	})
	require.NoError(t, err, "binding an address that is not configured")
	require.Equal(t, []string{addr}, n.Addrs())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	ns.AddAddr(t, "192.0.2.53/32")
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			var c net.Conn
			ns.Do(t, func() { c, err = net.Dial(network, addr) }) // a client in ns
			require.NoError(t, err)
			defer c.Close()
			conn := &dns.Conn{Conn: c}
			require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
			for _, q := range []struct{ name, want string }{
				{"ready.spartan.", "127.0.0.1"},
				{"ns.spartan.", "192.0.2.53"},
			} {
				m := msg(q.name, dns.TypeA)
				require.NoError(t, conn.WriteMsg(m))
				r, err := conn.ReadMsg() // a connected socket: the reply came from addr
				require.NoError(t, err)
				require.Equal(t, m.Id, r.Id)
				require.Equal(t, dns.RcodeSuccess, r.Rcode)
				require.Equal(t, q.want, firstA(r))
			}
		})
	}
}
