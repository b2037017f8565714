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

// SystemdRestarter restarts a unit through systemd's D-Bus API, or with
// systemctl when the bus cannot be reached (a minimal container, a bus
// that is down). A restart, not DC/OS's "systemctl kill -s SIGKILL": it
// works whatever the unit's Restart= setting and lets the proxy drain.
type SystemdRestarter struct {
	// Dial connects to the system bus. Default: dbus.NewSystemConnectionContext.
	Dial func(ctx context.Context) (*dbus.Conn, error)
	// Systemctl is the fallback command. Default: "systemctl".
	Systemctl string
	// Log receives the fallback notice. Default: slog.Default().
	Log *slog.Logger
}

// Restart implements Restarter: it returns once systemd reports the job
// done, or with the reason it was not.
func (r *SystemdRestarter) Restart(ctx context.Context, unit string) error {
	dial := r.Dial
	if dial == nil {
		dial = dbus.NewSystemConnectionContext
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
		return fmt.Errorf("restart %s over D-Bus: %w", unit, ctx.Err())
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
