package zones

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// LocalOrigin is the node-local zone every spartan answers itself.
const LocalOrigin = "spartan."

// Names in the local zone.
const (
	// ReadyName answers A 127.0.0.1 while the proxy serves: the health
	// check of DC/OS and of the watchdog.
	ReadyName = "ready." + LocalOrigin
	// NSName is the local zone's name server, at the proxy's first
	// listen address.
	NSName = "ns." + LocalOrigin
)

// localTTL matches DC/OS: short, so a health check never sees an old answer
// from a cache between it and the proxy.
const localTTL = 5

// NewLocal builds the "spartan." zone, with ns.spartan at ns: ready.spartan
// is A 127.0.0.1 (no AAAA: NODATA) and every other name is NXDOMAIN.
func NewLocal(ns netip.Addr) *Zone {
	b := NewBuilder(LocalOrigin, SOA{
		Mname: NSName, Rname: "hostmaster." + LocalOrigin,
		Refresh: 60, Retry: 60, Expire: 86400, Minttl: localTTL, TTL: localTTL,
	}, []string{NSName})
	b.Add(addrRR(ReadyName, net.IPv4(127, 0, 0, 1), localTTL))
	b.Add(addrRR(NSName, net.IP(ns.Unmap().AsSlice()), localTTL))
	return b.Build(1)
}

// addrRR returns an A or AAAA record for ip.
func addrRR(name string, ip net.IP, ttl uint32) dns.RR {
	hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: ttl}
	if v4 := ip.To4(); v4 != nil {
		hdr.Rrtype = dns.TypeA
		return &dns.A{Hdr: hdr, A: v4}
	}
	hdr.Rrtype = dns.TypeAAAA
	return &dns.AAAA{Hdr: hdr, AAAA: ip}
}
