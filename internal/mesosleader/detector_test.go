package mesosleader

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

// waitBound is how long a test waits for the detector to reach a state
// before it gives up: a bound on a hung test, not a measurement.
const waitBound = 60 * time.Second

// startDetector runs a detector for zkURL until the test ends.
func startDetector(t *testing.T, zkURL string) *Detector {
	t.Helper()
	u, err := config.ParseZKURL(zkURL)
	require.NoError(t, err)
	d := New(u, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d.minBackoff, d.maxBackoff = 50*time.Millisecond, 500*time.Millisecond
	// Short sessions, for the cases that lose theirs (the server allows
	// 400 ms and up).
	d.sessionTimeout = 2 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return d
}

// waitFor waits until ok accepts the detector's status, woken by Changed,
// and returns that status.
func waitFor(t *testing.T, d *Detector, what string, ok func(Status) bool) Status {
	t.Helper()
	bound := time.After(waitBound)
	// Changed fires on leader changes; the reason for no leader may change
	// without it, so the status is also looked at now and then.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if st := d.Status(); ok(st) {
			return st
		}
		select {
		case <-d.Changed():
		case <-tick.C:
		case <-bound:
			t.Fatalf("detector never reached %s; status %+v", what, d.Status())
		}
	}
}

func leaderIs(addr string) func(Status) bool {
	return func(s Status) bool { return s.OK() && s.Leader == addr }
}

