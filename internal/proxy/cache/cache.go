// Package cache is spartan's response cache. It works on the wire format,
// through package dnswire: a query is parsed without building a dns.Msg
// (dnswire.Query), replies are stored packed and without OPT together with
// the offsets of their TTL fields (dnswire.Response), and a hit is answered by copying the stored packet and
// patching the ID, flags, question casing and TTLs, then appending an OPT
// that matches the client's. The hit path allocates nothing.
//
// Policy: positive answers live for the lowest answer TTL clamped to
// [MinTTL, MaxTTL]; NXDOMAIN and NODATA follow RFC 2308 (the SOA in
// authority, clamped tighter inside the cluster domain); SERVFAIL lives at
// most ServFailTTL and never replaces an entry that can still be served;
// truncated and signed replies are never stored. Expired entries stay
// servable as stale answers (RFC 8767) for StaleMaxAge. Memory is bounded
// by entry count and by accounted bytes, with LRU eviction.
package cache

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
)

// EntryOverhead is the memory accounted to an entry on top of its packed
// message buffer: the entry struct, the LRU list element and the map slot.
// It was measured with runtime.MemStats (TestEntryOverhead checks that the
// real cost stays below it).
const EntryOverhead = 288

// Status is the outcome of a lookup.
type Status uint8

// Lookup outcomes.
const (
	// Miss: nothing usable is cached.
	Miss Status = iota
	// Fresh: the reply was written from an unexpired entry.
	Fresh
	// Stale: the entry has expired but may be served (WriteStale) if the
	// upstreams fail to answer in time.
	Stale
)

func (s Status) String() string {
	switch s {
	case Fresh:
		return "fresh"
	case Stale:
		return "stale"
	}
	return "miss"
}

type kind uint8

const (
	kindPositive kind = iota
	kindNegative
	kindServFail
)

type entry struct {
	dnswire.Response
	flags      byte  // DO/CD key bits
	kind       kind  //
	stored     int64 // nanoseconds since Cache.base
	expires    int64
	staleUntil int64
	size       int64 // accounted bytes
	tcp        bool  // fetched by a race for TCP clients: refreshed the same way
	hits       atomic.Uint32
	prefetched atomic.Bool
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Hits      uint64 // fresh answers written
	Misses    uint64 // lookups that found nothing fresh
	Evictions uint64 // entries dropped to stay within the bounds
	Stale     uint64 // stale answers written (RFC 8767)
	Prefetch  uint64 // prefetch signals given
	Coalesced uint64 // misses that joined an identical one in flight
	Entries   int
	// Answers counts the entries that answer a question (NOERROR,
	// NODATA, NXDOMAIN): Entries without the cached SERVFAILs.
	Answers int
	Bytes   int64
}

// Options configure a Cache.
type Options struct {
	// Config is the cache section of the configuration.
	Config config.Cache
	// ClusterDomain selects the ClusterNegativeMaxTTL clamp.
	ClusterDomain string
	// MasterDomains are further domains clamped like ClusterDomain: the
	// DC/OS domains, whose names appear with new tasks just the same.
	MasterDomains []string
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
}

// Cache is a bounded LRU cache of packed DNS replies. It is safe for
// concurrent use.
type Cache struct {
	cfg     config.Cache
	cluster [][]byte // lower-cased wire forms of the cluster domain and MasterDomains
	now     func() time.Time
	base    time.Time
	seed    maphash.Seed

	mu    sync.Mutex
	lru   *simplelru.LRU[uint64, *entry]
	bytes int64 // guarded by mu

	hits, misses, evictions, stale, prefetch, coalesced atomic.Uint64
	entries                                             atomic.Int64
	answers                                             atomic.Int64 // changed with mu held
	bytesGauge                                          atomic.Int64
}

// New builds a cache from validated options.
func New(o Options) (*Cache, error) {
	if o.Config.MaxEntries <= 0 || o.Config.MaxBytes <= 0 {
		return nil, fmt.Errorf("cache: maxEntries %d and maxBytes %d must be positive",
			o.Config.MaxEntries, o.Config.MaxBytes)
	}
	c := &Cache{cfg: o.Config, now: o.Now, seed: maphash.MakeSeed()}
	if c.now == nil {
		c.now = time.Now
	}
	c.base = c.now()
	for _, d := range append([]string{o.ClusterDomain}, o.MasterDomains...) {
		if d == "" {
			continue
		}
		wire, err := dnswire.WireName(d)
		if err != nil {
			return nil, fmt.Errorf("cache: cluster domain %q: %w", d, err)
		}
		c.cluster = append(c.cluster, wire)
	}
	lru, err := simplelru.NewLRU(o.Config.MaxEntries, c.onRemove)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.lru = lru
	return c, nil
}

