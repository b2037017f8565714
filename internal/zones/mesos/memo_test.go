package mesos

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/zones"
)

// TestMemoRepliesAsGeneralPath: for every kind of query, the memo handler's
// reply (built on the first query, patched from the memo on the next ones)
// is byte for byte the reply the general path builds.
func TestMemoRepliesAsGeneralPath(t *testing.T) {
	m := demoMaster(t)
	auth := zones.NewAuthority(m.Store())
	general := DNSHandler{Auth: auth}

	query := func(name string, qtype uint16, edit func(*dns.Msg)) func(id uint16) []byte {
		return func(id uint16) []byte {
			q := new(dns.Msg)
			q.SetQuestion(name, qtype)
			q.Id = id
			if edit != nil {
				edit(q)
			}
			wire, err := q.Pack()
			require.NoError(t, err)
			return wire
		}
	}
	edns := func(size uint16, do bool) func(*dns.Msg) {
		return func(q *dns.Msg) { q.SetEdns0(size, do) }
	}
	for _, tc := range []struct {
		name string
		msg  func(id uint16) []byte
		tcp  bool
		held int // replies kept in the memo (the key holds the CD and DO bits)
	}{
		{"A", query("nginx.marathon.mesos.", dns.TypeA, nil), false, 1},
		{"A over TCP", query("nginx.marathon.mesos.", dns.TypeA, nil), true, 1},
		{"mixed case", query("NGINX.Marathon.MESOS.", dns.TypeA, nil), false, 1},
		{"no RD, CD set", query("nginx.marathon.mesos.", dns.TypeA, func(q *dns.Msg) {
			q.RecursionDesired, q.CheckingDisabled = false, true
		}), false, 1},
		{"RD and CD vary", func(id uint16) []byte {
			return query("nginx.marathon.mesos.", dns.TypeA, func(q *dns.Msg) {
				q.RecursionDesired, q.CheckingDisabled = id%2 == 0, id%2 == 1
			})(id)
		}, false, 2},
		{"EDNS", query("nginx.marathon.mesos.", dns.TypeA, edns(1232, false)), false, 1},
		{"EDNS with DO", query("nginx.marathon.mesos.", dns.TypeA, edns(4096, true)), false, 1},
		{"EDNS below 512", query("nginx.marathon.mesos.", dns.TypeA, edns(100, false)), false, 1},
		{"AAAA", query("toy-store.ipv6-framework.mesos.", dns.TypeAAAA, nil), false, 1},
		{"NODATA", query("nginx.marathon.mesos.", dns.TypeAAAA, nil), false, 1},
		{"NXDOMAIN", query("nope.marathon.mesos.", dns.TypeA, edns(1232, false)), false, 1},
		{"SOA", query("mesos.", dns.TypeSOA, nil), false, 1},
		{"ANY at the apex: several sets, in the zone's order", query("mesos.", dns.TypeANY, nil), false, 0},
		{"ANY with one record", query("nginx.marathon.mesos.", dns.TypeANY, nil), false, 1},
		{"refused outside the zones", query("example.com.", dns.TypeA, nil), false, 0},
		{"class CH", query("nginx.marathon.mesos.", dns.TypeA, func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassCHAOS }), false, 0},
		{"EDNS version 1", query("nginx.marathon.mesos.", dns.TypeA, func(q *dns.Msg) {
			q.SetEdns0(1232, false)
			q.IsEdns0().SetVersion(1)
		}), false, 0},
		{"NOTIFY", func(id uint16) []byte {
			q := new(dns.Msg)
			q.SetNotify("mesos.")
			q.Id = id
			wire, err := q.Pack()
			require.NoError(t, err)
			return wire
		}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewDNSHandler(auth, nil)
			for i := range 3 {
				msg := tc.msg(uint16(0x1000 + i))
				want, ok := general.ServeFast(&server.Request{Msg: msg, TCP: tc.tcp}, make([]byte, 0, 4096))
				require.True(t, ok)
				got, ok := h.ServeFast(&server.Request{Msg: msg, TCP: tc.tcp}, make([]byte, 0, 4096))
				require.True(t, ok)
				require.Equal(t, want, got, "query %d", i)
			}
			require.Equal(t, tc.held, h.memo.lru.Len())
		})
	}
}

// TestMemoFollowsZoneSwap: a name whose address changes in the next state
// is answered from the new zone as soon as it is swapped in.
func TestMemoFollowsZoneSwap(t *testing.T) {
	m := demoMaster(t)
	addr := serveAuthority(t, zones.NewAuthority(m.Store()))

	checkDig(t, addr, []string{"nginx.marathon.mesos", "A"}, "NOERROR", true, "10.3.0.3", false)
	checkDig(t, addr, []string{"nginx.marathon.mesos", "A"}, "NOERROR", true, "10.3.0.3", false)
	moved := bytes.Replace(DemoState, []byte(`"10.3.0.3"`), []byte(`"10.3.0.99"`), 1)
	require.NotEqual(t, DemoState, moved)
	m.UseState(moved)
	require.NoError(t, m.Poll(t.Context()))
	checkDig(t, addr, []string{"nginx.marathon.mesos", "A"}, "NOERROR", true, "10.3.0.99", false)
	checkDig(t, addr, []string{"nginx.marathon.mesos", "A"}, "NOERROR", true, "10.3.0.99", false)
}

