package zones

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// zoneOf builds a zone of A records given as name → addresses, with an NS.
func zoneOf(recs map[string][]string, serial uint32) *Zone {
	b := NewBuilder("mesos.", testSOA, []string{"ns1.mesos."})
	for name, ips := range recs {
		for _, ip := range ips {
			b.AddAddr([]byte(name), netip.MustParseAddr(ip), 60)
		}
	}
	return b.Build(serial)
}

func recordStrings(z *Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// A patched zone holds the records, count and hash of the same zone built
// whole, answers from them, and leaves the zone it started from as it
// was.
func TestPatchMatchesWholeBuild(t *testing.T) {
	before := map[string][]string{
		"a.web.mesos.":       {"10.0.0.1", "10.0.0.2"},
		"b.web.mesos.":       {"10.0.0.3"},
		"x.y.db.mesos.":      {"10.0.0.4"},
		"ns1.mesos.":         {"10.0.0.53"},
		"gone.mesos.":        {"10.0.0.9"},
		"_a._tcp.web.mesos.": nil,
	}
	after := map[string][]string{
		"a.web.mesos.":   {"10.0.0.1"},
		"b.web.mesos.":   {"10.0.0.3"},
		"x.y.db.mesos.":  {"10.0.0.4"},
		"ns1.mesos.":     {"10.0.0.53"},
		"new.q.r.mesos.": {"10.0.0.7", "fd00::7"},
	}
	base := zoneOf(before, 1)
	baseRecords := recordStrings(base)
	p := base.Patch()
	for _, name := range []string{"a.web.mesos.", "gone.mesos.", "mesos."} {
		p.Drop(name)
	}
	p.AddAddr([]byte("a.web.mesos."), netip.MustParseAddr("10.0.0.1"), 60)
	p.AddAddr([]byte("NEW.q.r.mesos."), netip.MustParseAddr("10.0.0.7"), 60)
	p.AddAddr([]byte("new.q.r.mesos."), netip.MustParseAddr("fd00::7"), 60)
	got, ok := p.Build(2)
	require.True(t, ok)
	want := zoneOf(after, 2)

	require.Equal(t, recordStrings(want), recordStrings(got))
	require.Equal(t, want.Len(), got.Len())
	require.Equal(t, want.Hash(), got.Hash())
	require.Equal(t, uint32(2), got.Serial())
	require.Equal(t, baseRecords, recordStrings(base), "the base zone is unchanged")

	for _, q := range []struct {
		name  string
		qtype uint16
		rcode int
		n     int
	}{
		{"a.web.mesos.", dns.TypeA, dns.RcodeSuccess, 1},
		{"gone.mesos.", dns.TypeA, dns.RcodeNameError, 0},
		{"new.q.r.mesos.", dns.TypeAAAA, dns.RcodeSuccess, 1},
		{"q.r.mesos.", dns.TypeA, dns.RcodeSuccess, 0}, // a new empty non-terminal
		{"mesos.", dns.TypeNS, dns.RcodeSuccess, 1},
		{"mesos.", dns.TypeSOA, dns.RcodeSuccess, 1},
	} {
		res := got.Lookup(q.name, q.qtype)
		require.Equal(t, q.rcode, res.Rcode, q.name)
		require.Len(t, res.Answer, q.n, q.name)
	}
	require.Equal(t, uint32(2), got.Lookup("mesos.", dns.TypeSOA).Answer[0].(*dns.SOA).Serial)
	require.Equal(t, uint32(1), base.Lookup("mesos.", dns.TypeSOA).Answer[0].(*dns.SOA).Serial)
}

// Adding at a name of the base zone without dropping it would mix two
// record sets: the patch refuses.
func TestPatchRefusesUndroppedName(t *testing.T) {
	base := zoneOf(map[string][]string{"a.mesos.": {"10.0.0.1"}}, 1)
	p := base.Patch()
	p.AddAddr([]byte("a.mesos."), netip.MustParseAddr("10.0.0.2"), 60)
	_, ok := p.Build(2)
	require.False(t, ok)
	require.Equal(t, 1, base.RecordsAt("a.mesos."))
	require.Equal(t, 0, base.RecordsAt("b.mesos."))
}

// Patches of patches: the changes pile up in the overlay until it is
// merged into a new name table; before and after, the zone is the one
// built whole.
func TestPatchChain(t *testing.T) {
	recs := map[string][]string{"keep.mesos.": {"10.0.0.1"}}
	z := zoneOf(recs, 1)
	merged := false
	for i := range 400 {
		p := z.Patch()
		for j := range 4 {
			name := fmt.Sprintf("t%d.fw%d.mesos.", i*4+j, j)
			ip := fmt.Sprintf("10.1.%d.%d", i%250, j)
			p.AddAddr([]byte(name), netip.MustParseAddr(ip), 60)
			recs[name] = []string{ip}
		}
		if i >= 10 {
			gone := fmt.Sprintf("t%d.fw0.mesos.", (i-10)*4)
			p.Drop(gone)
			delete(recs, gone)
		}
		next, ok := p.Build(uint32(i + 2))
		require.True(t, ok)
		merged = merged || (z.over != nil && next.over == nil)
		z = next
		if i%50 == 0 || i == 399 {
			want := zoneOf(recs, uint32(i+2))
			require.Equal(t, recordStrings(want), recordStrings(z), "patch %d", i)
			require.Equal(t, want.Hash(), z.Hash())
			require.Equal(t, want.Len(), z.Len())
		}
	}
	require.True(t, merged, "the overlay was merged")
	require.Equal(t, dns.RcodeNameError, z.Lookup("t0.fw0.mesos.", dns.TypeA).Rcode)
	require.Len(t, z.Lookup("t1599.fw3.mesos.", dns.TypeA).Answer, 1)
}
