package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/upstream"
)

// node is a running proxy under test.
type node struct {
	*Node
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// startNode binds a proxy on a free loopback port, applies edit to a
// default configuration, validates it and serves until the test ends.
// These tests are about forwarding, so the cache is off: every query must
// reach the upstreams (the cache has its own tests, startCachedNode).
func startNode(t testing.TB, edit func(c *config.Config)) *node {
	t.Helper()
	return runNode(t, nil, func(c *config.Config) {
		c.Cache.Disabled = true
		edit(c)
	})
}

// runNode binds a proxy on a free loopback port with the default
// configuration changed by edit and the clock now (nil: the real one), and
// serves until the test ends.
func runNode(t testing.TB, now func() time.Time, edit func(c *config.Config)) *node {
	t.Helper()
	return runNodeLogged(t, now, slog.New(slog.DiscardHandler), edit)
}

// runNodeLogged is runNode logging to logger.
func runNodeLogged(t testing.TB, now func() time.Time, logger *slog.Logger, edit func(c *config.Config)) *node {
	t.Helper()
	pc, ln, err := server.Listen(context.Background(), "127.0.0.1:0")
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Listen = []string{pc.LocalAddr().String()}
	cfg.Metrics = ""
	if edit != nil {
		edit(&cfg)
	}
	require.NoError(t, cfg.Validate())
	n, err := NewNode(context.Background(), NodeOptions{
		Config: &cfg, Logger: logger, Now: now,
		PacketConns: []net.PacketConn{pc}, Listeners: []net.Listener{ln},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	nd := &node{Node: n, addr: pc.LocalAddr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { nd.done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-nd.done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("proxy did not stop")
		}
	})
	return nd
}

func (n *node) group(zone string) *upstream.Group {
	for _, g := range n.Table().Groups() {
		if g.Zone() == zone {
			return g
		}
	}
	return nil
}

func ask(t testing.TB, addr, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 10 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	return r
}

// askFrom is ask from the local address src: a client other than the
// proxy's own listen address, which is always allowed.
func askFrom(t testing.TB, src, addr, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	ip := net.ParseIP(src)
	var local net.Addr = &net.UDPAddr{IP: ip}
	if network == "tcp" {
		local = &net.TCPAddr{IP: ip}
	}
	c := &dns.Client{Net: network, Timeout: 10 * time.Second, Dialer: &net.Dialer{LocalAddr: local}}
	r, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	return r
}

func msg(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

func TestLocalZoneWithDeadUpstreams(t *testing.T) {
	dead := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Blackhole))
	stopped := testsupport.StartUpstream(t)
	stopped.Stop()
	n := startNode(t, func(c *config.Config) {
		c.Upstreams = []string{dead.Addr(), stopped.Addr()}
		c.RaceTimeout = config.Duration(time.Hour) // a local answer never waits on upstreams
	})
	nsIP := strings.Split(n.addr, ":")[0]
	tests := []struct {
		name, qname string
		qtype       uint16
		rcode       int
		answer      string
		ttl         uint32
		soa         bool
	}{
		{name: "ready", qname: "ready.spartan.", qtype: dns.TypeA, answer: "127.0.0.1", ttl: 5},
		{name: "ready upper case", qname: "READY.Spartan.", qtype: dns.TypeA, answer: "127.0.0.1", ttl: 5},
		{name: "ready AAAA is NODATA", qname: "ready.spartan.", qtype: dns.TypeAAAA, soa: true},
		{name: "ns", qname: "ns.spartan.", qtype: dns.TypeA, answer: nsIP, ttl: 5},
		{name: "other name NXDOMAIN", qname: "nope.spartan.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
	}
	for _, tc := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+network, func(t *testing.T) {
				r := ask(t, n.addr, network, msg(tc.qname, tc.qtype))
				require.Equal(t, tc.rcode, r.Rcode)
				require.True(t, r.Authoritative)
				require.Equal(t, tc.qname, r.Question[0].Name)
				require.Equal(t, tc.answer, firstA(r))
				if tc.answer != "" {
					require.Equal(t, tc.ttl, r.Answer[0].Header().Ttl)
				}
				if tc.soa {
					require.Len(t, r.Ns, 1)
					require.IsType(t, &dns.SOA{}, r.Ns[0])
				}
			})
		}
	}
	require.Zero(t, dead.Queries(), "the local zone never reaches an upstream")
}

