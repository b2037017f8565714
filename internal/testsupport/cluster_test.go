package testsupport

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func TestParseDig(t *testing.T) {
	const answered = `
; <<>> DiG 9.18.49-1~deb12u3-Debian <<>> @169.254.20.10 -p 53 +time=2 +tries=1 _chronos._tcp.marathon.mesos SRV
; (1 server found)
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 2

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;_chronos._tcp.marathon.mesos.	IN	SRV

;; ANSWER SECTION:
_chronos._tcp.marathon.mesos. 1	IN	SRV	0 1 31332 chronos-rx8q6-0.marathon.slave.mesos.

;; ADDITIONAL SECTION:
chronos-rx8q6-0.marathon.slave.mesos. 1	IN A	1.2.3.11

;; Query time: 0 msec
;; SERVER: 169.254.20.10#53(169.254.20.10) (UDP)
;; WHEN: Mon Nov 23 02:40:00 UTC 2026
;; MSG SIZE  rcvd: 150
`
	const negative = `
;; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 7
;; flags: qr rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1

;; AUTHORITY SECTION:
mesos.			60	IN	SOA	ns1.mesos. root.ns1.mesos. 5 60 600 86400 60
`
	tests := []struct {
		name                 string
		out                  string
		rcode                string
		aa                   bool
		answer, auth, addl   int
		firstAnswer, wantErr string
	}{
		{name: "answer and additional", out: answered, rcode: "NOERROR", aa: true, answer: 1, addl: 1,
			firstAnswer: "_chronos._tcp.marathon.mesos.\t1\tIN\tSRV\t0 1 31332 chronos-rx8q6-0.marathon.slave.mesos."},
		{name: "negative with SOA", out: negative, rcode: "NXDOMAIN", auth: 1},
		{name: "no reply", out: ";; communications error to 192.0.2.1#53: timed out\n;; no servers could be reached\n", wantErr: "no dig header"},
		{name: "bad record", out: ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n\n;; ANSWER SECTION:\nnot a record\n", wantErr: "parsing dig record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseDig(tc.out)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.rcode, r.Rcode)
			require.Equal(t, tc.aa, r.HasFlag("aa"))
			require.Len(t, r.Answer, tc.answer)
			require.Len(t, r.Authority, tc.auth)
			require.Len(t, r.Additional, tc.addl)
			if tc.firstAnswer != "" {
				require.Equal(t, tc.firstAnswer, r.Answer[0].String())
			}
			if tc.auth > 0 {
				require.Equal(t, dns.TypeSOA, r.Authority[0].Header().Rrtype)
			}
		})
	}
}

// TestSegment: two namespaces on one bridge reach each other, a fake
// upstream bound inside one of them with Do serves the other, and a link
// taken down silences it until it comes back.
func TestSegment(t *testing.T) {
	seg := NewSegment(t)
	client, server := NewNetNS(t), NewNetNS(t)
	seg.Attach(t, client, "eth0", "192.0.2.1/24")
	link := seg.Attach(t, server, "eth0", "192.0.2.2/24")
	var up *Upstream
	server.Do(t, func() { up = StartUpstream(t, WithAddr("192.0.2.2:53")) })

	ask := func() (DigResult, error) {
		out, err := client.Dig(t, "192.0.2.2", "host.example", "A", "+time=1")
		if err != nil {
			return DigResult{}, err
		}
		return ParseDig(out)
	}
	r, err := ask()
	require.NoError(t, err)
	require.Equal(t, "NOERROR", r.Rcode)
	require.Len(t, r.Answer, 1)
	require.Equal(t, DefaultIP.String(), r.Answer[0].(*dns.A).A.String())
	require.Equal(t, 1, up.Queries())

	link.Down(t)
	_, err = ask()
	require.Error(t, err, "a server whose link is down must not answer")
	link.Up(t)
	r, err = ask()
	require.NoError(t, err)
	require.Equal(t, "NOERROR", r.Rcode)
}
