package mesos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/zones"
)

// Following the leader's operator API event stream (Mesos 1.1 and later):
// after a full read of the state, master mode subscribes to the leader
// (Call.SUBSCRIBE of include/mesos/v1/master/master.proto), starts again
// from the SUBSCRIBED snapshot and applies the task, agent and framework
// events to the live state as they come; a coalescer turns bursts of them
// into a few zone swaps a second. The full read every refreshSeconds goes
// on: it is the resync while the stream runs, and the only source when
// the master cannot stream.

// Limits on a stream's records: the SUBSCRIBED snapshot holds the whole
// cluster (about 1.5 KB a task), later events one task or agent each.
const (
	maxSnapshotRecord = 1 << 30
	maxEventRecord    = 16 << 20
)

// Coalescing: a swap waits for swapQuiet without events, or swapMaxDelay
// after the first one at most; two swaps are at least swapMinInterval
// apart, so a steady flow of events makes at most 1/swapMinInterval swaps
// a second, each built from every event received.
const (
	swapQuiet       = 50 * time.Millisecond
	swapMaxDelay    = 250 * time.Millisecond
	swapMinInterval = 250 * time.Millisecond
)

// missedHeartbeats is how many heartbeat intervals may pass without a
// record before the stream is taken for dead.
const missedHeartbeats = 3

// errNoStream is a master that does not serve the event stream: an older
// Mesos (no /api/v1), or something in between that answers otherwise.
var errNoStream = errors.New("the master does not serve the operator API event stream")

// errStreamSilent is a stream that sent nothing, not even a heartbeat, for
// missedHeartbeats intervals.
var errStreamSilent = errors.New("no event or heartbeat")

// streamLoop follows the leader's event stream until ctx ends: it
// subscribes after a successful full read, and again after a lost stream
// (backing off up to refreshSeconds). A master that cannot stream is
// logged once and asked again after each later full read.
func (m *Master) streamLoop(ctx context.Context) {
	refresh := time.Duration(m.cfg.RefreshSeconds) * time.Second
	backoff := time.Second
	waitPoll, loggedNoStream := true, false
	for {
		if waitPoll {
			select {
			case <-ctx.Done():
				return
			case <-m.polledCh:
			}
		}
		m.mu.Lock()
		leader := m.leader
		m.mu.Unlock()
		if leader == "" {
			waitPoll = true
			continue
		}
		subscribed, err := m.subscribe(ctx, leader)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNoStream) {
			if !loggedNoStream {
				m.log.Info("Mesos leader has no operator API event stream; reading the whole state every refreshSeconds only",
					"leader", leader, "refreshSeconds", m.cfg.RefreshSeconds, "err", err)
				loggedNoStream = true
			}
			waitPoll = true
			continue
		}
		if subscribed {
			backoff = time.Second
			loggedNoStream = false
		}
		m.log.Warn("Mesos operator API event stream lost; subscribing again", "leader", leader, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, max(refresh, time.Second))
		waitPoll = false
	}
}

