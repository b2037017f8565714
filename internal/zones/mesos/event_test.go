package mesos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

func v1IDJSON(v string) map[string]any { return map[string]any{"value": v} }

// recordIO frames events as a master streams them.
func recordIO(t testing.TB, events ...map[string]any) []byte {
	var b bytes.Buffer
	for _, ev := range events {
		j, err := json.Marshal(ev)
		require.NoError(t, err)
		fmt.Fprintf(&b, "%d\n%s", len(j), j)
	}
	return b.Bytes()
}

// readEvents decodes a RecordIO stream of events.
func readEvents(t testing.TB, stream []byte) []*v1Event {
	rr := newRecordReader(bytes.NewReader(stream), 1<<30)
	var out []*v1Event
	for {
		rec, err := rr.next()
		if err != nil {
			break
		}
		ev, err := decodeEvent(rec)
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

// uniqueTaskIDs drops the tasks of a state that repeat an ID within their
// framework. The fixture repeats one, for the state decoder's sake; Mesos
// never does (task IDs are unique within a framework), and neither can
// the operator API, which names a task by its ID in TASK_UPDATED.
func uniqueTaskIDs(t testing.TB, state []byte) []byte {
	var st map[string]any
	require.NoError(t, json.Unmarshal(state, &st))
	for _, fw := range st["frameworks"].([]any) {
		fw := fw.(map[string]any)
		seen := map[any]bool{}
		var tasks []any
		for _, task := range fw["tasks"].([]any) {
			if id := task.(map[string]any)["id"]; !seen[id] {
				seen[id] = true
				tasks = append(tasks, task)
			}
		}
		fw["tasks"] = tasks
	}
	out, err := json.Marshal(st)
	require.NoError(t, err)
	return out
}

// zoneRecords is the cluster zone and the thisdcos.directory zone of st,
// one record a line, sorted.
func zoneRecords(st *State) []string {
	z, _ := BuildZone(st, goldenOptions(), 1)
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	for _, rr := range BuildNavstarZone(st, navstarOptions(), 1).Records() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// A task's records are the same whether it came from a full read of the
// state, from the SUBSCRIBED snapshot, or from TASK_ADDED and TASK_UPDATED
// events (master.proto's Event.TaskAdded and Event.TaskUpdated, whose
// status carries container_status.network_infos and labels).
func TestEventsGiveTheStateRecords(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join(fixtureDir, "mesos-dns-fake-state.json"))
	require.NoError(t, err)
	navFixture, err := os.ReadFile(filepath.Join(fixtureDir, "navstar-state.json"))
	require.NoError(t, err)
	for name, state := range map[string][]byte{
		"fixture":   uniqueTaskIDs(t, fixture),
		"navstar":   uniqueTaskIDs(t, navFixture),
		"synthetic": syntheticState(20, 200),
	} {
		t.Run(name, func(t *testing.T) {
			st, err := DecodeState(bytes.NewReader(state))
			require.NoError(t, err)
			want := zoneRecords(st)
			require.Greater(t, len(want), 20)
			c := testsupport.MesosV1FromState(t, state)

			// The full read before the subscription, without its tasks:
			// it gives the leader and the frameworks' scheduler PIDs.
			bare := *st
			bare.Frameworks = slices.Clone(st.Frameworks)
			for i := range bare.Frameworks {
				bare.Frameworks[i].Tasks = nil
			}
			base := liveFromState(&bare, nil)

			t.Run("snapshot", func(t *testing.T) {
				evs := readEvents(t, recordIO(t, c.Subscribed(c.Tasks, 15)))
				require.Len(t, evs, 1)
				l := liveFromSubscribed(evs[0].Subscribed, base)
				require.Equal(t, want, liveRecords(l))
			})
			t.Run("events", func(t *testing.T) {
				evs := readEvents(t, recordIO(t, append([]map[string]any{c.Subscribed(nil, 15)}, c.LaunchEvents()...)...))
				l := liveFromSubscribed(evs[0].Subscribed, base)
				require.Less(t, len(liveRecords(l)), len(want))
				for _, ev := range evs[1:] {
					require.True(t, l.apply(ev), "event %s changes nothing", ev.Type)
				}
				require.Zero(t, l.unknown)
				require.Equal(t, want, liveRecords(l))
			})
		})
	}
}

// A full read goes through the live state unchanged: its records are the
// state's, repeated task IDs and all, and running tasks the stream knows
// as not running yet outlive it.
func TestLiveFromState(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join(fixtureDir, "mesos-dns-fake-state.json"))
	require.NoError(t, err)
	st, err := DecodeState(bytes.NewReader(fixture))
	require.NoError(t, err)
	want := zoneRecords(st)

	prev := liveFromState(st, nil)
	require.Equal(t, want, liveRecords(prev))

	c := testsupport.MesosV1FromState(t, syntheticState(2, 1))
	staging := c.Tasks[0]
	staging["state"], staging["framework_id"] = "TASK_STAGING", v1IDJSON("20140703-014514-3041283216-5050-5348-0000")
	evs := readEvents(t, recordIO(t, map[string]any{"type": "TASK_ADDED", "task_added": map[string]any{"task": staging}}))
	require.True(t, prev.apply(evs[0]))
	require.Equal(t, want, liveRecords(prev), "a staging task has no records")

	next := liveFromState(st, prev)
	require.Equal(t, want, liveRecords(next))
	lf := next.fws["20140703-014514-3041283216-5050-5348-0000"]
	require.NotNil(t, lf.tasks[staging["task_id"].(map[string]any)["value"].(string)], "the staging task is kept")
}

// liveRecords is the zone of a live state, one record a line, sorted.
func liveRecords(l *liveState) []string {
	st, _ := l.state()
	return zoneRecords(st)
}

// FuzzDecodeEvent decodes any record as an operator API event and applies
// what decodes to a live state of the fixture: neither may panic, and the
// zone of the result must build.
func FuzzDecodeEvent(f *testing.F) {
	fixture, err := os.ReadFile(filepath.Join(fixtureDir, "mesos-dns-fake-state.json"))
	require.NoError(f, err)
	st, err := DecodeState(bytes.NewReader(fixture))
	require.NoError(f, err)
	c := testsupport.MesosV1FromState(f, uniqueTaskIDs(f, fixture))
	for _, ev := range append([]map[string]any{c.Subscribed(c.Tasks[:2], 15)}, c.LaunchEvents()...) {
		j, err := json.Marshal(ev)
		require.NoError(f, err)
		f.Add(j)
	}
	f.Add([]byte(`{"type":"AGENT_REMOVED","agent_removed":{"agent_id":{"value":"20140803-125133-3041283216-5050-2410-0"}}}`))
	f.Add([]byte(`{"type":"FRAMEWORK_REMOVED","framework_removed":{"framework_info":{"id":{"value":"20140703-014514-3041283216-5050-5348-0000"}}}}`))
	f.Add([]byte(`{"type":"HEARTBEAT"}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		ev, err := decodeEvent(rec)
		if err != nil {
			return
		}
		l := liveFromState(st, nil)
		if ev.Type == eventSubscribed && ev.Subscribed != nil {
			l = liveFromSubscribed(ev.Subscribed, l)
		} else {
			l.apply(ev)
		}
		s, refs := l.state()
		require.Equal(t, s.RunningTasks(), len(refs))
		buildIndexed(s, refs, goldenOptions(), 1)
	})
}

// An agent or framework that registers again as it was (master.proto's
// AGENT_ADDED on re-registration, FRAMEWORK_UPDATED on a scheduler's
// reconnection) changes nothing, and costs no whole build; a changed one
// does.
func TestReregistrationChangesNothing(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join(fixtureDir, "mesos-dns-fake-state.json"))
	require.NoError(t, err)
	st, err := DecodeState(bytes.NewReader(fixture))
	require.NoError(t, err)
	l := liveFromState(st, nil)
	l.takeChanges()
	c := testsupport.MesosV1FromState(t, fixture)
	again := readEvents(t, recordIO(t,
		map[string]any{"type": "AGENT_ADDED", "agent_added": map[string]any{"agent": c.Agents[0]}},
		map[string]any{"type": "FRAMEWORK_UPDATED", "framework_updated": map[string]any{"framework": c.Frameworks[0]}},
	))
	for _, ev := range again {
		require.False(t, l.apply(ev), ev.Type)
	}
	_, full := l.takeChanges()
	require.False(t, full)

	moved := c.Agents[0].(map[string]any)
	moved["pid"] = "slave(1)@10.99.0.1:5051"
	evs := readEvents(t, recordIO(t, map[string]any{"type": "AGENT_ADDED", "agent_added": map[string]any{"agent": moved}}))
	require.True(t, l.apply(evs[0]))
	_, full = l.takeChanges()
	require.True(t, full)
}

// Strings and names read as DecodeState reads them: invalid UTF-8 becomes
// U+FFFD, the last of repeated names wins, names match in any case.
func TestDecodeEventAsTheStateDecoder(t *testing.T) {
	ev, err := decodeEvent([]byte("{\"type\":\"TASK_ADDED\",\"task_added\":{\"task\":{\"name\":\"a\xffb\",\"NAME\":\"c\xffd\",\"Task_ID\":{\"value\":\"x\"},\"state\":\"TASK_RUNNING\"}}}"))
	require.NoError(t, err)
	require.Equal(t, "c\uFFFDd", ev.TaskAdded.Task.Name)
	require.Equal(t, "x", ev.TaskAdded.Task.TaskID.Value)
	st, err := DecodeState(strings.NewReader("{\"frameworks\":[{\"name\":\"f\",\"tasks\":[{\"name\":\"a\xffb\",\"NAME\":\"c\xffd\",\"ID\":\"x\",\"state\":\"TASK_RUNNING\"}]}]}"))
	require.NoError(t, err)
	require.Equal(t, st.Frameworks[0].Tasks[0].Name, ev.TaskAdded.Task.Name)

	for _, bad := range []string{`{"type":"TASK_ADDED","task_added":{"task":{"name":7}}}`, `{"task_added":{}}`, `[]`, `{"type":"HEARTBEAT"`} {
		_, err := decodeEvent([]byte(bad))
		require.Error(t, err, bad)
	}
}
