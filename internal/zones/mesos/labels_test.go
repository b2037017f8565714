package mesos

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppendFitMatchesFit checks the buffer forms used by the generator
// against fitLast and fitFirst.
func TestAppendFitMatchesFit(t *testing.T) {
	long := strings.Repeat("x", 70)
	for _, name := range []string{"web", long, "big." + long, strings.Repeat("x", 52) + "-yyyy", "a.b", ""} {
		for _, slave := range []string{"20140803-194805-1-S12", "S3", "x-ÄB", "", "x-" + strings.Repeat("s", 57)} {
			want, wantOK := fitLast(name, "-ab3de-"+agentTail(slave))
			got, ok := appendFitLast([]byte("pre"), name, "ab3de", slave)
			require.Equal(t, wantOK, ok, "%q %q", name, slave)
			require.Equal(t, want, string(got)[3:], "%q %q", name, slave)
		}
		require.Equal(t, fitFirst(name), string(appendFitFirst(nil, name)))
	}
	require.Equal(t, "_"+strings.Repeat("x", 62)+".dog", string(appendFitFirst(nil, long+".dog")))
}
