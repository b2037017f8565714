package dnswire

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

func TestParseResponse(t *testing.T) {
	query := testsupport.NewQuery("www.example.com.", dns.TypeA, testsupport.WithEDNS(1232, true))
	_, q := packParse(t, query)
	good := testsupport.PackReply(t, query, testsupport.ReplySpec{
		Answer:  []dns.RR{testsupport.RR(t, "www.example.com. 300 IN CNAME web.example.com."), testsupport.RR(t, "web.example.com. 60 IN A 192.0.2.1")},
		Ns:      []dns.RR{testsupport.RR(t, "example.com. 3600 IN NS ns1.example.com.")},
		Extra:   []dns.RR{testsupport.RR(t, "ns1.example.com. 3600 IN A 192.0.2.53")},
		OptSize: 4096,
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
			r, err := ParseResponse(q, tt.reply)
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
			out := r.appendReply(nil, q, 65535, ttlMode{stale: true, value: 7})
			var m dns.Msg
			require.NoError(t, m.Unpack(out))
			require.Equal(t, []uint32{7, 7, 7, 7}, testsupport.TTLs(&m))
			require.Equal(t, "web.example.com.", m.Answer[1].Header().Name)
			require.True(t, m.IsEdns0().Do())
		})
	}
}

// A truncated reply is relayed with empty sections and never stored, so
// only its header and question are read: its records may be cut anywhere.
func TestParseResponseTruncated(t *testing.T) {
	query := testsupport.NewQuery("www.example.com.", dns.TypeA, testsupport.WithEDNS(1232, false))
	_, q := packParse(t, query)
	full := testsupport.PackReply(t, query, testsupport.ReplySpec{TC: true, Answer: testsupport.ARecords(t, "www.example.com.", 300, 3), OptSize: 1232})
	for _, reply := range [][]byte{full, full[:len(full)-20]} {
		r, err := ParseResponse(q, reply)
		require.NoError(t, err)
		require.True(t, r.Truncated())
		var m dns.Msg
		require.NoError(t, m.Unpack(r.Msg()))
		require.Len(t, m.Question, 1)
		require.Empty(t, m.Answer)
		require.Empty(t, m.Extra)
		out := r.AppendReply(nil, q, 65535)
		require.NoError(t, m.Unpack(out))
		require.True(t, m.Truncated)
		require.Empty(t, m.Answer)
	}
}

// TestCheckReply: CheckReply accepts exactly what ParseResponse accepts,
// record data included, without allocating for a usual reply.
func TestCheckReply(t *testing.T) {
	query := testsupport.NewQuery("WWW.example.com.", dns.TypeA, testsupport.WithEDNS(1232, false))
	qb, q := packParse(t, query)
	question := qb[HeaderLen : HeaderLen+len(q.Name())+4] // as sent: mixed case
	good := testsupport.PackReply(t, query, testsupport.ReplySpec{
		Answer:  []dns.RR{testsupport.RR(t, "www.example.com. 300 IN CNAME web.example.com."), testsupport.RR(t, "web.example.com. 60 IN A 192.0.2.1")},
		Ns:      []dns.RR{testsupport.SOA(t, "example.com.", 60, 30)},
		OptSize: 1232,
	})
	mangle := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// raw builds a reply whose one record has the given type and raw data
	// (hex) in the answer or authority section.
	raw := func(authority bool, rrtype uint16, rdata string) []byte {
		r := &dns.RFC3597{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: rrtype, Class: dns.ClassINET, Ttl: 60}, Rdata: rdata}
		if authority {
			return testsupport.PackReply(t, query, testsupport.ReplySpec{Ns: []dns.RR{r}})
		}
		return testsupport.PackReply(t, query, testsupport.ReplySpec{Answer: []dns.RR{r}})
	}
	// The CNAME's data: "web", then a pointer to example.com. in the
	// question.
	cname := bytes.Index(good, []byte("\x03web\xc0"))
	require.Positive(t, cname)
	// truncated is a TC reply cut in its second record, with opcode op.
	truncated := func(op byte) []byte {
		b := testsupport.PackReply(t, query, testsupport.ReplySpec{TC: true, Answer: testsupport.ARecords(t, "www.example.com.", 300, 3)})
		b[2] |= op << 3
		return b[:HeaderLen+len(question)+20]
	}
	tests := []struct {
		name  string
		reply []byte
		ok    bool
	}{
		{"good", good, true},
		{"truncated and cut in a record", truncated(0), true},
		{"pointer to a non-label: re-packed", mangle(func(b []byte) []byte {
			// The question's root byte: a valid name, not a label start.
			binary.BigEndian.PutUint16(b[cname+4:], 0xC000|uint16(HeaderLen+len(question)-5))
			return b
		}), true},
		{"opcode STATUS", mangle(func(b []byte) []byte { b[2] |= 2 << 3; return b }), false},
		{"truncated with opcode STATUS", truncated(2), false},
		{"SOA data of 2 bytes", raw(true, dns.TypeSOA, "0000"), false},
		{"forward pointer in CNAME data", raw(false, dns.TypeCNAME, "c0ff"), false},
		{"pointer loop in CNAME data", mangle(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[cname+4:], 0xC000|uint16(cname))
			return b
		}), false},
		{"label type 0x80 in CNAME data", mangle(func(b []byte) []byte { b[cname] = 0x80; return b }), false},
		{"cut in a record", good[:len(good)-20], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireAccepted(t, q, question, tt.reply, tt.ok) })
	}
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if CheckReply(question, good) != nil {
			t.Fatal("good reply refused")
		}
	}))
}

