package testsupport

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func TestWithPaddedSize(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
		opts []QueryOption
	}{
		{"adds an OPT", 100, nil},
		{"keeps the OPT", 600, []QueryOption{WithEDNS(4096, true)}},
		{"largest TCP message", 65535, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := PackQuery(t, "padded.example.", dns.TypeA, append(tt.opts, WithPaddedSize(tt.size))...)
			require.Len(t, b, tt.size)
			var m dns.Msg
			require.NoError(t, m.Unpack(b))
			require.NotNil(t, m.IsEdns0())
			require.Equal(t, "padded.example.", m.Question[0].Name)
		})
	}
	require.Panics(t, func() { NewQuery("padded.example.", dns.TypeA, WithPaddedSize(20)) })
}

func TestAppendTCPFrame(t *testing.T) {
	msg := make([]byte, 300)
	f := AppendTCPFrame([]byte{9}, msg)
	require.Equal(t, []byte{9, 1, 44}, f[:3])
	require.Len(t, f, 303)
}
