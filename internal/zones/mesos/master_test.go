package mesos

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/zones"
	"github.com/stretchr/testify/require"
)

func fixtureState(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "mesos-dns-fake-state.json"))
	require.NoError(t, err)
	return data
}

// masterConfig returns a validated master configuration; extra is spliced
// into the "master" object.
func masterConfig(t testing.TB, masters []string, extra string) config.Master {
	t.Helper()
	ms := `"` + strings.Join(masters, `","`) + `"`
	if len(masters) == 0 {
		ms = ""
	}
	cfg, err := config.Parse([]byte(`{"listen":["127.0.0.1:53"],"upstreams":["127.0.0.1:53"],
		"master":{"listen":["127.0.0.1:61053"],"masters":[` + ms + `],"http":"","stateTimeoutSeconds":1` + extra + `}}`))
	require.NoError(t, err)
	return *cfg.Master
}

func newMaster(t testing.TB, cfg config.Master) *Master {
	t.Helper()
	m, err := NewMaster(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	m.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "localhost" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, fmt.Errorf("no such host %q", host)
	}
	return m
}

// demoMaster returns a master that has polled DemoState once.
func demoMaster(t testing.TB) *Master {
	t.Helper()
	m := newMaster(t, masterConfig(t, []string{"144.76.157.37:5050"}, ""))
	m.UseState(DemoState)
	require.NoError(t, m.Poll(t.Context()))
	return m
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func lookupA(z *zones.Zone, name string) []string {
	var out []string
	for _, rr := range z.Lookup(name, dns.TypeA).Answer {
		out = append(out, rr.(*dns.A).A.String())
	}
	return out
}

func lookupSRVPorts(z *zones.Zone, name string) []uint16 {
	var out []uint16
	for _, rr := range z.Lookup(name, dns.TypeSRV).Answer {
		out = append(out, rr.(*dns.SRV).Port)
	}
	return out
}

func addrPort(t testing.TB, s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	require.NoError(t, err)
	return ap
}

func TestPollServesLeaderState(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
	empty := m.Store().Load()
	require.NoError(t, m.Poll(t.Context()))

	z := m.Store().Load()
	require.Greater(t, z.Serial(), empty.Serial())
	require.Equal(t, []string{"10.3.0.3"}, lookupA(z, "nginx.marathon.mesos."))
	require.Equal(t, []string{"127.0.0.1"}, lookupA(z, "leader.mesos."))
	require.Equal(t, []uint16{addrPort(t, fake.Addr()).Port()}, lookupSRVPorts(z, "_leader._tcp.mesos."))
	st := m.Stats()
	require.Equal(t, uint64(1), st.Polls)
	require.Zero(t, st.Failures)
	require.Equal(t, fake.Addr(), st.Leader)
	require.Equal(t, z.Len(), st.Records)
	require.Equal(t, z.Serial(), st.Serial)
	require.Equal(t, 1, fake.Requests("/master/state"))
}

func TestStatePathFallback(t *testing.T) {
	// Tried in this order; an endpoint answering 404 sends on to the next.
	order := []string{"/master/state", "/master/state.json", "/state", "/state.json"}
	for i, path := range order[1:] {
		t.Run(path, func(t *testing.T) {
			fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			fake.ServePaths(path)
			m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
			require.NoError(t, m.Poll(t.Context()))
			require.Equal(t, []string{"10.3.0.3"}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))
			for _, p := range order[:i+2] {
				require.Equal(t, 1, fake.Requests(p), p)
			}
			for _, p := range order[i+2:] {
				require.Zero(t, fake.Requests(p), p)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
		fake.ServePaths()
		m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
		require.ErrorContains(t, m.Poll(t.Context()), "no state endpoint")
	})
}

func TestFollowsLeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		redirect bool
	}{{"non-leader names the leader", false}, {"non-leader redirects", true}} {
		t.Run(tc.name, func(t *testing.T) {
			follower := testsupport.NewFakeMesosMaster(t, []byte(`{}`))
			leader := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			follower.SetLeader(leader.Addr())
			follower.RedirectToLeader(tc.redirect)
			m := newMaster(t, masterConfig(t, []string{follower.Addr()}, ""))
			require.NoError(t, m.Poll(t.Context()))
			require.Equal(t, leader.Addr(), m.Stats().Leader)
			require.Equal(t, []string{"10.3.0.3"}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))
			// The next poll goes to the known leader directly.
			before := follower.Requests("/master/state")
			require.NoError(t, m.Poll(t.Context()))
			require.Equal(t, before, follower.Requests("/master/state"))
		})
	}
}

