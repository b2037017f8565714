package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/upstream"
	"github.com/spartan-dns/spartan/internal/zones"
)

// The query path, in order:
//
//  1. parse the query from the wire (dnswire.Query: no dns.Msg, no
//     allocation); odd but valid queries are normalized through dns.Msg
//     first, malformed ones are counted and get FORMERR when the header is
//     readable (nothing otherwise; with the question and an OPT record
//     when the query's OPT record is at fault), responses are dropped;
//  2. client ACL: a client outside AllowNets gets REFUSED;
//  3. opcode other than QUERY: NOTIMP;
//  4. the local zone "spartan." and the node's own name
//     (thisnode.thisdcos.directory, thisnode.thisdcos.global) are
//     answered here, whatever the upstreams do;
//  5. [cache seam: a hit is answered here, a miss goes on];
//  6. a name in the cluster domain or a DC/OS domain (thisdcos.directory,
//     thisdcos.global) that no group serves (it would fall to the root
//     group) gets SERVFAIL here: external resolvers never see them;
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

// route returns the group of t for the lower-cased wire name, or nil when
// the name is in the cluster domain or a DC/OS domain and would fall to
// the root group: no group serves that domain, and an external resolver
// must never answer (or even see) such a name.
func (f *Forwarder) route(t *upstream.Table, name []byte) *upstream.Group {
	g := t.LookupWire(name)
	if g.Zone() == "." && f.masterZone(name) != "" {
		return nil
	}
	return g
}

// masterZone returns the domain only the masters serve that the
// lower-cased wire name is in, or "".
func (f *Forwarder) masterZone(name []byte) string {
	for _, z := range f.masters {
		if dnswire.InZone(name, z.wire) {
			return z.name
		}
	}
	return ""
}

// isThisNode reports whether the lower-cased wire name is one of the
// node's own names.
func (f *Forwarder) isThisNode(name []byte) bool {
	for _, n := range f.thisNode {
		if string(name) == string(n) {
			return true
		}
	}
	return false
}

// ClusterServed reports whether t has a group for the cluster domain
// (its own or one of a domain above it other than the root), that is
// whether cluster names are forwarded at all.
func ClusterServed(t *upstream.Table, clusterDomain string) bool {
	return t.Lookup(clusterDomain).Zone() != "."
}

// query is the parsed state of one request.
type query struct {
	q      dnswire.Query
	name   int    // length of the wire name
	zone   string // metrics label: routing zone
	answer bool   // prepare produced the final reply
}

// ServeFast answers what needs no upstream: malformed, refused and
// local-zone queries. Everything else returns ok false.
func (f *Forwarder) ServeFast(req *server.Request, dst []byte) ([]byte, bool) {
	var qs query
	reply := f.prepare(req, &qs, dst, true)
	if !qs.answer {
		return nil, false
	}
	f.observe(req, &qs, reply)
	return reply, true
}

// queryPool recycles ServeDNS's parsed questions. A miss hands its question
// to the cache front's shared race (singleflight), so it cannot live on
// the stack; without the pool every miss would allocate one (over 600
// bytes, the largest allocation of a miss, which sets how often the
// collector runs at the rates a node sees). Nothing keeps a reference
// once ServeDNS returns: the front copies a question whose race outlives
// its caller.
var queryPool = sync.Pool{New: func() any { return new(query) }}

// ServeDNS answers any query, racing the upstreams when needed.
func (f *Forwarder) ServeDNS(ctx context.Context, req *server.Request, dst []byte) []byte {
	qs := queryPool.Get().(*query)
	*qs = query{}
	defer queryPool.Put(qs)
	// No hit lookup here: the listener tried ServeFast first, and the
	// cache front looks the entry up again before it races (a hit that
	// appeared meanwhile is answered there). A miss costs one lookup less.
	reply := f.prepare(req, qs, dst, false)
	if !qs.answer {
		reply = f.forward(ctx, req, qs, dst)
	}
	f.observe(req, qs, reply)
	return reply
}

