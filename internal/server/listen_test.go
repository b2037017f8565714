package server

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestListenAllReusePort binds three UDP sockets on one address and serves
// them: queries from many client ports (which the kernel spreads over the
// sockets by their addresses) are all answered, over UDP and TCP.
func TestListenAllReusePort(t *testing.T) {
	pcs, lns, err := ListenAll(t.Context(), []string{"127.0.0.1:0"}, 3)
	require.NoError(t, err)
	require.Len(t, pcs, 3)
	require.Len(t, lns, 1)
	addr := pcs[0].LocalAddr().String()
	for _, pc := range pcs {
		require.Equal(t, addr, pc.LocalAddr().String())
	}
	s := &Server{Handler: new(fastSlow), Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pcs, lns) }()
	for range 30 {
		require.Len(t, exchange(t, "udp", addr, "a.fast.").Answer, 1)
		require.Len(t, exchange(t, "udp", addr, "a.slow.").Answer, 1)
	}
	require.Len(t, exchange(t, "tcp", addr, "a.fast.").Answer, 1)
	cancel()
	require.NoError(t, <-done)
	// Serve closed every socket: the address is free again.
	pc, err := net.ListenPacket("udp4", addr)
	require.NoError(t, err)
	pc.Close()
}

func TestSiblings(t *testing.T) {
	tests := []struct {
		name      string
		udpFirst  int // sockets ListenAll binds for the first socket
		n         int
		wantAdded int
	}{
		{"no SO_REUSEPORT", 1, 4, 0},
		{"one wanted", 2, 1, 0},
		{"SO_REUSEPORT", 2, 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcs, lns, err := ListenAll(t.Context(), []string{"127.0.0.1:0"}, tt.udpFirst)
			require.NoError(t, err)
			defer func() {
				for _, pc := range pcs {
					pc.Close()
				}
				lns[0].Close()
			}()
			more, err := Siblings(t.Context(), pcs[0], tt.n)
			require.NoError(t, err)
			pcs = append(pcs, more...)
			require.Len(t, more, tt.wantAdded)
			for _, pc := range more {
				require.Equal(t, pcs[0].LocalAddr().String(), pc.LocalAddr().String())
			}
		})
	}
}
