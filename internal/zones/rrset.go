package zones

import (
	"net"
	"sync/atomic"

	"github.com/miekg/dns"
)

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
