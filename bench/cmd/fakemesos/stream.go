package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// heartbeat is the interval of the stream's HEARTBEAT events: Mesos's
// DEFAULT_HEARTBEAT_INTERVAL (src/master/constants.hpp), which
// Master::ReadOnlyHandler's subscribe announces in SUBSCRIBED.
const heartbeat = 15 * time.Second

// handler serves state at the state paths and, when subscribed is not nil,
// the event stream at /api/v1: subscribed as the first record, then a
// HEARTBEAT every interval until the client leaves or ctx ends.
func handler(ctx context.Context, state, subscribed []byte, interval time.Duration) http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/master/state", "/master/state.json", "/state"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(state)
		})
	}
	if subscribed == nil {
		return mux
	}
	beat := recordIO([]byte(`{"type":"HEARTBEAT"}`))
	first := recordIO(subscribed)
	mux.HandleFunc("POST /api/v1", func(w http.ResponseWriter, r *http.Request) {
		// The only call served is SUBSCRIBE; Mesos answers a call it
		// does not know with 400 (master.proto Call.Type).
		var b bytes.Buffer
		if _, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<16)); err != nil || !bytes.Contains(b.Bytes(), []byte(`"SUBSCRIBE"`)) {
			http.Error(w, "only SUBSCRIBE is served", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if _, err := w.Write(first); err != nil {
			return
		}
		f, _ := w.(http.Flusher)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if f != nil {
				f.Flush()
			}
			select {
			case <-r.Context().Done():
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := w.Write(beat); err != nil {
					return
				}
			}
		}
	})
	return mux
}

// recordIO frames one event as the operator API's RecordIO does: its
// length in decimal, a newline, the bytes.
func recordIO(j []byte) []byte {
	return append([]byte(strconv.Itoa(len(j))+"\n"), j...)
}

// syntheticSubscribed is the SUBSCRIBED event (master.proto
// Event.Subscribed, its get_state a Response.GetState) of the cluster
// synthetic describes: the same agents, framework and tasks as the
// operator API writes them (mesos.proto Task, TaskStatus, Resource). The
// operator API has no scheduler PID, so the framework's hostname is the
// address the state's PID gives it.
func syntheticSubscribed(n int) []byte {
	agents := max(n/10, 1)
	var b bytes.Buffer
	b.Grow(n * 600)
	b.WriteString(`{"type":"SUBSCRIBED","subscribed":{"get_state":{"get_tasks":{"tasks":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		agent := i % agents
		port := 10000 + i%20000
		fmt.Fprintf(&b, `{"name":"app-%[1]d","task_id":{"value":"app-%[1]d.%08[1]x"},"framework_id":{"value":"fw-marathon"},"agent_id":{"value":"S%[2]d"},"state":"TASK_RUNNING",`+
			`"resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":%[3]d,"end":%[4]d}]}}],`+
			`"statuses":[{"task_id":{"value":"app-%[1]d.%08[1]x"},"agent_id":{"value":"S%[2]d"},"state":"TASK_RUNNING","timestamp":1571216901.2,`+
			`"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.2.%[5]d.%[6]d"}]}]}}]}`,
			i, agent, port, port+1, i/256%256, i%256)
	}
	b.WriteString(`]},"get_frameworks":{"frameworks":[{"framework_info":{"user":"root","name":"marathon","id":{"value":"fw-marathon"},"hostname":"10.0.0.10"},"active":true,"connected":true,"recovered":false}]},"get_agents":{"agents":[`)
	for i := range agents {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"agent_info":{"hostname":"10.1.%[2]d.%[3]d","id":{"value":"S%[1]d"},"port":5051},"pid":"slave(1)@10.1.%[2]d.%[3]d:5051","active":true,"version":"1.9.0"}`,
			i, i/256%256, i%256)
	}
	fmt.Fprintf(&b, `]}},"heartbeat_interval_seconds":%d}}`, int(heartbeat/time.Second))
	return b.Bytes()
}
