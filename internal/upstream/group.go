package upstream

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/metrics"
)

// EDNSSize is the UDP payload size advertised upstream (DNS Flag Day
// 2020): large enough for most answers, small enough to avoid IP
// fragmentation.
const EDNSSize = dnswire.MaxUDPSize

// readBufSize is the read buffer of a UDP leg. A reply that fills it may
// have been cut by the kernel; it is treated as truncated and retried
// over TCP.
const readBufSize = 4096

// defaultRaceTimeout bounds a race whose context has no deadline.
const defaultRaceTimeout = 2 * time.Second

// Errors a race returns. The caller answers SERVFAIL for all of them.
var (
	// ErrAllFailed: every leg failed (error rcode, unparseable reply,
	// network error) before the deadline.
	ErrAllFailed = errors.New("upstream: every upstream failed")
	// ErrTimeout: the deadline passed with no usable reply.
	ErrTimeout = errors.New("upstream: no usable reply before the race deadline")
)

// Observer receives a Group's events; *metrics.Metrics implements it. The
// calls are made on the query path and must not block.
type Observer interface {
	ObserveLeg(group, addr string, r metrics.LegResult, d time.Duration)
	ObserveRace(group string, o metrics.RaceOutcome)
	// ObserveCaseFallback is called once per upstream seen to normalise
	// the case of the question (DNS 0x20 is then off for it).
	ObserveCaseFallback(group, addr string)
}

// Outcomes counts how a Group's races ended.
type Outcomes struct {
	Answered uint64 // a leg returned NOERROR or NXDOMAIN
	Failed   uint64 // every leg failed before the deadline
	Timeout  uint64 // the deadline (or cancellation) came first
}

// Group is a zone's set of equivalent upstreams. Every query is raced
// across the group; queries never leave it.
type Group struct {
	zone      string
	ups       []*Upstream
	obs       Observer
	poll      *poller
	closeOnce sync.Once
	legs      sync.WaitGroup // legs still winding down after their race
	answered  counter
	failed    counter
	timeouts  counter
	silentFor time.Duration
	logger    *slog.Logger
	now       func() time.Time
	tls       TLSOptions
}

// GroupOption configures NewGroup.
type GroupOption func(*Group)

// WithLogger sets the logger of the group's upstreams' health changes
// (default: slog.Default()).
func WithLogger(l *slog.Logger) GroupOption { return func(g *Group) { g.logger = l } }

// WithClock sets the clock of the group's passive health: failure score
// decay, probe intervals and silence (default time.Now). Latencies and
// race deadlines always use the real clock.
func WithClock(now func() time.Time) GroupOption { return func(g *Group) { g.now = now } }

// NewGroup returns the group for zone (a lower-case FQDN, "." for the root)
// made of the upstreams at addrs ("IP:port", or "tls://IP:port#name" for
// DNS over TLS: see New). obs may be nil.
func NewGroup(zone string, addrs []string, obs Observer, opts ...GroupOption) (*Group, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("upstream: group %s: no upstreams", zone)
	}
	g := &Group{zone: dns.CanonicalName(zone), obs: obs, silentFor: 2 * defaultRaceTimeout, now: time.Now}
	for _, o := range opts {
		o(g)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		u, err := New(a)
		if err != nil {
			return nil, fmt.Errorf("upstream: group %s: %w", zone, err)
		}
		if seen[u.str] {
			continue
		}
		seen[u.str] = true
		u.zone, u.logger, u.now = g.zone, g.logger, g.now
		if u.dot != nil {
			u.dot.configure(g.tls)
		}
		u.lastReply.Store(g.now().UnixNano())
		g.ups = append(g.ups, u)
	}
	if g.tls.Roots == nil && slices.ContainsFunc(g.ups, (*Upstream).TLS) {
		// Read the system roots now rather than in the first handshake,
		// whose connect timeout reading them could use up; crypto/x509
		// keeps them for the process.
		_, _ = x509.SystemCertPool()
	}
	var err error
	if g.poll, err = acquirePoller(); err != nil {
		return nil, fmt.Errorf("upstream: group %s: %w", zone, err)
	}
	return g, nil
}

// Close waits for the legs of finished races, closes the TLS upstreams'
// connections and releases the group's share of the socket poller. The group must not race after Close; a
// second Close does nothing.
func (g *Group) Close() {
	g.closeOnce.Do(func() {
		g.legs.Wait()
		for _, u := range g.ups {
			if u.dot != nil {
				u.dot.close()
			}
		}
		releasePoller()
	})
}

// Zone returns the group's zone.
func (g *Group) Zone() string { return g.zone }

