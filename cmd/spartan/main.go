// Command spartan is the node-local DNS proxy: it answers the local zone
// "spartan." itself and races every other query across the upstream group
// of its zone (the masters for the cluster domain, the external resolvers
// for everything else).
//
//	spartan -config FILE              run with a JSON configuration
//	spartan -demo                     127.0.0.1:5353, "." from /etc/resolv.conf
//	spartan -listen A,B -upstreams C  flags override the file
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
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/proxy"
	"github.com/spartan-dns/spartan/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks configuration and usage errors (exit status 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := loadConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "spartan: %v\n", err)
		return 2
	}
	logger, err := service.NewLogger(stderr, service.LoggerOptions{Level: cfg.Log.Level, Format: cfg.Log.Format})
	if err != nil {
		fmt.Fprintf(stderr, "spartan: %v\n", err)
		return 2
	}
	if err := serve(ctx, cfg, args, logger); err != nil {
		logger.Error("spartan stopped", "err", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// loadConfig parses the flags and returns the validated configuration.
func loadConfig(args []string, stderr io.Writer) (*config.Config, error) {
	fs := flag.NewFlagSet("spartan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "JSON configuration `file`")
	listen := fs.String("listen", "", "comma-separated `host:port` list to serve (overrides the file)")
	ups := fs.String("upstreams", "", "comma-separated upstream `addresses` for \".\" (overrides the file)")
	level := fs.String("log-level", "", "debug, info, warn or error (overrides the file)")
	demo := fs.Bool("demo", false, "demo: serve 127.0.0.1:5353, \".\" from /etc/resolv.conf")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var cfg config.Config
	switch {
	case *path != "" && *demo:
		return nil, errors.New("-config and -demo are exclusive")
	case *path != "":
		c, err := config.Load(*path)
		if err != nil {
			return nil, err
		}
		cfg = c
	case *demo:
		cfg = config.Default()
		applyDemo(&cfg)
	default:
		cfg = config.Default()
	}
	if *listen != "" {
		cfg.Listen = splitList(*listen)
	}
	if *ups != "" {
		cfg.Upstreams = splitList(*ups)
	}
	if *level != "" {
		cfg.Log.Level = *level
	}
	if err := cfg.Validate(); err != nil {
		if *path != "" {
			return nil, fmt.Errorf("config %s with flags: %w", *path, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return &cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// serve runs the proxy, its metrics endpoint, the service-manager
// supervision and live reload until ctx is done. args is the command line,
// re-applied over the configuration file on each reload.
func serve(ctx context.Context, cfg *config.Config, args []string, logger *slog.Logger) error {
	sockets, err := service.Activated()
	if err != nil {
		return err
	}
	var m *metrics.Metrics
	if cfg.Metrics != "" {
		m = metrics.New()
	}
	node, err := proxy.NewNode(ctx, proxy.NodeOptions{
		Config: cfg, Logger: logger, Metrics: m,
		PacketConns: sockets.Packet, Listeners: sockets.Stream,
	})
	if err != nil {
		sockets.Close()
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return node.Run(gctx) })
	if m != nil {
		if ln, err := metrics.Listen(gctx, cfg.Metrics); err != nil {
			// Metrics are not worth refusing to serve DNS for.
			logger.Error("metrics endpoint disabled; DNS keeps serving", "err", err)
		} else {
			g.Go(func() error { return m.Serve(gctx, ln) })
		}
	}
	// The self-query goes through our own listener: UDP when we have one
	// (a socket-activated process may have been passed TCP only).
	selfNet, selfAddrs := "udp", node.Addrs()
	if len(selfAddrs) == 0 {
		selfNet, selfAddrs = "tcp", node.TCPAddrs()
	}
	selfAddr, err := service.SelfQueryAddr(selfAddrs[0])
	if err != nil {
		return err
	}
	sup := &service.Supervisor{
		Check: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return service.SelfQuery(ctx, selfNet, selfAddr)
		},
		Log: logger,
	}
	o := newOps(node, cfg, args, logger, m)
	sup.Status = o.status
	if m != nil {
		m.SetReady(o.ready(sup))
	}
	g.Go(func() error { return sup.Run(gctx) })
	g.Go(func() error { return o.run(gctx) })

	logger.Info("spartan serving", "listen", listening(node), "upstreams", describeTable(node.Table()))
	err = g.Wait()
	logger.Info("spartan stopped")
	return err
}