// onRemove keeps the byte count right for every removal (eviction, Remove,
// Purge); it runs with c.mu held.
func (c *Cache) onRemove(_ uint64, e *entry) {
	c.bytes -= e.size
	if e.kind != kindServFail {
		c.answers.Add(-1)
	}
}

func (c *Cache) clock() int64 { return int64(c.now().Sub(c.base)) }

func (c *Cache) hash(q *dnswire.Query) uint64 { return maphash.Bytes(c.seed, q.Key()) }

// matches reports whether e answers q: the hash selected it, this makes
// sure it is not a collision.
func (e *entry) matches(q *dnswire.Query) bool {
	return e.flags == q.KeyFlags() && e.Answers(q)
}

// Get looks q up and, on a fresh hit, writes the reply for q into dst
// (reusing its capacity) with TTLs decremented by the time spent in the
// cache, truncated to limit bytes. prefetch is true once per entry, on the
// hit that finds a popular entry (PrefetchHits hits) with less than 10% of
// its lifetime left: the caller should refresh it in the background.
// A Stale status writes nothing: the caller asks the upstreams first and
// calls WriteStale if they fail.
func (c *Cache) Get(q *dnswire.Query, dst []byte, limit int) (reply []byte, st Status, prefetch bool) {
	reply, st, prefetch, _ = c.get(q, dst, limit)
	return reply, st, prefetch
}

// get is Get that also says, for a Fresh or Stale entry, whether it was
// fetched by a race for TCP clients (insert): its refresh, a prefetch or
// the race behind a stale answer, must be too, or a reply that only fits
// TCP would come back truncated over UDP and the entry would just expire.
func (c *Cache) get(q *dnswire.Query, dst []byte, limit int) (reply []byte, st Status, prefetch, tcp bool) {
	h := c.hash(q)
	c.mu.Lock()
	e, ok := c.lru.Get(h)
	c.mu.Unlock()
	if !ok || !e.matches(q) {
		c.misses.Add(1)
		return dst[:0], Miss, false, false
	}
	now := c.clock()
	if now >= e.expires {
		if now < e.staleUntil {
			c.misses.Add(1)
			return dst[:0], Stale, false, e.tcp
		}
		c.mu.Lock()
		if cur, ok := c.lru.Peek(h); ok && cur == e {
			c.lru.Remove(h)
			c.entries.Store(int64(c.lru.Len()))
			c.bytesGauge.Store(c.bytes)
		}
		c.mu.Unlock()
		c.misses.Add(1)
		return dst[:0], Miss, false, false
	}
	c.hits.Add(1)
	hits := e.hits.Add(1)
	left := e.expires - now
	age := uint32((now - e.stored) / int64(time.Second))
	maxTTL := uint32(min((left+int64(time.Second)-1)/int64(time.Second), math.MaxUint32))
	reply = e.AppendAged(dst, q, limit, age, maxTTL)
	if c.cfg.PrefetchHits > 0 && hits >= uint32(c.cfg.PrefetchHits) &&
		left*10 < e.expires-e.stored && e.kind != kindServFail &&
		e.prefetched.CompareAndSwap(false, true) {
		c.prefetch.Add(1)
		prefetch = true
	}
	return reply, Fresh, prefetch, e.tcp
}

// WriteStale writes the expired entry for q into dst with every TTL set to
// StaleTTL, if it is still within StaleMaxAge past expiry (RFC 8767). ok
// is false when there is nothing to serve.
func (c *Cache) WriteStale(q *dnswire.Query, dst []byte, limit int) (reply []byte, ok bool) {
	h := c.hash(q)
	c.mu.Lock()
	e, found := c.lru.Peek(h)
	c.mu.Unlock()
	if !found || !e.matches(q) || e.kind == kindServFail {
		return dst[:0], false
	}
	now := c.clock()
	if now >= e.staleUntil {
		return dst[:0], false
	}
	c.stale.Add(1)
	return e.AppendStale(dst, q, limit, uint32(time.Duration(c.cfg.StaleTTL)/time.Second)), true
}

// TTL returns how long r would be cached as the answer to q, and false
// when it would not be cached at all.
func (c *Cache) TTL(q *dnswire.Query, r *dnswire.Response) (time.Duration, bool) {
	_, ttl, ok := c.policy(q, r)
	return ttl, ok
}

