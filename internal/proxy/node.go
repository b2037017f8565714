package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/proxy/cache"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/upstream"
	"github.com/spartan-dns/spartan/internal/zones"
)

// NodeOptions configure NewNode.
type NodeOptions struct {
	// Config is the validated configuration.
	Config *config.Config
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *metrics.Metrics
	// PacketConns and Listeners, when set, are served instead of binding
	// Config.Listen (sockets passed by the service manager).
	PacketConns []net.PacketConn
	Listeners   []net.Listener
	// Now is the cache's clock; nil means time.Now. Tests inject one to
	// expire entries without waiting.
	Now func() time.Time
}

// Node is a node-local proxy assembled from a configuration: its upstream
// table, local zone, query path and listeners.
type Node struct {
	Local *zones.Zone
	// Cache is the response cache, nil when disabled. Flush it after a
	// cluster change.
	Cache     *cache.Cache
	Forwarder *Forwarder
	Server    *server.Server
	pcs       []net.PacketConn
	lns       []net.Listener
	logger    *slog.Logger
	obs       upstream.Observer
	cluster   string // the cluster domain

	mu            sync.Mutex
	clusterServed bool // the table in use has a group for the cluster domain
}

// NewNode builds the proxy and binds its sockets; Run serves them.
func NewNode(ctx context.Context, o NodeOptions) (*Node, error) {
	cfg, logger := o.Config, o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var obs upstream.Observer
	if o.Metrics != nil {
		obs = o.Metrics
	}
	table, err := BuildTable(cfg, logger, obs)
	if err != nil {
		return nil, err
	}
	owned := table // closed on error until the Forwarder owns it
	defer func() {
		if owned != nil {
			owned.Close()
		}
	}()
	allow, err := ParseAllowNets(cfg.AllowNets)
	if err != nil {
		return nil, err
	}
	allow = append(allow, ownAddrs(cfg.Listen, o.PacketConns, o.Listeners)...)
	first, err := netip.ParseAddrPort(cfg.Listen[0])
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	local := zones.NewLocal(first.Addr())
	var c *cache.Cache
	if !cfg.Cache.Disabled {
		c, err = cache.New(cache.Options{Config: cfg.Cache, ClusterDomain: cfg.ClusterDomain, MasterDomains: cfg.MasterDomains(), Now: o.Now})
		if err != nil {
			return nil, err
		}
		if o.Metrics != nil {
			o.Metrics.SetCache(func() metrics.Cache {
				s := c.Stats()
				return metrics.Cache{Entries: s.Entries, Answers: s.Answers, Bytes: s.Bytes, Hits: s.Hits, Misses: s.Misses,
					Evictions: s.Evictions, Stale: s.Stale, Prefetch: s.Prefetch, Coalesced: s.Coalesced}
			})
		}
	}
	fwd, err := NewForwarder(Options{
		Table: table, Local: local, AllowNets: allow, ClusterDomain: cfg.ClusterDomain,
		MasterDomains: cfg.MasterDomains(), NodeAddress: NodeAddress(ctx, cfg, logger),
		Cache: c, StaleClientTimeout: cfg.Cache.ClientTimeout.D(),
		RaceTimeout: cfg.RaceTimeout.D(), MaxInFlight: cfg.MaxInFlight,
		Metrics: o.Metrics, LogQueries: cfg.Log.Queries, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	owned = nil
	n := &Node{Local: local, Cache: c, Forwarder: fwd, pcs: o.PacketConns, lns: o.Listeners, logger: logger, obs: obs,
		cluster: cfg.ClusterDomain, clusterServed: ClusterServed(table, cfg.ClusterDomain)}
	if !n.clusterServed {
		n.warnClusterUnserved(table)
	}
	threads := cfg.ListenerThreads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if len(n.pcs) == 0 && len(n.lns) == 0 {
		if n.pcs, n.lns, err = server.ListenAll(ctx, cfg.Listen, threads); err != nil {
			fwd.Close()
			return nil, err
		}
	} else {
		n.pcs = n.siblings(ctx, threads)
	}
	n.Server = &server.Server{
		Handler: fwd, Logger: logger,
		TCPIdleTimeout: cfg.TCPIdleTimeout.D(), MaxTCPConns: cfg.MaxTCPConnections,
		UDPReceiveBuffer: cfg.UDPReceiveBuffer,
		ShutdownGrace:    cfg.ShutdownGrace.D(), OnGraceOver: fwd.CancelRaces,
	}
	if o.Metrics != nil {
		o.Metrics.SetUpstreams(n.UpstreamStates)
		o.Metrics.SetProxy(func() metrics.Proxy {
			s := fwd.Stats()
			return metrics.Proxy{Malformed: s.Malformed + n.Server.Oversized(), Denied: s.Refused, Overload: s.Overload,
				Unrouted: s.Unrouted, InFlight: s.InFlight, Waiting: s.Waiting}
		})
	}
	return n, nil
}

// NodeAddress returns the node's own address, answered for
// thisnode.thisdcos.directory: cfg.NodeAddress when set, otherwise the
// source address the kernel picks for the first of cfg.Masters, that is
// the address of the interface that routes to it (a UDP "connect": no
// packet is sent). With no masters, or no route to the first, the address
// is unknown (the zero Addr, logged): the names then have no record.
func NodeAddress(ctx context.Context, cfg *config.Config, logger *slog.Logger) netip.Addr {
	if cfg.NodeAddress != "" {
		a, err := netip.ParseAddr(cfg.NodeAddress)
		if err != nil { // Validate has rejected this already
			logger.Warn("nodeAddress is not an IP address", "nodeAddress", cfg.NodeAddress, "err", err)
			return netip.Addr{}
		}
		return a.Unmap()
	}
	if len(cfg.Masters) == 0 {
		logger.Info("no nodeAddress and no masters to find it from: thisnode names have no address record", "names", config.ThisNodeNames)
		return netip.Addr{}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", cfg.Masters[0])
	if err != nil {
		logger.Warn("no nodeAddress, and no route to the first master to find it from: thisnode names have no address record",
			"master", cfg.Masters[0], "err", err)
		return netip.Addr{}
	}
	defer conn.Close()
	a := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	logger.Debug("node address: the source address towards the first master", "nodeAddress", a, "master", cfg.Masters[0])
	return a
}

// siblings returns the passed UDP sockets with threads-1 more bound beside
// each one that has SO_REUSEPORT. They only spread the load: when binding
// them fails (a unit without ReusePort=yes, another user's socket), the
// passed socket serves alone, with a warning.
func (n *Node) siblings(ctx context.Context, threads int) []net.PacketConn {
	pcs := slices.Clone(n.pcs)
	for _, pc := range n.pcs {
		more, err := server.Siblings(ctx, pc, threads)
		if err != nil {
			n.logger.Warn("serving a passed UDP socket with fewer listener threads", "addr", pc.LocalAddr(), "threads", 1+len(more), "err", err)
		}
		pcs = append(pcs, more...)
	}
	return pcs
}

// ownAddrs returns the proxy's own specific listen addresses as host
// prefixes. A process on the node that queries one of them sends from that
// same address (the kernel picks the destination as source for a local
// address), so they are always allowed: otherwise the node's own clients,
// its health checks and the self-query would be refused whenever the
// listen address (the DC/OS 198.51.100.0/24 set, say) is outside
// allowNets.
func ownAddrs(listen []string, pcs []net.PacketConn, lns []net.Listener) []netip.Prefix {
	var out []netip.Prefix
	add := func(a netip.Addr) {
		a = a.Unmap()
		if a.IsValid() && !a.IsUnspecified() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for _, l := range listen {
		if ap, err := netip.ParseAddrPort(l); err == nil {
			add(ap.Addr())
		}
	}
	for _, pc := range pcs {
		if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
			add(ua.AddrPort().Addr())
		}
	}
	for _, ln := range lns {
		if ta, ok := ln.Addr().(*net.TCPAddr); ok {
			add(ta.AddrPort().Addr())
		}
	}
	return out
}

// Addrs returns the bound UDP addresses (the TCP ones are the same).
func (n *Node) Addrs() []string {
	var out []string
	for _, pc := range n.pcs {
		// SO_REUSEPORT siblings share their address: listed once.
		if a := pc.LocalAddr().String(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// TCPAddrs returns the bound TCP addresses. With socket activation they
// may differ from the UDP ones (or exist alone).
func (n *Node) TCPAddrs() []string {
	var out []string
	for _, ln := range n.lns {
		out = append(out, ln.Addr().String())
	}
	return out
}

// Run serves until ctx is done, then shuts down gracefully (see
// Server.Serve) and waits for the last upstream legs to close. A Reload
// after Run has returned fails.
func (n *Node) Run(ctx context.Context) error {
	err := n.Server.Serve(ctx, n.pcs, n.lns)
	n.Forwarder.Close()
	return err
}

// Table returns the upstream table in use.
func (n *Node) Table() *upstream.Table { return n.Forwarder.Table() }

// Reload builds the upstream table of cfg (re-reading its upstreams file)
// and, only if that succeeds, swaps it in atomically; on error the running
// table is untouched. Queries in flight finish on the groups they started
// with, and the old table is closed once they have. The new groups start
// with fresh health state. The node's own address (NodeAddress) is found
// again. Listen addresses and the other settings bound at start are not
// changed by a reload. Once Run has returned (or Close
// was called) it fails with ErrClosed.
func (n *Node) Reload(cfg *config.Config) (*upstream.Table, error) {
	t, err := BuildTable(cfg, n.logger, n.obs)
	if err != nil {
		return nil, err
	}
	// Under n.mu so that clusterServed follows the order of the swaps.
	n.mu.Lock()
	if err := n.Forwarder.SwapTable(t); err != nil {
		n.mu.Unlock()
		t.Close()
		return nil, fmt.Errorf("reload: %w", err)
	}
	served := ClusterServed(t, n.cluster)
	wasServed := n.clusterServed
	n.clusterServed = served
	// A UDP "connect" sends nothing and does not block.
	n.Forwarder.SetNodeAddress(NodeAddress(context.Background(), cfg, n.logger))
	n.mu.Unlock()
	if wasServed && !served {
		n.warnClusterUnserved(t)
	}
	return t, nil
}

// warnClusterUnserved logs that cluster names get SERVFAIL: no group
// serves the cluster domain, and the root group must never see them. The
// DC/OS domains t leaves unserved too (they follow the masters as the
// cluster domain does) are named with it.
func (n *Node) warnClusterUnserved(t *upstream.Table) {
	var also []string
	for _, d := range []string{config.DCOSDirectory, config.DCOSGlobal} {
		if d != n.cluster && !ClusterServed(t, d) {
			also = append(also, d)
		}
	}
	n.logger.Warn(fmt.Sprintf("no upstreams for cluster domain %s: set masters or zones", n.cluster),
		"clusterDomain", n.cluster, "alsoUnserved", also,
		"effect", "their names are answered SERVFAIL, never forwarded")
}

// Close releases the sockets and the upstream table of a Node that was
// never Run.
func (n *Node) Close() {
	n.Forwarder.Close()
	for _, pc := range n.pcs {
		pc.Close()
	}
	for _, ln := range n.lns {
		ln.Close()
	}
}

// UpstreamStates reports every upstream's health, for metrics.
func (n *Node) UpstreamStates() []metrics.UpstreamState {
	var out []metrics.UpstreamState
	for _, g := range n.Table().Groups() {
		for _, u := range g.Upstreams() {
			st := metrics.UpstreamState{Group: g.Zone(), Addr: u.String(), Healthy: u.Healthy(), Latency: u.Latency()}
			if u.TLS() {
				s := u.TLSStats()
				st.TLS = &metrics.UpstreamTLS{Handshakes: s.Handshakes, Resumptions: s.Resumptions,
					CertErrors: s.CertErrors, Connections: s.Connections}
			}
			out = append(out, st)
		}
	}
	return out
}
