package mesos

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/upstream"
	"github.com/spartan-dns/spartan/internal/zones"
)

// DNSHandler answers DNS messages from an Authority for a server.Server:
// authoritative answers (AA) inside its zones, REFUSED outside them (the
// master port is no open resolver), FORMERR for a query that does not
// parse, and nothing at all for a message that is not a query. Every
// answer comes from memory, so the whole handler runs on the listener's
// read goroutine (ServeFast) and never blocks.
type DNSHandler struct {
	Auth *zones.Authority
	// Loaded, when set, reports whether the zones have been loaded;
	// until then every name below a zone's apex gets SERVFAIL, while the
	// apexes still answer (SOA, NS) and other names are REFUSED. The
	// start-up zones have no records yet, and an NXDOMAIN from them would
	// be cached by every agent's proxy for names that exist; SERVFAIL
	// makes them use another master or their stale copy instead.
	Loaded func() bool
	// Guard, when set, refuses clients outside the allowed networks and
	// rate limits UDP replies (see Guard).
	Guard *Guard
	// Forward, when set, answers names outside the zone by forwarding
	// them (Mesos-DNS's externalOn) instead of refusing them; those
	// queries leave the read goroutine for ServeDNS.
	Forward *Forwarder
	// RecursionAvailable sets RA in the zone's replies, as Mesos-DNS's
	// recurseOn does.
	RecursionAvailable bool

	memo *replyMemo // nil: every query takes the general path
}

// NewDNSHandler returns a handler for auth that keeps the packed replies of
// repeated questions (see DNSHandler.Loaded for loaded). A DNSHandler
// built as a literal answers the same, building every reply anew.
func NewDNSHandler(auth *zones.Authority, loaded func() bool) DNSHandler {
	return DNSHandler{Auth: auth, Loaded: loaded, memo: newReplyMemo()}
}

// ServeFast answers req from memory; only a query to forward (see
// Forward) is left to ServeDNS.
func (h DNSHandler) ServeFast(req *server.Request, dst []byte) ([]byte, bool) {
	if h.Forward != nil {
		var q dnswire.Query
		if len(req.Msg) >= 12 && req.Msg[2]&0x80 == 0 && h.Forward.outside(req.Msg, &q) {
			return nil, false
		}
	}
	return h.reply(context.Background(), req, dst, false), true
}

// ServeDNS answers req, forwarding it when it is for a name outside the
// zone and Forward is set.
func (h DNSHandler) ServeDNS(ctx context.Context, req *server.Request, dst []byte) []byte {
	return h.reply(ctx, req, dst, true)
}

// reply answers req; block is false on the read goroutine, where nothing
// is forwarded.
func (h DNSHandler) reply(ctx context.Context, req *server.Request, dst []byte, block bool) []byte {
	msg := req.Msg
	// Shorter than a header, or a response (QR set): answering either
	// could start a loop with another server.
	if len(msg) < 12 || msg[2]&0x80 != 0 {
		return nil
	}
	var q dnswire.Query
	if h.Guard == nil {
		return h.answerOrForward(ctx, req, dst, &q, block)
	}
	var out []byte
	c := clientOf(req.Client.Addr())
	if h.Guard.allowed(c) {
		out = h.answerOrForward(ctx, req, dst, &q, block)
	} else {
		out = h.Guard.refuse(msg, dst, &q)
	}
	if req.TCP || out == nil {
		return out
	}
	// The listener's clock reading, when it made one: no second one.
	now := req.Received
	if now.IsZero() {
		now = time.Now()
	}
	return h.Guard.limit(c, now, out)
}

// answerOrForward forwards a query for a name outside the zone when it
// may block and Forward is set, and answers it otherwise.
func (h DNSHandler) answerOrForward(ctx context.Context, req *server.Request, dst []byte, q *dnswire.Query, block bool) []byte {
	if block && h.Forward != nil && h.Forward.outside(req.Msg, q) {
		return h.Forward.forward(ctx, req, q, dst)
	}
	return h.answer(req, dst, q)
}

// answer returns the reply to the query msg, parsing it into q.
func (h DNSHandler) answer(req *server.Request, dst []byte, q *dnswire.Query) []byte {
	msg := req.Msg
	loaded := h.Loaded == nil || h.Loaded()
	// A plain query may have its reply in the memo; the version is read
	// first, so a zone swapped meanwhile only makes the new entry stale.
	memo := loaded && h.memo != nil && q.Parse(msg) == nil && q.Cacheable()
	var version uint64
	held := false
	if memo {
		version = h.Auth.Version()
		limit := dns.MaxMsgSize
		if !req.TCP {
			limit = q.UDPLimit()
		}
		var out []byte
		var ok bool
		if out, ok, held = h.memo.get(q, version, dst, limit); ok {
			return out
		}
	}
	var m dns.Msg
	if err := m.Unpack(msg); err != nil {
		// Keep ID, opcode and RD; FORMERR with no sections, no RA.
		return dnswire.AppendFormErr(dst, msg, false)
	}
	if !loaded && len(m.Question) == 1 && !h.Auth.IsApex(m.Question[0].Name) {
		if resp := h.Auth.Reply(&m, req.TCP); resp.Rcode != dns.RcodeRefused {
			return pack(new(dns.Msg).SetRcode(&m, dns.RcodeServerFailure), msg, dst)
		}
	}
	// The whole reply first: it is what the memo keeps, and what the
	// client gets whenever it fits.
	resp := h.Auth.Reply(&m, true)
	resp.RecursionAvailable = h.RecursionAvailable
	out := pack(resp, msg, dst)
	if memo && !held && memoable(resp) {
		h.memo.put(q, version, out)
	}
	if req.TCP || len(out) <= zones.ReplySize(&m, false) {
		return out
	}
	// Too large for the client's UDP buffer: the Authority truncates
	// record by record.
	resp = h.Auth.Reply(&m, false)
	resp.RecursionAvailable = h.RecursionAvailable
	return pack(resp, msg, dst)
}

