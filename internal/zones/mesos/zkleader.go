package mesos

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// What master mode does with master.zk: the leader ZooKeeper names (see
// mesosleader) is the master polls ask, and master.masters the fallback.

// zkTimeout is master.zkDetectionTimeout.
func (m *Master) zkTimeout() time.Duration {
	return time.Duration(m.cfg.ZKDetectionTimeout) * time.Second
}

// zkURL is master.zk with its password hidden, for logs; "" without it.
func (m *Master) zkURL() string {
	if m.zk == nil {
		return ""
	}
	return m.zk.URL().String()
}

// zkFallbackIn reports how long until ZooKeeper's silence makes polls
// fall back to master.masters, when that is still ahead.
func (m *Master) zkFallbackIn() (time.Duration, bool) {
	if m.zk == nil {
		return 0, false
	}
	st := m.zk.Status()
	if st.OK() {
		return 0, false
	}
	left := time.Until(st.Since.Add(m.zkTimeout()))
	return left, left > 0
}

// candidates lists the masters a poll asks, in order. With ZooKeeper it is
// the leader ZooKeeper names, alone. While ZooKeeper names none or cannot
// be reached, polls keep asking the leader it named last, or, when it
// named none, fail and keep the zone; once that has lasted
// zkDetectionTimeout they fall back to master.masters, as Mesos-DNS asks
// its configured masters when its detector names no leader. Without
// ZooKeeper (or in fallback) it is the leader last seen in a state, then
// master.masters. pollMu is held.
func (m *Master) candidates() ([]string, error) {
	if m.zk != nil {
		st := m.zk.Status()
		switch {
		case st.OK():
			if m.zkFallback.Load() {
				m.zkFallback.Store(false)
				m.log.Info("ZooKeeper names the leading Mesos master again; no longer asking master.masters", "leader", st.Leader)
			}
			return []string{st.Leader}, nil
		case time.Since(st.Since) < m.zkTimeout():
			if st.Leader != "" {
				return []string{st.Leader}, nil
			}
			return nil, fmt.Errorf("waiting for ZooKeeper to name the leading Mesos master (%v); master.masters are asked once it has named none for zkDetectionTimeout (%s)", st.Err, m.zkTimeout())
		case !m.zkFallback.Load():
			m.zkFallback.Store(true)
			m.log.Warn("ZooKeeper has named no current leading Mesos master for zkDetectionTimeout; asking master.masters",
				"reason", st.Err, "since", st.Since, "lastLeader", st.Leader, "masters", m.cfg.Masters)
		}
	}
	m.mu.Lock()
	candidates := []string{}
	if m.leader != "" {
		candidates = append(candidates, m.leader)
	}
	m.mu.Unlock()
	for _, a := range m.cfg.Masters {
		if !slices.Contains(candidates, a) {
			candidates = append(candidates, a)
		}
	}
	if len(candidates) == 0 {
		return nil, errors.New("no Mesos master to ask: ZooKeeper names no leader and master.masters is empty")
	}
	return candidates, nil
}

// recordMasters are the masters the zones' master and masterN records
// name. With ZooKeeper they are the masters registered there, the leader
// first, as Mesos-DNS's detector hands its generator (detect.Masters:
// the leader, then the others); the last list ZooKeeper named is kept
// while it names none. Before ZooKeeper has named any, and without it,
// they are master.masters.
func (m *Master) recordMasters() []string {
	if m.zk != nil {
		if st := m.zk.Status(); len(st.Masters) > 0 {
			return st.Masters
		}
	}
	return m.cfg.Masters
}
