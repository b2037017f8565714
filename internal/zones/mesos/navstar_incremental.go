package mesos

import (
	"net/netip"

	"github.com/spartan-dns/spartan/internal/zones"
)

// The thisdcos.directory zone follows the event stream the way the
// cluster zone does (see incremental.go): a task's names are
// <task>.<framework>.{agentip,containerip,autoip}.dcos.thisdcos.directory,
// one label each for the task and the framework, so every task with the
// same two labels publishes under the same three names and nothing else
// does. A change to a task regenerates the names of its group (before and
// after the change) from every task in it; nothing else moves.

// navKey is a group of tasks sharing their names: the framework's and the
// task's dcos-net labels.
type navKey struct{ fw, task string }

// navIndex is what patching a thisdcos.directory zone needs: the tasks it
// was built from, grouped by navKey, with the frameworks' labels and the
// agents' addresses of the build.
type navIndex struct {
	fws    map[string]string // framework ID → label
	agents map[string]netip.Addr
	tasks  map[taskRef]*Task
	groups map[navKey]map[taskRef]struct{}
}

// buildNavIndexed builds the thisdcos.directory zone of st whole, with the
// index to patch it; refs name st's tasks in order (liveState.state).
func buildNavIndexed(st *State, refs []taskRef, opt *Options, serial uint32) (*zones.Zone, *navIndex) {
	z, agents := buildNavstar(st, opt, serial)
	idx := &navIndex{
		fws:    make(map[string]string, len(st.Frameworks)),
		agents: agents,
		tasks:  make(map[taskRef]*Task, len(refs)),
		groups: make(map[navKey]map[taskRef]struct{}, len(refs)),
	}
	k := 0
	for i := range st.Frameworks {
		fw := &st.Frameworks[i]
		idx.fws[fw.ID] = NavstarLabel(fw.Name)
		for j := range fw.Tasks {
			idx.add(refs[k], &fw.Tasks[j])
			k++
		}
	}
	return z, idx
}

// key returns t's group; ok is false when t has no names (a label that
// comes out empty).
func (idx *navIndex) key(ref taskRef, t *Task) (navKey, bool) {
	fw := idx.fws[ref.fw]
	name := t.Name
	if t.Discovery != nil {
		name = t.Discovery.Name
	}
	task := NavstarLabel(name)
	return navKey{fw, task}, fw != "" && task != ""
}

func (idx *navIndex) add(ref taskRef, t *Task) {
	idx.tasks[ref] = t
	if k, ok := idx.key(ref, t); ok {
		g := idx.groups[k]
		if g == nil {
			g = map[taskRef]struct{}{}
			idx.groups[k] = g
		}
		g[ref] = struct{}{}
	}
}

func (idx *navIndex) remove(ref taskRef) {
	t := idx.tasks[ref]
	if t == nil {
		return
	}
	delete(idx.tasks, ref)
	if k, ok := idx.key(ref, t); ok {
		if g := idx.groups[k]; g != nil {
			delete(g, ref)
			if len(g) == 0 {
				delete(idx.groups, k)
			}
		}
	}
}

// patch applies the changed tasks (their new versions in changed, nil for
// those no longer running) to cur, the zone built from idx, and updates
// idx. ok is false when the change cannot be patched (a framework the
// zone has not seen): then idx is no longer cur's and the zone must be
// built whole.
func (idx *navIndex) patch(cur *zones.Zone, changed map[taskRef]*Task, opt *Options, serial uint32) (*zones.Zone, bool) {
	groups := map[navKey]struct{}{}
	for ref, t := range changed {
		if old := idx.tasks[ref]; old != nil {
			if k, ok := idx.key(ref, old); ok {
				groups[k] = struct{}{}
			}
		}
		if t != nil {
			if _, known := idx.fws[ref.fw]; !known {
				return nil, false
			}
			if k, ok := idx.key(ref, t); ok {
				groups[k] = struct{}{}
			}
		}
	}
	p := cur.Patch()
	g := navGen{b: p, opt: opt, agents: idx.agents}
	for k := range groups {
		for kind := range navKinds {
			p.Drop(k.task + "." + k.fw + string(navTails[kind]))
		}
	}
	for ref, t := range changed {
		idx.remove(ref)
		if t != nil {
			idx.add(ref, t)
		}
	}
	for k := range groups {
		g.fw = append(g.fw[:0], k.fw...)
		for ref := range idx.groups[k] {
			g.task(idx.tasks[ref])
		}
	}
	return p.Build(serial)
}
