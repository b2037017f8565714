package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/proxy"
	"github.com/spartan-dns/spartan/internal/service"
	"github.com/spartan-dns/spartan/internal/upstream"
	"github.com/spartan-dns/spartan/internal/zones/mesos"
)

// upstreamsPoll is how often the upstreams file is checked for changes.
const upstreamsPoll = 2 * time.Second

// ops is the operational side of a running proxy: live reload (SIGHUP and
// upstreams file changes), readiness, status and zone metrics.
type ops struct {
	node   *proxy.Node    // nil when master mode runs alone
	master *mesos.Service // nil unless in master mode
	args   []string       // command line, re-applied over the file on reload
	start  *config.Config
	cur    atomic.Pointer[config.Config]
	log    *slog.Logger
	rl     *service.Reloader
	// flush is set by SIGHUP: the next reload flushes the cache, but
	// only if it is accepted.
	flush atomic.Bool
	// hup receives SIGHUP from newOps on, before anything can report the
	// process ready: a SIGHUP nobody is notified of ends a Go program,
	// and a reload may come the moment READY=1 is out.
	hup chan os.Signal
}

func newOps(node *proxy.Node, master *mesos.Service, cfg *config.Config, args []string, logger *slog.Logger, m *metrics.Metrics) *ops {
	o := &ops{node: node, master: master, args: args, start: cfg, log: logger, hup: make(chan os.Signal, 1)}
	signal.Notify(o.hup, syscall.SIGHUP)
	o.cur.Store(cfg)
	o.rl = service.NewReloader(o.reload)
	o.rl.Notifier = &service.Notifier{Log: logger}
	o.rl.Log = logger
	o.rl.Observe = m.ObserveReload
	if m != nil {
		m.SetZones(o.zones)
	}
	return o
}

// run handles SIGHUP and watches the upstreams file until ctx is done,
// triggering reloads; o.rl.Run, run beside it, performs them. SIGHUP is
// no longer caught once it returns.
func (o *ops) run(ctx context.Context) error {
	defer signal.Stop(o.hup)

	var watched string
	var w *service.FileWatcher
	t := time.NewTicker(upstreamsPoll)
	defer t.Stop()
	for {
		// The file to watch follows the configuration: a reload may
		// name another one, or list the upstreams inline instead.
		if path := upstreamsFile(o.cur.Load()); path != watched {
			watched, w = path, nil
			if path != "" {
				w = service.NewFileWatcher(path)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-o.hup:
			// SIGHUP is also the operator's "forget what you cached"
			// after a cluster change, done once the reload is accepted.
			o.flush.Store(true)
			o.rl.Trigger("SIGHUP")
		case <-t.C:
			if w == nil {
				continue
			}
			changed, err := w.Changed()
			if err != nil {
				o.log.Warn("cannot check the upstreams file", "file", watched, "err", err)
				continue
			}
			if changed {
				o.rl.Trigger("upstreams file " + watched + " changed")
			}
		}
	}
}

func upstreamsFile(cfg *config.Config) string {
	if len(cfg.Upstreams) > 0 || len(cfg.Listen) == 0 {
		return ""
	}
	return cfg.UpstreamsFile
}

// reload re-reads the configuration with the original command line and
// swaps in its upstream table, then flushes the cache if a SIGHUP asked
// for it. Anything invalid, including an upstreams file without a usable
// nameserver, refuses the whole reload: the running configuration and the
// cache are kept, since during an upstream outage the cached and stale
// entries are what keeps names resolving.
func (o *ops) reload(ctx context.Context, reason string) (string, error) {
	// Taken before the file is read: a SIGHUP arriving later triggers
	// another reload, which reads the file as of that signal.
	flush := o.flush.Swap(false)
	next, err := loadConfig(o.args, io.Discard)
	if err != nil {
		return o.status(), err
	}
	for _, f := range restartOnly(o.start, next) {
		o.log.Warn("setting changed; it takes effect only after a restart", "field", f)
	}
	if o.node == nil {
		// Master mode alone: nothing is applied live.
		o.cur.Store(next)
		return o.status(), nil
	}
	t, err := o.node.Reload(next)
	if err != nil {
		return o.status(), fmt.Errorf("upstreams: %w", err)
	}
	o.cur.Store(next)
	if c := o.node.Cache; flush && c != nil {
		c.Flush()
		o.log.Info("cache flushed", "reason", "SIGHUP")
	}
	o.log.Info("upstream table swapped", "reason", reason, "upstreams", describeTable(t))
	return o.status(), nil
}

// restartOnly lists the settings that differ between a and b but are
// bound at start (sockets, cache, limits): a reload cannot apply them.
func restartOnly(a, b *config.Config) []string {
	var out []string
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"listen", a.Listen, b.Listen},
		{"clusterDomain", a.ClusterDomain, b.ClusterDomain},
		{"allowNets", a.AllowNets, b.AllowNets},
		{"raceTimeout", a.RaceTimeout, b.RaceTimeout},
		{"tcpIdleTimeout", a.TCPIdleTimeout, b.TCPIdleTimeout},
		{"maxTCPConnections", a.MaxTCPConnections, b.MaxTCPConnections},
		{"udpReceiveBuffer", a.UDPReceiveBuffer, b.UDPReceiveBuffer},
		{"maxInFlight", a.MaxInFlight, b.MaxInFlight},
		{"shutdownGrace", a.ShutdownGrace, b.ShutdownGrace},
		{"cache", a.Cache, b.Cache},
		{"metrics", a.Metrics, b.Metrics},
		{"log", a.Log, b.Log},
		{"master", a.Master, b.Master},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			out = append(out, f.name)
		}
	}
	return out
}

