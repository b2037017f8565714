package zones

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	require.NoError(t, err)
	return r
}

var testSOA = SOA{Mname: "ns1.mesos.", Rname: "root.ns1.mesos.", Refresh: 60, Retry: 600, Expire: 86400, Minttl: 60, TTL: 60}

func testZone(t testing.TB) *Zone {
	b := NewBuilder("mesos.", testSOA, []string{"ns1.mesos."})
	for _, s := range []string{
		"ns1.mesos. 60 IN A 127.0.0.1",
		"web.marathon.mesos. 60 IN A 192.0.2.10",
		"web.marathon.mesos. 60 IN A 192.0.2.11",
		"web-abcde-s1.marathon.mesos. 60 IN A 192.0.2.10",
		"web.marathon.slave.mesos. 60 IN A 203.0.113.1",
		"_web._tcp.marathon.mesos. 60 IN SRV 0 1 31000 web-abcde-s1.marathon.mesos.",
		"v6.marathon.mesos. 60 IN AAAA 2001:db8::1",
	} {
		require.True(t, b.Add(rr(t, s)))
	}
	return b.Build(42)
}

func TestLookup(t *testing.T) {
	z := testZone(t)
	for _, tc := range []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answers int
		extra   int
		soa     bool
	}{
		{"A with two values", "web.marathon.mesos.", dns.TypeA, dns.RcodeSuccess, 2, 0, false},
		{"case-insensitive", "WEB.Marathon.MESOS.", dns.TypeA, dns.RcodeSuccess, 2, 0, false},
		{"other type is NODATA", "web.marathon.mesos.", dns.TypeAAAA, dns.RcodeSuccess, 0, 0, true},
		{"AAAA", "v6.marathon.mesos.", dns.TypeAAAA, dns.RcodeSuccess, 1, 0, false},
		{"SRV carries target address", "_web._tcp.marathon.mesos.", dns.TypeSRV, dns.RcodeSuccess, 1, 1, false},
		{"SRV for a missing name is NXDOMAIN", "_nope._tcp.marathon.mesos.", dns.TypeSRV, dns.RcodeNameError, 0, 0, true},
		{"empty non-terminal _tcp", "_tcp.marathon.mesos.", dns.TypeSRV, dns.RcodeSuccess, 0, 0, true},
		{"empty non-terminal framework under slave", "marathon.slave.mesos.", dns.TypeA, dns.RcodeSuccess, 0, 0, true},
		{"empty non-terminal framework", "marathon.mesos.", dns.TypeA, dns.RcodeSuccess, 0, 0, true},
		{"missing name", "db.marathon.mesos.", dns.TypeA, dns.RcodeNameError, 0, 0, true},
		{"missing below existing", "x.web.marathon.mesos.", dns.TypeA, dns.RcodeNameError, 0, 0, true},
		{"SOA at apex", "mesos.", dns.TypeSOA, dns.RcodeSuccess, 1, 0, false},
		{"NS at apex with glue", "mesos.", dns.TypeNS, dns.RcodeSuccess, 1, 1, false},
		{"ANY", "web.marathon.mesos.", dns.TypeANY, dns.RcodeSuccess, 2, 0, false},
		{"outside the zone", "example.com.", dns.TypeA, dns.RcodeRefused, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := z.Lookup(tc.qname, tc.qtype)
			require.Equal(t, tc.rcode, res.Rcode)
			require.Len(t, res.Answer, tc.answers)
			require.Len(t, res.Extra, tc.extra)
			if tc.rcode != dns.RcodeRefused {
				require.True(t, res.Authoritative)
			}
			if tc.soa {
				require.Len(t, res.Ns, 1)
				soa := res.Ns[0].(*dns.SOA)
				require.Equal(t, uint32(42), soa.Serial)
				require.Equal(t, uint32(60), soa.Hdr.Ttl)
			} else {
				require.Empty(t, res.Ns)
			}
		})
	}
}

func TestNegativeSOATTLIsMinimum(t *testing.T) {
	soa := testSOA
	soa.TTL, soa.Minttl = 300, 5
	z := NewBuilder("mesos.", soa, nil).Build(1)
	res := z.Lookup("nope.mesos.", dns.TypeA)
	require.Equal(t, dns.RcodeNameError, res.Rcode)
	require.Equal(t, uint32(5), res.Ns[0].Header().Ttl)
	// The SOA itself keeps its own TTL.
	require.Equal(t, uint32(300), z.Lookup("mesos.", dns.TypeSOA).Answer[0].Header().Ttl)
}

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