func TestLeaderFromRedirectEndpoint(t *testing.T) {
	// A master whose state names no leader: /master/redirect does.
	follower := testsupport.NewFakeMesosMaster(t, []byte(`{}`))
	leader := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	follower.SetLeader(leader.Addr())
	m := newMaster(t, masterConfig(t, []string{follower.Addr()}, ""))
	follower.OmitLeader(true)
	require.NoError(t, m.Poll(t.Context()))
	require.Equal(t, leader.Addr(), m.Stats().Leader)
	require.Equal(t, []string{"10.3.0.3"}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))
	require.Equal(t, 1, follower.Requests("/master/redirect"))
}

// TestNamedLeaderSteppedDown: the master asked names a leader that has
// stepped down by the time it is asked, and serves a follower's state (no
// frameworks, another or no leader). That poll fails and the last good
// zone keeps serving, instead of a zone without tasks.
func TestNamedLeaderSteppedDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noLeader bool
	}{{"names another leader", false}, {"names no leader", true}} {
		t.Run(tc.name, func(t *testing.T) {
			follower := testsupport.NewFakeMesosMaster(t, []byte(`{}`))
			leader := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			follower.SetLeader(leader.Addr())
			m := newMaster(t, masterConfig(t, []string{follower.Addr()}, ""))
			require.NoError(t, m.Poll(t.Context()))
			good := m.Store().Load()
			require.Equal(t, []string{"10.3.0.3"}, lookupA(good, "nginx.marathon.mesos."))

			// The old leader now follows the master still naming it.
			leader.SetLeader(follower.Addr())
			leader.OmitLeader(tc.noLeader)
			require.ErrorContains(t, m.Poll(t.Context()), "not the leading master")
			require.Same(t, good, m.Store().Load())
			require.Equal(t, []string{"10.3.0.3"}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))
			st := m.Stats()
			require.Equal(t, uint64(1), st.Failures)
			require.Equal(t, leader.Addr(), st.Leader)
		})
	}
}

func TestLeaderChange(t *testing.T) {
	a := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	b := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	b.SetLeader(a.Addr())
	m := newMaster(t, masterConfig(t, []string{a.Addr(), b.Addr()}, ""))
	require.NoError(t, m.Poll(t.Context()))
	z1 := m.Store().Load()
	require.Equal(t, []uint16{addrPort(t, a.Addr()).Port()}, lookupSRVPorts(z1, "_leader._tcp.mesos."))
	require.Equal(t, []string{"127.0.0.1"}, lookupA(z1, "master0.mesos."))

	// Leadership moves to b, whose cluster lost the nginx task.
	b.SetState(t, []byte(strings.Replace(string(fixtureState(t)), `"name": "nginx"`, `"name": "nginx2"`, 1)))
	b.SetLeader("")
	a.SetLeader(b.Addr())
	require.NoError(t, m.Poll(t.Context()))
	z2 := m.Store().Load()
	require.Equal(t, b.Addr(), m.Stats().Leader)
	require.Greater(t, z2.Serial(), z1.Serial())
	require.Equal(t, []uint16{addrPort(t, b.Addr()).Port()}, lookupSRVPorts(z2, "_leader._tcp.mesos."))
	require.Empty(t, lookupA(z2, "nginx.marathon.mesos."))
	require.Equal(t, []string{"10.3.0.3"}, lookupA(z2, "nginx2.marathon.mesos."))
}