func TestFanOut(t *testing.T) {
	nxOnSlow := func(req *dns.Msg) *dns.Msg { // the slow upstream disagrees: NOERROR
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, 2, 99)}}
		return m
	}
	tests := []struct {
		name     string
		fast     []testsupport.UpstreamOption
		slow     []testsupport.UpstreamOption
		qname    string
		rcode    int
		ip       string
		outcome  upstream.Outcomes
		fastHits int // queries the fast upstream must have seen
	}{
		{name: "blackholed and fast: answered by the fast one",
			fast:  []testsupport.UpstreamOption{},
			slow:  []testsupport.UpstreamOption{testsupport.WithBehavior(testsupport.Blackhole)},
			qname: "www.example.", ip: "192.0.2.1", outcome: upstream.Outcomes{Answered: 1}, fastHits: 1},
		{name: "fast SERVFAIL and slow NOERROR: NOERROR",
			fast:  []testsupport.UpstreamOption{testsupport.WithBehavior(testsupport.ServFail)},
			slow:  []testsupport.UpstreamOption{testsupport.WithLatency(100 * time.Millisecond)},
			qname: "www.example.", ip: "192.0.2.1", outcome: upstream.Outcomes{Answered: 1}, fastHits: 1},
		{name: "all SERVFAIL: SERVFAIL without waiting for the race deadline",
			fast:  []testsupport.UpstreamOption{testsupport.WithBehavior(testsupport.ServFail)},
			slow:  []testsupport.UpstreamOption{testsupport.WithBehavior(testsupport.ServFail), testsupport.WithLatency(50 * time.Millisecond)},
			qname: "www.example.", rcode: dns.RcodeServerFailure, outcome: upstream.Outcomes{Failed: 1}, fastHits: 1},
		{name: "fast NXDOMAIN wins",
			fast:  []testsupport.UpstreamOption{},
			slow:  []testsupport.UpstreamOption{testsupport.WithLatency(100 * time.Millisecond), testsupport.WithHandler(nxOnSlow)},
			qname: "gone.nx.", rcode: dns.RcodeNameError, outcome: upstream.Outcomes{Answered: 1}, fastHits: 1},
	}
	for _, tc := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+network, func(t *testing.T) {
				fast := testsupport.StartUpstream(t, tc.fast...)
				slow := testsupport.StartUpstream(t, tc.slow...)
				n := startNode(t, func(c *config.Config) {
					c.Upstreams = []string{slow.Addr(), fast.Addr()}
					// A deadline the test would notice: the outcome
					// counters say whether it fired.
					c.RaceTimeout = config.Duration(time.Hour)
				})
				q := msg(tc.qname, dns.TypeA)
				r := ask(t, n.addr, network, q)
				require.Equal(t, tc.rcode, r.Rcode, dns.RcodeToString[r.Rcode])
				require.Equal(t, q.Id, r.Id)
				require.Equal(t, tc.ip, firstA(r))
				require.Equal(t, tc.outcome, n.group(".").Outcomes())
				require.Equal(t, tc.fastHits, fast.Queries())
			})
		}
	}
}

