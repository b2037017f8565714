// Package watchdog keeps resolv.conf pointing at the node's spartan proxy
// while it serves, and at the real upstream resolvers while it does not.
//
// Every Interval it asks each proxy address for ready.spartan (Prober); a
// Machine turns the observations into a state with hysteresis (FailAfter
// failures to go down, RecoverAfter successes to come back) and, when
// asked, a restart escalation; Content renders the file for the state and
// resolvconf.Manager writes it safely, saving the original the first time.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/spartan-dns/spartan/internal/resolvconf"
)

// restartTimeout bounds one restart request; systemd's own job timeouts
// apply beyond it.
const restartTimeout = 90 * time.Second

// Watchdog runs the health checks and manages the file.
type Watchdog struct {
	cfg       Config
	log       *slog.Logger
	prober    Prober
	restarter Restarter
	mgr       *resolvconf.Manager
	machine   Machine
	content   Content
	now       func() time.Time
	resolved  string

	// restartMu guards restartDone, which is non-nil once a restart has
	// been started and closed when that restart has ended: one at a time.
	restartMu   sync.Mutex
	restartDone chan struct{}
}

// Options replace the watchdog's collaborators, for tests.
type Options struct {
	// Prober defaults to a DNSProber of the configured proxy addresses.
	Prober Prober
	// Restarter defaults to a SystemdRestarter.
	Restarter Restarter
	// Now defaults to time.Now.
	Now func() time.Time
	// ResolvedConf is systemd-resolved's list of its upstream servers,
	// read while the proxy is down if the original names only resolved's
	// stub (see Content.Resolved). Defaults to ResolvedResolvConf.
	ResolvedConf string
}

// New returns a watchdog for a validated configuration.
func New(cfg Config, log *slog.Logger, opt Options) *Watchdog {
	w := &Watchdog{
		cfg:       cfg,
		log:       log,
		prober:    opt.Prober,
		restarter: opt.Restarter,
		now:       opt.Now,
		resolved:  opt.ResolvedConf,
		mgr:       &resolvconf.Manager{Path: cfg.ResolvConf, Symlink: resolvconf.SymlinkPolicy(cfg.Symlink)},
		machine: Machine{
			FailAfter:    cfg.FailAfter,
			RecoverAfter: cfg.RecoverAfter,
			RestartAfter: cfg.RestartAfter.D(),
		},
		content: Content{
			Path:      cfg.ResolvConf,
			Proxy:     uniqueIPs(cfg.Proxy),
			Upstreams: uniqueIPs(cfg.Upstreams),
		},
	}
	for _, o := range cfg.Options {
		w.content.Options = append(w.content.Options, resolvconf.ParseOption(o))
	}
	if w.prober == nil {
		w.prober = &DNSProber{Addrs: cfg.Proxy, Name: cfg.ReadyName, Timeout: cfg.Timeout.D()}
	}
	if w.restarter == nil {
		w.restarter = &SystemdRestarter{Log: log}
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.resolved == "" {
		w.resolved = ResolvedResolvConf
	}
	return w
}

// Run checks the proxy at once and then every Interval until ctx ends,
// keeping the file in line with the state. Failures to write are logged
// and retried on the next round. Run returns nil when ctx ends, after the
// restart in progress, if any, has seen ctx end and returned.
func (w *Watchdog) Run(ctx context.Context) error {
	defer w.WaitRestart()
	w.log.Info("watchdog started", "resolv_conf", w.cfg.ResolvConf, "proxy", w.cfg.Proxy,
		"upstreams", w.cfg.Upstreams, "interval", w.cfg.Interval, "fail_after", w.cfg.FailAfter,
		"recover_after", w.cfg.RecoverAfter, "restart_after", w.cfg.RestartAfter)
	t := time.NewTicker(w.cfg.Interval.D())
	defer t.Stop()
	for {
		if err := w.Round(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			w.log.Info("watchdog stopped", "state", w.machine.State())
			return nil
		case <-t.C:
		}
	}
}

// Once runs a single round: one check decides the state (there is no
// history to smooth), the file is brought in line and the result returned
// once a restart the round started, if any, has ended.
func (w *Watchdog) Once(ctx context.Context) (State, error) {
	err := w.Round(ctx)
	w.WaitRestart()
	return w.machine.State(), err
}

// Round runs one health check and brings the file in line with the
// resulting state, whether it changed or not: a file someone else
// rewrote is taken over again (its content becoming the new original).
// When the state machine asks for a restart, Round starts it after the
// write, in a goroutine of its own bound to ctx, and does not wait for
// it: a restart can take as long as systemd's job does, and meanwhile the
// file must already point at the upstreams and the checks go on. A
// restart asked for while another still runs is not started. WaitRestart
// waits for it.
func (w *Watchdog) Round(ctx context.Context) error {
	ok, perr := w.prober.Probe(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	step := w.machine.Observe(ok, w.now())
	switch {
	case step.Changed:
		w.log.Info("proxy state changed", "state", step.State, "probe_err", perr)
	case !ok:
		w.log.Warn("proxy health check failed", "state", step.State, "consecutive", step.Fails, "err", perr)
	default:
		w.log.Debug("proxy healthy", "state", step.State)
	}
	err := w.apply(step.State)
	if step.Restart {
		w.startRestart(ctx)
	}
	return err
}

// startRestart starts a restart in the background unless one is running.
func (w *Watchdog) startRestart(ctx context.Context) {
	w.restartMu.Lock()
	defer w.restartMu.Unlock()
	if w.restartDone != nil {
		select {
		case <-w.restartDone:
		default:
			w.log.Warn("proxy failing for too long, but the previous restart has not ended; not starting another",
				"unit", w.cfg.RestartUnit)
			return
		}
	}
	done := make(chan struct{})
	w.restartDone = done
	go func() {
		defer close(done)
		w.restart(ctx)
	}()
}

// WaitRestart returns once the restart Round started last, if any, has
// ended. Cancelling the context that Round was given makes it end.
func (w *Watchdog) WaitRestart() {
	w.restartMu.Lock()
	done := w.restartDone
	w.restartMu.Unlock()
	if done != nil {
		<-done
	}
}

func (w *Watchdog) restart(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	w.log.Warn("proxy failing for too long, restarting it", "unit", w.cfg.RestartUnit, "after", w.cfg.RestartAfter)
	if err := w.restarter.Restart(ctx, w.cfg.RestartUnit); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			w.log.Info("restart abandoned: the watchdog is stopping", "unit", w.cfg.RestartUnit)
			return
		}
		w.log.Error("restart failed", "unit", w.cfg.RestartUnit, "err", err)
		return
	}
	w.log.Info("restart done", "unit", w.cfg.RestartUnit)
}

