package mesos

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/zones"
)

// rrlConfig returns the default rate limiting with the changes in edit.
func rrlConfig(edit func(*config.RRL)) config.RRL {
	c := config.DefaultMaster().RRL
	if edit != nil {
		edit(&c)
	}
	return c
}

func newLimiter(t *testing.T, c config.RRL) *rateLimiter {
	t.Helper()
	r, err := newRateLimiter(c)
	require.NoError(t, err)
	return r
}

func clientAt(s string) client { return clientOf(netip.MustParseAddr(s)) }

// verdicts accounts n responses to c at now and returns how many passed,
// were dropped and slipped.
func verdicts(r *rateLimiter, c client, now time.Time, n int) (pass, drop, slip int) {
	for range n {
		switch r.account(c, now) {
		case rrlPass:
			pass++
		case rrlDrop:
			drop++
		case rrlSlip:
			slip++
		}
	}
	return pass, drop, slip
}

// TestRateLimiterAccounts checks the accounting against BIND's rules with
// a clock the test moves: the limit per second, slip, the window, the
// prefixes, exemptions.
func TestRateLimiterAccounts(t *testing.T) {
	small := func(c *config.RRL) { c.ResponsesPerSecond, c.WindowSeconds, c.Exempt = 10, 3, nil }
	t.Run("limit then every second reply slips", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(small))
		pass, drop, slip := verdicts(r, clientAt("192.0.2.1"), r.base, 30)
		require.Equal(t, [3]int{10, 10, 10}, [3]int{pass, drop, slip})
	})
	t.Run("slip 0 drops all, slip 1 slips all, slip 3 every third", func(t *testing.T) {
		for slipN, want := range map[int][3]int{0: {10, 30, 0}, 1: {10, 0, 30}, 3: {10, 20, 10}} {
			r := newLimiter(t, rrlConfig(func(c *config.RRL) { small(c); c.Slip = slipN }))
			pass, drop, slip := verdicts(r, clientAt("192.0.2.1"), r.base, 40)
			require.Equal(t, want, [3]int{pass, drop, slip}, "slip %d", slipN)
		}
	})
	t.Run("credit every second, up to the limit", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(small))
		c := clientAt("192.0.2.1")
		pass, _, _ := verdicts(r, c, r.base, 10)
		require.Equal(t, 10, pass)
		// Idle for a minute: the account holds one second's worth.
		pass, _, _ = verdicts(r, c, r.base.Add(time.Minute), 30)
		require.Equal(t, 10, pass)
		pass, _, _ = verdicts(r, c, r.base.Add(time.Minute+time.Second), 5)
		require.Zero(t, pass, "still paying for the 20 over the limit")
	})
	t.Run("a flood stays limited for the window", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(small))
		c := clientAt("192.0.2.1")
		// Far over the limit: the balance bottoms out at -window × limit.
		verdicts(r, c, r.base, 1000)
		for s := 1; s <= 3; s++ {
			pass, _, _ := verdicts(r, c, r.base.Add(time.Duration(s)*time.Second), 1)
			require.Zero(t, pass, "second %d", s)
		}
		pass, _, _ := verdicts(r, c, r.base.Add(5*time.Second), 1)
		require.Equal(t, 1, pass, "recovered after the window")
	})
	t.Run("an earlier clock reading earns no credit", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(small))
		c := clientAt("192.0.2.1")
		verdicts(r, c, r.base.Add(10*time.Second), 10)
		pass, _, _ := verdicts(r, c, r.base.Add(9*time.Second), 5)
		require.Zero(t, pass)
	})
	t.Run("accounts per prefix", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(small))
		verdicts(r, clientAt("192.0.2.1"), r.base, 100)
		for _, tc := range []struct {
			client  string
			limited bool
		}{
			{"192.0.2.200", true},           // the same /24
			{"::ffff:192.0.2.7", true},      // the same, mapped
			{"192.0.3.1", false},            // the next /24
			{"2001:db8:0:1::1", false},      // IPv6
			{"2001:db8:0:1:ffff::1", false}, // the same /56, not flooded
		} {
			pass, _, _ := verdicts(r, clientAt(tc.client), r.base, 1)
			require.Equal(t, tc.limited, pass == 0, tc.client)
		}
		verdicts(r, clientAt("2001:db8:0:1::1"), r.base, 100)
		for _, tc := range []struct {
			client  string
			limited bool
		}{
			{"2001:db8:0:ff::2", true},   // the same /56
			{"2001:db8:0:100::1", false}, // the next /56
		} {
			pass, _, _ := verdicts(r, clientAt(tc.client), r.base, 1)
			require.Equal(t, tc.limited, pass == 0, tc.client)
		}
	})
	t.Run("prefix lengths", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(func(c *config.RRL) { small(c); c.IPv4PrefixLength, c.IPv6PrefixLength = 32, 128 }))
		verdicts(r, clientAt("192.0.2.1"), r.base, 100)
		verdicts(r, clientAt("2001:db8::1"), r.base, 100)
		for _, a := range []string{"192.0.2.2", "2001:db8::2"} {
			pass, _, _ := verdicts(r, clientAt(a), r.base, 1)
			require.Equal(t, 1, pass, a)
		}
		r = newLimiter(t, rrlConfig(func(c *config.RRL) { small(c); c.IPv4PrefixLength, c.IPv6PrefixLength = 0, 0 }))
		verdicts(r, clientAt("192.0.2.1"), r.base, 100)
		pass, _, _ := verdicts(r, clientAt("198.51.100.1"), r.base, 1)
		require.Zero(t, pass, "one account for all of IPv4")
		pass, _, _ = verdicts(r, clientAt("2001:db8::1"), r.base, 1)
		require.Equal(t, 1, pass, "IPv6 apart")
	})
	t.Run("a colliding prefix shares a debt and takes over a credit", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(small))
		// Two /24s whose accounts fall in one slot.
		a := clientAt("10.0.0.1")
		ha := r.hash(a)
		var b client
		for i := 1; ; i++ {
			b = clientOf(netip.AddrFrom4([4]byte{byte(11 + i>>16), byte(i >> 8), byte(i), 1}))
			if h := r.hash(b); h&(rrlSlots-1) == ha&(rrlSlots-1) && h>>56|1 != ha>>56|1 {
				break
			}
		}
		verdicts(r, a, r.base, 100)
		pass, _, _ := verdicts(r, b, r.base, 1)
		require.Zero(t, pass, "the flood's debt is not wiped by a collision")
		// Once a's account is out of debt, b takes the slot over with a
		// fresh account, and a gets one back in turn.
		later := r.base.Add(time.Minute)
		pass, _, _ = verdicts(r, b, later, 10)
		require.Equal(t, 10, pass)
		pass, _, _ = verdicts(r, a, later, 10)
		require.Equal(t, 10, pass)
	})
	t.Run("exempt", func(t *testing.T) {
		r := newLimiter(t, rrlConfig(func(c *config.RRL) { small(c); c.Exempt = []string{"192.0.2.0/25", "::1/128"} }))
		for _, a := range []string{"192.0.2.1", "::1"} {
			pass, _, _ := verdicts(r, clientAt(a), r.base, 100)
			require.Equal(t, 100, pass, a)
		}
		pass, _, _ := verdicts(r, clientAt("192.0.2.200"), r.base, 100)
		require.Equal(t, 10, pass)
	})
}

