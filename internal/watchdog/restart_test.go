package watchdog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeSystemctl writes an executable that records its arguments in a file
// and exits with the given status, printing msg.
func fakeSystemctl(t *testing.T, status int, msg string) (bin, record string) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "systemctl")
	record = filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" >> " + record + "\necho '" + msg + "' >&2\nexit " + string(rune('0'+status)) + "\n"
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, record
}

func TestSystemdRestarterFallsBackToSystemctl(t *testing.T) {
	noBus := func(context.Context) (SystemdConn, error) {
		return nil, errors.New("dial unix /run/dbus/system_bus_socket: no such file")
	}
	tests := []struct {
		name   string
		status int
		msg    string
		err    string
	}{
		{name: "ok", status: 0},
		{name: "unit missing", status: 5, msg: "Failed to restart nope.service: Unit nope.service not found.", err: "restart nope.service: exit status 5: Failed to restart nope.service: Unit nope.service not found."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin, record := fakeSystemctl(t, tc.status, tc.msg)
			r := &SystemdRestarter{Dial: noBus, Systemctl: bin, Log: slog.New(slog.DiscardHandler)}
			unit := "spartan.service"
			if tc.err != "" {
				unit = "nope.service"
			}
			err := r.Restart(t.Context(), unit)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			args, err := os.ReadFile(record)
			require.NoError(t, err)
			require.Equal(t, "restart "+unit+"\n", string(args))
		})
	}
}

// fakeConn stands for systemd on D-Bus: RestartUnitContext records the
// request and fails with err, or sends result on the job channel from a
// goroutine of its own, as the connection's job listener does (no result
// when result is empty: the job never ends).
type fakeConn struct {
	err    error
	result string

	mu     sync.Mutex
	calls  []string
	closed int
	sent   sync.WaitGroup
}

func (c *fakeConn) RestartUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	c.mu.Lock()
	c.calls = append(c.calls, name+" "+mode)
	c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.result != "" {
		c.sent.Add(1)
		go func() {
			defer c.sent.Done()
			ch <- c.result
		}()
	}
	return 42, nil
}

func (c *fakeConn) Close() {
	c.mu.Lock()
	c.closed++
	c.mu.Unlock()
}

func TestSystemdRestarterDBus(t *testing.T) {
	tests := []struct {
		name    string
		conn    *fakeConn
		ctxDone bool
		err     string
	}{
		{name: "job done", conn: &fakeConn{result: "done"}},
		{name: "job failed", conn: &fakeConn{result: "failed"}, err: "restart spartan.service over D-Bus: job failed"},
		{name: "job timeout", conn: &fakeConn{result: "timeout"}, err: "job timeout"},
		{name: "job canceled", conn: &fakeConn{result: "canceled"}, err: "job canceled"},
		{name: "job dependency", conn: &fakeConn{result: "dependency"}, err: "job dependency"},
		{name: "request refused", conn: &fakeConn{err: errors.New("Unit spartan.service not found.")},
			err: "restart spartan.service over D-Bus: Unit spartan.service not found."},
		{name: "job never ends", conn: &fakeConn{}, ctxDone: true, err: "waiting for the job: context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// systemctl must not run on any of these paths: systemd was
			// reached.
			bin, record := fakeSystemctl(t, 0, "")
			r := &SystemdRestarter{
				Dial:      func(context.Context) (SystemdConn, error) { return tc.conn, nil },
				Systemctl: bin,
				Log:       slog.New(slog.DiscardHandler),
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.ctxDone {
				cancel()
			}
			err := r.Restart(ctx, "spartan.service")
			tc.conn.sent.Wait()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			if tc.ctxDone {
				require.ErrorIs(t, err, context.Canceled)
			}
			tc.conn.mu.Lock()
			defer tc.conn.mu.Unlock()
			require.Equal(t, []string{"spartan.service replace"}, tc.conn.calls)
			require.Equal(t, 1, tc.conn.closed, "the connection is closed")
			_, err = os.Stat(record)
			require.ErrorIs(t, err, os.ErrNotExist, "no systemctl fallback once systemd was reached")
		})
	}
}

// fakeRestarter records restart requests.
type fakeRestarter struct {
	units chan string
	err   error
}

func newFakeRestarter() *fakeRestarter { return &fakeRestarter{units: make(chan string, 100)} }

func (f *fakeRestarter) Restart(_ context.Context, unit string) error {
	f.units <- unit
	return f.err
}
