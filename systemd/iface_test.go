package systemd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// netns runs commands in a network namespace of the test's own.
type netns struct {
	t  *testing.T
	ns *testsupport.NetNS
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	return &netns{t: t, ns: testsupport.NewNetNS(t)}
}

// run runs argv inside the namespace with env added to the environment.
func (n *netns) run(env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := n.ns.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *netns) mustRun(env []string, argv ...string) string {
	n.t.Helper()
	out, err := n.run(env, argv...)
	require.NoError(n.t, err, "%v: %s", argv, out)
	return out
}

// addrs lists the addresses (with prefix length) on dev, nil when dev does
// not exist.
func (n *netns) addrs(dev string) []string {
	n.t.Helper()
	out, err := n.run(nil, "ip", "-j", "addr", "show", "dev", dev)
	if err != nil {
		require.Contains(n.t, out, "does not exist")
		return nil
	}
	var links []struct {
		Flags    []string `json:"flags"`
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	require.NoError(n.t, json.Unmarshal([]byte(out), &links), out)
	require.Len(n.t, links, 1)
	require.Contains(n.t, links[0].Flags, "UP", "interface %s is down", dev)
	got := []string{}
	for _, a := range links[0].AddrInfo {
		got = append(got, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
	}
	slices.Sort(got)
	return got
}

// routeIsLocal reports whether the namespace delivers packets for addr to
// itself: what makes a socket bound there reachable.
func (n *netns) routeIsLocal(addr string) bool {
	n.t.Helper()
	out, err := n.run(nil, "ip", "route", "get", addr)
	if err != nil {
		require.Contains(n.t, out, "unreachable")
		return false
	}
	return strings.HasPrefix(out, "local ")
}

func TestIfaceUpDownIdempotent(t *testing.T) {
	ns := newNetns(t)
	script, err := filepath.Abs("spartan-iface")
	require.NoError(t, err)

	env := func(addrs string, extra ...string) []string {
		return append([]string{"SPARTAN_IFACE=spartan", "SPARTAN_ADDRESSES=" + addrs}, extra...)
	}
	three := "169.254.20.10 192.0.2.1/32 192.0.2.2"
	wantThree := []string{"169.254.20.10/32", "192.0.2.1/32", "192.0.2.2/32"}

	for _, step := range []struct {
		name   string
		env    []string
		action string
		want   []string
	}{
		{"up creates", env(three), "up", wantThree},
		{"up again is a no-op", env(three), "up", wantThree},
		{"up with fewer addresses removes the stale ones", env("169.254.20.10/32"), "up", []string{"169.254.20.10/32"}},
		{"up restores the full set", env(three), "up", wantThree},
		{"down removes the interface", env(three), "down", nil},
		{"down again is a no-op", env(three), "down", nil},
		{"up after down", env(three), "up", wantThree},
		{"down with keep leaves it", env(three, "SPARTAN_KEEP_IFACE=yes"), "down", wantThree},
	} {
		t.Run(step.name, func(t *testing.T) {
			ns := &netns{t: t, ns: ns.ns}
			ns.mustRun(step.env, script, step.action)
			require.Equal(t, step.want, ns.addrs("spartan"))
			for _, a := range wantThree {
				require.Equal(t, step.want != nil && slices.Contains(step.want, a),
					ns.routeIsLocal(strings.TrimSuffix(a, "/32")), "route to %s", a)
			}
		})
	}

	// After a crash: the interface is left down, an address was lost and a
	// foreign one added. up repairs all of it.
	ns.mustRun(nil, "ip", "link", "set", "spartan", "down")
	ns.mustRun(nil, "ip", "addr", "del", "192.0.2.1/32", "dev", "spartan")
	ns.mustRun(nil, "ip", "addr", "add", "203.0.113.9/32", "dev", "spartan")
	ns.mustRun(env(three), script, "up")
	require.Equal(t, wantThree, ns.addrs("spartan"))
	require.False(t, ns.routeIsLocal("203.0.113.9"))
}

func TestIfaceRefusesForeignInterface(t *testing.T) {
	ns := newNetns(t)
	script, err := filepath.Abs("spartan-iface")
	require.NoError(t, err)
	ns.mustRun(nil, "ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b")
	ns.mustRun(nil, "ip", "addr", "add", "192.0.2.77/24", "dev", "veth-a")
	for _, action := range []string{"up", "down"} {
		out, err := ns.run([]string{"SPARTAN_IFACE=veth-a", "SPARTAN_ADDRESSES=192.0.2.1"}, script, action)
		require.Error(t, err, action)
		require.Contains(t, out, "not created by spartan-iface")
	}
	out := ns.mustRun(nil, "ip", "-o", "addr", "show", "dev", "veth-a")
	require.Contains(t, out, "192.0.2.77/24")
	require.NotContains(t, out, "192.0.2.1/")
}

func TestIfaceUsage(t *testing.T) {
	out, err := exec.Command("sh", "spartan-iface", "bogus").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "usage:")
}
