package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// logBuffer collects the JSON lines of a slog logger; legs log from
// their own goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func newLogBuffer() (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewJSONHandler(b, nil))
}

// about returns the logged records whose message contains msg.
func (b *logBuffer) about(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range b.records(t) {
		if strings.Contains(r["msg"].(string), msg) {
			out = append(out, r)
		}
	}
	return out
}

// records returns the logged records, each as its decoded JSON object.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec), "%s", line)
		out = append(out, rec)
	}
	return out
}

// healthLine is what a test checks of one health change line.
type healthLine struct {
	level, msg, upstream, zone, reason string
	score                              float64
}

func healthLines(t *testing.T, b *logBuffer) []healthLine {
	t.Helper()
	var out []healthLine
	for _, r := range b.records(t) {
		l := healthLine{level: r["level"].(string), msg: r["msg"].(string)}
		l.upstream, _ = r["upstream"].(string)
		l.zone, _ = r["zone"].(string)
		l.reason, _ = r["reason"].(string)
		l.score, _ = r["failureScore"].(float64)
		out = append(out, l)
	}
	return out
}

// An upstream that dies and comes back is logged once as unhealthy (when
// its failure score crosses the threshold) and once as healthy again,
// whatever the number of failures and good replies around the changes.
func TestHealthChangesLoggedOnce(t *testing.T) {
	fake := testsupport.StartUpstream(t)
	logs, logger := newLogBuffer()
	clk := testsupport.NewClock() // no decay: the score moves by events only
	g, err := NewGroup(".", []string{fake.Addr()}, nil, WithLogger(logger), WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(g.Close)
	u := g.Upstreams()[0]
	race := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _, err := g.Race(ctx, aQuery("www.example."), false)
		return err
	}
	require.NoError(t, race())
	require.Empty(t, healthLines(t, logs))

	fake.Stop() // ICMP port unreachable: every leg fails at once
	for range 4 {
		require.ErrorIs(t, race(), ErrAllFailed)
	}
	require.False(t, u.Healthy())
	fake.Start()
	for range 3 {
		require.NoError(t, race())
	}
	require.True(t, u.Healthy())

	lines := healthLines(t, logs)
	require.Len(t, lines, 2)
	require.Contains(t, lines[0].reason, "connection refused")
	lines[0].reason = ""
	require.Equal(t, []healthLine{
		{level: "WARN", msg: "upstream unhealthy", upstream: fake.Addr(), zone: ".", score: 3},
		{level: "INFO", msg: "upstream healthy", upstream: fake.Addr(), zone: ".", score: 2, reason: "good reply"},
	}, lines)
}

// The failure score halves every 10 s: an upstream skipped for its
// failures is trusted again once they have decayed, with no good reply in
// between, and the change is logged once.
func TestHealthDecays(t *testing.T) {
	const slow = 150 * time.Millisecond // the SERVFAIL arrives first
	_, addrs := startFakes(t, []fake{{b: testsupport.ServFail}, {b: testsupport.Answer, latency: slow}})
	logs, logger := newLogBuffer()
	clk := testsupport.NewClock()
	g, err := NewGroup(".", addrs, nil, WithLogger(logger), WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(g.Close)
	bad := g.Upstreams()[0]
	// Three failures make it unhealthy, the fourth comes from its probe.
	for range 4 {
		_, u, err := g.Race(context.Background(), aQuery("www.example."), false)
		require.NoError(t, err)
		require.Equal(t, addrs[1], u.String())
	}
	require.Equal(t, uint64(4), bad.Failures())
	require.InDelta(t, 4, bad.FailureScore(), 1e-9)
	skipped := func() bool {
		g.pick(nil, clk.Now()) // may be the probe
		for _, u := range g.pick(nil, clk.Now()) {
			if u == bad {
				return false
			}
		}
		return true
	}
	require.False(t, bad.Healthy())
	require.True(t, skipped())

	clk.Advance(5 * time.Second)
	require.InDelta(t, 4*math.Sqrt(0.5), bad.FailureScore(), 1e-9)
	require.False(t, bad.Healthy())
	require.True(t, skipped())

	clk.Advance(5 * time.Second) // one half-life since the failures
	require.InDelta(t, 2, bad.FailureScore(), 1e-9)
	require.True(t, bad.Healthy())
	require.False(t, skipped(), "picked again, not only as a probe")

	lines := healthLines(t, logs)
	require.Len(t, lines, 2)
	require.Equal(t, "WARN", lines[0].level)
	require.Equal(t, healthLine{level: "INFO", msg: "upstream healthy", upstream: addrs[0], zone: ".",
		score: 2, reason: "failure score decayed"}, lines[1])
}
