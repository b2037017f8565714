package mesos

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/zones"
	"github.com/stretchr/testify/require"
)

// fixtureDir holds the shared fixtures (the repository's testdata).
const fixtureDir = "../../../testdata"

// goldenOptions are the settings the golden file was generated with.
func goldenOptions() *Options {
	return &Options{
		Domain:    "mesos.",
		Masters:   []string{"144.76.157.37:5050"},
		NS:        "ns1.mesos.",
		Listeners: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		IPSources: []string{"netinfo", "mesos", "host"},
		Spec:      RFC1123,
		SRVWeight: 1,
		SOA: zones.SOA{Mname: "ns1.mesos.", Rname: "root.ns1.mesos.",
			Refresh: 60, Retry: 600, Expire: 86400, Minttl: 60, TTL: 60},
		// The fixture's framework without a PID has host name
		// "localhost"; resolve it without depending on the machine.
		Resolve: func(host string) []netip.Addr {
			if host == "localhost" {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
			}
			return nil
		},
	}
}

func loadState(t testing.TB, path string) *State {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := DecodeState(bufio.NewReader(f))
	require.NoError(t, err)
	return st
}

// recordLines renders a zone's records as the golden file does, "NAME TYPE
// VALUE" with SRV values as target:port, leaving out SOA and NS.
func recordLines(z *zones.Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		h := rr.Header()
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, fmt.Sprintf("%s A %s", h.Name, r.A))
		case *dns.AAAA:
			out = append(out, fmt.Sprintf("%s AAAA %s", h.Name, r.AAAA))
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%s SRV %s:%d", h.Name, r.Target, r.Port))
		}
	}
	sort.Strings(out)
	return out
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// TestGolden checks the generated record set against every fixture state
// that has a records file next to it.
func TestGolden(t *testing.T) {
	states, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	require.NoError(t, err)
	ran := 0
	for _, statePath := range states {
		golden := strings.TrimSuffix(statePath, ".json") + ".records.txt"
		if _, err := os.Stat(golden); err != nil {
			continue
		}
		ran++
		t.Run(filepath.Base(statePath), func(t *testing.T) {
			st := loadState(t, statePath)
			z, stats := BuildZone(st, goldenOptions(), 1)
			require.Equal(t, readLines(t, golden), recordLines(z))
			require.Zero(t, stats.Dropped)

			// SOA and NS come with the zone.
			res := z.Lookup("mesos.", dns.TypeNS)
			require.Len(t, res.Answer, 1)
			require.Equal(t, "ns1.mesos.", res.Answer[0].(*dns.NS).Ns)
			require.Len(t, res.Extra, 1, "the NS address goes in additional")
		})
	}
	require.NotZero(t, ran, "no golden fixtures found in %s", fixtureDir)
}

// TestEmbeddedDemoState keeps the embedded demo state identical to the
// fixture it was copied from.
func TestEmbeddedDemoState(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(fixtureDir, "mesos-dns-fake-state.json"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(DemoState))
}
