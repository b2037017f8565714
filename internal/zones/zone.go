// Package zones holds the zones spartan answers authoritatively: an
// immutable, lock-free Zone store with RFC-correct negative answers, the
// node-local "spartan." zone, and the Authority that serves a set of zones.
// The Mesos record generator that fills the cluster zone lives in
// internal/zones/mesos.
package zones

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// SOA holds the fields of a zone's SOA record.
type SOA struct {
	// Mname is the primary name server, Rname the responsible mailbox,
	// both as domain names.
	Mname, Rname string
	// Refresh, Retry, Expire and Minttl are the SOA timers in seconds;
	// Minttl is also the negative-caching TTL (RFC 2308).
	Refresh, Retry, Expire, Minttl uint32
	// TTL is the TTL of the SOA and NS records themselves.
	TTL uint32
}

// Result is the outcome of a lookup: the sections of an authoritative reply.
// The records are shared with the zone and must not be modified.
type Result struct {
	// Rcode is dns.RcodeSuccess (with or without answers),
	// dns.RcodeNameError, or dns.RcodeRefused for a name outside the zone.
	Rcode int
	// Answer, Ns and Extra are the answer, authority and additional
	// sections.
	Answer, Ns, Extra []dns.RR
	// Authoritative is set for every answer from inside the zone.
	Authoritative bool
}

// node holds the records of one owner name, by type. Most names carry one
// type, so the first rrset lives in the node itself; a big zone has
// hundreds of thousands of names, allocated in blocks.
type node struct {
	name  string
	first rrset
	more  *[]rrset
}

// rrset holds the records of one type at one name. A, AAAA and SRV records
// -- all a generated zone has -- are kept compact in data, a third of the
// size of dns.RR values, and turned into dns.RR values the first time the
// rrset is asked for; those are cached in rrs, so answering costs the same
// from then on and memory only grows for the names actually queried.
// Records of other types (SOA, NS, anything given to Add) are kept as given
// in rrs from the start.
type rrset struct {
	rrtype uint16
	data   []rdata
	rrs    atomic.Pointer[[]dns.RR]
}

// rdata is the data of an A, AAAA or SRV record.
type rdata struct {
	// s is an SRV target, or the 16 bytes of an AAAA address.
	s   string
	ttl uint32
	// v4 is an A address.
	v4                 [4]byte
	port, prio, weight uint16
}

// compact reports whether records of type t are kept as rdata.
func compact(t uint16) bool {
	return t == dns.TypeA || t == dns.TypeAAAA || t == dns.TypeSRV
}

// find returns the rrset of type t, or nil.
func (n *node) find(t uint16) *rrset {
	if n.first.rrtype == t {
		return &n.first
	}
	if n.more != nil {
		sets := *n.more
		for i := range sets {
			if sets[i].rrtype == t {
				return &sets[i]
			}
		}
	}
	return nil
}

// set returns the rrset of type t, adding it when missing. Only for
// building: adding may move the rrsets after the first.
func (n *node) set(t uint16) *rrset {
	if s := n.find(t); s != nil {
		return s
	}
	if n.first.rrtype == 0 {
		n.first.rrtype = t
		return &n.first
	}
	if n.more == nil {
		n.more = new([]rrset)
	}
	*n.more = append(*n.more, rrset{rrtype: t})
	return &(*n.more)[len(*n.more)-1]
}

// each calls fn for every rrset of the node.
func (n *node) each(fn func(*rrset)) {
	if n.first.rrtype != 0 {
		fn(&n.first)
	}
	if n.more != nil {
		sets := *n.more
		for i := range sets {
			fn(&sets[i])
		}
	}
}

// get returns the records of type t at the node, as dns.RR values shared
// by every lookup.
func (n *node) get(t uint16) []dns.RR {
	if s := n.find(t); s != nil {
		return s.records(n.name)
	}
	return nil
}

// records returns the rrset's records, building and caching the dns.RR
// form of compact ones on first use. Concurrent first uses may each build
// it; one copy wins and the others are dropped.
func (s *rrset) records(name string) []dns.RR {
	if p := s.rrs.Load(); p != nil {
		return *p
	}
	out := s.build(name)
	if !s.rrs.CompareAndSwap(nil, &out) {
		return *s.rrs.Load()
	}
	return out
}

