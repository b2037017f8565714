package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/proxy/cache"
	"github.com/spartan-dns/spartan/internal/upstream"
	"github.com/spartan-dns/spartan/internal/zones"
)

// Options configure a Forwarder.
type Options struct {
	// Table routes queries to upstream groups. Required. SwapTable
	// replaces it while serving; the Forwarder owns it and every table
	// swapped in, and closes each once it is no longer used.
	Table *upstream.Table
	// Local is the node-local zone ("spartan."). Required.
	Local *zones.Zone
	// ClusterDomain is the cluster's domain (a lower-case FQDN, not the
	// root); empty means none. Its names are never sent to the root
	// group: when the table has no group for the domain (or one above
	// it), they are answered SERVFAIL.
	ClusterDomain string
	// MasterDomains are further domains handled like ClusterDomain (the
	// DC/OS domains, see config.Config.MasterDomains): never sent to the
	// root group, SERVFAIL when no group serves them.
	MasterDomains []string
	// NodeAddress is this node's own address, answered for
	// config.ThisNodeNames; the zero Addr means unknown (NODATA).
	// SetNodeAddress changes it while serving.
	NodeAddress netip.Addr
	// AllowNets are the client networks served; others get REFUSED.
	AllowNets []netip.Prefix
	// RaceTimeout bounds one upstream race.
	RaceTimeout time.Duration
	// MaxInFlight caps concurrent upstream races.
	MaxInFlight int
	// Cache, when set, answers hits on the fast path and sits in front of
	// the races (coalescing, serve-stale, prefetch).
	Cache *cache.Cache
	// StaleClientTimeout is how long a client whose cache entry has
	// expired waits for the race before it gets the stale answer.
	StaleClientTimeout time.Duration
	// Metrics, when set, receives one ObserveQuery per answered query.
	Metrics *metrics.Metrics
	// LogQueries logs every query at debug level.
	LogQueries bool
	Logger     *slog.Logger
}

// Forwarder is the node-local query path: it implements server.Handler
// and server.FastHandler.
type Forwarder struct {
	o        Options
	table    atomic.Pointer[tableRef] // the table routing new queries
	front    *cache.Front             // nil without a cache
	masters  []masterZone             // ClusterDomain and MasterDomains
	thisNode [][]byte                 // lower-cased wire forms of config.ThisNodeNames
	nodeAddr atomic.Pointer[netip.Addr]
	inflight atomic.Int64

	tmu     sync.Mutex
	tables  map[*tableRef]struct{} // not yet closed: the current one and retired ones still racing
	tclosed bool                   // Close was called: no table is swapped in any more

	malformed atomic.Uint64
	refused   atomic.Uint64
	overload  atomic.Uint64
	unrouted  atomic.Uint64
}

// masterZone is a domain only the masters serve.
type masterZone struct {
	name string // lower-case FQDN, the metrics label
	wire []byte // lower-cased wire form
}

// Stats are the Forwarder's counters since start.
type Stats struct {
	Malformed uint64 // unparseable messages (dropped or answered FORMERR)
	Refused   uint64 // queries from clients outside AllowNets
	Overload  uint64 // queries answered SERVFAIL because MaxInFlight was reached
	Unrouted  uint64 // cluster (and DC/OS) names answered SERVFAIL because no group serves their domain
	Tables    int    // upstream tables not yet closed: the current one and retired ones still racing
	InFlight  int64  // upstream races now
	Waiting   int64  // queries waiting on a cached race they started or joined (cache.Front.Waiting)
}