// listening lists the addresses served, UDP and TCP, each once.
func listening(n *proxy.Node) []string {
	var out []string
	for _, a := range append(n.Addrs(), n.TCPAddrs()...) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func describeTable(t *upstream.Table) []string {
	var groups []string
	for _, g := range t.Groups() {
		var addrs []string
		for _, u := range g.Upstreams() {
			addrs = append(addrs, u.String())
		}
		groups = append(groups, g.Zone()+"="+strings.Join(addrs, ","))
	}
	return groups
}

// status is the one-line summary sent to the service manager
// (systemctl status shows it).
func (o *ops) status() string {
	var b strings.Builder
	if o.node != nil {
		healthy, total := 0, 0
		for _, s := range o.node.UpstreamStates() {
			total++
			if s.Healthy {
				healthy++
			}
		}
		fmt.Fprintf(&b, "serving %s; upstreams healthy %d/%d", strings.Join(listening(o.node), ","), healthy, total)
		if c := o.node.Cache; c != nil {
			fmt.Fprintf(&b, "; cache %d entries", c.Stats().Entries)
		}
	} else {
		b.WriteString("master mode alone")
	}
	for _, z := range o.zones() {
		fmt.Fprintf(&b, "; zone %s serial %d records %d", z.Origin, z.Serial, z.Records)
	}
	if o.master != nil {
		fmt.Fprintf(&b, "; master serving %s", strings.Join(o.master.Addrs(), ","))
		switch s := o.master.Master.Stats(); {
		case s.LastError != "" && s.LastSuccess.IsZero():
			b.WriteString("; Mesos state never read (polls failing)")
		case s.LastError != "":
			fmt.Fprintf(&b, "; Mesos poll failing, serving the zone of %s", s.LastSuccess.UTC().Format(time.RFC3339))
		case !s.LastSuccess.IsZero():
			fmt.Fprintf(&b, "; Mesos leader %s", s.Leader)
		}
		s := o.master.Master.Stats()
		b.WriteString(followStatus(s))
	}
	if o.node != nil {
		fmt.Fprintf(&b, "; races in flight %d", o.node.Forwarder.Stats().InFlight)
	}
	return b.String()
}

// followStatus says what names the Mesos leader and whether its event
// stream is followed, for the status line; empty when polls read a fixed
// state.
func followStatus(s mesos.Stats) string {
	var b strings.Builder
	switch {
	case s.LeaderSource == "":
		return ""
	case s.ZooKeeper && s.LeaderSource == mesos.LeaderZooKeeper && s.ZKCurrent:
		b.WriteString("; leader from ZooKeeper")
	case s.ZooKeeper && s.LeaderSource == mesos.LeaderZooKeeper:
		fmt.Fprintf(&b, "; ZooKeeper names no current leader (%s)", s.ZKError)
	case s.ZooKeeper:
		fmt.Fprintf(&b, "; ZooKeeper names no current leader (%s), asking master.masters", s.ZKError)
	}
	if s.Streaming {
		fmt.Fprintf(&b, "; event stream up, %d events", s.Events)
	} else {
		b.WriteString("; event stream down (polling only)")
	}
	return b.String()
}

// zones reports the authoritative zones served, for metrics and status.
func (o *ops) zones() []metrics.Zone {
	var out []metrics.Zone
	if o.node != nil {
		z := o.node.Local
		out = append(out, metrics.Zone{Origin: z.Origin(), Records: z.Len(), Serial: z.Serial()})
	}
	if o.master != nil {
		z := o.master.Master.Store().Load()
		out = append(out, metrics.Zone{Origin: z.Origin(), Records: z.Len(), Serial: z.Serial()})
	}
	return out
}

// ready is the /ready check: the listeners answer the self-query, and the
// root group can answer, either because one of its upstreams is healthy or
// because the cache is warm enough to serve through an upstream outage.
func (o *ops) ready(sup *service.Supervisor) func() error {
	return func() error {
		if !sup.Healthy() {
			return errors.New("the self-query through the listener does not succeed")
		}
		if o.node == nil {
			return nil // master mode alone: its self-check is the test
		}
		for _, g := range o.node.Table().Groups() {
			if g.Zone() != "." {
				continue
			}
			for _, u := range g.Upstreams() {
				if u.Healthy() {
					return nil
				}
			}
		}
		// Cached SERVFAILs are no reason to be ready: they are what a
		// dead upstream leaves behind.
		if c := o.node.Cache; c != nil && c.Stats().Answers > 0 {
			return nil
		}
		return errors.New(`no healthy upstream in the "." group and no answer in the cache`)
	}
}
