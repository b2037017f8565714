package zones

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// fanTails are the tails of the fanout tests: two kinds of task name,
// and one tail that ends another, so that a name can fit both.
var fanTails = []string{".a.dcos.example.", ".b.dcos.example.", ".dcos.example."}

// fanRecords is a zone whose names are mostly families, with the other
// cases: a name of one family at the parent of another (x.b.dcos.example.
// is base "x.b"), SRV records whose targets are family names, a name
// that fits no tail, names given in other cases, repeated records, and a
// family with one name only.
var fanRecords = []string{
	"web.mar.a.dcos.example. 5 IN A 192.0.2.1",
	"web.mar.b.dcos.example. 5 IN A 10.0.0.1",
	"web.mar.b.dcos.example. 5 IN AAAA 2001:db8::1",
	"WEB.Mar.a.dcos.example. 5 IN A 192.0.2.2",
	"web.mar.a.dcos.example. 5 IN A 192.0.2.1",
	"db.mar.a.dcos.example. 5 IN A 192.0.2.3",
	"db.other.b.dcos.example. 5 IN A 10.0.0.3",
	"mar.a.dcos.example. 5 IN A 192.0.2.9",
	"x.b.dcos.example. 5 IN A 192.0.2.10",
	"_web._tcp.mar.a.dcos.example. 5 IN SRV 0 1 80 web.mar.a.dcos.example.",
	"leader.example. 5 IN A 192.0.2.100",
}

func fanZone(t *testing.T, fan bool, serial uint32) *Zone {
	b := NewBuilder("example.", testSOA, []string{"ns.example."})
	if fan {
		b.Fanout(append([]string{"outside.test."}, fanTails...)...)
		b.GrowFanout(8)
	}
	for i, s := range fanRecords {
		r := rr(t, s)
		switch r := r.(type) {
		case *dns.A:
			// Both ways in: the byte API and Add.
			if i%2 == 0 {
				a, _ := netip.AddrFromSlice(r.A.To4())
				require.True(t, b.AddAddr([]byte(r.Hdr.Name), a, r.Hdr.Ttl))
				continue
			}
		case *dns.SRV:
			require.True(t, b.AddSRV([]byte(r.Hdr.Name), r.Target, r.Port, r.Priority, r.Weight, r.Hdr.Ttl))
			continue
		}
		require.True(t, b.Add(r))
	}
	return b.Build(serial)
}

// fanQuestions covers names of families, empty non-terminals above them,
// a family's missing name (NXDOMAIN), and names outside families.
var fanQuestions = []string{
	"web.mar.a.dcos.example.", "WEB.MAR.B.dcos.example.", "db.mar.a.dcos.example.",
	"db.mar.b.dcos.example.", "db.other.b.dcos.example.", "db.other.a.dcos.example.",
	"mar.a.dcos.example.", "other.b.dcos.example.", "mar.b.dcos.example.",
	"a.dcos.example.", "b.dcos.example.", "dcos.example.", "x.b.dcos.example.",
	"_web._tcp.mar.a.dcos.example.", "_tcp.mar.a.dcos.example.", "leader.example.",
	"nope.example.", "mar.dcos.example.", "web.mar.dcos.example.", "example.",
}

// requireSameZone checks that two zones hold the same records and answer
// every question alike.
func requireSameZone(t *testing.T, want, got *Zone) {
	t.Helper()
	require.Equal(t, want.Len(), got.Len())
	require.Equal(t, want.Hash(), got.Hash())
	require.Equal(t, recordStrings(want), recordStrings(got))
	for _, q := range fanQuestions {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY} {
			rw, rg := want.Lookup(q, qtype), got.Lookup(q, qtype)
			msg := fmt.Sprintf("%s %s", q, dns.TypeToString[qtype])
			require.Equal(t, rw.Rcode, rg.Rcode, msg)
			require.ElementsMatch(t, dataStrings(rw.Answer), dataStrings(rg.Answer), msg)
			require.ElementsMatch(t, dataStrings(rw.Ns), dataStrings(rg.Ns), msg)
			require.ElementsMatch(t, dataStrings(rw.Extra), dataStrings(rg.Extra), msg)
		}
		require.Equal(t, want.RecordsAt(q), got.RecordsAt(q), q)
	}
}

// A zone built with a fanout is the zone built without: same records,
// count, hash and answers, and patches of it (dropping and re-adding
// family names, enough of them to merge the overlay) stay equal to the
// same patches of the plain zone.
func TestFanoutMatchesPlainBuild(t *testing.T) {
	plain, fan := fanZone(t, false, 1), fanZone(t, true, 1)
	requireSameZone(t, plain, fan)
	require.Equal(t, "NXDOMAIN", dns.RcodeToString[fan.Lookup("db.mar.b.dcos.example.", dns.TypeA).Rcode],
		"a family's missing name does not exist")

	patch := func(z *Zone, serial uint32) *Zone {
		p := z.Patch()
		p.Drop("web.mar.a.dcos.example.")
		p.Drop("web.mar.b.dcos.example.")
		p.Drop("db.other.b.dcos.example.")
		p.AddAddr([]byte("web.mar.a.dcos.example."), netip.MustParseAddr("192.0.2.50"), 5)
		p.AddAddr([]byte("new.mar.b.dcos.example."), netip.MustParseAddr("10.0.0.50"), 5)
		// Enough new names that the overlay is merged into the table.
		for i := range 1100 {
			p.AddAddr(fmt.Appendf(nil, "n%d.bulk.a.dcos.example.", i), netip.MustParseAddr("192.0.2.60"), 5)
		}
		nz, ok := p.Build(serial)
		require.True(t, ok)
		return nz
	}
	pp, pf := patch(plain, 2), patch(fan, 2)
	requireSameZone(t, pp, pf)
	require.Equal(t, "NXDOMAIN", dns.RcodeToString[pf.Lookup("db.other.b.dcos.example.", dns.TypeA).Rcode],
		"a dropped family name stays dropped once the overlay is merged")
	require.Equal(t, []string{"web.mar.a.dcos.example.\t0\tIN\tA\t192.0.2.50"}, dataStrings(pf.Lookup("web.mar.a.dcos.example.", dns.TypeA).Answer))
	// The zones patched from are unchanged.
	requireSameZone(t, fanZone(t, false, 1), fan)

	// A second patch, on the merged table, still sees the fanout.
	p := pf.Patch()
	p.Drop("db.mar.a.dcos.example.")
	z, ok := p.Build(3)
	require.True(t, ok)
	require.Equal(t, dns.RcodeNameError, z.Lookup("db.mar.a.dcos.example.", dns.TypeA).Rcode)
	require.Equal(t, pf.Len()-1, z.Len())
	// A name the fanout holds cannot be added without being dropped.
	p = pf.Patch()
	p.AddAddr([]byte("db.mar.a.dcos.example."), netip.MustParseAddr("192.0.2.70"), 5)
	_, ok = p.Build(4)
	require.False(t, ok)
}
