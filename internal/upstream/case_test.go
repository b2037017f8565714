package upstream

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// caseUpstream is a fake upstream that records the question name of every
// query it receives and answers A DefaultIP, with the reply's question
// name changed by echo (identity: echoed as sent).
type caseUpstream struct {
	*testsupport.Upstream
	mu   sync.Mutex
	seen []string
}

func startCaseUpstream(t *testing.T, echo func(string) string) *caseUpstream {
	t.Helper()
	c := &caseUpstream{}
	c.Upstream = testsupport.StartUpstream(t, testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		c.mu.Lock()
		c.seen = append(c.seen, req.Question[0].Name)
		c.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req)
		m.Question[0].Name = echo(req.Question[0].Name)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: testsupport.DefaultIP.AsSlice()}}
		return m
	}))
	return c
}

func (c *caseUpstream) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// newObservedGroup is newGroup with metrics and a log buffer.
func newObservedGroup(t *testing.T, addrs []string) (*Group, *metrics.Metrics, *logBuffer) {
	t.Helper()
	m := metrics.New()
	logs, logger := newLogBuffer()
	g, err := NewGroup(".", addrs, m, WithLogger(logger))
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g, m, logs
}

// An upstream that echoes the question as it was sent gets every query
// with the letters of the name in a random case, and its replies, which
// echo that case, are accepted; the caller gets its own casing back.
func TestCaseRandomized(t *testing.T) {
	up := startCaseUpstream(t, func(s string) string { return s })
	g, m, logs := newObservedGroup(t, []string{up.Addr()})
	const name = "www.example.com."
	for range 50 {
		reply, _, err := g.Race(context.Background(), aQuery(name), false)
		require.NoError(t, err)
		require.Equal(t, name, reply.Question[0].Name, "client casing restored")
		require.Equal(t, testsupport.DefaultIP.String(), answerIP(reply))
	}
	require.Equal(t, Outcomes{Answered: 50}, g.Outcomes())
	require.True(t, g.Upstreams()[0].CaseRandomized())

	seen := up.names()
	require.Len(t, seen, 50)
	casings := map[string]bool{}
	for _, s := range seen {
		require.True(t, strings.EqualFold(name, s), "%q", s)
		casings[s] = true
	}
	// 13 letters: 8192 casings, so 50 queries hardly ever repeat one.
	require.Greater(t, len(casings), 40, "casings: %v", seen)
	// Every letter is sent in both cases.
	for i := range len(name) {
		if name[i] == '.' {
			continue
		}
		upper, lower := false, false
		for _, s := range seen {
			upper = upper || s[i] == name[i]-'a'+'A'
			lower = lower || s[i] == name[i]
		}
		require.True(t, upper && lower, "letter %d always in one case: %v", i, seen)
	}
	require.Zero(t, testsupport.Gather(t, m.Registry()).Must(t, "spartan_upstream_0x20_fallbacks_total", "upstream", up.Addr()))
	require.Empty(t, logs.about(t, "0x20"))
}

// An upstream that lower-cases the question: its first UDP reply, in the
// wrong case, is checked over TCP, where the upstream lower-cases it
// again; 0x20 is then turned off for it (logged once, counted once), that
// reply is served, and later queries go over UDP with the client's casing
// and are matched ignoring case.
func TestCaseFallback(t *testing.T) {
	up := startCaseUpstream(t, strings.ToLower)
	g, m, logs := newObservedGroup(t, []string{up.Addr()})
	// Many letters: a random casing that happens to be all lower case
	// (which this upstream would echo unchanged) is out of the question.
	const name = "WWW.Some-Long-Example-Name.Example.COM."
	for i := range 10 {
		reply, u, err := g.Race(context.Background(), aQuery(name), false)
		require.NoError(t, err, "query %d", i)
		require.Equal(t, up.Addr(), u.String())
		require.Equal(t, name, reply.Question[0].Name, "client casing restored")
		require.Equal(t, testsupport.DefaultIP.String(), answerIP(reply))
	}
	require.Equal(t, Outcomes{Answered: 10}, g.Outcomes())
	require.False(t, g.Upstreams()[0].CaseRandomized())
	require.Equal(t, 1, up.QueriesTCP(), "only the first mismatch is checked over TCP")

	seen := up.names()
	require.Len(t, seen, 11) // the first query twice: UDP, then TCP
	for i, s := range seen[:2] {
		require.True(t, strings.EqualFold(name, s), "%q", s)
		require.NotEqual(t, name, s, "query %d is randomized", i)
	}
	for _, s := range seen[2:] {
		require.Equal(t, name, s, "after the fallback the client's casing is sent")
	}

	met := testsupport.Gather(t, m.Registry())
	require.Equal(t, 1.0, met.Must(t, "spartan_upstream_0x20_fallbacks_total", "group", ".", "upstream", up.Addr()))
	lines := logs.about(t, "0x20")
	require.Len(t, lines, 1, "logged once")
	require.Equal(t, "WARN", lines[0]["level"])
	require.Equal(t, up.Addr(), lines[0]["upstream"])
}

// A spoofed reply with the leg's ID and question but another casing,
// arriving before the real one, is not taken and does not turn 0x20 off:
// asked again over TCP, the upstream echoes the leg's casing, so the
// spoof is ignored and the real answer wins.
func TestCaseSpoofIgnored(t *testing.T) {
	up := testsupport.StartUpstream(t, testsupport.WithBehavior(testsupport.WrongCase),
		testsupport.WithLatency(20*time.Millisecond))
	g, m, logs := newObservedGroup(t, []string{up.Addr()})
	for i := range 3 {
		reply, _, err := g.Race(context.Background(), aQuery("www.example.com."), false)
		require.NoError(t, err, "query %d", i)
		require.Equal(t, testsupport.DefaultIP.String(), answerIP(reply), "the spoof never wins")
	}
	require.True(t, g.Upstreams()[0].CaseRandomized())
	require.Equal(t, 3, up.QueriesTCP(), "each spoof is checked over TCP")
	require.Zero(t, testsupport.Gather(t, m.Registry()).Must(t, "spartan_upstream_0x20_fallbacks_total", "upstream", up.Addr()))
	require.Empty(t, logs.about(t, "0x20"))
}
