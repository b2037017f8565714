package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spartan-dns/spartan/internal/dnswire"
	"golang.org/x/sync/singleflight"
)

// Fetcher resolves the packed query for q upstream (one race across the
// upstream group q routes to) and returns the packed reply. tcp says the
// race serves TCP clients (a truncated UDP reply must be retried over
// TCP). An error means the race produced no usable reply. query is not
// to be kept once Fetcher returns: its buffer is reused.
type Fetcher func(ctx context.Context, q *dnswire.Query, query []byte, tcp bool) ([]byte, error)

// FrontOptions configure a Front.
type FrontOptions struct {
	// Fetch runs upstream races. Required.
	Fetch Fetcher
	// ClientTimeout is how long a client whose entry has expired waits for
	// a fresh answer before it gets the stale one.
	ClientTimeout time.Duration
	// RaceTimeout bounds one upstream race; it runs on after a client was
	// served stale, to refresh the entry.
	RaceTimeout time.Duration
}

// Front puts the cache in front of an upstream Fetcher: identical
// concurrent misses share one race (singleflight), expired entries are
// served stale when the race fails or is slower than ClientTimeout
// (RFC 8767), and popular entries are refreshed in the background before
// they expire. Races run on the Front's own context, not a client's, and
// end by RaceTimeout: a race outlives a client that gave up waiting for a
// stale entry's refresh and still refreshes the cache. Cancel ends every
// race at once; Close (or the end of Run's context) cancels them and waits.
type Front struct {
	c       *Cache
	opts    FrontOptions
	sf      singleflight.Group
	waiting atomic.Int64 // Resolve calls that have joined or started a race

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // orders wg.Add against Close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// NewFront returns a Front over c.
func NewFront(c *Cache, o FrontOptions) (*Front, error) {
	if o.Fetch == nil {
		return nil, errors.New("cache: front needs a fetcher")
	}
	if o.ClientTimeout <= 0 || o.RaceTimeout <= 0 {
		return nil, fmt.Errorf("cache: client timeout %s and race timeout %s must be positive",
			o.ClientTimeout, o.RaceTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Front{c: c, opts: o, ctx: ctx, cancel: cancel}, nil
}

// Cache returns the underlying cache.
func (f *Front) Cache() *Cache { return f.c }

// Waiting returns how many Resolve calls are waiting now on an upstream
// race they started or joined (a gauge: a burst of identical misses shows
// as many waiters on one race).
func (f *Front) Waiting() int64 { return f.waiting.Load() }

// Run blocks until ctx is done, then closes f. It lets an errgroup own the
// Front's background work.
func (f *Front) Run(ctx context.Context) error {
	<-ctx.Done()
	f.Close()
	return nil
}

// Cancel ends every race and prefetch in flight now, without waiting: their
// clients get SERVFAIL (or a stale answer), and races started afterwards
// fail at once. It is for a shutdown whose grace period is over.
func (f *Front) Cancel() { f.cancel() }

// Close cancels every race and prefetch in flight and waits for them.
func (f *Front) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}

// enter registers a race; it fails once f is closed.
func (f *Front) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

// Hit is the fast path: it writes a fresh cached reply for q into dst and
// reports whether it did. It starts a background refresh when the entry is
// popular and about to expire. It never blocks.
func (f *Front) Hit(q *dnswire.Query, dst []byte, limit int) ([]byte, bool) {
	reply, st, prefetch, tcp := f.c.get(q, dst, limit)
	if st != Fresh {
		return reply, false
	}
	if prefetch {
		f.prefetch(q, tcp)
	}
	return reply, true
}

// Resolve answers q: from the cache when fresh, otherwise through one
// coalesced upstream race. If the entry has expired but may be served
// stale, the client gets the stale answer when the race fails or has not
// finished within ClientTimeout; a fresh answer that arrives in time always
// wins. The reply is written into dst, rewritten for q (ID, casing, EDNS,
// truncation to limit). tcp separates races whose replies may differ by
// transport (a UDP race may come back truncated); an expired entry that
// was fetched for TCP clients is refreshed by a TCP race whatever the
// client's transport.
//
// A miss with nothing stale to fall back on waits for its race whatever
// ctx does: the race is bounded by RaceTimeout and ended early only by
// Cancel or Close. The race that a miss starts runs on the caller's
// goroutine, which saves a goroutine, a channel and a wake-up per miss;
// coalesced misses wait for it. ctx bounds the other waits (a stale
// entry's refresh, a race started by a prefetch).
func (f *Front) Resolve(ctx context.Context, q *dnswire.Query, dst []byte, limit int, tcp bool) ([]byte, error) {
	reply, st, prefetch, etcp := f.c.get(q, dst, limit)
	switch st {
	case Fresh:
		if prefetch {
			f.prefetch(q, etcp)
		}
		return reply, nil
	}
	var joined atomic.Bool
	joined.Store(true)
	f.waiting.Add(1)
	defer f.waiting.Add(-1)
	if st == Miss {
		v, _, _ := f.sf.Do(flightKey(q, tcp), func() (any, error) {
			joined.Store(false)
			return f.run(q, tcp), nil
		})
		if joined.Load() {
			f.c.coalesced.Add(1)
		}
		return v.(*dnswire.Response).AppendReply(dst, q, limit), nil
	}
	// An expired entry that was fetched over TCP is refreshed over TCP for
	// any client: over UDP it would come back truncated.
	ch := f.race(q, tcp || etcp, &joined)
	var deadline <-chan time.Time
	if st == Stale {
		t := time.NewTimer(f.opts.ClientTimeout)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case res := <-ch:
		if joined.Load() {
			f.c.coalesced.Add(1)
		}
		r := res.Val.(*dnswire.Response)
		if !r.Usable() && st == Stale {
			if out, ok := f.c.WriteStale(q, dst, limit); ok {
				return out, nil
			}
		}
		return r.AppendReply(dst, q, limit), nil
	case <-deadline:
		if joined.Load() {
			f.c.coalesced.Add(1)
		}
		if out, ok := f.c.WriteStale(q, dst, limit); ok {
			return out, nil
		}
		// Evicted meanwhile: wait for the race after all.
		select {
		case res := <-ch:
			return res.Val.(*dnswire.Response).AppendReply(dst, q, limit), nil
		case <-ctx.Done():
			return dst[:0], fmt.Errorf("cache: waiting for upstream: %w", ctx.Err())
		}
	case <-ctx.Done():
		return dst[:0], fmt.Errorf("cache: waiting for upstream: %w", ctx.Err())
	}
}

// race joins or starts, on a goroutine of its own, the upstream race for
// q's key. joined is cleared when this call started the race.
func (f *Front) race(q *dnswire.Query, tcp bool, joined *atomic.Bool) <-chan singleflight.Result {
	leader := *q // the race outlives the caller's Query buffer
	return f.sf.DoChan(flightKey(q, tcp), func() (any, error) {
		joined.Store(false)
		return f.run(&leader, tcp), nil
	})
}

// run is one registered race for q: after Close it fails at once with
// SERVFAIL.
func (f *Front) run(q *dnswire.Query, tcp bool) *dnswire.Response {
	if !f.enter() {
		return dnswire.NewServFail(q)
	}
	defer f.wg.Done()
	return f.fetch(q, tcp)
}

// queryBufs holds the upstream queries fetch builds.
var queryBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// fetch runs one upstream race for q and caches its outcome, noting the
// race's transport so that a prefetch uses it too. It always returns a
// Response: a failed race becomes SERVFAIL.
func (f *Front) fetch(q *dnswire.Query, tcp bool) *dnswire.Response {
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.RaceTimeout)
	defer cancel()
	// Fetch keeps no reference to the query: its buffer goes back to the
	// pool when the race is over.
	bp := queryBufs.Get().(*[]byte)
	defer queryBufs.Put(bp)
	*bp = q.AppendQuery((*bp)[:0])
	reply, err := f.opts.Fetch(ctx, q, *bp, tcp)
	var r *dnswire.Response
	if err == nil {
		r, err = dnswire.ParseResponse(q, reply)
	}
	if err != nil {
		r = dnswire.NewServFail(q)
	}
	f.c.insert(q, r, tcp)
	return r
}

// prefetch refreshes q's entry in the background, over the transport the
// entry was fetched with (tcp: a race that retries truncation over TCP),
// sharing the race with any concurrent miss for the same key and
// transport.
func (f *Front) prefetch(q *dnswire.Query, tcp bool) {
	var joined atomic.Bool
	// DoChan delivers to a buffered channel: nobody needs to read it.
	f.race(q, tcp, &joined)
}

func flightKey(q *dnswire.Query, tcp bool) string {
	var b [dnswire.MaxNameLen + 6]byte
	n := copy(b[:], q.Key())
	if tcp {
		b[n] = 1
	}
	return string(b[:n+1])
}
