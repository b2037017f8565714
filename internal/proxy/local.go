package proxy

import (
	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/zones"
)

// thisNodeTTL is the TTL of the node's own address: the local zone's,
// short like DC/OS's local answers.
const thisNodeTTL = 5

// local answers from lookup, or from the local zone when lookup is nil,
// with dns.Msg: rare (health checks, the node's own name), so clarity
// beats speed.
func (f *Forwarder) local(req *server.Request, qs *query, dst []byte, lookup func(qname string, qtype uint16) zones.Result) []byte {
	qname, _, err := dns.UnpackDomainName(qs.q.Name(), 0)
	if err != nil {
		return dnswire.AppendError(dst, &qs.q, dns.RcodeFormatError)
	}
	if lookup == nil {
		lookup = f.o.Local.Lookup
	}
	res := lookup(qname, qs.q.Qtype)
	m := new(dns.Msg)
	m.Id = qs.q.ID
	m.Response = true
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = qs.q.RD
	m.RecursionAvailable = true
	m.CheckingDisabled = qs.q.CD
	m.Authoritative = res.Authoritative
	m.Rcode = res.Rcode
	m.Question = []dns.Question{{Name: qname, Qtype: qs.q.Qtype, Qclass: qs.q.Qclass}}
	m.Answer, m.Ns, m.Extra = res.Answer, res.Ns, res.Extra
	if qs.q.EDNS {
		m.SetEdns0(dnswire.MaxUDPSize, qs.q.DO)
	}
	if !req.TCP {
		m.Truncate(qs.q.UDPLimit())
	}
	m.Compress = true
	out, err := m.PackBuffer(dst[:cap(dst)])
	if err != nil {
		return dnswire.AppendError(dst, &qs.q, dns.RcodeServerFailure)
	}
	return out
}

// thisNodeResult answers the node's own name (config.ThisNodeNames): an A
// or AAAA record of NodeAddress when the type matches its family, NODATA
// for every other type and for every type while the address is unknown.
// The record's owner is the name as asked, so the thisdcos.global alias
// answers with the question's name.
func (f *Forwarder) thisNodeResult(qname string, qtype uint16) zones.Result {
	res := zones.Result{Rcode: dns.RcodeSuccess, Authoritative: true}
	a := *f.nodeAddr.Load()
	hdr := dns.RR_Header{Name: qname, Rrtype: qtype, Class: dns.ClassINET, Ttl: thisNodeTTL}
	switch {
	case qtype == dns.TypeA && a.Is4():
		res.Answer = []dns.RR{&dns.A{Hdr: hdr, A: a.AsSlice()}}
	case qtype == dns.TypeAAAA && a.Is6():
		res.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()}}
	}
	return res
}

// normalize handles a well-formed query the wire parser does not take
// (several additional records such as TSIG, an OPT before another
// additional record, EDNS version above 0, other sections filled in; a
// malformed OPT record never gets here, see dnswire.ErrBadOPT): answered
// here when it must be refused, otherwise rewritten as a plain query and
// parsed again. It returns ok true when qs.q is ready for the normal path.
func (f *Forwarder) normalize(req *server.Request, qs *query, dst []byte) ([]byte, bool) {
	m := new(dns.Msg)
	if err := m.Unpack(req.Msg); err != nil {
		f.malformed.Add(1)
		return dnswire.AppendFormErr(dst, req.Msg, true), false
	}
	if m.Response {
		return nil, false // never answer a response: that is how loops start
	}
	reply := new(dns.Msg)
	switch {
	case m.Opcode != dns.OpcodeQuery:
		reply.SetRcode(m, dns.RcodeNotImplemented)
	case len(m.Question) != 1:
		f.malformed.Add(1)
		reply.SetRcode(m, dns.RcodeFormatError)
	case m.IsEdns0() != nil && m.IsEdns0().Version() != 0:
		reply.SetRcode(m, dns.RcodeBadVers)
		reply.SetEdns0(dnswire.MaxUDPSize, m.IsEdns0().Do())
	default:
		n := new(dns.Msg)
		n.Id, n.RecursionDesired, n.CheckingDisabled, n.AuthenticatedData = m.Id, m.RecursionDesired, m.CheckingDisabled, m.AuthenticatedData
		n.Question = m.Question
		if opt := m.IsEdns0(); opt != nil {
			n.SetEdns0(opt.UDPSize(), opt.Do())
		}
		wire, err := n.Pack()
		if err == nil && qs.q.Parse(wire) == nil {
			return nil, true
		}
		f.malformed.Add(1)
		reply.SetRcode(m, dns.RcodeFormatError)
	}
	if !f.allowed(req.Client.Addr()) {
		f.refused.Add(1)
		reply.Rcode = dns.RcodeRefused
	}
	out, err := reply.PackBuffer(dst[:cap(dst)])
	if err != nil {
		return nil, false
	}
	return out, false
}
