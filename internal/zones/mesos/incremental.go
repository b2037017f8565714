package mesos

import (
	"net/netip"

	"github.com/spartan-dns/spartan/internal/zones"
)

// Incremental rebuilds. A zone of 100,000 tasks takes over a second of
// CPU to build whole, too much for the few swaps a second the event
// stream asks for; but a task's records all sit under the names it
// publishes (taskNames) in its framework's subdomain, so a change to a
// few tasks is a zones.Patch of a few owner names. Tasks are grouped by
// framework label and published name: the tasks of a group share owner
// names (an app's instances share the short name and its SRV names), tasks
// of different groups do not. A patch regenerates the groups of the
// changed tasks whole: it drops every name their old members published and
// adds the records of the new ones. Where names of different groups meet
// after all (names cut to fit a label, dotted DiscoveryInfo names across
// frameworks), the patch notices it (a dropped name holding records no
// member gave it, or an added one it did not drop) and the zone is built
// whole instead.

// zoneIndex describes the zone last built from the live state, for
// patching it: the tasks it was built from, by group.
type zoneIndex struct {
	// fnames are the frameworks' labels, by framework ID.
	fnames map[string]string
	// slaveIPs are the agents' addresses as the generator found them.
	slaveIPs map[string][]netip.Addr
	tasks    map[taskRef]*Task
	groups   map[groupKey]map[taskRef]struct{}
}

// groupKey is a framework label and a name published in it.
type groupKey struct{ fname, name string }

// buildIndexed builds the zone of st whole, with the index to patch it;
// refs name st's tasks in order (liveState.state).
func buildIndexed(st *State, refs []taskRef, opt *Options, serial uint32) (*zones.Zone, GenStats, *zoneIndex) {
	zs := &zoneSink{b: zones.NewBuilder(opt.Domain, opt.SOA, []string{opt.NS}), ttl: opt.SOA.TTL, weight: opt.SRVWeight}
	zs.b.Grow(7*len(refs) + 64)
	g := generateAll(st, opt, zs)
	idx := &zoneIndex{
		fnames:   make(map[string]string, len(st.Frameworks)),
		slaveIPs: g.slaveIPs,
		tasks:    make(map[taskRef]*Task, len(refs)),
		groups:   make(map[groupKey]map[taskRef]struct{}, len(refs)),
	}
	k := 0
	for i := range st.Frameworks {
		fw := &st.Frameworks[i]
		idx.fnames[fw.ID] = domainFrag(fw.Name, opt.Spec)
		for j := range fw.Tasks {
			idx.add(refs[k], &fw.Tasks[j], opt.Spec)
			k++
		}
	}
	return zs.b.Build(serial), g.stats, idx
}

func (idx *zoneIndex) keys(ref taskRef, t *Task, spec LabelFunc) []groupKey {
	names := taskNames(t, spec)
	keys := make([]groupKey, len(names))
	for i, n := range names {
		keys[i] = groupKey{idx.fnames[ref.fw], n}
	}
	return keys
}

func (idx *zoneIndex) add(ref taskRef, t *Task, spec LabelFunc) {
	idx.tasks[ref] = t
	for _, k := range idx.keys(ref, t, spec) {
		g := idx.groups[k]
		if g == nil {
			g = map[taskRef]struct{}{}
			idx.groups[k] = g
		}
		g[ref] = struct{}{}
	}
}

func (idx *zoneIndex) remove(ref taskRef, spec LabelFunc) {
	t := idx.tasks[ref]
	if t == nil {
		return
	}
	delete(idx.tasks, ref)
	for _, k := range idx.keys(ref, t, spec) {
		if g := idx.groups[k]; g != nil {
			delete(g, ref)
			if len(g) == 0 {
				delete(idx.groups, k)
			}
		}
	}
}

// emit generates the records of every group in groups into out.
func (idx *zoneIndex) emit(groups map[groupKey]struct{}, opt *Options, out sink) {
	g := newGenerator(opt, out, idx.slaveIPs)
	for k := range groups {
		for ref := range idx.groups[k] {
			g.taskRecords(idx.tasks[ref], k.fname, k.name)
		}
	}
}

// patch applies the changed tasks (their new versions in changed, nil for
// those no longer running) to cur, the zone built from idx, and updates
// idx. ok is false when the change cannot be patched (see above): then
// idx is no longer cur's and the zone must be built whole.
func (idx *zoneIndex) patch(cur *zones.Zone, changed map[taskRef]*Task, opt *Options, serial uint32) (z *zones.Zone, ok bool) {
	groups := map[groupKey]struct{}{}
	for ref, t := range changed {
		if old := idx.tasks[ref]; old != nil {
			for _, k := range idx.keys(ref, old, opt.Spec) {
				groups[k] = struct{}{}
			}
		}
		if t != nil {
			if _, known := idx.fnames[ref.fw]; !known {
				return nil, false // a framework the zone has not seen
			}
			for _, k := range idx.keys(ref, t, opt.Spec) {
				groups[k] = struct{}{}
			}
		}
	}
	// What the groups published: each name must hold nothing else.
	old := &recordSet{names: map[string]map[recordKey]struct{}{}}
	idx.emit(groups, opt, old)
	p := cur.Patch()
	for name, recs := range old.names {
		if cur.RecordsAt(name) != len(recs) {
			return nil, false
		}
		p.Drop(name)
	}
	for ref, t := range changed {
		idx.remove(ref, opt.Spec)
		if t != nil {
			idx.add(ref, t, opt.Spec)
		}
	}
	idx.emit(groups, opt, &patchSink{p: p, ttl: opt.SOA.TTL, weight: opt.SRVWeight})
	return p.Build(serial)
}

// recordKey is a record's type and data, for recordSet.
type recordKey struct {
	srv    bool
	ip     netip.Addr
	target string
	port   uint16
}

// recordSet collects the distinct records of each owner name.
type recordSet struct {
	names map[string]map[recordKey]struct{}
}

func (r *recordSet) put(name string, k recordKey) {
	set := r.names[name]
	if set == nil {
		set = map[recordKey]struct{}{}
		r.names[name] = set
	}
	set[k] = struct{}{}
}

func (r *recordSet) addr(name string, ip netip.Addr) {
	r.put(zonesName(name), recordKey{ip: ip})
}

func (r *recordSet) srv(name, target string, port uint16) {
	r.put(zonesName(name), recordKey{srv: true, target: zonesName(target), port: port})
}

// zonesName is a name as the zone keeps it: lower-case.
func zonesName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}

// patchSink adds generated records to a zones.Patch.
type patchSink struct {
	p      *zones.Patch
	ttl    uint32
	weight uint16
}

func (s *patchSink) addr(name string, ip netip.Addr) { s.addrName([]byte(name), ip) }
func (s *patchSink) srv(name, target string, port uint16) {
	s.srvName([]byte(name), target, port)
}
func (s *patchSink) addrName(name []byte, ip netip.Addr) { s.p.AddAddr(name, ip, s.ttl) }
func (s *patchSink) srvName(name []byte, target string, port uint16) {
	// As zoneSink: priority 0, the configured weight.
	s.p.AddSRV(name, target, port, 0, s.weight, s.ttl)
}
func (s *patchSink) str(name []byte) string { return s.p.Name(name) }
