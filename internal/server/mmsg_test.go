package server

import (
	"net/netip"
	"testing"
	"unsafe"

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

// FuzzPacketInfo feeds arbitrary control data to the packet-info parser:
// it must never read past the data, and a well-formed IPv4 packet-info
// message yields its destination.
func FuzzPacketInfo(f *testing.F) {
	b := newMmsgBatch(1, 0, true)
	b.setAddr(0, []byte{1}, netip.MustParseAddrPort("192.0.2.1:53"), false, netip.MustParseAddr("192.0.2.9"))
	f.Add(append([]byte(nil), b.ctrl[0][:b.hs[0].hdr.Controllen]...))
	b.setAddr(0, []byte{1}, netip.MustParseAddrPort("[2001:db8::1]:53"), true, netip.MustParseAddr("2001:db8::9"))
	f.Add(append([]byte(nil), b.ctrl[0][:b.hs[0].hdr.Controllen]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := newMmsgBatch(1, 0, true)
		n := copy(in.ctrl[0], data)
		in.hs[0].hdr.SetControllen(n)
		_ = in.dst(0)
	})
}

// TestPacketInfo parses the packet-info messages setSrc writes: the
// kernel's IP_PKTINFO carries the destination where setSrc puts the
// source (ipi_spec_dst), so only IPv6, whose one address serves both, is
// read back; IPv4's Addr field is checked as the kernel fills it.
func TestPacketInfo(t *testing.T) {
	b := newMmsgBatch(1, 0, true)
	b.setAddr(0, []byte{1}, netip.MustParseAddrPort("[2001:db8::1]:53"), true, netip.MustParseAddr("2001:db8::9"))
	require.Equal(t, netip.MustParseAddr("2001:db8::9"), b.dst(0))

	b.setAddr(0, []byte{1}, netip.MustParseAddrPort("192.0.2.1:53"), false, netip.MustParseAddr("192.0.2.9"))
	pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b.ctrl[0][unix.CmsgLen(0)]))
	require.Equal(t, [4]byte{192, 0, 2, 9}, pi.Spec_dst)
	pi.Addr = [4]byte{127, 0, 0, 2} // the header destination, as received
	require.Equal(t, netip.MustParseAddr("127.0.0.2"), b.dst(0))
}