// TestNetSet checks the network lists the guard matches clients with.
func TestNetSet(t *testing.T) {
	s, err := parseNets([]string{"10.0.0.0/8", "192.0.2.128/25", "::ffff:198.51.100.0/120", "fd00::/8", "2001:db8::1/128", "0.0.0.0/0"})
	require.NoError(t, err)
	only, err := parseNets([]string{"10.0.0.0/8", "fd00::/8", "2001:db8::1/128", "::ffff:198.51.100.0/120"})
	require.NoError(t, err)
	for _, tc := range []struct {
		addr string
		in   bool
	}{
		{"10.1.2.3", true}, {"::ffff:10.1.2.3", true}, {"11.0.0.1", false},
		{"198.51.100.9", true}, {"198.51.101.9", false},
		{"fd12::1", true}, {"fe80::1", false}, {"2001:db8::1", true}, {"2001:db8::2", false},
	} {
		require.Equal(t, tc.in, only.contains(clientAt(tc.addr)), tc.addr)
		require.Equal(t, tc.in || clientOf(netip.MustParseAddr(tc.addr)).v4, s.contains(clientAt(tc.addr)), "with 0.0.0.0/0: %s", tc.addr)
	}
	_, err = parseNets([]string{"10.0.0.0"})
	require.Error(t, err)
}

// serveGuarded serves auth on a loopback port like master mode, behind the
// guard cfg asks for, and returns the address and the guard.
func serveGuarded(t *testing.T, auth *zones.Authority, cfg config.Master) (string, *Guard) {
	t.Helper()
	g, err := NewGuard(cfg)
	require.NoError(t, err)
	h := NewDNSHandler(auth, nil)
	h.Guard = g
	return serveHandler(t, h), g
}

