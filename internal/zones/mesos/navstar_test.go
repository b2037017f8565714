package mesos

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/zones"
)

// navstarOptions are the settings of the thisdcos.directory golden test.
func navstarOptions() *Options {
	opt := goldenOptions()
	opt.Masters = []string{"10.0.0.11:5050", "10.0.0.12:5050", "10.0.0.13:5050"}
	opt.Resolve = func(host string) []netip.Addr {
		if host == "agent3.example.internal" {
			// The first IPv4 address is the agent's.
			return []netip.Addr{netip.MustParseAddr("2001:db8::3"), netip.MustParseAddr("10.0.1.3"), netip.MustParseAddr("10.0.1.33")}
		}
		return nil
	}
	return opt
}

// readRecordFile reads a golden record file: readLines without the
// comments.
func readRecordFile(t testing.TB, path string) []string {
	t.Helper()
	return slices.DeleteFunc(readLines(t, path), func(l string) bool { return strings.HasPrefix(l, "#") })
}

// TestNavstarGolden checks the thisdcos.directory zone generated for the
// fixture state against the record set written from dcos-net's rules (the
// file names the function deciding each case).
func TestNavstarGolden(t *testing.T) {
	st := loadState(t, filepath.Join(fixtureDir, "navstar-state.json"))
	z := BuildNavstarZone(st, navstarOptions(), 7)
	require.Equal(t, readRecordFile(t, filepath.Join(fixtureDir, "navstar-state.navstar.txt")), recordLines(z))
	require.Equal(t, uint32(7), z.Serial())
	for _, rr := range z.Records() {
		require.Equal(t, uint32(NavstarTTL), rr.Header().Ttl, "%s", rr)
	}
	// The same state builds the same zone.
	require.Equal(t, z.Hash(), BuildNavstarZone(loadState(t, filepath.Join(fixtureDir, "navstar-state.json")), navstarOptions(), 8).Hash())
}

// TestNavstarLabel checks NavstarLabel against mesos_state's own test
// vectors (remap_test in dcos/mesos_state src/mesos_state.erl) and the
// cases format_name meets.
func TestNavstarLabel(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"fd%gsf---gs7-f$gs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg-123"},
		{"4abc123", "4abc123"},
		{"89fdgsf---gs7-fgs--d7fddg-123", "89fdgsf---gs7-fgs--d7fddg-123"},
		{"##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-", "fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789"},
		{"fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
		{"89fdgsf---gs7-fgs--d7fddg---123", "89fdgsf---gs7-fgs--d7fddg---123"},
		{"%%fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789---123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
		{"-4abc123", "4abc123"},
		{"$$fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
		{"89fdgsf---gs7-fgs--d7fddg-", "89fdgsf---gs7-fgs--d7fddg"},
		{"0-0", "0-0"},
		// Unlike Mesos-DNS, a dotted framework name stays one label.
		{"Metronome.Jobs", "metronome-jobs"},
		{"Hello World.Service", "helloworld-service"},
		{"__Kafka_Brokers__", "kafka-brokers"},
		{"héllo", "hllo"},
		{"---", ""},
		{"", ""},
		{strings.Repeat("x", 70), strings.Repeat("x", 63)},
	} {
		require.Equal(t, c.want, NavstarLabel(c.in), "%q", c.in)
		require.LessOrEqual(t, len(NavstarLabel(c.in)), 63)
	}
}

// FuzzNavstarLabel checks that any name gives a valid label: at most 63
// characters of [a-z0-9-], no '-' at either end, and the same for the
// name with its ASCII letters upper-cased (mesos_state:label folds only
// those).
func FuzzNavstarLabel(f *testing.F) {
	for _, s := range []string{"Metronome.Jobs", "-a", strings.Repeat("a-", 40), "a\xffb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		l := NavstarLabel(name)
		require.LessOrEqual(t, len(l), 63)
		require.False(t, strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-"), "%q", l)
		for _, c := range []byte(l) {
			require.True(t, c == '-' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'), "%q", l)
		}
		upper := []byte(name)
		for i, c := range upper {
			if c >= 'a' && c <= 'z' {
				upper[i] = c - 'a' + 'A'
			}
		}
		require.Equal(t, l, NavstarLabel(string(upper)))
	})
}

// navstarAuthority serves the fixture state as master mode does.
func navstarAuthority(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "navstar-state.json"))
	require.NoError(t, err)
	st, err := DecodeState(bytes.NewReader(data))
	require.NoError(t, err)
	opt := navstarOptions()
	cluster, _ := BuildZone(st, opt, 1)
	nav := BuildNavstarZone(st, opt, 1)
	auth := zones.NewAuthority(zones.NewStore(cluster), zones.NewStore(nav)).WithAliases(NavstarAliases(opt.Domain)...)
	return serveAuthority(t, auth)
}

