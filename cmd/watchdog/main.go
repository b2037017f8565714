// Command watchdog (installed as spartan-watchdog) keeps resolv.conf
// pointing at the node's spartan proxy while it answers ready.spartan and
// at the upstream resolvers while it does not.
//
//	watchdog -resolv-conf PATH -proxy ADDR[,ADDR...] -upstreams ADDR[,ADDR...] -interval DURATION
//	watchdog -config FILE            long-running, settings from a JSON file
//	watchdog -once ...               one check and one write, for a timer
//	watchdog -resolv-conf PATH -restore
//
// Flags override the file. Exit status: 0 on success (also when -restore
// finds nothing saved), 2 on a configuration error, 1 on a runtime error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/resolvconf"
	"github.com/spartan-dns/spartan/internal/service"
	"github.com/spartan-dns/spartan/internal/watchdog"
)

const name = "spartan-watchdog"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// configError marks errors in flags or the configuration (exit status 2).
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stderr io.Writer) int {
	err := runErr(ctx, args, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(configError)):
		fmt.Fprintf(stderr, "%s: configuration error: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}

func runErr(ctx context.Context, args []string, stderr io.Writer) error {
	def := watchdog.DefaultConfig()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configFile   = fs.String("config", "", "JSON configuration `file`; flags override it")
		resolvConf   = fs.String("resolv-conf", def.ResolvConf, "managed resolv.conf `path`")
		interval     = fs.Duration("interval", def.Interval.D(), "time between health checks")
		timeout      = fs.Duration("timeout", def.Timeout.D(), "timeout of one health-check query")
		failAfter    = fs.Int("fail-after", def.FailAfter, "consecutive failed checks before switching to the upstreams")
		recoverAfter = fs.Int("recover-after", def.RecoverAfter, "consecutive good checks before switching back to the proxy")
		restartAfter = fs.Duration("restart-after", def.RestartAfter.D(), "restart the proxy's unit after failing this long (0: never)")
		unit         = fs.String("unit", def.RestartUnit, "systemd unit restarted by -restart-after")
		symlink      = fs.String("symlink", def.Symlink, "when resolv.conf is a symlink: replace (with a file) or follow")
		once         = fs.Bool("once", false, "check once, write the file and exit")
		restore      = fs.Bool("restore", false, "put the saved original resolv.conf back and exit")
	)
	var proxy, upstreams []string // set only when given
	fs.Func("proxy", "proxy `addresses`, comma-separated IP[:port] (port 53 when absent; default "+strings.Join(def.Proxy, ",")+")",
		func(s string) (err error) {
			proxy, err = config.SplitList(s)
			return err
		})
	fs.Func("upstreams", "upstream resolvers used while the proxy is down, comma-separated IP[:port] (default: the original resolv.conf's)",
		func(s string) (err error) {
			upstreams, err = config.SplitList(s)
			return err
		})
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\nKeeps resolv.conf pointing at the spartan proxy while it answers, and at the upstream resolvers while it does not.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return configError{err}
	}
	if fs.NArg() > 0 {
		return configError{fmt.Errorf("unexpected arguments: %q", fs.Args())}
	}

	cfg := def
	if *configFile != "" {
		var err error
		if cfg, err = watchdog.LoadConfig(*configFile); err != nil {
			return configError{err}
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "resolv-conf":
			cfg.ResolvConf = *resolvConf
		case "proxy":
			cfg.Proxy = proxy
		case "upstreams":
			cfg.Upstreams = upstreams
		case "interval":
			cfg.Interval = config.Duration(*interval)
		case "timeout":
			cfg.Timeout = config.Duration(*timeout)
		case "fail-after":
			cfg.FailAfter = *failAfter
		case "recover-after":
			cfg.RecoverAfter = *recoverAfter
		case "restart-after":
			cfg.RestartAfter = config.Duration(*restartAfter)
		case "unit":
			cfg.RestartUnit = *unit
		case "symlink":
			cfg.Symlink = *symlink
		}
	})
	if err := cfg.Validate(); err != nil {
		if *configFile != "" {
			err = fmt.Errorf("%s (with flags applied): %w", *configFile, err)
		}
		return configError{err}
	}
	if *once && *restore {
		return configError{errors.New("-once and -restore exclude each other")}
	}
	log, err := service.NewLogger(stderr, service.LoggerOptions{Level: cfg.Log.Level, Format: cfg.Log.Format})
	if err != nil {
		return configError{err}
	}

	if *restore {
		err := watchdog.Restore(cfg)
		if errors.Is(err, resolvconf.ErrNoOriginal) {
			log.Warn("nothing to restore: no saved original", "path", cfg.ResolvConf+resolvconf.OrigSuffix)
			return nil
		}
		if err != nil {
			return err
		}
		log.Info("restored the original resolv.conf", "path", cfg.ResolvConf)
		return nil
	}

	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "warning", w)
	}
	wd := watchdog.New(cfg, log, watchdog.Options{})
	if *once {
		// Bound the single round: a hung write must not hang a timer unit.
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout.D()+30*time.Second)
		defer cancel()
		state, err := wd.Once(ctx)
		if err != nil {
			return err
		}
		log.Info("done", "state", state)
		return nil
	}
	return wd.Run(ctx)
}