// clientFrom returns a DNS client sending from the loopback address src.
func clientFrom(network, src string) *dns.Client {
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &dns.Client{Net: network, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}}
}

func question(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	return q
}

// TestClientOutsideAllowNetsRefused: a client outside master.allowNets
// gets REFUSED with its question and nothing else, no larger than its
// query, over UDP and TCP; an allowed one is answered.
func TestClientOutsideAllowNetsRefused(t *testing.T) {
	m := demoMaster(t)
	cfg := masterConfig(t, []string{"10.0.0.1:5050"}, `,"allowNets":["127.0.0.1/32"]`)
	srv, g := serveGuarded(t, zones.NewAuthority(m.Store()), cfg)
	q := question("_car-store._tcp.marathon.mesos.", dns.TypeSRV)
	wire, err := q.Pack()
	require.NoError(t, err)
	for _, network := range []string{"udp", "tcp"} {
		r, _, err := clientFrom(network, "127.0.0.2").Exchange(q, srv)
		require.NoError(t, err, network)
		require.Equal(t, dns.RcodeRefused, r.Rcode, network)
		require.Equal(t, q.Question, r.Question, network)
		require.Empty(t, r.Answer, network)
		require.Empty(t, r.Ns, network)
		require.Empty(t, r.Extra, network)
		require.False(t, r.Authoritative, network)
		require.LessOrEqual(t, r.Len(), len(wire), "%s: no amplification", network)

		r, _, err = clientFrom(network, "127.0.0.1").Exchange(q, srv)
		require.NoError(t, err, network)
		require.Equal(t, dns.RcodeSuccess, r.Rcode, network)
		require.NotEmpty(t, r.Answer, network)
	}
	require.Equal(t, GuardStats{Refused: 2}, g.Stats())
}

// flood sends n copies of q from src over one UDP socket without waiting,
// then reads replies until every query is accounted for: answered, or
// dropped by the guard (as its counter says). It returns the replies.
func flood(t *testing.T, srv, src string, q *dns.Msg, n int, g *Guard) []*dns.Msg {
	t.Helper()
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(srv)))
	require.NoError(t, err)
	defer conn.Close()
	dropped := g.Stats().Dropped
	for i := range n {
		q.Id = uint16(i + 1)
		wire, err := q.Pack()
		require.NoError(t, err)
		_, err = conn.Write(wire)
		require.NoError(t, err)
	}
	var replies []*dns.Msg
	buf := make([]byte, 65535)
	require.Eventually(t, func() bool {
		for {
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
			k, err := conn.Read(buf)
			if err != nil {
				break
			}
			r := new(dns.Msg)
			require.NoError(t, r.Unpack(buf[:k]))
			replies = append(replies, r)
		}
		return uint64(len(replies))+g.Stats().Dropped-dropped == uint64(n)
	}, 30*time.Second, time.Millisecond, "every query answered or dropped")
	return replies
}

// TestRateLimitFlood: a flood from one prefix above the limit gets some
// truncated slips and loses the rest, while a client of another prefix is
// answered, and TCP from the flooded prefix too; the counters add up.
func TestRateLimitFlood(t *testing.T) {
	m := demoMaster(t)
	cfg := masterConfig(t, []string{"10.0.0.1:5050"},
		`,"allowNets":["127.0.0.0/8"],"rrl":{"responsesPerSecond":5,"windowSeconds":3600,"exempt":[]}`)
	srv, g := serveGuarded(t, zones.NewAuthority(m.Store()), cfg)
	q := question("nginx.marathon.mesos.", dns.TypeA)

	const n = 200
	replies := flood(t, srv, "127.0.0.2", q, n, g)
	var full, slipped int
	for _, r := range replies {
		if r.Truncated {
			slipped++
			require.Empty(t, r.Answer)
			require.Empty(t, r.Extra)
			require.Equal(t, q.Question, r.Question)
			require.True(t, r.Authoritative, "a slip keeps the answer's flags")
			continue
		}
		full++
		require.Len(t, r.Answer, 1)
	}
	st := g.Stats()
	require.GreaterOrEqual(t, full, 5)
	require.Less(t, full, n/4)
	require.Positive(t, slipped)
	require.Positive(t, st.Dropped)
	require.Equal(t, uint64(slipped), st.Slipped)
	require.Equal(t, st.Dropped+st.Slipped, st.RateLimited)
	require.Equal(t, uint64(n-full), st.RateLimited)

	// Another /24 is answered; the flooded one is not, until over TCP.
	r, _, err := clientFrom("udp", "127.0.1.1").Exchange(q, srv)
	require.NoError(t, err)
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 1)
	r, _, err = clientFrom("tcp", "127.0.0.3").Exchange(q, srv)
	require.NoError(t, err)
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 1)
	require.Equal(t, st.RateLimited, g.Stats().RateLimited, "TCP is never limited")

	// The rest of the flooded /24 shares its account: dropped or slipped.
	before := g.Stats().RateLimited
	for _, r := range flood(t, srv, "127.0.0.3", q, 4, g) {
		require.True(t, r.Truncated)
	}
	require.Equal(t, before+4, g.Stats().RateLimited)
}

