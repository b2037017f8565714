package zones

import (
	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/dnswire"
)

// advertisedUDPSize is the EDNS buffer size we advertise, the same as
// every other spartan reply.
const advertisedUDPSize = dnswire.MaxUDPSize

// Authority answers queries for a set of zones authoritatively, each held in
// a Store so it can be swapped while serving. It is not a resolver: a query
// outside its zones is REFUSED.
type Authority struct {
	stores  []*Store
	aliases []Alias
}

// NewAuthority returns an Authority for the zones in stores.
func NewAuthority(stores ...*Store) *Authority {
	return &Authority{stores: stores}
}

// Version changes whenever one of the authority's zones is swapped:
// replies built from the zones may be reused while it stays the same. Read
// it before building the reply, so a swap in between can only make a
// reply look older than it is.
func (a *Authority) Version() uint64 {
	var v uint64
	for _, s := range a.stores {
		v += s.Version()
	}
	return v
}

// zoneFor returns the loaded zone with the longest origin that contains
// name, and whether a store claims the name at all (it may still be empty).
func (a *Authority) zoneFor(name string) *Zone {
	var best *Zone
	for _, s := range a.stores {
		z := s.Load()
		if z == nil || !dns.IsSubDomain(z.origin, name) {
			continue
		}
		if best == nil || dns.CountLabel(z.origin) > dns.CountLabel(best.origin) {
			best = z
		}
	}
	return best
}

// Reply builds the reply to req. For UDP the reply is truncated, with TC
// set, to what the client can take: 512 bytes, or its EDNS buffer size.
func (a *Authority) Reply(req *dns.Msg, tcp bool) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = false
	if req.Opcode != dns.OpcodeQuery {
		resp.Rcode = dns.RcodeNotImplemented
		return resp
	}
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return resp
	}
	opt := req.IsEdns0()
	if opt != nil && opt.Version() != 0 {
		// RFC 6891 section 6.1.3: only version 0 exists.
		resp.SetEdns0(advertisedUDPSize, false)
		resp.Rcode = dns.RcodeBadVers
		return resp
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	res, ok := a.lookup(q.Name, q.Qtype)
	if !ok {
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	resp.Rcode = res.Rcode
	resp.Authoritative = res.Authoritative
	resp.Answer, resp.Ns, resp.Extra = res.Answer, res.Ns, res.Extra
	if opt != nil {
		// RFC 3225 section 3: the DO bit is copied into the response.
		resp.SetEdns0(advertisedUDPSize, opt.Do())
	}
	// Truncate drops whole records from the end and sets TC only when
	// answers had to go; it keeps the OPT record.
	resp.Truncate(ReplySize(req, tcp))
	return resp
}

// ReplySize is the largest reply Reply writes for req: 512 bytes over UDP,
// or the client's EDNS buffer size if larger; 65535 over TCP.
func ReplySize(req *dns.Msg, tcp bool) int {
	if tcp {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}
