// Command udpresponder is a benchmark helper. In "fixed" mode it is the
// loopback limit for cache-hit throughput: one goroutine answers every UDP
// query with a prepared reply, patching only the ID and copying the
// question, with no parsing, lookup or allocation. In "upstream" mode it is
// a fake upstream for the resolvers being compared: it answers every A
// query with 192.0.2.1 (any other type with NODATA), built from the query's
// bytes, after a configurable latency, dropping a configurable fraction of
// queries; SIGUSR1 makes it a blackhole (it reads and drops everything),
// SIGUSR2 brings it back.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5398", "UDP address to serve")
	mode := flag.String("mode", "fixed", `"fixed": prepared reply; "upstream": fake upstream answering any A query`)
	ttl := flag.Uint("ttl", 86400, "TTL of the answers")
	batch := flag.Int("batch", 32, "packets per recvmmsg/sendmmsg; 0 reads and writes one at a time (fixed mode)")
	io := flag.String("io", "batch", `fixed mode: "batch" (recvmmsg/sendmmsg of -batch packets through the network poller), "conn" (net.PacketConn, one packet per call), "thread" (blocking recvfrom/sendto on a locked OS thread)`)
	latency := flag.Duration("latency", 0, "upstream mode: delay of every reply")
	loss := flag.Float64("loss", 0, "upstream mode: fraction of queries dropped (1 = blackhole)")
	flag.Parse()
	var err error
	switch *mode {
	case "fixed":
		err = serveFixed(*addr, uint32(*ttl), *batch, *io)
	case "upstream":
		err = serveUpstream(*addr, uint32(*ttl), max(*batch, 1), *latency, *loss)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		slog.Error("udpresponder", "err", err)
		os.Exit(1)
	}
}

// serveFixed answers with a reply prepared once for an A query of the same
// question length: it copies the client's question over the prepared one
// (so any name of that length gets a well-formed reply) and patches the ID.
func serveFixed(addr string, ttl uint32, batch int, io string) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	uc := conn.(*net.UDPConn)
	// The benchmark names are all "hNNNNNN.example.com." (21 bytes).
	q := new(dns.Msg)
	q.SetQuestion("h000000.example.com.", dns.TypeA)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Answer = []dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
		A:   net.IPv4(192, 0, 2, 1).To4(),
	}}
	m.Compress = true
	prepared, err := m.Pack()
	if err != nil {
		return fmt.Errorf("pack reply: %w", err)
	}
	qend := 12 + 21 + 4
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		uc.Close()
	}()
	switch {
	case io == "thread":
		return serveThread(uc, prepared, qend)
	case io == "batch" && batch > 0:
		return serveBatch(uc, prepared, qend, batch)
	case io != "batch" && io != "conn":
		return fmt.Errorf("unknown -io %q", io)
	}
	in := make([]byte, 1500)
	out := make([]byte, len(prepared))
	copy(out, prepared)
	for {
		n, from, err := uc.ReadFromUDPAddrPort(in)
		if err != nil {
			return nil // closed
		}
		if n < qend {
			continue
		}
		binary.BigEndian.PutUint16(out, binary.BigEndian.Uint16(in))
		copy(out[12:qend], in[12:qend])
		if _, err := uc.WriteToUDPAddrPort(out, from); err != nil {
			slog.Warn("write", "err", err)
		}
	}
}

// serveBatch is serveFixed with recvmmsg/sendmmsg: up to n packets per
// system call each way.
func serveBatch(uc *net.UDPConn, prepared []byte, qend, n int) error {
	pc := ipv4.NewPacketConn(uc)
	in := make([]ipv4.Message, n)
	out := make([]ipv4.Message, n)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 1500)}
		b := make([]byte, len(prepared))
		copy(b, prepared)
		out[i].Buffers = [][]byte{b}
	}
	for {
		k, err := pc.ReadBatch(in, 0)
		if err != nil {
			return nil // closed
		}
		m := 0
		for i := range k {
			q := in[i].Buffers[0][:in[i].N]
			if len(q) < qend {
				continue
			}
			r := out[m].Buffers[0]
			binary.BigEndian.PutUint16(r, binary.BigEndian.Uint16(q))
			copy(r[12:qend], q[12:qend])
			out[m].Addr = in[i].Addr
			m++
		}
		writeAll(pc, out[:m])
	}
}

// writeAll sends msgs with as few sendmmsg calls as the kernel allows; an
// error drops the rest of the batch (the clients count them lost).
func writeAll(pc *ipv4.PacketConn, msgs []ipv4.Message) {
	for sent := 0; sent < len(msgs); {
		w, err := pc.WriteBatch(msgs[sent:], 0)
		if err != nil {
			slog.Warn("write", "err", err)
			return
		}
		sent += w
	}
}