func TestRoutingByZone(t *testing.T) {
	root1 := testsupport.StartUpstream(t)
	root2 := testsupport.StartUpstream(t)
	master := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.4:0"))
	other := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.5:0"))
	n := startNode(t, func(c *config.Config) {
		c.Upstreams = []string{root1.Addr(), root2.Addr()}
		c.Masters = []string{master.Addr()}
		c.Zones = map[string][]string{"corp.example.": {other.Addr()}}
	})
	tests := []struct {
		qname string
		want  *testsupport.Upstream
	}{
		{"leader.mesos.", master},
		{"Marathon.Mesos.", master},
		{"_leader._tcp.mesos.", master},
		{"a.b.c.marathon.mesos.", master},
		{"www.corp.example.", other},
		{"corp.example.", other},
		{"xcorp.example.", nil},
		{"mesos.example.", nil},
		{"www.example.", nil},
	}
	for _, tc := range tests {
		t.Run(tc.qname, func(t *testing.T) {
			for _, u := range []*testsupport.Upstream{root1, root2, master, other} {
				u.Reset()
			}
			for _, network := range []string{"udp", "tcp"} {
				r := ask(t, n.addr, network, msg(tc.qname, dns.TypeA))
				require.Equal(t, dns.RcodeSuccess, r.Rcode)
			}
			if tc.want == nil {
				require.Zero(t, master.Queries()+other.Queries())
				// At least the winning leg of each query; a losing
				// leg may have been cancelled before it was sent.
				require.GreaterOrEqual(t, root1.Queries()+root2.Queries(), 2)
				return
			}
			require.Equal(t, 2, tc.want.Queries())
			require.Zero(t, root1.Queries()+root2.Queries(), "a cluster or zone name reached a root upstream")
		})
	}
}

func TestSpoofedRepliesIgnored(t *testing.T) {
	for _, b := range []testsupport.Behavior{testsupport.WrongID, testsupport.WrongQuestion, testsupport.WrongSource} {
		t.Run(b.String(), func(t *testing.T) {
			u := testsupport.StartUpstream(t, testsupport.WithBehavior(b), testsupport.WithLatency(30*time.Millisecond))
			n := startNode(t, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
			r := ask(t, n.addr, "udp", msg("www.example.", dns.TypeA))
			require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
		})
	}
	for _, b := range []testsupport.Behavior{testsupport.WrongIDOnly, testsupport.WrongQuestionOnly, testsupport.WrongSourceOnly} {
		t.Run(b.String(), func(t *testing.T) {
			u := testsupport.StartUpstream(t, testsupport.WithBehavior(b))
			n := startNode(t, func(c *config.Config) {
				c.Upstreams = []string{u.Addr()}
				c.RaceTimeout = config.Duration(300 * time.Millisecond)
			})
			r := ask(t, n.addr, "udp", msg("www.example.", dns.TypeA))
			require.Equal(t, dns.RcodeServerFailure, r.Rcode)
			require.Empty(t, r.Answer)
			require.Equal(t, upstream.Outcomes{Timeout: 1}, n.group(".").Outcomes())
		})
	}
}

// TestClientCasingWith0x20: the upstream gets the question name in a case
// of the leg's own (DNS 0x20) and echoes it; the client gets its own
// casing back, from a race and from the cache alike.
func TestClientCasingWith0x20(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	u := testsupport.StartUpstream(t, testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		mu.Lock()
		seen = append(seen, req.Question[0].Name)
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req) // the question as sent
		m.Compress = true
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: testsupport.DefaultIP.AsSlice()}}
		return m
	}))
	uncached := startNode(t, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
	cached := runNode(t, testsupport.NewClock().Now, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
	const name = "WwW.ExAmPlE.CoM."
	for i := range 20 {
		for _, n := range []*node{uncached, cached} {
			for _, network := range []string{"udp", "tcp"} {
				r := ask(t, n.addr, network, msg(name, dns.TypeA))
				require.Equal(t, name, r.Question[0].Name, "query %d over %s", i, network)
				require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
				// The answer's owner is compressed to the question.
				require.Equal(t, name, r.Answer[0].Header().Name)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2*20+1, "every uncached query and the cached node's one miss")
	other := 0
	for _, s := range seen {
		require.True(t, strings.EqualFold(name, s), "%q", s)
		if s != name {
			other++
		}
	}
	require.Greater(t, other, 30, "the upstream sees other casings than the client's: %v", seen)
}

// bigHandler answers with 60 A records: about 1 KB, more than 512.
func bigHandler(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Compress = true
	for i := 0; i < 60; i++ {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, 2, byte(i+1))})
	}
	return m
}

