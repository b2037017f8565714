package mesos

import (
	"slices"
	"strconv"
)

// liveState is the cluster as the last full read of the state, or the
// operator API's SUBSCRIBED snapshot, showed it, with the events received
// since applied: the State the zone is built from while the event stream
// runs. Unlike a State it also keeps the tasks that are not running yet
// (staging, starting), whose names and ports a later TASK_UPDATED to
// TASK_RUNNING needs. It is not safe for concurrent use.
type liveState struct {
	leader, pid string
	completed   []string
	fws         map[string]*liveFramework
	fwOrder     []string
	slaves      map[string]Slave
	slaveOrder  []string
	// logging is set while a full read is in flight: the events applied
	// meanwhile are kept in log and applied again to the state it
	// returns, which may predate them (see Master.prepareResync);
	// applying one twice gives what applying it once does, as each sets
	// what it carries.
	logging bool
	log     []*v1Event
	// unknown counts updates of tasks never seen (not in the snapshot the
	// stream started from, nor added since).
	unknown uint64
	// dirty holds the tasks changed since the zone was last built from
	// l (see takeChanges); full says that more than tasks changed (agents,
	// frameworks, a new base), which only a whole build covers.
	dirty map[taskRef]struct{}
	full  bool
}

// taskRef names a task of the live state: its framework's ID and its key
// there (the task's ID).
type taskRef struct{ fw, key string }

// liveFramework is a framework and every task it has that is not
// terminal, in the order they became known.
type liveFramework struct {
	fw    Framework // Tasks unused
	tasks map[string]*liveTask
	// order lists the tasks as they became known; an entry whose seq is
	// not its task's (removed, or removed and added again) is skipped,
	// and compacted away once they are many.
	order []orderEntry
	seq   uint64
}

type orderEntry struct {
	id  string
	seq uint64
}

// liveTask is a task and where its addresses came from.
type liveTask struct {
	t       Task
	running bool
	best    statusMark
	seq     uint64 // its entry in liveFramework.order
}

func newLiveState() *liveState {
	return &liveState{fws: map[string]*liveFramework{}, slaves: map[string]Slave{}, dirty: map[taskRef]struct{}{}, full: true}
}

func (l *liveState) touch(fw, key string) { l.dirty[taskRef{fw, key}] = struct{}{} }

// takeChanges returns the tasks changed since the last call, or full when
// more than tasks changed, and starts afresh.
func (l *liveState) takeChanges() (dirty map[taskRef]struct{}, full bool) {
	dirty, full = l.dirty, l.full
	l.dirty, l.full = map[taskRef]struct{}{}, false
	return dirty, full
}

// runningTask returns the task ref names when it runs, else nil.
func (l *liveState) runningTask(ref taskRef) *Task {
	if lf := l.fws[ref.fw]; lf != nil {
		if lt := lf.tasks[ref.key]; lt != nil && lt.running {
			return &lt.t
		}
	}
	return nil
}

// liveFromState makes the live state of a full read. st holds only the
// running tasks: the tasks prev knows that are not running and that st
// does not list are kept, so their TASK_RUNNING update still finds them.
func liveFromState(st *State, prev *liveState) *liveState {
	l := newLiveState()
	l.leader, l.pid = st.Leader, st.PID
	l.completed = slices.Clone(st.CompletedFrameworks)
	for i := range st.Slaves {
		l.putSlave(st.Slaves[i])
	}
	for i := range st.Frameworks {
		fw := &st.Frameworks[i]
		lf := l.putFramework(Framework{ID: fw.ID, Name: fw.Name, PID: fw.PID, Hostname: fw.Hostname})
		for j := range fw.Tasks {
			key := fw.Tasks[j].ID
			if lf.tasks[key] != nil {
				// Mesos never repeats a task ID in a framework, but a
				// state that does keeps every copy's records, as
				// without the stream; events reach the first.
				key += "\x00" + strconv.Itoa(j)
			}
			lf.putKey(key, &liveTask{t: fw.Tasks[j], running: true})
		}
	}
	if prev != nil {
		for _, id := range prev.fwOrder {
			pf := prev.fws[id]
			for _, e := range pf.order {
				lt := pf.task(e)
				if lt == nil || lt.running {
					continue
				}
				lf := l.fws[id]
				if lf == nil {
					lf = l.putFramework(pf.fw)
				}
				if lf.tasks[e.id] == nil {
					cp := *lt
					lf.putKey(e.id, &cp)
				}
			}
		}
	}
	return l
}