func TestFailoverToAnotherMaster(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode testsupport.MesosMode
	}{
		{"fails", testsupport.MesosFail},
		{"hangs", testsupport.MesosHang},
		{"returns garbage", testsupport.MesosGarbage},
		{"returns truncated JSON", testsupport.MesosTruncated},
	} {
		t.Run(mode.name, func(t *testing.T) {
			broken := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			good := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			broken.SetMode(mode.mode)
			m := newMaster(t, masterConfig(t, []string{broken.Addr(), good.Addr()}, ""))
			require.NoError(t, m.Poll(t.Context()))
			require.Equal(t, good.Addr(), m.Stats().Leader)
			require.Equal(t, []string{"10.3.0.3"}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		good := testsupport.NewFakeMesosMaster(t, fixtureState(t))
		gone := testsupport.NewFakeMesosMaster(t, fixtureState(t))
		goneAddr := gone.Addr()
		gone.Close()
		m := newMaster(t, masterConfig(t, []string{goneAddr, good.Addr()}, ""))
		require.NoError(t, m.Poll(t.Context()))
		require.Equal(t, good.Addr(), m.Stats().Leader)
	})
}

func TestFailedPollKeepsServing(t *testing.T) {
	for _, mode := range []testsupport.MesosMode{testsupport.MesosFail, testsupport.MesosHang, testsupport.MesosGarbage, testsupport.MesosTruncated} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
			m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
			require.NoError(t, m.Poll(t.Context()))
			good := m.Store().Load()

			fake.SetMode(mode)
			require.Error(t, m.Poll(t.Context()))
			require.Same(t, good, m.Store().Load())
			st := m.Stats()
			require.Equal(t, uint64(1), st.Failures)
			require.NotEmpty(t, st.LastError)
			require.Equal(t, good.Serial(), st.Serial)

			// Recovery with the same content keeps the same zone.
			fake.SetMode(testsupport.MesosOK)
			require.NoError(t, m.Poll(t.Context()))
			require.Same(t, good, m.Store().Load())
			require.Empty(t, m.Stats().LastError)
		})
	}
}

func TestStartWithoutMaster(t *testing.T) {
	gone := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	addr := gone.Addr()
	gone.Close()
	m := newMaster(t, masterConfig(t, []string{addr}, ""))
	require.Error(t, m.Poll(t.Context()))
	z := m.Store().Load()
	res := z.Lookup("mesos.", dns.TypeSOA)
	require.Equal(t, dns.RcodeSuccess, res.Rcode)
	require.Len(t, res.Answer, 1)
	require.Len(t, z.Lookup("mesos.", dns.TypeNS).Answer, 1)
	require.Equal(t, []string{"127.0.0.1"}, lookupA(z, "ns1.mesos."))
	require.Equal(t, dns.RcodeNameError, z.Lookup("nginx.marathon.mesos.", dns.TypeA).Rcode)
	require.Equal(t, dns.RcodeNameError, z.Lookup("leader.mesos.", dns.TypeA).Rcode)
}

func TestSerialOnlyChangesWithContent(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
	require.NoError(t, m.Poll(t.Context()))
	z1 := m.Store().Load()
	require.NoError(t, m.Poll(t.Context()))
	require.Same(t, z1, m.Store().Load())
	require.Equal(t, uint64(1), m.Stats().Swaps)

	fake.SetState(t, []byte(strings.Replace(string(fixtureState(t)), `"10.3.0.3"`, `"10.3.0.99"`, 1)))
	require.NoError(t, m.Poll(t.Context()))
	z2 := m.Store().Load()
	require.Greater(t, z2.Serial(), z1.Serial())
	require.Equal(t, []string{"10.3.0.99"}, lookupA(z2, "nginx.marathon.mesos."))
	require.Equal(t, z2.Serial(), z2.Lookup("mesos.", dns.TypeSOA).Answer[0].(*dns.SOA).Serial)
}