// build returns the dns.RR form of the compact records, without caching
// it. Records of one type come from one allocation.
func (s *rrset) build(name string) []dns.RR {
	if len(s.data) == 0 {
		if p := s.rrs.Load(); p != nil {
			return *p
		}
		return nil
	}
	out := make([]dns.RR, len(s.data))
	hdr := dns.RR_Header{Name: name, Rrtype: s.rrtype, Class: dns.ClassINET}
	switch s.rrtype {
	case dns.TypeA:
		as := make([]dns.A, len(s.data))
		for i := range s.data {
			d := &s.data[i]
			hdr.Ttl = d.ttl
			// The address bytes are the zone's own: records must not be
			// modified.
			as[i] = dns.A{Hdr: hdr, A: net.IP(d.v4[:])}
			out[i] = &as[i]
		}
	case dns.TypeAAAA:
		as := make([]dns.AAAA, len(s.data))
		for i := range s.data {
			d := &s.data[i]
			hdr.Ttl = d.ttl
			as[i] = dns.AAAA{Hdr: hdr, AAAA: net.IP(d.s)}
			out[i] = &as[i]
		}
	case dns.TypeSRV:
		ss := make([]dns.SRV, len(s.data))
		for i := range s.data {
			d := &s.data[i]
			hdr.Ttl = d.ttl
			ss[i] = dns.SRV{Hdr: hdr, Priority: d.prio, Weight: d.weight, Port: d.port, Target: d.s}
			out[i] = &ss[i]
		}
	}
	return out
}

// Zone is an immutable authoritative zone. It is safe for concurrent use; a
// new record set is a new Zone, swapped in whole through a Store.
type Zone struct {
	origin string
	serial uint32
	soa    *dns.SOA
	// negSOA is the SOA as it goes into negative answers: its TTL is the
	// negative-caching TTL, min(SOA TTL, MINIMUM), per RFC 2308 section 3.
	negSOA *dns.SOA
	names  map[string]*node
	// ents holds the empty non-terminals: names with nothing of their own
	// but something below them, which exist (NODATA, not NXDOMAIN).
	ents  map[string]struct{}
	count int
	hash  uint64
}

// Builder collects the records of a zone. Values are sets: adding a record
// equal to one already present (ignoring TTL) does nothing. The zone is of
// class IN.
//
// Besides Add, which takes any record, AddAddr and AddSRV take the data of
// the two record types generated zones are made of and owner names as
// bytes: a name already in the zone costs no allocation. A zone of a
// million records builds several times faster that way.
type Builder struct {
	origin string
	suffix string // "." + origin, to test names cheaply
	soa    SOA
	names  map[string]*node
	// big indexes the data of rrsets too large to scan for duplicates.
	big   map[bigKey]struct{}
	count int
	hash  uint64
	// ents holds the empty non-terminals found so far (see Zone.ents);
	// known is the last ancestor found to exist, as a name or in ents.
	ents  map[string]struct{}
	known string
	// nodes and datas are the blocks new nodes and rrsets' records are
	// taken from.
	nodes []node
	datas []rdata
	// recent holds the last owners looked up by name: a generator adds
	// several records to each name in a row, and this spares it as many
	// lookups in a table too large for the CPU caches.
	recent [8]*node
	next   int
	// lower holds a lower-cased owner name.
	lower []byte
}

// bigKey identifies a record's data within one rrset: compact records by
// their data (TTL zero), others by their text in d.s.
type bigKey struct {
	node   *node
	rrtype uint16
	d      rdata
}

// scanLimit is the rrset size up to which duplicates are found by
// comparing records; larger rrsets are indexed in Builder.big.
const scanLimit = 16

// nodeBlock and dataBlock are the numbers of nodes and of records
// allocated at once.
const (
	nodeBlock = 1024
	dataBlock = 4096
)

