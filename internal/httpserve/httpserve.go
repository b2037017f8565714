// Package httpserve runs spartan's small HTTP servers (the metrics address
// and master mode's Mesos-DNS API) with bounds on what a client can hold:
// header, read, write and idle timeouts, and a cap on open connections. An
// http.Server without them keeps an idle keep-alive connection forever, so
// a few thousand idle clients cost a descriptor and tens of kilobytes each
// until the process runs out of one or the other.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Default limits, for servers that answer a few local clients (Prometheus,
// operators, Mesos-DNS API consumers) with small or medium responses.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	// DefaultWriteTimeout leaves time for the largest response, a
	// /v1/enumerate of a 100,000-task cluster, to a slow client.
	DefaultWriteTimeout  = 60 * time.Second
	DefaultIdleTimeout   = 30 * time.Second
	DefaultMaxConns      = 256
	DefaultShutdownGrace = 2 * time.Second
)

// Limits bound what clients of one server can hold. A zero field means
// its default.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers: a client that
	// never finishes them is cut off.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for this
	// long.
	IdleTimeout time.Duration
	// MaxConns caps open connections. A connection beyond the cap is not
	// accepted until another closes: it waits in the kernel's accept
	// queue, and once that is full new ones are refused.
	MaxConns int
	// ShutdownGrace is how long requests in progress may take once the
	// context is done; then their connections are closed.
	ShutdownGrace time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	def(&l.ShutdownGrace, DefaultShutdownGrace)
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	return l
}

// Serve serves h on ln within limits until ctx is done, then shuts the
// server down: ln is closed at once, idle connections too, and requests in
// progress get ShutdownGrace to finish. It returns nil after a shutdown and
// an error when serving fails before. ln is closed either way.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, limits Limits) error {
	l := limits.withDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		// Requests keep ctx's values but not its end: those in progress
		// at shutdown get the grace period.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	addr := ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(ln, l.MaxConns)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http on %s: %w", addr, err)
	}
	return nil
}
