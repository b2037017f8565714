package mesos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The operator API's events, as the master streams them in answer to
// SUBSCRIBE: the messages of Mesos's include/mesos/v1/master/master.proto
// (Event, Response.GetState and the messages it holds) and
// include/mesos/v1/mesos.proto (Task, TaskStatus, ...), in Mesos's JSON
// form of protobuf messages: field names as in the .proto files, enums as
// their names, IDs as {"value": ...}. Only the fields naming needs are
// declared; the rest are skipped by the decoder.

// Event types (Event.Type).
const (
	eventSubscribed       = "SUBSCRIBED"
	eventTaskAdded        = "TASK_ADDED"
	eventTaskUpdated      = "TASK_UPDATED"
	eventAgentAdded       = "AGENT_ADDED"
	eventAgentRemoved     = "AGENT_REMOVED"
	eventFrameworkAdded   = "FRAMEWORK_ADDED"
	eventFrameworkUpdated = "FRAMEWORK_UPDATED"
	eventFrameworkRemoved = "FRAMEWORK_REMOVED"
	eventHeartbeat        = "HEARTBEAT"
)

// v1Event is master.proto's Event.
type v1Event struct {
	Type             string              `json:"type"`
	Subscribed       *v1Subscribed       `json:"subscribed"`
	TaskAdded        *v1TaskAdded        `json:"task_added"`
	TaskUpdated      *v1TaskUpdated      `json:"task_updated"`
	AgentAdded       *v1AgentAdded       `json:"agent_added"`
	AgentRemoved     *v1AgentRemoved     `json:"agent_removed"`
	FrameworkAdded   *v1FrameworkEvent   `json:"framework_added"`
	FrameworkUpdated *v1FrameworkEvent   `json:"framework_updated"`
	FrameworkRemoved *v1FrameworkRemoved `json:"framework_removed"`
}

// v1Subscribed is Event.Subscribed.
type v1Subscribed struct {
	GetState                 v1GetState `json:"get_state"`
	HeartbeatIntervalSeconds float64    `json:"heartbeat_interval_seconds"`
}

// v1GetState is Response.GetState (get_executors is not needed).
type v1GetState struct {
	GetTasks struct {
		PendingTasks []v1Task `json:"pending_tasks"`
		Tasks        []v1Task `json:"tasks"`
	} `json:"get_tasks"`
	GetFrameworks struct {
		Frameworks          []v1Framework `json:"frameworks"`
		CompletedFrameworks []v1Framework `json:"completed_frameworks"`
	} `json:"get_frameworks"`
	GetAgents struct {
		Agents []v1Agent `json:"agents"`
	} `json:"get_agents"`
}

// v1TaskAdded is Event.TaskAdded.
type v1TaskAdded struct {
	Task v1Task `json:"task"`
}

// v1TaskUpdated is Event.TaskUpdated: status is the latest status the
// scheduler acknowledged, state the latest state, which may be newer.
type v1TaskUpdated struct {
	FrameworkID v1ID     `json:"framework_id"`
	Status      v1Status `json:"status"`
	State       string   `json:"state"`
}

// v1AgentAdded is Event.AgentAdded.
type v1AgentAdded struct {
	Agent v1Agent `json:"agent"`
}

// v1AgentRemoved is Event.AgentRemoved.
type v1AgentRemoved struct {
	AgentID v1ID `json:"agent_id"`
}

// v1FrameworkEvent is Event.FrameworkAdded and Event.FrameworkUpdated.
type v1FrameworkEvent struct {
	Framework v1Framework `json:"framework"`
}

// v1FrameworkRemoved is Event.FrameworkRemoved.
type v1FrameworkRemoved struct {
	FrameworkInfo v1FrameworkInfo `json:"framework_info"`
}

// v1ID is any of mesos.proto's TaskID, FrameworkID, AgentID.
type v1ID struct {
	Value string `json:"value"`
}

