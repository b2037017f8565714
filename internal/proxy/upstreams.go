package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/resolvconf"
	"github.com/spartan-dns/spartan/internal/upstream"
)

// RootUpstreams returns the upstreams of the root zone: cfg.Upstreams, or
// the nameservers of cfg.UpstreamsFile (port 53) when that is empty, minus
// any address that would send queries back to this proxy:
//
//   - one of our own listen addresses (or, for a wildcard listen address,
//     any address of this host on the same port), wherever it was given;
//   - an address read from UpstreamsFile on loopback (127.0.0.0/8, ::1)
//     when none of our listen addresses is on loopback: in a resolv.conf
//     that is the host's stub resolver (systemd-resolved's 127.0.0.53, a
//     local dnsmasq), which forwards to the resolv.conf that lists us: a
//     loop. When we listen on loopback ourselves (a demo, tests), loopback
//     nameservers on other addresses are kept.
//
// A loopback address written in cfg.Upstreams is kept: the operator named
// it (a local unbound on 127.0.0.2:53, say), so it is logged as a warning
// instead, in case it is such a stub after all.
//
// Each dropped address is logged as a warning. An empty result is an
// error, a *config.FieldError: a proxy with no root upstream cannot do
// its job.
func RootUpstreams(cfg *config.Config, logger *slog.Logger) ([]string, error) {
	addrs, source, field := cfg.Upstreams, "upstreams", "upstreams"
	fromFile := len(addrs) == 0
	if fromFile {
		field = "upstreamsFile"
		data, err := os.ReadFile(cfg.UpstreamsFile)
		if err != nil {
			return nil, &config.FieldError{Field: field, Reason: err.Error()}
		}
		f := resolvconf.Parse(data)
		for _, w := range f.Warnings() {
			logger.Warn("upstreams file", "file", cfg.UpstreamsFile, "warning", w)
		}
		for _, a := range f.Nameservers() {
			addrs = append(addrs, netip.AddrPortFrom(a, config.DNSPort).String())
		}
		source = cfg.UpstreamsFile
	}
	listen, err := parseAddrPorts(cfg.Listen)
	if err != nil {
		return nil, err
	}
	onLoopback := anyLoopback(listen)
	var kept []string
	for _, s := range addrs {
		u, err := config.ParseUpstream(s, config.DNSPort)
		if err != nil {
			return nil, &config.FieldError{Field: field, Reason: fmt.Sprintf("upstream %q: %v", s, err)}
		}
		ap := u.Addr
		stub := ap.Addr().Unmap().IsLoopback() && !onLoopback
		switch {
		case !u.TLS && isSelf(ap, listen):
			logger.Warn("upstream dropped: it is this proxy's own address", "upstream", s, "source", source)
		case stub && fromFile:
			logger.Warn("upstream dropped: a loopback resolver is the host's stub and would forward back to this proxy",
				"upstream", s, "source", source)
		case stub:
			warnLoopbackKept(logger, s, "source", source)
			kept = append(kept, u.String())
		default:
			kept = append(kept, u.String())
		}
	}
	if len(kept) == 0 {
		if len(addrs) == 0 {
			return nil, &config.FieldError{Field: field, Reason: fmt.Sprintf("%s: no nameserver for the root zone", source)}
		}
		why := "this proxy's own address"
		if fromFile {
			why = "this proxy's own address or a loopback stub"
		}
		return nil, &config.FieldError{Field: field, Reason: fmt.Sprintf("%s: no usable upstream for the root zone: every one of %v was dropped (%s)", source, addrs, why)}
	}
	return kept, nil
}

// anyLoopback reports whether one of the addresses is on loopback: a proxy
// listening there (a demo, tests) cannot be the host's stub's upstream.
func anyLoopback(addrs []netip.AddrPort) bool {
	return slices.ContainsFunc(addrs, func(a netip.AddrPort) bool { return a.Addr().IsLoopback() })
}

// warnLoopbackKept logs that an explicitly configured loopback upstream is
// kept although a proxy that does not listen on loopback itself would drop
// one read from a resolv.conf.
func warnLoopbackKept(logger *slog.Logger, upstream string, attrs ...any) {
	logger.Warn("upstream on loopback kept because it was configured explicitly; if it is a stub resolver forwarding to this proxy, queries will loop",
		append([]any{"upstream", upstream}, attrs...)...)
}

func parseAddrPorts(addrs []string) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", a, err)
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return out, nil
}

// isSelf reports whether ap is one of the listen addresses, counting a
// wildcard listen address as every address of this host.
func isSelf(ap netip.AddrPort, listen []netip.AddrPort) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for _, l := range listen {
		if l == ap {
			return true
		}
		if l.Addr().IsUnspecified() && l.Port() == ap.Port() && (ap.Addr().IsLoopback() || hostAddr(ap.Addr())) {
			return true
		}
	}
	return false
}

func hostAddr(a netip.Addr) bool {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range ifaddrs {
		if n, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a {
				return true
			}
		}
	}
	return false
}