// TestStatsDuringPoll: a poll blocked in a host name lookup (which can take
// seconds) holds up neither Stats nor Enumerate. Both are called while the
// lookup is provably still blocked. The lookup gives up when its context
// ends, so a regression fails the test instead of hanging it.
func TestStatsDuringPoll(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"127.0.0.1:5050"}, ""))
	m.UseState(fixtureState(t))
	require.NoError(t, m.Poll(t.Context()))
	before := m.Stats()

	entered, release := make(chan struct{}), make(chan struct{})
	var blocked atomic.Bool
	var once sync.Once
	m.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
		blocked.Store(true)
		defer blocked.Store(false)
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	polled := make(chan error, 1)
	go func() { polled <- m.Poll(t.Context()) }()
	<-entered

	type result struct {
		stats        Stats
		frameworks   int
		stillBlocked bool
	}
	done := make(chan result, 1)
	go func() {
		r := result{stats: m.Stats(), frameworks: len(m.Enumerate().Frameworks)}
		r.stillBlocked = blocked.Load()
		done <- r
	}()
	r := <-done
	require.True(t, r.stillBlocked, "Stats and Enumerate returned only after the lookup ended")
	require.Equal(t, before, r.stats)
	require.Equal(t, 4, r.frameworks)
	close(release)
	require.NoError(t, <-polled)
	require.Equal(t, before.Polls+1, m.Stats().Polls)
}

// TestConfigReachesGenerator: the configuration's naming options, set in
// the "master" object, change the zone NewMaster's polls build.
func TestConfigReachesGenerator(t *testing.T) {
	const running = `"state":"TASK_RUNNING"`
	st := []byte(state(fw("marathon", `{"id":"a","name":"1234-a-very-long-task-name-indeed","slave_id":"A-S1",`+running+`},
		{"id":"b","name":"sick","slave_id":"A-S1",`+running+`,"statuses":[{"state":"TASK_RUNNING","timestamp":1,"healthy":false}]}`)))
	const (
		rfc1123 = "1234-a-very-long-task-name-indeed.marathon.mesos."
		rfc952  = "a-very-long-task-name-in.marathon.mesos."
		sick    = "sick.marathon.mesos."
	)
	for _, tc := range []struct {
		name    string
		extra   string
		present []string
		absent  []string
	}{
		{"defaults", "", []string{rfc1123, sick}, []string{rfc952}},
		{"EnforceRFC952", `,"EnforceRFC952":true`, []string{rfc952, sick}, []string{rfc1123}},
		{"healthyOnly", `,"healthyOnly":true`, []string{rfc1123}, []string{rfc952, sick}},
		{"both", `,"EnforceRFC952":true,"healthyOnly":true`, []string{rfc952}, []string{rfc1123, sick}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMaster(t, masterConfig(t, []string{"10.0.0.1:5050"}, tc.extra))
			m.UseState(st)
			require.NoError(t, m.Poll(t.Context()))
			z := m.Store().Load()
			for _, name := range tc.present {
				require.Equal(t, []string{"10.1.0.1"}, lookupA(z, name), name)
			}
			for _, name := range tc.absent {
				require.Equal(t, dns.RcodeNameError, z.Lookup(name, dns.TypeA).Rcode, name)
			}
		})
	}
}

// TestStatsCountLeftOut: names DNS cannot carry and host ports past the
// per-task bound are counted in Stats.
func TestStatsCountLeftOut(t *testing.T) {
	const running = `"state":"TASK_RUNNING"`
	long := "A-" + strings.Repeat("s", 60)
	m := newMaster(t, masterConfig(t, []string{"10.0.0.1:5050"}, ""))
	m.UseState([]byte(`{"leader":"master@10.0.0.1:5050","slaves":[
		{"id":"A-S1","pid":"slave(1)@10.1.0.1:5051"},{"id":"` + long + `","pid":"slave(1)@10.1.0.2:5051"}],
		"frameworks":[` + fw("marathon", `{"id":"a","name":"wide","slave_id":"A-S1",`+running+`,"resources":{"ports":"[1000-9999]"}},
			{"id":"b","name":"far","slave_id":"`+long+`",`+running+`}`) + `]}`))
	require.NoError(t, m.Poll(t.Context()))
	st := m.Stats()
	require.Equal(t, 2, st.Tasks)
	require.Equal(t, 1, st.PortCappedTasks)
	require.Equal(t, 1, st.DroppedNames)
	require.Equal(t, []string{"10.1.0.2"}, lookupA(m.Store().Load(), "far.marathon.mesos."))
	require.Len(t, m.Store().Load().Lookup("_wide._tcp.marathon.mesos.", dns.TypeSRV).Answer, MaxTaskPorts)
}

