package server

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// clients records the Client and Local of every request it answers:
// those with an even ID on the read goroutine, the others on a worker.
type clients struct {
	mu   sync.Mutex
	seen []Request // without Msg
}

func (h *clients) ServeFast(req *Request, dst []byte) ([]byte, bool) {
	if len(req.Msg) < 2 || req.Msg[1]%2 == 1 {
		return nil, false
	}
	return h.ServeDNS(context.Background(), req, dst), true
}

func (h *clients) ServeDNS(_ context.Context, req *Request, dst []byte) []byte {
	h.mu.Lock()
	h.seen = append(h.seen, Request{Client: req.Client, Local: req.Local})
	h.mu.Unlock()
	return answer(req.Msg, dst)
}

// TestBatchBurst sends a burst of queries from one socket without waiting
// (so that recvmmsg returns several at once) over IPv4 and IPv6, to a
// socket bound to the address and to a wildcard one, half of them answered
// on the read goroutine and half by workers: every query is answered, from
// the address queried, to the socket that sent it, and the
// handler sees that socket's port as the client's and the address
// queried as the local one.
func TestBatchBurst(t *testing.T) {
	tests := []struct{ listen, query string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"0.0.0.0:0", "127.0.0.2"},
		{"[::1]:0", "::1"},
		{"[::]:0", "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			network := "udp4"
			if tt.listen[0] == '[' {
				network = "udp6"
				if c, err := net.ListenPacket(network, "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					c.Close()
				}
			}
			h := new(clients)
			r := serve(t, &Server{Handler: h}, tt.listen)
			c, err := net.ListenUDP(network, nil)
			require.NoError(t, err)
			defer c.Close()
			srv := netip.AddrPortFrom(netip.MustParseAddr(tt.query), netip.MustParseAddrPort(r.addr).Port())
			const n = 200
			for i := range n {
				m := new(dns.Msg).SetQuestion(dns.Fqdn("q"+string(rune('a'+i%26))+".burst."), dns.TypeA)
				m.Id = uint16(i)
				b, err := m.Pack()
				require.NoError(t, err)
				_, err = c.WriteToUDPAddrPort(b, srv)
				require.NoError(t, err)
			}
			got := make(map[uint16]bool)
			buf := make([]byte, 4096)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			for len(got) < n {
				k, from, err := c.ReadFromUDPAddrPort(buf)
				require.NoError(t, err, "%d of %d answered", len(got), n)
				require.Equal(t, srv, from)
				var m dns.Msg
				require.NoError(t, m.Unpack(buf[:k]))
				require.Len(t, m.Answer, 1)
				got[m.Id] = true
			}
			local := c.LocalAddr().(*net.UDPAddr).AddrPort()
			h.mu.Lock()
			defer h.mu.Unlock()
			require.Len(t, h.seen, n)
			for _, req := range h.seen {
				require.Equal(t, local.Port(), req.Client.Port())
				require.True(t, req.Client.Addr().IsLoopback(), "client %s", req.Client)
				require.Equal(t, srv, req.Local)
			}
		})
	}
}
