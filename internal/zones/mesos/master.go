package mesos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/httpserve"
	"github.com/spartan-dns/spartan/internal/mesosleader"
	"github.com/spartan-dns/spartan/internal/zones"
	"golang.org/x/sync/errgroup"
)

// statePaths are tried in order: current Mesos, then older ones.
var statePaths = []string{"/master/state", "/master/state.json", "/state", "/state.json"}

// resolveTimeout bounds the lookup of one framework or agent host name.
const resolveTimeout = 2 * time.Second

// Stats describes the generator's recent work, for metrics and the API.
type Stats struct {
	// Polls and Failures count state polls and the failed ones; Swaps
	// counts zone replacements (polls that changed something).
	Polls, Failures, Swaps uint64
	// LastPollDuration is how long the latest poll took, fetch to swap.
	LastPollDuration time.Duration
	// LastSuccess is when a poll last succeeded; zero before that.
	LastSuccess time.Time
	// LastError is the latest poll failure; empty after a success.
	LastError string
	// Leader is the leading master's host:port as last seen.
	Leader string
	// Records and Serial describe the zone being served.
	Records int
	Serial  uint32
	// HeldShrinks counts polls whose zone was held back because it
	// lost more than master.maxShrink of the served one.
	HeldShrinks uint64
	// Streaming is set while the leader's operator API event stream is
	// followed; Events counts the events applied from it (heartbeats
	// aside), EventSwaps the zone swaps they made and PatchedSwaps those
	// of them that patched the zone instead of building it whole.
	Streaming                        bool
	Events, EventSwaps, PatchedSwaps uint64
	// EventSwapTime is the time spent building event swaps' zones.
	EventSwapTime time.Duration
	// LeaderSource says what names the master polls ask: LeaderZooKeeper,
	// LeaderMasters (master.masters, without master.zk or in fallback
	// from it), or "" when polls read a fixed state instead.
	LeaderSource string
	// ZooKeeper is set when master.zk is configured; ZKCurrent then
	// reports whether ZooKeeper currently names a leader (a session is up
	// and the leader's node is watched), and ZKError why not.
	ZooKeeper, ZKCurrent bool
	ZKError              string
	// Tasks is the number of tasks with records; SkippedTasks and
	// DroppedNames count malformed tasks and names DNS cannot carry;
	// PortCappedTasks counts tasks with more host ports than
	// MaxTaskPorts, published only up to it.
	Tasks, SkippedTasks, DroppedNames, PortCappedTasks int
}

// Master is master mode: it polls the Mesos masters (the leader found
// through ZooKeeper first, when configured), keeps the cluster
// zone in a zones.Store and serves the HTTP API. Create it with NewMaster
// and run it with Run.
type Master struct {
	cfg   config.Master
	log   *slog.Logger
	opt   Options
	store *zones.Store
	// navStore holds the thisdcos.directory zone, built from the same
	// states and swapped with the cluster zone.
	navStore *zones.Store
	client   *http.Client
	scheme   string // "http", or "https" with master.MesosHTTPSOn
	// fixed, when set, is the state read on every poll instead of the
	// masters (the demo).
	fixed []byte
	// lookup resolves host names; replaceable in tests.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// zk follows the leader named in ZooKeeper when master.zk is set.
	zk *mesosleader.Detector

	// httpLn is the API's socket when bound ahead of Run (ListenHTTP).
	httpLn net.Listener
	// httpLimits bound the API's clients (timeouts, connection cap);
	// zero fields are httpserve's defaults. Tests shorten them.
	httpLimits httpserve.Limits
	// observe, when set, is told about every poll (metrics).
	observe func(time.Duration, error)
	// loaded is set once a state has been read successfully.
	loaded atomic.Bool
	// axfrCache and recordsCache keep /v1/axfr and /v1/records.
	axfrCache, recordsCache apiCache
	// enumBuilds counts enumerations generated, for tests.
	enumBuilds atomic.Uint64

	// pollMu serializes polls, which run without mu held.
	pollMu sync.Mutex
	// navIndex is index's counterpart for the thisdcos.directory zone;
	// guarded by pollMu.
	navIndex *navIndex
	// pending is the shrink held back at the last successful poll, if
	// any; guarded by pollMu.
	pending *pendingShrink
	// zkFallback is set while polls ask master.masters because ZooKeeper
	// has named no leader for zkDetectionTimeout; written with pollMu
	// held, read by Stats.
	zkFallback atomic.Bool
	// agentAddrs caches the lookups of agents' host names for the
	// thisdcos.directory zone across polls, as dcos-net resolves an agent
	// once, when it registers; guarded by pollMu.
	agentAddrs map[string]cachedAddrs

	// liveMu guards live, the cluster as the last full read and the
	// event stream since show it (see stream.go), and liveEpoch, which
	// counts the stream's snapshots. Never held across I/O.
	liveMu    sync.Mutex
	live      *liveState
	liveEpoch uint64
	// liveHeld is set while the zone of a stream snapshot is held back
	// for shrinking too much (see swapLive); a poll that is not held
	// clears it.
	liveHeld bool
	// snapshotNew is set when live was replaced by a stream snapshot
	// not yet built into a zone.
	snapshotNew bool
	// polledCh is signalled after each successful poll, kick after each
	// change of live (buffered: a signal pending is enough).
	polledCh, kick chan struct{}

	// index describes the served zone for patching it (incremental.go);
	// nil when it was not built from the live state. Guarded by pollMu.
	index *zoneIndex

	// mu guards what follows, and the zone swap with the stats that
	// describe it. It is never held across I/O or a zone build.
	mu     sync.Mutex
	enum   *enumCache // the state behind the served zone, for /v1/enumerate
	leader string
	stats  Stats
}