// Upstreams returns the group's upstreams (shared, not to be modified).
func (g *Group) Upstreams() []*Upstream { return g.ups }

// Outcomes returns how the group's races ended so far.
func (g *Group) Outcomes() Outcomes {
	return Outcomes{Answered: g.answered.load(), Failed: g.failed.load(), Timeout: g.timeouts.load()}
}

// Wait waits for the legs of finished races to wind down (they are
// cancelled when their race ends, but close their sockets on their own).
func (g *Group) Wait() { g.legs.Wait() }

// Race sends req to the group and returns the first usable reply, with
// the client's ID and question casing restored (the rest of the message is
// the upstream's). It is RaceWire for callers holding a dns.Msg; EDNS with
// EDNSSize is added when req has none.
func (g *Group) Race(ctx context.Context, req *dns.Msg, tcp bool) (*dns.Msg, *Upstream, error) {
	if len(req.Question) != 1 {
		return nil, nil, errQuery
	}
	q := req.Copy()
	if q.IsEdns0() == nil {
		q.SetEdns0(EDNSSize, false)
	}
	wire, err := q.Pack()
	if err != nil {
		return nil, nil, fmt.Errorf("upstream: packing query: %w", err)
	}
	reply, u, err := g.RaceWire(ctx, wire, tcp)
	if err != nil {
		return nil, u, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		return nil, u, fmt.Errorf("upstream: reply from %s: %w", u, err)
	}
	m.Id = req.Id
	m.Question[0].Name = req.Question[0].Name
	return m, u, nil
}

// RaceWire sends the packed query (one uncompressed question; its ID is
// ignored, every leg sets its own; query is not retained) to the group and returns the first
// usable reply and who sent it. The reply carries the leg's ID and the
// question as the upstream echoed it; restoring the client's is the
// caller's job. tcp says the client asked over TCP: a truncated reply is
// then retried over TCP on the same upstream instead of being returned.
//
// The race ends at ctx's deadline (2 s when it has none) or cancellation.
func (g *Group) RaceWire(ctx context.Context, query []byte, tcp bool) ([]byte, *Upstream, error) {
	qend, err := questionEnd(query)
	if err != nil {
		return nil, nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRaceTimeout)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	var pick [8]*Upstream
	legs := g.pick(pick[:0], g.now())
	r := &race{g: g, ctx: ctx, query: query, question: query[headerLen:qend], tcp: tcp, deadline: deadline}

	if len(legs) == 1 {
		// One leg runs on the caller's goroutine: no channel, no extra
		// goroutine.
		l := leg{u: legs[0]}
		res := r.run(&l)
		return g.finish(ctx, res.reply, res.u, res.err)
	}

	// Losing legs may still be starting when the race returns; they get
	// their own copy of the query, so the caller may reuse its buffer.
	r.query = append([]byte(nil), query...)
	r.question = r.query[headerLen:qend]
	r.stop = make(chan struct{})
	results := make(chan legResult, len(legs))
	ls := make([]leg, len(legs))
	g.legs.Add(len(legs))
	for i, u := range legs {
		ls[i].u = u
		go func(l *leg) {
			defer g.legs.Done()
			results <- r.run(l)
		}(&ls[i])
	}
	cancelAll := func(except *leg) {
		close(r.stop)
		for i := range ls {
			if &ls[i] != except {
				ls[i].cancel()
			}
		}
	}
	var lastErr error
	for pending := len(legs); pending > 0; pending-- {
		select {
		case res := <-results:
			if res.err == nil {
				cancelAll(res.l)
				return g.finish(ctx, res.reply, res.u, nil)
			}
			lastErr = res.err
		case <-ctx.Done():
			cancelAll(nil)
			return g.finish(ctx, nil, nil, ctx.Err())
		}
	}
	return g.finish(ctx, nil, nil, lastErr)
}

// finish counts the race's outcome and maps it to the package's errors.
func (g *Group) finish(ctx context.Context, reply []byte, u *Upstream, err error) ([]byte, *Upstream, error) {
	switch {
	case err == nil:
		g.answered.add()
		g.observeRace(metrics.RaceAnswered)
		return reply, u, nil
	case ctx.Err() != nil || errors.Is(err, errLegTimeout):
		g.timeouts.add()
		g.observeRace(metrics.RaceTimeout)
		return nil, u, fmt.Errorf("%w (zone %s): %w", ErrTimeout, g.zone, context.Cause(ctx))
	default:
		g.failed.add()
		g.observeRace(metrics.RaceFailed)
		return nil, u, fmt.Errorf("%w (zone %s): %w", ErrAllFailed, g.zone, err)
	}
}

