package testsupport

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

func TestSweepLeakedNetNS(t *testing.T) {
	SkipUnlessRoot(t, "ip netns (network namespaces)")
	if _, err := exec.LookPath("ip"); err != nil {
		SkipOrFail(t, "skipping: ip(8) not found (apt-get install iproute2)")
	}
	dead := deadPID(t)
	for _, tc := range []struct {
		name  string
		swept bool
	}{
		{name: fmt.Sprintf("%s%d-0badf00d", NetNSPrefix, dead), swept: true},
		{name: fmt.Sprintf("%s%d-0badf00d", NetNSPrefix, os.Getpid()), swept: false},
		{name: fmt.Sprintf("%s%d-0badf00d", NetNSPrefix, os.Getppid()), swept: false},
		{name: fmt.Sprintf("other-test-%d-0badf00d", dead), swept: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("ip", "netns", "add", tc.name).CombinedOutput()
			if err != nil {
				SkipOrFail(t, "skipping: ip netns add failed: %v: %s", err, out)
			}
			ns := &NetNS{Name: tc.name}
			t.Cleanup(func() {
				if _, err := os.Stat(filepath.Join("/run/netns", tc.name)); err == nil {
					require.NoError(t, ns.remove())
				}
			})
			ns.EtcFile(t, "resolv.conf", []byte("nameserver 192.0.2.1\n"))

			removed := SweepLeakedNetNS(time.Now())
			_, statErr := os.Stat(filepath.Join("/run/netns", tc.name))
			_, etcErr := os.Stat(ns.EtcDir())
			if tc.swept {
				// A concurrently starting test binary may have swept it
				// first; either way it is gone.
				require.ErrorIs(t, statErr, os.ErrNotExist)
				require.ErrorIs(t, etcErr, os.ErrNotExist)
			} else {
				require.NotContains(t, removed, tc.name)
				require.NoError(t, statErr)
				require.NoError(t, etcErr)
			}
		})
	}
}

func TestNetnsLeakedLegacyName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leaked bool
	}{
		{name: NetNSPrefix + "zz", leaked: false},
		{name: NetNSPrefix + "x-1", leaked: false},
		{name: "unrelated", leaked: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.leaked, netnsLeaked(tc.name, time.Now()))
		})
	}
}
