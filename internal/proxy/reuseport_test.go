package proxy

import (
	"context"
	"log/slog"
	"net"
	"syscall"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// TestPassedSocketSiblings gives a node UDP sockets as a service manager
// would pass them, with and without SO_REUSEPORT (a socket unit's
// ReusePort=): listenerThreads sockets serve the address in the first
// case, the passed one alone in the second, its address is listed once,
// and the node answers on it.
func TestPassedSocketSiblings(t *testing.T) {
	tests := []struct {
		name      string
		reusePort bool
		want      int
	}{
		{"ReusePort=yes", true, 3},
		{"ReusePort=no", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					if tt.reusePort {
						serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
					}
				})
				if err != nil {
					return err
				}
				return serr
			}}
			pc, ln := testsupport.ListenBoth(t, &lc, "127.0.0.1")

			cfg := config.Default()
			cfg.Listen = []string{pc.LocalAddr().String()}
			cfg.Upstreams = []string{"192.0.2.1:53"} // never asked: only the local zone is queried
			cfg.Metrics = ""
			cfg.ListenerThreads = 3
			require.NoError(t, cfg.Validate())
			n, err := NewNode(context.Background(), NodeOptions{Config: &cfg, Logger: slog.New(slog.DiscardHandler),
				PacketConns: []net.PacketConn{pc}, Listeners: []net.Listener{ln}})
			require.NoError(t, err)
			require.Len(t, n.pcs, tt.want)
			require.Equal(t, []string{pc.LocalAddr().String()}, n.Addrs())

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- n.Run(ctx) }()
			for range 20 { // from a new source port each: spread over the sockets
				r := ask(t, pc.LocalAddr().String(), "udp", msg("ready.spartan.", dns.TypeA))
				require.Len(t, r.Answer, 1)
			}
			cancel()
			require.NoError(t, <-done)
		})
	}
}
