package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spartan-dns/spartan/bench/internal/wire"
	"golang.org/x/net/ipv4"
)

// delayed is a reply waiting for its latency to pass.
type delayed struct {
	due   time.Time
	to    net.Addr
	reply []byte
}

// serveUpstream is the fake upstream. Replies without latency go out in
// the same sendmmsg batch the queries came in; with latency they queue in
// arrival order for one writer goroutine, which works because every reply
// has the same delay.
func serveUpstream(addr string, ttl uint32, batch int, latency time.Duration, loss float64) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	uc := conn.(*net.UDPConn)
	// A deep socket buffer: a blackholed or slow server must not lose
	// queries to a full buffer instead of to its policy.
	_ = uc.SetReadBuffer(4 << 20)
	var blackhole atomic.Bool
	if loss >= 1 {
		blackhole.Store(true)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sigs {
			switch s {
			case syscall.SIGUSR1:
				blackhole.Store(true)
			case syscall.SIGUSR2:
				blackhole.Store(false)
			default:
				uc.Close()
				return
			}
		}
	}()

	var wg sync.WaitGroup
	queue := make(chan delayed, 1<<16)
	if latency > 0 {
		wg.Go(func() {
			for d := range queue {
				time.Sleep(time.Until(d.due))
				if _, err := uc.WriteTo(d.reply, d.to); err != nil {
					slog.Warn("write", "err", err)
				}
			}
		})
	}
	defer wg.Wait()
	defer close(queue)

	r := wire.Reply{TTL: ttl, A: [4]byte{192, 0, 2, 1}}
	pc := ipv4.NewPacketConn(uc)
	in := make([]ipv4.Message, batch)
	out := make([]ipv4.Message, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 1500)}
		out[i].Buffers = [][]byte{make([]byte, 0, 1500)}
	}
	var overflow int
	for {
		k, err := pc.ReadBatch(in, 0)
		if err != nil {
			if overflow > 0 {
				slog.Warn("delay queue full: replies dropped", "count", overflow)
			}
			return nil // closed
		}
		if blackhole.Load() {
			continue
		}
		m := 0
		for i := range k {
			if loss > 0 && rand.Float64() < loss {
				continue
			}
			reply, ok := r.AppendReply(out[m].Buffers[0][:0], in[i].Buffers[0][:in[i].N])
			if !ok {
				continue
			}
			if latency > 0 {
				select {
				case queue <- delayed{due: time.Now().Add(latency), to: in[i].Addr, reply: append([]byte(nil), reply...)}:
				default:
					overflow++
				}
				continue
			}
			out[m].Buffers[0] = reply
			out[m].Addr = in[i].Addr
			m++
		}
		writeAll(pc, out[:m])
	}
}