// NewMaster prepares master mode for a validated configuration. It serves
// SOA and NS (and NXDOMAIN below) until the first successful poll.
func NewMaster(cfg config.Master, logger *slog.Logger) (*Master, error) {
	if logger == nil {
		logger = slog.Default()
	}
	spec := RFC1123
	if cfg.EnforceRFC952 {
		spec = RFC952
	}
	listeners, err := listenerAddrs(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("master mode: %w", err)
	}
	client, scheme, err := newStateClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("master mode: %w", err)
	}
	m := &Master{
		cfg: cfg,
		log: logger.With("component", "mesos"),
		opt: Options{
			Domain:      cfg.Domain,
			Masters:     cfg.Masters,
			NS:          cfg.SOAMname,
			Listeners:   listeners,
			IPSources:   cfg.IPSources,
			Spec:        spec,
			HealthyOnly: cfg.HealthyOnly,
			SRVWeight:   cfg.SRVRecordDefaultWeight,
			SOA: zones.SOA{
				Mname: cfg.SOAMname, Rname: cfg.SOARname,
				Refresh: cfg.SOARefresh, Retry: cfg.SOARetry, Expire: cfg.SOAExpire, Minttl: cfg.SOAMinttl,
				TTL: uint32(cfg.TTL),
			},
		},
		client: client,
		scheme: scheme,
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		polledCh: make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
	}
	if cfg.ZK != "" && cfg.StateFile == "" {
		u, err := config.ParseZKURL(cfg.ZK)
		if err != nil {
			return nil, fmt.Errorf("master mode: master.zk: %w", err)
		}
		m.zk = mesosleader.New(u, logger)
	}
	z := EmptyZone(&m.opt, nextSerial(0))
	m.store = zones.NewStore(z)
	m.navStore = zones.NewStore(EmptyNavstarZone(z.Serial()))
	m.stats.Records, m.stats.Serial = z.Len(), z.Serial()
	return m, nil
}

// Store returns the store holding the cluster zone, for zones.NewAuthority.
func (m *Master) Store() *zones.Store { return m.store }

// NavstarStore returns the store holding the thisdcos.directory zone.
func (m *Master) NavstarStore() *zones.Store { return m.navStore }

// Authority returns the authority master mode serves: the cluster zone,
// the thisdcos.directory zone and their aliases (NavstarAliases).
func (m *Master) Authority() *zones.Authority {
	return zones.NewAuthority(m.store, m.navStore).WithAliases(NavstarAliases(m.opt.Domain)...)
}

// What names the master polls ask, in Stats.LeaderSource.
const (
	LeaderZooKeeper = "zookeeper"
	LeaderMasters   = "masters"
)

