// Package upstream sends queries to upstream DNS servers: one Upstream per
// server address with its passive health, a Group of equivalent upstreams
// (one zone) that races every query across its members, and a Table mapping
// zones to groups by longest suffix.
//
// A race sends the query at once to every upstream of one group, each leg
// on a fresh connected UDP socket (so a kernel-chosen random source port)
// with a fresh random ID and the letters of the question name in a case of
// its own (DNS 0x20). A reply is accepted only from the leg's server (the
// connected socket filters the source), with the leg's ID and the same
// question, letters' case included; anything else is ignored and the leg
// keeps reading. An upstream seen to normalise case (over TCP, where no
// blind spoofer can answer) has 0x20 turned off: its replies then match
// ignoring case. NOERROR
// (including NODATA) and NXDOMAIN end the race; SERVFAIL, REFUSED, NOTIMP,
// FORMERR and unparseable replies are held as failures while other legs are
// pending. When every leg has failed, or the context's deadline passes, the
// race returns an error so the caller can answer SERVFAIL at once.
//
// A DNS over TLS upstream (RFC 7858) races like any other, UDP upstreams
// beside it included. Its legs share one persistent connection per
// upstream, pipelined (RFC 7766 §6.2.1.1): each query has its own ID and
// replies are matched to them in any order. The connection is opened on
// demand within a connect timeout well under the race's, closed when idle,
// and resumes the previous TLS session. A certificate that does not verify
// makes the upstream unhealthy until one does; nothing is ever sent in
// clear text instead. Over TLS the question keeps the client's casing: an
// authenticated stream admits no spoofed reply, so 0x20 would protect
// nothing, and the reply's question is matched ignoring case.
package upstream

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/spartan-dns/spartan/internal/config"
)

// Health tuning. They are constants, not configuration: they shape how
// fast a dead upstream stops costing packets and how fast a recovered one
// is trusted again, and need no per-site tuning.
const (
	// failHalfLife is the half-life of an upstream's failure score: one
	// failure weighs half as much after this long, so an upstream that
	// failed once is not penalised for long.
	failHalfLife = 10 * time.Second
	// unhealthyScore is the failure score at which an upstream is skipped
	// (except for probes) while a healthier one exists: about three recent
	// failures in a row.
	unhealthyScore = 2.5
	// successFactor scales the failure score down on each good reply.
	successFactor = 0.5
	// probeInterval is how often an unhealthy upstream still gets a leg,
	// so its recovery is noticed from real traffic.
	probeInterval = time.Second
	// ewmaWeight is the weight of a new latency sample (1/8, as TCP's
	// smoothed RTT).
	ewmaWeight = 0.125
)

// Upstream is one upstream server address and its passive health: an EWMA
// of reply latency and a failure score (timeouts, error rcodes,
// unparseable replies) that decays over time. Every change between healthy
// and unhealthy is logged once. It is safe for concurrent use.
type Upstream struct {
	addr netip.AddrPort
	str  string
	// Set before the first use and only read after: the zone of the
	// upstream's group, the logger of its health changes (nil:
	// slog.Default()) and the clock of its health.
	zone   string
	logger *slog.Logger
	now    func() time.Time
	// The legs' connect(2) address, built once and only read after:
	// syscall.Connect would write into a shared syscall.Sockaddr.
	family int
	raw4   syscall.RawSockaddrInet4
	raw6   syscall.RawSockaddrInet6
	rawPtr unsafe.Pointer
	rawLen uintptr

	ewma      atomic.Int64 // nanoseconds; 0 until the first reply
	nextProbe atomic.Int64 // unix nanoseconds
	healthy   atomic.Bool  // cached view of score < unhealthyScore
	sent      atomic.Uint64
	replies   atomic.Uint64
	failures  atomic.Uint64
	lastReply atomic.Int64 // unix nanoseconds; creation time before any
	// caseFold is set once the upstream has been seen to normalise the
	// case of the question it was asked (see race.confirmCase): from then
	// on its legs accept a reply whose question matches ignoring case, and
	// send the name as the client cased it, since a random case would buy
	// nothing that is checked. It is not reset: a reload builds new
	// upstreams, which find out again.
	caseFold atomic.Bool
	// dot is the connection of a DNS over TLS upstream; nil for a UDP one.
	dot *dotClient

	mu      sync.Mutex
	score   float64
	scoreAt time.Time
}

