package testsupport

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// NotifySocket is a real sd_notify socket, as systemd provides with
// NOTIFY_SOCKET: a unixgram socket collecting every datagram sent to it.
type NotifySocket struct {
	Path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	cond *sync.Cond
	done bool
}

// NewNotifySocket creates the socket in a temporary directory; it is
// closed when the test ends. Use Env() for a child process or
// t.Setenv("NOTIFY_SOCKET", s.Path) in process.
func NewNotifySocket(t testing.TB) *NotifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	s := &NotifySocket{Path: path, conn: conn}
	s.cond = sync.NewCond(&s.mu)
	go s.read()
	t.Cleanup(func() { conn.Close() })
	return s
}

// Env returns the NOTIFY_SOCKET assignment for a child's environment.
func (s *NotifySocket) Env() string { return "NOTIFY_SOCKET=" + s.Path }

func (s *NotifySocket) read() {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := s.conn.ReadFromUnix(buf)
		s.mu.Lock()
		if err != nil {
			s.done = true
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		// One datagram may hold several newline-separated assignments;
		// each is recorded as a message of its own, in order.
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line != "" {
				s.msgs = append(s.msgs, line)
			}
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// Messages returns every assignment received so far, in order.
func (s *NotifySocket) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// WaitFor waits until an assignment at index from or later satisfies
// match and returns its index. It fails the test after timeout (a
// generous bound against hanging, not a performance assertion).
func (s *NotifySocket) WaitFor(t testing.TB, from int, timeout time.Duration, match func(string) bool) int {
	t.Helper()
	i, err := s.waitFor(from, timeout, match)
	require.NoError(t, err)
	return i
}

// WaitForMessage is WaitFor for an exact assignment such as "READY=1".
func (s *NotifySocket) WaitForMessage(t testing.TB, from int, timeout time.Duration, msg string) int {
	t.Helper()
	i, err := s.waitFor(from, timeout, func(m string) bool { return m == msg })
	require.NoError(t, err, "waiting for %s; got %q", msg, s.Messages())
	return i
}

func (s *NotifySocket) waitFor(from int, timeout time.Duration, match func(string) bool) (int, error) {
	timer := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := from; ; {
		for ; i < len(s.msgs); i++ {
			if match(s.msgs[i]) {
				return i, nil
			}
		}
		if s.done {
			return -1, errors.New("notify socket closed")
		}
		if !time.Now().Before(deadline) {
			return -1, errors.New("timed out waiting for an sd_notify message")
		}
		s.cond.Wait()
	}
}