// Stats returns a snapshot of the generator's counters.
func (m *Master) Stats() Stats {
	m.mu.Lock()
	s := m.stats
	m.mu.Unlock()
	switch {
	case m.fixed != nil || m.cfg.StateFile != "":
	case m.zk != nil && !m.zkFallback.Load():
		s.LeaderSource = LeaderZooKeeper
	default:
		s.LeaderSource = LeaderMasters
	}
	if m.zk != nil {
		st := m.zk.Status()
		s.ZooKeeper, s.ZKCurrent = true, st.OK()
		if !s.ZKCurrent && st.Err != nil {
			s.ZKError = st.Err.Error()
		}
	}
	return s
}

// UseState makes every poll read data (a Mesos state JSON document)
// instead of asking the masters: the demo's fixed cluster.
func (m *Master) UseState(data []byte) { m.fixed = data }

// Loaded reports whether a state has been read successfully: until then
// the zones served are the empty start-up zones, which say nothing yet
// about the names in them. A later failed poll keeps the last good zones
// and does not change it.
func (m *Master) Loaded() bool { return m.loaded.Load() }

// ObservePolls makes every poll call f with its duration and error (nil
// on success), for metrics. Call it before Run.
func (m *Master) ObservePolls(f func(time.Duration, error)) { m.observe = f }

// ListenHTTP binds the HTTP API's address (when configured) ahead of Run,
// so a taken port fails start-up instead of a running process.
func (m *Master) ListenHTTP(ctx context.Context) error {
	if m.cfg.HTTP == "" || m.httpLn != nil {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", m.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("master.http: HTTP API on %s: %w", m.cfg.HTTP, err)
	}
	m.httpLn = ln
	return nil
}

// HTTPAddr returns the API's bound address, empty when not bound.
func (m *Master) HTTPAddr() string {
	if m.httpLn == nil {
		return ""
	}
	return m.httpLn.Addr().String()
}

func (m *Master) closeHTTP() {
	if m.httpLn != nil {
		m.httpLn.Close()
	}
}

// Run polls until ctx ends, follows the leader's event stream between
// polls (see stream.go), and serves the HTTP API when configured. With
// master.zk it also follows the leader ZooKeeper names and polls at once
// when that changes (see candidates). It returns nil on cancellation and
// an error only when the API cannot listen.
func (m *Master) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if m.cfg.HTTP != "" {
		if err := m.ListenHTTP(ctx); err != nil {
			return err
		}
		ln := m.httpLn
		g.Go(func() error {
			if err := httpserve.Serve(ctx, ln, m.Handler(), m.httpLimits); err != nil {
				return fmt.Errorf("master mode: HTTP API: %w", err)
			}
			return nil
		})
		m.log.Info("Mesos-DNS HTTP API listening", "addr", ln.Addr().String())
	}
	var zkChanged <-chan struct{}
	if m.zk != nil {
		zkChanged = m.zk.Changed()
		g.Go(func() error { return m.zk.Run(ctx) })
	}
	if m.fixed == nil && m.cfg.StateFile == "" {
		g.Go(func() error { m.streamLoop(ctx); return nil })
		g.Go(func() error { m.coalesce(ctx); return nil })
	}
	g.Go(func() error {
		refresh := time.Duration(m.cfg.RefreshSeconds) * time.Second
		// With ZooKeeper the first poll waits for its first answer, or
		// for zkDetectionTimeout when it gives none; fallback wakes the
		// loop when ZooKeeper's silence reaches zkDetectionTimeout.
		var fallback *time.Timer
		var fallbackC <-chan time.Time
		if m.zk != nil {
			fallback = time.NewTimer(m.zkTimeout())
			defer fallback.Stop()
			fallbackC = fallback.C
		} else {
			m.firstPoll(ctx)
		}
		polled := m.zk == nil
		t := time.NewTicker(refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			case <-zkChanged:
				// A new leader is asked at once, not at the next tick;
				// a change in the registered masters changes the
				// master records at once too.
			case <-fallbackC:
			}
			if polled {
				_ = m.Poll(ctx)
			} else {
				polled = true
				m.firstPoll(ctx)
			}
			if d, waiting := m.zkFallbackIn(); waiting {
				fallback.Reset(d)
			}
		}
	})
	return g.Wait()
}

