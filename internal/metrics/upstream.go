package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LegResult is how one leg of an upstream race ended.
type LegResult uint8

// Leg results.
const (
	// LegWon: the leg's reply was relayed to the client.
	LegWon LegResult = iota
	// LegLost: the leg got a usable reply after another leg had won.
	LegLost
	// LegCancelled: the race ended before the leg got a reply.
	LegCancelled
	// LegTimeout: the leg got no reply within the race deadline.
	LegTimeout
	// LegError: the leg failed: SERVFAIL, REFUSED, NOTIMP, FORMERR, an
	// unparsable reply or a network error.
	LegError
)

// upstreamCounters are the counters of one upstream in one group.
type upstreamCounters struct {
	legs, wins, timeouts, errors atomic.Uint64
	caseFallbacks                atomic.Uint64
	latency                      prometheus.Observer
}

// ObserveLeg records one leg sent to upstream addr of group: always
// spartan_upstream_requests_total, then by result the wins, timeouts or
// errors counter; d is the time to the leg's reply and feeds
// spartan_upstream_leg_duration_seconds for legs that got one (won, lost
// or error replies).
func (m *Metrics) ObserveLeg(group, addr string, r LegResult, d time.Duration) {
	if m == nil {
		return
	}
	c := m.legs.get(group, addr)
	c.legs.Add(1)
	switch r {
	case LegWon:
		c.wins.Add(1)
	case LegTimeout:
		c.timeouts.Add(1)
	case LegError:
		c.errors.Add(1)
	}
	if r == LegWon || r == LegLost || (r == LegError && d > 0) {
		c.latency.Observe(d.Seconds())
	}
}

// ObserveCaseFallback records that upstream addr of group was seen to
// normalise the case of the question it was asked, so that its replies
// are no longer required to echo the randomized case of DNS 0x20
// (spartan_upstream_0x20_fallbacks_total).
func (m *Metrics) ObserveCaseFallback(group, addr string) {
	if m == nil {
		return
	}
	m.legs.get(group, addr).caseFallbacks.Add(1)
}

// RaceOutcome is how a whole upstream race ended.
type RaceOutcome uint8

// Race outcomes.
const (
	// RaceAnswered: a leg returned NOERROR (NODATA included) or NXDOMAIN.
	RaceAnswered RaceOutcome = iota
	// RaceFailed: every leg failed before the deadline; SERVFAIL sent.
	RaceFailed
	// RaceTimeout: the deadline passed with no usable answer.
	RaceTimeout
	numOutcomes
)

func (o RaceOutcome) String() string {
	switch o {
	case RaceAnswered:
		return "answered"
	case RaceFailed:
		return "failed"
	case RaceTimeout:
		return "timeout"
	}
	return "unknown"
}

type raceCounters [numOutcomes]atomic.Uint64

// ObserveRace records the outcome of one upstream race in group
// (spartan_upstream_races_total).
func (m *Metrics) ObserveRace(group string, o RaceOutcome) {
	if m == nil {
		return
	}
	if o >= numOutcomes {
		return
	}
	m.races.get(group)[o].Add(1)
}