// NewForwarder checks o and returns the query path.
func NewForwarder(o Options) (*Forwarder, error) {
	if o.Table == nil || o.Local == nil {
		return nil, errors.New("proxy: forwarder needs an upstream table and the local zone")
	}
	if o.RaceTimeout <= 0 || o.MaxInFlight <= 0 {
		return nil, fmt.Errorf("proxy: race timeout %s and max in flight %d must be positive", o.RaceTimeout, o.MaxInFlight)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := &Forwarder{o: o, tables: map[*tableRef]struct{}{}}
	for _, d := range append([]string{o.ClusterDomain}, o.MasterDomains...) {
		if d == "" || slices.ContainsFunc(f.masters, func(z masterZone) bool { return z.name == d }) {
			continue
		}
		wire, err := dnswire.WireName(d)
		if err != nil {
			return nil, fmt.Errorf("proxy: cluster domain %q: %w", d, err)
		}
		if len(wire) == 1 {
			return nil, errors.New("proxy: the root zone cannot be the cluster domain")
		}
		f.masters = append(f.masters, masterZone{name: d, wire: wire})
	}
	for _, n := range config.ThisNodeNames {
		wire, err := dnswire.WireName(n)
		if err != nil {
			return nil, fmt.Errorf("proxy: %q: %w", n, err)
		}
		f.thisNode = append(f.thisNode, wire)
	}
	f.nodeAddr.Store(&o.NodeAddress)
	f.table.Store(f.newRef(o.Table))
	if o.Cache != nil {
		front, err := cache.NewFront(o.Cache, cache.FrontOptions{
			Fetch: f.fetch, ClientTimeout: o.StaleClientTimeout, RaceTimeout: o.RaceTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		f.front = front
	}
	return f, nil
}

// Close stops the cache's background races (prefetches, races that
// outlived their clients) and waits for them, then closes the upstream
// table, and every retired one, once its last race has ended. Queries
// after Close get SERVFAIL; a second Close only waits.
func (f *Forwarder) Close() {
	if f.front != nil {
		f.front.Close()
	}
	f.tmu.Lock()
	first := !f.tclosed
	f.tclosed = true
	pending := make([]*tableRef, 0, len(f.tables))
	for r := range f.tables {
		pending = append(pending, r)
	}
	cur := f.table.Load()
	f.tmu.Unlock()
	if first {
		f.release(cur)
	}
	for _, r := range pending {
		<-r.closed
	}
}

// CancelRaces ends the cache's upstream races now, without waiting: the
// queries waiting for them get SERVFAIL (or a stale answer). It is for a
// shutdown whose grace period is over; races without the cache watch the
// server's handler context instead.
func (f *Forwarder) CancelRaces() {
	if f.front != nil {
		f.front.Cancel()
	}
}

// Table returns the upstream table queries are routed with now. It is for
// looking at (groups, upstreams, health); racing on it is the
// Forwarder's job, as the table may be closed once it is replaced.
func (f *Forwarder) Table() *upstream.Table { return f.table.Load().t }

// ErrClosed is returned by SwapTable after Close.
var ErrClosed = errors.New("proxy: forwarder closed")

// SwapTable routes every query that starts from now on with t, which the
// Forwarder then owns. Queries already racing keep the groups they
// started with and finish normally (a reload drops nothing in flight);
// the replaced table is closed once the last of them has ended. After
// Close it returns ErrClosed and t stays the caller's to close.
func (f *Forwarder) SwapTable(t *upstream.Table) error {
	f.tmu.Lock()
	if f.tclosed {
		f.tmu.Unlock()
		return ErrClosed
	}
	old := f.table.Swap(f.newRef(t))
	f.tmu.Unlock()
	f.release(old)
	return nil
}

// SetNodeAddress changes the address answered for the node's own names;
// the zero Addr means unknown (NODATA).
func (f *Forwarder) SetNodeAddress(a netip.Addr) { f.nodeAddr.Store(&a) }

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	f.tmu.Lock()
	tables := len(f.tables)
	f.tmu.Unlock()
	var waiting int64
	if f.front != nil {
		waiting = f.front.Waiting()
	}
	return Stats{Malformed: f.malformed.Load(), Refused: f.refused.Load(),
		Overload: f.overload.Load(), Unrouted: f.unrouted.Load(), Tables: tables,
		InFlight: f.inflight.Load(), Waiting: waiting}
}