// firstPoll polls and says so loudly when no master answered.
func (m *Master) firstPoll(ctx context.Context) {
	if err := m.Poll(ctx); err != nil && ctx.Err() == nil && m.Stats().LastSuccess.IsZero() {
		m.log.Error("no Mesos master reachable: answering SOA and NS at the apexes and SERVFAIL below them until one answers",
			"domain", m.cfg.Domain, "masters", m.cfg.Masters, "zk", m.zkURL(), "err", err)
	}
}

// Poll reads the state once and, when it changed, swaps in the new zone.
// On failure the served zone stays as it was; the error is logged, counted
// and returned. A state whose running tasks mostly fail to decode is a
// failure too (see checkTasks), and a zone that would lose more than
// master.maxShrink of the served one is held back for a poll (see
// holdShrink). Polls run one at a time; the fetch, the zone build and the
// host name lookups happen without holding the lock Stats and Enumerate
// take.
func (m *Master) Poll(ctx context.Context) error {
	m.pollMu.Lock()
	defer m.pollMu.Unlock()
	start := time.Now()
	epoch := m.beginResync()
	st, err := m.readState(ctx)
	if err == nil {
		err = checkTasks(st)
	}
	var rs resync
	if err == nil {
		rs = m.prepareResync(st, epoch)
		st = rs.st
	}
	held := false
	var idx *zoneIndex
	var nidx *navIndex
	defer func() {
		if m.commitResync(rs, epoch, err == nil && !held) {
			// The served zones are now the ones built here, from the
			// state idx and nidx describe (nil when not streaming).
			m.index, m.navIndex = idx, nidx
		}
	}()
	if m.observe != nil {
		defer func() { m.observe(time.Since(start), err) }()
	}
	if err != nil {
		m.mu.Lock()
		m.stats.Polls++
		m.stats.Failures++
		m.stats.LastError = err.Error()
		m.stats.LastPollDuration = time.Since(start)
		failures := m.stats.Failures
		m.mu.Unlock()
		m.log.Warn("Mesos state poll failed; keeping the last good zone",
			"err", err, "serial", m.store.Load().Serial(), "failures", failures)
		return err
	}
	opt := m.opt
	opt.Resolve = m.resolver(ctx)
	opt.Masters = m.recordMasters()
	// Polls and event swaps are serialized: cur stays the served zone
	// until the swap below.
	cur := m.store.Load()
	// The thisdcos.directory zone is built beside the cluster zone, on
	// another core when there is one, so that it adds little to the
	// time a poll takes; it is dropped if the cluster zone is held.
	curNav := m.navStore.Load()
	var nz *zones.Zone
	navOpt := opt
	navOpt.Resolve = m.agentResolver(ctx)
	var navBuild errgroup.Group
	navBuild.Go(func() error {
		if rs.refs != nil {
			nz, nidx = buildNavIndexed(st, rs.refs, &navOpt, nextSerial(curNav.Serial()))
		} else {
			nz = BuildNavstarZone(st, &navOpt, nextSerial(curNav.Serial()))
		}
		return nil
	})
	var z *zones.Zone
	var gs GenStats
	if rs.refs != nil {
		z, gs, idx = buildIndexed(st, rs.refs, &opt, nextSerial(cur.Serial()))
	} else {
		z, gs = BuildZone(st, &opt, nextSerial(cur.Serial()))
	}
	_ = navBuild.Wait() // never fails
	swapped := z.Hash() != cur.Hash()
	if swapped {
		m.mu.Lock()
		var served *State
		if m.enum != nil {
			served = m.enum.st
		}
		m.mu.Unlock()
		held = m.holdShrink(cur, z, served, st)
	} else {
		m.pending = nil
	}
	if held {
		m.mu.Lock()
		m.stats.HeldShrinks++
		m.pollSucceededLocked(st, start)
		m.mu.Unlock()
		return nil
	}
	if swapped {
		cur = z
	}
	if st.Skipped > 0 || gs.Dropped > 0 {
		m.log.Warn("Mesos state had tasks or names that cannot be published",
			"malformedTasks", st.Skipped, "droppedNames", gs.Dropped)
	}
	if gs.PortsCapped > 0 {
		m.log.Warn("Mesos state had tasks with more host ports than get SRV records; the rest are left out",
			"tasks", gs.PortsCapped, "maxPortsPerTask", MaxTaskPorts)
	}

	navSwapped := nz.Hash() != curNav.Hash()

	m.mu.Lock()
	if swapped {
		m.store.Swap(z)
		m.stats.Swaps++
	}
	if navSwapped {
		m.navStore.Swap(nz)
	}
	if swapped || m.enum == nil {
		// The state that built the served zone; an unchanged zone keeps
		// the enumeration already made for it.
		m.enum = &enumCache{st: st}
	}
	m.pollSucceededLocked(st, start)
	m.stats.Records, m.stats.Serial = cur.Len(), cur.Serial()
	m.stats.Tasks, m.stats.SkippedTasks, m.stats.DroppedNames = gs.Tasks, st.Skipped, gs.Dropped
	m.stats.PortCappedTasks = gs.PortsCapped
	m.mu.Unlock()
	if swapped {
		m.log.Info("cluster zone updated", "serial", z.Serial(), "records", z.Len(),
			"tasks", gs.Tasks, "leader", st.Leader, "took", time.Since(start))
	}
	return nil
}

