// Package metrics exposes spartan's Prometheus metrics and its /health and
// /ready endpoints.
//
// Other packages never import client_golang and this package never imports
// them. Two ways in:
//
//   - Event hooks for the query path (ObserveQuery, ObserveLeg,
//     ObserveRace, ObserveCaseFallback, ObservePoll, ObserveReload):
//     atomic adds into counters resolved once per label set, no lock and
//     no allocation per call.
//   - Snapshot sources read at scrape time (SetCache, SetProxy,
//     SetUpstreams, SetZones, SetReady, SetMasterGuard, SetMasterFollow):
//     plain functions returning plain structs, so
//     counters the other packages keep anyway cost the query path nothing
//     extra. cmd/spartan adapts each package's stats accessor to them.
//
// Names follow CoreDNS's (coredns_dns_requests_total and so on) with the
// spartan_ prefix.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "spartan"

// durationBuckets are CoreDNS's request duration buckets: 250µs to ~8s.
var durationBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

// Metrics is the metric registry of one spartan process. The zero value is
// not usable; use New. All methods are safe for concurrent use, and the
// Observe methods are no-ops on a nil *Metrics, so instrumented code needs
// no "metrics enabled?" branches.
type Metrics struct {
	reg *prometheus.Registry

	queries  queryCounters
	duration [numProtos]prometheus.Observer

	legs   labelled2[upstreamCounters]
	races  labelled1[raceCounters]
	legHV  *prometheus.HistogramVec
	pollHV prometheus.Histogram

	pollFailures atomic.Uint64
	pollLastOK   atomic.Int64 // unix nanoseconds
	reloadOK     atomic.Uint64
	reloadFailed atomic.Uint64
	reloadLastOK atomic.Int64
	cacheSrc     atomic.Pointer[func() Cache]
	proxySrc     atomic.Pointer[func() Proxy]
	upstreamSrc  atomic.Pointer[func() []UpstreamState]
	zoneSrc      atomic.Pointer[func() []Zone]
	pollSrc      atomic.Pointer[func() Poll]
	readySrc     atomic.Pointer[func() error]
	guardSrc     atomic.Pointer[func() MasterGuard]
	followSrc    atomic.Pointer[func() MasterFollow]

	extraMu sync.Mutex
	extra   []route // added with Handle, served beside the metrics
}

// route is one extra HTTP handler served on the metrics address.
type route struct {
	pattern string
	h       http.Handler
}

// New returns a registry holding every spartan metric plus the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.queries.init()
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "dns", Name: "request_duration_seconds",
		Help:    "Time from receiving a query to sending its reply, by transport.",
		Buckets: durationBuckets,
	}, []string{"proto"})
	for p := range numProtos {
		m.duration[p] = hv.WithLabelValues(Proto(p).String())
	}
	m.legHV = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "upstream", Name: "leg_duration_seconds",
		Help:    "Time from sending a query to one upstream to its reply, for legs that got one.",
		Buckets: durationBuckets,
	}, []string{"group", "upstream"})
	m.legs.init(func(group, addr string) *upstreamCounters {
		return &upstreamCounters{latency: m.legHV.WithLabelValues(group, addr)}
	})
	m.races.make = func(string) *raceCounters { return new(raceCounters) }
	m.pollHV = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "state", Name: "poll_duration_seconds",
		Help:    "Time taken by one poll of the Mesos master's state (master mode), failed polls included.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		hv, m.legHV, m.pollHV,
		(*collector)(m),
		(*guardCollector)(m),
		(*followCollector)(m),
	)
	return m
}

// Registry returns the underlying registry, for tests and for registering
// extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Cache is a snapshot of the response cache's statistics. Counters are
// totals since start.
type Cache struct {
	Entries   int   // entries held
	Answers   int   // entries that answer (all but cached SERVFAILs)
	Bytes     int64 // memory accounted to entries
	Hits      uint64
	Misses    uint64
	Evictions uint64
	Stale     uint64 // answers served from expired entries (RFC 8767)
	Prefetch  uint64 // background refreshes started
	Coalesced uint64 // misses that joined an identical in-flight one
}

// Proxy is a snapshot of the query path's own counters: the queries it
// refused, dropped or failed before any upstream saw them, and its load.
type Proxy struct {
	Malformed uint64 // unparseable messages, dropped or answered FORMERR
	Denied    uint64 // queries refused because the client is outside the allowed networks
	Overload  uint64 // queries answered SERVFAIL because the in-flight cap was reached
	Unrouted  uint64 // cluster names answered SERVFAIL because no group serves the cluster domain
	InFlight  int64  // upstream races now
	Waiting   int64  // clients waiting on an upstream race now
}

// UpstreamState is the health of one upstream as seen at scrape time.
type UpstreamState struct {
	Group   string        // zone of the upstream group, "." for the root
	Addr    string        // host:port
	Healthy bool          // considered healthy by the passive health check
	Latency time.Duration // smoothed (EWMA) reply latency; 0 when unknown
	// TLS is set for a DNS over TLS upstream, with its connection
	// counters since it was configured (a reload starts them again).
	TLS *UpstreamTLS
}

// UpstreamTLS is the connection state of a DNS over TLS upstream.
type UpstreamTLS struct {
	Handshakes  uint64 // TLS handshakes completed (connections opened)
	Resumptions uint64 // handshakes that resumed an earlier session
	CertErrors  uint64 // handshakes failed on a certificate that did not verify
	Connections int64  // connections open now
}

// Zone is the state of one authoritative zone.
type Zone struct {
	Origin  string
	Records int
	Serial  uint32
}

