package mesos

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spartan-dns/spartan/internal/mesosleader"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

// zkWaitBound bounds how long a ZooKeeper test waits for master mode to
// reach a state: a bound on a hung test, not a measurement.
const zkWaitBound = 60 * time.Second

// waitMaster waits until ok holds, looking at the master now and then.
func waitMaster(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(zkWaitBound)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("master mode never reached %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runMaster runs m until the test ends.
func runMaster(t testing.TB, m *Master) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func leaderSRVPort(m *Master) uint16 {
	ports := lookupSRVPorts(m.Store().Load(), "_leader._tcp.mesos.")
	if len(ports) != 1 {
		return 0
	}
	return ports[0]
}

// TestZooKeeperLeader runs master mode against a real ZooKeeper server in
// which the Mesos masters register as Mesos does (ephemeral sequential
// json.info_ nodes under /mesos holding MasterInfo JSON, the leader the
// lowest; see mesosleader). The refresh is an hour, so every poll here is
// started by ZooKeeper or by its silence, never by the refresh. The
// fallback follows Mesos-DNS's main.go: detectMasters seeds mesos-go's
// detector with the configured masters (detect.NewMasters), so with no
// leader detected ParseState asks them; Mesos-DNS exits once
// ZkDetectionTimeout passes without a leader, where spartan keeps polling
// them and keeps its last good zone.
func TestZooKeeperLeader(t *testing.T) {
	z := testsupport.StartZooKeeper(t)
	mesosZK := z.Dial(t, "")
	state := fixtureState(t)
	a := testsupport.NewFakeMesosMaster(t, state)
	b := testsupport.NewFakeMesosMaster(t, state)
	c := testsupport.NewFakeMesosMaster(t, state) // the configured fallback
	info := func(f *testsupport.FakeMesosMaster) []byte {
		return testsupport.MesosMasterInfoJSON(t, "id-"+f.Addr(), netip.MustParseAddrPort(f.Addr()))
	}
	port := func(f *testsupport.FakeMesosMaster) uint16 { return netip.MustParseAddrPort(f.Addr()).Port() }

	nodeA := mesosZK.RegisterMaster(t, "/mesos", "json.info", info(a))
	// zkDetectionTimeout is short, but long enough that a slow first
	// ZooKeeper session on a loaded machine does not send the first poll
	// to master.masters.
	m := newMaster(t, masterConfig(t, []string{c.Addr()},
		`,"zk":"zk://`+z.Addr()+`/mesos","zkDetectionTimeout":3,"refreshSeconds":3600`))
	runMaster(t, m)

	// Leader found: the leader ZooKeeper names is asked, and only it.
	waitMaster(t, "A's zone", func() bool { return m.Stats().Leader == a.Addr() })
	z0 := m.Store().Load()
	require.Equal(t, []string{"10.3.0.3"}, lookupA(z0, "nginx.marathon.mesos."))
	require.Equal(t, port(a), leaderSRVPort(m))
	require.Zero(t, c.StatePolls(""), "master.masters is not asked while ZooKeeper names a leader")

	// The master records name the masters registered in ZooKeeper, the
	// leader first, as Mesos-DNS's detector hands them to its generator
	// (detect.Masters: OnMasterChanged, UpdatedMasters), not
	// master.masters: with those, C would be master0 and A master1.
	require.Equal(t, []string{"127.0.0.1"}, lookupA(z0, "master0.mesos."))
	require.Empty(t, lookupA(z0, "master1.mesos."))
	follower := mesosZK.RegisterMaster(t, "/mesos", "json.info",
		testsupport.MesosMasterInfoJSON(t, "id-follower", netip.MustParseAddrPort("192.0.2.7:5050")))
	waitMaster(t, "the follower's record", func() bool {
		return slices.Equal(lookupA(m.Store().Load(), "master1.mesos."), []string{"192.0.2.7"})
	})
	require.ElementsMatch(t, []string{"127.0.0.1", "192.0.2.7"}, lookupA(m.Store().Load(), "master.mesos."))
	require.Equal(t, []string{"127.0.0.1"}, lookupA(m.Store().Load(), "leader.mesos."))
	mesosZK.Unregister(t, "/mesos", follower)
	waitMaster(t, "the follower gone", func() bool { return len(lookupA(m.Store().Load(), "master1.mesos.")) == 0 })
	require.Zero(t, c.StatePolls(""))

	// Leader change: A steps down and B leads, as Mesos moves it: B's
	// node is created, A's goes with A's session. No refresh is due for
	// an hour; the change alone starts the poll.
	a.SetLeader(b.Addr())
	nodeB := mesosZK.RegisterMaster(t, "/mesos", "json.info", info(b))
	mesosZK.Unregister(t, "/mesos", nodeA)
	waitMaster(t, "B's zone", func() bool { return m.Stats().Leader == b.Addr() && leaderSRVPort(m) == port(b) })
	require.Zero(t, c.StatePolls(""))
	served := m.Store().Load()

	// ZooKeeper stopped, and the leader it named fails too: once
	// ZooKeeper has been silent for zkDetectionTimeout, master.masters are
	// asked; with none answering the zone is kept.
	b.SetMode(testsupport.MesosFail)
	c.SetMode(testsupport.MesosFail)
	z.Stop()
	waitMaster(t, "the fallback to master.masters", func() bool { return c.StatePolls("") > 0 })
	waitMaster(t, "the fallback poll's failure", func() bool { return m.Stats().LastError != "" })
	require.Same(t, served, m.Store().Load(), "the last good zone is kept")
	require.Equal(t, []string{"10.3.0.3"}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))

	// A configured master that leads is followed while ZooKeeper is away.
	c.SetMode(testsupport.MesosOK)
	require.NoError(t, m.Poll(t.Context()))
	require.Equal(t, c.Addr(), m.Stats().Leader)
	require.Equal(t, port(c), leaderSRVPort(m))

	// ZooKeeper back: the leader it names is followed again at once.
	b.SetMode(testsupport.MesosOK)
	c.SetLeader(b.Addr())
	z.Start()
	// B's node outlives the restart with its session; a new session
	// writing it again keeps B the lowest in line either way.
	again := z.Dial(t, "")
	nodeB2 := again.RegisterMaster(t, "/mesos", "json.info", info(b))
	require.NotEqual(t, nodeB, nodeB2)
	waitMaster(t, "B's zone again", func() bool { return m.Stats().Leader == b.Addr() && leaderSRVPort(m) == port(b) })
}

// TestZooKeeperUnreachableAtStart: with no ZooKeeper server answering,
// the first poll waits zkDetectionTimeout and then asks master.masters.
func TestZooKeeperUnreachableAtStart(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	nobody := testsupport.FreePort(t, "127.0.0.1")
	m := newMaster(t, masterConfig(t, []string{fake.Addr()},
		fmt.Sprintf(`,"zk":"zk://127.0.0.1:%d/mesos","zkDetectionTimeout":1,"refreshSeconds":3600`, nobody)))
	runMaster(t, m)
	waitMaster(t, "the fallback's zone", func() bool { return m.Stats().Leader == fake.Addr() })
	require.Equal(t, []string{"10.3.0.3"}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))
	require.Equal(t, 1, fake.StatePolls(""), "one poll, at the end of zkDetectionTimeout")
}