// pollSucceededLocked records a successful poll of st, started at start,
// whether its zone was swapped in, unchanged or held back: the leader it
// names and the poll counters. m.mu is held.
func (m *Master) pollSucceededLocked(st *State, start time.Time) {
	if st.Leader != "" {
		m.leader = st.Leader
	}
	m.loaded.Store(true)
	m.stats.Polls++
	m.stats.LastPollDuration = time.Since(start)
	m.stats.LastSuccess = time.Now()
	m.stats.LastError = ""
	m.stats.Leader = st.Leader
	select {
	case m.polledCh <- struct{}{}:
	default:
	}
}

// nextSerial is the serial for a changed zone: the Unix time, or one more
// than the current serial when that is not less, so it always increases.
func nextSerial(cur uint32) uint32 {
	return max(cur+1, uint32(time.Now().Unix()))
}

func (m *Master) resolver(ctx context.Context) func(string) []netip.Addr {
	return func(host string) []netip.Addr {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		ips, err := m.lookup(rctx, host)
		if err != nil {
			m.log.Debug("cannot resolve host name from the Mesos state", "host", host, "err", err)
			return nil
		}
		return ips
	}
}

// cachedAddrs is a host name's addresses as looked up at a time.
type cachedAddrs struct {
	ips []netip.Addr
	at  time.Time
}

// agentAddrTTL is how long an agent's looked-up addresses are used
// before the name is looked up again.
const agentAddrTTL = 10 * time.Minute

// agentResolver resolves agents' host names through the cache of
// successful lookups, dropping entries older than agentAddrTTL first.
// m.pollMu is held.
func (m *Master) agentResolver(ctx context.Context) func(string) []netip.Addr {
	resolve := m.resolver(ctx)
	now := time.Now()
	if m.agentAddrs == nil {
		m.agentAddrs = make(map[string]cachedAddrs)
	}
	for host, c := range m.agentAddrs {
		if now.Sub(c.at) >= agentAddrTTL {
			delete(m.agentAddrs, host)
		}
	}
	return func(host string) []netip.Addr {
		if c, ok := m.agentAddrs[host]; ok {
			return c.ips
		}
		ips := resolve(host)
		if len(ips) > 0 {
			m.agentAddrs[host] = cachedAddrs{ips: ips, at: now}
		}
		return ips
	}
}