func TestTruncation(t *testing.T) {
	big := testsupport.StartUpstream(t, testsupport.WithHandler(bigHandler))
	tc := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Truncate), testsupport.WithAddr("127.0.0.2:0"))
	nBig := startNode(t, func(c *config.Config) { c.Upstreams = []string{big.Addr()} })
	nTC := startNode(t, func(c *config.Config) { c.Upstreams = []string{tc.Addr()} })
	tests := []struct {
		name     string
		n        *node
		network  string
		edns     uint16
		tc       bool
		answers  int
		upTCP    int
		upstream *testsupport.Upstream
	}{
		{name: "big reply to a 512-byte UDP client is truncated", n: nBig, network: "udp", tc: true, upstream: big},
		{name: "big reply fits a 1232-byte EDNS UDP client", n: nBig, network: "udp", edns: 4096, answers: 60, upstream: big},
		{name: "big reply over TCP is whole", n: nBig, network: "tcp", answers: 60, upstream: big},
		{name: "upstream TC to a UDP client is relayed", n: nTC, network: "udp", edns: 1232, tc: true, upstream: tc},
		{name: "upstream TC to a TCP client is retried over TCP", n: nTC, network: "tcp", answers: 1, upTCP: 1, upstream: tc},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			c.upstream.Reset()
			q := msg("Big.Example.", dns.TypeA)
			if c.edns > 0 {
				q.SetEdns0(c.edns, false)
			}
			cl := &dns.Client{Net: c.network, Timeout: 10 * time.Second, UDPSize: 65535}
			r, _, err := cl.Exchange(q, c.n.addr)
			require.NoError(t, err)
			require.Equal(t, c.tc, r.Truncated)
			require.Len(t, r.Answer, c.answers)
			require.Equal(t, "Big.Example.", r.Question[0].Name)
			require.Equal(t, c.edns > 0, r.IsEdns0() != nil, "OPT only for EDNS clients")
			if opt := r.IsEdns0(); opt != nil {
				require.Equal(t, uint16(1232), opt.UDPSize())
			}
			require.Equal(t, c.upTCP, c.upstream.QueriesTCP())
		})
	}
}

