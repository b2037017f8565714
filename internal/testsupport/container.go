package testsupport

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Container is a network namespace behind a Linux bridge inside a host
// namespace, the way Docker's default bridge network attaches a
// container: a veth pair whose host end is a port of the bridge, the
// bridge holding the gateway address of the container subnet, and the
// container's default route through it. The container reaches the host's
// own addresses (a node-local DNS proxy on a link-local address, say) by
// plain routing: they are local to the host, so neither forwarding nor NAT
// is involved.
type Container struct {
	// NS is the container's namespace; run clients in it with NS.Dig and
	// NS.Getent, which read NS's resolv.conf (see SetResolvConf).
	NS *NetNS
	// Addr is the container's address.
	Addr netip.Addr
}

// NewContainer makes a container namespace behind bridge in host (created
// there when missing, with gateway, a CIDR such as "203.0.113.193/28", as
// its address) and gives the container addr (a CIDR in the same subnet;
// use the documentation ranges). Everything goes away with the two
// namespaces when the test ends: deleting the container's namespace
// deletes the veth pair, deleting host's deletes the bridge.
func NewContainer(t testing.TB, host *NetNS, bridge, gateway, addr string) *Container {
	t.Helper()
	gw, err := netip.ParsePrefix(gateway)
	require.NoError(t, err)
	ap, err := netip.ParsePrefix(addr)
	require.NoError(t, err)
	c := &Container{NS: NewNetNS(t), Addr: ap.Addr()}
	if _, err := host.Command(t.Context(), "ip", "link", "show", bridge).Output(); err != nil {
		host.Run(t, "ip", "link", "add", bridge, "type", "bridge")
		host.Run(t, "ip", "addr", "add", gateway, "dev", bridge)
		host.Run(t, "ip", "link", "set", bridge, "up")
	}
	// The host end is named after the container's namespace, unique per
	// container as Docker's veth names are.
	port := "v" + c.NS.Name[len(c.NS.Name)-8:]
	host.Run(t, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", c.NS.Name)
	host.Run(t, "ip", "link", "set", port, "master", bridge)
	host.Run(t, "ip", "link", "set", port, "up")
	c.NS.Run(t, "ip", "addr", "add", addr, "dev", "eth0")
	c.NS.Run(t, "ip", "link", "set", "eth0", "up")
	c.NS.Run(t, "ip", "route", "add", "default", "via", gw.Addr().String())
	return c
}

// SetResolvConf gives the container the resolv.conf a container runtime
// derives from the host's (DockerResolvConf) and returns what it wrote.
// Clients run with NS.Dig and NS.Getent see it as /etc/resolv.conf (the
// "ip netns exec" bind mount from /etc/netns/NAME).
func (c *Container) SetResolvConf(t testing.TB, hostResolvConf []byte) []byte {
	t.Helper()
	data := DockerResolvConf(hostResolvConf)
	c.NS.EtcFile(t, "resolv.conf", data)
	return data
}

// DockerResolvConf returns the resolv.conf Docker gives a container on
// its default bridge network, copied from the host's when the container
// starts: the host's file without its loopback nameservers (127.0.0.0/8
// and ::1, which mean the host's own stub and are unreachable from the
// container's namespace), and Google's public resolvers when no
// nameserver is left (moby's libnetwork resolvconf package,
// FilterResolvDNS; the fallback is discussed in moby issue 23910). Search
// and options lines are kept. IPv6 nameservers are kept, as on a network
// with IPv6 enabled.
func DockerResolvConf(host []byte) []byte {
	var out bytes.Buffer
	kept := 0
	for _, line := range strings.SplitAfter(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Unmap().IsLoopback() {
				continue
			}
			kept++
		}
		out.WriteString(line)
	}
	if kept == 0 {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteString("\n")
		}
		out.WriteString("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
	}
	return out.Bytes()
}
