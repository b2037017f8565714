package watchdog

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spartan-dns/spartan/internal/resolvconf"
)

// ErrNoUpstreams means the proxy is down and no upstream resolver is known:
// neither configured nor in the original file. The watchdog then leaves the
// file alone rather than write one without nameservers, which glibc reads
// as "ask 127.0.0.1".
var ErrNoUpstreams = errors.New("no upstream resolvers known (configure upstreams, or the original resolv.conf names none)")

// Content is what the managed file is made of.
type Content struct {
	// Path is the managed file, named in the header.
	Path string
	// Proxy and Upstreams are the IPs the file may name.
	Proxy, Upstreams []netip.Addr
	// Original is the saved original file: the source of the search,
	// domain, options and sortlist lines, and of the upstreams when
	// Upstreams is empty.
	Original *resolvconf.File
	// Options are added unless Original sets an option of the same name.
	Options []resolvconf.Option
	// Resolved is systemd-resolved's list of the servers it forwards to
	// (ResolvedResolvConf), nil when there is none. When no Upstreams are
	// configured and Original names only resolved's stub (a symlink to
	// stub-resolv.conf, nameserver 127.0.0.53), its nameservers are the
	// upstreams: the stub answers only while resolved runs. The stub
	// remains the fallback when Resolved names no usable server.
	Resolved *resolvconf.File
}

// ResolvedResolvConf is where systemd-resolved lists the real upstream
// servers it forwards to, in resolv.conf format.
const ResolvedResolvConf = "/run/systemd/resolve/resolv.conf"

// resolvedStubs are the addresses of systemd-resolved's local stub
// listeners: 127.0.0.53 (stub-resolv.conf) and 127.0.0.54 (proxy-only).
var resolvedStubs = map[netip.Addr]bool{
	netip.AddrFrom4([4]byte{127, 0, 0, 53}): true,
	netip.AddrFrom4([4]byte{127, 0, 0, 54}): true,
}

// onlyResolvedStubs reports whether as is non-empty and names nothing but
// systemd-resolved's stub listeners.
func onlyResolvedStubs(as []netip.Addr) bool {
	for _, a := range as {
		if !resolvedStubs[a] {
			return false
		}
	}
	return len(as) > 0
}

// Render returns the file for a state. Up: the proxy's IPs only, never an
// upstream after them, because an upstream's NXDOMAIN for a cluster name is
// final for glibc and would mask the cluster domain. Down: up to three
// upstreams. Either way the original's search, domain, options, sortlist
// and unknown directives follow verbatim, then the default options it does
// not set. The output depends only on the inputs (no time stamp, no
// shuffling), so an unchanged situation rewrites nothing.
func (c *Content) Render(up bool) ([]byte, error) {
	f := &resolvconf.File{}
	var ns []netip.Addr
	if up {
		f.AddComment(resolvconf.Marker + " Proxy up: queries go to the node's spartan proxy.")
		ns = c.Proxy
	} else {
		f.AddComment(resolvconf.Marker + " Proxy down: queries go straight to the upstream resolvers.")
		ns = c.upstreams()
		if len(ns) == 0 {
			return nil, ErrNoUpstreams
		}
	}
	f.AddComment(fmt.Sprintf("# The original is saved as %s%s; \"spartan-watchdog -resolv-conf %s -restore\" puts it back.",
		c.Path, resolvconf.OrigSuffix, c.Path))
	for _, a := range ns[:min(len(ns), resolvconf.MaxNameservers)] {
		f.AddNameserver(a)
	}
	var orig []resolvconf.Line
	if c.Original != nil {
		orig = c.Original.Lines
	}
	for _, l := range orig {
		switch l.Kind {
		case resolvconf.Search, resolvconf.Domain, resolvconf.Options, resolvconf.Sortlist:
			f.AddLine(l)
		case resolvconf.Unknown:
			// An indented nameserver line is ignored by glibc but used by
			// Go's and musl's resolvers: it must not follow the proxy.
			if !strings.HasPrefix(strings.TrimLeft(l.Text, " \t"), "nameserver") {
				f.AddLine(l)
			}
		}
	}
	var missing []resolvconf.Option
	for _, o := range c.Options {
		if c.Original == nil {
			missing = append(missing, o)
		} else if _, set := c.Original.Option(o.Name); !set {
			missing = append(missing, o)
		}
	}
	f.AddOptions(missing...)
	return f.Bytes(), nil
}

// upstreams returns the configured upstreams, or else the original's
// nameservers (systemd-resolved's upstreams instead of its stub), never
// the proxy's own addresses, without duplicates.
func (c *Content) upstreams() []netip.Addr {
	proxy := map[netip.Addr]bool{}
	for _, a := range c.Proxy {
		proxy[a] = true
	}
	src := c.Upstreams
	if len(src) == 0 && c.Original != nil {
		src = c.Original.Nameservers()
		if onlyResolvedStubs(src) && c.Resolved != nil {
			var real []netip.Addr
			for _, a := range c.Resolved.Nameservers() {
				if !resolvedStubs[a] && !proxy[a] {
					real = append(real, a)
				}
			}
			if len(real) > 0 {
				src = real
			}
		}
	}
	var out []netip.Addr
	for _, a := range src {
		if !proxy[a] {
			proxy[a] = true // also drops duplicates
			out = append(out, a)
		}
	}
	return out
}
