package testsupport

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// MesosMode is how a FakeMesosMaster answers state requests.
type MesosMode int

// The modes of a FakeMesosMaster.
const (
	// MesosOK serves the state.
	MesosOK MesosMode = iota
	// MesosFail answers 500 Internal Server Error.
	MesosFail
	// MesosHang accepts the request and never answers (until the client
	// gives up or the server closes).
	MesosHang
	// MesosGarbage answers 200 with a body that is not JSON.
	MesosGarbage
	// MesosTruncated answers 200 with the state cut in the middle.
	MesosTruncated
)

// FakeMesosMaster is a Mesos master's HTTP API on a loopback port, serving a
// state that tests change at run time. It serves /master/state,
// /master/state.json, /state and /state.json (which of them is
// configurable, to play old masters), /master/redirect, and with
// ServeStream the operator API's event stream (mesosstream.go). When another master is set as the leader
// it answers like a non-leading Mesos master: a state naming the leader and
// holding no frameworks, or, with RedirectToLeader, a 307 to the leader.
type FakeMesosMaster struct {
	srv    *httptest.Server
	closed chan struct{}

	mu       sync.Mutex
	state    map[string]json.RawMessage
	mode     MesosMode
	leader   string // host:port of the leader; "" means this master
	redirect bool
	noLeader bool
	paths    map[string]bool
	requests map[string]int
	polls    map[string]int // state requests by client host; "" counts all
	// The event stream (mesosstream.go).
	stream    bool
	heartbeat time.Duration
	streamT   testing.TB
	subs      map[*subscriber]bool
	mute      bool
}

// statePaths are the state endpoints a FakeMesosMaster can serve.
var statePaths = map[string]bool{"/master/state": true, "/master/state.json": true, "/state": true, "/state.json": true}

// NewFakeMesosMaster starts a fake master serving state (a Mesos state
// JSON object) as the leader. Its "leader" field is rewritten to the
// current leader's address on every request. It stops when the test ends.
func NewFakeMesosMaster(t testing.TB, state []byte) *FakeMesosMaster {
	t.Helper()
	return NewFakeMesosMasterAt(t, "", state)
}

// NewFakeMesosMasterAt is NewFakeMesosMaster serving on addr (host:port)
// instead of a free loopback port; "" means a free loopback port. Combined
// with NetNS.Do it puts the master on a node of a test topology.
func NewFakeMesosMasterAt(t testing.TB, addr string, state []byte) *FakeMesosMaster {
	t.Helper()
	m := &FakeMesosMaster{
		closed:   make(chan struct{}),
		paths:    maps.Clone(statePaths),
		requests: map[string]int{},
		polls:    map[string]int{},
	}
	m.SetState(t, state)
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		require.NoError(t, err, "fake Mesos master: listening on %s", addr)
		m.srv.Listener.Close()
		m.srv.Listener = ln
	}
	m.srv.Start()
	t.Cleanup(m.Close)
	return m
}

// Addr returns the master's host:port.
func (m *FakeMesosMaster) Addr() string {
	return strings.TrimPrefix(strings.TrimPrefix(m.srv.URL, "http://"), "https://")
}

// Close stops the server, releasing hanging requests first.
func (m *FakeMesosMaster) Close() {
	m.mu.Lock()
	select {
	case <-m.closed:
		m.mu.Unlock()
		return
	default:
		close(m.closed)
	}
	m.mu.Unlock()
	m.srv.Close()
}

// SetState replaces the served state.
func (m *FakeMesosMaster) SetState(t testing.TB, state []byte) {
	t.Helper()
	var obj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(state, &obj), "fake Mesos master state must be a JSON object")
	m.mu.Lock()
	m.state = obj
	m.mu.Unlock()
}

// SetMode sets how state requests are answered.
func (m *FakeMesosMaster) SetMode(mode MesosMode) {
	m.mu.Lock()
	m.mode = mode
	m.mu.Unlock()
}

// SetLeader makes the master at addr (host:port) the leader this master
// reports; "" makes this master the leader again.
func (m *FakeMesosMaster) SetLeader(addr string) {
	m.mu.Lock()
	m.leader = addr
	m.mu.Unlock()
}

// RedirectToLeader makes a non-leading master answer state requests with a
// 307 to the leader, as Mesos 1.x does, instead of a leaderless state.
func (m *FakeMesosMaster) RedirectToLeader(on bool) {
	m.mu.Lock()
	m.redirect = on
	m.mu.Unlock()
}

// OmitLeader makes the served state carry no "leader" field, as from a
// master that has not learned the leader; /master/redirect still knows it.
func (m *FakeMesosMaster) OmitLeader(on bool) {
	m.mu.Lock()
	m.noLeader = on
	m.mu.Unlock()
}

// ServePaths limits the state endpoints served (others answer 404), to play
// masters of other Mesos versions.
func (m *FakeMesosMaster) ServePaths(paths ...string) {
	m.mu.Lock()
	m.paths = map[string]bool{}
	for _, p := range paths {
		m.paths[p] = true
	}
	m.mu.Unlock()
}

// Requests returns how many requests path has received.
func (m *FakeMesosMaster) Requests(path string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests[path]
}

// StatePolls returns how many requests for any state endpoint have come
// from the client host from (an IP address; "" counts every client),
// however they were answered. A request is counted on arrival, together
// with taking the state it is answered with: one counted after SetState
// returned is answered with the new state. A client that makes one state
// request per poll, one poll at a time, has therefore applied the first
// such answer by the time its second request is counted.
func (m *FakeMesosMaster) StatePolls(from string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.polls[from]
}

func (m *FakeMesosMaster) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1" {
		m.mu.Lock()
		m.requests[r.URL.Path]++
		m.mu.Unlock()
		m.serveStream(w, r)
		return
	}
	m.mu.Lock()
	m.requests[r.URL.Path]++
	if statePaths[r.URL.Path] {
		m.polls[""]++
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			m.polls[host]++
		}
	}
	mode, leader, redirect, served := m.mode, m.leader, m.redirect, m.paths[r.URL.Path]
	self := m.Addr()
	if leader == "" {
		leader = self
	}
	var body []byte
	if served && mode == MesosOK {
		st := make(map[string]json.RawMessage, len(m.state)+1)
		for k, v := range m.state {
			st[k] = v
		}
		st["leader"], _ = json.Marshal("master@" + leader)
		st["pid"], _ = json.Marshal("master@" + self)
		delete(st, "leader_info")
		if m.noLeader {
			delete(st, "leader")
		}
		if leader != self {
			// A non-leading master knows no frameworks or agents.
			st["frameworks"], st["slaves"] = json.RawMessage("[]"), json.RawMessage("[]")
		}
		body, _ = json.Marshal(st)
	}
	m.mu.Unlock()

	if r.URL.Path == "/master/redirect" {
		http.Redirect(w, r, "//"+leader, http.StatusTemporaryRedirect)
		return
	}
	if !served {
		http.NotFound(w, r)
		return
	}
	switch mode {
	case MesosFail:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	case MesosHang:
		select {
		case <-r.Context().Done():
		case <-m.closed:
		}
		return
	case MesosGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("\x00<html>Service Unavailable</html>{{{"))
		return
	case MesosTruncated:
		w.Header().Set("Content-Type", "application/json")
		st, _ := json.Marshal(m.snapshot())
		_, _ = w.Write(st[:len(st)/2])
		return
	}
	if leader != self && redirect {
		http.Redirect(w, r, "http://"+leader+r.URL.Path, http.StatusTemporaryRedirect)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (m *FakeMesosMaster) snapshot() map[string]json.RawMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}
