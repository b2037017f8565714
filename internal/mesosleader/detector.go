// Package mesosleader follows the leading Mesos master through ZooKeeper,
// as Mesos's own detector and Mesos-DNS (through mesos-go's detector) do.
// Mesos masters contend for leadership by creating ephemeral sequential
// nodes under a path ("/mesos"); the leader is the json.info_ node with the
// lowest sequence number, and its data is the leader's MasterInfo as JSON.
// A Detector watches that path's children, so a leader change is seen as
// ZooKeeper reports it, and keeps reconnecting, with backoff, for as long
// as it runs.
package mesosleader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/spartan-dns/spartan/internal/config"
)

// jsonPrefix names the nodes holding MasterInfo JSON (Mesos's
// MASTER_INFO_JSON_LABEL "json.info" and zookeeper::Group's "_" before the
// sequence number). Nodes named "info_" hold the older protobuf encoding
// and are ignored.
const jsonPrefix = "json.info_"

// Defaults of a Detector.
const (
	// SessionTimeout is the ZooKeeper session timeout asked for: Mesos's
	// own (ZOOKEEPER_SESSION_TIMEOUT).
	SessionTimeout = 10 * time.Second
	minBackoff     = 500 * time.Millisecond
	maxBackoff     = 30 * time.Second
)

// Status is what a Detector knows of the leader.
type Status struct {
	// Leader is the leading master's HTTP endpoint, host:port, as
	// ZooKeeper last named it; empty when ZooKeeper named none (or has not
	// been reached yet). It is kept while ZooKeeper is unreachable.
	Leader string
	// Node is the leader's node name, json.info_NNNNNNNNNN.
	Node string
	// Masters are every master registered under the path (its json.info_
	// nodes) as host:port, the leader first and the others by sequence
	// number: the list Mesos-DNS's detector keeps for its master records.
	// A node whose MasterInfo cannot be read is left out. Like Leader, it
	// is kept while ZooKeeper is unreachable.
	Masters []string
	// Current reports whether Leader is ZooKeeper's present answer: a
	// session is up and the path's children are watched.
	Current bool
	// Since is when the detector last stopped having a current leader, or
	// when it was created if it never had one; zero while it has one.
	Since time.Time
	// Err says why there is no current leader (ZooKeeper unreachable, no
	// json.info_ node, an unreadable MasterInfo); nil while there is one.
	Err error
}

// OK reports whether ZooKeeper currently names a leader.
func (s Status) OK() bool { return s.Current && s.Leader != "" }

// Detector follows the leader named in ZooKeeper. Create it with New and
// run it with Run.
type Detector struct {
	url config.ZKURL
	log *slog.Logger
	// sessionTimeout and the backoff bounds; tests shorten them.
	sessionTimeout         time.Duration
	minBackoff, maxBackoff time.Duration

	mu      sync.Mutex
	st      Status
	changed chan struct{}
}

// New returns a detector for u. Until it runs, it has no leader.
func New(u config.ZKURL, logger *slog.Logger) *Detector {
	if logger == nil {
		logger = slog.Default()
	}
	return &Detector{
		url:            u,
		log:            logger.With("component", "zookeeper", "zk", u.String()),
		sessionTimeout: SessionTimeout,
		minBackoff:     minBackoff,
		maxBackoff:     maxBackoff,
		st:             Status{Since: time.Now(), Err: errors.New("ZooKeeper not reached yet")},
		changed:        make(chan struct{}, 1),
	}
}

// Status returns what the detector knows now.
func (d *Detector) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// Changed is signalled (without blocking, at most one pending signal)
// whenever the leader or whether it is current changes. Read Status after
// it fires.
func (d *Detector) Changed() <-chan struct{} { return d.changed }

