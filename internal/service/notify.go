// Package service integrates spartan with systemd: sd_notify readiness,
// liveness (watchdog) and status, socket activation, and logging to the
// journal.
//
// Readiness and liveness are not self-declared: READY=1 is sent only once a
// query for ready.spartan is answered through every one of the proxy's own
// listeners, UDP and TCP, and WATCHDOG=1 only while that keeps being true,
// so a process with one wedged or unreachable listener stops pinging and
// systemd restarts it.
package service

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify messages to the service manager named by
// NOTIFY_SOCKET. Without NOTIFY_SOCKET (not started by systemd) every
// method is a no-op. Send errors are logged, never fatal: failing to talk
// to systemd must not stop DNS.
type Notifier struct {
	Log *slog.Logger
}

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil && n.Log != nil {
		n.Log.Warn("sd_notify failed", "state", firstLine(state), "err", err)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// statusLine makes s safe as a STATUS= value: one line.
func statusLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Ready tells systemd the service is up, with a status line.
func (n *Notifier) Ready(status string) {
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + statusLine(status))
}

// Status updates the one-line status shown by systemctl status.
func (n *Notifier) Status(status string) {
	n.send("STATUS=" + statusLine(status))
}

// Watchdog pings the service manager's watchdog.
func (n *Notifier) Watchdog() { n.send(daemon.SdNotifyWatchdog) }

// Stopping tells systemd the service is shutting down.
func (n *Notifier) Stopping() {
	n.send(daemon.SdNotifyStopping + "\nSTATUS=stopping")
}

// Reloading tells systemd a configuration reload started; Reloaded ends
// it. Type=notify-reload (systemd 253+) requires the MONOTONIC_USEC field,
// older versions ignore it.
func (n *Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Reloaded ends a reload started with Reloading, with the new status.
func (n *Notifier) Reloaded(status string) { n.Ready(status) }

// Errorf reports a fatal error as the service's status before exiting.
func (n *Notifier) Errorf(format string, args ...any) {
	n.send("STATUS=" + statusLine(fmt.Sprintf(format, args...)))
}
