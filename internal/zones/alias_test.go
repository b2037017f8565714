package zones

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// TestAuthorityAliases answers names through aliases, chained ones too:
// the reply keeps the question's name and renames every name below the
// alias target back, on copies (the zone's records stay as they were).
func TestAuthorityAliases(t *testing.T) {
	store := NewStore(testZone(t))
	auth := NewAuthority(store).WithAliases(
		Alias{From: "mesos.example.", To: "MESOS."},
		Alias{From: "example.global.", To: "example.", Rewrite: func(rr dns.RR) { rr.Header().Ttl = 5 }},
		// A loop leads nowhere.
		Alias{From: "a.loop.", To: "b.loop."}, Alias{From: "b.loop.", To: "a.loop."},
	)
	ask := func(name string, qtype uint16) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		return auth.Reply(q, true)
	}

	r := ask("_web._tcp.marathon.mesos.example.", dns.TypeSRV)
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.True(t, r.Authoritative)
	require.Len(t, r.Answer, 1)
	require.Equal(t, "_web._tcp.marathon.mesos.example.", r.Answer[0].Header().Name)
	require.Equal(t, "web-abcde-s1.marathon.mesos.example.", r.Answer[0].(*dns.SRV).Target)
	require.Equal(t, uint32(60), r.Answer[0].Header().Ttl)
	require.Len(t, r.Extra, 1)
	require.Equal(t, "web-abcde-s1.marathon.mesos.example.", r.Extra[0].Header().Name)

	// Two aliases in a row, with the second's rewrite.
	r = ask("web.marathon.mesos.example.global.", dns.TypeA)
	require.Len(t, r.Answer, 2)
	for _, a := range r.Answer {
		require.Equal(t, "web.marathon.mesos.example.global.", a.Header().Name)
		require.Equal(t, uint32(5), a.Header().Ttl)
	}

	// Negative answers carry the renamed SOA.
	r = ask("nosuch.mesos.example.", dns.TypeA)
	require.Equal(t, dns.RcodeNameError, r.Rcode)
	require.Len(t, r.Ns, 1)
	soa := r.Ns[0].(*dns.SOA)
	require.Equal(t, "mesos.example.", soa.Hdr.Name)
	require.Equal(t, "ns1.mesos.example.", soa.Ns)
	require.Equal(t, "root.ns1.mesos.example.", soa.Mbox)

	// The zone itself is untouched.
	r = ask("_web._tcp.marathon.mesos.", dns.TypeSRV)
	require.Equal(t, "web-abcde-s1.marathon.mesos.", r.Answer[0].(*dns.SRV).Target)
	require.Equal(t, "ns1.mesos.", store.Load().SOA().Ns)

	for _, name := range []string{"x.a.loop.", "example.", "global.", "x.example."} {
		require.Equal(t, dns.RcodeRefused, ask(name, dns.TypeA).Rcode, name)
	}

	for name, apex := range map[string]bool{
		"mesos.": true, "MESOS.Example.": true, "mesos.example.global.": true,
		"web.marathon.mesos.example.": false, "example.": false, "a.loop.": false,
	} {
		require.Equal(t, apex, auth.IsApex(name), name)
	}
}
