package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/proxy/cache"
	"github.com/spartan-dns/spartan/internal/upstream"
	"github.com/spartan-dns/spartan/internal/zones"
)

// The query path, in order:
//
//  1. parse the query from the wire (cache.Query: no dns.Msg, no
//     allocation); odd but valid queries are normalized through dns.Msg
//     first, malformed ones are counted and get FORMERR when the header is
//     readable (nothing otherwise), responses are dropped;
//  2. client ACL: a client outside AllowNets gets REFUSED;
//  3. opcode other than QUERY: NOTIMP;
//  4. the local zone "spartan." is answered here, whatever the upstreams do;
//  5. [cache seam: a hit is answered here, a miss goes on];
//  6. a name in the cluster domain that no group serves (it would fall to
//     the root group) gets SERVFAIL here: external resolvers never see
//     cluster names;
//  7. in-flight cap: beyond MaxInFlight races, SERVFAIL at once;
//  8. the upstream table picks the group of the longest matching zone;
//  9. the group races the query (upstream.Group.RaceWire); failure or
//     deadline: SERVFAIL;
//  10. the reply is rewritten for the client (ID, question casing, our OPT
//     when the client sent one, TC with empty sections when it exceeds the
//     client's UDP size) and sent.
//
// Steps 1-7 never block, so they also run as ServeFast on the
// listener's read goroutine.

// Options configure a Forwarder.
type Options struct {
	// Table routes queries to upstream groups. Required. SwapTable
	// replaces it while serving; the Forwarder owns it and every table
	// swapped in, and closes each once it is no longer used.
	Table *upstream.Table
	// Local is the node-local zone ("spartan."). Required.
	Local *zones.Zone
	// ClusterDomain is the cluster's domain (a lower-case FQDN, not the
	// root); empty means none. Its names are never sent to the root
	// group: when the table has no group for the domain (or one above
	// it), they are answered SERVFAIL.
	ClusterDomain string
	// AllowNets are the client networks served; others get REFUSED.
	AllowNets []netip.Prefix
	// RaceTimeout bounds one upstream race.
	RaceTimeout time.Duration
	// MaxInFlight caps concurrent upstream races.
	MaxInFlight int
	// Cache, when set, answers hits on the fast path and sits in front of
	// the races (coalescing, serve-stale, prefetch).
	Cache *cache.Cache
	// StaleClientTimeout is how long a client whose cache entry has
	// expired waits for the race before it gets the stale answer.
	StaleClientTimeout time.Duration
	// Metrics, when set, receives one ObserveQuery per answered query.
	Metrics *metrics.Metrics
	// LogQueries logs every query at debug level.
	LogQueries bool
	Logger     *slog.Logger
}

// Forwarder is the node-local query path: it implements Handler and
// FastHandler.
type Forwarder struct {
	o        Options
	table    atomic.Pointer[tableRef] // the table routing new queries
	front    *cache.Front             // nil without a cache
	cluster  []byte                   // lower-cased wire form of ClusterDomain; nil: none
	inflight atomic.Int64

	tmu     sync.Mutex
	tables  map[*tableRef]struct{} // not yet closed: the current one and retired ones still racing
	tclosed bool                   // Close was called: no table is swapped in any more

	malformed atomic.Uint64
	refused   atomic.Uint64
	overload  atomic.Uint64
	unrouted  atomic.Uint64
}

// Stats are the Forwarder's counters since start.
type Stats struct {
	Malformed uint64 // unparseable messages (dropped or answered FORMERR)
	Refused   uint64 // queries from clients outside AllowNets
	Overload  uint64 // queries answered SERVFAIL because MaxInFlight was reached
	Unrouted  uint64 // cluster names answered SERVFAIL because no group serves the cluster domain
	Tables    int    // upstream tables not yet closed: the current one and retired ones still racing
	InFlight  int64  // upstream races now
	Waiting   int64  // queries waiting on a cached race they started or joined (cache.Front.Waiting)
}