func (c *Cache) policy(q *dnswire.Query, r *dnswire.Response) (kind, time.Duration, bool) {
	if !q.Cacheable() || r.Truncated() || r.Signed() {
		return 0, 0, false
	}
	sec := func(s uint32) time.Duration { return time.Duration(s) * time.Second }
	var (
		k   kind
		ttl time.Duration
	)
	switch rcode := r.Rcode(); {
	case rcode == dns.RcodeSuccess && r.AnswerCount() > 0:
		k = kindPositive
		ttl = sec(r.MinAnswerTTL())
		ttl = max(ttl, time.Duration(c.cfg.MinTTL))
		ttl = min(ttl, time.Duration(c.cfg.MaxTTL))
	case rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError:
		// RFC 2308 5: the SOA's TTL, but no more than its MINIMUM.
		k = kindNegative
		ttl = time.Duration(c.cfg.NegativeTTL)
		if soaTTL, soaMin, ok := r.SOA(); ok {
			ttl = sec(min(soaTTL, soaMin))
		}
		if r.AnswerCount() > 0 { // a CNAME chain ending in NXDOMAIN
			ttl = min(ttl, sec(r.MinAnswerTTL()))
		}
		if c.inCluster(q) {
			ttl = min(ttl, time.Duration(c.cfg.ClusterNegativeMaxTTL))
		} else {
			ttl = min(ttl, time.Duration(c.cfg.NegativeMaxTTL))
		}
	case rcode == dns.RcodeServerFailure:
		k = kindServFail
		ttl = time.Duration(c.cfg.ServFailTTL)
	default:
		return 0, 0, false
	}
	return k, ttl, ttl > 0
}

// inCluster reports whether q's name is the cluster domain (or one of
// MasterDomains) or below it.
func (c *Cache) inCluster(q *dnswire.Query) bool {
	for _, z := range c.cluster {
		if dnswire.InZone(q.LowerName(), z) {
			return true
		}
	}
	return false
}

// Insert caches r as the answer to q if the policy allows it and reports
// whether it did. A SERVFAIL never replaces an entry that is fresh or
// still servable as stale.
func (c *Cache) Insert(q *dnswire.Query, r *dnswire.Response) bool { return c.insert(q, r, false) }

// insert is Insert noting whether r was fetched by a race for TCP clients
// (one that retries a truncated UDP reply over TCP).
func (c *Cache) insert(q *dnswire.Query, r *dnswire.Response, tcp bool) bool {
	k, ttl, ok := c.policy(q, r)
	if !ok || !r.Answers(q) {
		return false
	}
	now := c.clock()
	e := &entry{
		Response: *r,
		flags:    q.KeyFlags(),
		kind:     k,
		stored:   now,
		expires:  now + int64(ttl),
		size:     int64(r.Size()) + EntryOverhead,
		tcp:      tcp,
	}
	e.staleUntil = e.expires
	if k != kindServFail {
		e.staleUntil += int64(time.Duration(c.cfg.StaleMaxAge))
	}
	if e.size > c.cfg.MaxBytes {
		return false
	}
	h := c.hash(q)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(h); ok {
		if k == kindServFail && old.matches(q) && old.kind != kindServFail && now < old.staleUntil {
			return false
		}
		// Replacing does not call the removal callback.
		c.bytes -= old.size
		if old.kind != kindServFail {
			c.answers.Add(-1)
		}
	}
	if c.lru.Add(h, e) {
		c.evictions.Add(1)
	}
	if k != kindServFail {
		c.answers.Add(1)
	}
	c.bytes += e.size
	for c.bytes > c.cfg.MaxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
		c.evictions.Add(1)
	}
	c.entries.Store(int64(c.lru.Len()))
	c.bytesGauge.Store(c.bytes)
	return true
}

// Flush empties the cache.
func (c *Cache) Flush() {
	c.mu.Lock()
	c.lru.Purge()
	c.entries.Store(0)
	c.bytesGauge.Store(c.bytes)
	c.mu.Unlock()
}

// FlushName removes every entry for name (any type, class and flags) and
// returns how many it removed. name is in presentation format; case does
// not matter. It scans the whole cache: it is an administrative operation.
func (c *Cache) FlushName(name string) (int, error) {
	wire, err := dnswire.WireName(name)
	if err != nil {
		return 0, fmt.Errorf("cache: flush %q: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	removed := 0
	for _, h := range c.lru.Keys() {
		e, ok := c.lru.Peek(h)
		if !ok {
			continue
		}
		if qs := e.Question(); len(qs) == len(wire)+4 && bytes.Equal(qs[:len(wire)], wire) {
			c.lru.Remove(h)
			removed++
		}
	}
	c.entries.Store(int64(c.lru.Len()))
	c.bytesGauge.Store(c.bytes)
	return removed, nil
}

// NoteCoalesced counts a miss that joined an identical one in flight.
func (c *Cache) NoteCoalesced() { c.coalesced.Add(1) }

// Stats returns the counters. It takes no lock.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Evictions: c.evictions.Load(),
		Stale:     c.stale.Load(),
		Prefetch:  c.prefetch.Load(),
		Coalesced: c.coalesced.Load(),
		Entries:   int(c.entries.Load()),
		Answers:   int(c.answers.Load()),
		Bytes:     c.bytesGauge.Load(),
	}
}