// v1Agent is Response.GetAgents.Agent.
type v1Agent struct {
	AgentInfo struct {
		Hostname string `json:"hostname"`
		ID       v1ID   `json:"id"`
	} `json:"agent_info"`
	PID string `json:"pid"`
}

// v1Framework is Response.GetFrameworks.Framework. It carries no
// scheduler PID: a framework first seen through events is named after its
// FrameworkInfo.hostname until a full read of the state gives its PID.
type v1Framework struct {
	FrameworkInfo v1FrameworkInfo `json:"framework_info"`
}

// v1FrameworkInfo is mesos.proto's FrameworkInfo.
type v1FrameworkInfo struct {
	ID       v1ID   `json:"id"`
	Name     string `json:"name"`
	Hostname string `json:"hostname"`
}

// v1Task is mesos.proto's Task.
type v1Task struct {
	Name        string       `json:"name"`
	TaskID      v1ID         `json:"task_id"`
	FrameworkID v1ID         `json:"framework_id"`
	AgentID     v1ID         `json:"agent_id"`
	State       string       `json:"state"`
	Resources   []v1Resource `json:"resources"`
	Statuses    []v1Status   `json:"statuses"`
	Discovery   *v1Discovery `json:"discovery"`
	Labels      v1Labels     `json:"labels"`
	Container   *v1Container `json:"container"`
}

// v1Resource is mesos.proto's Resource, for its ranges.
type v1Resource struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Ranges struct {
		Range []struct {
			Begin uint64 `json:"begin"`
			End   uint64 `json:"end"`
		} `json:"range"`
	} `json:"ranges"`
}

// v1Status is mesos.proto's TaskStatus.
type v1Status struct {
	TaskID          v1ID               `json:"task_id"`
	State           string             `json:"state"`
	AgentID         v1ID               `json:"agent_id"`
	Timestamp       float64            `json:"timestamp"`
	Healthy         *bool              `json:"healthy"`
	Labels          v1Labels           `json:"labels"`
	ContainerStatus *v1ContainerStatus `json:"container_status"`
}