func noLeader(reason string) func(Status) bool {
	return func(s Status) bool {
		return s.Current && s.Leader == "" && s.Err != nil && strings.Contains(s.Err.Error(), reason)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func infoJSON(t testing.TB, addr string) []byte {
	return testsupport.MesosMasterInfoJSON(t, "id-"+addr, netip.MustParseAddrPort(addr))
}

// TestDetectorWithZooKeeper runs a real ZooKeeper server once for the
// package and follows masters written the way Mesos writes them:
// ephemeral sequential json.info_ nodes (zookeeper::Group::join with
// MASTER_INFO_JSON_LABEL) under the URL's path. Each case uses a path of
// its own; the restart comes last.
func TestDetectorWithZooKeeper(t *testing.T) {
	z := testsupport.StartZooKeeper(t)
	mesos := z.Dial(t, "")
	url := func(path string) string { return "zk://" + z.Addr() + path }

	t.Run("path appears later", func(t *testing.T) {
		d := startDetector(t, url("/late/mesos"))
		waitFor(t, d, "no path", noLeader("/late/mesos does not exist"))
		mesos.RegisterMaster(t, "/late/mesos", "json.info", infoJSON(t, "10.0.0.1:5050"))
		waitFor(t, d, "leader 10.0.0.1", leaderIs("10.0.0.1:5050"))
	})

	t.Run("lowest json.info_ leads and a change is followed", func(t *testing.T) {
		const path = "/follow"
		// A Mesos 0.23 master wrote both encodings; the protobuf one,
		// first and so lowest, is not read.
		mesos.RegisterMaster(t, path, "info", []byte("\x0a\x02id\x10\x01"))
		a := mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.11:5050"))
		b := mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.12:5050"))
		d := startDetector(t, url(path))
		st := waitFor(t, d, "leader A", leaderIs("10.0.0.11:5050"))
		require.Equal(t, a, st.Node)
		require.True(t, st.Since.IsZero())
		require.Equal(t, []string{"10.0.0.11:5050", "10.0.0.12:5050"}, st.Masters)

		// A master that joins is one more master, not a new leader
		// (Mesos-DNS's detect.Masters.UpdatedMasters).
		c := mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.13:5050"))
		st = waitFor(t, d, "three masters", func(s Status) bool { return len(s.Masters) == 3 })
		require.Equal(t, []string{"10.0.0.11:5050", "10.0.0.12:5050", "10.0.0.13:5050"}, st.Masters)
		require.Equal(t, "10.0.0.11:5050", st.Leader)

		// The leader's session ends: its node goes and the next in line
		// leads. A newer contender does not take over.
		mesos.Unregister(t, path, a)
		st = waitFor(t, d, "leader B", leaderIs("10.0.0.12:5050"))
		require.Equal(t, b, st.Node)
		require.Equal(t, []string{"10.0.0.12:5050", "10.0.0.13:5050"}, st.Masters)
		mesos.Unregister(t, path, b)
		st = waitFor(t, d, "leader C", leaderIs("10.0.0.13:5050"))
		require.Equal(t, c, st.Node)
		require.Equal(t, []string{"10.0.0.13:5050"}, st.Masters)

		mesos.Unregister(t, path, c)
		st = waitFor(t, d, "no leader", noLeader("no json.info_ node under /follow"))
		require.False(t, st.Since.IsZero())
	})

	t.Run("unreadable MasterInfo names no leader", func(t *testing.T) {
		const path = "/garbled"
		mesos.RegisterMaster(t, path, "json.info", []byte(`{"address":`))
		d := startDetector(t, url(path))
		waitFor(t, d, "no leader", noLeader("MasterInfo JSON"))
		mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.21:5050"))
		// The lowest node still leads, and still cannot be read.
		st := d.Status()
		require.Empty(t, st.Leader)
	})

	t.Run("an unreadable follower is left out", func(t *testing.T) {
		const path = "/partly"
		mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.25:5050"))
		mesos.RegisterMaster(t, path, "json.info", []byte(`{"address":`))
		mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.26:5050"))
		d := startDetector(t, url(path))
		st := waitFor(t, d, "leader", leaderIs("10.0.0.25:5050"))
		require.Equal(t, []string{"10.0.0.25:5050", "10.0.0.26:5050"}, st.Masters)
	})

	t.Run("digest credentials", func(t *testing.T) {
		const path = "/secured"
		// Mesos sets such ACLs when its zk URL carries credentials.
		mesos.MesosMasterPath(t, path, zk.DigestACL(zk.PermAll, "mesos", "s3cret"))
		owner := z.Dial(t, "mesos:s3cret")
		owner.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.31:5050"))

		d := startDetector(t, url(path))
		st := waitFor(t, d, "refused", func(s Status) bool {
			return !s.Current && s.Err != nil && strings.Contains(s.Err.Error(), zk.ErrNoAuth.Error())
		})
		require.Empty(t, st.Leader)
		d = startDetector(t, fmt.Sprintf("zk://mesos:s3cret@%s%s", z.Addr(), path))
		waitFor(t, d, "leader with credentials", leaderIs("10.0.0.31:5050"))
	})

	t.Run("server stopped and started again", func(t *testing.T) {
		const path = "/restart"
		a := mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.41:5050"))
		d := startDetector(t, url(path))
		waitFor(t, d, "leader", leaderIs("10.0.0.41:5050"))

		z.Stop()
		st := waitFor(t, d, "unreachable", func(s Status) bool { return !s.Current })
		require.Equal(t, "10.0.0.41:5050", st.Leader, "the leader last named is kept")
		require.False(t, st.Since.IsZero())

		z.Start()
		// The sessions outlive a short restart: the node is still there.
		waitFor(t, d, "leader again", leaderIs("10.0.0.41:5050"))
		// And a change is followed on the new connection.
		mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.42:5050"))
		mesos.Unregister(t, path, a)
		waitFor(t, d, "new leader after the restart", leaderIs("10.0.0.42:5050"))
	})

	t.Run("session expired", func(t *testing.T) {
		const path = "/expiry"
		mesos.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.51:5050"))
		d := startDetector(t, url(path))
		waitFor(t, d, "leader", leaderIs("10.0.0.51:5050"))

		// A server that lost its data knows no session and refuses a
		// client that has seen a later transaction than it has: the
		// detector gives up on its session and starts a new one.
		z.Stop()
		z.WipeData()
		z.Start()
		waitFor(t, d, "no path in the new tree", noLeader("/expiry does not exist"))
		fresh := z.Dial(t, "")
		fresh.RegisterMaster(t, path, "json.info", infoJSON(t, "10.0.0.52:5050"))
		waitFor(t, d, "leader in the new session", leaderIs("10.0.0.52:5050"))
	})
}