func (g *Group) observeRace(o metrics.RaceOutcome) {
	if g.obs != nil {
		g.obs.ObserveRace(g.zone, o)
	}
}

// pick appends the upstreams to query now: the healthy ones, plus any
// unhealthy one whose probe is due. When none is healthy, all of them:
// health never leaves a query with nowhere to go.
func (g *Group) pick(dst []*Upstream, now time.Time) []*Upstream {
	if len(g.ups) == 1 {
		return append(dst, g.ups[0])
	}
	healthy := 0
	for _, u := range g.ups {
		if u.Healthy() {
			healthy++
		}
	}
	if healthy == 0 {
		return append(dst, g.ups...)
	}
	for _, u := range g.ups {
		if u.Healthy() || u.probeDue(now) {
			dst = append(dst, u)
		}
	}
	return dst
}

// race is one query's state shared by its legs (read-only).
type race struct {
	g        *Group
	ctx      context.Context
	stop     chan struct{} // closed when the race is over; nil with one leg
	query    []byte
	question []byte
	tcp      bool
	deadline time.Time
}

// leg is one upstream's part of a race. cancel unblocks its socket
// operations whether they started before or after the call.
type leg struct {
	u         *Upstream
	mu        sync.Mutex
	conn      deadliner
	cancelled bool
}

// deadliner is the part of a leg's socket (*os.File for UDP, net.Conn for
// TCP) that cancellation needs.
type deadliner interface{ SetDeadline(time.Time) error }

// attach registers the leg's connection; false means the leg was already
// cancelled (the caller closes c).
func (l *leg) attach(c deadliner) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancelled {
		return false
	}
	l.conn = c
	return true
}

func (l *leg) detach() {
	l.mu.Lock()
	l.conn = nil
	l.mu.Unlock()
}

func (l *leg) cancel() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancelled = true
	if l.conn != nil {
		// An expired deadline wakes a blocked Read at once; the leg
		// closes its own socket.
		_ = l.conn.SetDeadline(time.Unix(1, 0))
	}
}

func (l *leg) isCancelled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cancelled
}

type legResult struct {
	l     *leg
	u     *Upstream
	reply []byte
	err   error
}

var (
	errLegTimeout   = errors.New("no reply before the deadline")
	errLegCancelled = errors.New("cancelled: the race ended")
)

// legError is a leg that got a reply it cannot use.
type legError struct {
	u      *Upstream
	reason string
}

func (e *legError) Error() string { return e.u.str + ": " + e.reason }

// run performs one leg: over TLS for a TLS upstream; otherwise UDP, then
// TCP when the reply is truncated and the client is on TCP (or the reply
// did not fit our buffer). It records the
// upstream's health and the leg's metrics.
func (r *race) run(l *leg) legResult {
	u := l.u
	start := time.Now()
	u.sent.Add(1)
	var reply []byte
	var v verdict
	var err error
	if u.dot != nil {
		reply, v, err = r.exchangeTLS(l)
	} else {
		reply, v, err = r.exchangeUDP(l)
	}
	if err == nil && v == truncated && r.tcp {
		reply, v, err = r.exchangeTCP(l)
	}
	rtt := time.Since(start)
	now := r.g.now() // the health clock
	res := legResult{l: l, u: u, reply: reply}
	var lr metrics.LegResult
	switch {
	case err == nil && (v == answer || v == truncated):
		u.observeReply(now, rtt, false)
		lr = metrics.LegWon
		if l.isCancelled() {
			// A usable reply that arrived after another leg won.
			lr = metrics.LegLost
		}
	case err == nil: // failure verdict
		u.observeReply(now, rtt, true)
		res.err = &legError{u: u, reason: "error rcode or unparseable reply"}
		lr = metrics.LegError
	case errors.Is(err, errLegCancelled):
		u.observeCancelled(now, r.g.silentFor)
		res.err = err
		lr, rtt = metrics.LegCancelled, 0
	case errors.Is(err, errLegTimeout):
		u.observeFailure(now, errLegTimeout.Error())
		res.err = err
		lr, rtt = metrics.LegTimeout, 0
	default:
		reason := err.Error()
		u.observeFailure(now, reason)
		res.err = &legError{u: u, reason: reason}
		lr, rtt = metrics.LegError, 0
	}
	if r.g.obs != nil {
		r.g.obs.ObserveLeg(r.g.zone, u.str, lr, rtt)
	}
	return res
}

// counter is a monotonic event counter.
type counter struct{ v atomic.Uint64 }

func (c *counter) add()         { c.v.Add(1) }
func (c *counter) load() uint64 { return c.v.Load() }