func TestMalformedPackets(t *testing.T) {
	u := testsupport.StartUpstream(t)
	n := startNode(t, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
	valid, err := msg("www.example.", dns.TypeA).Pack()
	require.NoError(t, err)
	header := func(b ...byte) []byte { return append([]byte{0xab, 0xcd, 0x01, 0x00}, b...) }
	tests := []struct {
		name    string
		data    []byte
		formerr bool // a FORMERR reply is expected (else no reply)
	}{
		{name: "empty", data: []byte{}},
		{name: "short", data: []byte{1, 2, 3, 4, 5}},
		{name: "header only, qdcount 1", data: header(0, 1, 0, 0, 0, 0, 0, 0), formerr: true},
		{name: "question runs off the end", data: header(0, 1, 0, 0, 0, 0, 0, 0, 63, 'a', 'b'), formerr: true},
		{name: "compression loop", data: header(0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1), formerr: true},
		{name: "qdcount 2 with one question", data: append(header(0, 2, 0, 0, 0, 0, 0, 0), valid[12:]...), formerr: true},
		{name: "trailing garbage", data: append(append([]byte{}, valid...), 1, 2, 3), formerr: true},
		{name: "a response", data: append([]byte{valid[0], valid[1], 0x81, 0x80}, valid[4:]...)},
		{name: "random", data: []byte(strings.Repeat("\xff\x00garbage", 40)), formerr: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("udp", n.addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write(tc.data)
			require.NoError(t, err)
			if tc.formerr {
				buf := make([]byte, 512)
				require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
				k, err := c.Read(buf)
				require.NoError(t, err)
				r := new(dns.Msg)
				require.NoError(t, r.Unpack(buf[:k]))
				require.Equal(t, dns.RcodeFormatError, r.Rcode)
				require.Equal(t, binary.BigEndian.Uint16(tc.data), r.Id)
			}
			// Over TCP too, on a connection that stays usable when a
			// reply was possible.
			tcp, err := net.Dial("tcp", n.addr)
			require.NoError(t, err)
			defer tcp.Close()
			frame := append([]byte{byte(len(tc.data) >> 8), byte(len(tc.data))}, tc.data...)
			_, err = tcp.Write(frame)
			require.NoError(t, err)
			// Whatever happened, the server still answers.
			r := ask(t, n.addr, "udp", msg("www.example.", dns.TypeA))
			require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
			r = ask(t, n.addr, "tcp", msg("www.example.", dns.TypeA))
			require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
		})
	}
	require.NotZero(t, n.Forwarder.Stats().Malformed)
}

func TestTCPPipelining(t *testing.T) {
	// The upstream holds every reply until all 10 queries have reached it.
	// A proxy answering one query of a connection at a time would never
	// send the second, the first race would hit its deadline and come
	// back SERVFAIL.
	const n = 10
	var arrived atomic.Int32
	all := make(chan struct{})
	u := testsupport.StartUpstream(t, testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(20 * time.Second):
			return nil
		}
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, 2, 1)}}
		return m
	}))
	nd := startNode(t, func(c *config.Config) {
		c.Upstreams = []string{u.Addr()}
		c.RaceTimeout = config.Duration(10 * time.Second)
	})
	conn, err := dns.Dial("tcp", nd.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	want := map[uint16]string{}
	var frames []byte
	for i := 0; i < n; i++ {
		q := msg(fmt.Sprintf("host%d.example.", i), dns.TypeA)
		q.Id = uint16(1000 + i)
		want[q.Id] = q.Question[0].Name
		b, err := q.Pack()
		require.NoError(t, err)
		frames = append(frames, byte(len(b)>>8), byte(len(b)))
		frames = append(frames, b...)
	}
	_, err = conn.Conn.Write(frames) // back to back, one raw write
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		r, err := conn.ReadMsg()
		require.NoError(t, err)
		name, ok := want[r.Id]
		require.True(t, ok, "unexpected ID %d in %v", r.Id, r)
		require.Equal(t, name, r.Question[0].Name)
		require.Equal(t, "192.0.2.1", firstA(r), dns.RcodeToString[r.Rcode])
		delete(want, r.Id)
	}
	require.Equal(t, n, u.Queries())
}

