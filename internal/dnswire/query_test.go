package dnswire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

func parseQuery(t testing.TB, name string, qtype uint16, opts ...testsupport.QueryOption) *Query {
	t.Helper()
	q := new(Query)
	require.NoError(t, q.Parse(testsupport.PackQuery(t, name, qtype, opts...)))
	return q
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name    string
		msg     *dns.Msg
		wantKey string // lower-cased presentation name
		edns    bool
		size    uint16
		do, cd  bool
	}{
		{name: "plain", msg: testsupport.NewQuery("Example.COM.", dns.TypeA), wantKey: "example.com."},
		{name: "root", msg: testsupport.NewQuery(".", dns.TypeNS), wantKey: "."},
		{name: "edns", msg: testsupport.NewQuery("a.b.", dns.TypeAAAA, testsupport.WithEDNS(4096, false)), wantKey: "a.b.", edns: true, size: 4096},
		{name: "edns do", msg: testsupport.NewQuery("a.b.", dns.TypeAAAA, testsupport.WithEDNS(1232, true)), wantKey: "a.b.", edns: true, size: 1232, do: true},
		{name: "cd", msg: testsupport.NewQuery("a.b.", dns.TypeA, testsupport.WithCD()), wantKey: "a.b.", cd: true},
		{name: "escaped bytes", msg: testsupport.NewQuery(`a\.b\000C.d.`, dns.TypeTXT), wantKey: `a\.b\000c.d.`},
		{name: "edns options", msg: func() *dns.Msg {
			m := testsupport.NewQuery("x.y.", dns.TypeA, testsupport.WithEDNS(1400, true))
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
				&dns.EDNS0_PADDING{Padding: make([]byte, 7)})
			return m
		}(), wantKey: "x.y.", edns: true, size: 1400, do: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.msg.Pack()
			require.NoError(t, err)
			var q Query
			require.NoError(t, q.Parse(b))
			require.Equal(t, tt.msg.Id, q.ID)
			require.Equal(t, tt.msg.Question[0].Qtype, q.Qtype)
			require.Equal(t, uint16(dns.ClassINET), q.Qclass)
			require.Equal(t, tt.edns, q.EDNS)
			require.Equal(t, tt.size, q.UDPSize)
			require.Equal(t, tt.do, q.DO)
			require.Equal(t, tt.cd, q.CD)
			require.True(t, q.RD)
			// The name keeps the client's casing; the key is lower-cased.
			name, _, err := dns.UnpackDomainName(q.Name(), 0)
			require.NoError(t, err)
			require.Equal(t, tt.msg.Question[0].Name, name)
			key, _, err := dns.UnpackDomainName(q.Key(), 0)
			require.NoError(t, err)
			require.Equal(t, tt.wantKey, key)
			require.Equal(t, len(q.Name())+5, len(q.Key()))
		})
	}
}

