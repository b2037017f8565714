package upstream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// fake describes one fake upstream of a race test.
type fake struct {
	b       testsupport.Behavior
	latency time.Duration
	h       func(req *dns.Msg) *dns.Msg // nil: the fake's default handler
}

func startFakes(t *testing.T, fakes []fake) ([]*testsupport.Upstream, []string) {
	t.Helper()
	var ups []*testsupport.Upstream
	var addrs []string
	for _, f := range fakes {
		opts := []testsupport.UpstreamOption{testsupport.WithBehavior(f.b), testsupport.WithLatency(f.latency)}
		if f.h != nil {
			opts = append(opts, testsupport.WithHandler(f.h))
		}
		u := testsupport.StartUpstream(t, opts...)
		ups = append(ups, u)
		addrs = append(addrs, u.Addr())
	}
	return ups, addrs
}

func newGroup(t *testing.T, addrs []string) *Group {
	t.Helper()
	g, err := NewGroup(".", addrs, nil, WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

func aQuery(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	return m
}

// answerIP returns the address of the first A record of m, "" without one.
func answerIP(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// replyWith returns a handler answering A ForgedIP (so a test sees such
// a reply win) and then changing the reply with edit.
func replyWith(edit func(m *dns.Msg)) func(*dns.Msg) *dns.Msg {
	return func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: testsupport.ForgedIP.AsSlice()}}
		edit(m)
		return m
	}
}

// rawRR is a record of type rrtype with the raw data rdata (hex), owned
// by the question's name.
func rawRR(req *dns.Msg, rrtype uint16, rdata string) dns.RR {
	return &dns.RFC3597{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: 60},
		Rdata: rdata}
}

// bigAnswer answers n A records 10.0.x.y, over UDP too.
func bigAnswer(n int) func(*dns.Msg) *dns.Msg {
	return func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Compress = true
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(10, 0, byte(i/250), byte(i%250+1))})
		}
		return m
	}
}

