package testsupport

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// QueryStreamOptions configure StartQueryStream.
type QueryStreamOptions struct {
	// Workers is the number of concurrent clients. Default: 4.
	Workers int
	// Net is "udp" (default) or "tcp".
	Net string
	// Name returns the name worker w asks in its i-th query. Default: a
	// name unique to the query under "stream.example.", so that every
	// query goes upstream.
	Name func(w, i int) string
	// Check validates an answer; an error counts as a failed attempt.
	// Default: NOERROR with at least one answer record.
	Check func(*dns.Msg) error
	// Timeout is one attempt's timeout and Attempts the attempts per
	// query, as a stub resolver's "options timeout:1 attempts:3". Default:
	// 1s and 3.
	Timeout  time.Duration
	Attempts int
	// Pause between a worker's queries. Default: 2ms.
	Pause time.Duration
}

// QueryStream sends a steady stream of queries, like the clients of a
// node-local resolver, and records how each one ended.
type QueryStream struct {
	o      QueryStreamOptions
	server string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	answered atomic.Int64
	retries  atomic.Int64
	mu       sync.Mutex
	failures []string
	last     map[string]int // answers by their first record's data
}

// QueryStreamResult is the outcome of a stream.
type QueryStreamResult struct {
	Answered int      // queries answered (possibly after retries)
	Retries  int      // attempts that failed before one succeeded
	Failed   []string // queries that failed every attempt, with why
}

// StartQueryStream starts the workers against server (host:port). Stop
// ends the stream; it is also stopped when the test ends.
func StartQueryStream(t testing.TB, server string, o QueryStreamOptions) *QueryStream {
	t.Helper()
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Net == "" {
		o.Net = "udp"
	}
	if o.Name == nil {
		o.Name = func(w, i int) string { return fmt.Sprintf("q%d-%d.stream.example.", w, i) }
	}
	if o.Check == nil {
		o.Check = func(m *dns.Msg) error {
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
				return fmt.Errorf("rcode %s with %d answers", dns.RcodeToString[m.Rcode], len(m.Answer))
			}
			return nil
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Pause <= 0 {
		o.Pause = 2 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &QueryStream{o: o, server: server, cancel: cancel, last: map[string]int{}}
	for w := range o.Workers {
		s.wg.Add(1)
		go s.worker(ctx, w)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *QueryStream) worker(ctx context.Context, w int) {
	defer s.wg.Done()
	c := &dns.Client{Net: s.o.Net, Timeout: s.o.Timeout}
	for i := 0; ctx.Err() == nil; i++ {
		q := new(dns.Msg)
		q.SetQuestion(s.o.Name(w, i), dns.TypeA)
		var why string
		ok := false
		for a := 0; a < s.o.Attempts && !ok; a++ {
			if a > 0 {
				s.retries.Add(1)
			}
			r, _, err := c.Exchange(q, s.server)
			switch {
			case err != nil:
				why = err.Error()
			case r.Id != q.Id:
				why = "reply with another ID"
			default:
				if err := s.o.Check(r); err != nil {
					why = err.Error()
					continue
				}
				ok = true
				s.record(r)
			}
		}
		if ok {
			s.answered.Add(1)
		} else {
			s.mu.Lock()
			s.failures = append(s.failures, fmt.Sprintf("%s: %s", q.Question[0].Name, why))
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.o.Pause):
		}
	}
}

func (s *QueryStream) record(r *dns.Msg) {
	key := ""
	if len(r.Answer) > 0 {
		switch rr := r.Answer[0].(type) {
		case *dns.A:
			key = rr.A.String()
		default:
			key = dns.TypeToString[rr.Header().Rrtype]
		}
	}
	s.mu.Lock()
	s.last[key]++
	s.mu.Unlock()
}

// Answered returns how many queries were answered so far.
func (s *QueryStream) Answered() int { return int(s.answered.Load()) }

// Answers returns how many answers carried each first-record value (the
// address for A records) so far.
func (s *QueryStream) Answers() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.last))
	for k, v := range s.last {
		out[k] = v
	}
	return out
}

// WaitAnswered waits until n more queries than now have been answered, or
// fails the test after timeout (a bound against hanging only).
func (s *QueryStream) WaitAnswered(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	target := s.Answered() + n
	deadline := time.Now().Add(timeout)
	for s.Answered() < target {
		if time.Now().After(deadline) {
			t.Fatalf("query stream: %d answers, waited for %d; failures: %v", s.Answered(), target, s.Result().Failed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop ends the stream, waits for the queries in progress (each ends
// within Timeout*Attempts) and returns the result.
func (s *QueryStream) Stop() QueryStreamResult {
	s.cancel()
	s.wg.Wait()
	return s.Result()
}

// Result returns the outcome so far.
func (s *QueryStream) Result() QueryStreamResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return QueryStreamResult{Answered: s.Answered(), Retries: int(s.retries.Load()),
		Failed: append([]string(nil), s.failures...)}
}