// TestRecordData: the record types a stub resolver parses must have
// exactly their layout, or the whole reply is refused (by CheckReply and
// ParseResponse alike): relayed or cached, it would reach clients as a
// message they cannot read. Each type has its well-formed form and its
// malformed ones. The record is in the answer section (SOA in authority)
// of a reply to www.example.com A; c00c is a pointer to the question's
// name.
func TestRecordData(t *testing.T) {
	query := testsupport.NewQuery("www.example.com.", dns.TypeA)
	qb, q := packParse(t, query)
	question := qb[HeaderLen : HeaderLen+len(q.Name())+4]
	reply := func(rrtype uint16, rdata string) []byte {
		r := &dns.RFC3597{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: rrtype, Class: dns.ClassINET, Ttl: 60}, Rdata: rdata}
		if rrtype == dns.TypeSOA {
			return testsupport.PackReply(t, query, testsupport.ReplySpec{Ns: []dns.RR{r}})
		}
		return testsupport.PackReply(t, query, testsupport.ReplySpec{Answer: []dns.RR{r}})
	}
	serials := strings.Repeat("00000001", 5) // serial, refresh, retry, expire, minimum
	tests := []struct {
		name   string
		rrtype uint16
		rdata  string
		ok     bool
	}{
		{"A", dns.TypeA, "c0000201", true},
		{"A of 3 bytes", dns.TypeA, "c00002", false},
		{"A of 5 bytes", dns.TypeA, "c000020101", false},
		{"A empty", dns.TypeA, "", false},
		{"AAAA", dns.TypeAAAA, "20010db8000000000000000000000001", true},
		{"AAAA of 3 bytes", dns.TypeAAAA, "200100", false},
		{"AAAA of 17 bytes", dns.TypeAAAA, "20010db800000000000000000000000101", false},
		{"CNAME", dns.TypeCNAME, "03776562c00c", true},
		{"CNAME pointer only", dns.TypeCNAME, "c00c", true},
		{"CNAME with a trailing byte", dns.TypeCNAME, "c00c00", false},
		{"CNAME empty", dns.TypeCNAME, "", false},
		{"CNAME name overruns", dns.TypeCNAME, "0377", false},
		{"NS", dns.TypeNS, "026e73c00c", true},
		{"NS with a trailing byte", dns.TypeNS, "026e73c00c00", false},
		{"PTR", dns.TypePTR, "00", true},
		{"PTR with trailing bytes", dns.TypePTR, "000000", false},
		{"DNAME", dns.TypeDNAME, "076578616d706c65036e657400", true},
		{"DNAME with a trailing byte", dns.TypeDNAME, "076578616d706c65036e65740001", false},
		{"MX", dns.TypeMX, "000ac00c", true},
		{"MX with a trailing byte", dns.TypeMX, "000ac00c00", false},
		{"MX without a name", dns.TypeMX, "000a", false},
		{"MX of 1 byte", dns.TypeMX, "00", false},
		{"SRV", dns.TypeSRV, "0001000201bbc00c", true},
		{"TSIG", dns.TypeTSIG, "00" + "000000000001" + "012c" + "0002" + "abcd" + "1234" + "0000" + "0000", true},
		{"TSIG with other data", dns.TypeTSIG, "00" + "000000000001" + "012c" + "0000" + "1234" + "0000" + "0002" + "beef", true},
		{"TSIG empty", dns.TypeTSIG, "", false},
		{"TSIG MAC overruns", dns.TypeTSIG, "00" + "000000000001" + "012c" + "0009" + "abcd" + "1234" + "0000" + "0000", false},
		{"TSIG with a trailing byte", dns.TypeTSIG, "00" + "000000000001" + "012c" + "0000" + "1234" + "0000" + "0000" + "00", false},
		{"SRV without a port", dns.TypeSRV, "00010002c00c", false},
		{"SRV with a trailing byte", dns.TypeSRV, "0001000201bbc00c00", false},
		{"TXT", dns.TypeTXT, "0568656c6c6f", true},
		{"TXT of two strings, one empty", dns.TypeTXT, "0568656c6c6f00", true},
		{"TXT of one empty string", dns.TypeTXT, "00", true},
		{"TXT empty", dns.TypeTXT, "", false},
		{"TXT string overruns", dns.TypeTXT, "0568656c6c", false},
		{"TXT second string overruns", dns.TypeTXT, "0568656c6c6f0168656c", false},
		{"SOA", dns.TypeSOA, "c00cc00c" + serials, true},
		{"SOA of 19 bytes after its names", dns.TypeSOA, "c00cc00c" + serials[2:], false},
		{"SOA of 21 bytes after its names", dns.TypeSOA, "c00cc00c" + serials + "00", false},
		{"SOA of 2 bytes", dns.TypeSOA, "0000", false},
		{"SOA with one name", dns.TypeSOA, "c00c" + serials, false},
		{"CAA", dns.TypeCAA, "000569737375656c657473656e63727970742e6f7267", true},
		{"CAA with an empty value", dns.TypeCAA, "00056973737565", true},
		{"CAA with an empty tag", dns.TypeCAA, "0000", false},
		{"CAA tag overruns", dns.TypeCAA, "000569737375", false},
		{"CAA of 1 byte", dns.TypeCAA, "00", false},
		{"HTTPS", dns.TypeHTTPS, "000100" + "00010003026832", true},
		{"HTTPS alias mode", dns.TypeHTTPS, "0000c00c", true},
		{"HTTPS without a target", dns.TypeHTTPS, "0001", false},
		{"HTTPS target overruns", dns.TypeHTTPS, "000103777777", false},
		{"HTTPS parameter header cut", dns.TypeHTTPS, "000100000100", false},
		{"HTTPS parameter value overruns", dns.TypeHTTPS, "000100" + "000100050268", false},
		{"SVCB", dns.TypeSVCB, "0001c00c" + "00030002" + "01bb", true},
		{"SVCB parameter value short", dns.TypeSVCB, "0001c00c" + "00030002" + "01", false},
		{"NAPTR", dns.TypeNAPTR, "000a0064" + "0155" + "074532552b736970" + "00" + "c00c", true},
		{"NAPTR with a trailing byte", dns.TypeNAPTR, "000a0064" + "0155" + "074532552b736970" + "00" + "c00c00", false},
		{"unknown type: opaque", 65280, "010203", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := reply(tt.rrtype, tt.rdata)
			requireAccepted(t, q, question, b, tt.ok)
			if tt.ok { // what is accepted, a client can read
				var m dns.Msg
				require.NoError(t, m.Unpack(b))
			}
		})
	}
}

