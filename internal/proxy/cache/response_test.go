package cache

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func TestParseResponse(t *testing.T) {
	query := newQuery("www.example.com.", dns.TypeA, withEDNS(1232, true))
	qb, err := query.Pack()
	require.NoError(t, err)
	var q Query
	require.NoError(t, q.Parse(qb))
	good := packReply(t, query, replySpec{
		answer:  []dns.RR{rr(t, "www.example.com. 300 IN CNAME web.example.com."), rr(t, "web.example.com. 60 IN A 192.0.2.1")},
		ns:      []dns.RR{rr(t, "example.com. 3600 IN NS ns1.example.com.")},
		extra:   []dns.RR{rr(t, "ns1.example.com. 3600 IN A 192.0.2.53")},
		optSize: 4096,
	})
	// The same reply with its OPT record first in the additional section.
	optFirst := func() []byte {
		var m dns.Msg
		require.NoError(t, m.Unpack(good))
		m.Extra = []dns.RR{m.Extra[1], m.Extra[0]}
		require.Equal(t, uint16(dns.TypeOPT), m.Extra[0].Header().Rrtype)
		b, err := m.Pack()
		require.NoError(t, err)
		return b
	}()
	mangle := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name    string
		reply   []byte
		wantErr bool
	}{
		{"OPT last", good, false},
		{"OPT first: re-packed", optFirst, false},
		{"trailing garbage ignored", append(bytes.Clone(good), 1, 2, 3), false},
		{"short", good[:10], true},
		{"not a response", mangle(func(b []byte) []byte { b[2] &^= 0x80; return b }), true},
		{"opcode", mangle(func(b []byte) []byte { b[2] |= 2 << 3; return b }), true},
		{"two questions", mangle(func(b []byte) []byte { b[5] = 2; return b }), true},
		{"other question", mangle(func(b []byte) []byte { b[13] = 'x'; return b }), true},
		{"other type", mangle(func(b []byte) []byte { b[12+17+1] = 28; return b }), true},
		{"cut in a record", good[:len(good)-20], true},
		{"record count too high", mangle(func(b []byte) []byte { b[7] = 9; return b }), true},
		{"pointer loop", mangle(func(b []byte) []byte {
			// The answer's owner is a pointer to the question; make it
			// point to itself.
			off := 12 + 17 + 4
			require.Equal(t, byte(0xC0), b[off])
			binary.BigEndian.PutUint16(b[off:], 0xC000|uint16(off))
			return b
		}), true},
		{"pointer to a non-label: re-packed", mangle(func(b []byte) []byte {
			// Point the answer's owner at the question's root byte, a
			// valid name but not a label start: miekg/dns normalises it.
			off := 12 + 17 + 4
			binary.BigEndian.PutUint16(b[off:], 0xC000|uint16(12+16))
			return b
		}), false},
		{"bad label type", mangle(func(b []byte) []byte { b[12+17+4] = 0x80; return b }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseResponse(&q, tt.reply)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var stored dns.Msg
			require.NoError(t, stored.Unpack(r.Msg()))
			require.Nil(t, stored.IsEdns0(), "stored without OPT")
			require.Len(t, stored.Extra, 1)
			require.Equal(t, 4, r.nttl)
			require.Equal(t, uint32(60), r.minAnswer)
			// Every recorded offset is a TTL field: rewrite them all.
			out := r.appendReply(nil, &q, 65535, ttlMode{stale: true, value: 7})
			var m dns.Msg
			require.NoError(t, m.Unpack(out))
			require.Equal(t, []uint32{7, 7, 7, 7}, ttls(&m))
			require.Equal(t, "web.example.com.", m.Answer[1].Header().Name)
			require.True(t, m.IsEdns0().Do())
		})
	}
}

// TestReplyFlags checks the header a client gets for a relayed reply: its
// own RD and CD, RA always (we recurse for it), AA never (an authoritative
// upstream's answer is relayed or cached data here), AD only when asked.
func TestReplyFlags(t *testing.T) {
	tests := []struct {
		name             string
		upstreamAA, upRA bool
		upAD             bool
		rd, cd, adQ      bool
		wantAD           bool
	}{
		{name: "authoritative master without RA", upstreamAA: true},
		{name: "recursive upstream", upRA: true, rd: true},
		{name: "CD echoed", upRA: true, rd: true, cd: true},
		{name: "AD dropped for a client that did not ask", upRA: true, upAD: true, rd: true},
		{name: "AD kept for a client that asked", upRA: true, upAD: true, rd: true, adQ: true, wantAD: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			query := newQuery("task.marathon.mesos.", dns.TypeA)
			query.RecursionDesired = tt.rd
			query.CheckingDisabled = tt.cd
			query.AuthenticatedData = tt.adQ
			qb, err := query.Pack()
			require.NoError(t, err)
			var q Query
			require.NoError(t, q.Parse(qb))

			up := new(dns.Msg)
			require.NoError(t, up.Unpack(packReply(t, query, replySpec{
				answer: []dns.RR{rr(t, "task.marathon.mesos. 60 IN A 192.0.2.7")}, ad: tt.upAD,
			})))
			up.Authoritative = tt.upstreamAA
			up.RecursionAvailable = tt.upRA
			ub, err := up.Pack()
			require.NoError(t, err)

			r, err := ParseResponse(&q, ub)
			require.NoError(t, err)
			var m dns.Msg
			require.NoError(t, m.Unpack(r.AppendReply(nil, &q, 512)))
			require.False(t, m.Authoritative, "AA")
			require.True(t, m.RecursionAvailable, "RA")
			require.Equal(t, tt.rd, m.RecursionDesired, "RD")
			require.Equal(t, tt.cd, m.CheckingDisabled, "CD")
			require.Equal(t, tt.wantAD, m.AuthenticatedData, "AD")
			require.Equal(t, query.Id, m.Id)
		})
	}
}

// FuzzParseResponse checks that ParseResponse never panics on any reply and
// that whatever it accepts comes out, for any client, as a message miekg/dns
// can unpack whenever it could unpack the upstream's.
func FuzzParseResponse(f *testing.F) {
	query := newQuery("www.example.com.", dns.TypeA)
	f.Add(packReply(f, query, replySpec{answer: aRecords(f, "www.example.com.", 300, 3), optSize: 1232}))
	f.Add(packReply(f, query, replySpec{rcode: dns.RcodeNameError, ns: []dns.RR{soa(f, "example.com.", 60, 30)}}))
	f.Add(packReply(f, query, replySpec{answer: []dns.RR{rr(f, "www.example.com. 5 IN CNAME x.example.net.")},
		extra: []dns.RR{rr(f, "x.example.net. 5 IN AAAA 2001:db8::1")}, optSize: 4096}))
	qb, err := newQuery("WWW.example.com.", dns.TypeA, withEDNS(600, true)).Pack()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, reply []byte) {
		var q Query
		require.NoError(t, q.Parse(qb))
		r, err := ParseResponse(&q, reply)
		if err != nil {
			return
		}
		var in dns.Msg
		if in.Unpack(reply) != nil {
			return
		}
		out := r.appendReply(nil, &q, q.UDPLimit(), ttlMode{age: 3, limit: 100})
		require.LessOrEqual(t, len(out), q.UDPLimit())
		var m dns.Msg
		require.NoError(t, m.Unpack(out))
		require.Equal(t, "WWW.example.com.", m.Question[0].Name)
		for _, ttl := range ttls(&m) {
			require.LessOrEqual(t, ttl, uint32(100))
		}
	})
}
