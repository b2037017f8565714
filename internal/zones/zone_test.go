package zones

import (
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