// Run follows the leader until ctx ends; it then returns nil. A session
// that fails or expires is replaced after a backoff that doubles, with
// jitter, from half a second up to 30 s, and starts again from half a
// second after a session that listed the masters.
func (d *Detector) Run(ctx context.Context) error {
	backoff := d.minBackoff
	lastErr := ""
	for {
		listed, err := d.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if listed {
			backoff = d.minBackoff
		}
		d.unreachable(err)
		wait := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
		// The same failure again and again is logged once at warn.
		level := slog.LevelWarn
		if err.Error() == lastErr {
			level = slog.LevelDebug
		}
		lastErr = err.Error()
		d.log.Log(ctx, level, "ZooKeeper session ended; reconnecting", "err", err, "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, d.maxBackoff)
	}
}

// session runs one ZooKeeper session: it lists the path's children with a
// watch, names the leader, and waits for the watch or a state change to
// list again. It returns why the session ended, and whether it listed the
// children at least once.
func (d *Detector) session(ctx context.Context) (listed bool, err error) {
	conn, events, err := zk.Connect(d.url.Servers, d.sessionTimeout,
		zk.WithLogInfo(false), zk.WithLogger(zkLogger{d.log}))
	if err != nil {
		return false, fmt.Errorf("connecting to ZooKeeper: %w", err)
	}
	defer conn.Close()
	// Close unblocks whatever call is waiting on the session.
	defer context.AfterFunc(ctx, conn.Close)()
	if d.url.User != "" {
		if err := conn.AddAuth("digest", []byte(d.url.User+":"+d.url.Password)); err != nil {
			return false, fmt.Errorf("digest authentication as %q: %w", d.url.User, err)
		}
	}
	path := d.url.Path
	for {
		var watch <-chan zk.Event
		children, _, w, err := conn.ChildrenW(path)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			// No master has registered yet: wait for the path to appear.
			d.noLeader(fmt.Errorf("znode %s does not exist: no Mesos master has registered", path))
			exists, _, w, err := conn.ExistsW(path)
			if err != nil {
				return listed, fmt.Errorf("watching %s: %w", path, err)
			}
			if exists {
				continue
			}
			watch = w
		case err != nil:
			return listed, fmt.Errorf("listing %s: %w", path, err)
		default:
			listed = true
			watch = w
			if err := d.choose(conn, children); err != nil {
				return listed, err
			}
		}
		if err := d.wait(ctx, watch, events); err != nil {
			return listed, err
		}
	}
}

// wait returns nil when the path's children should be listed again: the
// watch fired, or a session came back after a disconnection. It returns
// an error when the session is over: expired, refused, or not regained
// within the session timeout.
func (d *Detector) wait(ctx context.Context, watch <-chan zk.Event, events <-chan zk.Event) error {
	// lost runs while the connection is down. Past the session timeout
	// the server has expired the session anyway, and a server that lost
	// its data refuses a client that has seen more than it has (the
	// client would retry forever): a new session is started instead.
	var lost *time.Timer
	var lostC <-chan time.Time
	defer func() {
		if lost != nil {
			lost.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-watch:
			if ev.Err != nil {
				return fmt.Errorf("watching %s: %w", d.url.Path, ev.Err)
			}
			return nil
		case <-lostC:
			return fmt.Errorf("no ZooKeeper session regained within the session timeout (%s); starting a new one", d.sessionTimeout)
		case ev, ok := <-events:
			if !ok {
				return errors.New("ZooKeeper connection closed")
			}
			switch ev.State {
			case zk.StateDisconnected:
				// The client reconnects by itself, to any server of the
				// ensemble, and keeps the session and its watches if it
				// gets back within the session timeout.
				d.unreachable(errors.New("connection to ZooKeeper lost"))
				if lost == nil {
					lost = time.NewTimer(d.sessionTimeout)
					lostC = lost.C
				}
			case zk.StateExpired:
				return zk.ErrSessionExpired
			case zk.StateAuthFailed:
				return zk.ErrAuthFailed
			case zk.StateHasSession:
				if lost != nil {
					lost.Stop()
					lost, lostC = nil, nil
				}
				if !d.Status().Current {
					return nil
				}
			}
		}
	}
}