func TestRace(t *testing.T) {
	const slow = 150 * time.Millisecond
	tests := []struct {
		name    string
		fakes   []fake
		qname   string
		tcp     bool
		timeout time.Duration
		// expectations
		winner  int // index of the fake whose reply wins; -1: the race fails
		rcode   int
		ip      string
		outcome Outcomes
		tcpLegs []int // QueriesTCP per fake, when checked
	}{
		{name: "blackhole and fast: the fast one answers",
			fakes: []fake{{b: testsupport.Blackhole}, {b: testsupport.Answer}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 1, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "fast SERVFAIL is held, slow NOERROR wins",
			fakes: []fake{{b: testsupport.ServFail}, {b: testsupport.Answer, latency: slow}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 1, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "fast REFUSED, NOTIMP, FORMERR and garbage are held",
			fakes: []fake{{b: testsupport.Refused}, {b: testsupport.NotImp}, {b: testsupport.FormErr},
				{b: testsupport.Garbage}, {b: testsupport.Answer, latency: slow}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 4, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		// Replies that match the leg but that the reply parser refuses
		// are garbage too: held, never winning.
		{name: "fast reply with opcode STATUS is held, slow NOERROR wins",
			fakes: []fake{{h: replyWith(func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus })},
				{b: testsupport.Answer, latency: slow}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 1, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "fast reply with a forward pointer in CNAME data is held, slow NOERROR wins",
			fakes: []fake{{h: replyWith(func(m *dns.Msg) {
				m.Answer = append([]dns.RR{rawRR(m, dns.TypeCNAME, "c0ff")}, m.Answer...)
			})}, {b: testsupport.Answer, latency: slow}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 1, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "fast NODATA with 2 bytes of SOA data is held, slow NOERROR wins",
			fakes: []fake{{h: replyWith(func(m *dns.Msg) {
				m.Answer, m.Ns = nil, []dns.RR{rawRR(m, dns.TypeSOA, "0000")}
			})}, {b: testsupport.Answer, latency: slow}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 1, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "fast reply with a 3-byte A record is held, slow NOERROR wins",
			fakes: []fake{{h: replyWith(func(m *dns.Msg) { m.Answer = []dns.RR{rawRR(m, dns.TypeA, "c00002")} })},
				{b: testsupport.Answer, latency: slow}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 1, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "fast reply with an overrunning TXT string is held, slow NOERROR wins",
			fakes: []fake{{h: replyWith(func(m *dns.Msg) { m.Answer = append(m.Answer, rawRR(m, dns.TypeTXT, "0568656c6c")) })},
				{b: testsupport.Answer, latency: slow}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 1, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "all SERVFAIL fails without waiting for the deadline",
			fakes: []fake{{b: testsupport.ServFail}, {b: testsupport.ServFail, latency: 20 * time.Millisecond}}, qname: "www.example.",
			timeout: time.Hour, winner: -1, outcome: Outcomes{Failed: 1}},
		{name: "all garbage fails without waiting for the deadline",
			fakes: []fake{{b: testsupport.Garbage}}, qname: "www.example.",
			timeout: time.Hour, winner: -1, outcome: Outcomes{Failed: 1}},
		{name: "fast NXDOMAIN wins over slow",
			fakes: []fake{{b: testsupport.Answer}, {b: testsupport.Answer, latency: slow}}, qname: "host.nx.",
			timeout: 30 * time.Second, winner: 0, rcode: dns.RcodeNameError, outcome: Outcomes{Answered: 1}},
		{name: "all blackholed: timeout",
			fakes: []fake{{b: testsupport.Blackhole}, {b: testsupport.Blackhole}}, qname: "www.example.",
			timeout: 200 * time.Millisecond, winner: -1, outcome: Outcomes{Timeout: 1}},
		{name: "wrong ID ignored, real reply accepted",
			fakes: []fake{{b: testsupport.WrongID, latency: 20 * time.Millisecond}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 0, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "wrong question ignored, real reply accepted",
			fakes: []fake{{b: testsupport.WrongQuestion, latency: 20 * time.Millisecond}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 0, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "wrong source ignored, real reply accepted",
			fakes: []fake{{b: testsupport.WrongSource, latency: 20 * time.Millisecond}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 0, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}},
		{name: "only spoofs: nothing accepted",
			fakes: []fake{{b: testsupport.WrongIDOnly}, {b: testsupport.WrongQuestionOnly}, {b: testsupport.WrongSourceOnly}},
			qname: "www.example.", timeout: 300 * time.Millisecond, winner: -1, outcome: Outcomes{Timeout: 1}},
		{name: "truncated reply to a UDP client is relayed",
			fakes: []fake{{b: testsupport.Truncate}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 0, outcome: Outcomes{Answered: 1}, tcpLegs: []int{0}},
		{name: "reply cut by the read buffer is retried over TCP",
			fakes: []fake{{h: bigAnswer(300)}}, qname: "www.example.",
			timeout: 30 * time.Second, winner: 0, ip: "10.0.0.1", outcome: Outcomes{Answered: 1}, tcpLegs: []int{1}},
		{name: "truncated reply to a TCP client is retried over TCP",
			fakes: []fake{{b: testsupport.Truncate}}, qname: "www.example.", tcp: true,
			timeout: 30 * time.Second, winner: 0, ip: "192.0.2.1", outcome: Outcomes{Answered: 1}, tcpLegs: []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fakes, addrs := startFakes(t, tc.fakes)
			g := newGroup(t, addrs)
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			q := aQuery(strings.ToUpper(tc.qname[:1]) + tc.qname[1:])
			reply, u, err := g.Race(ctx, q, tc.tcp)
			if tc.winner < 0 {
				require.Error(t, err)
				require.Nil(t, reply)
				if tc.outcome.Failed > 0 {
					require.ErrorIs(t, err, ErrAllFailed)
				} else {
					require.ErrorIs(t, err, ErrTimeout)
				}
			} else {
				require.NoError(t, err)
				require.Equal(t, addrs[tc.winner], u.String())
				require.Equal(t, q.Id, reply.Id)
				require.Equal(t, q.Question[0].Name, reply.Question[0].Name, "client casing restored")
				require.Equal(t, tc.rcode, reply.Rcode)
				require.Equal(t, tc.ip, answerIP(reply))
				require.NotEqual(t, testsupport.ForgedIP.String(), answerIP(reply))
			}
			require.Equal(t, tc.outcome, g.Outcomes())
			for i, n := range tc.tcpLegs {
				require.Equal(t, n, fakes[i].QueriesTCP(), "TCP queries at fake %d", i)
			}
			g.Wait()
		})
	}
}

// Every leg uses its own ID and source port and advertises EDNS 1232.
func TestLegsWire(t *testing.T) {
	fake := testsupport.StartUpstream(t)
	g := newGroup(t, []string{fake.Addr()})
	q := aQuery("www.example.")
	q.Id = 4242
	ids := map[uint16]bool{}
	for i := 0; i < 20; i++ {
		_, _, err := g.Race(context.Background(), q, false)
		require.NoError(t, err)
		got := fake.LastQuery()
		require.NotNil(t, got.IsEdns0())
		require.Equal(t, uint16(EDNSSize), got.IsEdns0().UDPSize())
		ids[got.Id] = true
	}
	require.Greater(t, len(ids), 15, "IDs repeat: not random")
}

// A losing leg is cancelled as soon as the race is won: with a blackholed
// peer and a long deadline, the race returns and its legs wind down.
func TestLosersCancelled(t *testing.T) {
	_, addrs := startFakes(t, []fake{{b: testsupport.Blackhole}, {b: testsupport.Answer}})
	g := newGroup(t, addrs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, u, err := g.Race(ctx, aQuery("www.example."), false)
	require.NoError(t, err)
	require.Equal(t, addrs[1], u.String())
	done := make(chan struct{})
	go func() { g.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the blackholed leg was not cancelled")
	}
	// Cancellation is not evidence against the upstream.
	require.Zero(t, g.Upstreams()[0].Failures())
}

// A stopped upstream answers ICMP port unreachable: the connected leg
// socket reports it and the leg fails at once instead of timing out.
func TestRefusedPortFailsFast(t *testing.T) {
	fake := testsupport.StartUpstream(t)
	fake.Stop()
	g := newGroup(t, []string{fake.Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, _, err := g.Race(ctx, aQuery("www.example."), false)
	require.ErrorIs(t, err, ErrAllFailed)
	require.Equal(t, Outcomes{Failed: 1}, g.Outcomes())
	require.Equal(t, uint64(1), g.Upstreams()[0].Failures())
}

// Health: a blackholed upstream behind a healthy one collects failures,
// is then skipped except for probes, and comes back when it answers.
func TestHealthSkipsAndProbes(t *testing.T) {
	fakes, addrs := startFakes(t, []fake{{b: testsupport.Blackhole}, {b: testsupport.Answer}})
	g := newGroup(t, addrs)
	g.silentFor = 0 // every cancelled leg of a silent upstream counts
	bad := g.Upstreams()[0]
	for i := 0; i < 10 && bad.Healthy(); i++ {
		_, _, err := g.Race(context.Background(), aQuery("www.example."), false)
		require.NoError(t, err)
		g.Wait()
	}
	require.False(t, bad.Healthy(), "score %.2f", bad.FailureScore())
	// Skipped now, apart from one probe per interval.
	sent := bad.Sent()
	for i := 0; i < 20; i++ {
		_, _, err := g.Race(context.Background(), aQuery("www.example."), false)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, bad.Sent()-sent, uint64(1))
	// Recovery is noticed through a probe.
	fakes[0].SetBehavior(testsupport.Answer)
	fakes[1].SetLatency(time.Second) // the probe's reply wins
	bad.nextProbe.Store(0)
	_, u, err := g.Race(context.Background(), aQuery("www.example."), false)
	require.NoError(t, err)
	require.Same(t, bad, u)
	require.Greater(t, bad.Replies(), uint64(0))
	require.Less(t, bad.FailureScore(), 2.5)
}

func TestRaceCallerCancel(t *testing.T) {
	_, addrs := startFakes(t, []fake{{b: testsupport.Blackhole}, {b: testsupport.Blackhole}})
	g := newGroup(t, addrs)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := g.Race(ctx, aQuery("www.example."), false)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, ErrTimeout)
		require.True(t, errors.Is(err, context.Canceled))
	case <-time.After(30 * time.Second):
		t.Fatal("race ignored its context")
	}
	g.Wait()
}

func TestRaceWireRejectsBadQuery(t *testing.T) {
	g := newGroup(t, []string{"127.0.0.1:9"})
	for _, q := range [][]byte{nil, make([]byte, 11), make([]byte, 12), {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a'}} {
		_, _, err := g.RaceWire(context.Background(), q, false)
		require.ErrorIs(t, err, errQuery)
	}
}
