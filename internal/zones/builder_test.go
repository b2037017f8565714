package zones

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func TestBuilderDedupsAndHashesSets(t *testing.T) {
	records := []string{
		"a.mesos. 60 IN A 192.0.2.1",
		"a.mesos. 30 IN A 192.0.2.1", // same value, other TTL
		"A.MESOS. 60 IN A 192.0.2.1", // same name, other case
		"a.mesos. 60 IN A 192.0.2.2",
		"_a._tcp.mesos. 60 IN SRV 0 1 80 a.mesos.",
		"_a._tcp.mesos. 60 IN SRV 0 1 80 A.mesos.",
		"outside.example. 60 IN A 192.0.2.9",
	}
	forward := NewBuilder("mesos.", testSOA, nil)
	backward := NewBuilder("mesos.", testSOA, nil)
	for i := range records {
		forward.Add(rr(t, records[i]))
		backward.Add(rr(t, records[len(records)-1-i]))
	}
	zf, zb := forward.Build(1), backward.Build(2)
	require.Equal(t, 4, zf.Len()) // SOA + 2 A + 1 SRV
	require.Len(t, zf.Records(), 4)
	require.Equal(t, zf.Hash(), zb.Hash())
	require.Len(t, zf.Lookup("a.mesos.", dns.TypeA).Answer, 2)

	other := NewBuilder("mesos.", testSOA, nil)
	other.Add(rr(t, "a.mesos. 60 IN A 192.0.2.3"))
	require.NotEqual(t, zf.Hash(), other.Build(1).Hash())
}

// TestBuilderDedupLargeRRset covers rrsets past the size where duplicates
// are found by scanning: they are indexed, and still sets.
func TestBuilderDedupLargeRRset(t *testing.T) {
	b := NewBuilder("mesos.", testSOA, []string{"ns1.mesos."})
	for round := range 2 {
		for i := range 40 {
			b.Add(rr(t, fmt.Sprintf("slave.mesos. 60 IN A 192.0.2.%d", i+1)))
			b.Add(rr(t, fmt.Sprintf("_s._tcp.mesos. 60 IN SRV 0 1 %d Slave.Mesos.", 5000+i)))
		}
		// A new type on the same name after the index exists.
		b.Add(rr(t, fmt.Sprintf("slave.mesos. 60 IN AAAA 2001:db8::%d", round+1)))
	}
	z := b.Build(1)
	require.Len(t, z.Lookup("slave.mesos.", dns.TypeA).Answer, 40)
	require.Len(t, z.Lookup("slave.mesos.", dns.TypeAAAA).Answer, 2)
	res := z.Lookup("_s._tcp.mesos.", dns.TypeSRV)
	require.Len(t, res.Answer, 40)
	require.Len(t, res.Extra, 42, "one target: its addresses once")
	require.Equal(t, 1+1+40+2+40, z.Len())

	// The same set added in another order hashes the same.
	b2 := NewBuilder("mesos.", testSOA, []string{"ns1.mesos."})
	for i := 39; i >= 0; i-- {
		b2.Add(rr(t, fmt.Sprintf("_s._tcp.mesos. 60 IN SRV 0 1 %d slave.mesos.", 5000+i)))
		b2.Add(rr(t, fmt.Sprintf("slave.mesos. 30 IN A 192.0.2.%d", i+1)))
	}
	b2.Add(rr(t, "slave.mesos. 60 IN AAAA 2001:db8::2"))
	b2.Add(rr(t, "slave.mesos. 60 IN AAAA 2001:db8::1"))
	require.Equal(t, z.Hash(), b2.Build(2).Hash())
}