// NewForwarder checks o and returns the query path.
func NewForwarder(o Options) (*Forwarder, error) {
	if o.Table == nil || o.Local == nil {
		return nil, errors.New("proxy: forwarder needs an upstream table and the local zone")
	}
	if o.RaceTimeout <= 0 || o.MaxInFlight <= 0 {
		return nil, fmt.Errorf("proxy: race timeout %s and max in flight %d must be positive", o.RaceTimeout, o.MaxInFlight)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := &Forwarder{o: o, tables: map[*tableRef]struct{}{}}
	if o.ClusterDomain != "" {
		wire, err := wireName(o.ClusterDomain)
		if err != nil {
			return nil, fmt.Errorf("proxy: cluster domain %q: %w", o.ClusterDomain, err)
		}
		if len(wire) == 1 {
			return nil, errors.New("proxy: the root zone cannot be the cluster domain")
		}
		f.cluster = wire
	}
	f.table.Store(f.newRef(o.Table))
	if o.Cache != nil {
		front, err := cache.NewFront(o.Cache, cache.FrontOptions{
			Fetch: f.fetch, ClientTimeout: o.StaleClientTimeout, RaceTimeout: o.RaceTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		f.front = front
	}
	return f, nil
}

// Close stops the cache's background races (prefetches, races that
// outlived their clients) and waits for them, then closes the upstream
// table, and every retired one, once its last race has ended. Queries
// after Close get SERVFAIL; a second Close only waits.
func (f *Forwarder) Close() {
	if f.front != nil {
		f.front.Close()
	}
	f.tmu.Lock()
	first := !f.tclosed
	f.tclosed = true
	pending := make([]*tableRef, 0, len(f.tables))
	for r := range f.tables {
		pending = append(pending, r)
	}
	cur := f.table.Load()
	f.tmu.Unlock()
	if first {
		f.release(cur)
	}
	for _, r := range pending {
		<-r.closed
	}
}

// CancelRaces ends the cache's upstream races now, without waiting: the
// queries waiting for them get SERVFAIL (or a stale answer). It is for a
// shutdown whose grace period is over; races without the cache watch the
// server's handler context instead.
func (f *Forwarder) CancelRaces() {
	if f.front != nil {
		f.front.Cancel()
	}
}

// Table returns the upstream table queries are routed with now. It is for
// looking at (groups, upstreams, health); racing on it is the
// Forwarder's job, as the table may be closed once it is replaced.
func (f *Forwarder) Table() *upstream.Table { return f.table.Load().t }

// ErrClosed is returned by SwapTable after Close.
var ErrClosed = errors.New("proxy: forwarder closed")

// SwapTable routes every query that starts from now on with t, which the
// Forwarder then owns. Queries already racing keep the groups they
// started with and finish normally (a reload drops nothing in flight);
// the replaced table is closed once the last of them has ended. After
// Close it returns ErrClosed and t stays the caller's to close.
func (f *Forwarder) SwapTable(t *upstream.Table) error {
	f.tmu.Lock()
	if f.tclosed {
		f.tmu.Unlock()
		return ErrClosed
	}
	old := f.table.Swap(f.newRef(t))
	f.tmu.Unlock()
	f.release(old)
	return nil
}

// tableRef counts the users of one upstream table: one reference while it
// routes new queries, one per race running on it. The last release closes
// the table.
type tableRef struct {
	t      *upstream.Table
	refs   atomic.Int64
	closed chan struct{} // closed once t is closed
}

// newRef registers t as a live table holding its "current" reference.
// The caller holds tmu or has not shared f yet.
func (f *Forwarder) newRef(t *upstream.Table) *tableRef {
	r := &tableRef{t: t, closed: make(chan struct{})}
	r.refs.Store(1)
	f.tables[r] = struct{}{}
	return r
}

// acquire returns the current table with a reference for one race, or nil
// after Close. A table whose references have all gone is never handed
// out again: the loop then finds its successor, which SwapTable stored
// before releasing it.
func (f *Forwarder) acquire() *tableRef {
	for {
		r := f.table.Load()
		n := r.refs.Load()
		if n == 0 {
			if f.table.Load() == r {
				return nil // closed
			}
			continue
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return r
		}
	}
}

// release drops a reference; the last one closes the table on a goroutine
// of its own (it waits for the losing legs of the table's last races to
// wind down, which no client should wait for). Close waits for it.
func (f *Forwarder) release(r *tableRef) {
	if r.refs.Add(-1) != 0 {
		return
	}
	go func() {
		r.t.Close()
		f.tmu.Lock()
		delete(f.tables, r)
		f.tmu.Unlock()
		close(r.closed)
	}()
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	f.tmu.Lock()
	tables := len(f.tables)
	f.tmu.Unlock()
	var waiting int64
	if f.front != nil {
		waiting = f.front.Waiting()
	}
	return Stats{Malformed: f.malformed.Load(), Refused: f.refused.Load(),
		Overload: f.overload.Load(), Unrouted: f.unrouted.Load(), Tables: tables,
		InFlight: f.inflight.Load(), Waiting: waiting}
}

// route returns the group of t for the lower-cased wire name, or nil when
// the name is in the cluster domain and would fall to the root group: no
// group serves the cluster domain, and an external resolver must never
// answer (or even see) a cluster name.
func (f *Forwarder) route(t *upstream.Table, name []byte) *upstream.Group {
	g := t.LookupWire(name)
	if f.cluster != nil && g.Zone() == "." && inZone(name, f.cluster) {
		return nil
	}
	return g
}

// ClusterServed reports whether t has a group for the cluster domain
// (its own or one of a domain above it other than the root), that is
// whether cluster names are forwarded at all.
func ClusterServed(t *upstream.Table, clusterDomain string) bool {
	return t.Lookup(clusterDomain).Zone() != "."
}

// wireName returns the lower-cased, uncompressed wire form of a domain.
func wireName(domain string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(domain), buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// query is the parsed state of one request.
type query struct {
	q      cache.Query
	name   int    // length of the wire name
	zone   string // metrics label: routing zone
	answer bool   // prepare produced the final reply
}

// ServeFast answers what needs no upstream: malformed, refused and
// local-zone queries. Everything else returns ok false.
func (f *Forwarder) ServeFast(req *Request, dst []byte) ([]byte, bool) {
	var qs query
	reply := f.prepare(req, &qs, dst, true)
	if !qs.answer {
		return nil, false
	}
	f.observe(req, &qs, reply)
	return reply, true
}

// ServeDNS answers any query, racing the upstreams when needed.
func (f *Forwarder) ServeDNS(ctx context.Context, req *Request, dst []byte) []byte {
	var qs query
	// No hit lookup here: the listener tried ServeFast first, and the
	// cache front looks the entry up again before it races (a hit that
	// appeared meanwhile is answered there). A miss costs one lookup less.
	reply := f.prepare(req, &qs, dst, false)
	if !qs.answer {
		reply = f.forward(ctx, req, &qs, dst)
	}
	f.observe(req, &qs, reply)
	return reply
}

// prepare runs the non-blocking steps (1-7); step 5 only when hit is set.
// It sets qs.answer when reply is final.
func (f *Forwarder) prepare(req *Request, qs *query, dst []byte, hit bool) []byte {
	qs.answer = true
	err := qs.q.Parse(req.Msg)
	if errors.Is(err, cache.ErrUnsupported) {
		var reply []byte
		var ok bool
		if reply, ok = f.normalize(req, qs, dst); !ok {
			return reply
		}
	} else if err != nil {
		f.malformed.Add(1)
		return formErr(req.Msg, dst)
	}
	qs.name = len(qs.q.Name())
	if !f.allowed(req.Client.Addr()) {
		f.refused.Add(1)
		return appendError(dst, &qs.q, dns.RcodeRefused)
	}
	if qs.q.Opcode != dns.OpcodeQuery {
		return appendError(dst, &qs.q, dns.RcodeNotImplemented)
	}
	if inZone(qs.q.Key()[:qs.name], localWire) {
		qs.zone = zones.LocalOrigin
		return f.local(req, qs, dst)
	}

	// Cache seam: a cache hit is answered here, from the wire, before any
	// upstream work; a miss falls through to forward.
	if hit && f.front != nil && qs.q.Cacheable() {
		if reply, ok := f.front.Hit(&qs.q, dst, replyLimit(req, &qs.q)); ok {
			if f.o.Metrics != nil || f.o.LogQueries {
				qs.zone = f.Table().LookupWire(qs.q.Key()[:qs.name]).Zone()
			}
			return reply
		}
	}

	if f.cluster != nil && inZone(qs.q.Key()[:qs.name], f.cluster) && f.route(f.Table(), qs.q.Key()[:qs.name]) == nil {
		qs.zone = f.o.ClusterDomain
		f.unrouted.Add(1)
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	if f.inflight.Load() >= int64(f.o.MaxInFlight) {
		f.overload.Add(1)
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	qs.answer = false
	return nil
}

// forward runs steps 7-10.
func (f *Forwarder) forward(ctx context.Context, req *Request, qs *query, dst []byte) []byte {
	if f.inflight.Add(1) > int64(f.o.MaxInFlight) {
		f.inflight.Add(-1)
		f.overload.Add(1)
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	defer f.inflight.Add(-1)
	if f.front != nil && qs.q.Cacheable() {
		// The race itself runs in fetch, possibly shared with others, and
		// is bounded there by RaceTimeout: no timer of our own.
		if g := f.route(f.Table(), qs.q.Key()[:qs.name]); g != nil {
			qs.zone = g.Zone()
		} else {
			qs.zone = f.o.ClusterDomain
		}
		reply, err := f.front.Resolve(ctx, &qs.q, dst, replyLimit(req, &qs.q), req.TCP)
		if err != nil {
			return appendError(dst, &qs.q, dns.RcodeServerFailure)
		}
		return reply
	}
	ref := f.acquire()
	if ref == nil {
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	defer f.release(ref)
	ctx, cancel := context.WithTimeout(ctx, f.o.RaceTimeout)
	defer cancel()
	g := f.route(ref.t, qs.q.Key()[:qs.name])
	if g == nil { // the table was swapped since prepare
		qs.zone = f.o.ClusterDomain
		f.unrouted.Add(1)
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	qs.zone = g.Zone()
	// The upstream query is built in dst, which the reply then reuses.
	reply, from, err := g.RaceWire(ctx, qs.q.AppendQuery(dst), req.TCP)
	if err != nil {
		if f.o.LogQueries {
			f.o.Logger.Debug("upstream race failed", "zone", qs.zone, "client", req.Client, "err", err)
		}
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	limit := 65535
	if !req.TCP {
		limit = qs.q.UDPLimit()
	}
	if binary.BigEndian.Uint16(reply[2:])&(1<<9) != 0 {
		// Truncated upstream reply to a UDP client: the client retries
		// over TCP, where the race retries over TCP too.
		return appendTruncated(dst, &qs.q, reply)
	}
	resp, err := cache.ParseResponse(&qs.q, reply)
	if err != nil {
		f.o.Logger.Debug("unusable upstream reply", "upstream", from, "zone", qs.zone, "err", err)
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	return resp.AppendReply(dst, &qs.q, limit)
}

// fetch is the cache's upstream: one race in the group q routes to.
func (f *Forwarder) fetch(ctx context.Context, q *cache.Query, query []byte, tcp bool) ([]byte, error) {
	ref := f.acquire()
	if ref == nil {
		return nil, ErrClosed
	}
	defer f.release(ref)
	g := f.route(ref.t, q.Key()[:len(q.Name())])
	if g == nil { // a prefetch, or the table was swapped since prepare
		f.unrouted.Add(1)
		return nil, fmt.Errorf("proxy: no upstream group serves the cluster domain %s", f.o.ClusterDomain)
	}
	reply, _, err := g.RaceWire(ctx, query, tcp)
	return reply, err
}

// replyLimit is the largest reply the client takes.
func replyLimit(req *Request, q *cache.Query) int {
	if req.TCP {
		return 65535
	}
	return q.UDPLimit()
}

func (f *Forwarder) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.o.AllowNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// local answers from the local zone with dns.Msg: rare (health checks),
// so clarity beats speed.
func (f *Forwarder) local(req *Request, qs *query, dst []byte) []byte {
	qname, _, err := dns.UnpackDomainName(qs.q.Name(), 0)
	if err != nil {
		return appendError(dst, &qs.q, dns.RcodeFormatError)
	}
	res := f.o.Local.Lookup(qname, qs.q.Qtype)
	m := new(dns.Msg)
	m.Id = qs.q.ID
	m.Response = true
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = qs.q.RD
	m.RecursionAvailable = true
	m.CheckingDisabled = qs.q.CD
	m.Authoritative = res.Authoritative
	m.Rcode = res.Rcode
	m.Question = []dns.Question{{Name: qname, Qtype: qs.q.Qtype, Qclass: qs.q.Qclass}}
	m.Answer, m.Ns, m.Extra = res.Answer, res.Ns, res.Extra
	if qs.q.EDNS {
		m.SetEdns0(cache.MaxUDPSize, qs.q.DO)
	}
	if !req.TCP {
		m.Truncate(qs.q.UDPLimit())
	}
	m.Compress = true
	out, err := m.PackBuffer(dst[:cap(dst)])
	if err != nil {
		return appendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	return out
}

// normalize handles a well-formed query the wire parser does not take
// (several additional records such as TSIG, an OPT out of place, EDNS
// version above 0, other sections filled in): answered here when it must
// be refused, otherwise rewritten as a plain query and parsed again. It
// returns ok true when qs.q is ready for the normal path.
func (f *Forwarder) normalize(req *Request, qs *query, dst []byte) ([]byte, bool) {
	m := new(dns.Msg)
	if err := m.Unpack(req.Msg); err != nil {
		f.malformed.Add(1)
		return formErr(req.Msg, dst), false
	}
	if m.Response {
		return nil, false // never answer a response: that is how loops start
	}
	reply := new(dns.Msg)
	switch {
	case m.Opcode != dns.OpcodeQuery:
		reply.SetRcode(m, dns.RcodeNotImplemented)
	case len(m.Question) != 1:
		f.malformed.Add(1)
		reply.SetRcode(m, dns.RcodeFormatError)
	case m.IsEdns0() != nil && m.IsEdns0().Version() != 0:
		reply.SetRcode(m, dns.RcodeBadVers)
		reply.SetEdns0(cache.MaxUDPSize, m.IsEdns0().Do())
	default:
		n := new(dns.Msg)
		n.Id, n.RecursionDesired, n.CheckingDisabled, n.AuthenticatedData = m.Id, m.RecursionDesired, m.CheckingDisabled, m.AuthenticatedData
		n.Question = m.Question
		if opt := m.IsEdns0(); opt != nil {
			n.SetEdns0(opt.UDPSize(), opt.Do())
		}
		wire, err := n.Pack()
		if err == nil && qs.q.Parse(wire) == nil {
			return nil, true
		}
		f.malformed.Add(1)
		reply.SetRcode(m, dns.RcodeFormatError)
	}
	if !f.allowed(req.Client.Addr()) {
		f.refused.Add(1)
		reply.Rcode = dns.RcodeRefused
	}
	out, err := reply.PackBuffer(dst[:cap(dst)])
	if err != nil {
		return nil, false
	}
	return out, false
}

func (f *Forwarder) observe(req *Request, qs *query, reply []byte) {
	if f.o.Metrics == nil && !f.o.LogQueries {
		return
	}
	rcode := -1
	if len(reply) >= 4 {
		rcode = int(reply[3] & 0xF)
	}
	proto := metrics.UDP
	if req.TCP {
		proto = metrics.TCP
	}
	d := time.Since(req.Received)
	f.o.Metrics.ObserveQuery(metrics.Query{Zone: qs.zone, Qtype: qs.q.Qtype, Proto: proto, Rcode: rcode, Duration: d})
	if f.o.LogQueries {
		f.o.Logger.Debug("query", "client", req.Client, "tcp", req.TCP, "qtype", dns.Type(qs.q.Qtype),
			"zone", qs.zone, "rcode", rcode, "duration", d)
	}
}

// localWire is "spartan." in wire format.
var localWire = []byte("\x07spartan\x00")

// inZone reports whether the lower-cased wire name is zone or below it.
func inZone(name, zone []byte) bool {
	if len(name) < len(zone) || string(name[len(name)-len(zone):]) != string(zone) {
		return false
	}
	// The suffix must start at a label boundary.
	for off := 0; off < len(name); off += 1 + int(name[off]) {
		if off == len(name)-len(zone) {
			return true
		}
		if name[off] == 0 {
			break
		}
	}
	return false
}

// Wire-format flags.
const (
	flagQR = 1 << 15
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagCD = 1 << 4
	flagTC = 1 << 9
)

// appendHeader appends the reply header for q with rcode and the given
// section counts.
func appendHeader(dst []byte, q *cache.Query, rcode int, extra uint16) []byte {
	flags := uint16(flagQR|flagRA) | uint16(q.Opcode)<<11 | uint16(rcode&0xF)
	if q.RD {
		flags |= flagRD
	}
	if q.CD {
		flags |= flagCD
	}
	return append(dst[:0], byte(q.ID>>8), byte(q.ID), byte(flags>>8), byte(flags),
		0, 1, 0, 0, 0, 0, byte(extra>>8), byte(extra))
}

// appendQuestionOPT appends q's question, with the client's casing, and
// our OPT record when the client sent one.
func appendQuestionOPT(dst []byte, q *cache.Query) []byte {
	name := q.Name()
	dst = append(dst, name...)
	dst = append(dst, q.Key()[len(name):len(name)+4]...)
	if q.EDNS {
		var do byte
		if q.DO {
			do = 0x80
		}
		dst = append(dst, 0, 0, 41, byte(cache.MaxUDPSize>>8), byte(cache.MaxUDPSize&0xFF), 0, 0, do, 0, 0, 0)
	}
	return dst
}

func ednsCount(q *cache.Query) uint16 {
	if q.EDNS {
		return 1
	}
	return 0
}

// appendError appends a reply to q with rcode and no records.
func appendError(dst []byte, q *cache.Query, rcode int) []byte {
	dst = appendHeader(dst, q, rcode, ednsCount(q))
	return appendQuestionOPT(dst, q)
}

// appendTruncated appends an empty TC reply to q carrying upstream's rcode
// and AA bit.
func appendTruncated(dst []byte, q *cache.Query, upstream []byte) []byte {
	dst = appendHeader(dst, q, int(upstream[3]&0xF), ednsCount(q))
	dst[2] |= byte(flagTC>>8) | upstream[2]&0x04 // TC, AA
	return appendQuestionOPT(dst, q)
}

// formErr appends FORMERR for an unparseable message when its header is
// readable and it is not itself a response; otherwise it returns nil (no
// reply).
func formErr(msg, dst []byte) []byte {
	if len(msg) < 12 || msg[2]&0x80 != 0 {
		return nil
	}
	opcode := msg[2] & 0x78
	rd := msg[2] & 0x01
	return append(dst[:0], msg[0], msg[1], 0x80|opcode|rd, flagRA|dns.RcodeFormatError, 0, 0, 0, 0, 0, 0, 0, 0)
}