// TestReplyQuestionMatch: a reply's question must be the query's, the
// name compared without regard to ASCII case (RFC 4343) and the type and
// class byte for byte. Type HTTPS (65, 0x0041) holds the byte of an "A":
// folding it like a name's letters would take a reply about type 97 for
// one about HTTPS.
func TestReplyQuestionMatch(t *testing.T) {
	query := testsupport.NewQuery("svc.example.com.", dns.TypeHTTPS)
	qb, q := packParse(t, query)
	question := qb[HeaderLen : HeaderLen+len(q.Name())+4]
	reply := func(name string, qtype, qclass uint16) []byte {
		m := testsupport.NewQuery(name, qtype)
		m.Question[0].Qclass = qclass
		return testsupport.PackReply(t, m, testsupport.ReplySpec{Rcode: dns.RcodeNameError})
	}
	tests := []struct {
		name  string
		reply []byte
		ok    bool
	}{
		{"same question", reply("svc.example.com.", dns.TypeHTTPS, dns.ClassINET), true},
		{"name in other case", reply("SVC.Example.COM.", dns.TypeHTTPS, dns.ClassINET), true},
		{"type 97: 0x0061 folds to 0x0041", reply("svc.example.com.", 97, dns.ClassINET), false},
		{"other type", reply("svc.example.com.", dns.TypeA, dns.ClassINET), false},
		{"other class", reply("svc.example.com.", dns.TypeHTTPS, dns.ClassCHAOS), false},
		{"other name", reply("svd.example.com.", dns.TypeHTTPS, dns.ClassINET), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireAccepted(t, q, question, tt.reply, tt.ok) })
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
			query := testsupport.NewQuery("task.marathon.mesos.", dns.TypeA)
			query.RecursionDesired = tt.rd
			query.CheckingDisabled = tt.cd
			query.AuthenticatedData = tt.adQ
			_, q := packParse(t, query)

			up := new(dns.Msg)
			require.NoError(t, up.Unpack(testsupport.PackReply(t, query, testsupport.ReplySpec{
				Answer: []dns.RR{testsupport.RR(t, "task.marathon.mesos. 60 IN A 192.0.2.7")}, AD: tt.upAD,
			})))
			up.Authoritative = tt.upstreamAA
			up.RecursionAvailable = tt.upRA
			ub, err := up.Pack()
			require.NoError(t, err)

			r, err := ParseResponse(q, ub)
			require.NoError(t, err)
			var m dns.Msg
			require.NoError(t, m.Unpack(r.AppendReply(nil, q, 512)))
			require.False(t, m.Authoritative, "AA")
			require.True(t, m.RecursionAvailable, "RA")
			require.Equal(t, tt.rd, m.RecursionDesired, "RD")
			require.Equal(t, tt.cd, m.CheckingDisabled, "CD")
			require.Equal(t, tt.wantAD, m.AuthenticatedData, "AD")
			require.Equal(t, query.Id, m.Id)
		})
	}
}

