package watchdog

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"
)

// Restarter restarts the proxy's service.
type Restarter interface {
	Restart(ctx context.Context, unit string) error
}

// SystemdConn is the part of a connection to systemd's D-Bus API that a
// restart uses; *dbus.Conn implements it.
type SystemdConn interface {
	// RestartUnitContext queues a restart job for name with the given
	// mode and sends the job's result ("done", "canceled", "timeout",
	// "failed", "dependency", "skipped") on ch when it ends.
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	// Close closes the connection.
	Close()
}

// DialSystemBus connects to systemd on the system bus.
func DialSystemBus(ctx context.Context) (SystemdConn, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return conn, nil
}

// SystemdRestarter restarts a unit through systemd's D-Bus API, or with
// systemctl when the bus cannot be reached (a minimal container, a bus
// that is down). A restart, not DC/OS's "systemctl kill -s SIGKILL": it
// works whatever the unit's Restart= setting and lets the proxy drain.
type SystemdRestarter struct {
	// Dial connects to systemd. Default: DialSystemBus.
	Dial func(ctx context.Context) (SystemdConn, error)
	// Systemctl is the fallback command. Default: "systemctl".
	Systemctl string
	// Log receives the fallback notice. Default: slog.Default().
	Log *slog.Logger
}

// Restart implements Restarter: it returns once systemd reports the job
// done, or with the reason it was not. Only a failure to connect falls
// back to systemctl; a refused request or a failed job is an error, as
// systemctl would talk to the same systemd.
func (r *SystemdRestarter) Restart(ctx context.Context, unit string) error {
	dial := r.Dial
	if dial == nil {
		dial = DialSystemBus
	}
	conn, err := dial(ctx)
	if err != nil {
		log := r.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("systemd D-Bus unavailable, falling back to systemctl", "err", err)
		return r.systemctl(ctx, unit)
	}
	defer conn.Close()
	// Buffered: the connection sends the result even when nobody waits
	// any more (ctx ended first).
	done := make(chan string, 1)
	if _, err := conn.RestartUnitContext(ctx, unit, "replace", done); err != nil {
		return fmt.Errorf("restart %s over D-Bus: %w", unit, err)
	}
	select {
	case res := <-done:
		if res != "done" {
			return fmt.Errorf("restart %s over D-Bus: job %s", unit, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("restart %s over D-Bus: waiting for the job: %w", unit, ctx.Err())
	}
}

func (r *SystemdRestarter) systemctl(ctx context.Context, unit string) error {
	bin := r.Systemctl
	if bin == "" {
		bin = "systemctl"
	}
	out, err := exec.CommandContext(ctx, bin, "restart", unit).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s restart %s: %w: %s", bin, unit, err, strings.TrimSpace(string(out)))
	}
	return nil
}