func TestTCPLimits(t *testing.T) {
	u := testsupport.StartUpstream(t)
	n := startNode(t, func(c *config.Config) {
		c.Upstreams = []string{u.Addr()}
		c.MaxTCPConnections = 2
		c.TCPIdleTimeout = config.Duration(300 * time.Millisecond)
	})
	var conns []*dns.Conn
	for i := 0; i < 2; i++ {
		c, err := dns.Dial("tcp", n.addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.WriteMsg(msg("www.example.", dns.TypeA)))
		_, err = c.ReadMsg()
		require.NoError(t, err)
		conns = append(conns, c)
	}
	// A third connection over the cap is closed at once.
	extra, err := net.Dial("tcp", n.addr)
	require.NoError(t, err)
	defer extra.Close()
	require.NoError(t, extra.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = extra.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	// Idle connections are closed by the server.
	for _, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := c.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF)
	}
	require.Eventually(t, func() bool { return n.Server.TCPConns() == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestClientACLAndOpcode(t *testing.T) {
	u := testsupport.StartUpstream(t)
	refusing := startNode(t, func(c *config.Config) {
		c.Upstreams = []string{u.Addr()}
		c.AllowNets = []string{"10.0.0.0/8"}
	})
	r := askFrom(t, "127.0.0.9", refusing.addr, "udp", msg("www.example.", dns.TypeA))
	require.Equal(t, dns.RcodeRefused, r.Rcode)
	r = askFrom(t, "127.0.0.9", refusing.addr, "tcp", msg("ready.spartan.", dns.TypeA))
	require.Equal(t, dns.RcodeRefused, r.Rcode)
	// The node itself, querying its listen address from that address, is
	// always served: the health check must not depend on allowNets.
	r = ask(t, refusing.addr, "udp", msg("ready.spartan.", dns.TypeA))
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Zero(t, u.Queries())

	n := startNode(t, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
	q := msg("www.example.", dns.TypeA)
	q.Opcode = dns.OpcodeStatus
	r = ask(t, n.addr, "udp", q)
	require.Equal(t, dns.RcodeNotImplemented, r.Rcode)
	// EDNS version 1: BADVERS.
	q = msg("www.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().SetVersion(1)
	r = ask(t, n.addr, "udp", q)
	require.Equal(t, dns.RcodeBadVers, r.Rcode)
	require.Zero(t, u.Queries())
}

// TestMalformedOPT: a query with two OPT records, an OPT outside the
// additional section, an OPT not owned by the root (RFC 6891 6.1.1) or
// more than 512 bytes of options gets FORMERR carrying its question and an
// OPT record (RFC 6891 7: the client can tell a format error in its EDNS
// from a server without EDNS), over UDP and TCP; it is counted as
// malformed and never reaches an upstream. A query that is odd but valid,
// an OPT before another additional record, is still answered.
func TestMalformedOPT(t *testing.T) {
	u := testsupport.StartUpstream(t)
	n := startNode(t, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
	opt := func(owner string, padding int) *dns.OPT {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		if padding > 0 {
			o.Option = []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, padding)}}
		}
		return o
	}
	query := func(edit func(m *dns.Msg)) *dns.Msg {
		m := msg("WWW.Example.", dns.TypeA)
		edit(m)
		return m
	}
	tests := []struct {
		name     string
		q        *dns.Msg
		networks []string
		listener bool // over the listener's TCP message cap: refused before the query path
	}{
		{"two OPT records", query(func(m *dns.Msg) { m.Extra = []dns.RR{opt(".", 0), opt(".", 0)} }), []string{"udp", "tcp"}, false},
		{"OPT in the answer section", query(func(m *dns.Msg) { m.Answer = []dns.RR{opt(".", 0)} }), []string{"udp", "tcp"}, false},
		{"OPT in the authority section", query(func(m *dns.Msg) { m.Ns = []dns.RR{opt(".", 0)} }), []string{"udp", "tcp"}, false},
		{"OPT owned by a name", query(func(m *dns.Msg) { m.Extra = []dns.RR{opt("example.", 0)} }), []string{"udp", "tcp"}, false},
		{"600 bytes of padding", query(func(m *dns.Msg) { m.Extra = []dns.RR{opt(".", 600)} }), []string{"udp", "tcp"}, false},
		{"65000 bytes of padding", query(func(m *dns.Msg) { m.Extra = []dns.RR{opt(".", 65000)} }), []string{"tcp"}, true},
	}
	for _, tc := range tests {
		for _, network := range tc.networks {
			t.Run(tc.name+"/"+network, func(t *testing.T) {
				before, oversized := n.Forwarder.Stats().Malformed, n.Server.Oversized()
				r := ask(t, n.addr, network, tc.q)
				require.Equal(t, dns.RcodeFormatError, r.Rcode)
				require.Equal(t, tc.q.Id, r.Id)
				if tc.listener {
					// Never read whole, so answered from its header alone.
					require.Empty(t, r.Question)
					require.Equal(t, oversized+1, n.Server.Oversized())
					return
				}
				require.Len(t, r.Question, 1)
				require.Equal(t, "WWW.Example.", r.Question[0].Name)
				require.Empty(t, r.Answer)
				require.NotNil(t, r.IsEdns0(), "FORMERR carries an OPT record")
				require.Len(t, r.Extra, 1)
				require.Equal(t, before+1, n.Forwarder.Stats().Malformed)
			})
		}
	}
	require.Zero(t, u.Queries())

	valid := query(func(m *dns.Msg) {
		m.Extra = []dns.RR{opt(".", 0), &dns.A{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 9)}}
	})
	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, n.addr, network, valid)
		require.Equal(t, dns.RcodeSuccess, r.Rcode)
		require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	}
}

