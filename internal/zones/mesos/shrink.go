package mesos

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spartan-dns/spartan/internal/zones"
)

// errMalformedTasks is a state whose running tasks mostly failed to decode.
var errMalformedTasks = errors.New("most running tasks in the Mesos state are malformed")

// checkTasks fails a state in which more tasks were skipped as malformed
// (wrong JSON types) than decoded: all of them, or more than half. Mesos
// writes every task from one schema, so type errors come in bulk (a Mesos
// version that changed a field, a proxy or cache mangling the response),
// and a state made mostly of them says little about which tasks run;
// publishing it would take every one of their names away. A few odd tasks
// among many good ones are left out and counted, as before.
func checkTasks(st *State) error {
	if n := st.RunningTasks(); st.Skipped > n {
		return fmt.Errorf("%w: %d of %d tasks that may be running have fields of the wrong JSON type", errMalformedTasks, st.Skipped, st.Skipped+n)
	}
	return nil
}

// pendingShrink is a zone held back because it lost more than MaxShrink
// of the served one.
type pendingShrink struct {
	leader string // the leader whose state built it
}

// holdShrink decides whether next, which differs from cur, the served
// zone, is held back instead of swapped in. A zone that keeps at least
// 1-MaxShrink of cur's records goes in (and forgets any held one). One
// that loses more goes in at once when its state explains the loss (see
// shrinkExplained, served being the state behind cur), or when it confirms
// the shrink held at the previous successful poll: it comes from the same
// leader and again loses more than MaxShrink. Otherwise it is held, so a
// state that is wrong for one poll (a leader that has just failed over and
// whose agents and frameworks have not re-registered yet, a broken
// response) never takes most names away. Poll and swapLive (for a stream
// snapshot) call it, under pollMu.
func (m *Master) holdShrink(cur, next *zones.Zone, served, st *State) bool {
	before, after := cur.Len(), next.Len()
	if m.cfg.MaxShrink >= 1 || before == 0 || float64(before-after) <= m.cfg.MaxShrink*float64(before) {
		m.pending = nil
		return false
	}
	attrs := []any{"records", before, "newRecords", after, "maxShrink", m.cfg.MaxShrink, "leader", st.Leader}
	switch {
	case served != nil && shrinkExplained(served, st, m.cfg.MaxShrink):
		m.pending = nil
		m.log.Info("Mesos state removes most of the cluster zone, and lists the frameworks gone as completed; applying it", attrs...)
		return false
	case m.pending != nil && m.pending.leader == st.Leader:
		m.pending = nil
		m.log.Warn("Mesos state removes most of the cluster zone for a second poll from the same leader; applying it", attrs...)
		return false
	}
	m.pending = &pendingShrink{leader: st.Leader}
	m.log.Warn("Mesos state would remove most of the cluster zone; keeping the served zone until the next poll confirms it", attrs...)
	return true
}

// shrinkExplained reports whether next, a state that shrinks the zone
// beyond maxShrink, accounts for the loss itself, compared with served,
// the state behind the served zone: it comes from the same leader (a new
// leader learns agents and frameworks only as they re-register, so its
// first states can lack most of them); every framework of served that next
// no longer runs is listed in next's completed_frameworks (torn down, not
// merely missing), and there is at least one; and the frameworks still
// running kept at least 1-maxShrink of their tasks.
func shrinkExplained(served, next *State, maxShrink float64) bool {
	if served.Leader == "" || served.Leader != next.Leader {
		return false
	}
	running := make(map[string]int, len(next.Frameworks))
	for i := range next.Frameworks {
		running[next.Frameworks[i].ID] += len(next.Frameworks[i].Tasks)
	}
	gone, keptBefore, keptNow := 0, 0, 0
	for i := range served.Frameworks {
		fw := &served.Frameworks[i]
		n, ok := running[fw.ID]
		if !ok {
			if !slices.Contains(next.CompletedFrameworks, fw.ID) {
				return false
			}
			gone++
			continue
		}
		keptBefore += len(fw.Tasks)
		keptNow += n
	}
	return gone > 0 && float64(keptBefore-keptNow) <= maxShrink*float64(keptBefore)
}
