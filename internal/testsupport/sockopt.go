package testsupport

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// ReceiveBuffer returns c's SO_RCVBUF as the kernel reports it: twice the
// size set, the other half being the kernel's bookkeeping.
func ReceiveBuffer(t testing.TB, c *net.UDPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var v int
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}))
	require.NoError(t, serr)
	return v
}