// NewBuilder starts a zone at origin with the given SOA and NS names. The
// SOA and NS records are part of every zone it builds.
func NewBuilder(origin string, soa SOA, ns []string) *Builder {
	origin = dns.CanonicalName(origin)
	b := &Builder{
		origin: origin,
		suffix: "." + origin,
		soa:    soa,
		names:  make(map[string]*node),
		big:    make(map[bigKey]struct{}),
		ents:   make(map[string]struct{}),
	}
	if origin == "." {
		b.suffix = "."
	}
	for _, n := range ns {
		b.Add(&dns.NS{
			Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: soa.TTL},
			Ns:  dns.CanonicalName(n),
		})
	}
	return b
}

// Origin returns the zone's origin.
func (b *Builder) Origin() string { return b.origin }

// Grow makes room for about names more owner names, so that a large zone
// is not rehashed again and again as it fills.
func (b *Builder) Grow(names int) {
	if names <= 0 {
		return
	}
	m := make(map[string]*node, len(b.names)+names)
	for k, v := range b.names {
		m[k] = v
	}
	b.names = m
}

// inZone reports whether the canonical name is the origin or below it.
func (b *Builder) inZone(name string) bool {
	return name == b.origin || strings.HasSuffix(name, b.suffix)
}

// newNode adds the node of a canonical name known to be in the zone.
func (b *Builder) newNode(name string) *node {
	if len(b.nodes) == cap(b.nodes) {
		b.nodes = make([]node, 0, nodeBlock)
	}
	b.nodes = append(b.nodes, node{name: name})
	n := &b.nodes[len(b.nodes)-1]
	b.names[name] = n
	b.remember(n)
	// Every ancestor up to the origin without records of its own is an
	// empty non-terminal. The walk stops at an ancestor with records or
	// one already known empty: its own walk covered the rest. It is done
	// here, while the name is at hand, rather than over the whole table
	// in Build.
	if _, ok := b.ents[name]; ok {
		delete(b.ents, name)
	}
	for p := parent(name); p != "" && len(p) > len(b.origin); p = parent(p) {
		// Names come in runs under one parent: the last one found is
		// checked before the tables.
		if p == b.known {
			break
		}
		if _, ok := b.names[p]; ok {
			b.known = p
			break
		}
		if _, ok := b.ents[p]; ok {
			b.known = p
			break
		}
		b.ents[p] = struct{}{}
	}
	return n
}

// remember puts n in the recent owners.
func (b *Builder) remember(n *node) {
	b.recent[b.next] = n
	b.next = (b.next + 1) % len(b.recent)
}

// lookup finds the node of a canonical name, recent owners first.
func (b *Builder) lookup(name []byte) *node {
	for _, n := range b.recent {
		if n != nil && len(n.name) == len(name) && n.name == string(name) {
			return n
		}
	}
	n := b.names[string(name)]
	if n != nil {
		b.remember(n)
	}
	return n
}

// Add adds rr to the zone unless an equal record is already there. Owner
// names are stored lower-cased. Records outside the origin, of a class
// other than IN, and A or AAAA records without a valid address are
// ignored and reported as false.
func (b *Builder) Add(rr dns.RR) bool {
	h := rr.Header()
	h.Name = canonical(h.Name)
	if h.Class == 0 {
		h.Class = dns.ClassINET
	}
	if h.Class != dns.ClassINET {
		return false
	}
	var d rdata
	switch r := rr.(type) {
	case *dns.A:
		ip := r.A.To4()
		if ip == nil {
			return false
		}
		d.v4 = [4]byte(ip)
	case *dns.AAAA:
		if len(r.AAAA) != net.IPv6len {
			return false
		}
		d.s = string(r.AAAA)
	case *dns.SRV:
		d.s, d.port, d.prio, d.weight = canonical(r.Target), r.Port, r.Priority, r.Weight
	}
	n := b.ownerString(h.Name)
	if n == nil {
		return false
	}
	if compact(h.Rrtype) {
		d.ttl = h.Ttl
		b.addData(n, h.Rrtype, d)
		return true
	}
	h.Name = n.name // one copy of the name for the node and its records
	set := n.set(h.Rrtype)
	p := set.rrs.Load()
	if p == nil {
		p = new([]dns.RR)
		set.rrs.Store(p)
	}
	key := dataKey(rr)
	if len(*p) < scanLimit {
		for _, old := range *p {
			if dataKey(old) == key {
				return true
			}
		}
	} else if b.bigDup(n, set, *p, bigKey{rrtype: h.Rrtype, d: rdata{s: key}}) {
		return true
	}
	*p = append(*p, rr)
	b.count++
	b.hash += mix(maphash.String(hashSeed, n.name)^uint64(h.Rrtype), maphash.String(hashSeed, key))
	return true
}

