package zones

import (
	"strings"
	"unsafe"
)

// fanout stores names that come in families: <base><tail> for each of a
// few fixed tails (say <task>.<framework>.agentip.dcos.example. and
// <task>.<framework>.autoip.dcos.example.). A family is one entry in the
// table, keyed by its base, holding one node per tail; a node without
// records is a name the family does not have. A zone whose names are
// mostly such families has a table a fraction of the size, and a build
// pays one probe of it per family rather than one per name: in a zone of
// hundreds of thousands of names, those probes miss the CPU caches and
// are most of the cost.
type fanout struct {
	// tails are canonical, each starting with '.'.
	tails []string
	// bases maps a base to the nodes of its family, one per tail, in
	// the order of tails. The nodes' names share one string.
	bases map[string][]node
	// last is the family found or added last: a generator adds a
	// family's names in a row.
	last []node
	// known holds, per tail, the parent of the last name of that tail
	// to get records: its ancestors are known to exist, so the names
	// that follow under it skip the walk for empty non-terminals.
	known []string
	// text is the block the families' names are written to (see
	// newFamily).
	text []byte
}

// textBlock is the size of the blocks families' names are written to.
const textBlock = 64 << 10

// find returns the node of a canonical name stored in the fanout, nil
// when there is none or it holds no records.
func (f *fanout) find(name string) *node {
	if f == nil {
		return nil
	}
	// Tails may end one another (".b.x." and ".a.b.x."), so every tail
	// that fits is tried.
	for k, tail := range f.tails {
		if len(name) > len(tail) && strings.HasSuffix(name, tail) {
			if ns := f.bases[name[:len(name)-len(tail)]]; ns != nil && !ns[k].empty() {
				return &ns[k]
			}
		}
	}
	return nil
}

// empty reports whether the node has no records.
func (n *node) empty() bool { return n.first.rrtype == 0 && n.more == nil }

// Fanout makes the builder store the names <base><tail>, for each of the
// tails, one table entry per base (see fanout): for zones where most names
// come in such families. It must be called before any name ending in a
// tail is added. Names are added as usual (Add, AddAddr, AddSRV); the
// zone answers the same. Tails outside the zone are ignored.
func (b *Builder) Fanout(tails ...string) {
	f := &fanout{bases: make(map[string][]node)}
	for _, t := range tails {
		t = canonical(t)
		if !strings.HasPrefix(t, ".") {
			t = "." + t
		}
		// A name that ends in a tail is then in the zone.
		if b.inZone(t[1:]) {
			f.tails = append(f.tails, t)
		}
	}
	f.known = make([]string, len(f.tails))
	b.fan = f
}

// GrowFanout makes room for about bases more families.
func (b *Builder) GrowFanout(bases int) {
	if b.fan == nil || bases <= 0 {
		return
	}
	m := make(map[string][]node, len(b.fan.bases)+bases)
	for k, v := range b.fan.bases {
		m[k] = v
	}
	b.fan.bases = m
}

// fanOwner returns the node of a canonical name in the zone that the
// fanout stores, creating its family if needed; nil when no tail fits.
func (b *Builder) fanOwner(name []byte) *node {
	f := b.fan
	for k, tail := range f.tails {
		base := len(name) - len(tail)
		if base <= 0 || string(name[base:]) != tail {
			continue
		}
		ns := f.last
		if ns == nil || len(ns[0].name) != base+len(f.tails[0]) || ns[0].name[:base] != string(name[:base]) {
			ns = f.bases[string(name[:base])]
			if ns == nil {
				ns = b.newFamily(string(name[:base]))
			}
			f.last = ns
		}
		n := &ns[k]
		if n.empty() {
			// First records at this name: it stops being an empty
			// non-terminal, and its ancestors become ones, unless they
			// are those of the last name of the same tail.
			if p := parent(n.name); p != f.known[k] {
				b.addEnts(n.name)
				f.known[k] = p
			} else {
				delete(b.ents, n.name)
			}
		}
		b.remember(n)
		return n
	}
	return nil
}

// newFamily adds the family of base. Its names are written one after
// the other into a block shared by many families, and the nodes' names
// are strings over it: no allocation per family. A block is never
// written again where it holds names, so the strings stay immutable.
func (b *Builder) newFamily(base string) []node {
	f := b.fan
	size := 0
	for _, t := range f.tails {
		size += len(base) + len(t)
	}
	if cap(f.text)-len(f.text) < size {
		f.text = make([]byte, 0, max(textBlock, size))
	}
	start := len(f.text)
	for _, t := range f.tails {
		f.text = append(append(f.text, base...), t...)
	}
	all := unsafe.String(&f.text[start], size)
	if cap(b.nodes)-len(b.nodes) < len(f.tails) {
		b.nodes = make([]node, 0, max(nodeBlock, len(f.tails)))
	}
	i := len(b.nodes)
	b.nodes = b.nodes[:i+len(f.tails)]
	ns := b.nodes[i : i+len(f.tails) : i+len(f.tails)]
	off := 0
	for k, t := range f.tails {
		ns[k].name = all[off : off+len(base)+len(t)]
		off += len(base) + len(t)
	}
	f.bases[ns[0].name[:len(base)]] = ns
	return ns
}
