package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Proto is the transport a query came in on.
type Proto uint8

// Transports.
const (
	UDP Proto = iota
	TCP
	numProtos
)

func (p Proto) String() string {
	if p == TCP {
		return "tcp"
	}
	return "udp"
}

// Query describes one answered query for ObserveQuery.
type Query struct {
	// Zone is the zone the query was routed by: the upstream group's
	// domain ("." for the root), or the authoritative zone's origin. It
	// must come from configuration, never from the query name, so the
	// number of label values stays bounded.
	Zone     string
	Qtype    uint16
	Proto    Proto
	Rcode    int           // rcode of the reply sent; -1 when none was sent
	Duration time.Duration // from receipt to reply
}

// monitoredTypes are the query types counted under their own name, as
// CoreDNS does; every other type is counted as "other" so that a client
// cannot grow the label set.
var monitoredTypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeNS, dns.TypeSOA, dns.TypePTR,
	dns.TypeMX, dns.TypeTXT, dns.TypeSRV, dns.TypeNAPTR, dns.TypeCAA, dns.TypeDS,
	dns.TypeDNSKEY, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeANY, dns.TypeIXFR, dns.TypeAXFR,
}

const numTypes = len(monitoredTypes) + 1 // + "other"

// typeIndex maps a query type to its counter slot plus one (0: other).
// Every monitored type is below 258, so an array beats a map lookup.
var typeIndex = func() (idx [258]uint8) {
	for i, t := range monitoredTypes {
		idx[t] = uint8(i + 1)
	}
	return idx
}()

func typeSlot(t uint16) int {
	if int(t) < len(typeIndex) && typeIndex[t] != 0 {
		return int(typeIndex[t]) - 1
	}
	return numTypes - 1
}

func typeName(slot int) string {
	if slot == numTypes-1 {
		return "other"
	}
	return dns.TypeToString[monitoredTypes[slot]]
}

// numRcodes covers every rcode up to BADCOOKIE (23); the last slot counts
// anything else, and "no reply" (a dropped query).
const numRcodes = 25

func rcodeSlot(rc int) int {
	if rc < 0 || rc >= numRcodes-1 {
		return numRcodes - 1
	}
	return rc
}

func rcodeName(slot int) string {
	if slot == numRcodes-1 {
		return "other"
	}
	if s, ok := dns.RcodeToString[slot]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(slot)
}

// zoneCounters counts requests of one zone by type and transport.
type zoneCounters [numTypes][numProtos]atomic.Uint64

type queryCounters struct {
	zones  labelled1[zoneCounters]
	rcodes [numRcodes]atomic.Uint64
}

func (q *queryCounters) init() {
	q.zones.make = func(string) *zoneCounters { return new(zoneCounters) }
	q.zones.limit = maxLabelValues
}

// ObserveQuery records one query: spartan_dns_requests_total,
// spartan_dns_responses_total and spartan_dns_request_duration_seconds.
// It takes no lock and allocates nothing once the zone has been seen.
func (m *Metrics) ObserveQuery(q Query) {
	if m == nil {
		return
	}
	p := q.Proto
	if p >= numProtos {
		p = UDP
	}
	m.queries.zones.get(q.Zone)[typeSlot(q.Qtype)][p].Add(1)
	m.queries.rcodes[rcodeSlot(q.Rcode)].Add(1)
	m.duration[p].Observe(q.Duration.Seconds())
}
