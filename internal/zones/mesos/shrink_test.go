package mesos

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/zones"
)

// editFixture returns the fixture state with edit applied to its decoded
// JSON object.
func editFixture(t *testing.T, edit func(st map[string]any)) []byte {
	t.Helper()
	var st map[string]any
	require.NoError(t, json.Unmarshal(fixtureState(t), &st))
	edit(st)
	data, err := json.Marshal(st)
	require.NoError(t, err)
	return data
}

// eachTask calls f on every task object of the state's frameworks.
func eachTask(st map[string]any, f func(task map[string]any)) {
	for _, fw := range st["frameworks"].([]any) {
		for _, task := range fw.(map[string]any)["tasks"].([]any) {
			f(task.(map[string]any))
		}
	}
}

// askA asks addr over UDP for name's A records and returns the rcode and
// the addresses.
func askA(t *testing.T, addr, name string) (int, []string) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Net: "udp"}).Exchange(q, addr)
	require.NoError(t, err)
	var ips []string
	for _, rr := range r.Answer {
		ips = append(ips, rr.(*dns.A).A.String())
	}
	return r.Rcode, ips
}

// TestMalformedTasksFailThePoll: a state whose running tasks all (or
// mostly) have fields of the wrong JSON type is a failed poll; the last
// good zone keeps answering over DNS.
func TestMalformedTasksFailThePoll(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(task map[string]any)
	}{
		{"names are numbers", func(task map[string]any) { task["name"] = 12345 }},
		{"states are numbers", func(task map[string]any) { task["state"] = 1; task["id"] = []any{} }},
		{"statuses are objects", func(task map[string]any) { task["statuses"] = map[string]any{"state": "TASK_RUNNING"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
			addr := serveAuthority(t, zones.NewAuthority(m.Store()))
			require.NoError(t, m.Poll(t.Context()))
			good := m.Store().Load()
			rcode, ips := askA(t, addr, "nginx.marathon.mesos.")
			require.Equal(t, dns.RcodeSuccess, rcode)
			require.Equal(t, []string{"10.3.0.3"}, ips)

			fake.SetState(t, editFixture(t, func(st map[string]any) { eachTask(st, tc.edit) }))
			err := m.Poll(t.Context())
			require.ErrorIs(t, err, errMalformedTasks)
			require.Same(t, good, m.Store().Load())
			stats := m.Stats()
			require.Equal(t, uint64(1), stats.Failures)
			require.Contains(t, stats.LastError, "wrong JSON type")
			require.Equal(t, good.Len(), stats.Records)
			rcode, ips = askA(t, addr, "nginx.marathon.mesos.")
			require.Equal(t, dns.RcodeSuccess, rcode, "the last good zone keeps answering")
			require.Equal(t, []string{"10.3.0.3"}, ips)
		})
	}
}