// memoable reports whether resp may be replayed to later queries: an
// answer or NXDOMAIN from the zone (REFUSED and errors are cheap to
// rebuild), packed uncompressed so its answers can be shuffled: a moved
// record would break a compression pointer into or out of it.
func memoable(resp *dns.Msg) bool {
	return (resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError) &&
		resp.Authoritative && !resp.Truncated && !resp.Compress
}

// pack packs resp into dst, or returns a header-only SERVFAIL to the query
// msg if it cannot be packed.
func pack(resp *dns.Msg, msg, dst []byte) []byte {
	out, err := resp.PackBuffer(dst[:cap(dst)])
	if err != nil {
		return appendRcode(dst, msg, dns.RcodeServerFailure)
	}
	return out
}

// appendRcode appends a header-only reply to query msg with rcode.
func appendRcode(dst, msg []byte, rcode int) []byte {
	return append(dst[:0], msg[0], msg[1], 0x80|msg[2]&0x79, byte(rcode&0xF), 0, 0, 0, 0, 0, 0, 0, 0)
}

// ServiceOptions configure NewService.
type ServiceOptions struct {
	Logger *slog.Logger
	// State, when set, is served instead of polling the Mesos masters
	// (the demo's fixed cluster); see Master.UseState.
	State []byte
	// Listener settings shared with the proxy (see server.Server); zero
	// means the server's defaults.
	TCPIdleTimeout   time.Duration
	MaxTCPConns      int
	UDPReceiveBuffer int
	ShutdownGrace    time.Duration
	// Observer, when set, is told about the races of forwarded queries
	// (metrics).
	Observer upstream.Observer
}

// Service is master mode assembled and bound: the state poller, the
// authoritative DNS listeners on master.listen (UDP and TCP, the same
// server.Server the proxy runs on: IP_FREEBIND, pipelined TCP, connection
// cap, graceful shutdown) behind its Guard, and the HTTP API. Everything
// is bound by NewService, so a taken port fails start-up rather than a
// running process.
type Service struct {
	Master *Master
	DNS    *server.Server
	// Guard is the authoritative port's client policy (master.allowNets,
	// master.rrl), for its counters.
	Guard *Guard
	// Forward answers names outside the zone; nil when master.resolvers
	// is empty (they are REFUSED).
	Forward *Forwarder
	pcs     []net.PacketConn
	lns     []net.Listener
}

// NewService builds master mode for a validated configuration and binds
// its sockets; Run serves them. Close releases them if Run is never
// called.
func NewService(ctx context.Context, cfg config.Master, o ServiceOptions) (*Service, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	m, err := NewMaster(cfg, logger)
	if err != nil {
		return nil, err
	}
	if o.State != nil {
		m.UseState(o.State)
	}
	guard, err := NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	fwd, err := NewForwarder(cfg, o.Observer, logger.With("component", "master-forward"))
	if err != nil {
		return nil, err
	}
	pcs, lns, err := server.ListenAll(ctx, cfg.Listen, 1)
	if err != nil {
		if fwd != nil {
			fwd.Close()
		}
		return nil, fmt.Errorf("master.listen: %w", err)
	}
	h := NewDNSHandler(m.Authority(), m.Loaded)
	h.Guard = guard
	h.Forward = fwd
	h.RecursionAvailable = cfg.RecursionAvailable
	s := &Service{Master: m, Guard: guard, Forward: fwd, pcs: pcs, lns: lns, DNS: &server.Server{
		Handler:          h,
		Logger:           logger.With("component", "master-dns"),
		TCPIdleTimeout:   o.TCPIdleTimeout,
		MaxTCPConns:      o.MaxTCPConns,
		UDPReceiveBuffer: o.UDPReceiveBuffer,
		ShutdownGrace:    o.ShutdownGrace,
	}}
	if err := m.ListenHTTP(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Addrs returns the bound authoritative addresses (UDP and TCP share
// them).
func (s *Service) Addrs() []string {
	var out []string
	for _, pc := range s.pcs {
		out = append(out, pc.LocalAddr().String())
	}
	for _, ln := range s.lns {
		if a := ln.Addr().String(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// Run polls the Mesos masters, serves the zone and the HTTP API until ctx
// is done, then shuts everything down. It returns nil after a clean
// shutdown.
func (s *Service) Run(ctx context.Context) error {
	if s.Forward != nil {
		defer s.Forward.Close()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Master.Run(gctx) })
	if len(s.pcs) > 0 || len(s.lns) > 0 {
		g.Go(func() error {
			if err := s.DNS.Serve(gctx, s.pcs, s.lns); err != nil {
				return fmt.Errorf("master mode: DNS: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Close releases the sockets of a Service that was never Run.
func (s *Service) Close() {
	for _, pc := range s.pcs {
		pc.Close()
	}
	for _, ln := range s.lns {
		ln.Close()
	}
	if s.Forward != nil {
		s.Forward.Close()
	}
	s.Master.closeHTTP()
}
