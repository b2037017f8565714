package mesos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// BenchmarkPatchOneTask is the zone work of one event on the synthetic
// 100,000-task cluster: a task that starts running patched into the zone
// (incremental.go), against BenchmarkBuildZone for building it whole.
// The live state's snapshot for the enumeration API (liveState.state),
// which every swap also takes, is BenchmarkLiveSnapshot.
func BenchmarkPatchOneTask(b *testing.B) {
	st, err := DecodeState(bytes.NewReader(benchData(b)))
	if err != nil {
		b.Fatal(err)
	}
	opt := goldenOptions()
	l := liveFromState(st, nil)
	s0, refs := l.state()
	z, _, idx := buildIndexed(s0, refs, opt, 1)
	t := st.Frameworks[0].Tasks[0]
	cpu := startCPU()
	i := 0
	for b.Loop() {
		i++
		// The same task with a new address each time: its group's
		// names are dropped and added again.
		next := t
		next.NetInfoIPs = appendIP(nil, fmt.Sprintf("10.250.%d.%d", i/250%250, i%250))
		nz, ok := idx.patch(z, map[taskRef]*Task{refs[0]: &next}, opt, uint32(i+1))
		if !ok {
			b.Fatal("not patched")
		}
		z = nz
	}
	cpu.report(b)
}

// BenchmarkLiveSnapshot is liveState.state on the synthetic 100,000-task
// cluster: the State every event swap hands the enumeration API.
func BenchmarkLiveSnapshot(b *testing.B) {
	st, err := DecodeState(bytes.NewReader(benchData(b)))
	if err != nil {
		b.Fatal(err)
	}
	l := liveFromState(st, nil)
	cpu := startCPU()
	for b.Loop() {
		l.state()
	}
	cpu.report(b)
}

// BenchmarkStreamLatency measures how long a task that goes TASK_RUNNING
// takes to resolve at the master's DNS port, on the synthetic cluster of
// 10,000 agents and 100,000 tasks, with 100 task events a second
// arriving: each iteration is three events 10 ms apart from the fake
// master's stream (TASK_ADDED staging, TASK_UPDATED running, and the kill
// of the task started a hundred iterations (3 s) before, so the zone keeps its size),
// and the latency is from sending the TASK_UPDATED to the first answer
// with the task's address, polled over UDP every 5 ms. cpu-ms/event is
// the whole process's CPU time (master mode, the fake master encoding the
// events, the DNS prober) over the events sent. Run it with
// -benchtime=Nx; each iteration takes 30 ms.
func BenchmarkStreamLatency(b *testing.B) {
	fake := testsupport.NewFakeMesosMaster(b, benchData(b))
	fake.ServeStream(b, time.Second)
	cfg := masterConfig(b, []string{fake.Addr()}, `,"refreshSeconds":3600,"stateTimeoutSeconds":300`)
	cfg.Listen = []string{"127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewService(ctx, cfg, ServiceOptions{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	resolveAgentsLocally(b, benchData(b))(s)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	addr := s.Addrs()[0]
	const fw = "0a1b2c3d-fw-0000"
	name := func(i int) string { return fmt.Sprintf("bench-%d", i+1) }
	added := func(i int) string {
		return fmt.Sprintf(`{"type":"TASK_ADDED","task_added":{"task":{"name":%q,"task_id":{"value":"%s.1"},"framework_id":{"value":%q},"agent_id":{"value":"0a1b2c3d-4e5f-6789-abcd-ef0123456789-S%d"},"state":"TASK_STAGING","resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":%d,"end":%d}]}}]}}}`,
			name(i), name(i), fw, (i+1)%10000, 20000+(i+1)%1000, 20000+(i+1)%1000)
	}
	updated := func(i int, state string) string {
		return fmt.Sprintf(`{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":%q},"status":{"task_id":{"value":"%s.1"},"state":%q,"timestamp":%d,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.200.%d.%d"}]}]}},"state":%q}}`,
			fw, name(i), state, 1700000000+i, (i+1)/250%250, (i+1)%250, state)
	}
	emit := func(ev string) { fake.Emit(b, rawEvent(ev)) }
	resolves := func(qname string) bool {
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		q := new(dns.Msg)
		q.SetQuestion(qname, dns.TypeA)
		r, _, err := c.Exchange(q, addr)
		return err == nil && len(r.Answer) > 0
	}

	// The first full read, the subscription, its snapshot's zone, then a
	// first task through the stream.
	deadline := time.Now().Add(10 * time.Minute)
	for !s.Master.Stats().Streaming {
		if time.Now().After(deadline) {
			b.Fatalf("no stream after 10 minutes: %+v", s.Master.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	emit(added(-1))
	emit(updated(-1, "TASK_RUNNING"))
	for !resolves(name(-1) + ".marathon.mesos.") {
		if time.Now().After(deadline) {
			b.Fatalf("the first task did not resolve: %+v", s.Master.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := s.Master.Stats()
	b.ReportMetric(float64(start.Tasks), "tasks")

	lat := make(chan time.Duration, b.N)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	events := 0
	cpu := startCPU()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		emit(added(i))
		<-tick.C
		sent := time.Now()
		emit(updated(i, "TASK_RUNNING"))
		wantIP := fmt.Sprintf("10.200.%d.%d", (i+1)/250%250, (i+1)%250)
		go func(qname string) {
			c := &dns.Client{Net: "udp", Timeout: time.Second}
			q := new(dns.Msg)
			q.SetQuestion(qname, dns.TypeA)
			for time.Since(sent) < time.Minute {
				if r, _, err := c.Exchange(q, addr); err == nil && len(r.Answer) > 0 && r.Answer[0].(*dns.A).A.String() == wantIP {
					lat <- time.Since(sent)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			lat <- time.Minute
		}(name(i) + ".marathon.mesos.")
		<-tick.C
		if i >= 100 {
			emit(updated(i-100, "TASK_KILLED"))
		}
		events += 3
	}
	var all []time.Duration
	for range b.N {
		all = append(all, <-lat)
	}
	b.StopTimer()
	used := processCPU() - cpu.start
	end := s.Master.Stats()
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(all[len(all)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(used)/float64(time.Millisecond)/float64(events), "cpu-ms/event")
	swaps := end.EventSwaps - start.EventSwaps
	b.ReportMetric(float64(swaps)/(float64(b.N)*0.03), "swaps/s")
	b.ReportMetric(float64(end.PatchedSwaps-start.PatchedSwaps)/float64(max(swaps, 1)), "patched/swap")
	b.ReportMetric(float64(end.EventSwapTime-start.EventSwapTime)/float64(time.Millisecond)/float64(max(swaps, 1)), "ms/swap")
}

// rawEvent is an event already encoded, for FakeMesosMaster.Emit.
type rawEvent string

func (e rawEvent) MarshalJSON() ([]byte, error) { return []byte(e), nil }

// BenchmarkDecodeSubscribed decodes the SUBSCRIBED snapshot of the
// synthetic 100,000-task cluster (the fake master's conversion of its
// state) with the event decoder, go-json-experiment/json into structs of
// the needed fields; BenchmarkDecodeState is the same cluster's state
// through the hand-written scanner.
func BenchmarkDecodeSubscribed(b *testing.B) {
	c := testsupport.MesosV1FromState(b, benchData(b))
	rec, err := json.Marshal(c.Subscribed(c.Tasks, 15))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rec)))
	cpu := startCPU()
	for b.Loop() {
		ev, err := decodeEvent(rec)
		if err != nil {
			b.Fatal(err)
		}
		liveFromSubscribed(ev.Subscribed, nil)
	}
	cpu.report(b)
}
