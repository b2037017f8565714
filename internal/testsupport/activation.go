package testsupport

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SocketHolder plays systemd's part in socket activation: it owns a UDP
// and a TCP socket bound to the same loopback address and passes them to
// the processes it starts (LISTEN_FDS=2, LISTEN_FDNAMES=udp:tcp; fd 3 is
// UDP, fd 4 TCP). Because the holder keeps the sockets open, a child can
// be SIGKILLed and replaced while queries keep queueing in the sockets.
type SocketHolder struct {
	Addr string // host:port of both sockets
	udp  *os.File
	tcp  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// NewSocketHolder binds the sockets on 127.0.0.1 with a free port. They
// are closed, and any child killed, when the test ends.
func NewSocketHolder(t testing.TB) *SocketHolder {
	t.Helper()
	pc, ln := ListenBoth(t, nil, "127.0.0.1")
	defer pc.Close()
	defer ln.Close()
	h := &SocketHolder{Addr: pc.LocalAddr().String()}
	var err error
	h.udp, err = pc.(*net.UDPConn).File()
	require.NoError(t, err)
	h.tcp, err = ln.(*net.TCPListener).File()
	require.NoError(t, err)
	t.Cleanup(func() {
		h.Kill()
		h.udp.Close()
		h.tcp.Close()
	})
	return h
}

// Start starts bin with args and the sockets, with extra environment
// entries env, and returns once the process is running. Its output goes to
// the test log. Start fails the test if a previous child is still running.
//
// LISTEN_PID must be the child's own pid, which is only known after fork:
// a shell sets it and execs bin, keeping its pid.
func (h *SocketHolder) Start(t testing.TB, env []string, bin string, args ...string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Nil(t, h.cmd, "a child is already running")
	script := `LISTEN_PID=$$ exec "$0" "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, bin}, args...)...)
	cmd.Env = append(append(os.Environ(), "LISTEN_FDS=2", "LISTEN_FDNAMES=udp:tcp"), env...)
	cmd.ExtraFiles = []*os.File{h.udp, h.tcp}
	w := &testWriter{t: t, prefix: fmt.Sprintf("[%s] ", shortName(bin))}
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	h.cmd = cmd
	h.done = make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		w.stop()
		close(done)
	}(h.done)
}

// Pid returns the running child's pid, 0 when none.
func (h *SocketHolder) Pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

// Signal sends sig to the running child.
func (h *SocketHolder) Signal(sig syscall.Signal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return fmt.Errorf("no child running")
	}
	return h.cmd.Process.Signal(sig)
}

// Wait waits for the running child to exit and returns its exit state.
func (h *SocketHolder) Wait(ctx context.Context) (*os.ProcessState, error) {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.mu.Unlock()
	if cmd == nil {
		return nil, fmt.Errorf("no child running")
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h.mu.Lock()
	if h.cmd == cmd {
		h.cmd = nil
	}
	h.mu.Unlock()
	return cmd.ProcessState, nil
}

// Kill SIGKILLs the running child, if any, and waits for it to exit.
func (h *SocketHolder) Kill() {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.cmd = nil
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

func shortName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// testWriter sends a child's output to the test log, line by line, until
// the child is gone (logging after the test ended would panic).
type testWriter struct {
	t       testing.TB
	prefix  string
	mu      sync.Mutex
	partial string
	stopped bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return len(b), nil
	}
	s := w.partial + string(b)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		w.t.Log(w.prefix + s[:i])
		s = s[i+1:]
	}
	w.partial = s
	return len(b), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.partial != "" {
		w.t.Log(w.prefix + w.partial)
	}
	w.stopped = true
}