// Poll is a snapshot of the master-mode state poller's statistics.
type Poll struct {
	Polls, Failures uint64        // totals since start
	LastDuration    time.Duration // of the latest poll
	LastSuccess     time.Time     // zero before the first success
}

// SetPoller sets the function read at scrape time for the state poller
// (master mode); nil removes it. When set, it is the source of the
// state_poll counters instead of ObservePoll's; ObservePoll still feeds
// the duration histogram.
func (m *Metrics) SetPoller(f func() Poll) {
	if f == nil {
		m.pollSrc.Store(nil)
		return
	}
	m.pollSrc.Store(&f)
}

// SetCache sets the function read at scrape time for cache statistics;
// nil removes it (no cache metrics are exported).
func (m *Metrics) SetCache(f func() Cache) {
	if f == nil {
		m.cacheSrc.Store(nil)
		return
	}
	m.cacheSrc.Store(&f)
}

// SetProxy sets the function read at scrape time for the query path's
// counters; nil removes it.
func (m *Metrics) SetProxy(f func() Proxy) {
	if f == nil {
		m.proxySrc.Store(nil)
		return
	}
	m.proxySrc.Store(&f)
}

// SetUpstreams sets the function read at scrape time for upstream health;
// nil removes it.
func (m *Metrics) SetUpstreams(f func() []UpstreamState) {
	if f == nil {
		m.upstreamSrc.Store(nil)
		return
	}
	m.upstreamSrc.Store(&f)
}

// SetZones sets the function read at scrape time for authoritative zones;
// nil removes it.
func (m *Metrics) SetZones(f func() []Zone) {
	if f == nil {
		m.zoneSrc.Store(nil)
		return
	}
	m.zoneSrc.Store(&f)
}

// SetReady sets the readiness check behind /ready: it returns nil when
// ready and an error saying why not otherwise. Until it is set, /ready
// reports "starting".
func (m *Metrics) SetReady(f func() error) {
	if f == nil {
		m.readySrc.Store(nil)
		return
	}
	m.readySrc.Store(&f)
}

// ObservePoll records one poll of the Mesos master's state: its duration
// and whether it failed.
func (m *Metrics) ObservePoll(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.pollHV.Observe(d.Seconds())
	if err != nil {
		m.pollFailures.Add(1)
		return
	}
	m.pollLastOK.Store(time.Now().UnixNano())
}

// ObserveReload records one configuration reload and whether it was
// applied (err == nil) or refused.
func (m *Metrics) ObserveReload(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reloadFailed.Add(1)
		return
	}
	m.reloadOK.Add(1)
	m.reloadLastOK.Store(time.Now().UnixNano())
}

// Handle adds an administrative handler (such as the cache flush) to the
// metrics address, which listens on loopback by default. pattern is an
// http.ServeMux pattern. Handlers added after Serve has started are not
// served.
func (m *Metrics) Handle(pattern string, h http.Handler) {
	m.extraMu.Lock()
	defer m.extraMu.Unlock()
	m.extra = append(m.extra, route{pattern, h})
}

// Handler serves /metrics, /health (the process is alive and serving HTTP),
// /ready (the readiness check set with SetReady passes) and the handlers
// added with Handle.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	m.extraMu.Lock()
	for _, r := range m.extra {
		mux.Handle(r.pattern, r.h)
	}
	m.extraMu.Unlock()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(m.reg,
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := m.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

func (m *Metrics) ready() error {
	f := m.readySrc.Load()
	if f == nil {
		return errors.New("starting")
	}
	return (*f)()
}

// Listen binds the metrics address. It is separate from serving Handler
// (with internal/httpserve, which bounds its clients) so that the caller
// can treat a bind failure as non-fatal: metrics are not worth refusing to
// serve DNS for.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// labelled1 maps one label value to counters, copy-on-write: lookups are
// a map read through an atomic pointer, and only a label value seen for
// the first time takes the lock. Label values come from configuration
// (zone names, upstream addresses), never from queries, so the set stays
// small.
type labelled1[T any] struct {
	mu    sync.Mutex
	m     atomic.Pointer[map[string]*T]
	make  func(string) *T
	limit int // when > 0, label values beyond this many count as "other"
}

// maxLabelValues bounds the label values of one metric family, as a guard
// against a caller passing something unbounded.
const maxLabelValues = 1000

func (l *labelled1[T]) get(k string) *T {
	if mp := l.m.Load(); mp != nil {
		if v, ok := (*mp)[k]; ok {
			return v
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		if l.limit > 0 && len(*old) >= l.limit {
			if v, ok := (*old)["other"]; ok {
				return v
			}
			k = "other"
		}
	}
	next := make(map[string]*T, 1+lenMap(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	v := l.make(k)
	next[k] = v
	l.m.Store(&next)
	return v
}

func (l *labelled1[T]) each(f func(string, *T)) {
	if mp := l.m.Load(); mp != nil {
		for k, v := range *mp {
			f(k, v)
		}
	}
}

// labelled2 is labelled1 for two label values: a map of maps, so no key
// has to be built (and allocated) per lookup.
type labelled2[T any] struct {
	outer labelled1[labelled1[T]]
}

func (l *labelled2[T]) init(mk func(a, b string) *T) {
	l.outer.make = func(a string) *labelled1[T] {
		return &labelled1[T]{make: func(b string) *T { return mk(a, b) }}
	}
}

func (l *labelled2[T]) get(a, b string) *T { return l.outer.get(a).get(b) }

func (l *labelled2[T]) each(f func(a, b string, v *T)) {
	l.outer.each(func(a string, in *labelled1[T]) {
		in.each(func(b string, v *T) { f(a, b, v) })
	})
}

func lenMap[K comparable, V any](m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
