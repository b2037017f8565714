package watchdog

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/resolvconf"
)

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func corpus(t *testing.T, name string) *resolvconf.File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../testdata/resolvconf", name))
	require.NoError(t, err)
	return resolvconf.Parse(data)
}

var defaultOptions = []resolvconf.Option{resolvconf.ParseOption("timeout:1"), resolvconf.ParseOption("attempts:3")}

const header2 = "# The original is saved as /etc/resolv.conf.spartan-orig; \"spartan-watchdog -resolv-conf /etc/resolv.conf -restore\" puts it back.\n"

func TestRender(t *testing.T) {
	const upHeader = resolvconf.Marker + " Proxy up: queries go to the node's spartan proxy.\n" + header2
	const downHeader = resolvconf.Marker + " Proxy down: queries go straight to the upstream resolvers.\n" + header2
	tests := []struct {
		name      string
		up        bool
		proxy     []netip.Addr
		upstreams []netip.Addr
		orig      string // corpus file
		resolved  string // corpus file standing for /run/systemd/resolve/resolv.conf
		want      string
		err       error
	}{
		{
			name: "up keeps the user's search and options", up: true,
			proxy: ips("169.254.20.10"), orig: "kubernetes-pod.conf",
			want: upHeader + "nameserver 169.254.20.10\n" +
				"search default.svc.cluster.local svc.cluster.local cluster.local ec2.internal\n" +
				"options ndots:5\noptions timeout:1 attempts:3\n",
		},
		{
			name: "down uses the original's nameservers", up: false,
			proxy: ips("169.254.20.10"), orig: "kubernetes-pod.conf",
			want: downHeader + "nameserver 10.96.0.10\n" +
				"search default.svc.cluster.local svc.cluster.local cluster.local ec2.internal\n" +
				"options ndots:5\noptions timeout:1 attempts:3\n",
		},
		{
			name: "down: configured upstreams win, three at most", up: false,
			proxy: ips("169.254.20.10"), upstreams: ips("192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.3", "192.0.2.4"),
			orig: "debian-dhcp.conf",
			want: downHeader + "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n" +
				"domain corp.example.com\nsearch corp.example.com\noptions timeout:1 attempts:3\n",
		},
		{
			name: "up: proxy addresses only, never an upstream after them", up: true,
			proxy: ips("198.51.100.1", "198.51.100.2"), upstreams: ips("192.0.2.1"), orig: "debian-dhcp.conf",
			want: upHeader + "nameserver 198.51.100.1\nnameserver 198.51.100.2\n" +
				"domain corp.example.com\nsearch corp.example.com\noptions timeout:1 attempts:3\n",
		},
		{
			name: "user's timeout and attempts win", up: true,
			proxy: ips("169.254.20.10"), orig: "too-many-nameservers.conf",
			want: upHeader + "nameserver 169.254.20.10\nsearch example.net\noptions rotate timeout:2 attempts:2\n",
		},
		{
			name: "down: the proxy's own addresses are not upstreams", up: false,
			proxy: ips("198.51.100.1", "198.51.100.2", "198.51.100.3"), orig: "dcos-generated.conf",
			err: ErrNoUpstreams,
		},
		{
			name: "down: more than three original nameservers", up: false,
			proxy: ips("192.0.2.2"), orig: "too-many-nameservers.conf",
			want: downHeader + "nameserver 192.0.2.1\nnameserver 192.0.2.3\nnameserver 198.51.100.4\n" +
				"search example.net\noptions rotate timeout:2 attempts:2\n",
		},
		{
			name: "systemd-resolved stub: options and search kept", up: true,
			proxy: ips("169.254.20.10"), orig: "ubuntu-resolved-stub.conf",
			want: upHeader + "nameserver 169.254.20.10\noptions edns0 trust-ad\nsearch .\noptions timeout:1 attempts:3\n",
		},
		{
			name: "systemd-resolved stub, down: resolved's upstreams, not the stub", up: false,
			proxy: ips("169.254.20.10"), orig: "ubuntu-resolved-stub.conf", resolved: "ubuntu-resolved-uplink.conf",
			want: downHeader + "nameserver 192.0.2.1\nnameserver 2001:db8::1\noptions edns0 trust-ad\nsearch .\noptions timeout:1 attempts:3\n",
		},
		{
			name: "systemd-resolved stub, down, resolved's list absent: the stub", up: false,
			proxy: ips("169.254.20.10"), orig: "ubuntu-resolved-stub.conf",
			want: downHeader + "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\noptions timeout:1 attempts:3\n",
		},
		{
			name: "systemd-resolved stub, down, resolved's list names only the proxy: the stub", up: false,
			proxy: ips("192.0.2.1", "2001:db8::1"), orig: "ubuntu-resolved-stub.conf", resolved: "ubuntu-resolved-uplink.conf",
			want: downHeader + "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\noptions timeout:1 attempts:3\n",
		},
		{
			name: "systemd-resolved stub, down: configured upstreams win", up: false,
			proxy: ips("169.254.20.10"), upstreams: ips("198.51.100.7"), orig: "ubuntu-resolved-stub.conf", resolved: "ubuntu-resolved-uplink.conf",
			want: downHeader + "nameserver 198.51.100.7\noptions edns0 trust-ad\nsearch .\noptions timeout:1 attempts:3\n",
		},
		{
			name: "not the stub: resolved's list ignored", up: false,
			proxy: ips("169.254.20.10"), orig: "kubernetes-pod.conf", resolved: "ubuntu-resolved-uplink.conf",
			want: downHeader + "nameserver 10.96.0.10\n" +
				"search default.svc.cluster.local svc.cluster.local cluster.local ec2.internal\n" +
				"options ndots:5\noptions timeout:1 attempts:3\n",
		},
		{
			name: "odd spacing: directive lines verbatim, comments and indented nameservers dropped", up: false,
			proxy: ips("169.254.20.10"), orig: "odd-spacing.conf",
			want: downHeader + "nameserver 192.0.2.53\nnameserver 198.51.100.53\n" +
				"domain   lab.example\n" +
				"search\tlab.example   example.org\t  \n" +
				"options ndots:2   timeout:3\n" +
				"options attempts:4 rotate edns0 single-request-reopen no-tld-query   # tuned\n" +
				"sortlist 130.155.160.0/255.255.240.0 130.155.0.0\n" +
				"lookup file bind\n" +
				"options single-request use-vc\n",
		},
		{
			name: "IPv6 with zone", up: false,
			proxy: ips("169.254.20.10"), orig: "networkmanager-ipv6-zone.conf",
			want: downHeader + "nameserver 192.168.1.1\nnameserver fe80::1%wlp2s0\nnameserver 2001:db8:1::53\n" +
				"search home.arpa\noptions timeout:1 attempts:3\n",
		},
		{
			name: "empty original", up: false,
			proxy: ips("169.254.20.10"), orig: "empty.conf",
			err: ErrNoUpstreams,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Content{Path: "/etc/resolv.conf", Proxy: tc.proxy, Upstreams: tc.upstreams,
				Original: corpus(t, tc.orig), Options: defaultOptions}
			if tc.resolved != "" {
				c.Resolved = corpus(t, tc.resolved)
			}
			got, err := c.Render(tc.up)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
			// Same inputs, same bytes: nothing to rewrite next round.
			again, err := c.Render(tc.up)
			require.NoError(t, err)
			require.Equal(t, got, again)
			f := resolvconf.Parse(got)
			require.LessOrEqual(t, len(f.Nameservers()), resolvconf.MaxNameservers)
			require.Equal(t, c.Original.Search(), f.Search())
		})
	}
}
