// Package zones holds the zones spartan answers authoritatively: an
// immutable, lock-free Zone store with RFC-correct negative answers, the
// node-local "spartan." zone, and the Authority that serves a set of zones.
// The Mesos record generator that fills the cluster zone lives in
// internal/zones/mesos.
package zones

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

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

// node holds the records of one owner name, by type. A short slice rather
// than a map: names carry one or two types, and a big zone has hundreds of
// thousands of names. The first rrset lives in the node itself, so most
// names cost one allocation.
type node struct {
	name string
	// hash is the FNV-1a state after the name, where every record hash
	// of the name starts.
	hash uint64
	sets []rrset
	one  [1]rrset
}

type rrset struct {
	rrtype uint16
	rrs    []dns.RR
}

// get returns the records of type t.
func (n *node) get(t uint16) []dns.RR {
	for i := range n.sets {
		if n.sets[i].rrtype == t {
			return n.sets[i].rrs
		}
	}
	return nil
}

// set returns the rrset of type t, adding it when missing.
func (n *node) set(t uint16) *rrset {
	for i := range n.sets {
		if n.sets[i].rrtype == t {
			return &n.sets[i]
		}
	}
	if n.sets == nil {
		n.sets = n.one[:0]
	}
	n.sets = append(n.sets, rrset{rrtype: t})
	return &n.sets[len(n.sets)-1]
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
// equal to one already present (ignoring TTL) does nothing.
//
// Besides Add, which takes any record, AddAddr and AddSRV take the data of
// the two record types generated zones are made of and owner names as
// bytes: a name already in the zone costs no allocation, and the records
// are carved from large blocks rather than allocated one by one. A zone of
// a million records builds several times faster that way.
type Builder struct {
	origin string
	suffix string // "." + origin, to test names cheaply
	soa    SOA
	names  map[string]*node
	// big indexes the data of rrsets too large to scan for duplicates.
	big   map[bigKey]struct{}
	count int
	hash  uint64

	// Blocks the records of AddAddr and AddSRV are carved from.
	as   []dns.A
	srvs []dns.SRV
	ips  []byte
	// lower holds a lower-cased owner name.
	lower []byte
}

// bigKey identifies a record's data within one rrset: addresses by their
// 16-byte form, SRV by target and numbers, other types by their text.
type bigKey struct {
	node   *node
	rrtype uint16
	ip     [16]byte
	nums   uint64
	data   string
}

// scanLimit is the rrset size up to which duplicates are found by
// comparing records; larger rrsets are indexed in Builder.big.
const scanLimit = 16

// blockSize is the number of records allocated at once for AddAddr and
// AddSRV.
const blockSize = 1024

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
	n := &node{name: name, hash: fnvString(fnvOffset, name)}
	b.names[name] = n
	return n
}

// Add adds rr to the zone unless an equal record is already there. Owner
// names are stored lower-cased; names outside the origin are ignored and
// reported as false.
func (b *Builder) Add(rr dns.RR) bool {
	h := rr.Header()
	h.Name = canonical(h.Name)
	if h.Class == 0 {
		h.Class = dns.ClassINET
	}
	n := b.names[h.Name]
	if n == nil {
		if !b.inZone(h.Name) {
			return false
		}
		n = b.newNode(h.Name)
	}
	h.Name = n.name // one copy of the name for the node and its records
	set := n.set(h.Rrtype)
	if len(set.rrs) < scanLimit {
		for _, old := range set.rrs {
			if sameData(old, rr) {
				return true
			}
		}
	} else if b.bigDup(n, set, keyOf(rr)) {
		return true
	}
	b.insert(n, set, rr, recordHash(n.hash, rr))
	return true
}

// bigDup reports whether an rrset too large to scan holds a record with
// key k, indexing it otherwise.
func (b *Builder) bigDup(n *node, set *rrset, k bigKey) bool {
	if len(set.rrs) == scanLimit {
		for _, old := range set.rrs {
			ok := keyOf(old)
			ok.node = n
			b.big[ok] = struct{}{}
		}
	}
	k.node = n
	if _, dup := b.big[k]; dup {
		return true
	}
	b.big[k] = struct{}{}
	return false
}

func (b *Builder) insert(n *node, set *rrset, rr dns.RR, h uint64) {
	set.rrs = append(set.rrs, rr)
	b.count++
	// An order-independent sum of per-record hashes: the same set gives the
	// same hash however it was added.
	b.hash += h
}

// owner returns the node of the owner name given as bytes, creating it;
// nil when the name is outside the zone.
func (b *Builder) owner(name []byte) *node {
	if n := b.names[string(name)]; n != nil {
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
			if n := b.names[string(name)]; n != nil {
				return n
			}
			break
		} else if c >= utf8RuneSelf {
			return b.ownerString(string(name))
		}
	}
	s := string(name)
	if !b.inZone(s) {
		return nil
	}
	return b.newNode(s)
}

