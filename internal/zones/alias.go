package zones

import "github.com/miekg/dns"

// Alias makes an Authority answer the names at and below From as the same
// names below To, with the question's name kept: every name in the reply
// below To (owners, SRV and NS targets, SOA names) is renamed back below
// From. Aliases may lead to other aliases; the longest From or zone
// origin holding a name decides where it goes.
type Alias struct {
	// From and To are fully qualified domain names other than the root.
	From, To string
	// Rewrite, when set, is applied to every record of a reply made
	// through the alias (a copy of the zone's record): a different TTL,
	// say.
	Rewrite func(dns.RR)
}

// maxAliasDepth bounds a chain of aliases (and a loop among them).
const maxAliasDepth = 8

// WithAliases returns an authority for a's zones that also answers
// through the aliases.
func (a *Authority) WithAliases(aliases ...Alias) *Authority {
	out := &Authority{stores: a.stores, aliases: append([]Alias(nil), a.aliases...)}
	for _, al := range aliases {
		al.From, al.To = dns.CanonicalName(al.From), dns.CanonicalName(al.To)
		out.aliases = append(out.aliases, al)
	}
	return out
}

// resolve follows the aliases from name (canonical): the zone that holds
// the name it leads to, that name, and the aliases taken, in order. The
// zone is nil when no zone holds it.
func (a *Authority) resolve(name string) (*Zone, string, []*Alias) {
	var chain []*Alias
	for range maxAliasDepth {
		z := a.zoneFor(name)
		var best *Alias
		for i := range a.aliases {
			al := &a.aliases[i]
			if !dns.IsSubDomain(al.From, name) {
				continue
			}
			if best == nil || len(al.From) > len(best.From) {
				best = al
			}
		}
		if best == nil || (z != nil && dns.CountLabel(z.origin) >= dns.CountLabel(best.From)) {
			return z, name, chain
		}
		chain = append(chain, best)
		name = name[:len(name)-len(best.From)] + best.To
	}
	return nil, name, chain
}

// IsApex reports whether name (any case) is the origin of one of the
// authority's zones, directly or through aliases.
func (a *Authority) IsApex(name string) bool {
	z, n, _ := a.resolve(canonical(name))
	return z != nil && n == z.origin
}

// lookup answers qname through the aliases.
func (a *Authority) lookup(qname string, qtype uint16) (Result, bool) {
	z, name, chain := a.resolve(canonical(qname))
	if z == nil {
		return Result{}, false
	}
	res := z.Lookup(name, qtype)
	if len(chain) == 0 {
		return res, true
	}
	res.Answer = renamed(res.Answer, chain)
	res.Ns = renamed(res.Ns, chain)
	res.Extra = renamed(res.Extra, chain)
	return res, true
}

// renamed returns copies of rrs with their names renamed back through the
// chain of aliases, last first, and rewritten by them.
func renamed(rrs []dns.RR, chain []*Alias) []dns.RR {
	if len(rrs) == 0 {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		rr = dns.Copy(rr)
		for k := len(chain) - 1; k >= 0; k-- {
			al := chain[k]
			back := func(n string) string { return rename(n, al.To, al.From) }
			h := rr.Header()
			h.Name = back(h.Name)
			switch r := rr.(type) {
			case *dns.SRV:
				r.Target = back(r.Target)
			case *dns.NS:
				r.Ns = back(r.Ns)
			case *dns.SOA:
				r.Ns, r.Mbox = back(r.Ns), back(r.Mbox)
			}
			if al.Rewrite != nil {
				al.Rewrite(rr)
			}
		}
		out[i] = rr
	}
	return out
}

// rename replaces the suffix from of name with to, when name is at or
// below from (both canonical).
func rename(name, from, to string) string {
	name = canonical(name)
	if !dns.IsSubDomain(from, name) {
		return name
	}
	return name[:len(name)-len(from)] + to
}
