package zones

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"net"
	"net/netip"
	"strings"
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
	// fan, when not nil, stores the names of families (see Fanout).
	fan *fanout
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
	b.addEnts(name)
	return n
}

// addEnts records the empty non-terminals above a name that gets its
// first records.
func (b *Builder) addEnts(name string) {
	// Every ancestor up to the origin without records of its own is an
	// empty non-terminal. The walk stops at an ancestor with records or
	// one already known empty: its own walk covered the rest. It is done
	// here, while the name is at hand, rather than over the whole table
	// in Build.
	delete(b.ents, name)
	for p := parent(name); p != "" && len(p) > len(b.origin); p = parent(p) {
		// Names come in runs under one parent: the last one found is
		// checked before the tables.
		if p == b.known {
			break
		}
		if _, ok := b.ents[p]; ok {
			b.known = p
			break
		}
		if _, ok := b.names[p]; ok || b.fan.find(p) != nil {
			b.known = p
			break
		}
		b.ents[p] = struct{}{}
	}
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
	b.hash += rrHash(n.name, h.Rrtype, key)
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
	b.hash += dataHash(n.name, rrtype, key)
}

// rrHash is the hash of a record kept as a dns.RR in Zone.Hash, key being
// its dataKey.
func rrHash(name string, rrtype uint16, key string) uint64 {
	return mix(maphash.String(hashSeed, name)^uint64(rrtype), maphash.String(hashSeed, key))
}

// dataHash is the hash of a compact record (its TTL zero) in Zone.Hash.
func dataHash(name string, rrtype uint16, key rdata) uint64 {
	h := mix(maphash.String(hashSeed, name)^uint64(rrtype), maphash.String(hashSeed, key.s))
	return mix(h, uint64(binary.BigEndian.Uint32(key.v4[:]))<<32^
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
	if b.fan != nil {
		if n := b.fanOwner(name); n != nil {
			return n
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
	if b.fan != nil {
		if n := b.fanOwner([]byte(name)); n != nil {
			return n
		}
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
		fan:    b.fan,
		count:  b.count + 1,
		hash:   b.hash,
	}
	if b.fan != nil {
		b.fan.last, b.fan.known, b.fan.text = nil, nil, nil
	}
	b.names, b.big, b.ents, b.nodes, b.datas, b.recent, b.fan = nil, nil, nil, nil, nil, [8]*node{}, nil
	return z
}