// BuildTable builds the upstream table from cfg: the root group from
// RootUpstreams, one group per cfg.Zones entry, and a group from
// cfg.Masters for each of cfg.MasterDomains (the cluster domain,
// thisdcos.directory and thisdcos.global) that cfg.Zones does not name. In
// master mode the groups of the generated zones (master.domain and the
// DC/OS domains) also get this node's own authoritative server when none
// of their addresses reaches it (see ownMaster); a group is created for it
// when the configuration has none.
// Our own proxy listen addresses are dropped from every group (a loop);
// other addresses written in zones or masters are kept, a loopback one
// with a warning when the proxy does not itself listen on loopback (see
// RootUpstreams). A group left empty is a *config.FieldError. obs may be
// nil. Without masters or a zones entry for the cluster domain (or one
// above it) the table has no group serving it (ClusterServed is false);
// the Forwarder then answers cluster names SERVFAIL instead of sending
// them to the root group, and the same holds for each DC/OS domain.
func BuildTable(cfg *config.Config, logger *slog.Logger, obs upstream.Observer) (*upstream.Table, error) {
	root, err := RootUpstreams(cfg, logger)
	if err != nil {
		return nil, err
	}
	listen, err := parseAddrPorts(cfg.Listen)
	if err != nil {
		return nil, err
	}
	onLoopback := anyLoopback(listen)
	var masterListen []netip.AddrPort
	if cfg.Master != nil {
		masterListen, _ = parseAddrPorts(cfg.Master.Listen) // validated
	}
	zoneAddrs := map[string][]string{}
	for z, addrs := range cfg.Zones {
		zoneAddrs[z] = addrs
	}
	for _, d := range cfg.MasterDomains() {
		if _, named := zoneAddrs[d]; !named && len(cfg.Masters) > 0 {
			zoneAddrs[d] = cfg.Masters
		}
	}
	if m := cfg.Master; m != nil {
		for _, d := range masterModeZones(m.Domain) {
			if self, add := ownMaster(m.Listen, zoneAddrs[d]); add {
				zoneAddrs[d] = append(slices.Clone(zoneAddrs[d]), self)
				logger.Debug("master mode: this node's authoritative server added to its zone's group", "zone", d, "upstream", self)
			}
		}
	}
	roots, err := cfg.TLSRoots()
	if err != nil {
		return nil, err
	}
	// A dead TLS upstream must fail its leg while the race can still be
	// answered by another: connect and handshake get a quarter of the
	// race at most.
	tlsOpts := upstream.WithTLS(upstream.TLSOptions{Roots: roots,
		ConnectTimeout: min(upstream.DefaultTLSConnectTimeout, cfg.RaceTimeout.D()/4)})
	g, err := upstream.NewGroup(".", root, obs, upstream.WithLogger(logger), tlsOpts)
	if err != nil {
		return nil, err
	}
	groups := []*upstream.Group{g}
	zonesSorted := make([]string, 0, len(zoneAddrs))
	for z := range zoneAddrs {
		zonesSorted = append(zonesSorted, z)
	}
	slices.Sort(zonesSorted)
	for _, z := range zonesSorted {
		var kept []string
		for _, s := range zoneAddrs[z] {
			u, err := config.ParseUpstream(s, config.DNSPort)
			if err != nil {
				return nil, &config.FieldError{Field: zoneField(cfg, z), Reason: fmt.Sprintf("upstream %q: %v", s, err)}
			}
			ap := u.Addr
			if !u.TLS && isSelf(ap, listen) {
				logger.Warn("upstream dropped: it is this proxy's own address", "upstream", s, "zone", z)
				continue
			}
			// This node's own authoritative server is on loopback by
			// design: no warning for it.
			if ap.Addr().Unmap().IsLoopback() && !onLoopback && (u.TLS || !isSelf(ap, masterListen)) {
				warnLoopbackKept(logger, s, "zone", z)
			}
			kept = append(kept, s)
		}
		if len(kept) == 0 {
			return nil, &config.FieldError{Field: zoneField(cfg, z), Reason: fmt.Sprintf("zone %s: no usable upstream (every one is this proxy's own address)", z)}
		}
		g, err := upstream.NewGroup(z, kept, obs, upstream.WithLogger(logger), tlsOpts)
		if err != nil {
			return nil, err
		}
		groups = append(groups, g)
	}
	return upstream.NewTable(groups...)
}

// zoneField names the configuration field a zone's group comes from.
func zoneField(cfg *config.Config, zone string) string {
	if _, ok := cfg.Zones[zone]; ok {
		return fmt.Sprintf("zones[%q]", zone)
	}
	if slices.Contains(cfg.MasterDomains(), zone) && len(cfg.Masters) > 0 {
		return "masters"
	}
	return "master.listen"
}

// masterModeZones are the zones a master's authoritative server answers:
// its generated domain and the DC/OS domains.
func masterModeZones(domain string) []string {
	out := []string{domain}
	for _, d := range []string{config.DCOSDirectory, config.DCOSGlobal} {
		if d != domain {
			out = append(out, d)
		}
	}
	return out
}

// ownMaster returns the address at which the proxy reaches its own node's
// authoritative server (master.listen), and whether group lacks it. A
// group address reaches it when it is one of the master listen addresses,
// or, for a wildcard master listen address, any address of this host
// (loopback included) on that port: the usual configuration lists every
// master, this one included, at its cluster address. Otherwise the first
// master listen address is added, a wildcard one as the loopback address
// of its family. A loopback address is right here: the root group's
// "loopback stub" rule does not apply to zone groups, and the address is
// ours on another port than the proxy's, so the self-forwarding filter
// keeps it.
func ownMaster(masterListen, group []string) (string, bool) {
	listen, err := parseAddrPorts(masterListen)
	if err != nil || len(listen) == 0 {
		return "", false // Validate has rejected this already
	}
	for _, s := range group {
		if ap, err := netip.ParseAddrPort(s); err == nil && isSelf(ap, listen) {
			return "", false
		}
	}
	first := listen[0]
	if a := first.Addr(); a.IsUnspecified() {
		lo := netip.IPv6Loopback()
		if a.Is4() {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		first = netip.AddrPortFrom(lo, first.Port())
	}
	return first.String(), true
}

// ParseAllowNets parses cfg.AllowNets.
func ParseAllowNets(nets []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, n := range nets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowNets: %w", err))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
