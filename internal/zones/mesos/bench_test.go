package mesos

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// syntheticState writes a Mesos master state with the given numbers of
// agents and running tasks, shaped like a real one: 4 frameworks, tasks
// with two host ports, a STARTING and a RUNNING status with container
// network info and labels, DiscoveryInfo on a quarter of them, and a
// completed task per 20 running ones.
func syntheticState(agents, tasks int) []byte {
	var b bytes.Buffer
	b.Grow(tasks * 1200)
	b.WriteString(`{"version":"1.9.0","git_sha":"5e79a584e6ec3e9e2f96e8bf418411df9dafac2e","build_date":"2019-09-01 10:00:00","start_time":1571216736.0,"elected_time":1571216740.0,"id":"b8c4b0d8-7a8c-4c4e-8f9a-0d1b7d3c6a01","pid":"master@10.0.0.1:5050","hostname":"master1","activated_slaves":`)
	fmt.Fprintf(&b, "%d", agents)
	b.WriteString(`,"leader":"master@10.0.0.1:5050","leader_info":{"id":"b8c4b0d8","pid":"master@10.0.0.1:5050","port":5050,"hostname":"master1","address":{"hostname":"master1","ip":"10.0.0.1","port":5050}},"flags":{"authenticate_agents":"false","cluster":"bench","work_dir":"/var/lib/mesos"},"slaves":[`)
	for i := range agents {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"0a1b2c3d-4e5f-6789-abcd-ef0123456789-S%d","pid":"slave(1)@10.%d.%d.%d:5051","hostname":"agent%d.example.com","registered_time":1571216800.5,"resources":{"disk":100000.0,"mem":64000.0,"gpus":0.0,"cpus":16.0,"ports":"[1025-2180, 2182-3887, 3889-5049, 5052-8079, 8082-8180, 8182-32000]"},"used_resources":{"disk":0.0,"mem":8192.0,"cpus":4.0},"attributes":{"rack":"r%d"},"active":true,"version":"1.9.0"}`,
			i, 1+i/65536, (i/256)%256, i%256, i, i%40)
	}
	b.WriteString(`],"frameworks":[`)
	fws := []string{"marathon", "metronome", "Kafka.Brokers", "spark_jobs"}
	for f, name := range fws {
		if f > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"0a1b2c3d-fw-%04d","name":%q,"pid":"scheduler-%d@10.0.0.%d:15101","hostname":"master1","user":"root","active":true,"role":"*","capabilities":["PARTITION_AWARE"],"tasks":[`, f, name, f, 10+f)
		n := 0
		for i := f; i < tasks; i += len(fws) {
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			agent := (i * 7) % agents
			app := i / 5 // five instances per app
			port := 10000 + (i % 20000)
			fmt.Fprintf(&b, `{"id":"app-%d.%08x-1c3e-11e9-9d1f-4c1c7d5e3a10","name":"app-%d","framework_id":"0a1b2c3d-fw-%04d","executor_id":"","slave_id":"0a1b2c3d-4e5f-6789-abcd-ef0123456789-S%d","state":"TASK_RUNNING","resources":{"disk":0.0,"mem":512.0,"cpus":0.5,"ports":"[%d-%d]"},"role":"*","statuses":[{"state":"TASK_STARTING","timestamp":1571216900.1,"container_status":{"container_id":{"value":"%08x-aaaa-bbbb-cccc-000000000000"}}},{"state":"TASK_RUNNING","timestamp":1571216901.2,"labels":[{"key":"origin","value":"marathon"}],"container_status":{"container_id":{"value":"%08x-aaaa-bbbb-cccc-000000000000"},"network_infos":[{"ip_addresses":[{"protocol":"IPv4","ip_address":"10.%d.%d.%d"}]}]}}],"labels":[{"key":"HAPROXY_GROUP","value":"external"}]`,
				app, i, app, f, agent, port, port+1, i, i, 1+agent/65536, (agent/256)%256, agent%256)
			if i%4 == 0 {
				fmt.Fprintf(&b, `,"discovery":{"visibility":"FRAMEWORK","name":"app-%d","ports":{"ports":[{"number":%d,"name":"http","protocol":"tcp"},{"number":%d,"name":"admin","protocol":"tcp"}]}}`, app, port, port+1)
			}
			b.WriteString(`,"container":{"type":"MESOS","mesos":{"image":{"type":"DOCKER","docker":{"name":"nginx:1.17"}}}}}`)
		}
		b.WriteString(`],"completed_tasks":[`)
		for i := 0; i < tasks/20/len(fws); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"old-%d","name":"old","slave_id":"x-S1","state":"TASK_FINISHED","statuses":[{"state":"TASK_FINISHED","timestamp":1.0}]}`, i)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`],"completed_frameworks":[],"orphan_tasks":[],"unregistered_frameworks":[]}`)
	return b.Bytes()
}

var (
	benchOnce  sync.Once
	benchState []byte
)

func benchData(b *testing.B) []byte {
	benchOnce.Do(func() { benchState = syntheticState(10000, 100000) })
	b.ReportMetric(float64(len(benchState)), "json-bytes")
	return benchState
}

// BenchmarkRegenerate is a full regeneration: decode the state, generate
// the records, build the zone.
func BenchmarkRegenerate(b *testing.B) { benchRegenerate(b, false) }

// BenchmarkRegenerateNavstar is BenchmarkRegenerate with the
// thisdcos.directory zone built too, as a poll does: the cost the dcos-net
// names add. The agents' host names resolve (to their PID addresses), so
// every task gets its three names.
func BenchmarkRegenerateNavstar(b *testing.B) { benchRegenerate(b, true) }

func benchRegenerate(b *testing.B, navstar bool) {
	data := benchData(b)
	opt := goldenOptions()
	b.SetBytes(int64(len(data)))
	var records int
	cpu := startCPU()
	for b.Loop() {
		st, err := DecodeState(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		z, _ := BuildZone(st, opt, 1)
		records = z.Len()
		if navstar {
			nopt := *opt
			nopt.Resolve = agentResolver(st)
			records += BuildNavstarZone(st, &nopt, 1).Len()
		}
	}
	cpu.report(b)
	b.ReportMetric(float64(records), "records")
}

// BenchmarkBuildNavstarZone is the thisdcos.directory part of a
// regeneration.
func BenchmarkBuildNavstarZone(b *testing.B) {
	st, err := DecodeState(bytes.NewReader(benchData(b)))
	if err != nil {
		b.Fatal(err)
	}
	opt := *goldenOptions()
	opt.Resolve = agentResolver(st)
	var records int
	cpu := startCPU()
	for b.Loop() {
		records = BuildNavstarZone(st, &opt, 1).Len()
	}
	cpu.report(b)
	b.ReportMetric(float64(records), "records")
}

// agentResolver resolves the agents' host names to the addresses of their
// PIDs, as a cluster's resolver would.
func agentResolver(st *State) func(string) []netip.Addr {
	hosts := make(map[string][]netip.Addr, len(st.Slaves))
	for _, s := range st.Slaves {
		if host, _, ok := splitPID(s.PID); ok {
			if a, err := netip.ParseAddr(host); err == nil {
				hosts[s.Hostname] = []netip.Addr{a}
			}
		}
	}
	return func(host string) []netip.Addr { return hosts[host] }
}

// resolveAgentsLocally makes a Service resolve the agents' host names of
// state as agentResolver does, instead of through the machine's resolver:
// the synthetic cluster's 10,000 names are in no DNS, and how fast this
// machine's resolver says so is not what a benchmark measures.
func resolveAgentsLocally(b *testing.B, state []byte) func(*Service) {
	st, err := DecodeState(bytes.NewReader(state))
	require.NoError(b, err)
	resolve := agentResolver(st)
	return func(s *Service) {
		s.Master.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
			if ips := resolve(host); ips != nil {
				return ips, nil
			}
			return nil, fmt.Errorf("%s: not an agent of the synthetic cluster", host)
		}
	}
}

// cpuClock measures the CPU time the process uses. On a machine shared
// with other work, wall time (ns/op) includes time the benchmark waited
// for a core; CPU time (cpu-ns/op) does not, and is what "on one core"
// means.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{processCPU()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeState is the decoding part of a regeneration.
func BenchmarkDecodeState(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	cpu := startCPU()
	for b.Loop() {
		if _, err := DecodeState(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkBuildZone is the generating and building part of a
// regeneration.
func BenchmarkBuildZone(b *testing.B) {
	st, err := DecodeState(bytes.NewReader(benchData(b)))
	if err != nil {
		b.Fatal(err)
	}
	opt := goldenOptions()
	cpu := startCPU()
	for b.Loop() {
		BuildZone(st, opt, 1)
	}
	cpu.report(b)
}

// BenchmarkRegenerateHeap measures the peak extra heap of a regeneration:
// live heap sampled every 200µs during it, minus the heap before. It
// includes garbage the collector has not yet reclaimed, so it is what the
// process really needs.
func BenchmarkRegenerateHeap(b *testing.B) {
	data := benchData(b)
	opt := goldenOptions()
	var peakExtra uint64
	for b.Loop() {
		runtime.GC()
		base := heapBytes()
		var peak atomic.Uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(200 * time.Microsecond)
			defer tick.Stop()
			for {
				if h := heapBytes(); h > peak.Load() {
					peak.Store(h)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		st, err := DecodeState(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		z, _ := BuildZone(st, opt, 1)
		close(stop)
		<-done
		if h := heapBytes(); h > peak.Load() {
			peak.Store(h)
		}
		peakExtra = max(peakExtra, peak.Load()-base)
		runtime.KeepAlive(z)
	}
	b.ReportMetric(float64(peakExtra), "peak-extra-heap-bytes")
	b.ReportMetric(float64(peakExtra)/float64(len(data)), "peak/json")
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkLookup is authoritative lookup throughput on the synthetic
// cluster's zone: task A, SRV with additional, and NXDOMAIN.
func BenchmarkLookup(b *testing.B) {
	data := benchData(b)
	st, err := DecodeState(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	z, _ := BuildZone(st, goldenOptions(), 1)
	for _, q := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"A", "app-4242.marathon.mesos.", dns.TypeA},
		{"SRV", "_app-4240._tcp.marathon.mesos.", dns.TypeSRV},
		{"NXDOMAIN", "nope.marathon.mesos.", dns.TypeA},
	} {
		b.Run(q.name, func(b *testing.B) {
			if res := z.Lookup(q.qname, q.qtype); q.name != "NXDOMAIN" && len(res.Answer) == 0 {
				b.Fatalf("%s %d: no answer", q.qname, q.qtype)
			}
			for b.Loop() {
				z.Lookup(q.qname, q.qtype)
			}
		})
	}
}