// addData adds a compact record unless its data is already there.
func (b *Builder) addData(n *node, rrtype uint16, d rdata) {
	set := n.set(rrtype)
	key := d
	key.ttl = 0
	if len(set.data) < scanLimit {
		for i := range set.data {
			old := set.data[i]
			old.ttl = 0
			if old == key {
				return
			}
		}
	} else if b.bigDup(n, set, nil, bigKey{rrtype: rrtype, d: key}) {
		return
	}
	if set.data == nil {
		// Most rrsets hold one or two records: their first two slots
		// come from a block rather than an allocation each.
		if cap(b.datas)-len(b.datas) < 2 {
			b.datas = make([]rdata, 0, dataBlock)
		}
		i := len(b.datas)
		b.datas = b.datas[:i+2]
		set.data = b.datas[i : i : i+2]
	}
	set.data = append(set.data, d)
	b.count++
	// An order-independent sum of per-record hashes: the same set gives the
	// same hash however it was added.
	h := mix(maphash.String(hashSeed, n.name)^uint64(rrtype), maphash.String(hashSeed, key.s))
	b.hash += mix(h, uint64(binary.BigEndian.Uint32(key.v4[:]))<<32^
		uint64(key.port)<<32^uint64(key.prio)<<16^uint64(key.weight))
}

// bigDup reports whether an rrset too large to scan holds a record with
// key k, indexing it otherwise. others are the rrset's records of a type
// not kept compact.
func (b *Builder) bigDup(n *node, set *rrset, others []dns.RR, k bigKey) bool {
	if len(set.data) == scanLimit || len(others) == scanLimit {
		for _, d := range set.data {
			d.ttl = 0
			b.big[bigKey{n, set.rrtype, d}] = struct{}{}
		}
		for _, old := range others {
			b.big[bigKey{n, set.rrtype, rdata{s: dataKey(old)}}] = struct{}{}
		}
	}
	k.node = n
	if _, dup := b.big[k]; dup {
		return true
	}
	b.big[k] = struct{}{}
	return false
}

// owner returns the node of the owner name given as bytes, creating it;
// nil when the name is outside the zone.
func (b *Builder) owner(name []byte) *node {
	if n := b.lookup(name); n != nil {
		return n
	}
	// Names are matched lower-case and fully qualified.
	if len(name) == 0 || name[len(name)-1] != '.' {
		return b.ownerString(string(name))
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			b.lower = append(b.lower[:0], name...)
			for j := i; j < len(b.lower); j++ {
				if c := b.lower[j]; c >= 'A' && c <= 'Z' {
					b.lower[j] = c + 'a' - 'A'
				}
			}
			name = b.lower
			if n := b.lookup(name); n != nil {
				return n
			}
			break
		} else if c >= utf8.RuneSelf {
			return b.ownerString(string(name))
		}
	}
	s := string(name)
	if !b.inZone(s) {
		return nil
	}
	return b.newNode(s)
}

func (b *Builder) ownerString(name string) *node {
	name = canonical(name)
	if n := b.names[name]; n != nil {
		return n
	}
	if !b.inZone(name) {
		return nil
	}
	return b.newNode(name)
}

// Name returns name (lower-cased) as a string, shared with the zone's
// owner name when there is one: SRV targets given this way cost no extra
// copy of the name.
func (b *Builder) Name(name []byte) string {
	if n := b.lookup(name); n != nil {
		return n.name
	}
	return canonical(string(name))
}

