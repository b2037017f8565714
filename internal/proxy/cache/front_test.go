package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// These tests run in a synctest bubble: time is virtual (the cache's clock
// and the client deadline both use it) and synctest.Wait tells when every
// goroutine is parked, so coalescing and deadlines are tested without
// sleeping or timing assumptions. Tests over real sockets are in the proxy.

// upstream is an in-memory Fetcher: it answers every query with the reply
// its answer function builds, after delay, and counts the queries.
type upstream struct {
	queries    atomic.Int64
	tcpQueries atomic.Int64 // races for TCP clients
	mu         sync.Mutex
	delay      time.Duration
	answer     func(q *dns.Msg) *dns.Msg // nil reply: the race fails
	gate       chan struct{}             // when set, every query waits for it
	// truncateUDP makes a race for UDP clients come back truncated (TC,
	// no records), as a reply too big for UDP does; a race for TCP
	// clients gets the whole answer, as its TCP retry would.
	truncateUDP bool
}

func (u *upstream) set(f func(q *dns.Msg) *dns.Msg) {
	u.mu.Lock()
	u.answer = f
	u.mu.Unlock()
}

func (u *upstream) fetch(ctx context.Context, _ *dnswire.Query, query []byte, tcp bool) ([]byte, error) {
	u.queries.Add(1)
	if tcp {
		u.tcpQueries.Add(1)
	}
	var q dns.Msg
	if err := q.Unpack(query); err != nil {
		return nil, err
	}
	u.mu.Lock()
	answer, delay, gate, truncate := u.answer, u.delay, u.gate, u.truncateUDP && !tcp
	u.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m := answer(&q)
	if m == nil {
		return nil, errors.New("every upstream failed")
	}
	if truncate {
		m.Truncated = true
		m.Answer, m.Ns, m.Extra = nil, nil, nil
	}
	return m.Pack()
}

func answerA(ttl uint32, ip string) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   []byte{192, 0, 2, byte(len(ip))},
		}}
		return m
	}
}

func failing(*dns.Msg) *dns.Msg { return nil }

func newTestFront(t *testing.T, u *upstream, mod func(*config.Cache)) *Front {
	t.Helper()
	cfg := config.Default().Cache
	cfg.StaleMaxAge = config.Duration(time.Hour)
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(Options{Config: cfg, ClusterDomain: "mesos."})
	require.NoError(t, err)
	f, err := NewFront(c, FrontOptions{
		Fetch:         u.fetch,
		ClientTimeout: time.Duration(cfg.ClientTimeout),
		RaceTimeout:   2 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(f.Close)
	return f
}

// resolve sends one UDP client query through f and unpacks the reply.
func resolve(t *testing.T, f *Front, _ *upstream, id uint16, name string) *dns.Msg {
	t.Helper()
	return resolveOver(t, f, id, name, false)
}

// resolveOver is resolve for a UDP or a TCP client.
func resolveOver(t *testing.T, f *Front, id uint16, name string, tcp bool) *dns.Msg {
	t.Helper()
	b, err := testsupport.NewQuery(name, dns.TypeA, testsupport.WithID(id)).Pack()
	require.NoError(t, err)
	var q dnswire.Query
	require.NoError(t, q.Parse(b))
	limit := q.UDPLimit()
	if tcp {
		limit = 65535
	}
	out, err := f.Resolve(context.Background(), &q, nil, limit, tcp)
	require.NoError(t, err)
	m := new(dns.Msg)
	require.NoError(t, m.Unpack(out))
	require.Equal(t, id, m.Id)
	require.Equal(t, name, m.Question[0].Name)
	return m
}

func TestFrontMissThenHit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "x")}
		f := newTestFront(t, u, nil)
		m := resolve(t, f, u, 1, "Host.Example.")
		require.Equal(t, []uint32{60}, testsupport.TTLs(m))
		time.Sleep(10 * time.Second)
		m = resolve(t, f, u, 2, "host.EXAMPLE.")
		require.Equal(t, []uint32{50}, testsupport.TTLs(m))
		require.Equal(t, int64(1), u.queries.Load())
		time.Sleep(51 * time.Second)
		resolve(t, f, u, 3, "host.example.")
		require.Equal(t, int64(2), u.queries.Load(), "expired entry refetched")
	})
}

func TestFrontCoalescesIdenticalMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		u := &upstream{answer: answerA(60, "x"), gate: gate}
		f := newTestFront(t, u, nil)
		const clients = 100
		replies := make([]*dns.Msg, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() { replies[i] = resolve(t, f, u, uint16(1000+i), "burst.example.") })
		}
		synctest.Wait() // every client has joined the one race
		require.Equal(t, int64(clients), f.Waiting())
		close(gate)
		wg.Wait()
		require.Zero(t, f.Waiting())
		require.Equal(t, int64(1), u.queries.Load())
		for i, m := range replies {
			require.Equal(t, uint16(1000+i), m.Id, "each waiter gets its own ID")
			require.Len(t, m.Answer, 1)
		}
		require.Equal(t, uint64(clients-1), f.Cache().Stats().Coalesced)
	})
}

func TestFrontServeStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "good")}
		f := newTestFront(t, u, nil)
		resolve(t, f, u, 1, "svc.example.")
		time.Sleep(61 * time.Second)

		// Every upstream fails at once: stale answer with TTL 30.
		u.set(failing)
		m := resolve(t, f, u, 2, "svc.example.")
		require.Equal(t, dns.RcodeSuccess, m.Rcode)
		require.Equal(t, []uint32{30}, testsupport.TTLs(m))

		// Upstreams hang: the client gets the stale answer at its deadline,
		// and the race left running refreshes the cache when it succeeds.
		gate := make(chan struct{})
		u.mu.Lock()
		u.answer, u.gate = answerA(60, "fresh"), gate
		u.mu.Unlock()
		start := time.Now()
		m = resolve(t, f, u, 3, "svc.example.")
		require.Equal(t, []uint32{30}, testsupport.TTLs(m))
		require.Equal(t, time.Duration(config.Default().Cache.ClientTimeout), time.Since(start))
		close(gate)
		synctest.Wait()
		u.mu.Lock()
		u.gate = nil
		u.mu.Unlock()
		queries := u.queries.Load()
		m = resolve(t, f, u, 4, "svc.example.")
		require.Equal(t, []uint32{60}, testsupport.TTLs(m), "refreshed by the background race")
		require.Equal(t, queries, u.queries.Load())
		require.Equal(t, uint64(2), f.Cache().Stats().Stale)
	})
}

func TestFrontFreshAnswerInTimeBeatsStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "old")}
		f := newTestFront(t, u, nil)
		resolve(t, f, u, 1, "svc.example.")
		time.Sleep(2 * time.Minute)
		u.mu.Lock()
		u.delay = time.Second // under the 1.8 s client deadline
		u.answer = answerA(120, "new")
		u.mu.Unlock()
		m := resolve(t, f, u, 2, "svc.example.")
		require.Equal(t, []uint32{120}, testsupport.TTLs(m))
		require.Zero(t, f.Cache().Stats().Stale)

		// NXDOMAIN is an answer too: never replaced by a stale one.
		time.Sleep(3 * time.Minute)
		u.set(func(q *dns.Msg) *dns.Msg { m := new(dns.Msg); return m.SetRcode(q, dns.RcodeNameError) })
		m = resolve(t, f, u, 3, "svc.example.")
		require.Equal(t, dns.RcodeNameError, m.Rcode)
	})
}

func TestFrontStaleMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "x")}
		f := newTestFront(t, u, nil)
		resolve(t, f, u, 1, "svc.example.")
		u.set(failing)
		time.Sleep(time.Hour) // expired 59 min ago: still servable
		require.Equal(t, []uint32{30}, testsupport.TTLs(resolve(t, f, u, 2, "svc.example.")))
		time.Sleep(2 * time.Minute) // past the one-hour stale age
		m := resolve(t, f, u, 3, "svc.example.")
		require.Equal(t, dns.RcodeServerFailure, m.Rcode)
		require.Empty(t, m.Answer)
	})
}

func TestFrontPrefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(100, "x")}
		f := newTestFront(t, u, func(c *config.Cache) { c.PrefetchHits = 3 })
		resolve(t, f, u, 1, "popular.example.")
		for i := range 3 {
			resolve(t, f, u, uint16(2+i), "popular.example.")
		}
		time.Sleep(95 * time.Second)
		m := resolve(t, f, u, 9, "popular.example.")
		require.Equal(t, []uint32{5}, testsupport.TTLs(m), "served from the cache while refreshing")
		synctest.Wait()
		require.Equal(t, int64(2), u.queries.Load(), "one background refresh")
		m = resolve(t, f, u, 10, "popular.example.")
		require.Equal(t, []uint32{100}, testsupport.TTLs(m), "refreshed before expiry")
		time.Sleep(10 * time.Second)
		resolve(t, f, u, 11, "popular.example.")
		require.Equal(t, int64(2), u.queries.Load(), "no miss at the old expiry")
	})
}

// TestFrontPrefetchKeepsTCP fills an entry through a race for a TCP
// client (over UDP the reply is truncated): its prefetch, triggered by
// UDP clients, races for TCP too and refreshes it.
func TestFrontPrefetchKeepsTCP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(100, "x"), truncateUDP: true}
		f := newTestFront(t, u, func(c *config.Cache) { c.PrefetchHits = 3 })
		require.Equal(t, []uint32{100}, testsupport.TTLs(resolveOver(t, f, 1, "big.example.", true)))
		for i := range 3 {
			resolve(t, f, u, uint16(2+i), "big.example.")
		}
		time.Sleep(95 * time.Second)
		m := resolve(t, f, u, 9, "big.example.")
		require.Equal(t, []uint32{5}, testsupport.TTLs(m), "served from the cache while refreshing")
		synctest.Wait()
		require.Equal(t, int64(2), u.queries.Load(), "one background refresh")
		require.Equal(t, int64(2), u.tcpQueries.Load(), "the refresh raced for TCP, like the fill")
		m = resolve(t, f, u, 10, "big.example.")
		require.Equal(t, []uint32{100}, testsupport.TTLs(m), "refreshed before expiry")
		time.Sleep(10 * time.Second)
		require.Equal(t, []uint32{90}, testsupport.TTLs(resolve(t, f, u, 11, "big.example.")))
		require.Equal(t, int64(2), u.queries.Load(), "no miss at the old expiry")
		require.Zero(t, f.Cache().Stats().Stale)
	})
}

// TestFrontPrefetchCoalescesWithTCPMiss starts the prefetch of an entry
// filled for TCP clients and holds it; a TCP client that misses the same
// name meanwhile joins it instead of starting a second race.
func TestFrontPrefetchCoalescesWithTCPMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// TTL 10 s: the entry expires while its prefetch is held, well
		// within the 2 s race timeout.
		u := &upstream{answer: answerA(10, "x"), truncateUDP: true}
		f := newTestFront(t, u, func(c *config.Cache) { c.PrefetchHits = 3 })
		for i := range 4 {
			resolveOver(t, f, uint16(1+i), "big.example.", true)
		}
		require.Equal(t, int64(1), u.queries.Load())
		gate := make(chan struct{})
		u.mu.Lock()
		u.gate = gate
		u.mu.Unlock()
		time.Sleep(9500 * time.Millisecond)
		require.Equal(t, []uint32{1}, testsupport.TTLs(resolve(t, f, u, 9, "big.example.")), "starts the prefetch")
		synctest.Wait()
		require.Equal(t, int64(2), u.queries.Load())
		time.Sleep(time.Second) // the entry has expired; the prefetch still runs
		done := make(chan *dns.Msg)
		go func() { done <- resolveOver(t, f, 10, "big.example.", true) }()
		synctest.Wait()
		close(gate)
		m := <-done
		require.Len(t, m.Answer, 1)
		require.Equal(t, int64(2), u.queries.Load(), "the TCP miss joined the prefetch")
		require.Equal(t, uint64(1), f.Cache().Stats().Coalesced)
	})
}

// TestFrontStaleRefreshKeepsTCP checks that a UDP client finding an
// expired entry that was filled for TCP clients refreshes it by a TCP
// race: a UDP one would come back truncated and the client would get the
// stale answer.
func TestFrontStaleRefreshKeepsTCP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(100, "x"), truncateUDP: true}
		f := newTestFront(t, u, nil)
		resolveOver(t, f, 1, "big.example.", true)
		time.Sleep(101 * time.Second)
		m := resolve(t, f, u, 2, "big.example.")
		require.Equal(t, []uint32{100}, testsupport.TTLs(m), "a fresh answer, not the stale one")
		require.Equal(t, int64(2), u.tcpQueries.Load())
		require.Zero(t, f.Cache().Stats().Stale)
	})
}

func TestFrontCloseCancelsRaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "x"), gate: make(chan struct{})} // never opens
		f := newTestFront(t, u, nil)
		b, err := testsupport.NewQuery("hang.example.", dns.TypeA).Pack()
		require.NoError(t, err)
		var q dnswire.Query
		require.NoError(t, q.Parse(b))
		done := make(chan []byte)
		go func() {
			out, err := f.Resolve(context.Background(), &q, nil, 512, false)
			require.NoError(t, err)
			done <- out
		}()
		synctest.Wait()
		f.Close() // returns only once the race has ended
		m := new(dns.Msg)
		require.NoError(t, m.Unpack(<-done))
		require.Equal(t, dns.RcodeServerFailure, m.Rcode)

		// After Close nothing reaches the upstream.
		before := u.queries.Load()
		out, err := f.Resolve(context.Background(), &q, nil, 512, false)
		require.NoError(t, err)
		require.NoError(t, m.Unpack(out))
		require.Equal(t, dns.RcodeServerFailure, m.Rcode)
		require.Equal(t, before, u.queries.Load())
	})
}

func TestFrontMissWaitsForTheRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "x"), delay: time.Second}
		f := newTestFront(t, u, nil)
		b, err := testsupport.NewQuery("slow.example.", dns.TypeA).Pack()
		require.NoError(t, err)
		var q dnswire.Query
		require.NoError(t, q.Parse(b))
		// A miss has nothing to fall back on: a client context that ends
		// first does not cut the wait short (the race is bounded by
		// RaceTimeout).
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		out, err := f.Resolve(ctx, &q, nil, 512, false)
		require.NoError(t, err)
		m := new(dns.Msg)
		require.NoError(t, m.Unpack(out))
		require.Equal(t, dns.RcodeSuccess, m.Rcode)
		require.Len(t, m.Answer, 1)
		require.Equal(t, int64(1), u.queries.Load())
	})
}

func TestFrontStaleRefreshOutlivesClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "x")}
		f := newTestFront(t, u, nil)
		resolve(t, f, u, 1, "slow.example.")
		time.Sleep(61 * time.Second) // expired: served stale if need be
		u.mu.Lock()
		u.delay = time.Second
		u.mu.Unlock()
		b, err := testsupport.NewQuery("slow.example.", dns.TypeA).Pack()
		require.NoError(t, err)
		var q dnswire.Query
		require.NoError(t, q.Parse(b))
		// The client gives up before ClientTimeout: it gets its context's
		// error, and the refresh goes on without it.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err = f.Resolve(ctx, &q, nil, 512, false)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		time.Sleep(time.Second)
		synctest.Wait()
		out, st, _ := f.Cache().Get(&q, nil, 512)
		require.Equal(t, Fresh, st, "the race refreshed the entry")
		require.NotEmpty(t, out)
		require.Equal(t, int64(2), u.queries.Load())
	})
}

func TestFrontCancelEndsWaitingMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{answer: answerA(60, "x"), gate: make(chan struct{})} // never opens
		f := newTestFront(t, u, nil)
		b, err := testsupport.NewQuery("hang.example.", dns.TypeA).Pack()
		require.NoError(t, err)
		var q dnswire.Query
		require.NoError(t, q.Parse(b))
		const clients = 3
		done := make(chan []byte, clients)
		for range clients {
			go func() {
				q := q
				out, _ := f.Resolve(context.Background(), &q, nil, 512, false)
				done <- out
			}()
		}
		synctest.Wait()
		require.Equal(t, int64(clients), f.Waiting())
		f.Cancel() // does not wait: every waiter ends on its own
		for range clients {
			m := new(dns.Msg)
			require.NoError(t, m.Unpack(<-done))
			require.Equal(t, dns.RcodeServerFailure, m.Rcode)
		}
		require.Equal(t, int64(1), u.queries.Load(), "one race for the three")
	})
}