// TestRateLimitOffAndExempt: responsesPerSecond 0 turns rate limiting
// off, and loopback is exempt by default.
func TestRateLimitOffAndExempt(t *testing.T) {
	m := demoMaster(t)
	q := question("nginx.marathon.mesos.", dns.TypeA)
	for _, extra := range []string{
		`,"rrl":{"responsesPerSecond":0}`,
		`,"rrl":{"responsesPerSecond":1}`, // loopback exempt by default
	} {
		cfg := masterConfig(t, []string{"10.0.0.1:5050"}, extra)
		srv, g := serveGuarded(t, zones.NewAuthority(m.Store()), cfg)
		replies := flood(t, srv, "127.0.0.2", q, 50, g)
		require.Len(t, replies, 50, extra)
		require.Equal(t, GuardStats{}, g.Stats(), extra)
	}
}

// TestServiceGuard: master mode's Service serves behind the Guard its
// configuration describes.
func TestServiceGuard(t *testing.T) {
	cfg := masterConfig(t, []string{"1.2.3.4:5050"},
		`,"allowNets":["127.0.0.1/32","127.0.1.0/24"],"rrl":{"responsesPerSecond":5,"exempt":["127.0.0.1/32"]}`)
	s := startService(t, cfg, ServiceOptions{Logger: discardLogger(), State: DemoState})
	srv := s.Addrs()[0]
	q := question("nginx.marathon.mesos.", dns.TypeA)
	require.Eventually(t, func() bool {
		r, _, err := clientFrom("udp", "127.0.0.1").Exchange(q, srv)
		return err == nil && len(r.Answer) == 1
	}, 10*time.Second, 10*time.Millisecond)

	r, _, err := clientFrom("udp", "127.0.0.2").Exchange(q, srv)
	require.NoError(t, err)
	require.Equal(t, dns.RcodeRefused, r.Rcode)
	require.Equal(t, uint64(1), s.Guard.Stats().Refused)

	replies := flood(t, srv, "127.0.1.1", q, 50, s.Guard)
	require.Less(t, len(replies), 50)
	require.Positive(t, s.Guard.Stats().RateLimited)
}

// FuzzGuardedHandler feeds arbitrary messages to master mode's handler
// behind a Guard, from an allowed and a refused client, over UDP with a
// tiny rate limit: it must never panic, a refusal is never larger than
// the message, and whatever goes out parses.
func FuzzGuardedHandler(f *testing.F) {
	for _, q := range []*dns.Msg{
		question("nginx.marathon.mesos.", dns.TypeA),
		question("_car-store._tcp.marathon.mesos.", dns.TypeSRV),
		question("example.com.", dns.TypeANY),
	} {
		wire, err := q.Pack()
		require.NoError(f, err)
		f.Add(wire, false)
		f.Add(wire, true)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, true)
	f.Add(make([]byte, 12), false)
	m := demoMaster(f)
	cfg := masterConfig(f, []string{"10.0.0.1:5050"}, `,"allowNets":["10.0.0.0/8"],"rrl":{"responsesPerSecond":1,"slip":1}`)
	g, err := NewGuard(cfg)
	require.NoError(f, err)
	h := NewDNSHandler(zones.NewAuthority(m.Store()), nil)
	h.Guard = g
	allowed, refused := netip.MustParseAddrPort("10.1.1.1:5300"), netip.MustParseAddrPort("192.0.2.1:5300")
	f.Fuzz(func(t *testing.T, msg []byte, deny bool) {
		req := &server.Request{Msg: msg, Client: allowed, Received: time.Now()}
		if deny {
			req.Client = refused
		}
		out, ok := h.ServeFast(req, make([]byte, 0, 512))
		require.True(t, ok)
		if out == nil {
			return
		}
		if deny {
			require.LessOrEqual(t, len(out), len(msg), "a refusal amplifies nothing")
			require.Equal(t, byte(dns.RcodeRefused), out[3]&0xF)
		}
		var r dns.Msg
		require.NoError(t, r.Unpack(out))
	})
}
