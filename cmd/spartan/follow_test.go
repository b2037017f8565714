package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/zones/mesos"
)

const (
	followFramework = "0a1b2c3d-fw-0000"
	followAgent     = "0a1b2c3d-4e5f-6789-abcd-ef0123456789-S0"
	// followAgentIP is the agent's address: its host name is this
	// literal, so no lookup leaves the test.
	followAgentIP = "10.0.0.5"
	// followWait bounds how long a change may take to show: the process
	// polls once an hour, so only ZooKeeper and the event stream can
	// bring one within it.
	followWait = 15 * time.Second
)

// followState is a master's state (as /master/state serves it) with one
// agent and the framework "marathon" running the task name at the
// container address ip.
func followState(name, ip string) []byte {
	return fmt.Appendf(nil, `{"version":"1.11.0","hostname":"master","slaves":[`+
		`{"id":%q,"pid":"slave(1)@%s:5051","hostname":%q,"active":true}],`+
		`"frameworks":[{"id":%q,"name":"marathon","pid":"scheduler@10.0.0.9:15101","hostname":"10.0.0.9","active":true,"tasks":[`+
		`{"id":"%s.1","name":%q,"framework_id":%q,"slave_id":%q,"state":"TASK_RUNNING","resources":{"ports":"[31000-31000]"},`+
		`"statuses":[{"state":"TASK_RUNNING","timestamp":1.0,"container_status":{"network_infos":[{"ip_addresses":[{"protocol":"IPv4","ip_address":%q}]}]}}]}]}]}`,
		followAgent, followAgentIP, followAgentIP, followFramework, name, name, followFramework, followAgent, ip)
}

// eventuallyDig waits until name's A records at server are want (none and
// NXDOMAIN when want is empty).
func eventuallyDig(t *testing.T, server, name string, want ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		out, err := testsupport.Dig(t, server, name, "A")
		require.NoError(c, err)
		got := []string{}
		for l := range strings.SplitSeq(digSection(out, "ANSWER"), "\n") {
			if f := strings.Fields(l); len(f) == 5 && f[3] == "A" {
				got = append(got, f[4])
			}
		}
		status := "status: NOERROR"
		if len(want) == 0 {
			status, want = "status: NXDOMAIN", []string{}
		}
		require.Contains(c, out, status, "%s A", name)
		require.Equal(c, want, got, "%s A:\n%s", name, out)
	}, followWait, 20*time.Millisecond)
}

// eventuallyMetric waits until the scrape of url has name (with labels)
// at want.
func eventuallyMetric(t *testing.T, url string, want float64, name string, labels ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, ok := testsupport.Scrape(t, url).Value(name, labels...)
		require.True(c, ok, "%s%v exported", name, labels)
		require.Equal(c, want, v, "%s%v", name, labels)
	}, followWait, 20*time.Millisecond)
}