// TestServeNavstar asks master mode's handler for dcos-net's names over
// UDP and TCP: answers, negative answers, aliases.
func TestServeNavstar(t *testing.T) {
	addr := navstarAuthority(t)
	for _, c := range []struct {
		name    string
		qtype   uint16
		rcode   int
		answers []string // "NAME TYPE VALUE", any order
		extra   int
	}{
		{name: "nginx-bridge.marathon.autoip.dcos.thisdcos.directory.", qtype: dns.TypeA,
			answers: []string{"nginx-bridge.marathon.autoip.dcos.thisdcos.directory. A 10.0.1.1"}},
		// The question's casing, the zone's names.
		{name: "CNI-App.Marathon.ContainerIP.dcos.ThisDCOS.directory.", qtype: dns.TypeAAAA,
			answers: []string{"cni-app.marathon.containerip.dcos.thisdcos.directory. AAAA fd01:b::1:8000:0:5", "cni-app.marathon.containerip.dcos.thisdcos.directory. AAAA fd01:b::2:8000:0:7"}},
		{name: "leader.dcos.thisdcos.directory.", qtype: dns.TypeA, answers: []string{"leader.dcos.thisdcos.directory. A 10.0.0.11"}},
		{name: "thisdcos.directory.", qtype: dns.TypeSOA, answers: []string{"thisdcos.directory. SOA ns.spartan. support.mesosphere.com."}},
		{name: "thisdcos.directory.", qtype: dns.TypeNS, answers: []string{"thisdcos.directory. NS ns.spartan."}},
		// NODATA: an existing name without the type, an empty non-terminal.
		{name: "nginx-bridge.marathon.autoip.dcos.thisdcos.directory.", qtype: dns.TypeAAAA},
		{name: "marathon.autoip.dcos.thisdcos.directory.", qtype: dns.TypeA},
		{name: "dcos.thisdcos.directory.", qtype: dns.TypeA},
		// NXDOMAIN: nothing at or below; l4lb is not served.
		{name: "nosuch.marathon.autoip.dcos.thisdcos.directory.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "staging-app.marathon.agentip.dcos.thisdcos.directory.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "app.marathon.l4lb.thisdcos.directory.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		// thisdcos.global is thisdcos.directory under the question's name.
		{name: "vip-app.marathon.autoip.dcos.thisdcos.global.", qtype: dns.TypeA,
			answers: []string{"vip-app.marathon.autoip.dcos.thisdcos.global. A 10.0.1.1"}},
		{name: "nosuch.dcos.thisdcos.global.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		// mesos.thisdcos.directory is the cluster zone renamed, SRV
		// targets and additional addresses too, TTL 5.
		{name: "leader.mesos.thisdcos.directory.", qtype: dns.TypeA, answers: []string{"leader.mesos.thisdcos.directory. A 10.0.0.11"}},
		{name: "_leader._tcp.mesos.thisdcos.directory.", qtype: dns.TypeSRV,
			answers: []string{"_leader._tcp.mesos.thisdcos.directory. SRV 1 1 5050 leader.mesos.thisdcos.directory."}, extra: 1},
		{name: "_leader._tcp.mesos.thisdcos.global.", qtype: dns.TypeSRV,
			answers: []string{"_leader._tcp.mesos.thisdcos.global. SRV 1 1 5050 leader.mesos.thisdcos.global."}, extra: 1},
		{name: "nosuch.marathon.mesos.thisdcos.directory.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		// Outside every zone.
		{name: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "directory.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	} {
		for _, network := range []string{"udp", "tcp"} {
			r := exchange(t, network, addr, c.name, c.qtype)
			require.Equal(t, dns.RcodeToString[c.rcode], dns.RcodeToString[r.Rcode], "%s %s", c.name, network)
			require.Equal(t, c.rcode != dns.RcodeRefused, r.Authoritative, c.name)
			var got []string
			for _, rr := range r.Answer {
				h := rr.Header()
				got = append(got, h.Name+" "+dns.TypeToString[h.Rrtype]+" "+strings.TrimPrefix(rr.String(), h.String()))
				want := uint32(NavstarTTL)
				if strings.HasSuffix(h.Name, "thisdcos.directory.") || strings.HasSuffix(h.Name, "thisdcos.global.") {
					require.Equal(t, want, h.Ttl, "%s", rr)
				}
			}
			for i, w := range c.answers {
				if strings.HasSuffix(w, ".com.") && i < len(got) {
					// SOA: only its names are compared.
					got[i] = strings.Join(strings.Fields(got[i])[:4], " ")
				}
			}
			require.ElementsMatch(t, c.answers, got, "%s %s", c.name, network)
			require.Len(t, r.Extra, c.extra, c.name)
			for _, rr := range r.Extra {
				require.True(t, strings.HasSuffix(rr.Header().Name, strings.Join(dns.SplitDomainName(c.name)[len(dns.SplitDomainName(c.name))-2:], ".")+"."), "%s", rr)
			}
			if c.rcode != dns.RcodeRefused && len(c.answers) == 0 {
				require.Len(t, r.Ns, 1, c.name)
				require.IsType(t, &dns.SOA{}, r.Ns[0])
				require.True(t, dns.IsSubDomain(r.Ns[0].Header().Name, dns.CanonicalName(c.name)), "%s", r.Ns[0])
			}
		}
	}
}

// TestServeNavstarShuffles checks that several answers come in every
// order, as Mesos-DNS names do, from the memo too.
func TestServeNavstarShuffles(t *testing.T) {
	addr := navstarAuthority(t)
	seen := map[string]bool{}
	for range 200 {
		r := exchange(t, "udp", addr, "cni-app.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA)
		require.Len(t, r.Answer, 2)
		seen[r.Answer[0].(*dns.A).A.String()] = true
		if len(seen) == 2 {
			return
		}
	}
	t.Fatalf("200 answers all started with %v", seen)
}

// TestNavstarAgentLookupsCached: an agent's host name is looked up once
// across polls, not on every poll (dcos-net resolves an agent when it
// registers), and its address names the agent's tasks.
func TestNavstarAgentLookupsCached(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fixtureDir, "navstar-state.json"))
	require.NoError(t, err)
	m := newMaster(t, masterConfig(t, []string{"10.0.0.11:5050"}, ""))
	m.UseState(data)
	var mu sync.Mutex
	lookups := map[string]int{}
	m.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups[host]++
		if host == "agent3.example.internal" {
			return []netip.Addr{netip.MustParseAddr("10.0.1.3")}, nil
		}
		return nil, fmt.Errorf("no such host %q", host)
	}
	for range 3 {
		require.NoError(t, m.Poll(t.Context()))
	}
	require.Equal(t, 1, lookups["agent3.example.internal"])
	res := m.NavstarStore().Load().Lookup("ucr-bridge.marathon.agentip.dcos.thisdcos.directory.", dns.TypeA)
	require.Len(t, res.Answer, 1)
	require.Equal(t, "10.0.1.3", res.Answer[0].(*dns.A).A.String())
}
