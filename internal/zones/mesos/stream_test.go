package mesos

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// Fixture IDs used by the stream tests.
const (
	marathonID = "20140703-014514-3041283216-5050-5348-0000"
	agentID    = "20140803-125133-3041283216-5050-2410-0"
)

// udpA asks addr over UDP for name's A records: the rcode and addresses.
func udpA(t *testing.T, addr, name string) (int, []string) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		return -1, nil
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return r.Rcode, out
}

// eventuallyA waits until name resolves to want at addr (NXDOMAIN when
// want is nil).
func eventuallyA(t *testing.T, addr, name string, want ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		rcode, got := udpA(t, addr, name)
		if want == nil {
			return rcode == dns.RcodeNameError
		}
		return rcode == dns.RcodeSuccess && len(got) == len(want) && got[0] == want[0]
	}, 10*time.Second, 5*time.Millisecond, "%s should resolve to %v", name, want)
}

// taskAdded is a TASK_ADDED of a marathon task on the fixture's agent,
// with host port 31000.
func taskAdded(id, name, state string) map[string]any {
	return testsupport.TaskAddedEvent(marathonID, agentID, id, name, state, 31000)
}

// taskUpdated is a TASK_UPDATED of a marathon task on the fixture's
// agent, its status carrying the container's address ip when not empty.
func taskUpdated(id, state, ip string, ts float64) map[string]any {
	return testsupport.TaskUpdatedEvent(marathonID, agentID, id, state, ip, ts)
}

// startStreaming runs master mode against a fake master serving the
// fixture and its event stream, and waits for the subscription.
func startStreaming(t *testing.T, heartbeat time.Duration) (*testsupport.FakeMesosMaster, *Service) {
	t.Helper()
	fake := testsupport.NewFakeMesosMaster(t, uniqueTaskIDs(t, fixtureState(t)))
	fake.ServeStream(t, heartbeat)
	// No poll but the first within the test: what changes comes from the
	// stream.
	cfg := masterConfig(t, []string{fake.Addr()}, `,"refreshSeconds":3600`)
	s := startService(t, cfg, ServiceOptions{Logger: discardLogger()})
	fake.WaitSubscribers(t, 1)
	require.Eventually(t, func() bool { return s.Master.Stats().Streaming }, 10*time.Second, 5*time.Millisecond)
	return fake, s
}

// Events change the names served at the master's DNS port without a
// poll: a task that goes TASK_RUNNING resolves, at the address of its
// running status's network_infos; a killed one, the tasks of a removed
// agent and of a removed framework (master.proto's TASK_UPDATED,
// AGENT_REMOVED, FRAMEWORK_REMOVED) stop resolving.
func TestStreamFollowsEvents(t *testing.T) {
	fake, s := startStreaming(t, time.Minute)
	addr := s.Addrs()[0]
	eventuallyA(t, addr, "nginx.marathon.mesos.", "10.3.0.3")

	fake.Emit(t, taskAdded("web.1", "web", "TASK_STAGING"))
	fake.Emit(t, taskUpdated("web.1", "TASK_STARTING", "", 100))
	fake.Emit(t, taskUpdated("web.1", "TASK_RUNNING", "10.9.9.9", 101))
	eventuallyA(t, addr, "web.marathon.mesos.", "10.9.9.9")
	eventuallyA(t, addr, "web.marathon.containerip.dcos.thisdcos.directory.", "10.9.9.9")

	fake.Emit(t, taskUpdated("web.1", "TASK_KILLED", "", 102))
	eventuallyA(t, addr, "web.marathon.mesos.")
	eventuallyA(t, addr, "web.marathon.containerip.dcos.thisdcos.directory.")

	// nginx runs on the agent removed here: both zones are built whole.
	eventuallyA(t, addr, "nginx.marathon.agentip.dcos.thisdcos.directory.", "1.2.3.11")
	fake.Emit(t, map[string]any{"type": "AGENT_REMOVED", "agent_removed": map[string]any{"agent_id": v1IDJSON(agentID)}})
	eventuallyA(t, addr, "nginx.marathon.mesos.")
	eventuallyA(t, addr, "nginx.marathon.agentip.dcos.thisdcos.directory.")
	fake.Emit(t, map[string]any{"type": "FRAMEWORK_REMOVED", "framework_removed": map[string]any{
		"framework_info": map[string]any{"id": v1IDJSON(marathonID), "name": "marathon", "user": "root"}}})
	eventuallyA(t, addr, "reviewbot.marathon.mesos.")

	st := s.Master.Stats()
	require.Equal(t, uint64(1), st.Polls, "no poll but the first")
	require.Equal(t, 1, fake.StatePolls(""))
	require.GreaterOrEqual(t, st.Events, uint64(6))
	require.NotZero(t, st.EventSwaps)
}