// FuzzParseResponse checks that ParseResponse never panics on any reply,
// that CheckReply accepts exactly what it accepts, and that whatever it
// accepts comes out, for any client, as a message miekg/dns can unpack
// whenever it could unpack the upstream's.
func FuzzParseResponse(f *testing.F) {
	query := testsupport.NewQuery("www.example.com.", dns.TypeA)
	f.Add(testsupport.PackReply(f, query, testsupport.ReplySpec{Answer: testsupport.ARecords(f, "www.example.com.", 300, 3), OptSize: 1232}))
	f.Add(testsupport.PackReply(f, query, testsupport.ReplySpec{Rcode: dns.RcodeNameError, Ns: []dns.RR{testsupport.SOA(f, "example.com.", 60, 30)}}))
	f.Add(testsupport.PackReply(f, query, testsupport.ReplySpec{Answer: []dns.RR{testsupport.RR(f, "www.example.com. 5 IN CNAME x.example.net.")},
		Extra: []dns.RR{testsupport.RR(f, "x.example.net. 5 IN AAAA 2001:db8::1")}, OptSize: 4096}))
	f.Add(testsupport.PackReply(f, query, testsupport.ReplySpec{TC: true, Answer: testsupport.ARecords(f, "www.example.com.", 300, 3)})[:50])
	// Record types whose data layout the walk checks.
	f.Add(testsupport.PackReply(f, query, testsupport.ReplySpec{Answer: []dns.RR{
		testsupport.RR(f, `www.example.com. 60 IN TXT "v=spf1 -all" ""`),
		testsupport.RR(f, "www.example.com. 60 IN MX 10 mail.example.com."),
		testsupport.RR(f, "www.example.com. 60 IN SRV 1 2 443 web.example.com."),
		testsupport.RR(f, `www.example.com. 60 IN CAA 0 issue "letsencrypt.org"`),
		testsupport.RR(f, `www.example.com. 60 IN HTTPS 1 . alpn="h2,h3" port=443`),
		testsupport.RR(f, "www.example.com. 60 IN AAAA 2001:db8::1"),
		testsupport.RR(f, "www.example.com. 60 IN PTR ptr.example.com."),
	}, OptSize: 1232}))
	qb, err := testsupport.NewQuery("WWW.example.com.", dns.TypeA, testsupport.WithEDNS(600, true)).Pack()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, reply []byte) {
		var q Query
		require.NoError(t, q.Parse(qb))
		r, err := ParseResponse(&q, reply)
		cerr := CheckReply(qb[HeaderLen:HeaderLen+len(q.Name())+4], reply)
		require.Equal(t, err == nil, cerr == nil, "ParseResponse: %v, CheckReply: %v", err, cerr)
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
		for _, ttl := range testsupport.TTLs(&m) {
			require.LessOrEqual(t, ttl, uint32(100))
		}
	})
}

