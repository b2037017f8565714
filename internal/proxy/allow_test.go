package proxy

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
)

// The default client networks take link-local IPv6 clients, whose source
// addresses arrive with their interface as the zone; mapped IPv4 clients
// are their IPv4 addresses.
func TestAllowedClients(t *testing.T) {
	allow, err := ParseAllowNets(config.DefaultAllowNets())
	require.NoError(t, err)
	f := &Forwarder{o: Options{AllowNets: allow}}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"fe80::1%eth0", true},
		{"fe80::1", true},
		{"::ffff:10.1.2.3", true},
		{"127.0.0.1", true},
		{"192.0.2.1", false},
		{"2001:db8::1%eth0", false},
	} {
		require.Equal(t, tc.want, f.allowed(netip.MustParseAddr(tc.addr)), tc.addr)
	}
}