// TestMasterModeFollowsCluster runs the binary in master mode against a
// real ZooKeeper naming one of two fake Mesos masters, each serving its
// state and the operator API event stream, and polling only once an hour:
// tasks started and killed through the stream resolve and stop resolving
// at once, a leader change in ZooKeeper moves the poll and the stream to
// the new master, and ZooKeeper going away falls back to master.masters;
// the metrics and the status line say which.
func TestMasterModeFollowsCluster(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	zk := testsupport.StartZooKeeper(t)
	first := testsupport.NewFakeMesosMasterAt(t, "127.0.0.1:0", followState("nginx", "10.3.0.3"))
	second := testsupport.NewFakeMesosMasterAt(t, "127.0.0.4:0", followState("moved", "10.4.0.4"))
	for _, m := range []*testsupport.FakeMesosMaster{first, second} {
		m.ServeStream(t, 200*time.Millisecond)
	}
	const path = "/mesos"
	zc := zk.Dial(t, "")
	firstNode := zc.RegisterMaster(t, path, "json.info",
		testsupport.MesosMasterInfoJSON(t, "first", netip.MustParseAddrPort(first.Addr())))

	sock := testsupport.NewNotifySocket(t)
	p, _, masterAddr, _, metricsAddr := startMasterWith(t, bin, map[string]any{
		"zk":                 "zk://" + zk.Addr() + path,
		"zkDetectionTimeout": 3,
		"masters":            []string{first.Addr()},
		"refreshSeconds":     3600,
	}, sock.Env(), "WATCHDOG_USEC=1000000")
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(p.Output())
		}
	})
	metrics := "http://" + metricsAddr + "/metrics"
	eventuallyDig(t, masterAddr, "nginx.marathon.mesos.", "10.3.0.3")
	first.WaitSubscribers(t, 1)
	eventuallyMetric(t, metrics, 1, "spartan_stream_up")
	s := testsupport.Scrape(t, metrics)
	require.Equal(t, 1.0, s.Must(t, "spartan_state_leader_source", "source", "zookeeper"))
	require.Equal(t, 0.0, s.Must(t, "spartan_state_leader_source", "source", "masters"))
	require.Equal(t, 1.0, s.Must(t, "spartan_zookeeper_leader_current"))
	sock.WaitFor(t, 0, followWait, func(m string) bool {
		return strings.HasPrefix(m, "STATUS=") && strings.Contains(m, "; leader from ZooKeeper; event stream up")
	})

	t.Run("a task started through the stream resolves without a poll", func(t *testing.T) {
		first.Emit(t, testsupport.TaskAddedEvent(followFramework, followAgent, "web.1", "web", "TASK_STAGING", 31001))
		first.Emit(t, testsupport.TaskUpdatedEvent(followFramework, followAgent, "web.1", "TASK_STARTING", "", 10))
		sent := time.Now()
		first.Emit(t, testsupport.TaskUpdatedEvent(followFramework, followAgent, "web.1", "TASK_RUNNING", "10.9.9.9", 11))
		eventuallyDig(t, masterAddr, "web.marathon.mesos.", "10.9.9.9")
		// Reported, not asserted: dig runs as a process every 20 ms.
		t.Logf("TASK_RUNNING sent to resolving: %v", time.Since(sent))
		// A container address and no port mapped to a host port: autoip
		// is the container's address (dcos-net's
		// dcos_net_mesos_listener:task_autoip).
		eventuallyDig(t, masterAddr, "web.marathon.autoip.dcos.thisdcos.directory.", "10.9.9.9")
		require.Equal(t, 1, first.StatePolls(""), "no poll but the first")
		s := testsupport.Scrape(t, metrics)
		require.GreaterOrEqual(t, s.Must(t, "spartan_stream_events_total"), 3.0)
		require.GreaterOrEqual(t, s.Must(t, "spartan_stream_swaps_total"), 1.0)
		require.LessOrEqual(t, s.Must(t, "spartan_stream_patched_swaps_total"), s.Must(t, "spartan_stream_swaps_total"))
	})

	t.Run("a task killed stops resolving", func(t *testing.T) {
		first.Emit(t, testsupport.TaskUpdatedEvent(followFramework, followAgent, "web.1", "TASK_KILLED", "", 12))
		eventuallyDig(t, masterAddr, "web.marathon.mesos.")
		eventuallyDig(t, masterAddr, "web.marathon.autoip.dcos.thisdcos.directory.")
		eventuallyDig(t, masterAddr, "nginx.marathon.mesos.", "10.3.0.3")
		require.Equal(t, 1, first.StatePolls(""), "no poll but the first")
	})

	t.Run("a leader change in ZooKeeper moves the poll and the stream", func(t *testing.T) {
		// As a failover: the new leader joins, the old one's session ends.
		zc.RegisterMaster(t, path, "json.info",
			testsupport.MesosMasterInfoJSON(t, "second", netip.MustParseAddrPort(second.Addr())))
		zc.Unregister(t, path, firstNode)
		first.EndStreams()
		eventuallyDig(t, masterAddr, "moved.marathon.mesos.", "10.4.0.4")
		eventuallyDig(t, masterAddr, "nginx.marathon.mesos.")
		eventuallyDig(t, masterAddr, "leader.mesos.", "127.0.0.4")
		require.Equal(t, 1, second.StatePolls(""))
		require.Equal(t, 1, first.StatePolls(""), "the old leader is not asked again")

		second.WaitSubscribers(t, 1)
		second.Emit(t, testsupport.TaskAddedEvent(followFramework, followAgent, "api.1", "api", "TASK_STAGING", 31002))
		second.Emit(t, testsupport.TaskUpdatedEvent(followFramework, followAgent, "api.1", "TASK_RUNNING", "10.4.0.5", 20))
		eventuallyDig(t, masterAddr, "api.marathon.mesos.", "10.4.0.5")
		require.Equal(t, 1, second.StatePolls(""), "no poll but the one the leader change made")
	})

	t.Run("ZooKeeper gone: master.masters after zkDetectionTimeout", func(t *testing.T) {
		zk.Stop()
		eventuallyMetric(t, metrics, 0, "spartan_zookeeper_leader_current")
		eventuallyMetric(t, metrics, 1, "spartan_state_leader_source", "source", "masters")
		eventuallyMetric(t, metrics, 0, "spartan_state_leader_source", "source", "zookeeper")
		sock.WaitFor(t, 0, followWait, func(m string) bool {
			return strings.HasPrefix(m, "STATUS=") && strings.Contains(m, "), asking master.masters;")
		})
		// The last leader ZooKeeper named, first of the fallback's
		// candidates, is polled; it still answers, so its zone is served.
		require.GreaterOrEqual(t, second.StatePolls(""), 2)
		eventuallyDig(t, masterAddr, "moved.marathon.mesos.", "10.4.0.4")
	})

	stopCleanly(t, p)
}

// The status line says what names the Mesos leader and whether its event
// stream is followed.
func TestFollowStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   mesos.Stats
		want string
	}{
		{"fixed state", mesos.Stats{}, ""},
		{"masters, polling", mesos.Stats{LeaderSource: mesos.LeaderMasters}, "; event stream down (polling only)"},
		{"masters, streaming", mesos.Stats{LeaderSource: mesos.LeaderMasters, Streaming: true, Events: 4}, "; event stream up, 4 events"},
		{"ZooKeeper current", mesos.Stats{LeaderSource: mesos.LeaderZooKeeper, ZooKeeper: true, ZKCurrent: true, Streaming: true, Events: 2},
			"; leader from ZooKeeper; event stream up, 2 events"},
		{"ZooKeeper lost, within zkDetectionTimeout", mesos.Stats{LeaderSource: mesos.LeaderZooKeeper, ZooKeeper: true, ZKError: "connection to ZooKeeper lost"},
			"; ZooKeeper names no current leader (connection to ZooKeeper lost); event stream down (polling only)"},
		{"ZooKeeper lost, fallback", mesos.Stats{LeaderSource: mesos.LeaderMasters, ZooKeeper: true, ZKError: "no json.info_ node", Streaming: true},
			"; ZooKeeper names no current leader (no json.info_ node), asking master.masters; event stream up, 0 events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, followStatus(tc.in))
		})
	}
}
