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
