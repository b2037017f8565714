package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/zones"
	"github.com/spartan-dns/spartan/internal/zones/mesos"
)

// serveMaster runs master mode against the Mesos master at url, polling
// once an hour, until the test ends.
func serveMaster(t *testing.T, url string) *mesos.Service {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, `{"listen":["127.0.0.1:53"],"upstreams":["127.0.0.1:53"],
		"master":{"listen":["127.0.0.1:61053"],"masters":[%q],"http":"","refreshSeconds":3600}}`, url))
	require.NoError(t, err)
	cfg.Master.Listen = []string{"127.0.0.1:0"} // an ephemeral port, which validation refuses
	ctx, cancel := context.WithCancel(t.Context())
	s, err := mesos.NewService(ctx, *cfg.Master, mesos.ServiceOptions{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return s
}

// The stream's SUBSCRIBED snapshot is the cluster the state describes:
// master mode fed the tasks by the snapshot alone (its one poll finds none)
// serves the zones master mode polling the state serves.
func TestStreamSnapshotIsTheState(t *testing.T) {
	const tasks = 50
	// Each master names itself the leader, so the stream is asked of it.
	start := func(state func(addr string) []byte, subscribed []byte, interval time.Duration) string {
		srv := httptest.NewUnstartedServer(nil)
		addr := srv.Listener.Addr().String()
		srv.Config.Handler = handler(t.Context(), state(addr), subscribed, interval)
		srv.Start()
		t.Cleanup(srv.Close)
		return addr
	}
	polled := start(func(addr string) []byte { return synthetic(addr, tasks) }, nil, heartbeat)
	streamed := start(func(addr string) []byte { return synthetic(addr, 0) }, syntheticSubscribed(tasks), 50*time.Millisecond)

	var sub map[string]any
	require.NoError(t, json.Unmarshal(syntheticSubscribed(tasks), &sub), "SUBSCRIBED is JSON")

	a := serveMaster(t, polled)
	b := serveMaster(t, streamed)
	require.Eventually(t, func() bool {
		return a.Master.Stats().Tasks == tasks && b.Master.Stats().Streaming && b.Master.Stats().Tasks == tasks
	}, 30*time.Second, 10*time.Millisecond)
	require.False(t, a.Master.Stats().Streaming, "no stream without -stream")
	require.Equal(t, records(a.Master.Store().Load()), records(b.Master.Store().Load()), "cluster zone")
	require.Equal(t, records(a.Master.NavstarStore().Load()), records(b.Master.NavstarStore().Load()), "thisdcos.directory zone")
	require.Equal(t, uint64(1), b.Master.Stats().Polls)
}

// records lists a zone's records, sorted, but for the SOA and the leading
// master's SRV records, whose ports differ between the two fake masters.
func records(z *zones.Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		if rr.Header().Rrtype == dns.TypeSOA || strings.HasPrefix(rr.Header().Name, "_leader.") {
			continue
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