// readState returns the leader's state: from the fixed state or file when
// configured, else from the masters candidates lists.
func (m *Master) readState(ctx context.Context) (*State, error) {
	switch {
	case m.fixed != nil:
		return DecodeState(bytes.NewReader(m.fixed))
	case m.cfg.StateFile != "":
		f, err := os.Open(m.cfg.StateFile)
		if err != nil {
			return nil, fmt.Errorf("state file: %w", err)
		}
		defer f.Close()
		st, err := DecodeState(bufio.NewReaderSize(f, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("state file %s: %w", m.cfg.StateFile, err)
		}
		return st, nil
	}
	candidates, err := m.candidates()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, addr := range candidates {
		st, err := m.leaderState(ctx, addr)
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.log.Debug("Mesos master failed, trying the next", "master", addr, "err", err)
		errs = append(errs, fmt.Errorf("master %s: %w", addr, err))
	}
	return nil, fmt.Errorf("no Mesos master answered with the leader's state: %w", errors.Join(errs...))
}

// leaderState asks the master at addr for its state; when it is not the
// leader it asks the leader the state names (or /master/redirect names).
func (m *Master) leaderState(ctx context.Context, addr string) (*State, error) {
	st, served, err := m.fetchState(ctx, addr)
	if err != nil {
		return nil, err
	}
	if isLeader(st, served) {
		return st, nil
	}
	leader := st.Leader
	if leader == "" {
		if leader, err = m.redirectLeader(ctx, addr); err != nil {
			return nil, fmt.Errorf("state names no leader: %w", err)
		}
	}
	if sameAddr(leader, served) {
		return st, nil
	}
	m.log.Debug("following the Mesos leader", "asked", addr, "leader", leader)
	st, served, err = m.fetchState(ctx, leader)
	if err != nil {
		return nil, fmt.Errorf("leader %s: %w", leader, err)
	}
	// The named leader may have stepped down since: then it serves a
	// follower's state, without frameworks, which must not replace the
	// zone.
	if !isLeader(st, served) {
		if st.Leader == "" {
			return nil, fmt.Errorf("%w: %s was named the leader but its state names none", errNotLeader, leader)
		}
		return nil, fmt.Errorf("%w: %s was named the leader but its state names %s", errNotLeader, leader, st.Leader)
	}
	return st, nil
}

// errNotLeader is a state fetched from a master that is not the leader.
var errNotLeader = errors.New("not the leading master")

// isLeader reports whether st came from the leading master: its own PID or
// the address that served it is the leader's.
func isLeader(st *State, served string) bool {
	return st.Leader != "" && (sameAddr(st.Leader, st.PID) || sameAddr(st.Leader, served))
}

func sameAddr(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	pa, errA := netip.ParseAddrPort(a)
	pb, errB := netip.ParseAddrPort(b)
	if errA == nil && errB == nil {
		return pa.Addr().Unmap() == pb.Addr().Unmap() && pa.Port() == pb.Port()
	}
	return a == b
}

// fetchState GETs the first state endpoint addr serves and decodes it as it
// streams in. served is the host:port that answered (after redirects).
func (m *Master) fetchState(ctx context.Context, addr string) (st *State, served string, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(m.cfg.StateTimeoutSeconds)*time.Second)
	defer cancel()
	for _, path := range statePaths {
		req, err := m.newRequest(ctx, addr, path)
		if err != nil {
			return nil, "", err
		}
		resp, err := m.client.Do(req)
		if err != nil {
			return nil, "", err
		}
		if resp.StatusCode == http.StatusNotFound {
			drain(resp.Body)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			drain(resp.Body)
			return nil, "", fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		st, err := DecodeState(bufio.NewReaderSize(resp.Body, 64<<10))
		drain(resp.Body)
		if err != nil {
			return nil, "", fmt.Errorf("GET %s: %w", path, err)
		}
		return st, resp.Request.URL.Host, nil
	}
	return nil, "", fmt.Errorf("no state endpoint (tried %v)", statePaths)
}

// redirectLeader asks addr's /master/redirect where the leader is.
func (m *Master) redirectLeader(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(m.cfg.StateTimeoutSeconds)*time.Second)
	defer cancel()
	req, err := m.newRequest(ctx, addr, "/master/redirect")
	if err != nil {
		return "", err
	}
	client := *m.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	drain(resp.Body)
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || loc == "" {
		return "", fmt.Errorf("/master/redirect: %s without a location", resp.Status)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("/master/redirect: bad location %q", loc)
	}
	return u.Host, nil
}

// drain reads a little of what is left so the connection closes cleanly,
// then closes it.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4096)
	_ = body.Close()
}

// listenerAddrs returns the addresses ns1.<domain> gets: each listen
// address, or for a wildcard one every non-loopback interface address of
// that family.
func listenerAddrs(listen []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, l := range listen {
		ap, err := netip.ParseAddrPort(l)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", l, err)
		}
		a := ap.Addr().Unmap()
		if !a.IsUnspecified() {
			out = append(out, a.WithZone(""))
			continue
		}
		ifAddrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("interface addresses for %s: %w", l, err)
		}
		for _, ia := range ifAddrs {
			p, err := netip.ParsePrefix(ia.String())
			if err != nil {
				continue
			}
			ip := p.Addr().Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || (a.Is4() && !ip.Is4()) {
				continue
			}
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}