// apply writes the file for state.
func (w *Watchdog) apply(state State) error {
	orig, saved, err := w.mgr.Original()
	if err != nil {
		return err
	}
	if saved {
		w.log.Info("saved the original resolv.conf", "path", w.mgr.OrigPath(),
			"nameservers", fmtAddrs(orig.Nameservers()), "search", orig.Search())
		for _, msg := range orig.Warnings() {
			w.log.Warn("original resolv.conf", "path", w.cfg.ResolvConf, "warning", msg)
		}
	}
	c := w.content
	c.Original = orig
	if state != Up && len(c.Upstreams) == 0 && onlyResolvedStubs(orig.Nameservers()) {
		c.Resolved = w.readResolved()
	}
	data, err := c.Render(state == Up)
	if errors.Is(err, ErrNoUpstreams) {
		return fmt.Errorf("proxy down, leaving %s as it is: %w", w.cfg.ResolvConf, err)
	}
	if err != nil {
		return err
	}
	out, err := w.mgr.Write(data)
	if err != nil {
		return err
	}
	if out != resolvconf.Unchanged {
		w.log.Info("rewrote resolv.conf", "path", w.cfg.ResolvConf, "state", state, "how", out,
			"nameservers", fmtAddrs(resolvconf.Parse(data).Nameservers()))
	}
	return nil
}

// readResolved reads systemd-resolved's list of upstream servers; nil when
// it cannot be read (resolved is not running, or not in use).
func (w *Watchdog) readResolved() *resolvconf.File {
	data, err := os.ReadFile(w.resolved)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.log.Warn("cannot read systemd-resolved's upstream servers; using its stub", "path", w.resolved, "err", err)
		}
		return nil
	}
	return resolvconf.Parse(data)
}

// Restore puts back the original of a validated configuration's file.
func Restore(cfg Config) error {
	m := &resolvconf.Manager{Path: cfg.ResolvConf, Symlink: resolvconf.SymlinkPolicy(cfg.Symlink)}
	return m.Restore()
}

func fmtAddrs(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