// A master without the stream (404 on /api/v1, as Mesos before 1.1) is
// polled as before, and asked again after each poll.
func TestStreamNotServed(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	cfg := masterConfig(t, []string{fake.Addr()}, `,"refreshSeconds":1`)
	s := startService(t, cfg, ServiceOptions{Logger: discardLogger()})
	require.Eventually(t, func() bool { return fake.Requests("/api/v1") >= 2 }, 10*time.Second, 5*time.Millisecond)
	eventuallyA(t, s.Addrs()[0], "nginx.marathon.mesos.", "10.3.0.3")
	st := s.Master.Stats()
	require.False(t, st.Streaming)
	require.Zero(t, st.Events)
	require.GreaterOrEqual(t, st.Polls, uint64(2))
}

// A stream that goes silent for three heartbeat intervals is dropped and
// subscribed again (the interval is SUBSCRIBED's heartbeat_interval_seconds,
// which Mesos's Master::ReadOnlyHandler::jsonifySubscribe sets to
// DEFAULT_HEARTBEAT_INTERVAL, 15 s, of src/master/constants.hpp); so is one the master ends. Each new subscription
// starts from its SUBSCRIBED snapshot (master.proto Event.Subscribed),
// which brings what changed meanwhile without a poll.
func TestStreamResubscribes(t *testing.T) {
	fake, s := startStreaming(t, 20*time.Millisecond)
	addr := s.Addrs()[0]

	fake.MuteHeartbeats(true)
	require.Eventually(t, func() bool { return fake.Requests("/api/v1") >= 2 }, 10*time.Second, 5*time.Millisecond,
		"a silent stream is subscribed again")
	fake.MuteHeartbeats(false)
	fake.WaitSubscribers(t, 1)

	// Changed while no stream was open: the next snapshot brings it.
	fake.EndStreams()
	c := testsupport.MesosV1FromState(t, uniqueTaskIDs(t, fixtureState(t)))
	require.NotEmpty(t, c.Tasks)
	fake.SetState(t, syntheticState(4, 8))
	require.Eventually(t, func() bool { return fake.Requests("/api/v1") >= 3 }, 10*time.Second, 5*time.Millisecond)
	eventuallyA(t, addr, "app-0.marathon.mesos.", "10.1.0.0")
	eventuallyA(t, addr, "nginx.marathon.mesos.")
	require.Equal(t, uint64(1), s.Master.Stats().Polls, "no poll but the first")
}

// A burst of events makes few swaps: two swaps are at least
// swapMinInterval apart, whatever the events' rate; and each patches the
// served zone.
func TestStreamCoalesces(t *testing.T) {
	fake, s := startStreaming(t, time.Minute)
	addr := s.Addrs()[0]
	// A first task through the stream: the snapshot's zone, built
	// whole, is in place.
	fake.Emit(t, taskAdded("first.1", "first", "TASK_RUNNING"))
	fake.Emit(t, taskUpdated("first.1", "TASK_RUNNING", "10.8.1.1", 1))
	eventuallyA(t, addr, "first.marathon.mesos.", "10.8.1.1")
	before := s.Master.Stats()
	start := time.Now()
	const n = 100
	for i := range n {
		id := fmt.Sprintf("burst.%d", i)
		fake.Emit(t, taskAdded(id, fmt.Sprintf("burst-%d", i), "TASK_STAGING"))
		fake.Emit(t, taskUpdated(id, "TASK_RUNNING", fmt.Sprintf("10.8.0.%d", i+1), float64(i)))
	}
	eventuallyA(t, addr, fmt.Sprintf("burst-%d.marathon.mesos.", n-1), fmt.Sprintf("10.8.0.%d", n))
	elapsed := time.Since(start)
	after := s.Master.Stats()
	swaps := after.EventSwaps - before.EventSwaps
	require.Equal(t, before.Events+2*n, after.Events)
	require.NotZero(t, swaps)
	require.LessOrEqual(t, swaps, uint64(elapsed/swapMinInterval)+1, "%d swaps in %v", swaps, elapsed)
	require.Equal(t, after.EventSwaps-before.EventSwaps, after.PatchedSwaps-before.PatchedSwaps, "every swap a patch")
}
