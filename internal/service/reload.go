package service

import (
	"context"
	"log/slog"
)

// Reloader runs configuration reloads one at a time, whatever triggers
// them (SIGHUP, a watched file changing), and reports each: a log line,
// RELOADING=1 then READY=1 to systemd, and the outcome to Observe.
type Reloader struct {
	// Reload re-reads and validates the configuration and, only if it is
	// valid, swaps it in. An error means it was refused and the running
	// configuration is untouched. The returned string is the new status.
	Reload func(ctx context.Context, reason string) (status string, err error)
	// Notifier, Log and Observe are optional.
	Notifier *Notifier
	Log      *slog.Logger
	Observe  func(error)

	trigger chan string
}

// NewReloader returns a Reloader calling reload.
func NewReloader(reload func(ctx context.Context, reason string) (string, error)) *Reloader {
	return &Reloader{Reload: reload, trigger: make(chan string, 1)}
}

// Trigger asks for a reload without blocking. Triggers arriving while one
// is pending are merged into it: the reload reads the latest state anyway.
func (r *Reloader) Trigger(reason string) {
	select {
	case r.trigger <- reason:
	default:
	}
}

// Run performs triggered reloads until ctx is done. A reload in progress
// when ctx is done runs to its end (with its log line and READY=1) before
// Run returns, so a caller that waits for Run never stops serving in the
// middle of one.
func (r *Reloader) Run(ctx context.Context) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		// A trigger pending at shutdown is not started.
		if ctx.Err() != nil {
			return
		}
		var reason string
		select {
		case <-ctx.Done():
			return
		case reason = <-r.trigger:
		}
		if r.Notifier != nil {
			r.Notifier.Reloading()
		}
		status, err := r.Reload(ctx, reason)
		if r.Observe != nil {
			r.Observe(err)
		}
		if err != nil {
			log.Error("configuration reload refused; the running configuration keeps serving", "reason", reason, "err", err)
			if r.Notifier != nil {
				// READY=1 ends the reload even when it was refused:
				// the service is still up, with the old configuration.
				r.Notifier.Reloaded("reload refused (" + err.Error() + "); " + status)
			}
			continue
		}
		log.Info("configuration reloaded", "reason", reason, "status", status)
		if r.Notifier != nil {
			r.Notifier.Reloaded(status)
		}
	}
}