// AddAddr adds an A record for an IPv4 ip, or an AAAA record, at name,
// like Add. An IPv4-mapped IPv6 address is an AAAA record, as it would be
// from netip.Addr.AsSlice.
func (b *Builder) AddAddr(name []byte, ip netip.Addr, ttl uint32) bool {
	if !ip.IsValid() {
		return false
	}
	n := b.owner(name)
	if n == nil {
		return false
	}
	if ip.Is4() {
		b.addData(n, dns.TypeA, rdata{ttl: ttl, v4: ip.As4()})
	} else {
		a := ip.As16()
		b.addData(n, dns.TypeAAAA, rdata{ttl: ttl, s: string(a[:])})
	}
	return true
}

// AddSRV adds an SRV record at name, like Add.
func (b *Builder) AddSRV(name []byte, target string, port, priority, weight uint16, ttl uint32) bool {
	n := b.owner(name)
	if n == nil {
		return false
	}
	b.addData(n, dns.TypeSRV, rdata{s: canonical(target), ttl: ttl, port: port, prio: priority, weight: weight})
	return true
}

// dataKey is a record's data as a string, for comparing records of types
// not kept compact: the presentation form without the header.
func dataKey(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// canonical is dns.CanonicalName with a fast path for names that already
// are: generated zones add a million of them.
func canonical(name string) string {
	if n := len(name); n > 0 && name[n-1] == '.' {
		i := 0
		for ; i < n; i++ {
			if c := name[i]; c >= 'A' && c <= 'Z' {
				break
			}
		}
		if i == n {
			return name
		}
	}
	return dns.CanonicalName(name)
}

// hashSeed seeds the record hashes behind Zone.Hash: one per process, so
// zones built in it compare, which is all the hash is for.
var hashSeed = maphash.MakeSeed()

// mix combines two 64-bit hashes (the finalizer of SplitMix64 over their
// sum, with the first rotated so the order matters).
func mix(a, b uint64) uint64 {
	h := bits.RotateLeft64(a, 31) + b
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// Build returns the zone with the given serial. The builder must not be used
// afterwards.
func (b *Builder) Build(serial uint32) *Zone {
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: b.origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: b.soa.TTL},
		Ns:      dns.CanonicalName(dns.Fqdn(b.soa.Mname)),
		Mbox:    dns.CanonicalName(dns.Fqdn(b.soa.Rname)),
		Serial:  serial,
		Refresh: b.soa.Refresh,
		Retry:   b.soa.Retry,
		Expire:  b.soa.Expire,
		Minttl:  b.soa.Minttl,
	}
	neg := dns.Copy(soa).(*dns.SOA)
	neg.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)

	n := b.names[b.origin]
	if n == nil {
		n = b.newNode(b.origin)
	}
	n.set(dns.TypeSOA).rrs.Store(&[]dns.RR{soa})

	z := &Zone{
		origin: b.origin,
		serial: serial,
		soa:    soa,
		negSOA: neg,
		names:  b.names,
		ents:   b.ents,
		count:  b.count + 1,
		hash:   b.hash,
	}
	b.names, b.big, b.ents, b.nodes, b.datas, b.recent = nil, nil, nil, nil, nil, [8]*node{}
	return z
}

// parent returns the name with its first label removed, or "" at the root.
func parent(name string) string {
	if strings.IndexByte(name, '\\') < 0 {
		// No escaped dots: the first '.' ends the first label.
		if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
			return name[i+1:]
		}
		return ""
	}
	off, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[off:]
}

// Origin returns the zone's origin, lower-case and fully qualified.
func (z *Zone) Origin() string { return z.origin }

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 { return z.serial }

// SOA returns the zone's SOA record. It must not be modified.
func (z *Zone) SOA() *dns.SOA { return z.soa }

// Len returns the number of records in the zone, SOA and NS included.
func (z *Zone) Len() int { return z.count }

// Hash returns a hash of the zone's record set, SOA excluded: two zones with
// equal hashes hold the same records, whatever their serials.
func (z *Zone) Hash() uint64 { return z.hash }