// New returns an upstream for addr: "IP:port" for DNS over UDP (TCP for
// truncated replies), or "tls://IP[:port][#name]" for DNS over TLS (see
// config.ParseUpstream). A TLS upstream verifies its server against the
// system roots until its group sets others (WithTLS).
func New(addr string) (*Upstream, error) {
	cu, err := config.ParseUpstream(addr, config.DNSPort)
	if err != nil {
		return nil, fmt.Errorf("upstream: bad address %q: %w", addr, err)
	}
	ap := netip.AddrPortFrom(cu.Addr.Addr().Unmap(), cu.Addr.Port())
	cu.Addr = ap
	u := &Upstream{
		addr:   ap,
		family: syscall.AF_INET,
		str:    cu.String(),
		now:    time.Now,
	}
	if cu.TLS {
		u.dot = newDoT(u, cu.ServerName)
	}
	if ap.Addr().Is4() {
		u.raw4.Family = syscall.AF_INET
		u.raw4.Addr = ap.Addr().As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&u.raw4.Port))[:], ap.Port())
		u.rawPtr, u.rawLen = unsafe.Pointer(&u.raw4), syscall.SizeofSockaddrInet4
	} else {
		u.family = syscall.AF_INET6
		u.raw6.Family = syscall.AF_INET6
		u.raw6.Addr = ap.Addr().As16()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&u.raw6.Port))[:], ap.Port())
		if z := ap.Addr().Zone(); z != "" {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return nil, fmt.Errorf("upstream: address %q: zone: %w", addr, err)
			}
			u.raw6.Scope_id = uint32(ifi.Index)
		}
		u.rawPtr, u.rawLen = unsafe.Pointer(&u.raw6), syscall.SizeofSockaddrInet6
	}
	u.healthy.Store(true)
	u.lastReply.Store(u.now().UnixNano())
	return u, nil
}

// TLS reports whether queries go to the upstream over TLS (RFC 7858).
func (u *Upstream) TLS() bool { return u.dot != nil }

// Addr returns the server's address.
func (u *Upstream) Addr() netip.AddrPort { return u.addr }

// String returns the server's address as host:port, or for a TLS
// upstream as tls://host:port, followed by #name when a server name is
// checked.
func (u *Upstream) String() string { return u.str }

// Latency returns the smoothed reply latency, 0 before the first reply.
func (u *Upstream) Latency() time.Duration { return time.Duration(u.ewma.Load()) }

// Healthy reports whether the upstream is currently trusted: its decayed
// failure score is below the threshold.
func (u *Upstream) Healthy() bool {
	if u.dot != nil && u.dot.certBad.Load() {
		// Until it shows a valid certificate, whatever its score.
		return false
	}
	if u.healthy.Load() {
		return true
	}
	// The cached flag only changes on events; let time heal it too.
	u.mu.Lock()
	s := u.decayLocked(u.now())
	changed := u.setHealthLocked(s)
	u.mu.Unlock()
	if changed {
		u.logHealth(true, s, "failure score decayed")
	}
	return s < unhealthyScore
}

// FailureScore returns the decayed failure score: roughly the number of
// recent failures not offset by successes, halving every 10 s.
func (u *Upstream) FailureScore() float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.decayLocked(u.now())
}

// CaseRandomized reports whether legs to the upstream randomize the case
// of the question's letters and accept only a reply that echoes it (DNS
// 0x20): true until the upstream is seen to normalise case. Never for a
// TLS upstream: no off-path spoofer can inject a reply into an
// authenticated TLS stream, so the casing would protect nothing.
func (u *Upstream) CaseRandomized() bool { return u.dot == nil && !u.caseFold.Load() }

// caseFallback turns DNS 0x20 off for the upstream, which was seen to
// normalise the case of the question over TCP, where a blind spoofer cannot
// answer. The first call logs at warn and counts it; later ones do
// nothing.
func (u *Upstream) caseFallback(obs Observer) {
	if !u.caseFold.CompareAndSwap(false, true) {
		return
	}
	l := u.logger
	if l == nil {
		l = slog.Default()
	}
	l.Warn("upstream does not preserve the case of the question: 0x20 case randomization turned off for it",
		"upstream", u.str, "zone", u.zone)
	if obs != nil {
		obs.ObserveCaseFallback(u.zone, u.str)
	}
}