// v1Labels is mesos.proto's Labels.
type v1Labels struct {
	Labels []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"labels"`
}

// v1ContainerStatus is mesos.proto's ContainerStatus.
type v1ContainerStatus struct {
	NetworkInfos []v1NetworkInfo `json:"network_infos"`
}

// v1NetworkInfo is mesos.proto's NetworkInfo; ip_address is the single
// address of Mesos before 0.26, still read as the state decoder reads it.
type v1NetworkInfo struct {
	IPAddresses []struct {
		IPAddress string `json:"ip_address"`
	} `json:"ip_addresses"`
	IPAddress    string          `json:"ip_address"`
	PortMappings []v1PortMapping `json:"port_mappings"`
}

// v1Discovery is mesos.proto's DiscoveryInfo.
type v1Discovery struct {
	Name  string `json:"name"`
	Ports struct {
		Ports []struct {
			Number   int      `json:"number"`
			Name     string   `json:"name"`
			Protocol string   `json:"protocol"`
			Labels   v1Labels `json:"labels"`
		} `json:"ports"`
	} `json:"ports"`
}

// eventOptions make the event decoder read strings and names as
// DecodeState does: invalid UTF-8 becomes U+FFFD, a repeated name's last
// value wins, names match case-insensitively when not exactly.
var eventOptions = json.JoinOptions(
	jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true),
	json.MatchCaseInsensitiveNames(true),
)

// decodeEvent decodes one event record. Unknown fields are skipped, as a
// newer Mesos adds them; a known field of the wrong JSON type is an error.
func decodeEvent(rec []byte) (*v1Event, error) {
	ev := &v1Event{}
	if err := json.Unmarshal(rec, ev, eventOptions); err != nil {
		return nil, fmt.Errorf("operator API event: %w", err)
	}
	if ev.Type == "" {
		return nil, fmt.Errorf("operator API event without a type")
	}
	return ev, nil
}

// taskFromV1 is the one conversion of an operator API Task into the Task
// naming uses; it must give what DecodeState gives for the same task in
// the state JSON, so a task's records do not depend on how it arrived.
// running reports whether the task's latest state is TASK_RUNNING; best
// is the latest running status it was given (see mergeStatus).
func taskFromV1(v *v1Task) (t Task, running bool, best statusMark) {
	t = Task{
		ID:      v.TaskID.Value,
		Name:    v.Name,
		SlaveID: v.AgentID.Value,
		Hash:    taskHash(v.TaskID.Value),
		Ports:   v1Ports(v.Resources),
	}
	if v.Discovery != nil && v.Discovery.Name != "" {
		d := &Discovery{Name: v.Discovery.Name}
		for _, p := range v.Discovery.Ports.Ports {
			d.Ports = append(d.Ports, DiscoveryPort{Number: p.Number, Protocol: p.Protocol, Name: p.Name})
		}
		t.Discovery = d
	}
	best.nav = navFromV1(v)
	for i := range v.Statuses {
		mergeStatus(&t, &best, &v.Statuses[i])
	}
	best.setHostPorts(&t)
	return t, v.State == "TASK_RUNNING", best
}

// statusMark remembers which status a task's addresses came from: the
// latest TASK_RUNNING one for the Mesos-DNS names, the latest of any
// state for dcos-net's (see latestStatus), and what the task itself says
// of its host ports.
type statusMark struct {
	have bool
	ts   float64
	// latest is the dcos-net view: the latest status whatever its state.
	latest navLatest
	nav    navTask
}

// mergeStatus applies a status to t when it is a running status later
// than the one t's addresses came from: as DecodeState, the latest
// TASK_RUNNING status by timestamp carries the health and the addresses.
func mergeStatus(t *Task, best *statusMark, s *v1Status) {
	latestStatus(t, best, s)
	if s.State != "TASK_RUNNING" || (best.have && s.Timestamp <= best.ts) {
		return
	}
	best.have, best.ts = true, s.Timestamp
	t.Unhealthy = s.Healthy != nil && !*s.Healthy
	t.NetInfoIPs, t.MesosIPs, t.DockerIPs = nil, nil, nil
	for _, l := range s.Labels.Labels {
		switch l.Key {
		case mesosIPLabel:
			t.MesosIPs = appendIP(t.MesosIPs, l.Value)
		case dockerIPLabel:
			t.DockerIPs = appendIP(t.DockerIPs, l.Value)
		}
	}
	if s.ContainerStatus != nil {
		for _, ni := range s.ContainerStatus.NetworkInfos {
			if len(ni.IPAddresses) == 0 {
				t.NetInfoIPs = appendIP(t.NetInfoIPs, ni.IPAddress)
				continue
			}
			for _, a := range ni.IPAddresses {
				t.NetInfoIPs = appendIP(t.NetInfoIPs, a.IPAddress)
			}
		}
	}
}

// v1Ports returns the host ports of a task's "ports" resources. The state
// JSON gives them summed into one ranges value (Mesos adds Value::Ranges
// by sorting and coalescing overlapping and adjacent ranges) and printed
// as "[lo-hi, ...]"; the same is done here, and the text parsed the way
// DecodeState parses it.
func v1Ports(rs []v1Resource) []PortRange {
	type span struct{ lo, hi uint64 }
	var spans []span
	for i := range rs {
		if rs[i].Name != "ports" || rs[i].Type != "RANGES" {
			continue
		}
		for _, r := range rs[i].Ranges.Range {
			if r.Begin <= r.End {
				spans = append(spans, span{r.Begin, r.End})
			}
		}
	}
	if len(spans) == 0 {
		return nil
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.lo != b.lo {
			return cmpU64(a.lo, b.lo)
		}
		return cmpU64(a.hi, b.hi)
	})
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if s.lo <= last.hi+1 {
			last.hi = max(last.hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range merged {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(s.lo, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(s.hi, 10))
	}
	b.WriteByte(']')
	return parsePortRanges(b.String())
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