func TestParseQueryRejects(t *testing.T) {
	valid := testsupport.PackQuery(t, "example.com.", dns.TypeA)
	withOPT := testsupport.PackQuery(t, "example.com.", dns.TypeA, testsupport.WithEDNS(1232, false))
	patch := func(b []byte, f func([]byte) []byte) []byte {
		return f(bytes.Clone(b))
	}
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short header", valid[:11], ErrMalformed},
		{"header only", valid[:12], ErrMalformed},
		{"name cut", valid[:15], ErrMalformed},
		{"no type", valid[:len(valid)-4], ErrMalformed},
		{"class cut", valid[:len(valid)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(valid), 0), ErrMalformed},
		{"response", patch(valid, func(b []byte) []byte { b[2] |= 0x80; return b }), ErrUnsupported},
		{"two questions", patch(valid, func(b []byte) []byte { b[5] = 2; return b }), ErrUnsupported},
		{"zero questions", patch(valid, func(b []byte) []byte { b[5] = 0; return b }), ErrUnsupported},
		{"answer count without the record", patch(valid, func(b []byte) []byte { b[7] = 1; return b }), ErrMalformed},
		{"authority count without the record", patch(valid, func(b []byte) []byte { b[9] = 1; return b }), ErrMalformed},
		{"two additional, one there", patch(withOPT, func(b []byte) []byte { b[11] = 2; return b }), ErrMalformed},
		{"additional missing", patch(valid, func(b []byte) []byte { b[11] = 1; return b }), ErrMalformed},
		{"compression pointer", append(append([]byte{}, valid[:12]...), 0xC0, 0x0C, 0, 1, 0, 1), ErrMalformed},
		{"extended label", append(append([]byte{}, valid[:12]...), 0x41, 'a', 0, 0, 1, 0, 1), ErrMalformed},
		{"label 64", append(append(append([]byte{}, valid[:12]...), 64), append(bytes.Repeat([]byte{'a'}, 64), 0, 0, 1, 0, 1)...), ErrMalformed},
		{"name 256", func() []byte {
			b := append([]byte{}, valid[:12]...)
			for range 4 {
				b = append(b, 63)
				b = append(b, bytes.Repeat([]byte{'a'}, 63)...)
			}
			return append(b, 0, 0, 1, 0, 1) // 4*64+1 = 257 bytes
		}(), ErrMalformed},
		{"OPT version 1", patch(withOPT, func(b []byte) []byte { b[len(b)-5] = 1; return b }), ErrUnsupported},
		{"additional not OPT", patch(withOPT, func(b []byte) []byte { b[len(b)-9] = 16; return b }), ErrUnsupported},
		{"OPT rdata overrun", patch(withOPT, func(b []byte) []byte { b[len(b)-1] = 4; return b }), ErrMalformed},
		{"OPT option overrun", append(patch(withOPT, func(b []byte) []byte { b[len(b)-1] = 4; return b }), 0, 10, 0, 9), ErrBadOPT},
		{"OPT option short", append(patch(withOPT, func(b []byte) []byte { b[len(b)-1] = 3; return b }), 0, 10, 0), ErrBadOPT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q Query
			require.ErrorIs(t, q.Parse(tt.msg), tt.want)
		})
	}
	t.Run("ErrBadOPT is malformed", func(t *testing.T) { require.ErrorIs(t, ErrBadOPT, ErrMalformed) })
	t.Run("name of 255 bytes accepted", func(t *testing.T) {
		name := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61) + "."
		var q Query
		require.NoError(t, q.Parse(testsupport.PackQuery(t, name, dns.TypeA)))
		require.Len(t, q.Name(), 255)
	})
}