func TestMaxInFlight(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.Blackhole))
	n := startNode(t, func(c *config.Config) {
		c.Upstreams = []string{u.Addr()}
		c.MaxInFlight = 1
		c.RaceTimeout = config.Duration(time.Hour)
	})
	first := make(chan *dns.Msg, 1)
	go func() {
		c := &dns.Client{Timeout: time.Minute}
		r, _, _ := c.Exchange(msg("slow.example.", dns.TypeA), n.addr)
		first <- r
	}()
	require.Eventually(t, func() bool { return u.Queries() == 1 }, 10*time.Second, 5*time.Millisecond)
	r := ask(t, n.addr, "udp", msg("www.example.", dns.TypeA))
	require.Equal(t, dns.RcodeServerFailure, r.Rcode)
	require.Equal(t, uint64(1), n.Forwarder.Stats().Overload)
	require.Equal(t, 1, u.Queries(), "the refused query did not go upstream")
	// Shutting down cancels the hung race after the grace period.
	n.cancel()
	require.NoError(t, <-n.done)
	n.done <- nil // for the cleanup
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	u := testsupport.StartUpstream(t, testsupport.WithLatency(300*time.Millisecond))
	n := startNode(t, func(c *config.Config) {
		c.Upstreams = []string{u.Addr()}
		c.ShutdownGrace = config.Duration(time.Minute)
	})
	got := make(chan *dns.Msg, 2)
	for _, network := range []string{"udp", "tcp"} {
		go func() {
			c := &dns.Client{Net: network, Timeout: time.Minute}
			r, _, _ := c.Exchange(msg("www.example.", dns.TypeA), n.addr)
			got <- r
		}()
	}
	require.Eventually(t, func() bool { return u.Queries() == 2 }, 10*time.Second, 5*time.Millisecond)
	n.cancel()
	for i := 0; i < 2; i++ {
		r := <-got
		require.NotNil(t, r, "an in-flight query was dropped on shutdown")
		require.Equal(t, testsupport.DefaultIP.String(), firstA(r))
	}
	require.NoError(t, <-n.done)
	n.done <- nil
	// And nothing is served any more.
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	_, _, err := c.Exchange(msg("ready.spartan.", dns.TypeA), n.addr)
	require.Error(t, err)
}

// TestUDPReceiveBuffer: the configured receive buffer is set on the
// listening socket (SO_RCVBUFFORCE as root; otherwise up to the kernel's
// rmem_max), and 0 keeps the system default.
func TestUDPReceiveBuffer(t *testing.T) {
	rcvbuf := func(t *testing.T, n *node) int {
		// Serve sets it: once a query is answered, it has.
		require.Equal(t, "127.0.0.1", firstA(ask(t, n.addr, "udp", msg("ready.spartan.", dns.TypeA))))
		return testsupport.ReceiveBuffer(t, n.pcs[0].(*net.UDPConn))
	}
	def := rcvbuf(t, startNode(t, func(c *config.Config) { c.Upstreams = []string{"127.0.0.1:1"}; c.UDPReceiveBuffer = 0 }))
	const want = 2 << 20
	n := startNode(t, func(c *config.Config) { c.Upstreams = []string{"127.0.0.1:1"}; c.UDPReceiveBuffer = want })
	got := rcvbuf(t, n)
	// (That a larger buffer is never lowered is the server package's test.)
	if os.Geteuid() == 0 {
		// The kernel doubles the value for its bookkeeping.
		require.Equal(t, 2*want, got)
	} else {
		require.GreaterOrEqual(t, got, def)
	}
}