// TestBuilderByteAPIMatchesAdd checks that AddAddr and AddSRV build the
// same zone as Add with the same records: same hash, records, answers and
// duplicates recognised across the two ways.
func TestBuilderByteAPIMatchesAdd(t *testing.T) {
	viaAdd := NewBuilder("mesos.", testSOA, []string{"ns1.mesos."})
	for _, s := range []string{
		"web.marathon.mesos. 60 IN A 192.0.2.10",
		"web.marathon.mesos. 60 IN A 192.0.2.11",
		"web.marathon.mesos. 60 IN AAAA 2001:db8::10",
		"_web._tcp.marathon.mesos. 60 IN SRV 0 1 31000 web.marathon.mesos.",
		"_web._tcp.marathon.mesos. 60 IN SRV 0 1 31001 web.marathon.mesos.",
	} {
		require.True(t, viaAdd.Add(rr(t, s)))
	}
	viaBytes := NewBuilder("mesos.", testSOA, []string{"ns1.mesos."})
	for range 2 { // the second round only repeats records
		require.True(t, viaBytes.AddSRV([]byte("_web._TCP.marathon.mesos."), "WEB.marathon.mesos.", 31001, 0, 1, 60))
		require.True(t, viaBytes.AddAddr([]byte("web.marathon.mesos."), netip.MustParseAddr("2001:db8::10"), 60))
		require.True(t, viaBytes.AddAddr([]byte("Web.Marathon.Mesos."), netip.MustParseAddr("192.0.2.11"), 30))
		require.True(t, viaBytes.AddSRV([]byte("_web._tcp.marathon.mesos."), "web.marathon.mesos.", 31000, 0, 1, 60))
	}
	// Add after AddAddr: the 16-byte form of an address is the same
	// record.
	require.True(t, viaBytes.Add(&dns.A{
		Hdr: dns.RR_Header{Name: "web.marathon.mesos.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.ParseIP("192.0.2.10"),
	}))
	require.True(t, viaBytes.Add(rr(t, "web.marathon.mesos. 60 IN A 192.0.2.11")))
	require.False(t, viaBytes.AddAddr([]byte("web.example."), netip.MustParseAddr("192.0.2.1"), 60))
	require.False(t, viaBytes.AddSRV([]byte("_x._tcp.example."), "web.marathon.mesos.", 1, 0, 1, 60))
	require.False(t, viaBytes.AddAddr([]byte("web.marathon.mesos."), netip.Addr{}, 60))
	require.Equal(t, "web.marathon.mesos.", viaBytes.Name([]byte("web.marathon.mesos.")))
	require.Equal(t, "new.mesos.", viaBytes.Name([]byte("NEW.mesos.")))

	za, zb := viaAdd.Build(1), viaBytes.Build(1)
	require.Equal(t, za.Len(), zb.Len())
	require.Equal(t, za.Hash(), zb.Hash())
	require.ElementsMatch(t, dataStrings(za.Records()), dataStrings(zb.Records()))
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.marathon.mesos.", dns.TypeA}, {"web.marathon.mesos.", dns.TypeAAAA},
		{"web.marathon.mesos.", dns.TypeANY}, {"_web._tcp.marathon.mesos.", dns.TypeSRV},
		{"_tcp.marathon.mesos.", dns.TypeSRV}, {"nope.marathon.mesos.", dns.TypeA},
	} {
		ra, rb := za.Lookup(q.name, q.qtype), zb.Lookup(q.name, q.qtype)
		require.Equal(t, ra.Rcode, rb.Rcode, q.name)
		// TTLs differ where the first record added had another TTL.
		require.ElementsMatch(t, dataStrings(ra.Answer), dataStrings(rb.Answer), q.name)
		require.ElementsMatch(t, dataStrings(ra.Extra), dataStrings(rb.Extra), q.name)
	}
}

// TestBuilderRefuses covers records the zone cannot hold.
func TestBuilderRefuses(t *testing.T) {
	b := NewBuilder("mesos.", testSOA, nil)
	require.False(t, b.Add(rr(t, "a.mesos. 60 CH A 192.0.2.1")), "class other than IN")
	require.False(t, b.Add(&dns.A{Hdr: dns.RR_Header{Name: "a.mesos.", Rrtype: dns.TypeA}}), "A without address")
	require.False(t, b.Add(&dns.AAAA{Hdr: dns.RR_Header{Name: "a.mesos.", Rrtype: dns.TypeAAAA}, AAAA: net.IP{1, 2, 3, 4}}))
	require.False(t, b.Add(rr(t, "a.example. 60 IN A 192.0.2.1")), "outside the zone")
	require.True(t, b.Add(rr(t, "a.mesos. 60 IN TXT \"kept as given\"")))
	z := b.Build(1)
	require.Equal(t, 2, z.Len())
	res := z.Lookup("a.mesos.", dns.TypeTXT)
	require.Len(t, res.Answer, 1)
	require.Equal(t, []string{"kept as given"}, res.Answer[0].(*dns.TXT).Txt)
	require.Equal(t, dns.RcodeSuccess, z.Lookup("a.mesos.", dns.TypeA).Rcode, "NODATA")
}

// dataStrings renders records without their TTLs.
func dataStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, r := range rrs {
		c := dns.Copy(r)
		c.Header().Ttl = 0
		out[i] = c.String()
	}
	return out
}
