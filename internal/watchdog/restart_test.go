package watchdog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/coreos/go-systemd/v22/dbus"
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
	noBus := func(context.Context) (*dbus.Conn, error) {
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
