package watchdog

import (
	"time"
)

// State is what the watchdog believes about the proxy.
type State int

// States.
const (
	// Unknown: nothing observed yet. The first observation decides, as
	// there is no earlier state for a blip to flap.
	Unknown State = iota
	// Up: the file names the proxy.
	Up
	// Down: the file names the upstream resolvers.
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Machine is the health-check state machine: hysteresis between Up and
// Down, and the restart escalation. It is a pure function of the
// observations and their times, so tests drive it without clocks.
type Machine struct {
	// FailAfter consecutive failures turn Up into Down.
	FailAfter int
	// RecoverAfter consecutive successes turn Down into Up.
	RecoverAfter int
	// RestartAfter, when positive, is how long failures may last before a
	// restart is asked for, and then between further restarts.
	RestartAfter time.Duration

	state         State
	fails, oks    int
	failingSince  time.Time // first failure of the current streak
	lastRestart   time.Time
	restartedOnce bool
}

// Step is the outcome of one observation.
type Step struct {
	// State after the observation.
	State State
	// Changed reports a transition (Unknown to anything included).
	Changed bool
	// Fails and Oks are the current streaks.
	Fails, Oks int
	// Restart asks for the proxy to be restarted now.
	Restart bool
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Observe records one health check taken at now.
func (m *Machine) Observe(ok bool, now time.Time) Step {
	prev := m.state
	if ok {
		m.oks++
		m.fails = 0
	} else {
		if m.fails == 0 {
			m.failingSince = now
		}
		m.fails++
		m.oks = 0
	}
	switch m.state {
	case Unknown:
		m.state = Down
		if ok {
			m.state = Up
		}
	case Up:
		if m.fails >= m.FailAfter {
			m.state = Down
		}
	case Down:
		if m.oks >= m.RecoverAfter {
			m.state = Up
		}
	}
	if m.state == Up {
		m.restartedOnce = false
	}
	step := Step{State: m.state, Changed: m.state != prev, Fails: m.fails, Oks: m.oks}
	if m.RestartAfter > 0 && m.state == Down && !ok {
		// The clock starts at the first failure of the streak, and again
		// at each restart: the proxy gets RestartAfter to come back.
		since := m.failingSince
		if m.restartedOnce && m.lastRestart.After(since) {
			since = m.lastRestart
		}
		if now.Sub(since) >= m.RestartAfter {
			step.Restart = true
			m.lastRestart = now
			m.restartedOnce = true
		}
	}
	return step
}
