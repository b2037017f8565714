package zones

import (
	"maps"
	"net/netip"

	"github.com/miekg/dns"
)

// Patch builds a Zone from another by replacing the records of a few
// owner names, at a cost that grows with the names changed and with a
// copy of the name table, not with the records of the zone: the new zone
// shares every other name's records with the one it starts from, which
// stays as it was. Names are replaced whole: the records added at a name
// replace all its records in the base zone, and a dropped name loses all
// of them. The zone apex (SOA, NS) is never changed.
//
// Empty non-terminals are added for new names; one that no longer has
// anything below it because of a patch stays an empty non-terminal
// (NODATA rather than NXDOMAIN) until the zone is next built whole.
type Patch struct {
	base *Zone
	b    *Builder
	drop map[string]struct{}
}

// Patch starts a patch of z.
func (z *Zone) Patch() *Patch {
	return &Patch{base: z, b: NewBuilder(z.origin, SOA{}, nil), drop: map[string]struct{}{}}
}

// Drop removes every record of the owner name.
func (p *Patch) Drop(name string) {
	name = canonical(name)
	if name != p.base.origin {
		p.drop[name] = struct{}{}
	}
}

// AddAddr adds an A or AAAA record, as Builder.AddAddr.
func (p *Patch) AddAddr(name []byte, ip netip.Addr, ttl uint32) bool {
	return p.b.AddAddr(name, ip, ttl)
}

// AddSRV adds an SRV record, as Builder.AddSRV.
func (p *Patch) AddSRV(name []byte, target string, port, priority, weight uint16, ttl uint32) bool {
	return p.b.AddSRV(name, target, port, priority, weight, ttl)
}

// Name is Builder.Name for the names added so far.
func (p *Patch) Name(name []byte) string { return p.b.Name(name) }

// RecordsAt returns the number of records the zone has at the owner name.
func (z *Zone) RecordsAt(name string) int {
	n := z.node(canonical(name))
	if n == nil {
		return 0
	}
	c := 0
	n.each(func(s *rrset) {
		if len(s.data) > 0 {
			c += len(s.data)
		} else if p := s.rrs.Load(); p != nil {
			c += len(*p)
		}
	})
	return c
}

// nodeHash returns the sum of the hashes of a node's records, and their
// number, as Builder counted them into Zone.Hash and Zone.Len.
func nodeHash(n *node) (h uint64, count int) {
	n.each(func(s *rrset) {
		if len(s.data) > 0 {
			for _, d := range s.data {
				d.ttl = 0
				h += dataHash(n.name, s.rrtype, d)
			}
			count += len(s.data)
			return
		}
		if p := s.rrs.Load(); p != nil {
			for _, rr := range *p {
				h += rrHash(n.name, s.rrtype, dataKey(rr))
			}
			count += len(*p)
		}
	})
	return h, count
}

// Build returns the patched zone with the given serial. ok is false when
// the patch adds records at a name the base zone has and the patch did
// not drop: such a name would mix records of both, and the caller has
// most likely missed where the name came from. The patch must not be
// used afterwards.
func (p *Patch) Build(serial uint32) (z *Zone, ok bool) {
	base, b := p.base, p.b
	delete(b.names, base.origin)
	for name := range b.names {
		if _, dropped := p.drop[name]; !dropped && base.node(name) != nil {
			return nil, false
		}
	}
	// The changes go into a copy of the base's overlay, not of its
	// whole name table; once the overlay holds more than an eighth of
	// the names, they are merged into a new table, so lookups stay at
	// two map probes and the copies amortize.
	over := make(map[string]*node, len(base.over)+len(p.drop)+len(b.names)+1)
	maps.Copy(over, base.over)
	count, hash := base.count, base.hash
	for name := range p.drop {
		n := base.node(name)
		if n == nil {
			continue
		}
		h, c := nodeHash(n)
		hash -= h
		count -= c
		over[name] = nil
	}
	for name, n := range b.names {
		over[name] = n
		h, c := nodeHash(n)
		hash += h
		count += c
	}
	lookup := func(name string) bool {
		if n, ok := over[name]; ok {
			return n != nil
		}
		if n, ok := base.names[name]; ok {
			return n != nil
		}
		return base.fan.find(name) != nil
	}
	// The base's empty non-terminals are shared unless the patch changes
	// them, which most patches (names under parents that exist) do not.
	ents := base.ents
	cloned := false
	own := func() {
		if !cloned {
			ents, cloned = maps.Clone(base.ents), true
		}
	}
	for name := range b.names {
		if _, ok := ents[name]; ok {
			own()
			delete(ents, name)
		}
	}
	for name := range b.ents {
		if _, ok := ents[name]; !ok && !lookup(name) {
			own()
			ents[name] = struct{}{}
		}
	}
	soa := dns.Copy(base.soa).(*dns.SOA)
	soa.Serial = serial
	neg := dns.Copy(base.negSOA).(*dns.SOA)
	neg.Serial = serial
	// The apex node is the base's but for its SOA record.
	old := base.node(base.origin)
	apex := &node{name: old.name}
	old.each(func(s *rrset) {
		ns := apex.set(s.rrtype)
		ns.data = s.data
		if r := s.rrs.Load(); r != nil {
			ns.rrs.Store(r)
		}
	})
	apex.set(dns.TypeSOA).rrs.Store(&[]dns.RR{soa})
	over[base.origin] = apex
	names := base.names
	if len(over) > len(names)/8+1024 {
		names = maps.Clone(names)
		for name, n := range over {
			if n == nil {
				// A name of the fanout stays, removed, in names.
				if base.fan.find(name) != nil {
					names[name] = nil
				} else {
					delete(names, name)
				}
			} else {
				names[name] = n
			}
		}
		over = nil
	}
	p.b = nil
	return &Zone{
		origin: base.origin,
		serial: serial,
		soa:    soa,
		negSOA: neg,
		names:  names,
		over:   over,
		ents:   ents,
		fan:    base.fan,
		count:  count,
		hash:   hash,
	}, true
}
