package metrics

import "github.com/prometheus/client_golang/prometheus"

// MasterGuard is a snapshot of master mode's guards: the authoritative
// port's client networks and response rate limiting, and the poller's hold
// on states that would shrink the zone too far. Counters are totals since
// start.
type MasterGuard struct {
	Refused     uint64 // queries from clients outside master.allowNets
	RateLimited uint64 // UDP replies over master.rrl's limit (dropped or slipped)
	Dropped     uint64 // rate-limited replies not sent
	Slipped     uint64 // rate-limited replies sent truncated and empty
	HeldShrinks uint64 // polls whose zone was held for losing more than master.maxShrink
}

var (
	dMasterRefused     = desc("master", "refused_total", "Queries to the authoritative port from clients outside master.allowNets, answered REFUSED.")
	dMasterRateLimited = desc("master", "ratelimited_total", "UDP replies of the authoritative port over the master.rrl limit, dropped or slipped.")
	dMasterDropped     = desc("master", "ratelimit_dropped_total", "Rate-limited UDP replies of the authoritative port not sent.")
	dMasterSlipped     = desc("master", "ratelimit_slipped_total", "Rate-limited UDP replies of the authoritative port sent truncated and empty, so the client retries over TCP.")
	dShrinksHeld       = desc("state", "shrinks_held_total", "Polls whose zone was held for a poll because it lost more than master.maxShrink of the served zone.")
)

// SetMasterGuard sets the function read at scrape time for master mode's
// guards; nil removes it.
func (m *Metrics) SetMasterGuard(f func() MasterGuard) {
	if f == nil {
		m.guardSrc.Store(nil)
		return
	}
	m.guardSrc.Store(&f)
}

// guardCollector exports MasterGuard snapshots.
type guardCollector Metrics

func (c *guardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dMasterRefused, dMasterRateLimited, dMasterDropped, dMasterSlipped, dShrinksHeld} {
		ch <- d
	}
}

func (c *guardCollector) Collect(ch chan<- prometheus.Metric) {
	f := (*Metrics)(c).guardSrc.Load()
	if f == nil {
		return
	}
	g := (*f)()
	ch <- counter(dMasterRefused, g.Refused)
	ch <- counter(dMasterRateLimited, g.RateLimited)
	ch <- counter(dMasterDropped, g.Dropped)
	ch <- counter(dMasterSlipped, g.Slipped)
	ch <- counter(dShrinksHeld, g.HeldShrinks)
}

// MasterFollow is a snapshot of how master mode follows the Mesos cluster
// between polls: the leading master's operator API event stream, and what
// names the leader polls ask. Counters are totals since start.
type MasterFollow struct {
	Streaming    bool   // the event stream is followed now
	Events       uint64 // events applied from the stream (heartbeats aside)
	EventSwaps   uint64 // zone swaps made by events
	PatchedSwaps uint64 // event swaps that patched the zone instead of building it whole
	// LeaderSource is what names the master polls ask: "zookeeper",
	// "masters" (master.masters: without master.zk, or in fallback from
	// it), or "" when polls read a fixed state (no series then).
	LeaderSource string
	// ZooKeeper is set when master.zk is configured; ZKCurrent then
	// reports whether ZooKeeper currently names a leader.
	ZooKeeper, ZKCurrent bool
}

// leaderSources are the values of the source label, all exported so that
// a query for the one at 1 needs no absent-series handling.
var leaderSources = []string{"zookeeper", "masters"}

var (
	dStreamUp           = desc("stream", "up", "1 while the leading Mesos master's operator API event stream is followed (master mode).")
	dStreamEvents       = desc("stream", "events_total", "Events applied from the Mesos operator API event stream, heartbeats aside.")
	dStreamSwaps        = desc("stream", "swaps_total", "Zone swaps made by events from the Mesos operator API event stream (bursts are coalesced).")
	dStreamPatchedSwaps = desc("stream", "patched_swaps_total", "Event swaps that patched the served zone instead of building it whole.")
	dLeaderSource       = desc("state", "leader_source", "1 for what names the Mesos master polls ask: zookeeper (master.zk), or masters (master.masters, without master.zk or in fallback from it).", "source")
	dZKLeaderCurrent    = desc("zookeeper", "leader_current", "1 while ZooKeeper (master.zk) currently names a leading Mesos master: a session is up and the leader's node is watched.")
)

// SetMasterFollow sets the function read at scrape time for master mode's
// event stream and leader source; nil removes it.
func (m *Metrics) SetMasterFollow(f func() MasterFollow) {
	if f == nil {
		m.followSrc.Store(nil)
		return
	}
	m.followSrc.Store(&f)
}

// followCollector exports MasterFollow snapshots.
type followCollector Metrics

func (c *followCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dStreamUp, dStreamEvents, dStreamSwaps, dStreamPatchedSwaps, dLeaderSource, dZKLeaderCurrent} {
		ch <- d
	}
}

func (c *followCollector) Collect(ch chan<- prometheus.Metric) {
	f := (*Metrics)(c).followSrc.Load()
	if f == nil {
		return
	}
	s := (*f)()
	ch <- gauge(dStreamUp, b2f(s.Streaming))
	ch <- counter(dStreamEvents, s.Events)
	ch <- counter(dStreamSwaps, s.EventSwaps)
	ch <- counter(dStreamPatchedSwaps, s.PatchedSwaps)
	if s.LeaderSource != "" {
		for _, src := range leaderSources {
			ch <- gauge(dLeaderSource, b2f(src == s.LeaderSource), src)
		}
	}
	if s.ZooKeeper {
		ch <- gauge(dZKLeaderCurrent, b2f(s.ZKCurrent))
	}
}

// b2f is 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