// Sent, Replies and Failures return how many legs were sent to the
// upstream, how many got a reply (any rcode) and how many failed (timeout,
// error rcode, unparseable reply, network error) since start.
func (u *Upstream) Sent() uint64     { return u.sent.Load() }
func (u *Upstream) Replies() uint64  { return u.replies.Load() }
func (u *Upstream) Failures() uint64 { return u.failures.Load() }

func (u *Upstream) decayLocked(now time.Time) float64 {
	if u.score == 0 {
		u.scoreAt = now
		return 0
	}
	dt := now.Sub(u.scoreAt)
	if dt > 0 {
		u.score *= math.Exp2(-float64(dt) / float64(failHalfLife))
		if u.score < 0.01 {
			u.score = 0
		}
		u.scoreAt = now
	}
	return u.score
}

// observeReply records a reply that arrived after rtt; failed says whether
// its rcode made the leg fail.
func (u *Upstream) observeReply(now time.Time, rtt time.Duration, failed bool) {
	u.replies.Add(1)
	u.lastReply.Store(now.UnixNano())
	for {
		old := u.ewma.Load()
		v := int64(rtt)
		if old != 0 {
			v = old + int64(float64(int64(rtt)-old)*ewmaWeight)
		}
		if u.ewma.CompareAndSwap(old, v) {
			break
		}
	}
	if failed {
		u.observeFailure(now, "error rcode or unparseable reply")
		return
	}
	u.mu.Lock()
	s := u.decayLocked(now) * successFactor
	if s < 0.01 {
		s = 0
	}
	u.score = s
	changed := u.setHealthLocked(s)
	u.mu.Unlock()
	if changed {
		u.logHealth(true, s, "good reply")
	}
}

// observeFailure records a failed leg (timeout, network error, error
// rcode, unparseable reply); cause says which, for the log.
func (u *Upstream) observeFailure(now time.Time, cause string) {
	u.failures.Add(1)
	u.mu.Lock()
	s := u.decayLocked(now) + 1
	u.score = s
	changed := u.setHealthLocked(s)
	u.mu.Unlock()
	if changed {
		u.logHealth(false, s, cause)
	}
}

// setHealthLocked sets the cached health flag from the failure score s
// and reports whether that changed it. The swap makes exactly one caller
// see each change.
func (u *Upstream) setHealthLocked(s float64) bool {
	h := s < unhealthyScore
	return u.healthy.Swap(h) != h
}

// logHealth logs a change of health: the upstream, its group's zone, the
// failure score and what made it change.
func (u *Upstream) logHealth(healthy bool, score float64, reason string) {
	l := u.logger
	if l == nil {
		l = slog.Default()
	}
	attrs := []any{"upstream", u.str, "zone", u.zone, "failureScore", math.Round(score*100) / 100,
		"threshold", unhealthyScore, "reason", reason}
	if healthy {
		l.Info("upstream healthy", attrs...)
		return
	}
	// Skipped, but for probes, while a healthier one exists.
	l.Warn("upstream unhealthy", attrs...)
}

// observeCancelled records a leg cancelled because another leg won. It
// is no evidence by itself; but an upstream that has not replied to
// anything for silentAfter while legs kept going to it is failing
// silently (a black hole behind a faster peer) and gets a failure, so it
// is eventually skipped instead of costing a socket on every query.
func (u *Upstream) observeCancelled(now time.Time, silentAfter time.Duration) {
	if now.UnixNano()-u.lastReply.Load() > int64(silentAfter) {
		u.observeFailure(now, "no reply to anything for "+silentAfter.String()+" while peers answered")
		// Count the next silent period from now, so a silent upstream
		// collects about one failure per period, not one per query.
		u.lastReply.Store(now.UnixNano())
	}
}

// probeDue reports whether an unhealthy upstream should get a leg now, and
// if so books the next probe, so concurrent queries do not all probe.
func (u *Upstream) probeDue(now time.Time) bool {
	next := u.nextProbe.Load()
	if now.UnixNano() < next {
		return false
	}
	return u.nextProbe.CompareAndSwap(next, now.Add(probeInterval).UnixNano())
}