func TestStateFile(t *testing.T) {
	m := newMaster(t, masterConfig(t, nil, `,"stateFile":"`+filepath.Join(fixtureDir, "mesos-dns-fake-state.json")+`"`))
	require.NoError(t, m.Poll(t.Context()))
	require.Equal(t, []string{"1.2.3.4"}, lookupA(m.Store().Load(), "leader.mesos."))

	m = newMaster(t, masterConfig(t, nil, `,"stateFile":"/nonexistent/state.json"`))
	require.ErrorContains(t, m.Poll(t.Context()), "/nonexistent/state.json")
}

// TestSwapUnderConcurrentQueries answers queries from many goroutines
// while polls swap between two cluster states that differ in two places.
// Every answer must come from one complete zone: both differences must
// agree. Run with -race.
func TestSwapUnderConcurrentQueries(t *testing.T) {
	stateA := string(fixtureState(t))
	stateB := strings.Replace(strings.Replace(stateA, `"10.3.0.3"`, `"10.3.0.99"`, 1), `"name": "reviewbot"`, `"name": "reviewbot2"`, 1)
	fake := testsupport.NewFakeMesosMaster(t, []byte(stateA))
	m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
	require.NoError(t, m.Poll(t.Context()))
	auth := zones.NewAuthority(m.Store())

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var queries atomic.Int64
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				// One Load per check, as the Authority does per query.
				z := m.Store().Load()
				nginx := lookupA(z, "nginx.marathon.mesos.")
				a := len(lookupA(z, "reviewbot.marathon.mesos.")) == 1 && len(lookupA(z, "reviewbot2.marathon.mesos.")) == 0
				b := len(lookupA(z, "reviewbot.marathon.mesos.")) == 0 && len(lookupA(z, "reviewbot2.marathon.mesos.")) == 1
				if len(nginx) != 1 || !(nginx[0] == "10.3.0.3" && a || nginx[0] == "10.3.0.99" && b) {
					errs <- fmt.Errorf("serial %d is a mix of states: nginx %v, state A %v, state B %v", z.Serial(), nginx, a, b)
					return
				}
				q := new(dns.Msg)
				q.SetQuestion("_car-store._tcp.marathon.mesos.", dns.TypeSRV)
				r := auth.Reply(q, true)
				if !r.Authoritative || len(r.Answer) != 2 || len(r.Extra) != 1 {
					errs <- fmt.Errorf("SRV reply incomplete: %v", r)
					return
				}
				queries.Add(1)
			}
		})
	}
	for i := range 20 {
		st, ip := stateA, "10.3.0.3"
		if i%2 == 0 {
			st, ip = stateB, "10.3.0.99"
		}
		fake.SetState(t, []byte(st))
		require.NoError(t, m.Poll(t.Context()))
		require.Equal(t, []string{ip}, lookupA(m.Store().Load(), "nginx.marathon.mesos."))
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Positive(t, queries.Load())
	require.Equal(t, uint64(21), m.Stats().Swaps)
}

func TestRunStopsAndLogsWithoutMaster(t *testing.T) {
	gone := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	addr := gone.Addr()
	gone.Close()
	m := newMaster(t, masterConfig(t, []string{addr}, `,"http":"127.0.0.1:0"`))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	require.Eventually(t, func() bool { return m.Stats().Failures > 0 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
}