// TestZooKeeperConfigHidesPassword: /v1/config shows master.zk as
// Mesos-DNS shows its zk, but without the digest password.
func TestZooKeeperConfigHidesPassword(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"192.0.2.1:5050"}, `,"zk":"zk://mesos:s3cret@192.0.2.2:2181,192.0.2.3/mesos","zkDetectionTimeout":7`))
	c := m.mesosDNSConfig()
	require.Equal(t, "zk://mesos:xxxxx@192.0.2.2:2181,192.0.2.3:2181/mesos", c.Zk)
	require.Equal(t, 7, c.ZkDetectionTimeout)
	require.False(t, strings.Contains(c.Zk, "s3cret"))
}

// BenchmarkZooKeeperLeaderChange measures how long a leader change takes
// to reach the served zone: from the new leader's node being written to
// ZooKeeper (and the old one's deleted) to the zone naming the new leader,
// through the watch, the MasterInfo read, the state fetch and the zone
// build of the fixture state. The refresh is an hour: only the watch can
// start these polls.
func BenchmarkZooKeeperLeaderChange(b *testing.B) {
	z := testsupport.StartZooKeeper(b)
	mesosZK := z.Dial(b, "")
	state := fixtureState(b)
	fakes := []*testsupport.FakeMesosMaster{testsupport.NewFakeMesosMaster(b, state), testsupport.NewFakeMesosMaster(b, state)}
	info := func(f *testsupport.FakeMesosMaster) []byte {
		return testsupport.MesosMasterInfoJSON(b, "id-"+f.Addr(), netip.MustParseAddrPort(f.Addr()))
	}
	node := mesosZK.RegisterMaster(b, "/mesos", "json.info", info(fakes[0]))
	m := newMaster(b, masterConfig(b, []string{fakes[0].Addr()}, `,"zk":"zk://`+z.Addr()+`/mesos","refreshSeconds":3600`))
	quiet := slog.New(slog.DiscardHandler)
	m.log, m.zk = quiet, mesosleader.New(m.zk.URL(), quiet)
	runMaster(b, m)
	waitMaster(b, "the first leader", func() bool { return m.Stats().Leader == fakes[0].Addr() })
	cur := 0
	b.ResetTimer()
	for b.Loop() {
		next := 1 - cur
		fakes[cur].SetLeader(fakes[next].Addr())
		fakes[next].SetLeader("")
		newNode := mesosZK.RegisterMaster(b, "/mesos", "json.info", info(fakes[next]))
		mesosZK.Unregister(b, "/mesos", node)
		node, cur = newNode, next
		for m.Stats().Leader != fakes[cur].Addr() {
			time.Sleep(100 * time.Microsecond)
		}
	}
}