// Records returns every record of the zone, SOA first. They must not be
// modified. Records not yet asked for are built for the call and not
// kept, so listing a zone does not grow it.
func (z *Zone) Records() []dns.RR {
	out := make([]dns.RR, 0, z.count)
	out = append(out, z.soa)
	for _, n := range z.names {
		n.each(func(s *rrset) {
			if s.rrtype == dns.TypeSOA {
				return
			}
			if p := s.rrs.Load(); p != nil {
				out = append(out, *p...)
			} else {
				out = append(out, s.build(n.name)...)
			}
		})
	}
	return out
}

// Lookup answers qtype for qname from the zone. Names match
// case-insensitively. NXDOMAIN is only for names with nothing at or below
// them; an existing name without the type, or an empty non-terminal, gets
// NODATA; both carry the SOA in authority. Answers with several records
// come in random order, for crude load balancing as Mesos-DNS does.
func (z *Zone) Lookup(qname string, qtype uint16) Result {
	name := canonical(qname)
	if !dns.IsSubDomain(z.origin, name) {
		return Result{Rcode: dns.RcodeRefused}
	}
	res := Result{Rcode: dns.RcodeSuccess, Authoritative: true}
	n := z.names[name]
	if n == nil {
		if _, ok := z.ents[name]; !ok {
			res.Rcode = dns.RcodeNameError
		}
		res.Ns = []dns.RR{z.negSOA}
		return res
	}
	if qtype == dns.TypeANY {
		n.each(func(s *rrset) { res.Answer = append(res.Answer, s.records(n.name)...) })
	} else if rrs := n.get(qtype); len(rrs) > 0 {
		res.Answer = shuffled(rrs)
	}
	if len(res.Answer) == 0 {
		res.Ns = []dns.RR{z.negSOA}
		return res
	}
	// Each target's addresses go in once, however many records name it
	// (several ports of one task share a target).
	var seen map[string]bool
	for _, rr := range res.Answer {
		var target string
		switch r := rr.(type) {
		case *dns.SRV:
			target = canonical(r.Target)
		case *dns.NS:
			target = canonical(r.Ns)
		default:
			continue
		}
		if seen[target] {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(res.Answer))
		}
		seen[target] = true
		res.Extra = z.appendAddresses(res.Extra, target)
	}
	return res
}

// appendAddresses appends the in-zone A and AAAA records of the canonical
// name.
func (z *Zone) appendAddresses(out []dns.RR, name string) []dns.RR {
	n := z.names[name]
	if n == nil {
		return out
	}
	out = append(out, n.get(dns.TypeA)...)
	return append(out, n.get(dns.TypeAAAA)...)
}

func shuffled(rrs []dns.RR) []dns.RR {
	out := append([]dns.RR(nil), rrs...)
	if len(out) > 1 {
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

// Store holds the current version of a zone and swaps it atomically:
// readers see either the old or the new zone, never a half-built one.
type Store struct {
	p       atomic.Pointer[Zone]
	version atomic.Uint64
}

// NewStore returns a store holding z.
func NewStore(z *Zone) *Store {
	s := &Store{}
	s.p.Store(z)
	return s
}

// Load returns the current zone; nil until one is stored.
func (s *Store) Load() *Zone { return s.p.Load() }

// Swap stores z and returns the zone it replaces.
func (s *Store) Swap(z *Zone) *Zone {
	old := s.p.Swap(z)
	s.version.Add(1)
	return old
}

// Version counts the swaps so far. It is bumped after the new zone is in
// place, so a reply built from the zone loaded after reading Version is
// never older than that version.
func (s *Store) Version() uint64 { return s.version.Load() }

// addrRR returns an A or AAAA record for ip.
func addrRR(name string, ip net.IP, ttl uint32) dns.RR {
	hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: ttl}
	if v4 := ip.To4(); v4 != nil {
		hdr.Rrtype = dns.TypeA
		return &dns.A{Hdr: hdr, A: v4}
	}
	hdr.Rrtype = dns.TypeAAAA
	return &dns.AAAA{Hdr: hdr, AAAA: ip}
}
