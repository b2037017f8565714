// Command fakemesos is the benchmark's Mesos master: it serves a state
// document over HTTP at /master/state (and the older /master/state.json and
// /state) as the leading master. The state is a file (-state) or a
// synthetic cluster of -tasks running Marathon tasks, in which case -names
// writes the names the master-mode zone holds for them ("name type" lines,
// the format of dnsperf and loadgen -queries), for querying it. With
// -stream, the synthetic cluster's master also serves the operator API
// event stream (POST /api/v1 SUBSCRIBE): the SUBSCRIBED snapshot of the
// same cluster, then heartbeats, as a current Mesos does; without it
// /api/v1 is 404, as on a Mesos older than 1.1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5050", "HTTP address to serve")
	stateFile := flag.String("state", "", "state JSON file to serve")
	tasks := flag.Int("tasks", 0, "serve a synthetic state with this many running tasks (without -state)")
	names := flag.String("names", "", "with -tasks: write the zone's task names here")
	stream := flag.Bool("stream", false, "with -tasks: serve the operator API event stream too")
	flag.Parse()
	if err := run(*addr, *stateFile, *tasks, *names, *stream); err != nil {
		slog.Error("fakemesos", "err", err)
		os.Exit(1)
	}
}

func run(addr, stateFile string, tasks int, namesFile string, stream bool) error {
	var state, subscribed []byte
	switch {
	case stateFile != "" && tasks > 0:
		return errors.New("-state and -tasks exclude each other")
	case stream && tasks == 0:
		return errors.New("-stream needs -tasks")
	case stateFile != "":
		var err error
		if state, err = os.ReadFile(stateFile); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	case tasks > 0:
		state = synthetic(addr, tasks)
		if stream {
			subscribed = syntheticSubscribed(tasks)
		}
		if namesFile != "" {
			if err := writeNames(namesFile, tasks); err != nil {
				return err
			}
		}
	default:
		return errors.New("-state or -tasks is required")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: handler(ctx, state, subscribed, heartbeat), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", addr, err)
	}
	return nil
}

// synthetic is the state of a cluster with one Marathon framework running
// n tasks "app-I" (each with two host ports and a container IP) on n/10
// agents, led by this master.
func synthetic(addr string, n int) []byte {
	agents := max(n/10, 1)
	var b bytes.Buffer
	b.Grow(n * 700)
	fmt.Fprintf(&b, `{"version":"1.9.0","id":"bench-master","pid":"master@%[1]s","leader":"master@%[1]s","hostname":"master1","slaves":[`, addr)
	for i := range agents {
		if i > 0 {
			b.WriteByte(',')
		}
		// Registered by address, as DC/OS agents are, so that dcos-net's
		// names (which need the agent's address) exist too.
		fmt.Fprintf(&b, `{"id":"S%d","pid":"slave(1)@10.1.%[2]d.%[3]d:5051","hostname":"10.1.%[2]d.%[3]d","active":true}`, i, i/256%256, i%256)
	}
	b.WriteString(`],"frameworks":[{"id":"fw-marathon","name":"marathon","pid":"scheduler@10.0.0.10:15101","active":true,"tasks":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		agent := i % agents
		port := 10000 + i%20000
		fmt.Fprintf(&b, `{"id":"app-%[1]d.%08[1]x","name":"app-%[1]d","framework_id":"fw-marathon","slave_id":"S%[2]d","state":"TASK_RUNNING",`+
			`"resources":{"ports":"[%[3]d-%[4]d]"},"statuses":[{"state":"TASK_RUNNING","timestamp":1571216901.2,`+
			`"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.2.%[5]d.%[6]d"}]}]}}]}`,
			i, agent, port, port+1, i/256%256, i%256)
	}
	b.WriteString(`]}],"completed_frameworks":[],"orphan_tasks":[]}`)
	return b.Bytes()
}

// writeNames writes the A and SRV names of up to 10,000 of the synthetic
// tasks, spread over all of them.
func writeNames(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("names: %w", err)
	}
	w := bufio.NewWriter(f)
	step := max(n/10000, 1)
	for i := 0; i < n; i += step {
		fmt.Fprintf(w, "app-%d.marathon.mesos A\n_app-%d._tcp.marathon.mesos SRV\n", i, i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("names: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("names: %w", err)
	}
	return nil
}