// subscribe follows the event stream of the master at addr until it ends,
// fails or ctx ends; subscribed reports whether it got as far as the
// SUBSCRIBED snapshot.
func (m *Master) subscribe(ctx context.Context, addr string) (subscribed bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v1", bytes.NewReader([]byte(`{"type":"SUBSCRIBE"}`)))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "spartan")
	resp, err := m.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("POST /api/v1 SUBSCRIBE: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusMethodNotAllowed,
		resp.StatusCode == http.StatusNotImplemented, resp.StatusCode == http.StatusUnsupportedMediaType,
		resp.StatusCode == http.StatusNotAcceptable:
		return false, fmt.Errorf("%w: POST /api/v1 SUBSCRIBE: %s", errNoStream, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("POST /api/v1 SUBSCRIBE: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return false, fmt.Errorf("%w: POST /api/v1 SUBSCRIBE answered with Content-Type %q, not a stream of JSON records", errNoStream, ct)
	}

	// The snapshot may take as long as a state read; then each record
	// must come within missedHeartbeats intervals.
	silent := time.AfterFunc(time.Duration(m.cfg.StateTimeoutSeconds)*time.Second, func() { cancel(errStreamSilent) })
	defer silent.Stop()
	fail := func(what string, err error) error {
		if cause := context.Cause(ctx); errors.Is(cause, errStreamSilent) {
			return fmt.Errorf("%s: %w", what, cause)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	rr := newRecordReader(resp.Body, maxSnapshotRecord)
	rec, err := rr.next()
	if err != nil {
		return false, fail("reading SUBSCRIBED", err)
	}
	ev, err := decodeEvent(rec)
	if err != nil {
		return false, fmt.Errorf("%w: first record: %w", errNoStream, err)
	}
	if ev.Type != eventSubscribed || ev.Subscribed == nil {
		return false, fmt.Errorf("%w: first record is %s, not SUBSCRIBED", errNoStream, ev.Type)
	}
	interval := time.Duration(ev.Subscribed.HeartbeatIntervalSeconds * float64(time.Second))
	if interval <= 0 {
		interval = time.Duration(m.cfg.RefreshSeconds) * time.Second
	}
	m.liveMu.Lock()
	next := liveFromSubscribed(ev.Subscribed, m.live)
	if m.live != nil {
		// A full read in flight started before this snapshot: it must
		// not replace it (see Poll).
		next.logging = m.live.logging
	}
	m.live = next
	m.liveEpoch++
	m.snapshotNew = true
	m.liveMu.Unlock()
	m.setStreaming(true)
	defer m.setStreaming(false)
	m.kickSwap()
	m.log.Info("following the Mesos operator API event stream", "leader", addr,
		"tasks", len(ev.Subscribed.GetState.GetTasks.Tasks), "heartbeat", interval)

	rr.max = maxEventRecord
	for {
		silent.Reset(missedHeartbeats * interval)
		rec, err := rr.next()
		if err != nil {
			return true, fail("reading events", err)
		}
		ev, err := decodeEvent(rec)
		if err != nil {
			// The state can no longer be trusted to follow the master:
			// start again from a new snapshot.
			return true, err
		}
		if ev.Type == eventHeartbeat {
			continue
		}
		m.liveMu.Lock()
		changed := m.live.apply(ev)
		m.liveMu.Unlock()
		m.mu.Lock()
		m.stats.Events++
		m.mu.Unlock()
		if changed {
			m.kickSwap()
		}
	}
}

func (m *Master) setStreaming(on bool) {
	m.mu.Lock()
	m.stats.Streaming = on
	m.mu.Unlock()
}

// kickSwap tells the coalescer the live state changed.
func (m *Master) kickSwap() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// coalesce swaps in the zone of the live state after changes, a burst of
// them at a time (see swapQuiet), until ctx ends.
func (m *Master) coalesce(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		deadline := time.Now().Add(swapMaxDelay)
		if d := last.Add(swapMinInterval); d.After(deadline) {
			deadline = d
		}
		// Quiet for swapQuiet, or at the deadline, and never sooner
		// than swapMinInterval after the last swap.
		delay := func() time.Duration {
			return max(min(swapQuiet, time.Until(deadline)), time.Until(last.Add(swapMinInterval)))
		}
		t := time.NewTimer(delay())
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-m.kick:
				t.Reset(delay())
			case <-t.C:
				break wait
			}
		}
		last = time.Now()
		m.swapLive(ctx)
	}
}

// swapLive builds the zone of the live state and swaps it in when it
// differs from the served one: a patch of the served zone when only tasks
// changed (see incremental.go), else a whole build. Events are the
// leader's own account of each change, so the shrinks they make are not
// held back; a stream snapshot is checked as a full read is (holdShrink),
// and while its zone is held, so are the events after it, until a poll
// settles it.
func (m *Master) swapLive(ctx context.Context) {
	m.pollMu.Lock()
	defer m.pollMu.Unlock()
	start := time.Now()
	m.liveMu.Lock()
	if m.live == nil || (m.liveHeld && !m.snapshotNew) {
		m.liveMu.Unlock()
		return
	}
	dirty, full := m.live.takeChanges()
	st, refs := m.live.state()
	changed := make(map[taskRef]*Task, len(dirty))
	for ref := range dirty {
		changed[ref] = m.live.runningTask(ref)
	}
	snapshot := m.snapshotNew
	m.snapshotNew = false
	m.liveMu.Unlock()
	if !full && len(changed) == 0 {
		return
	}
	opt := m.opt
	opt.Resolve = m.resolver(ctx)
	opt.Masters = m.recordMasters()
	cur := m.store.Load()
	serial := nextSerial(cur.Serial())
	// The thisdcos.directory zone follows the same changes; it is patched
	// or built beside the cluster zone, as a poll builds the two.
	curNav := m.navStore.Load()
	navOpt := opt
	navOpt.Resolve = m.agentResolver(ctx)
	navSerial := nextSerial(curNav.Serial())
	nidx := m.navIndex
	var nz *zones.Zone
	var navBuild errgroup.Group
	navBuild.Go(func() error {
		navPatched := false
		if !full && !snapshot && nidx != nil {
			nz, navPatched = nidx.patch(curNav, changed, &navOpt, navSerial)
		}
		if !navPatched {
			nz, nidx = buildNavIndexed(st, refs, &navOpt, navSerial)
		}
		return nil
	})
	var z *zones.Zone
	patched := false
	if !full && !snapshot && m.index != nil {
		z, patched = m.index.patch(cur, changed, &opt, serial)
	}
	idx := m.index
	var gs GenStats
	if !patched {
		z, gs, idx = buildIndexed(st, refs, &opt, serial)
	}
	_ = navBuild.Wait() // never fails
	navSwapped := nz.Hash() != curNav.Hash()
	if z.Hash() == cur.Hash() {
		m.index, m.navIndex = idx, nidx
		if navSwapped {
			m.mu.Lock()
			m.navStore.Swap(nz)
			m.mu.Unlock()
		}
		return
	}
	if snapshot {
		m.mu.Lock()
		var served *State
		if m.enum != nil {
			served = m.enum.st
		}
		m.mu.Unlock()
		held := m.holdShrink(cur, z, served, st)
		m.liveMu.Lock()
		m.liveHeld = held
		m.liveMu.Unlock()
		if held {
			m.mu.Lock()
			m.stats.HeldShrinks++
			m.mu.Unlock()
			return
		}
	}
	m.index, m.navIndex = idx, nidx
	m.mu.Lock()
	m.store.Swap(z)
	if navSwapped {
		m.navStore.Swap(nz)
	}
	m.enum = &enumCache{st: st}
	m.stats.Swaps++
	m.stats.EventSwaps++
	m.stats.EventSwapTime += time.Since(start)
	if patched {
		m.stats.PatchedSwaps++
	}
	m.stats.Records, m.stats.Serial = z.Len(), z.Serial()
	if !patched {
		// A patch leaves these counts as the last whole build made them.
		m.stats.Tasks, m.stats.DroppedNames, m.stats.PortCappedTasks = gs.Tasks, gs.Dropped, gs.PortsCapped
	}
	m.mu.Unlock()
	m.log.Debug("cluster zone updated from events", "serial", z.Serial(), "records", z.Len(),
		"changedTasks", len(changed), "patched", patched, "took", time.Since(start))
}

// beginResync starts keeping the events applied to the live state, for
// the state a poll reads (see prepareResync); it returns the stream's
// snapshot count.
func (m *Master) beginResync() uint64 {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	if m.live != nil {
		m.live.logging, m.live.log = true, nil
	}
	return m.liveEpoch
}

// resync is a poll's state made the base of the live state.
type resync struct {
	// st is the state to build the zone from: the poll's, or while the
	// event stream runs, next's.
	st *State
	// next is the live state rebased on the poll's state, with the
	// first applied events logged since beginResync applied again; nil
	// when a stream snapshot newer than the poll came meanwhile.
	next    *liveState
	applied int
	// refs name st's tasks when it is next's state: the zone is then
	// built with its index (see incremental.go).
	refs []taskRef
}

// prepareResync rebases the live state on st, a poll's state, without
// replacing it yet: the events received during the read may be newer than
// st, so they are applied again (see liveState.logging).
func (m *Master) prepareResync(st *State, epoch uint64) resync {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	rs := resync{st: st}
	if m.live == nil || m.liveEpoch == epoch {
		rs.next = liveFromState(st, m.live)
		if m.live != nil {
			for _, ev := range m.live.log {
				rs.next.applyOne(ev)
			}
			rs.applied = len(m.live.log)
		}
	}
	m.mu.Lock()
	streaming := m.stats.Streaming
	m.mu.Unlock()
	if !streaming {
		return rs
	}
	if rs.next != nil {
		rs.st, rs.refs = rs.next.state()
		// The zone is built from this state with its index: what
		// changes later is patched.
		rs.next.takeChanges()
	} else {
		rs.st, _ = m.live.state()
	}
	rs.st.Skipped = st.Skipped
	return rs
}

// commitResync makes a prepared resync the live state, with the events
// received since it was prepared, when keep (the poll succeeded and its
// zone was not held back); it ends the logging either way. A poll whose
// zone is held leaves the live state on its previous base, so events do
// not swap in what the poll held.
func (m *Master) commitResync(rs resync, epoch uint64, keep bool) (kept bool) {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	if m.live != nil {
		defer func() { m.live.logging, m.live.log = false, nil }()
	}
	if !keep {
		return false
	}
	if rs.next == nil || m.liveEpoch != epoch {
		// A stream snapshot came during the read: the zone was built
		// from it, without an index.
		return true
	}
	{
		if m.live != nil {
			for _, ev := range m.live.log[rs.applied:] {
				rs.next.applyOne(ev)
			}
		}
		m.live = rs.next
		m.liveHeld = false
	}
	return true
}