// utf8RuneSelf is utf8.RuneSelf: bytes from it on are not ASCII.
const utf8RuneSelf = 0x80

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
	if n := b.names[string(name)]; n != nil {
		return n.name
	}
	return canonical(string(name))
}

// AddAddr adds an A record for an IPv4 ip, or an AAAA record, at name,
// like Add. An IPv4-mapped IPv6 address is an AAAA record, as it would be
// from netip.Addr.AsSlice.
func (b *Builder) AddAddr(name []byte, ip netip.Addr, ttl uint32) bool {
	n := b.owner(name)
	if n == nil {
		return false
	}
	ip16 := ip.As16()
	var rrtype uint16
	var ipb net.IP
	if ip.Is4() {
		rrtype = dns.TypeA
		ip4 := ip.As4()
		ipb = ip4[:]
	} else {
		rrtype = dns.TypeAAAA
		ipb = ip16[:]
	}
	// Records compare by their 16-byte form, as net.IP.Equal does.
	set := n.set(rrtype)
	if len(set.rrs) < scanLimit {
		for _, old := range set.rrs {
			switch x := old.(type) {
			case *dns.A:
				if x.A.Equal(ipb) {
					return true
				}
			case *dns.AAAA:
				if x.AAAA.Equal(ipb) {
					return true
				}
			}
		}
	} else if b.bigDup(n, set, bigKey{rrtype: rrtype, ip: ip16}) {
		return true
	}
	h := fnvBytes(fnvUint(n.hash, uint64(rrtype)), ip16[:])
	hdr := dns.RR_Header{Name: n.name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
	stored := b.ipBytes(ipb)
	var rr dns.RR
	if rrtype == dns.TypeA {
		if len(b.as) == cap(b.as) {
			b.as = make([]dns.A, 0, blockSize)
		}
		b.as = append(b.as, dns.A{Hdr: hdr, A: stored})
		rr = &b.as[len(b.as)-1]
	} else {
		rr = &dns.AAAA{Hdr: hdr, AAAA: stored}
	}
	b.insert(n, set, rr, h)
	return true
}

// ipBytes copies an address into the builder's address block.
func (b *Builder) ipBytes(ip []byte) net.IP {
	if cap(b.ips)-len(b.ips) < len(ip) {
		b.ips = make([]byte, 0, blockSize*4)
	}
	i := len(b.ips)
	b.ips = append(b.ips, ip...)
	return b.ips[i:len(b.ips):len(b.ips)]
}

// AddSRV adds an SRV record at name, like Add.
func (b *Builder) AddSRV(name []byte, target string, port, priority, weight uint16, ttl uint32) bool {
	n := b.owner(name)
	if n == nil {
		return false
	}
	target = canonical(target)
	set := n.set(dns.TypeSRV)
	nums := srvNums(port, priority, weight)
	if len(set.rrs) < scanLimit {
		for _, old := range set.rrs {
			if x, ok := old.(*dns.SRV); ok && x.Port == port && x.Priority == priority &&
				x.Weight == weight && canonical(x.Target) == target {
				return true
			}
		}
	} else if b.bigDup(n, set, bigKey{rrtype: dns.TypeSRV, nums: nums, data: target}) {
		return true
	}
	if len(b.srvs) == cap(b.srvs) {
		b.srvs = make([]dns.SRV, 0, blockSize)
	}
	b.srvs = append(b.srvs, dns.SRV{
		Hdr:      dns.RR_Header{Name: n.name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
		Priority: priority, Weight: weight, Port: port, Target: target,
	})
	rr := &b.srvs[len(b.srvs)-1]
	b.insert(n, set, rr, fnvUint(fnvString(fnvUint(n.hash, uint64(dns.TypeSRV)), target), nums))
	return true
}

func srvNums(port, priority, weight uint16) uint64 {
	return uint64(port)<<32 | uint64(priority)<<16 | uint64(weight)
}

// sameData reports whether two records of one owner and type carry the
// same data (TTL aside).
func sameData(a, b dns.RR) bool {
	switch x := a.(type) {
	case *dns.A:
		y, ok := b.(*dns.A)
		return ok && x.A.Equal(y.A)
	case *dns.AAAA:
		y, ok := b.(*dns.AAAA)
		return ok && x.AAAA.Equal(y.AAAA)
	case *dns.SRV:
		y, ok := b.(*dns.SRV)
		return ok && x.Port == y.Port && x.Priority == y.Priority && x.Weight == y.Weight &&
			canonical(x.Target) == canonical(y.Target)
	}
	return dataKey(a) == dataKey(b)
}

// keyOf is a record's bigKey, without the node.
func keyOf(rr dns.RR) bigKey {
	k := bigKey{rrtype: rr.Header().Rrtype}
	switch r := rr.(type) {
	case *dns.A:
		copy(k.ip[:], r.A.To16())
	case *dns.AAAA:
		copy(k.ip[:], r.AAAA.To16())
	case *dns.SRV:
		k.nums = srvNums(r.Port, r.Priority, r.Weight)
		k.data = canonical(r.Target)
	default:
		k.data = dataKey(rr)
	}
	return k
}

// dataKey is a record's data as a string, for indexing.
func dataKey(rr dns.RR) string {
	k := recordKey(rr)
	// Owner and type are the same for the whole rrset: drop them.
	_, data, _ := strings.Cut(k[len(rr.Header().Name)+1:], " ")
	return data
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

// FNV-1a, inline so hashing a record allocates nothing.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

func fnvUint(h uint64, v uint64) uint64 {
	for range 8 {
		h = (h ^ (v & 0xff)) * fnvPrime
		v >>= 8
	}
	return h
}

// recordHash hashes a record's type and data, not its TTL, continuing
// from h, the hash of its owner name (node.hash).
func recordHash(h uint64, rr dns.RR) uint64 {
	hdr := rr.Header()
	h = fnvUint(h, uint64(hdr.Rrtype))
	switch r := rr.(type) {
	case *dns.A:
		return fnvBytes(h, r.A.To16())
	case *dns.AAAA:
		return fnvBytes(h, r.AAAA.To16())
	case *dns.SRV:
		h = fnvString(h, canonical(r.Target))
		return fnvUint(h, srvNums(r.Port, r.Priority, r.Weight))
	}
	return fnvString(h, recordKey(rr))
}

// recordKey identifies a record by owner, type and data, not TTL.
func recordKey(rr dns.RR) string {
	h := rr.Header()
	var sb strings.Builder
	sb.WriteString(h.Name)
	sb.WriteByte(' ')
	sb.WriteString(strconv.Itoa(int(h.Rrtype)))
	sb.WriteByte(' ')
	switch r := rr.(type) {
	case *dns.A:
		sb.Write(r.A.To16())
	case *dns.AAAA:
		sb.Write(r.AAAA.To16())
	case *dns.SRV:
		sb.WriteString(dns.CanonicalName(r.Target))
		sb.WriteByte(' ')
		sb.WriteString(strconv.Itoa(int(r.Port)))
		sb.WriteByte(' ')
		sb.WriteString(strconv.Itoa(int(r.Priority)))
		sb.WriteByte(' ')
		sb.WriteString(strconv.Itoa(int(r.Weight)))
	default:
		// The presentation form without the header is the data.
		s := rr.String()
		sb.WriteString(strings.TrimPrefix(s, h.String()))
	}
	return sb.String()
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
	n.set(dns.TypeSOA).rrs = []dns.RR{soa}

	ents := make(map[string]struct{})
	for name := range b.names {
		// Walk up from each name to the origin; every ancestor without
		// records of its own is an empty non-terminal. Add only admits
		// names at or below the origin, so the walk ends there. It stops
		// at an ancestor with records, or one already found empty: the
		// walk from that one covers the rest.
		for p := parent(name); p != "" && len(p) > len(b.origin); p = parent(p) {
			if _, ok := b.names[p]; ok {
				break
			}
			if _, ok := ents[p]; ok {
				break
			}
			ents[p] = struct{}{}
		}
	}
	z := &Zone{
		origin: b.origin,
		serial: serial,
		soa:    soa,
		negSOA: neg,
		names:  b.names,
		ents:   ents,
		count:  b.count + 1,
		hash:   b.hash,
	}
	b.names, b.big = nil, nil
	b.as, b.srvs, b.ips = nil, nil, nil
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
// modified.
func (z *Zone) Records() []dns.RR {
	out := make([]dns.RR, 0, z.count)
	out = append(out, z.soa)
	for _, n := range z.names {
		for _, set := range n.sets {
			if set.rrtype != dns.TypeSOA {
				out = append(out, set.rrs...)
			}
		}
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
		for _, set := range n.sets {
			res.Answer = append(res.Answer, set.rrs...)
		}
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
			target = dns.CanonicalName(r.Target)
		case *dns.NS:
			target = dns.CanonicalName(r.Ns)
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
		res.Extra = append(res.Extra, z.addresses(target)...)
	}
	return res
}

// addresses returns the in-zone A and AAAA records of name.
func (z *Zone) addresses(name string) []dns.RR {
	n := z.names[dns.CanonicalName(name)]
	if n == nil {
		return nil
	}
	out := append([]dns.RR(nil), n.get(dns.TypeA)...)
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
	p atomic.Pointer[Zone]
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
func (s *Store) Swap(z *Zone) *Zone { return s.p.Swap(z) }

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
