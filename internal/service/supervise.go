package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Supervisor drives the readiness, watchdog and status protocol of one
// process.
type Supervisor struct {
	// Check verifies the query path end to end; SelfQueryAll against
	// every one of the proxy's own listeners is the intended check. It
	// must honour ctx, which bounds one check.
	Check func(ctx context.Context) error
	// Status returns the one-line status summary (upstreams healthy,
	// cache entries, zone serial...). Optional.
	Status func() string
	// Notifier sends the messages.
	Notifier *Notifier
	// Log receives one line per state change.
	Log *slog.Logger
	// StatusInterval is how often the status and, without a watchdog, the
	// health are refreshed. Default: 10s.
	StatusInterval time.Duration
	// ReadyRetry is the pause between start-up checks. Default: 50ms.
	ReadyRetry time.Duration

	healthy atomic.Bool
}

// Healthy reports whether the last self-query succeeded: false before
// READY=1 and while pings are withheld.
func (s *Supervisor) Healthy() bool { return s.healthy.Load() }

// Run waits until Check passes and sends READY=1 with the status; then,
// until ctx is done, checks every WatchdogSec/2 (from WATCHDOG_USEC) and
// sends WATCHDOG=1 only after a check that passed, refreshing STATUS= when
// it changes. When ctx is done it sends STOPPING=1 and returns nil; the
// only error is a bad WATCHDOG_USEC.
func (s *Supervisor) Run(ctx context.Context) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := s.Notifier
	if n == nil {
		n = &Notifier{Log: log}
	}
	defer n.Stopping()
	defer s.healthy.Store(false)

	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("service: watchdog: %w", err)
	}
	interval := s.StatusInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if wd > 0 {
		interval = min(interval, wd/2)
	}
	// A check may take at most half the ping interval, so a ping still
	// goes out well before WatchdogSec even after a slow check.
	checkTimeout := min(interval/2, 2*time.Second)
	retry := s.ReadyRetry
	if retry <= 0 {
		retry = 50 * time.Millisecond
	}

	check := func() error {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		return s.Check(cctx)
	}
	status := func() string {
		if s.Status == nil {
			return "serving"
		}
		return s.Status()
	}

	// Start-up: no READY=1 before the query path answers. TimeoutStartSec=
	// bounds this from the outside.
	var lastErr error
	for {
		err := check()
		if err == nil {
			break
		}
		if lastErr == nil || err.Error() != lastErr.Error() {
			log.Info("waiting for the self-query to succeed before reporting ready", "err", err)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
	s.healthy.Store(true)
	st := status()
	n.Ready(st)
	log.Info("ready", "status", st, "watchdog", wd)
	if wd > 0 {
		n.Watchdog()
	}

	t := time.NewTicker(interval)
	defer t.Stop()
	healthy := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := check()
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil
		}
		switch {
		case err != nil && healthy:
			healthy = false
			s.healthy.Store(false)
			log.Error("self-query failed: withholding watchdog pings so systemd restarts a wedged process", "err", err)
			n.Status("unhealthy: " + err.Error())
			st = ""
		case err == nil && !healthy:
			healthy = true
			s.healthy.Store(true)
			log.Info("self-query succeeds again")
		}
		if !healthy {
			continue
		}
		if wd > 0 {
			n.Watchdog()
		}
		if next := status(); next != st {
			st = next
			n.Status(st)
		}
	}
}