// liveFromSubscribed makes the live state of a SUBSCRIBED snapshot. The
// operator API gives no scheduler PIDs: frameworks keep the ones prev has.
func liveFromSubscribed(sub *v1Subscribed, prev *liveState) *liveState {
	l := newLiveState()
	if prev != nil {
		l.leader, l.pid = prev.leader, prev.pid
	}
	gs := &sub.GetState
	for i := range gs.GetAgents.Agents {
		l.putSlave(slaveFromV1(&gs.GetAgents.Agents[i]))
	}
	for i := range gs.GetFrameworks.Frameworks {
		l.putFramework(l.frameworkFromV1(&gs.GetFrameworks.Frameworks[i].FrameworkInfo, prev))
	}
	for i := range gs.GetFrameworks.CompletedFrameworks {
		l.completed = append(l.completed, gs.GetFrameworks.CompletedFrameworks[i].FrameworkInfo.ID.Value)
	}
	for _, list := range [][]v1Task{gs.GetTasks.PendingTasks, gs.GetTasks.Tasks} {
		for i := range list {
			l.addTask(&list[i])
		}
	}
	return l
}

func slaveFromV1(a *v1Agent) Slave {
	return Slave{ID: a.AgentInfo.ID.Value, Hostname: a.AgentInfo.Hostname, PID: a.PID}
}

// frameworkFromV1 is a framework of the operator API, with the PID the
// state gave it when known.
func (l *liveState) frameworkFromV1(fi *v1FrameworkInfo, prev *liveState) Framework {
	fw := Framework{ID: fi.ID.Value, Name: fi.Name, Hostname: fi.Hostname}
	for _, s := range []*liveState{l, prev} {
		if s == nil {
			continue
		}
		if old := s.fws[fw.ID]; old != nil && old.fw.PID != "" {
			fw.PID = old.fw.PID
			break
		}
	}
	return fw
}

func (l *liveState) putSlave(s Slave) {
	if _, ok := l.slaves[s.ID]; !ok {
		l.slaveOrder = append(l.slaveOrder, s.ID)
	}
	l.slaves[s.ID] = s
}

// putFramework adds fw or updates its fields, keeping its tasks.
func (l *liveState) putFramework(fw Framework) *liveFramework {
	fw.Tasks = nil
	if lf := l.fws[fw.ID]; lf != nil {
		lf.fw = fw
		return lf
	}
	lf := &liveFramework{fw: fw, tasks: map[string]*liveTask{}}
	l.fws[fw.ID] = lf
	l.fwOrder = append(l.fwOrder, fw.ID)
	return lf
}

func (lf *liveFramework) put(lt *liveTask) { lf.putKey(lt.t.ID, lt) }

// putKey adds or replaces the task under key, its ID but for repeats.
func (lf *liveFramework) putKey(key string, lt *liveTask) {
	if old := lf.tasks[key]; old != nil {
		lt.seq = old.seq
	} else {
		lf.seq++
		lt.seq = lf.seq
		lf.order = append(lf.order, orderEntry{key, lt.seq})
	}
	lf.tasks[key] = lt
}

// task returns the task of an order entry, nil when it is stale.
func (lf *liveFramework) task(e orderEntry) *liveTask {
	if lt := lf.tasks[e.id]; lt != nil && lt.seq == e.seq {
		return lt
	}
	return nil
}

func (lf *liveFramework) remove(id string) {
	delete(lf.tasks, id)
	if len(lf.order) > 64 && len(lf.order) > 2*len(lf.tasks) {
		lf.order = slices.DeleteFunc(lf.order, func(e orderEntry) bool { return lf.task(e) == nil })
	}
}

// terminal reports whether a task in state s is gone for good
// (mesos.proto's TaskState: the terminal states).
func terminal(s string) bool {
	switch s {
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR",
		"TASK_LOST", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR":
		return true
	}
	return false
}

// addTask adds or replaces a task (TASK_ADDED, or a snapshot's task).
func (l *liveState) addTask(v *v1Task) {
	l.touch(v.FrameworkID.Value, v.TaskID.Value)
	if terminal(v.State) {
		if lf := l.fws[v.FrameworkID.Value]; lf != nil {
			lf.remove(v.TaskID.Value)
		}
		return
	}
	t, running, best := taskFromV1(v)
	lf := l.fws[v.FrameworkID.Value]
	if lf == nil {
		// A framework not known yet: its name comes with its
		// FRAMEWORK_ADDED, or the next full read.
		lf = l.putFramework(Framework{ID: v.FrameworkID.Value})
	}
	lf.put(&liveTask{t: t, running: running, best: best})
}