func TestLocalZone(t *testing.T) {
	z := NewLocal(netip.MustParseAddr("169.254.20.10"))
	res := z.Lookup("ready.spartan.", dns.TypeA)
	require.Equal(t, dns.RcodeSuccess, res.Rcode)
	require.Len(t, res.Answer, 1)
	require.Equal(t, "127.0.0.1", res.Answer[0].(*dns.A).A.String())
	require.Equal(t, uint32(5), res.Answer[0].Header().Ttl)

	res = z.Lookup("ready.spartan.", dns.TypeAAAA)
	require.Equal(t, dns.RcodeSuccess, res.Rcode)
	require.Empty(t, res.Answer)
	require.Equal(t, "ns.spartan.", res.Ns[0].(*dns.SOA).Ns)

	res = z.Lookup("ns.spartan.", dns.TypeA)
	require.Equal(t, "169.254.20.10", res.Answer[0].(*dns.A).A.String())

	require.Equal(t, dns.RcodeNameError, z.Lookup("nope.spartan.", dns.TypeA).Rcode)
	require.Len(t, z.Lookup("ready.spartan.", dns.TypeANY).Answer, 1)
	require.Len(t, z.Lookup("spartan.", dns.TypeNS).Extra, 1)

	v6 := NewLocal(netip.MustParseAddr("fd01:d::c633:6401"))
	require.IsType(t, &dns.AAAA{}, v6.Lookup("ns.spartan.", dns.TypeAAAA).Answer[0])
}

func TestAuthorityReply(t *testing.T) {
	mesos := NewStore(testZone(t))
	empty := &Store{}
	a := NewAuthority(mesos, empty)

	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
	resp := a.Reply(q("web.marathon.mesos.", dns.TypeA), false)
	require.True(t, resp.Authoritative)
	require.False(t, resp.RecursionAvailable)
	require.Len(t, resp.Answer, 2)

	resp = a.Reply(q("example.com.", dns.TypeA), false)
	require.Equal(t, dns.RcodeRefused, resp.Rcode)
	require.False(t, resp.Authoritative)

	bad := q("web.marathon.mesos.", dns.TypeA)
	bad.SetEdns0(1232, false)
	bad.IsEdns0().SetVersion(1)
	require.Equal(t, dns.RcodeBadVers, a.Reply(bad, false).Rcode)

	notify := q("mesos.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	require.Equal(t, dns.RcodeNotImplemented, a.Reply(notify, false).Rcode)
}

func TestAuthorityTruncatesForUDP(t *testing.T) {
	b := NewBuilder("mesos.", testSOA, nil)
	for i := range 100 {
		b.Add(addrRR("big.mesos.", net.IPv4(192, 0, 2, byte(i)), 60))
	}
	a := NewAuthority(NewStore(b.Build(1)))
	req := new(dns.Msg)
	req.SetQuestion("big.mesos.", dns.TypeA)

	udp := a.Reply(req, false)
	require.True(t, udp.Truncated)
	packed, err := udp.Pack()
	require.NoError(t, err)
	require.LessOrEqual(t, len(packed), dns.MinMsgSize)

	req.SetEdns0(4096, false)
	big := a.Reply(req, false)
	require.False(t, big.Truncated)
	require.Len(t, big.Answer, 100)
	require.NotNil(t, big.IsEdns0())
	require.Equal(t, uint16(advertisedUDPSize), big.IsEdns0().UDPSize())

	tcp := a.Reply(req, true)
	require.False(t, tcp.Truncated)
	require.Len(t, tcp.Answer, 100)
}

// TestStoreSwapUnderReaders checks that readers racing a swap always see a
// whole zone: every lookup finds the full record set of one version.
func TestStoreSwapUnderReaders(t *testing.T) {
	build := func(version int) *Zone {
		b := NewBuilder("mesos.", testSOA, nil)
		for i := range 50 {
			b.Add(rr(t, fmt.Sprintf("t%d.mesos. 60 IN A 192.0.2.%d", i, version)))
		}
		return b.Build(uint32(version))
	}
	s := NewStore(build(1))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				z := s.Load()
				want := fmt.Sprintf("192.0.2.%d", z.Serial())
				for i := range 50 {
					res := z.Lookup(fmt.Sprintf("t%d.mesos.", i), dns.TypeA)
					if len(res.Answer) != 1 || res.Answer[0].(*dns.A).A.String() != want {
						t.Errorf("zone %d: t%d answered %v", z.Serial(), i, res.Answer)
						return
					}
				}
			}
		}()
	}
	for v := 2; v < 200; v++ {
		s.Swap(build(v))
	}
	close(stop)
	wg.Wait()
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

// TestLookupFirstUseConcurrent has readers race to be the first to ask for
// records (built on first use and cached): all see the full set, and the
// race detector sees no unsynchronized access.
func TestLookupFirstUseConcurrent(t *testing.T) {
	b := NewBuilder("mesos.", testSOA, nil)
	for i := range 20 {
		b.AddAddr([]byte("web.mesos."), netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 60)
		b.AddSRV([]byte("_web._tcp.mesos."), "web.mesos.", uint16(1000+i), 0, 1, 60)
	}
	z := b.Build(1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := z.Lookup("_web._tcp.mesos.", dns.TypeSRV)
			if len(res.Answer) != 20 || len(res.Extra) != 20 {
				t.Errorf("got %d answers, %d additional", len(res.Answer), len(res.Extra))
			}
			if n := len(z.Lookup("web.mesos.", dns.TypeA).Answer); n != 20 {
				t.Errorf("got %d addresses", n)
			}
		}()
	}
	wg.Wait()
	// Later lookups share the cached records.
	a1 := z.Lookup("web.mesos.", dns.TypeANY).Answer
	a2 := z.Lookup("web.mesos.", dns.TypeANY).Answer
	require.Len(t, a1, 20)
	require.ElementsMatch(t, a1, a2)
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