// TestCheckTasks: a state fails when more tasks are malformed than
// decoded; fewer malformed ones are left out and counted.
func TestCheckTasks(t *testing.T) {
	const good = `{"id":"x","name":"t","state":"TASK_RUNNING"}`
	const bad = `{"id":5,"name":"t","state":"TASK_RUNNING"}`
	state := func(tasks ...string) *State {
		body := ""
		for i, task := range tasks {
			if i > 0 {
				body += ","
			}
			body += task
		}
		st, err := DecodeState(strings.NewReader(`{"frameworks":[{"id":"f","name":"m","tasks":[` + body + `]}]}`))
		require.NoError(t, err)
		return st
	}
	for _, tc := range []struct {
		name  string
		tasks []string
		fails bool
	}{
		{"no tasks at all", nil, false},
		{"all good", []string{good, good}, false},
		{"one of three malformed", []string{good, bad, good}, false},
		{"half malformed", []string{good, bad}, false},
		{"two of three malformed", []string{bad, good, bad}, true},
		{"all malformed", []string{bad, bad}, true},
		{"the only task malformed", []string{bad}, true},
		{"malformed and not running", []string{good, `{"id":5,"state":"TASK_KILLED"}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkTasks(state(tc.tasks...))
			if tc.fails {
				require.ErrorIs(t, err, errMalformedTasks)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// withoutTasks empties every framework's task list: the fixture's 148
// records drop to the 20 that do not name a task.
func withoutTasks(st map[string]any) {
	for _, fw := range st["frameworks"].([]any) {
		fw.(map[string]any)["tasks"] = []any{}
	}
}

// shrinkShare is the share of from's records that to lacks.
func shrinkShare(from, to *zones.Zone) float64 {
	return float64(from.Len()-to.Len()) / float64(from.Len())
}

// TestShrinkHeldForOnePoll: a state that takes most names away is held
// for one poll, during which the served zone keeps answering, and applied
// when the next poll from the same leader confirms it.
func TestShrinkHeldForOnePoll(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
	addr := serveAuthority(t, zones.NewAuthority(m.Store()))
	require.NoError(t, m.Poll(t.Context()))
	full := m.Store().Load()

	fake.SetState(t, editFixture(t, withoutTasks))
	require.NoError(t, m.Poll(t.Context()), "a held zone is no failed poll")
	require.Same(t, full, m.Store().Load())
	rcode, ips := askA(t, addr, "nginx.marathon.mesos.")
	require.Equal(t, dns.RcodeSuccess, rcode)
	require.Equal(t, []string{"10.3.0.3"}, ips)
	stats := m.Stats()
	require.Equal(t, uint64(1), stats.HeldShrinks)
	require.Zero(t, stats.Failures)
	require.Equal(t, full.Len(), stats.Records)

	require.NoError(t, m.Poll(t.Context()))
	shrunk := m.Store().Load()
	require.NotSame(t, full, shrunk)
	require.Greater(t, shrinkShare(full, shrunk), 0.8)
	rcode, _ = askA(t, addr, "nginx.marathon.mesos.")
	require.Equal(t, dns.RcodeNameError, rcode)
	require.Equal(t, uint64(1), m.Stats().HeldShrinks)
	require.Equal(t, shrunk.Len(), m.Stats().Records)
}

// TestShrinkHoldEnds: a held shrink that the next poll does not repeat is
// forgotten: a later shrink is held again rather than taken as its
// confirmation. A failed poll in between neither confirms nor forgets it.
func TestShrinkHoldEnds(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
	require.NoError(t, m.Poll(t.Context()))
	full := m.Store().Load()
	shrunk := editFixture(t, withoutTasks)

	fake.SetState(t, shrunk)
	require.NoError(t, m.Poll(t.Context()))
	fake.SetState(t, fixtureState(t))
	require.NoError(t, m.Poll(t.Context()))
	fake.SetState(t, shrunk)
	require.NoError(t, m.Poll(t.Context()))
	require.Same(t, full, m.Store().Load(), "held again")
	require.Equal(t, uint64(2), m.Stats().HeldShrinks)

	fake.SetMode(testsupport.MesosFail)
	require.Error(t, m.Poll(t.Context()))
	fake.SetMode(testsupport.MesosOK)
	require.NoError(t, m.Poll(t.Context()))
	require.NotSame(t, full, m.Store().Load(), "confirmed by the next successful poll")
}

// TestShrinkConfirmedBySameLeaderOnly: a shrink held from one leader is
// not confirmed by a state from another (a failover's new leader); the
// new leader's second state is.
func TestShrinkConfirmedBySameLeaderOnly(t *testing.T) {
	a := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	b := testsupport.NewFakeMesosMaster(t, editFixture(t, withoutTasks))
	b.SetLeader(a.Addr())
	m := newMaster(t, masterConfig(t, []string{a.Addr(), b.Addr()}, ""))
	require.NoError(t, m.Poll(t.Context()))
	full := m.Store().Load()

	a.SetState(t, editFixture(t, withoutTasks))
	require.NoError(t, m.Poll(t.Context()))
	require.Same(t, full, m.Store().Load())

	// Leadership moves to b, whose state has the same shrink.
	a.SetLeader(b.Addr())
	b.SetLeader("")
	require.NoError(t, m.Poll(t.Context()))
	require.Equal(t, b.Addr(), m.Stats().Leader)
	require.Same(t, full, m.Store().Load(), "another leader: held anew")
	require.NoError(t, m.Poll(t.Context()))
	require.NotSame(t, full, m.Store().Load())
	require.Equal(t, uint64(2), m.Stats().HeldShrinks)
}

// TestShrinkApplied covers shrinks that go in at once: maxShrink 1 turns
// the hold off, a loss within maxShrink is no shrink to hold, and a state
// listing the frameworks gone as completed explains its loss.
func TestShrinkApplied(t *testing.T) {
	const marathon = "20140703-014514-3041283216-5050-5348-0000"
	removeMarathon := func(completed bool) func(map[string]any) {
		return func(st map[string]any) {
			var kept []any
			for _, fw := range st["frameworks"].([]any) {
				if fw.(map[string]any)["id"] == marathon {
					if completed {
						st["completed_frameworks"] = []any{fw}
					}
					continue
				}
				kept = append(kept, fw)
			}
			st["frameworks"] = kept
		}
	}
	for _, tc := range []struct {
		name  string
		extra string
		edit  func(map[string]any)
		held  bool
	}{
		{"every task gone", "", withoutTasks, true},
		{"every task gone, maxShrink 1", `,"maxShrink":1`, withoutTasks, false},
		{"every task gone, maxShrink 0.9", `,"maxShrink":0.9`, withoutTasks, false},
		{"marathon gone", "", removeMarathon(false), true},
		{"marathon completed", "", removeMarathon(true), false},
		{"marathon completed, the other tasks gone", "", func(st map[string]any) {
			removeMarathon(true)(st)
			withoutTasks(st)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			m := newMaster(t, masterConfig(t, []string{fake.Addr()}, tc.extra))
			require.NoError(t, m.Poll(t.Context()))
			full := m.Store().Load()
			fake.SetState(t, editFixture(t, tc.edit))
			require.NoError(t, m.Poll(t.Context()))
			if tc.held {
				require.Same(t, full, m.Store().Load())
				require.Equal(t, uint64(1), m.Stats().HeldShrinks)
				// Confirmed by the next poll.
				require.NoError(t, m.Poll(t.Context()))
			} else {
				require.Zero(t, m.Stats().HeldShrinks)
			}
			z := m.Store().Load()
			require.NotSame(t, full, z)
			require.Greater(t, shrinkShare(full, z), 0.5, "a shrink beyond the default maxShrink")
			require.Equal(t, dns.RcodeNameError, z.Lookup("nginx.marathon.mesos.", dns.TypeA).Rcode)
		})
	}
}
