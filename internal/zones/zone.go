// Package zones holds the zones spartan answers authoritatively: an
// immutable, lock-free Zone store with RFC-correct negative answers, the
// node-local "spartan." zone, and the Authority that serves a set of zones.
// The Mesos record generator that fills the cluster zone lives in
// internal/zones/mesos.
package zones

import (
	"math/rand/v2"

	"github.com/miekg/dns"
)

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
	// over, when not nil, holds the names a Patch changed, consulted
	// before names: a nil node is a name it removed. Patches add to it
	// rather than copy names, until it grows too large (see Patch.Build).
	over map[string]*node
	// ents holds the empty non-terminals: names with nothing of their own
	// but something below them, which exist (NODATA, not NXDOMAIN).
	ents map[string]struct{}
	// fan, when not nil, holds the names built as families (see
	// Builder.Fanout), consulted after names: a name a Patch removed
	// from it stays in over, or in names, as nil.
	fan   *fanout
	count int
	hash  uint64
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
	each := func(n *node) {
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
	for name, n := range z.names {
		if _, changed := z.over[name]; !changed && n != nil {
			each(n)
		}
	}
	if z.fan != nil {
		for _, ns := range z.fan.bases {
			for i := range ns {
				n := &ns[i]
				if n.empty() {
					continue
				}
				if _, changed := z.over[n.name]; changed {
					continue
				}
				if _, shadowed := z.names[n.name]; !shadowed {
					each(n)
				}
			}
		}
	}
	for _, n := range z.over {
		if n != nil {
			each(n)
		}
	}
	return out
}

// node returns the node of a canonical name, nil when it has none.
func (z *Zone) node(name string) *node {
	if z.over != nil {
		if n, ok := z.over[name]; ok {
			return n
		}
	}
	if n, ok := z.names[name]; ok || z.fan == nil {
		return n
	}
	return z.fan.find(name)
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
	n := z.node(name)
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
	n := z.node(name)
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
