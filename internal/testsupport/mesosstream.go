package testsupport

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The operator API event stream of a FakeMesosMaster (Mesos 1.1 and
// later): POST /api/v1 with {"type":"SUBSCRIBE"} answers 200 with a
// RecordIO stream of JSON events (include/mesos/v1/master/master.proto's
// Event): SUBSCRIBED with the served state converted (MesosV1FromState),
// then the events a test emits and a HEARTBEAT every interval. Until
// ServeStream is called, /api/v1 answers 404, as a Mesos older than 1.1.

// subscriber is one open subscription: the records to send it.
type subscriber struct {
	out chan []byte
}

// ServeStream makes the master serve the event stream, with heartbeats
// every interval (announced in SUBSCRIBED's heartbeat_interval_seconds);
// zero sends none.
func (m *FakeMesosMaster) ServeStream(t testing.TB, interval time.Duration) {
	t.Helper()
	m.mu.Lock()
	m.stream, m.heartbeat, m.streamT = true, interval, t
	m.mu.Unlock()
}

// Emit sends ev (an Event, marshalled as JSON) to every open
// subscription, and returns how many there were.
func (m *FakeMesosMaster) Emit(t testing.TB, ev any) int {
	t.Helper()
	j, err := json.Marshal(ev)
	require.NoError(t, err, "fake Mesos master: event")
	rec := recordIO(j)
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs {
		select {
		case s.out <- rec:
		case <-m.closed:
		}
	}
	return len(m.subs)
}

// Subscribers returns the number of open subscriptions.
func (m *FakeMesosMaster) Subscribers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs)
}

// WaitSubscribers waits until n subscriptions are open.
func (m *FakeMesosMaster) WaitSubscribers(t testing.TB, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return m.Subscribers() == n }, 10*time.Second, 5*time.Millisecond,
		"fake Mesos master: waiting for %d event stream subscribers", n)
}

// MuteHeartbeats stops (or resumes) the heartbeats of every
// subscription, as a master or a proxy that stalls.
func (m *FakeMesosMaster) MuteHeartbeats(on bool) {
	m.mu.Lock()
	m.mute = on
	m.mu.Unlock()
}

// EndStreams closes every open subscription, as a master that fails over.
func (m *FakeMesosMaster) EndStreams() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs {
		close(s.out)
		delete(m.subs, s)
	}
}

func recordIO(j []byte) []byte {
	return append([]byte(fmt.Sprintf("%d\n", len(j))), j...)
}

// serveStream answers POST /api/v1.
func (m *FakeMesosMaster) serveStream(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	on, interval, t := m.stream, m.heartbeat, m.streamT
	m.mu.Unlock()
	if !on {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var call struct {
		Type string `json:"type"`
	}
	if r.Method != http.MethodPost || json.Unmarshal(body, &call) != nil || call.Type != "SUBSCRIBE" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		http.Error(w, "Expecting a SUBSCRIBE call as JSON", http.StatusBadRequest)
		return
	}
	if a := r.Header.Get("Accept"); a != "" && !strings.Contains(a, "application/json") && !strings.Contains(a, "*/*") {
		http.Error(w, "only application/json is served", http.StatusNotAcceptable)
		return
	}
	state, _ := json.Marshal(m.snapshot())
	c := MesosV1FromState(t, state)
	snap, _ := json.Marshal(c.Subscribed(c.Tasks, interval.Seconds()))

	s := &subscriber{out: make(chan []byte, 1024)}
	m.mu.Lock()
	if m.subs == nil {
		m.subs = map[*subscriber]bool{}
	}
	m.subs[s] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.subs, s)
		m.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	write := func(rec []byte) bool {
		if _, err := w.Write(rec); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	if !write(recordIO(snap)) {
		return
	}
	var tick <-chan time.Time
	if interval > 0 {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case rec, ok := <-s.out:
			if !ok || !write(rec) {
				return
			}
		case <-tick:
			m.mu.Lock()
			mute := m.mute
			m.mu.Unlock()
			if mute {
				continue
			}
			if !write(recordIO([]byte(`{"type":"HEARTBEAT"}`))) {
				return
			}
		case <-r.Context().Done():
			return
		case <-m.closed:
			return
		}
	}
}
