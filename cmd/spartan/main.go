// Command spartan is the node-local DNS proxy: it answers the local zone
// "spartan." itself and races every other query across the upstream group
// of its zone (the masters for the cluster domain, the external resolvers
// for everything else).
//
//	spartan -config FILE              run with a JSON configuration
//	spartan -demo                     127.0.0.1:5353, "." from /etc/resolv.conf,
//	                                  "mesos." from an embedded sample cluster
//	spartan -master                   master mode too, with its defaults unless
//	                                  the file has a "master" object
//	spartan -listen A,B -upstreams C  flags override the file
//
// In master mode ("master" in the configuration, or -master) the process
// also polls the Mesos masters, generates the cluster zone and serves it
// authoritatively on master.listen (see package mesos), and the proxy's
// group for that zone includes this node's own authoritative server.
//
// Exit status: 0 after SIGTERM/SIGINT and a graceful shutdown, 2 on a
// configuration or usage error, 1 on a runtime error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/httpserve"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/proxy"
	"github.com/spartan-dns/spartan/internal/service"
	"github.com/spartan-dns/spartan/internal/zones/mesos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, cl, err := parseCommandLine(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "spartan: %v\n", err)
		return 2
	}
	if cl.print {
		out, err := config.Marshal(*cfg)
		if err != nil {
			fmt.Fprintf(stderr, "spartan: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(out)
		return 0
	}
	logger, err := service.NewLogger(stderr, service.LoggerOptions{Level: cfg.Log.Level, Format: cfg.Log.Format})
	if err != nil {
		fmt.Fprintf(stderr, "spartan: %v\n", err)
		return 2
	}
	for _, f := range cl.ignored {
		logger.Warn("Mesos-DNS configuration field ignored", "field", f)
	}
	var state []byte
	if cl.demo {
		state = mesos.DemoState
		if err := stopWithParent(); err != nil {
			fmt.Fprintf(stderr, "spartan: %v\n", err)
			return 1
		}
	}
	if err := serve(ctx, cfg, args, state, logger); err != nil {
		// What failed, on a line of its own like a configuration error.
		// A *config.FieldError is one that only showed once the
		// configuration met the host (no usable upstream in the
		// upstreams file); anything else (a port in use) is a runtime
		// error.
		fmt.Fprintf(stderr, "spartan: %v\n", err)
		if errors.As(err, new(*config.FieldError)) {
			return 2
		}
		return 1
	}
	return 0
}

// loadConfig parses the flags and returns the validated configuration.
func loadConfig(args []string, stderr io.Writer) (*config.Config, error) {
	cfg, _, err := parseCommandLine(args, stderr)
	return cfg, err
}

// cmdline is what the command line asks for besides the configuration.
type cmdline struct {
	// demo: the cluster zone comes from the embedded sample state.
	demo bool
	// print: print the configuration as JSON and exit.
	print bool
	// ignored lists the Mesos-DNS file's fields that change nothing,
	// with the reason, for the log.
	ignored []string
}

// parseCommandLine parses the flags and returns the validated
// configuration and what else the command line asks for.
func parseCommandLine(args []string, stderr io.Writer) (*config.Config, cmdline, error) {
	var cl cmdline
	fs := flag.NewFlagSet("spartan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "JSON configuration `file`")
	mdns := fs.String("mesos-dns-config", "", "run as a drop-in Mesos-DNS: master mode alone, configured by Mesos-DNS's config.json `file`")
	fs.BoolVar(&cl.print, "print-config", false, "print the resulting configuration as spartan JSON and exit")
	var listen, ups []string
	fs.Func("listen", "comma-separated `host:port` list to serve (overrides the file)", func(s string) (err error) {
		listen, err = config.SplitList(s)
		return err
	})
	fs.Func("upstreams", "comma-separated upstream `addresses` for \".\" (overrides the file)", func(s string) (err error) {
		ups, err = config.SplitList(s)
		return err
	})
	level := fs.String("log-level", "", "debug, info, warn or error (overrides the file)")
	demo := fs.Bool("demo", false, "demo: serve 127.0.0.1:5353, \".\" from /etc/resolv.conf, \"mesos.\" from an embedded sample cluster on 127.0.0.1:61053")
	master := fs.Bool("master", false, "master mode: with the file's \"master\" object, or the master-mode defaults when it has none")
	if err := fs.Parse(args); err != nil {
		return nil, cl, err
	}
	if fs.NArg() > 0 {
		return nil, cl, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cl.demo = *demo
	var cfg config.Config
	file := *path
	switch {
	case *path != "" && *demo, *mdns != "" && *demo:
		return nil, cl, errors.New("-config, -mesos-dns-config and -demo are exclusive")
	case *path != "" && *mdns != "":
		return nil, cl, errors.New("-config and -mesos-dns-config are exclusive")
	case *path != "":
		c, err := config.Load(*path)
		if err != nil {
			return nil, cl, err
		}
		cfg = c
	case *mdns != "":
		res, err := config.LoadMesosDNS(*mdns, config.MesosDNSOptions{})
		if err != nil {
			return nil, cl, err
		}
		cfg, cl.ignored, file = res.Config, res.Ignored, *mdns
	case *demo:
		cfg = config.Default()
		applyDemo(&cfg)
	default:
		cfg = config.Default()
	}
	if listen != nil {
		cfg.Listen = listen
	}
	if ups != nil {
		cfg.Upstreams = ups
	}
	if *level != "" {
		cfg.Log.Level = *level
	}
	if *master && cfg.Master == nil {
		m := config.DefaultMaster()
		cfg.Master = &m
	}
	if err := cfg.Validate(); err != nil {
		if file != "" {
			return nil, cl, fmt.Errorf("config %s with flags: %w", file, err)
		}
		return nil, cl, fmt.Errorf("config: %w", err)
	}
	return &cfg, cl, nil
}

// serve runs the proxy, master mode when configured, the metrics endpoint,
// the service-manager supervision and live reload until ctx is done. args
// is the command line, re-applied over the configuration file on each
// reload; state, when set, is the fixed Mesos state master mode serves
// (the demo).
func serve(ctx context.Context, cfg *config.Config, args []string, state []byte, logger *slog.Logger) error {
	sockets, err := service.Activated()
	if err != nil {
		return err
	}
	var m *metrics.Metrics
	if cfg.Metrics != "" {
		m = metrics.New()
	}
	// An empty listen list runs master mode alone (a drop-in Mesos-DNS):
	// no node-local proxy.
	var node *proxy.Node
	if len(cfg.Listen) > 0 {
		node, err = proxy.NewNode(ctx, proxy.NodeOptions{
			Config: cfg, Logger: logger, Metrics: m,
			PacketConns: sockets.Packet, Listeners: sockets.Stream,
		})
		if err != nil {
			sockets.Close()
			return err
		}
	} else if len(sockets.Packet)+len(sockets.Stream) > 0 {
		sockets.Close()
		return errors.New("sockets passed by the service manager, but no node-local proxy to serve them (listen is empty)")
	}
	closeNode := func() {
		if node != nil {
			node.Close()
		}
	}
	// READY=1 and every WATCHDOG=1 need ready.spartan answered on every
	// listener, UDP and TCP.
	var targets []service.SelfQueryTarget
	if node != nil {
		if targets, err = service.SelfQueryTargets(node.Addrs(), node.TCPAddrs()); err != nil {
			node.Close()
			return err
		}
	}
	var ms *mesos.Service
	if cfg.Master != nil {
		o := mesos.ServiceOptions{
			Logger: logger, State: state,
			TCPIdleTimeout: cfg.TCPIdleTimeout.D(), MaxTCPConns: cfg.MaxTCPConnections,
			UDPReceiveBuffer: cfg.UDPReceiveBuffer, ShutdownGrace: cfg.ShutdownGrace.D(),
		}
		if m != nil {
			o.Observer = m
		}
		ms, err = mesos.NewService(ctx, *cfg.Master, o)
		if err != nil {
			closeNode()
			return fmt.Errorf("master mode: %w", err)
		}
		if m != nil {
			m.SetPoller(func() metrics.Poll {
				s := ms.Master.Stats()
				return metrics.Poll{Polls: s.Polls, Failures: s.Failures, LastDuration: s.LastPollDuration, LastSuccess: s.LastSuccess}
			})
			ms.Master.ObservePolls(m.ObservePoll)
			m.SetMasterGuard(func() metrics.MasterGuard {
				g := ms.Guard.Stats()
				return metrics.MasterGuard{
					Refused: g.Refused, RateLimited: g.RateLimited, Dropped: g.Dropped, Slipped: g.Slipped,
					HeldShrinks: ms.Master.Stats().HeldShrinks,
				}
			})
			m.SetMasterFollow(func() metrics.MasterFollow {
				s := ms.Master.Stats()
				return metrics.MasterFollow{
					Streaming: s.Streaming, Events: s.Events, EventSwaps: s.EventSwaps, PatchedSwaps: s.PatchedSwaps,
					LeaderSource: s.LeaderSource, ZooKeeper: s.ZooKeeper, ZKCurrent: s.ZKCurrent,
				}
			})
		}
	}
	if m != nil && node != nil && node.Cache != nil {
		m.Handle("POST /cache/flush", node.Cache.FlushHandler())
	}
	check := func(ctx context.Context) error { return service.SelfQueryAll(ctx, targets) }
	if node == nil {
		// Master mode alone: its own ports must answer instead.
		check = masterCheck(ms, cfg.Master.Domain)
	}
	sup := &service.Supervisor{Check: check, Log: logger}
	o := newOps(node, ms, cfg, args, logger, m)
	sup.Status = o.status
	if m != nil {
		m.SetReady(o.ready(sup))
	}

	g, gctx := errgroup.WithContext(ctx)
	// What serves stops only once the reloader has returned, so a reload
	// in progress at shutdown completes against the running node (which
	// then closes the table it swapped in) and its READY=1 goes out before
	// STOPPING=1. gctx ends on a signal or on the first error.
	sctx, stopServing := context.WithCancel(context.WithoutCancel(gctx))
	defer stopServing()
	g.Go(func() error {
		defer stopServing()
		o.rl.Run(gctx)
		return nil
	})
	g.Go(func() error { return o.run(gctx) })
	if node != nil {
		g.Go(func() error { return node.Run(sctx) })
	}
	if ms != nil {
		g.Go(func() error { return ms.Run(sctx) })
	}
	if m != nil {
		if ln, err := metrics.Listen(sctx, cfg.Metrics); err != nil {
			// Metrics are not worth refusing to serve DNS for.
			logger.Error("metrics endpoint disabled; DNS keeps serving", "err", err)
		} else {
			g.Go(func() error {
				if err := httpserve.Serve(sctx, ln, m.Handler(), httpserve.Limits{}); err != nil {
					return fmt.Errorf("metrics: %w", err)
				}
				return nil
			})
		}
	}
	g.Go(func() error { return sup.Run(sctx) })

	var attrs []any
	if node != nil {
		attrs = append(attrs, "listen", listening(node), "upstreams", describeTable(node.Table()))
	}
	if ms != nil {
		attrs = append(attrs, "master", ms.Addrs(), "zone", cfg.Master.Domain)
		if api := ms.Master.HTTPAddr(); api != "" {
			attrs = append(attrs, "api", api)
		}
		if ms.Forward != nil {
			attrs = append(attrs, "forward", describeTable(ms.Forward.Table()))
		}
	}
	logger.Info("spartan serving", attrs...)
	err = g.Wait()
	logger.Info("spartan stopped")
	return err
}