// choose names the leader among the path's children: the json.info_ node
// with the lowest sequence number; the other json.info_ nodes are the
// other masters. It returns an error only when ZooKeeper cannot be read.
func (d *Detector) choose(conn *zk.Conn, children []string) error {
	nodes := jsonNodes(children)
	if len(nodes) == 0 {
		d.noLeader(fmt.Errorf("no %s node under %s: no leading Mesos master (a Mesos older than 0.23 writes only protobuf info_ nodes, which are not read)", jsonPrefix, d.url.Path))
		return nil
	}
	// Every node is read at every listing: there are a handful, the
	// children change rarely, and a node's name alone does not identify
	// it (a path deleted and made again numbers its nodes from zero).
	var masters []string
	for i, node := range nodes {
		data, _, err := conn.Get(d.url.Path + "/" + node)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			// Gone since the listing: the children watch fires for it.
			if i == 0 {
				return nil
			}
			continue
		case err != nil:
			return fmt.Errorf("reading %s/%s: %w", d.url.Path, node, err)
		}
		addr, err := MasterAddr(data)
		if err != nil {
			if i == 0 {
				d.noLeader(fmt.Errorf("leader node %s/%s: %w", d.url.Path, node, err))
				return nil
			}
			d.log.Debug("skipping a registered master whose MasterInfo cannot be read", "node", node, "err", err)
			continue
		}
		if !slices.Contains(masters, addr) {
			masters = append(masters, addr)
		}
	}
	d.found(nodes[0], masters)
	return nil
}

// jsonNodes returns the json.info_ children by sequence number, lowest
// (the leader) first. A name whose suffix is not a number is skipped, as
// mesos-go's selectTopNodePrefix skips it.
func jsonNodes(children []string) []string {
	type node struct {
		name string
		seq  uint64
	}
	var ns []node
	for _, c := range children {
		s, ok := strings.CutPrefix(c, jsonPrefix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		ns = append(ns, node{c, seq})
	}
	slices.SortFunc(ns, func(a, b node) int { return cmp.Compare(a.seq, b.seq) })
	names := make([]string, len(ns))
	for i, n := range ns {
		names[i] = n.name
	}
	return names
}

// found records masters[0], from node, as the current leader, and
// masters as the registered masters.
func (d *Detector) found(node string, masters []string) {
	addr := masters[0]
	d.mu.Lock()
	prev := d.st
	d.st = Status{Leader: addr, Node: node, Masters: masters, Current: true}
	d.mu.Unlock()
	if prev.Leader != addr {
		d.log.Info("ZooKeeper names the leading Mesos master", "leader", addr, "node", node, "previous", prev.Leader)
	} else if !prev.Current {
		d.log.Info("ZooKeeper reached again; the leading Mesos master is unchanged", "leader", addr, "node", node)
	}
	if !slices.Equal(prev.Masters, masters) && prev.Leader == addr {
		d.log.Info("ZooKeeper's registered Mesos masters changed", "masters", masters, "previous", prev.Masters)
	}
	if !prev.OK() || prev.Leader != addr || !slices.Equal(prev.Masters, masters) {
		d.signal()
	}
}

// noLeader records that ZooKeeper, reached, names no leader, and why.
func (d *Detector) noLeader(why error) {
	d.mu.Lock()
	prev := d.st
	d.st = Status{Current: true, Since: prev.Since, Err: why, Masters: prev.Masters}
	if prev.OK() {
		d.st.Since = time.Now()
	}
	d.mu.Unlock()
	if prev.Leader != "" || !prev.Current || prev.Err == nil || prev.Err.Error() != why.Error() {
		d.log.Warn("ZooKeeper names no leading Mesos master", "reason", why)
	}
	if prev.Leader != "" || !prev.Current {
		d.signal()
	}
}

// unreachable records that ZooKeeper cannot be asked, keeping the leader
// it last named.
func (d *Detector) unreachable(why error) {
	d.mu.Lock()
	prev := d.st
	d.st.Current = false
	d.st.Err = why
	if prev.OK() {
		d.st.Since = time.Now()
	}
	d.mu.Unlock()
	if prev.Current {
		d.log.Warn("ZooKeeper unreachable; keeping the leader it last named", "leader", prev.Leader, "reason", why)
		d.signal()
	}
}

func (d *Detector) signal() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// zkLogger sends go-zookeeper's connection log to slog at debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper client: " + fmt.Sprintf(format, args...))
}

// URL returns the ZooKeeper URL the detector follows.
func (d *Detector) URL() config.ZKURL { return d.url }
