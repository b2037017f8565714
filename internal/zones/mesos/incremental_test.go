package mesos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/zones"
)

func recordStrings(z *zones.Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// randomEvent is a TASK_ADDED or TASK_UPDATED (master.proto's
// Event.TaskAdded, Event.TaskUpdated) of the synthetic state's shape:
// names that repeat (app instances), that are cut to fit a label, dotted
// and upper-case DiscoveryInfo names, and address changes.
func randomEvent(t *testing.T, r *rand.Rand, n int, running []taskRef) *v1Event {
	fw := fmt.Sprintf("0a1b2c3d-fw-%04d", r.IntN(4))
	agent := fmt.Sprintf("0a1b2c3d-4e5f-6789-abcd-ef0123456789-S%d", r.IntN(20))
	ip := fmt.Sprintf("10.7.%d.%d", r.IntN(4), r.IntN(250))
	status := func(id, state string) map[string]any {
		return map[string]any{"task_id": map[string]any{"value": id}, "state": state, "timestamp": float64(n),
			"container_status": map[string]any{"network_infos": []any{map[string]any{
				"ip_addresses": []any{map[string]any{"ip_address": ip}}}}}}
	}
	var ev map[string]any
	switch op := r.IntN(10); {
	case op < 4 || len(running) == 0:
		names := []string{"app-3", "app-7", "web", strings.Repeat("long-name-", 8) + "a", strings.Repeat("long-name-", 8) + "b", "db"}
		id := fmt.Sprintf("new-%d", n)
		task := map[string]any{
			"name": names[r.IntN(len(names))], "task_id": map[string]any{"value": id},
			"framework_id": map[string]any{"value": fw}, "agent_id": map[string]any{"value": agent},
			"state": "TASK_RUNNING", "statuses": []any{status(id, "TASK_RUNNING")},
			"resources": []any{map[string]any{"name": "ports", "type": "RANGES",
				"ranges": map[string]any{"range": []any{map[string]any{"begin": 20000 + r.IntN(5), "end": 20005}}}}},
		}
		if r.IntN(3) == 0 {
			discovery := []string{"Svc.A", "svc", "web", "app-3"}
			task["discovery"] = map[string]any{"visibility": "FRAMEWORK", "name": discovery[r.IntN(len(discovery))],
				"ports": map[string]any{"ports": []any{map[string]any{"number": 80, "name": "http", "protocol": "tcp"}}}}
		}
		ev = map[string]any{"type": "TASK_ADDED", "task_added": map[string]any{"task": task}}
	default:
		ref := running[r.IntN(len(running))]
		state := "TASK_RUNNING"
		if op < 7 {
			state = "TASK_KILLED"
		}
		ev = map[string]any{"type": "TASK_UPDATED", "task_updated": map[string]any{
			"framework_id": map[string]any{"value": ref.fw}, "status": status(ref.key, state), "state": state}}
	}
	j, err := json.Marshal(ev)
	require.NoError(t, err)
	out, err := decodeEvent(j)
	require.NoError(t, err)
	return out
}

// patchable is a zone built whole with what patching it needs, for
// checkPatches.
type patchable struct {
	zone  *zones.Zone
	patch func(cur *zones.Zone, changed map[taskRef]*Task, serial uint32) (*zones.Zone, bool)
}

// checkPatches applies 100 rounds of random additions, kills and address
// changes to a live state of the synthetic state, and checks that every
// zone build patched for the changed tasks holds exactly the records,
// count and hash of the zone build makes whole from the same state; a
// change that cannot be patched must be noticed, not patched wrongly. It
// returns how many rounds were patched.
func checkPatches(t *testing.T, seed uint64, build func(st *State, refs []taskRef, serial uint32) patchable) int {
	st, err := DecodeState(bytes.NewReader(syntheticState(20, 200)))
	require.NoError(t, err)
	l := liveFromState(st, nil)
	s0, refs := l.state()
	l.takeChanges()
	cur := build(s0, refs, 1)
	require.Greater(t, cur.zone.Len(), 100)
	r := rand.New(rand.NewPCG(seed, seed+1))
	patched := 0
	for round := range 100 {
		_, running := l.state()
		for i := range 1 + r.IntN(5) {
			l.apply(randomEvent(t, r, round*10+i, running))
		}
		dirty, full := l.takeChanges()
		require.False(t, full)
		changed := map[taskRef]*Task{}
		for ref := range dirty {
			changed[ref] = l.runningTask(ref)
		}
		st, refs := l.state()
		serial := uint32(round + 2)
		want := build(st, refs, serial)
		got, ok := cur.patch(cur.zone, changed, serial)
		if !ok {
			cur = want
			continue
		}
		patched++
		require.Equal(t, recordStrings(want.zone), recordStrings(got), "round %d", round)
		require.Equal(t, want.zone.Len(), got.Len())
		require.Equal(t, want.zone.Hash(), got.Hash())
		cur.zone = got
	}
	return patched
}

// The cluster zone patched for changed tasks is the zone built whole; the
// rare changes that cannot be patched (see TestPatchNoticesSharedNames)
// are few.
func TestPatchMatchesWholeBuild(t *testing.T) {
	opt := goldenOptions()
	patched := checkPatches(t, 1, func(st *State, refs []taskRef, serial uint32) patchable {
		z, _, idx := buildIndexed(st, refs, opt, serial)
		return patchable{z, func(cur *zones.Zone, changed map[taskRef]*Task, serial uint32) (*zones.Zone, bool) {
			return idx.patch(cur, changed, opt, serial)
		}}
	})
	require.Greater(t, patched, 75)
}

// A task named "framework" publishes _framework._tcp.<fw>.<domain>, the
// name of its framework's own SRV record: its group does not own that
// name, so neither its arrival nor its end can be patched, and both are
// noticed.
func TestPatchNoticesSharedNames(t *testing.T) {
	st, err := DecodeState(bytes.NewReader(syntheticState(2, 4)))
	require.NoError(t, err)
	opt := goldenOptions()
	l := liveFromState(st, nil)
	s0, refs := l.state()
	l.takeChanges()
	z, _, idx := buildIndexed(s0, refs, opt, 1)
	require.NotEmpty(t, z.Lookup("_framework._tcp.marathon.mesos.", dns.TypeSRV).Answer)

	step := func(ev string) (*zones.Zone, *zoneIndex, bool) {
		e, err := decodeEvent([]byte(ev))
		require.NoError(t, err)
		require.True(t, l.apply(e))
		dirty, _ := l.takeChanges()
		changed := map[taskRef]*Task{}
		for ref := range dirty {
			changed[ref] = l.runningTask(ref)
		}
		_, ok := idx.patch(z, changed, opt, 2)
		st, refs := l.state()
		z, _, idx := buildIndexed(st, refs, opt, 2)
		return z, idx, ok
	}
	var ok bool
	z, idx, ok = step(`{"type":"TASK_ADDED","task_added":{"task":{"name":"framework","task_id":{"value":"fw-task"},
		"framework_id":{"value":"0a1b2c3d-fw-0000"},"agent_id":{"value":"0a1b2c3d-4e5f-6789-abcd-ef0123456789-S0"},"state":"TASK_RUNNING",
		"resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":31000}]}}]}}}`)
	require.False(t, ok, "adding at a name the group does not own")
	require.Len(t, z.Lookup("_framework._tcp.marathon.mesos.", dns.TypeSRV).Answer, 2)
	_, _, ok = step(`{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"0a1b2c3d-fw-0000"},
		"status":{"task_id":{"value":"fw-task"},"state":"TASK_KILLED"},"state":"TASK_KILLED"}}`)
	require.False(t, ok, "dropping a name with records of others")
}

// The thisdcos.directory zone patched for changed tasks is the zone built
// whole, every time: its names are a task's and its framework's labels
// (dcos_dns_mesos's task_agentip, task_containerip and task_autoip), so
// a group owns its names outright.
func TestNavPatchMatchesWholeBuild(t *testing.T) {
	opt := navstarOptions()
	// The synthetic agents' host names, resolved as DNS would.
	opt.Resolve = func(host string) []netip.Addr {
		var n int
		if _, err := fmt.Sscanf(host, "agent%d.example.com", &n); err != nil {
			return nil
		}
		return []netip.Addr{netip.AddrFrom4([4]byte{10, 9, byte(n >> 8), byte(n)})}
	}
	patched := checkPatches(t, 3, func(st *State, refs []taskRef, serial uint32) patchable {
		z, idx := buildNavIndexed(st, refs, opt, serial)
		return patchable{z, func(cur *zones.Zone, changed map[taskRef]*Task, serial uint32) (*zones.Zone, bool) {
			return idx.patch(cur, changed, opt, serial)
		}}
	})
	require.Equal(t, 100, patched)
}
