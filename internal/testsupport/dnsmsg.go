package testsupport

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// QueryOption adjusts a query built by NewQuery before it is packed.
type QueryOption func(*dns.Msg)

// WithEDNS adds an OPT record advertising size, with the DO bit when do.
func WithEDNS(size uint16, do bool) QueryOption {
	return func(m *dns.Msg) { m.SetEdns0(size, do) }
}

// WithCD sets the CD bit.
func WithCD() QueryOption { return func(m *dns.Msg) { m.CheckingDisabled = true } }

// WithID sets the message ID (NewQuery's default is 0x1234).
func WithID(id uint16) QueryOption { return func(m *dns.Msg) { m.Id = id } }

// WithPaddedSize pads the query with an EDNS(0) padding option (RFC 7830)
// so that it packs to exactly size bytes, adding an OPT record (buffer
// 1232) when it has none. It belongs after every other option and panics
// when size is below the query's length with an empty padding option.
func WithPaddedSize(size int) QueryOption {
	return func(m *dns.Msg) {
		opt := m.IsEdns0()
		if opt == nil {
			m.SetEdns0(1232, false)
			opt = m.IsEdns0()
		}
		pad := &dns.EDNS0_PADDING{}
		opt.Option = append(opt.Option, pad)
		n := m.Len()
		if size < n {
			panic(fmt.Sprintf("testsupport: query cannot be padded to %d bytes, it needs %d", size, n))
		}
		pad.Padding = make([]byte, size-n)
	}
}

// AppendTCPFrame appends msg to dst with the two-byte length prefix of
// DNS over TCP (RFC 1035 4.2.2).
func AppendTCPFrame(dst, msg []byte) []byte {
	dst = append(dst, byte(len(msg)>>8), byte(len(msg)))
	return append(dst, msg...)
}

// NewQuery returns a recursive query for name and qtype with ID 0x1234.
func NewQuery(name string, qtype uint16, opts ...QueryOption) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	for _, o := range opts {
		o(m)
	}
	return m
}

// PackQuery returns NewQuery's query packed.
func PackQuery(t testing.TB, name string, qtype uint16, opts ...QueryOption) []byte {
	t.Helper()
	b, err := NewQuery(name, qtype, opts...).Pack()
	require.NoError(t, err)
	return b
}

// ReplySpec describes the upstream reply PackReply builds.
type ReplySpec struct {
	Rcode             int
	Answer, Ns, Extra []dns.RR
	TC, AD            bool
	// OptSize, when not 0, adds the upstream's own OPT record with this
	// buffer size (and DO set).
	OptSize uint16
}

// PackReply packs the reply to query described by s as an upstream sends
// it: the leg's ID 0xBEEF (never the client's), RA set, compressed.
func PackReply(t testing.TB, query *dns.Msg, s ReplySpec) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetRcode(query, s.Rcode)
	m.Id = 0xBEEF
	m.RecursionAvailable = true
	m.Truncated = s.TC
	m.AuthenticatedData = s.AD
	m.Answer = s.Answer
	m.Ns = s.Ns
	m.Extra = s.Extra
	if s.OptSize > 0 {
		m.SetEdns0(s.OptSize, true)
	}
	m.Compress = true
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

// RR parses a record in zone-file format.
func RR(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	require.NoError(t, err)
	return r
}

// SOA returns zone's SOA record with the given TTL and MINIMUM.
func SOA(t testing.TB, zone string, ttl, minimum uint32) dns.RR {
	t.Helper()
	return RR(t, fmt.Sprintf("%s %d IN SOA ns.%s hostmaster.%s 1 60 60 86400 %d", zone, ttl, zone, zone, minimum))
}

// ARecords returns n A records for name with distinct addresses in
// 10.0.0.0/16.
func ARecords(t testing.TB, name string, ttl uint32, n int) []dns.RR {
	t.Helper()
	out := make([]dns.RR, n)
	for i := range out {
		out[i] = RR(t, fmt.Sprintf("%s %d IN A 10.0.%d.%d", name, ttl, i/250, i%250+1))
	}
	return out
}

// TTLs returns the TTL of every record of m but OPT, section by section.
func TTLs(m *dns.Msg) []uint32 {
	var out []uint32
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, r := range sec {
			if r.Header().Rrtype != dns.TypeOPT {
				out = append(out, r.Header().Ttl)
			}
		}
	}
	return out
}
