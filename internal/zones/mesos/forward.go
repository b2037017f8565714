package mesos

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/upstream"
)

// Forwarder answers, on the authoritative port, the names outside the
// zone by forwarding them to resolvers, as Mesos-DNS does with externalOn
// (resolver.HandleNonMesos in mesosphere/mesos-dns): the longest
// zoneResolvers suffix picks the group, the resolvers catch the rest.
// Where Mesos-DNS tries its resolvers one after another, a group here is
// raced as the proxy races one (upstream.Group), and the reply is relayed
// the way the proxy relays it. Nothing is cached: Mesos-DNS caches
// nothing either.
type Forwarder struct {
	zone    []byte // the generated zone's lower-cased wire name
	table   *upstream.Table
	timeout time.Duration
	log     *slog.Logger
}

// NewForwarder returns the forwarder a validated master configuration
// asks for, or nil when it has no resolvers: names outside the zone are
// then REFUSED. obs, when set, is told about every race and leg.
func NewForwarder(cfg config.Master, obs upstream.Observer, logger *slog.Logger) (*Forwarder, error) {
	if len(cfg.Resolvers) == 0 {
		return nil, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	zone, err := dnswire.WireName(cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("master.domain: %w", err)
	}
	var groups []*upstream.Group
	closeAll := func() {
		for _, g := range groups {
			g.Close()
		}
	}
	add := func(zone string, addrs []string) error {
		g, err := upstream.NewGroup(zone, addrs, obs, upstream.WithLogger(logger))
		if err != nil {
			return err
		}
		groups = append(groups, g)
		return nil
	}
	if err := add(".", cfg.Resolvers); err != nil {
		return nil, fmt.Errorf("master.resolvers: %w", err)
	}
	for z, addrs := range cfg.ZoneResolvers {
		if err := add(z, addrs); err != nil {
			closeAll()
			return nil, fmt.Errorf("master.zoneResolvers[%q]: %w", z, err)
		}
	}
	t, err := upstream.NewTable(groups...)
	if err != nil {
		closeAll()
		return nil, err
	}
	return &Forwarder{zone: zone, table: t, timeout: cfg.ForwardTimeout.D(), log: logger}, nil
}

// Table returns the resolver groups, for status and health.
func (f *Forwarder) Table() *upstream.Table { return f.table }

// Close closes the groups once their last legs have ended.
func (f *Forwarder) Close() { f.table.Close() }

// outside parses msg into q and reports whether it is a query the
// forwarder takes: one that parses, for a name outside the zone.
// Anything else (malformed, unusual, inside the zone) is the authority's.
func (f *Forwarder) outside(msg []byte, q *dnswire.Query) bool {
	return q.Parse(msg) == nil && q.Opcode == dns.OpcodeQuery && !dnswire.InZone(q.LowerName(), f.zone)
}

// forward races the query q (parsed from req) in its group and appends
// the reply to dst: the first usable answer, relayed with the client's
// ID, flags and casing, cut to what the client takes; SERVFAIL when every
// resolver failed or the timeout passed, as Mesos-DNS answers a failed
// exchange.
func (f *Forwarder) forward(ctx context.Context, req *server.Request, q *dnswire.Query, dst []byte) []byte {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	g := f.table.LookupWire(q.LowerName())
	reply, from, err := g.RaceWire(ctx, q.AppendQuery(dst), req.TCP)
	if err != nil {
		f.log.Debug("forwarding failed", "zone", g.Zone(), "client", req.Client, "err", err)
		return dnswire.AppendError(dst, q, dns.RcodeServerFailure)
	}
	limit := dns.MaxMsgSize
	if !req.TCP {
		limit = q.UDPLimit()
	}
	if binary.BigEndian.Uint16(reply[2:])&(1<<9) != 0 {
		// Truncated upstream reply to a UDP client: the client
		// retries over TCP, and so does the race then.
		return dnswire.AppendTruncated(dst, q, reply)
	}
	resp, err := dnswire.ParseResponse(q, reply)
	if err != nil {
		f.log.Debug("unusable resolver reply", "resolver", from, "zone", g.Zone(), "err", err)
		return dnswire.AppendError(dst, q, dns.RcodeServerFailure)
	}
	return resp.AppendReply(dst, q, limit)
}