// TestParseQueryRecords: a query with records the fast path does not take
// is left to the general path (ErrUnsupported), unless its OPT record is
// at fault, which RFC 6891 makes a format error (ErrBadOPT): a second OPT,
// an OPT in the answer or authority section, an OPT not owned by the
// root, or options that do not fit. After ErrBadOPT the question is
// readable and EDNS set, so that the FORMERR reply carries both.
func TestParseQueryRecords(t *testing.T) {
	base := testsupport.PackQuery(t, "Example.com.", dns.TypeA, testsupport.WithID(0x4321))
	// opt is an OPT record with owner and data (options).
	opt := func(owner []byte, data []byte) []byte {
		b := append(bytes.Clone(owner), 0, 41, 0x04, 0xd0, 0, 0, 0, 0, byte(len(data)>>8), byte(len(data)))
		return append(b, data...)
	}
	root := []byte{0}
	plainOPT := opt(root, nil)
	// aRecord is an A record owned by the question's name (a pointer).
	aRecord := []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1}
	tsig := []byte{0xc0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0} // a stand-in: type TSIG, no data
	build := func(an, ns, ar [][]byte) []byte {
		b := bytes.Clone(base)
		binary.BigEndian.PutUint16(b[6:], uint16(len(an)))
		binary.BigEndian.PutUint16(b[8:], uint16(len(ns)))
		binary.BigEndian.PutUint16(b[10:], uint16(len(ar)))
		for _, sec := range [][][]byte{an, ns, ar} {
			for _, r := range sec {
				b = append(b, r...)
			}
		}
		return b
	}
	padding := func(n int) []byte { return append([]byte{0, 12, byte(n >> 8), byte(n)}, make([]byte, n)...) }
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"one OPT", build(nil, nil, [][]byte{plainOPT}), nil},
		{"OPT with 512 bytes of options", build(nil, nil, [][]byte{opt(root, padding(508))}), nil},
		{"answer record", build([][]byte{aRecord}, nil, nil), ErrUnsupported},
		{"additional record not an OPT", build(nil, nil, [][]byte{aRecord}), ErrUnsupported},
		{"OPT then TSIG", build(nil, nil, [][]byte{plainOPT, tsig}), ErrUnsupported},
		{"A then OPT", build(nil, nil, [][]byte{aRecord, plainOPT}), ErrUnsupported},
		{"OPT owned by a pointer to the root", build(nil, nil, [][]byte{opt([]byte{0xc0, byte(len(base) - 5)}, nil)}), ErrUnsupported},
		{"two OPTs", build(nil, nil, [][]byte{plainOPT, plainOPT}), ErrBadOPT},
		{"two OPTs around a TSIG", build(nil, nil, [][]byte{plainOPT, tsig, plainOPT}), ErrBadOPT},
		{"OPT in the answer section", build([][]byte{plainOPT}, nil, nil), ErrBadOPT},
		{"OPT in the authority section", build(nil, [][]byte{plainOPT}, nil), ErrBadOPT},
		{"OPT owned by a.", build(nil, nil, [][]byte{opt([]byte{1, 'a', 0}, nil)}), ErrBadOPT},
		{"OPT owned by the question's name", build(nil, nil, [][]byte{opt([]byte{0xc0, 12}, nil)}), ErrBadOPT},
		{"OPT with 513 bytes of options", build(nil, nil, [][]byte{opt(root, padding(509))}), ErrBadOPT},
		{"OPT padded to 65000 bytes", build(nil, nil, [][]byte{opt(root, padding(65000))}), ErrBadOPT},
		{"OPT padded to 600 bytes, then TSIG", build(nil, nil, [][]byte{opt(root, padding(600)), tsig}), ErrBadOPT},
		{"OPT with a cut option, then TSIG", build(nil, nil, [][]byte{opt(root, []byte{0, 10, 0, 8, 1}), tsig}), ErrBadOPT},
		{"forward pointer in an owner", build(nil, nil, [][]byte{{0xc0, byte(len(base) + 2), 0, 1, 0, 1, 0, 0, 0, 0, 0, 0}}), ErrMalformed},
		{"record cut", build(nil, nil, [][]byte{plainOPT, aRecord[:10]}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q Query
			err := q.Parse(tt.msg)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			if !errors.Is(err, ErrBadOPT) {
				return
			}
			// The FORMERR reply: ID, question as sent, and an OPT record.
			var m dns.Msg
			require.NoError(t, m.Unpack(AppendError(nil, &q, dns.RcodeFormatError)))
			require.Equal(t, uint16(0x4321), m.Id)
			require.Equal(t, dns.RcodeFormatError, m.Rcode)
			require.Equal(t, "Example.com.", m.Question[0].Name)
			require.NotNil(t, m.IsEdns0())
			require.Empty(t, m.IsEdns0().Option)
		})
	}
}

func TestCacheable(t *testing.T) {
	tests := []struct {
		name  string
		qtype uint16
		class uint16
		op    int
		want  bool
	}{
		{"A", dns.TypeA, dns.ClassINET, dns.OpcodeQuery, true},
		{"ANY", dns.TypeANY, dns.ClassINET, dns.OpcodeQuery, true},
		{"SRV", dns.TypeSRV, dns.ClassINET, dns.OpcodeQuery, true},
		{"AXFR", dns.TypeAXFR, dns.ClassINET, dns.OpcodeQuery, false},
		{"IXFR", dns.TypeIXFR, dns.ClassINET, dns.OpcodeQuery, false},
		{"MAILB", dns.TypeMAILB, dns.ClassINET, dns.OpcodeQuery, false},
		{"type 0", 0, dns.ClassINET, dns.OpcodeQuery, false},
		{"CHAOS", dns.TypeTXT, dns.ClassCHAOS, dns.OpcodeQuery, false},
		{"NOTIFY", dns.TypeSOA, dns.ClassINET, dns.OpcodeNotify, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testsupport.NewQuery("example.com.", tt.qtype)
			m.Question[0].Qclass = tt.class
			m.Opcode = tt.op
			b, err := m.Pack()
			require.NoError(t, err)
			var q Query
			require.NoError(t, q.Parse(b))
			require.Equal(t, tt.want, q.Cacheable())
		})
	}
}