// apply applies one event and reports whether the names may have changed.
func (l *liveState) apply(ev *v1Event) bool {
	changed := l.applyOne(ev)
	if changed && l.logging {
		l.log = append(l.log, ev)
	}
	return changed
}

func (l *liveState) applyOne(ev *v1Event) bool {
	switch {
	case ev.Type == eventTaskAdded && ev.TaskAdded != nil:
		l.addTask(&ev.TaskAdded.Task)
	case ev.Type == eventTaskUpdated && ev.TaskUpdated != nil:
		u := ev.TaskUpdated
		lf := l.fws[u.FrameworkID.Value]
		var lt *liveTask
		if lf != nil {
			lt = lf.tasks[u.Status.TaskID.Value]
		}
		if lt == nil {
			if !terminal(u.State) {
				l.unknown++
			}
			return false
		}
		l.touch(u.FrameworkID.Value, u.Status.TaskID.Value)
		if terminal(u.State) {
			lf.remove(u.Status.TaskID.Value)
			return true
		}
		// A task is replaced, not changed in place: the State last
		// built from l may still be in use.
		next := *lt
		mergeStatus(&next.t, &next.best, &u.Status)
		next.running = u.State == "TASK_RUNNING"
		lf.tasks[u.Status.TaskID.Value] = &next
	case ev.Type == eventAgentAdded && ev.AgentAdded != nil:
		s := slaveFromV1(&ev.AgentAdded.Agent)
		if old, ok := l.slaves[s.ID]; ok && old == s {
			return false // re-registered as it was
		}
		l.putSlave(s)
	case ev.Type == eventAgentRemoved && ev.AgentRemoved != nil:
		id := ev.AgentRemoved.AgentID.Value
		if _, ok := l.slaves[id]; !ok {
			return false
		}
		delete(l.slaves, id)
		l.slaveOrder = slices.DeleteFunc(l.slaveOrder, func(s string) bool { return s == id })
	case (ev.Type == eventFrameworkAdded && ev.FrameworkAdded != nil) || (ev.Type == eventFrameworkUpdated && ev.FrameworkUpdated != nil):
		fe := ev.FrameworkAdded
		if fe == nil {
			fe = ev.FrameworkUpdated
		}
		fw := l.frameworkFromV1(&fe.Framework.FrameworkInfo, nil)
		if old := l.fws[fw.ID]; old != nil && old.fw.Name == fw.Name && old.fw.Hostname == fw.Hostname && old.fw.PID == fw.PID {
			return false // reconnected as it was
		}
		l.putFramework(fw)
	case ev.Type == eventFrameworkRemoved && ev.FrameworkRemoved != nil:
		id := ev.FrameworkRemoved.FrameworkInfo.ID.Value
		if l.fws[id] == nil {
			return false
		}
		delete(l.fws, id)
		l.fwOrder = slices.DeleteFunc(l.fwOrder, func(s string) bool { return s == id })
		if !slices.Contains(l.completed, id) {
			l.completed = append(l.completed, id)
		}
	default:
		return false
	}
	if ev.Type != eventTaskAdded && ev.Type != eventTaskUpdated {
		l.full = true
	}
	return true
}

// state returns the State of the running tasks, for the generator, and
// the refs of its tasks in order. It shares the tasks' slices with l,
// which never modifies a task in place.
func (l *liveState) state() (*State, []taskRef) {
	var refs []taskRef
	st := &State{Leader: l.leader, PID: l.pid, CompletedFrameworks: slices.Clone(l.completed)}
	st.Slaves = make([]Slave, 0, len(l.slaveOrder))
	for _, id := range l.slaveOrder {
		st.Slaves = append(st.Slaves, l.slaves[id])
	}
	st.Frameworks = make([]Framework, 0, len(l.fwOrder))
	for _, id := range l.fwOrder {
		lf := l.fws[id]
		fw := lf.fw
		fw.Tasks = make([]Task, 0, len(lf.tasks))
		for _, e := range lf.order {
			if lt := lf.task(e); lt != nil && lt.running {
				fw.Tasks = append(fw.Tasks, lt.t)
				refs = append(refs, taskRef{id, e.id})
			}
		}
		st.Frameworks = append(st.Frameworks, fw)
	}
	return st, refs
}
