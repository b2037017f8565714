package mesos

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/server"
)

// FuzzMemoPatch sends any query bytes to a handler whose reply memo was
// filled from the fixture zone, twice, so that the second reply to a
// memoable question is the stored one patched for this query (ID, flags,
// casing, OPT). It must never panic, and for a standard IN query every
// reply must unpack with miekg/dns, carry the query's ID and answer the
// query's question as the client cased it (a FORMERR aside, which has no
// question), fit the client's UDP buffer, and hold the records the general
// path answers with, in any order.
func FuzzMemoPatch(f *testing.F) {
	m := demoMaster(f)
	// Master mode's authority: the cluster zone, thisdcos.directory and
	// the aliases that rename replies.
	auth := m.Authority()
	h := NewDNSHandler(auth, nil)
	general := DNSHandler{Auth: auth}

	for _, seed := range memoSeeds(f) {
		f.Add(seed, false)
		// Filled from the fixture zone before fuzzing starts.
		h.ServeFast(&server.Request{Msg: seed}, make([]byte, 0, dns.MaxMsgSize))
	}
	f.Fuzz(func(t *testing.T, msg []byte, tcp bool) {
		var q dnswire.Query
		check := q.Parse(msg) == nil && q.Cacheable()
		want, _ := general.ServeFast(&server.Request{Msg: msg, TCP: tcp}, make([]byte, 0, dns.MaxMsgSize))
		for i := range 2 {
			out, ok := h.ServeFast(&server.Request{Msg: msg, TCP: tcp}, make([]byte, 0, dns.MaxMsgSize))
			if !ok {
				t.Fatal("ServeFast did not handle the message")
			}
			if !check {
				continue
			}
			checkMemoReply(t, i, &q, tcp, out, want)
		}
	})
}

// checkMemoReply checks reply out to query q against want, the general
// path's reply.
func checkMemoReply(t *testing.T, i int, q *dnswire.Query, tcp bool, out, want []byte) {
	t.Helper()
	var r dns.Msg
	if err := r.Unpack(out); err != nil {
		t.Fatalf("reply %d does not unpack: %v\n%x", i, err, out)
	}
	if r.Id != q.ID || !r.Response {
		t.Fatalf("reply %d: ID %d response %v, query ID %d", i, r.Id, r.Response, q.ID)
	}
	if !tcp && len(out) > q.UDPLimit() {
		t.Fatalf("reply %d: %d bytes over UDP, the client takes %d", i, len(out), q.UDPLimit())
	}
	if r.Rcode == dns.RcodeFormatError && len(r.Question) == 0 {
		return
	}
	name, _, err := dns.UnpackDomainName(q.Name(), 0)
	if err != nil {
		t.Fatalf("query name: %v", err)
	}
	wantQ := dns.Question{Name: name, Qtype: q.Qtype, Qclass: q.Qclass}
	if len(r.Question) != 1 || r.Question[0] != wantQ {
		t.Fatalf("reply %d answers %v, the query asks %v", i, r.Question, wantQ)
	}
	var g dns.Msg
	if err := g.Unpack(want); err != nil {
		t.Fatalf("general path's reply does not unpack: %v", err)
	}
	if r.Rcode != g.Rcode || r.Truncated != g.Truncated {
		t.Fatalf("reply %d: rcode %d TC %v, the general path's %d %v", i, r.Rcode, r.Truncated, g.Rcode, g.Truncated)
	}
	if a, b := rrStrings(r.Answer), rrStrings(g.Answer); !slices.Equal(a, b) {
		t.Fatalf("reply %d answers %v, the general path %v", i, a, b)
	}
}

func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	slices.Sort(out)
	return out
}

// memoSeeds returns queries for every name and type of the fixture's
// records, in the variants a memo entry is patched for, and for the
// apex, a missing name and a missing type.
func memoSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	file, err := os.Open(filepath.Join(fixtureDir, "mesos-dns-fake-state.records.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	defer file.Close()
	type question struct {
		name  string
		qtype uint16
	}
	qs := []question{{"mesos.", dns.TypeSOA}, {"mesos.", dns.TypeNS}, {"mesos.", dns.TypeANY},
		{"nope.marathon.mesos.", dns.TypeA}, {"nginx.marathon.mesos.", dns.TypeAAAA},
		{"liquor-store.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA}, {"thisdcos.directory.", dns.TypeSOA},
		{"_leader._tcp.mesos.thisdcos.global.", dns.TypeSRV}, {"nope.mesos.thisdcos.directory.", dns.TypeA},
		{"leader.dcos.thisdcos.global.", dns.TypeA}}
	seen := map[question]bool{}
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		q := question{f[0], dns.StringToType[f[1]]}
		if !seen[q] {
			seen[q] = true
			qs = append(qs, q)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for i, q := range qs {
		msg := new(dns.Msg)
		msg.SetQuestion(q.name, q.qtype)
		msg.Id = uint16(i)
		switch i % 4 {
		case 1: // the client's casing is restored
			msg.Question[0].Name = strings.ToUpper(q.name)
		case 2:
			msg.SetEdns0(1232, true)
		case 3:
			msg.RecursionDesired, msg.CheckingDisabled = false, true
			msg.SetEdns0(512, false)
		}
		wire, err := msg.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, wire)
	}
	return out
}
