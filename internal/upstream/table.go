package upstream

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Table maps zones to upstream groups; the longest matching suffix wins,
// and the root group (".") catches everything else. It is immutable and
// safe for concurrent use.
type Table struct {
	// byWire is keyed by the zone's lower-cased wire-format name, so the
	// query path looks up suffixes of a packed name without converting it.
	byWire map[string]*Group
	groups []*Group
}

// NewTable builds a table from groups, one per zone. A root group is
// required: without it some names would have nowhere to go.
func NewTable(groups ...*Group) (*Table, error) {
	t := &Table{byWire: make(map[string]*Group, len(groups))}
	for _, g := range groups {
		key, err := wireName(g.zone)
		if err != nil {
			return nil, fmt.Errorf("upstream: table: zone %q: %w", g.zone, err)
		}
		if _, dup := t.byWire[key]; dup {
			return nil, fmt.Errorf("upstream: table: zone %s has two groups", g.zone)
		}
		t.byWire[key] = g
		t.groups = append(t.groups, g)
	}
	if _, ok := t.byWire["\x00"]; !ok {
		return nil, fmt.Errorf("upstream: table: no group for the root zone \".\"")
	}
	return t, nil
}

func wireName(zone string) (string, error) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(zone), buf, 0, nil, false)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Groups returns every group, in the order given to NewTable.
func (t *Table) Groups() []*Group { return t.groups }

// Lookup returns the group for a name in presentation format.
func (t *Table) Lookup(name string) *Group {
	key, err := wireName(strings.ToLower(name))
	if err != nil {
		return t.byWire["\x00"]
	}
	return t.LookupWire([]byte(key))
}

// LookupWire returns the group for a lower-cased, uncompressed wire-format
// name: the group of its longest suffix that is a zone. It allocates
// nothing.
func (t *Table) LookupWire(name []byte) *Group {
	for off := 0; off < len(name); {
		if g, ok := t.byWire[string(name[off:])]; ok {
			return g
		}
		l := int(name[off])
		if l == 0 {
			break
		}
		off += 1 + l
	}
	return t.byWire["\x00"]
}

// Close closes every group (see Group.Close).
func (t *Table) Close() {
	for _, g := range t.groups {
		g.Close()
	}
}

// Wait waits for every group's cancelled legs to finish.
func (t *Table) Wait() {
	for _, g := range t.groups {
		g.Wait()
	}
}
