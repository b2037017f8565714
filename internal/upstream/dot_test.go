package upstream

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// dotServerName is the name on the test server's good certificate.
const dotServerName = "dns.test"

// goodLeaf issues the certificate a DoT server should have: the name
// dotServerName and the loopback address.
func goodLeaf(t *testing.T, ca *testsupport.TestCA) testsupport.Leaf {
	return ca.Issue(t, "good", testsupport.LeafSpec{DNSNames: []string{dotServerName}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

// newDoTGroup is a group of addrs whose TLS upstreams trust ca, with
// metrics, a log buffer and opts.
func newDoTGroup(t *testing.T, ca *testsupport.TestCA, addrs []string, opts TLSOptions) (*Group, *metrics.Metrics, *logBuffer) {
	t.Helper()
	opts.Roots = ca.Pool
	if opts.ConnectTimeout == 0 {
		// Generous: a loaded machine must not fail a handshake that
		// the test expects to succeed.
		opts.ConnectTimeout = 20 * time.Second
	}
	m := metrics.New()
	logs, logger := newLogBuffer()
	g, err := NewGroup(".", addrs, m, WithLogger(logger), WithTLS(opts))
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g, m, logs
}

// raceA races an A query for name with a generous deadline: a test fails
// on what the race returns, never on how long it took.
func raceA(t *testing.T, g *Group, name string) (*dns.Msg, *Upstream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return g.Race(ctx, aQuery(name), false)
}

// A DoT upstream with a good certificate answers, under the name written
// after "#" or, with none, under its address (the certificate has both);
// the connection is kept for the next queries, and an NXDOMAIN comes
// through as such.
func TestDoTGoodCertificate(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	srv := testsupport.StartUnboundDoT(t, goodLeaf(t, ca))
	for _, name := range []string{dotServerName, ""} {
		t.Run("name="+name, func(t *testing.T) {
			g, _, _ := newDoTGroup(t, ca, []string{srv.URL(name)}, TLSOptions{})
			u := g.Upstreams()[0]
			require.True(t, u.TLS())
			require.False(t, u.CaseRandomized(), "0x20 buys nothing over TLS")
			for i := range 3 {
				m, got, err := raceA(t, g, fmt.Sprintf("Host%d.Dot.Test.", i))
				require.NoError(t, err)
				require.Same(t, u, got)
				require.Equal(t, dns.RcodeSuccess, m.Rcode)
				require.Equal(t, testsupport.DoTZoneAddr, answerIP(m))
				require.Equal(t, fmt.Sprintf("Host%d.Dot.Test.", i), m.Question[0].Name)
			}
			m, _, err := raceA(t, g, "x.nx."+testsupport.DoTZone)
			require.NoError(t, err)
			require.Equal(t, dns.RcodeNameError, m.Rcode)
			s := u.TLSStats()
			require.Equal(t, uint64(1), s.Handshakes, "one connection for every query")
			require.Equal(t, int64(1), s.Connections)
			require.Zero(t, s.CertErrors)
			require.True(t, u.Healthy())
		})
	}
}

// A certificate that does not verify fails every leg (never a clear-text
// fallback), is counted on every handshake, logged once with the reason,
// and keeps the upstream unhealthy whatever its failure score, until the
// server presents a valid certificate.
func TestDoTCertificateRejected(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	other := testsupport.NewTestCA(t)
	for _, c := range []struct {
		name   string
		issuer *testsupport.TestCA
		spec   testsupport.LeafSpec
		reason string
	}{
		{"wrong name", ca, testsupport.LeafSpec{DNSNames: []string{"other.test"}}, "certificate is valid for other.test, not dns.test"},
		{"expired", ca, testsupport.LeafSpec{DNSNames: []string{dotServerName},
			NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}, "certificate has expired"},
		{"unknown authority", other, testsupport.LeafSpec{DNSNames: []string{dotServerName}}, "certificate signed by unknown authority"},
	} {
		t.Run(c.name, func(t *testing.T) {
			leaf := c.issuer.Issue(t, "bad", c.spec)
			srv := testsupport.StartUnboundDoT(t, leaf)
			g, m, logs := newDoTGroup(t, ca, []string{srv.URL(dotServerName)}, TLSOptions{})
			u := g.Upstreams()[0]
			for range 3 {
				_, _, err := raceA(t, g, "a.dot.test.")
				require.ErrorIs(t, err, ErrAllFailed)
				require.ErrorContains(t, err, c.reason)
			}
			s := u.TLSStats()
			require.Equal(t, uint64(3), s.CertErrors)
			require.Zero(t, s.Handshakes)
			require.Zero(t, s.Connections)
			require.False(t, u.Healthy())
			lines := logs.about(t, "certificate rejected")
			require.Len(t, lines, 1, "logged once")
			require.Contains(t, lines[0]["reason"], c.reason)
			require.Equal(t, "ERROR", lines[0]["level"])
			require.Equal(t, u.String(), lines[0]["upstream"])
			require.Equal(t, 3.0, testsupport.Gather(t, m.Registry()).Must(t, "spartan_upstream_errors_total", "upstream", u.String()))

			// The server gets a good certificate: the next handshake
			// verifies and the upstream is healthy again.
			good := goodLeaf(t, ca)
			copyFile(t, good.CertFile, leaf.CertFile)
			copyFile(t, good.KeyFile, leaf.KeyFile)
			srv.Stop()
			srv.Start()
			msg, _, err := raceA(t, g, "a.dot.test.")
			require.NoError(t, err)
			require.Equal(t, testsupport.DoTZoneAddr, answerIP(msg))
			require.True(t, u.Healthy())
			require.Equal(t, uint64(1), u.TLSStats().Handshakes)
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, data, 0o600))
}

// A server that accepts TCP connections but never completes the handshake
// fails its leg at the connect timeout, well before the race's deadline
// (the race reports every upstream failed, not a timeout), and a race
// with a working upstream beside it, a plain UDP one here, is answered.
func TestDoTStalledHandshake(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	stall := "tls://" + testsupport.StallingTLS(t).String() + "#" + dotServerName

	alone, _, _ := newDoTGroup(t, ca, []string{stall}, TLSOptions{ConnectTimeout: 100 * time.Millisecond})
	_, _, err := raceA(t, alone, "a.dot.test.")
	require.ErrorIs(t, err, ErrAllFailed, "the handshake is bounded by the connect timeout, not the race")
	require.ErrorContains(t, err, "not completed within 100ms")

	_, addrs := startFakes(t, []fake{{b: testsupport.Answer}})
	mixed, _, _ := newDoTGroup(t, ca, []string{stall, addrs[0]}, TLSOptions{ConnectTimeout: 100 * time.Millisecond})
	for range 3 {
		m, u, err := raceA(t, mixed, "a.dot.test.")
		require.NoError(t, err)
		require.False(t, u.TLS())
		require.Equal(t, testsupport.DefaultIP.String(), answerIP(m))
	}
}

// TLS and UDP upstreams race in one group: both get every query, either
// may answer, and the TLS one opens one connection, even while it loses.
func TestDoTMixedGroup(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	srv := testsupport.StartUnboundDoT(t, goodLeaf(t, ca))
	fakes, addrs := startFakes(t, []fake{{b: testsupport.Answer}})
	g, _, _ := newDoTGroup(t, ca, []string{srv.URL(dotServerName), addrs[0]}, TLSOptions{})
	for i := range 20 {
		m, u, err := raceA(t, g, fmt.Sprintf("m%d.dot.test.", i))
		require.NoError(t, err)
		want := testsupport.DefaultIP.String()
		if u.TLS() {
			want = testsupport.DoTZoneAddr
		}
		require.Equal(t, want, answerIP(m))
	}
	g.Wait()
	tlsUp := g.Upstreams()[0]
	require.Equal(t, uint64(20), tlsUp.Sent())
	require.Equal(t, uint64(20), uint64(fakes[0].Queries()))
	// The handshake goes on while the UDP leg wins: the connection is
	// there for the next queries.
	require.Eventually(t, func() bool { return tlsUp.TLSStats().Connections == 1 }, 20*time.Second, 5*time.Millisecond)
	require.Equal(t, uint64(1), tlsUp.TLSStats().Handshakes)
	require.Zero(t, tlsUp.Failures())
}

// 100 concurrent queries are pipelined on one connection: one handshake,
// one connection, every query answered with its own name.
func TestDoTPipelining(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	srv := testsupport.StartUnboundDoT(t, goodLeaf(t, ca))
	g, m, _ := newDoTGroup(t, ca, []string{srv.URL(dotServerName)}, TLSOptions{})
	u := g.Upstreams()[0]
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("q%d.dot.test.", i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			m, _, err := g.Race(ctx, aQuery(name), false)
			if err == nil && (m.Question[0].Name != name || answerIP(m) != testsupport.DoTZoneAddr) {
				err = fmt.Errorf("reply for %s: %v", name, m)
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	s := u.TLSStats()
	require.Equal(t, uint64(1), s.Handshakes, "every query on the one connection")
	require.Equal(t, int64(1), s.Connections)
	require.Equal(t, 100.0, testsupport.Gather(t, m.Registry()).Must(t, "spartan_upstream_wins_total", "upstream", u.String()))
}

// When the server restarts, the dead connection is noticed and the next
// query opens a new one: no query after the restart is lost.
func TestDoTServerRestart(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	srv := testsupport.StartUnboundDoT(t, goodLeaf(t, ca))
	g, _, _ := newDoTGroup(t, ca, []string{srv.URL(dotServerName)}, TLSOptions{})
	u := g.Upstreams()[0]
	_, _, err := raceA(t, g, "before.dot.test.")
	require.NoError(t, err)
	srv.Stop()
	srv.Start()
	for i := range 20 {
		m, _, err := raceA(t, g, fmt.Sprintf("after%d.dot.test.", i))
		require.NoError(t, err, "query %d after the restart", i)
		require.Equal(t, testsupport.DoTZoneAddr, answerIP(m))
	}
	s := u.TLSStats()
	require.Equal(t, uint64(2), s.Handshakes)
	require.Equal(t, int64(1), s.Connections)
	require.Zero(t, u.Failures())
}

// An idle connection is closed after the idle timeout, and the next one
// resumes the TLS session.
func TestDoTIdleCloseAndResumption(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	srv := testsupport.StartUnboundDoT(t, goodLeaf(t, ca))
	g, _, _ := newDoTGroup(t, ca, []string{srv.URL(dotServerName)}, TLSOptions{IdleTimeout: 50 * time.Millisecond})
	u := g.Upstreams()[0]
	for round := range 3 {
		_, _, err := raceA(t, g, fmt.Sprintf("r%d.dot.test.", round))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return u.TLSStats().Connections == 0 }, 20*time.Second, 5*time.Millisecond,
			"the idle connection is closed")
	}
	s := u.TLSStats()
	require.Equal(t, uint64(3), s.Handshakes)
	require.Equal(t, uint64(2), s.Resumptions, "the second and third connections resume the first's session")
}

// A connection on which a query goes unanswered past its race's deadline,
// with nothing else answered since, is retired: the next query opens a
// new one rather than waiting on a server that lost the connection.
func TestDoTUnansweredConnectionRetired(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	silent := testsupport.SilentTLS(t, goodLeaf(t, ca))
	g, _, _ := newDoTGroup(t, ca, []string{"tls://" + silent.String() + "#" + dotServerName}, TLSOptions{})
	u := g.Upstreams()[0]
	for round := 1; round <= 2; round++ {
		// The deadline is what the test is about: it must pass, long
		// after the handshake on loopback.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _, err := g.Race(ctx, aQuery("a.dot.test."), false)
		cancel()
		require.ErrorIs(t, err, ErrTimeout)
		s := u.TLSStats()
		require.Equal(t, uint64(round), s.Handshakes, "a new connection for every query")
		require.Zero(t, s.Connections, "the silent connection is closed")
	}
}

// Replies over TLS are checked as over UDP and TCP: error rcodes and
// replies the parser refuses fail the leg at once, a reply with another
// ID or (with the query's ID) another question is waited past, and TC is
// relayed as it came. The fake upstreams are reached through a TLS front.
func TestDoTReplyChecks(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	leaf := goodLeaf(t, ca)
	for _, c := range []struct {
		name    string
		f       fake
		timeout time.Duration
		err     error // nil: answered with DefaultIP
	}{
		{"answer", fake{b: testsupport.Answer}, time.Hour, nil},
		{"SERVFAIL fails at once", fake{b: testsupport.ServFail}, time.Hour, ErrAllFailed},
		{"garbage fails at once", fake{b: testsupport.Garbage}, time.Hour, ErrAllFailed},
		{"opcode STATUS fails at once", fake{h: replyWith(func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus })}, time.Hour, ErrAllFailed},
		{"a 3-byte A record fails at once", fake{h: replyWith(func(m *dns.Msg) { m.Answer = []dns.RR{rawRR(m, dns.TypeA, "c00002")} })}, time.Hour, ErrAllFailed},
		{"another ID ignored, the real reply accepted", fake{b: testsupport.WrongID}, time.Hour, nil},
		{"another question ignored, the real reply accepted", fake{b: testsupport.WrongQuestion}, time.Hour, nil},
		{"only another ID: nothing accepted", fake{b: testsupport.WrongIDOnly}, 500 * time.Millisecond, ErrTimeout},
		{"only another question: nothing accepted", fake{b: testsupport.WrongQuestionOnly}, 500 * time.Millisecond, ErrTimeout},
		{"TC over TLS relayed", fake{b: testsupport.Truncate}, time.Hour, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, addrs := startFakes(t, []fake{c.f})
			front := testsupport.TLSFront(t, leaf, addrs[0])
			g, _, _ := newDoTGroup(t, ca, []string{"tls://" + front.String() + "#" + dotServerName}, TLSOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			defer cancel()
			m, _, err := g.Race(ctx, aQuery("Www.Example."), false)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, testsupport.DefaultIP.String(), answerIP(m))
			require.Equal(t, "Www.Example.", m.Question[0].Name)
		})
	}
}

// Over TLS the question goes as the client cased it: no spoofer can
// answer into the stream, so 0x20 would protect nothing, and an upstream
// that normalises case is no reason for a fallback.
func TestDoTNoCaseRandomization(t *testing.T) {
	ca := testsupport.NewTestCA(t)
	cu := startCaseUpstream(t, strings.ToLower)
	front := testsupport.TLSFront(t, goodLeaf(t, ca), cu.Addr())
	g, m, _ := newDoTGroup(t, ca, []string{"tls://" + front.String() + "#" + dotServerName}, TLSOptions{})
	for _, name := range []string{"WwW.ExAmPlE.CoM.", "www.example.com.", "WWW.EXAMPLE.COM."} {
		reply, _, err := raceA(t, g, name)
		require.NoError(t, err, "a reply in another case is accepted")
		require.Equal(t, name, reply.Question[0].Name, "the client's casing restored")
	}
	require.Equal(t, []string{"WwW.ExAmPlE.CoM.", "www.example.com.", "WWW.EXAMPLE.COM."}, cu.names())
	require.Zero(t, testsupport.Gather(t, m.Registry()).Must(t, "spartan_upstream_0x20_fallbacks_total"))
}

// BenchmarkRaceDoT is one race to unbound over a warm DoT connection, and
// over UDP to the same unbound's plain port. On a shared machine compare
// the allocations and bytes per race, not the time.
func BenchmarkRaceDoT(b *testing.B) {
	ca := testsupport.NewTestCA(b)
	leaf := ca.Issue(b, "good", testsupport.LeafSpec{DNSNames: []string{dotServerName}})
	srv := testsupport.StartUnboundDoT(b, leaf)
	for _, c := range []struct{ name, addr string }{{"tls", srv.URL(dotServerName)}, {"udp", srv.PlainAddr.String()}} {
		b.Run(c.name, func(b *testing.B) {
			g, err := NewGroup(".", []string{c.addr}, nil, WithTLS(TLSOptions{Roots: ca.Pool, ConnectTimeout: 20 * time.Second}))
			require.NoError(b, err)
			defer g.Close()
			q := aQuery("www.dot.test.")
			q.SetEdns0(EDNSSize, false)
			wire, err := q.Pack()
			require.NoError(b, err)
			ctx := context.Background()
			_, _, err = g.RaceWire(ctx, wire, false)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := g.RaceWire(ctx, wire, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