// TestAppendAuthoritative: an authority's reply keeps its AA and RA bits
// and TTLs, takes the client's ID, RD, CD and casing, and is refused
// (nothing written) when it does not fit the client's limit.
func TestAppendAuthoritative(t *testing.T) {
	stored := testsupport.NewQuery("task.marathon.mesos.", dns.TypeA)
	sb, err := stored.Pack()
	require.NoError(t, err)
	var sq Query
	require.NoError(t, sq.Parse(sb))
	up := new(dns.Msg)
	require.NoError(t, up.Unpack(testsupport.PackReply(t, stored, testsupport.ReplySpec{Answer: testsupport.ARecords(t, "task.marathon.mesos.", 3600, 25)})))
	up.Authoritative, up.RecursionAvailable = true, false
	ub, err := up.Pack()
	require.NoError(t, err)
	r, err := ParseResponse(&sq, ub)
	require.NoError(t, err)
	// 25 uncompressed A records: owner, 10 bytes, 4 bytes of address each.
	spans := r.AnswerSpans(nil)
	require.Len(t, spans, 26)
	rec := len(sq.Name()) + 10 + 4
	for i, off := range spans {
		require.Equal(t, uint16(r.qend+i*rec), off, "span %d", i)
	}
	require.Equal(t, r.msgLen, int(spans[25]), "no other records")

	for _, tc := range []struct {
		name  string
		edns  uint16 // 0: no OPT
		rd    bool
		limit int
		fits  bool
	}{
		{"over 512 without EDNS", 0, true, 512, false},
		{"fits the EDNS buffer", 1232, false, 1232, true},
		{"fits over TCP", 0, true, dns.MaxMsgSize, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			query := testsupport.NewQuery("TASK.Marathon.mesos.", dns.TypeA)
			query.Id = 0x4242
			query.RecursionDesired = tc.rd
			query.CheckingDisabled = true
			if tc.edns > 0 {
				query.SetEdns0(tc.edns, true)
			}
			_, q := packParse(t, query)
			out, ok := r.AppendAuthoritative(make([]byte, 0, 64), q, tc.limit)
			require.Equal(t, tc.fits, ok)
			if !tc.fits {
				require.Empty(t, out)
				return
			}
			var m dns.Msg
			require.NoError(t, m.Unpack(out))
			require.Equal(t, uint16(0x4242), m.Id)
			require.True(t, m.Authoritative, "AA")
			require.False(t, m.RecursionAvailable, "RA")
			require.Equal(t, tc.rd, m.RecursionDesired, "RD")
			require.True(t, m.CheckingDisabled, "CD")
			require.Equal(t, "TASK.Marathon.mesos.", m.Question[0].Name)
			require.Len(t, m.Answer, 25)
			require.Equal(t, uint32(3600), m.Answer[0].Header().Ttl)
			if tc.edns > 0 {
				require.NotNil(t, m.IsEdns0())
				require.True(t, m.IsEdns0().Do(), "DO echoed")
			} else {
				require.Nil(t, m.IsEdns0())
			}
		})
	}
}

// packParse packs query and parses it as a client query.
func packParse(t testing.TB, query *dns.Msg) ([]byte, *Query) {
	t.Helper()
	qb, err := query.Pack()
	require.NoError(t, err)
	q := new(Query)
	require.NoError(t, q.Parse(qb))
	return qb, q
}

// requireAccepted checks that CheckReply and ParseResponse both accept
// reply as the reply to q (question) when ok, and both refuse it otherwise.
func requireAccepted(t *testing.T, q *Query, question, reply []byte, ok bool) {
	t.Helper()
	err := CheckReply(question, reply)
	_, perr := ParseResponse(q, reply)
	if ok {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, errResponse)
	}
	require.Equal(t, err == nil, perr == nil, "CheckReply and ParseResponse disagree: %v / %v", err, perr)
}
