package upstream

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/stretchr/testify/require"
)

// packedReply returns the query for name/qtype as a leg sends it (ID, one
// question, EDNS) and a compressed reply to it carrying answer, ns and
// extra records (presentation format) and an OPT record.
func packedReply(t testing.TB, name string, qtype uint16, answer, ns, extra []string) (query, reply []byte) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = 0x1234
	q.SetEdns0(EDNSSize, false)
	query, err := q.Pack()
	require.NoError(t, err)
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	for _, sec := range []struct {
		dst *[]dns.RR
		rrs []string
	}{{&m.Answer, answer}, {&m.Ns, ns}, {&m.Extra, extra}} {
		for _, s := range sec.rrs {
			rr, err := dns.NewRR(s)
			require.NoError(t, err)
			*sec.dst = append(*sec.dst, rr)
		}
	}
	m.SetEdns0(EDNSSize, false)
	m.Compress = true
	reply, err = m.Pack()
	require.NoError(t, err)
	return query, reply
}

// TestMatchCase: with exact (0x20 on), a reply whose question differs from
// the one sent only in the case of its letters is a caseMismatch, whatever
// its rcode; without, it matches. Another name is a mismatch either way.
func TestMatchCase(t *testing.T) {
	query, reply := packedReply(t, "wWw.ExamPle.", dns.TypeA, []string{"www.example. 60 IN A 192.0.2.1"}, nil, nil)
	qend, err := questionEnd(query)
	require.NoError(t, err)
	question := query[headerLen:qend]
	// withName is reply with its question's name bytes replaced by name
	// (same length) and rcode set.
	withName := func(name string, rcode byte) []byte {
		b := append([]byte(nil), reply...)
		copy(b[headerLen:], name)
		b[3] = b[3]&0xF0 | rcode
		return b
	}
	tests := []struct {
		name         string
		reply        []byte
		exact, loose verdict
	}{
		{"as sent", withName("\x03wWw\x07ExamPle", 0), answer, answer},
		{"lower-cased", withName("\x03www\x07example", 0), caseMismatch, answer},
		{"lower-cased SERVFAIL", withName("\x03www\x07example", 2), caseMismatch, failure},
		{"other name", withName("\x03wWx\x07ExamPle", 0), mismatch, mismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.exact, check(tt.reply, 0x1234, question, true), "exact")
			require.Equal(t, tt.loose, check(tt.reply, 0x1234, question, false), "ignoring case")
		})
	}
}

// TestRandomizeCase: only the name's ASCII letters change, each to either
// case; label lengths, other bytes, type and class (HTTPS is 0x0041, an
// "A") are left alone.
func TestRandomizeCase(t *testing.T) {
	orig := []byte("\x07a-Z.0@[\x03xn9\x00\x00\x41\x00\x01")
	upper, lower := make([]bool, len(orig)), make([]bool, len(orig))
	for range 200 {
		q := append([]byte(nil), orig...)
		randomizeCase(q)
		for i, c := range q {
			if l := orig[i] | 0x20; i < len(orig)-4 && 'a' <= l && l <= 'z' {
				require.Equal(t, l, c|0x20, "byte %d", i)
				upper[i] = upper[i] || c == l-0x20
				lower[i] = lower[i] || c == l
				continue
			}
			require.Equal(t, orig[i], c, "byte %d", i)
		}
	}
	for _, i := range []int{1, 3, 9, 10} { // a, Z, x, n
		require.True(t, upper[i] && lower[i], "byte %d always in one case", i)
	}
}

// BenchmarkCheck is a leg's acceptance check of the reply it waited for.
func BenchmarkCheck(b *testing.B) {
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("big.example. 60 IN A 192.0.2.%d", i+1)
	}
	for _, bc := range []struct {
		name              string
		qname             string
		answer, ns, extra []string
	}{
		{name: "A", qname: "www.example.", answer: []string{"www.example. 60 IN A 192.0.2.1"}},
		{name: "CNAME+NS", qname: "www.example.com.",
			answer: []string{"www.example.com. 300 IN CNAME web.example.com.", "web.example.com. 60 IN A 192.0.2.1"},
			ns:     []string{"example.com. 3600 IN NS ns1.example.com."},
			extra:  []string{"ns1.example.com. 3600 IN A 192.0.2.53"}},
		{name: "NODATA+SOA", qname: "host.example.",
			ns: []string{"example. 60 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60"}},
		{name: "20A", qname: "big.example.", answer: many},
	} {
		b.Run(bc.name, func(b *testing.B) {
			query, reply := packedReply(b, bc.qname, dns.TypeA, bc.answer, bc.ns, bc.extra)
			qend, err := questionEnd(query)
			require.NoError(b, err)
			question := query[headerLen:qend]
			require.Equal(b, answer, check(reply, 0x1234, question, true))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if check(reply, 0x1234, question, true) != answer {
					b.Fatal("not an answer")
				}
			}
		})
	}
}

// FuzzCheck: every reply a leg accepts (answer or truncated) parses, so
// a reply that wins a race never turns into SERVFAIL after it, whether
// the leg matches the question's case exactly (0x20) or not.
func FuzzCheck(f *testing.F) {
	query, reply := packedReply(f, "WWW.example.com.", dns.TypeA,
		[]string{"www.example.com. 300 IN CNAME web.example.com.", "web.example.com. 60 IN A 192.0.2.1"},
		[]string{"example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60"},
		[]string{"ns.example.com. 60 IN A 192.0.2.53"})
	f.Add(reply)
	f.Add(reply[:len(reply)-15])
	tc := append([]byte(nil), reply[:40]...)
	tc[2] |= 0x02 // TC
	f.Add(tc)
	qend, err := questionEnd(query)
	require.NoError(f, err)
	var q dnswire.Query
	require.NoError(f, q.Parse(query))
	f.Fuzz(func(t *testing.T, reply []byte) {
		if len(reply) >= 2 {
			reply[0], reply[1] = query[0], query[1] // the leg's ID
		}
		for _, exact := range []bool{true, false} {
			switch check(reply, 0x1234, query[headerLen:qend], exact) {
			case answer, truncated:
				_, err := dnswire.ParseResponse(&q, reply)
				require.NoError(t, err)
			}
		}
	})
}