// TestMemoKeepsShuffling: names with several records are kept in the memo,
// and their answers still come in varying order, as Mesos-DNS serves them;
// every reply holds the same records as the general path's.
func TestMemoKeepsShuffling(t *testing.T) {
	m := demoMaster(t)
	auth := zones.NewAuthority(m.Store())
	general := DNSHandler{Auth: auth}

	for _, tc := range []struct {
		name  string
		qtype uint16
	}{
		{"liquor-store.marathon.mesos.", dns.TypeA},
		{"_car-store._tcp.marathon.mesos.", dns.TypeSRV},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewDNSHandler(auth, nil)
			q := new(dns.Msg)
			q.SetQuestion(tc.name, tc.qtype)
			q.SetEdns0(1232, false)
			wire, err := q.Pack()
			require.NoError(t, err)
			// canon returns the answers in their order, and the answers
			// sorted followed by the rest of the message.
			canon := func(reply []byte) (order, rest []string) {
				var r dns.Msg
				require.NoError(t, r.Unpack(reply))
				for _, rr := range r.Answer {
					order = append(order, rr.String())
				}
				rest = slices.Sorted(slices.Values(order))
				r.Answer = nil
				return order, append(rest, r.String())
			}
			want, ok := general.ServeFast(&server.Request{Msg: wire}, nil)
			require.True(t, ok)
			_, wantRest := canon(want)
			var orders [][]string
			for range 40 {
				got, ok := h.ServeFast(&server.Request{Msg: wire}, make([]byte, 0, 4096))
				require.True(t, ok)
				order, rest := canon(got)
				require.Equal(t, wantRest, rest)
				if !slices.ContainsFunc(orders, func(o []string) bool { return slices.Equal(o, order) }) {
					orders = append(orders, order)
				}
			}
			require.Equal(t, 1, h.memo.lru.Len(), "kept in the memo")
			// Two records, 40 queries: both orders appear unless the
			// shuffle is gone (the chance that it is not is 2^-39).
			require.Len(t, orders, 2, "orders seen: %v", orders)
		})
	}
}

// TestMemoTooLargeForUDP: a kept reply that a UDP client's buffer cannot
// take goes the general path (which compresses it, or truncates it record
// by record), and the kept one is not built and stored again for each
// such query.
func TestMemoTooLargeForUDP(t *testing.T) {
	// 30 agents: slave.mesos is between 512 and 1232 bytes.
	var slaves []string
	for i := range 30 {
		slaves = append(slaves, `{"id":"s`+strconv.Itoa(i)+`","pid":"slave(1)@10.9.0.`+strconv.Itoa(i+1)+`:5051"}`)
	}
	m := newMaster(t, masterConfig(t, []string{"127.0.0.1:5050"}, ""))
	m.UseState([]byte(`{"leader":"master@127.0.0.1:5050","slaves":[` + strings.Join(slaves, ",") + `]}`))
	require.NoError(t, m.Poll(t.Context()))
	auth := zones.NewAuthority(m.Store())
	general := DNSHandler{Auth: auth}
	h := NewDNSHandler(auth, nil)
	q := new(dns.Msg)
	q.SetQuestion("slave.mesos.", dns.TypeA)
	wire, err := q.Pack()
	require.NoError(t, err)

	tcp, ok := h.ServeFast(&server.Request{Msg: wire, TCP: true}, nil)
	require.True(t, ok)
	require.Greater(t, len(tcp), 512)
	require.LessOrEqual(t, len(tcp), memoMaxReply)
	require.Equal(t, 1, h.memo.lru.Len())
	kept := h.memo.lru.Values()[0]
	for range 3 {
		want, ok := general.ServeFast(&server.Request{Msg: wire}, nil)
		require.True(t, ok)
		got, ok := h.ServeFast(&server.Request{Msg: wire}, nil)
		require.True(t, ok)
		var w, r dns.Msg
		require.NoError(t, w.Unpack(want))
		require.NoError(t, r.Unpack(got))
		require.LessOrEqual(t, len(got), 512)
		require.Equal(t, len(want), len(got))
		require.Equal(t, w.Truncated, r.Truncated)
		require.Len(t, r.Answer, len(w.Answer))
		require.Same(t, kept, h.memo.lru.Values()[0], "the kept reply is not stored again")
	}
}