// prepare runs the non-blocking steps (1-7); step 5 only when hit is set.
// It sets qs.answer when reply is final.
func (f *Forwarder) prepare(req *server.Request, qs *query, dst []byte, hit bool) []byte {
	qs.answer = true
	switch err := qs.q.Parse(req.Msg); {
	case err == nil:
	case errors.Is(err, dnswire.ErrUnsupported):
		var reply []byte
		var ok bool
		if reply, ok = f.normalize(req, qs, dst); !ok {
			return reply
		}
	case errors.Is(err, dnswire.ErrBadOPT):
		// Two OPT records, one out of place or with a non-root owner, or
		// options that do not fit (RFC 6891 6.1.1): FORMERR, with the
		// question and an OPT record (RFC 6891 7), before any other work.
		f.malformed.Add(1)
		return dnswire.AppendError(dst, &qs.q, dns.RcodeFormatError)
	default:
		f.malformed.Add(1)
		return dnswire.AppendFormErr(dst, req.Msg, true)
	}
	qs.name = len(qs.q.Name())
	if !f.allowed(req.Client.Addr()) {
		f.refused.Add(1)
		return dnswire.AppendError(dst, &qs.q, dns.RcodeRefused)
	}
	if qs.q.Opcode != dns.OpcodeQuery {
		return dnswire.AppendError(dst, &qs.q, dns.RcodeNotImplemented)
	}
	if dnswire.InZone(qs.q.Key()[:qs.name], localWire) {
		qs.zone = zones.LocalOrigin
		return f.local(req, qs, dst, nil)
	}
	if f.isThisNode(qs.q.Key()[:qs.name]) {
		qs.zone = zones.LocalOrigin
		return f.local(req, qs, dst, f.thisNodeResult)
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

	if z := f.masterZone(qs.q.Key()[:qs.name]); z != "" && f.Table().LookupWire(qs.q.Key()[:qs.name]).Zone() == "." {
		qs.zone = z
		f.unrouted.Add(1)
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	if f.inflight.Load() >= int64(f.o.MaxInFlight) {
		f.overload.Add(1)
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	qs.answer = false
	return nil
}

// forward runs steps 7-10.
func (f *Forwarder) forward(ctx context.Context, req *server.Request, qs *query, dst []byte) []byte {
	if f.inflight.Add(1) > int64(f.o.MaxInFlight) {
		f.inflight.Add(-1)
		f.overload.Add(1)
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	defer f.inflight.Add(-1)
	if f.front != nil && qs.q.Cacheable() {
		// The race itself runs in fetch, possibly shared with others, and
		// is bounded there by RaceTimeout: no timer of our own.
		if g := f.route(f.Table(), qs.q.Key()[:qs.name]); g != nil {
			qs.zone = g.Zone()
		} else {
			qs.zone = f.masterZone(qs.q.Key()[:qs.name])
		}
		reply, err := f.front.Resolve(ctx, &qs.q, dst, replyLimit(req, &qs.q), req.TCP)
		if err != nil {
			return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
		}
		return reply
	}
	ref := f.acquire()
	if ref == nil {
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	defer f.release(ref)
	ctx, cancel := context.WithTimeout(ctx, f.o.RaceTimeout)
	defer cancel()
	g := f.route(ref.t, qs.q.Key()[:qs.name])
	if g == nil { // the table was swapped since prepare
		qs.zone = f.masterZone(qs.q.Key()[:qs.name])
		f.unrouted.Add(1)
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	qs.zone = g.Zone()
	// The upstream query is built in dst, which the reply then reuses.
	reply, from, err := g.RaceWire(ctx, qs.q.AppendQuery(dst), req.TCP)
	if err != nil {
		if f.o.LogQueries {
			f.o.Logger.Debug("upstream race failed", "zone", qs.zone, "client", req.Client, "err", err)
		}
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	limit := 65535
	if !req.TCP {
		limit = qs.q.UDPLimit()
	}
	if binary.BigEndian.Uint16(reply[2:])&(1<<9) != 0 {
		// Truncated upstream reply to a UDP client: the client retries
		// over TCP, where the race retries over TCP too.
		return dnswire.AppendTruncated(dst, &qs.q, reply)
	}
	resp, err := dnswire.ParseResponse(&qs.q, reply)
	if err != nil {
		f.o.Logger.Debug("unusable upstream reply", "upstream", from, "zone", qs.zone, "err", err)
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	return resp.AppendReply(dst, &qs.q, limit)
}

// fetch is the cache's upstream: one race in the group q routes to.
func (f *Forwarder) fetch(ctx context.Context, q *dnswire.Query, query []byte, tcp bool) ([]byte, error) {
	ref := f.acquire()
	if ref == nil {
		return nil, ErrClosed
	}
	defer f.release(ref)
	g := f.route(ref.t, q.Key()[:len(q.Name())])
	if g == nil { // a prefetch, or the table was swapped since prepare
		f.unrouted.Add(1)
		return nil, fmt.Errorf("proxy: no upstream group serves the domain %s", f.masterZone(q.Key()[:len(q.Name())]))
	}
	reply, _, err := g.RaceWire(ctx, query, tcp)
	return reply, err
}

// replyLimit is the largest reply the client takes.
func replyLimit(req *server.Request, q *dnswire.Query) int {
	if req.TCP {
		return 65535
	}
	return q.UDPLimit()
}

// allowed reports whether the client at a is served. A link-local IPv6
// client's address carries its zone (the interface), which no prefix
// contains: it is compared without.
func (f *Forwarder) allowed(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range f.o.AllowNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (f *Forwarder) observe(req *server.Request, qs *query, reply []byte) {
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
