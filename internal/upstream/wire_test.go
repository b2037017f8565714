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
			require.NotEqual(b, mismatch, check(reply, 0x1234, question))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if check(reply, 0x1234, question) == mismatch {
					b.Fatal("mismatch")
				}
			}
		})
	}
}

// FuzzCheck: every reply a leg accepts (answer or truncated) parses, so
// a reply that wins a race never turns into SERVFAIL after it.
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
		switch check(reply, 0x1234, query[headerLen:qend]) {
		case answer, truncated:
			_, err := dnswire.ParseResponse(&q, reply)
			require.NoError(t, err)
		}
	})
}
