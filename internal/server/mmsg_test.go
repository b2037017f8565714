package server

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSockaddrRoundTrip encodes a reply's destination as the kernel's
// sockaddr and decodes it back as a request's client: port byte order,
// IPv4 on an IPv4 socket, IPv4-mapped and link-local (zone = interface
// index) IPv6 on an IPv6 socket.
func TestSockaddrRoundTrip(t *testing.T) {
	tests := []struct {
		dst    string
		v6     bool
		family uint16
		scope  uint32
		want   string
	}{
		{"192.0.2.1:53", false, unix.AF_INET, 0, "192.0.2.1:53"},
		{"192.0.2.1:40000", true, unix.AF_INET6, 0, "[::ffff:192.0.2.1]:40000"},
		{"[2001:db8::1]:1053", true, unix.AF_INET6, 0, "[2001:db8::1]:1053"},
		{"[fe80::1%7]:5353", true, unix.AF_INET6, 7, "[fe80::1%7]:5353"},
	}
	for _, tt := range tests {
		t.Run(tt.dst, func(t *testing.T) {
			b := newMmsgBatch(1, 0, true)
			b.setAddr(0, []byte{1}, netip.MustParseAddrPort(tt.dst), tt.v6, netip.Addr{})
			require.Equal(t, tt.family, b.names[0].Family)
			require.Equal(t, tt.scope, b.names[0].Scope_id)
			require.Equal(t, tt.want, b.from(0).String())
			require.Zero(t, b.hs[0].hdr.Controllen, "no source address asked")
		})
	}
}
