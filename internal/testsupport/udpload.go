package testsupport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// LoadUDP sends n queries to addr (host:port) from clients UDP sockets,
// each keeping window queries outstanding as dnsperf does, cycling through
// queries (packed messages; their IDs are rewritten). Every reply must be
// NOERROR with at least one answer. It returns the time from the first
// query to the last reply, for a queries-per-second figure in benchmarks.
func LoadUDP(addr string, queries [][]byte, n, clients, window int) (time.Duration, error) {
	if len(queries) == 0 || clients <= 0 || window <= 0 {
		return 0, errors.New("LoadUDP: no queries, clients or window")
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for c := range clients {
		quota := n / clients
		if c < n%clients {
			quota++
		}
		wg.Go(func() { errs[c] = pumpUDP(addr, queries, c, quota, window) })
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// pumpUDP sends quota queries over one socket, window at a time
// outstanding, and checks each reply.
func pumpUDP(addr string, queries [][]byte, seed, quota, window int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	q := make([]byte, 512)
	buf := make([]byte, 65535)
	sent, got := 0, 0
	send := func() error {
		n := copy(q, queries[(seed*7919+sent)%len(queries)])
		binary.BigEndian.PutUint16(q, uint16(sent))
		sent++
		_, err := c.Write(q[:n])
		return err
	}
	for sent < min(window, quota) {
		if err := send(); err != nil {
			return err
		}
	}
	for got < quota {
		// Only a guard against a lost reply hanging the run.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("after %d of %d replies: %w", got, quota, err)
		}
		if n < 12 || buf[3]&0xF != 0 || binary.BigEndian.Uint16(buf[6:]) == 0 {
			return fmt.Errorf("unexpected reply % x", buf[:min(n, 16)])
		}
		got++
		if sent < quota {
			if err := send(); err != nil {
				return err
			}
		}
	}
	return nil
}
