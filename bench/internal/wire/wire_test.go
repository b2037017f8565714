package wire

import (
	"net"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func TestSeqName(t *testing.T) {
	for _, tc := range []struct {
		i    uint64
		want string
	}{
		{0, "a000000.example.com."},
		{42, "a000042.example.com."},
		{SeqNamesPerLetter - 1, "a999999.example.com."},
		{SeqNamesPerLetter, "b000000.example.com."},
		{25*SeqNamesPerLetter + 7, "z000007.example.com."},
		{26 * SeqNamesPerLetter, "a000000.example.com."},
	} {
		b := SeqName(nil, tc.i)
		require.Len(t, b, SeqNameLen)
		name, off, err := dns.UnpackDomainName(b, 0)
		require.NoError(t, err)
		require.Equal(t, len(b), off)
		require.Equal(t, tc.want, name)
	}
}

func TestAppendQueryParses(t *testing.T) {
	q := AppendQuery(nil, 0xbeef, SeqName(nil, 7), dns.TypeAAAA)
	m := new(dns.Msg)
	require.NoError(t, m.Unpack(q))
	require.Equal(t, uint16(0xbeef), m.Id)
	require.True(t, m.RecursionDesired)
	require.Equal(t, []dns.Question{{Name: "a000007.example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET}}, m.Question)
}

func TestAppendReply(t *testing.T) {
	r := Reply{TTL: 300, A: [4]byte{192, 0, 2, 1}}
	edns := new(dns.Msg)
	edns.SetQuestion("MiXeD.Example.ORG.", dns.TypeA)
	edns.SetEdns0(4096, false)
	for _, tc := range []struct {
		name    string
		query   *dns.Msg
		answers int
		edns    bool
	}{
		{"A", new(dns.Msg).SetQuestion("a000001.example.com.", dns.TypeA), 1, false},
		{"AAAA is NODATA", new(dns.Msg).SetQuestion("a000001.example.com.", dns.TypeAAAA), 0, false},
		{"EDNS echoed, casing kept", edns, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.query.Id = 4242
			raw, err := tc.query.Pack()
			require.NoError(t, err)
			prefix := []byte("keep")
			out, ok := r.AppendReply(prefix, raw)
			require.True(t, ok)
			require.Equal(t, "keep", string(out[:4]))
			m := new(dns.Msg)
			require.NoError(t, m.Unpack(out[4:]))
			require.True(t, m.Response)
			require.True(t, m.RecursionAvailable)
			require.True(t, m.RecursionDesired)
			require.Equal(t, uint16(4242), m.Id)
			require.Equal(t, dns.RcodeSuccess, m.Rcode)
			require.Equal(t, tc.query.Question, m.Question)
			require.Len(t, m.Answer, tc.answers)
			if tc.answers == 1 {
				a := m.Answer[0].(*dns.A)
				require.Equal(t, tc.query.Question[0].Name, a.Hdr.Name)
				require.Equal(t, uint32(300), a.Hdr.Ttl)
				require.True(t, a.A.Equal(net.IPv4(192, 0, 2, 1)))
			}
			if tc.edns {
				require.NotNil(t, m.IsEdns0())
				require.Equal(t, uint16(1232), m.IsEdns0().UDPSize())
			} else {
				require.Nil(t, m.IsEdns0())
			}
			h, ok := ParseHeader(out[4:])
			require.True(t, ok)
			require.Equal(t, Header{ID: 4242, Rcode: 0, Answers: tc.answers}, h)
		})
	}
}

func TestAppendReplyRejectsMalformed(t *testing.T) {
	good := AppendQuery(nil, 1, SeqName(nil, 1), dns.TypeA)
	twoQ := append([]byte(nil), good...)
	twoQ[5] = 2
	pointer := append(append([]byte(nil), good[:HeaderLen]...), 0xc0, 0x0c, 0, 1, 0, 1)
	long := append([]byte(nil), good[:HeaderLen]...)
	for range 130 {
		long = append(long, 1, 'x')
	}
	long = append(long, 0, 0, 1, 0, 1)
	response := append([]byte(nil), good...)
	response[2] |= 0x80
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"header only", good[:HeaderLen]},
		{"truncated name", good[:HeaderLen+5]},
		{"no type and class", good[:len(good)-3]},
		{"two questions", twoQ},
		{"compression pointer", pointer},
		{"name over 255 bytes", long},
		{"a response", response},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := Reply{}.AppendReply(nil, tc.msg)
			require.False(t, ok)
			require.Empty(t, out)
		})
	}
}

func TestParseHeaderRejectsQueries(t *testing.T) {
	_, ok := ParseHeader(AppendQuery(nil, 1, SeqName(nil, 1), dns.TypeA))
	require.False(t, ok)
	_, ok = ParseHeader([]byte{1, 2, 0x80})
	require.False(t, ok)
}

func TestPercentiles(t *testing.T) {
	hundred := make([]uint32, 100)
	for i := range hundred {
		hundred[i] = uint32(100 - i) // reversed: Percentiles sorts
	}
	for _, tc := range []struct {
		name    string
		samples []uint32
		qs      []float64
		want    []uint32
	}{
		{"none", nil, []float64{0.5, 0.99}, []uint32{0, 0}},
		{"one", []uint32{7}, []float64{0.5, 0.999}, []uint32{7, 7}},
		{"hundred", hundred, []float64{0.01, 0.5, 0.99, 0.999, 1}, []uint32{1, 50, 99, 100, 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Percentiles(tc.samples, tc.qs...))
		})
	}
}