func TestUDPLimit(t *testing.T) {
	require.Equal(t, 512, parseQuery(t, "a.", dns.TypeA).UDPLimit())
	require.Equal(t, 512, parseQuery(t, "a.", dns.TypeA, testsupport.WithEDNS(100, false)).UDPLimit())
	require.Equal(t, 1000, parseQuery(t, "a.", dns.TypeA, testsupport.WithEDNS(1000, false)).UDPLimit())
	require.Equal(t, MaxUDPSize, parseQuery(t, "a.", dns.TypeA, testsupport.WithEDNS(65535, false)).UDPLimit())
}

// FuzzParseQuery checks that whatever Parse accepts, miekg/dns accepts too
// and reads the same question, EDNS size and DO/CD bits; and that Parse
// never panics. Its seeds run in the normal test suite.
func FuzzParseQuery(f *testing.F) {
	for _, b := range [][]byte{
		testsupport.PackQuery(f, "example.com.", dns.TypeA),
		testsupport.PackQuery(f, "Mixed.Case.Example.", dns.TypeAAAA, testsupport.WithEDNS(4096, true)),
		testsupport.PackQuery(f, ".", dns.TypeNS, testsupport.WithCD()),
		testsupport.PackQuery(f, `we\.ird\255.name.`, dns.TypeTXT, testsupport.WithEDNS(512, false), testsupport.WithID(7)),
		testsupport.PackQuery(f, "leader.mesos.", dns.TypeSRV, testsupport.WithEDNS(1232, false)),
		{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1},
		{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0x80, 0, 0, 0},
		// Two OPT records; an OPT in the answer section; an OPT owned by a.
		{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0},
		{0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0},
		{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 'a', 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0},
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var q Query
		if err := q.Parse(b); err != nil {
			checkOPTVerdict(t, b, err)
			return
		}
		var m dns.Msg
		if err := m.Unpack(b); err != nil && q.EDNS {
			// miekg/dns interprets option contents, which the fast path
			// ignores (it only checks their TLV framing): without the
			// options the packet must unpack.
			optAt := HeaderLen + len(q.Name()) + 4
			b = append([]byte{}, b[:optAt+optRRLen]...)
			b[len(b)-2], b[len(b)-1] = 0, 0
		}
		require.NoError(t, m.Unpack(b), "Parse accepted a packet miekg/dns rejects")
		require.Len(t, m.Question, 1)
		require.Equal(t, m.Id, q.ID)
		require.Equal(t, m.Question[0].Qtype, q.Qtype)
		require.Equal(t, m.Question[0].Qclass, q.Qclass)
		require.Equal(t, m.CheckingDisabled, q.CD)
		require.Equal(t, m.RecursionDesired, q.RD)
		// The name is the packet's own bytes, decoding to miekg's name;
		// the key is its ASCII lower-casing.
		n := len(q.Name())
		require.Equal(t, b[HeaderLen:HeaderLen+n], q.Name())
		name, _, err := dns.UnpackDomainName(q.Name(), 0)
		require.NoError(t, err)
		require.Equal(t, m.Question[0].Name, name)
		require.Equal(t, asciiLower(q.Name()), q.Key()[:n])
		opt := m.IsEdns0()
		require.Equal(t, opt != nil, q.EDNS)
		if opt != nil {
			require.Equal(t, opt.UDPSize(), q.UDPSize)
			require.Equal(t, opt.Do(), q.DO)
		}
	})
}

// checkOPTVerdict checks, for a query Parse refused with err, that a query
// miekg/dns reads is ErrBadOPT exactly when its OPT records are at fault
// (RFC 6891 6.1.1): a second one, one outside the additional section, one
// not owned by the root, more than MaxQueryOPTData bytes of options. (Any
// other fault in the options makes miekg/dns refuse the message.)
func checkOPTVerdict(t *testing.T, b []byte, err error) {
	var m dns.Msg
	if m.Unpack(b) != nil || m.Response || len(m.Question) != 1 || errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadOPT) {
		return
	}
	bad, opts := false, 0
	for i, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype == dns.TypeOPT {
				opts++
				bad = bad || i < 2 || h.Name != "." || h.Rdlength > MaxQueryOPTData
			}
		}
	}
	bad = bad || opts > 1
	require.Equal(t, bad, errors.Is(err, ErrBadOPT), "Parse: %v; miekg/dns reads %d OPT records: %v", err, opts, &m)
}

func asciiLower(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		if 'A' <= c && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return out
}
