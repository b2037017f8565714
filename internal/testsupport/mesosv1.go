package testsupport

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// MesosV1Cluster is a state JSON document turned into the operator API's
// messages (include/mesos/v1/master/master.proto: Event.Subscribed with
// Response.GetState, Event.TaskAdded, Event.TaskUpdated; the Task,
// TaskStatus, Resource, Labels, ContainerStatus and DiscoveryInfo of
// include/mesos/v1/mesos.proto), as a master would stream them for the same
// cluster.
type MesosV1Cluster struct {
	// Agents and Frameworks are Response.GetAgents.Agent and
	// Response.GetFrameworks.Framework objects.
	Agents, Frameworks []any
	// Tasks are mesos.v1.Task objects, as in GetTasks.tasks.
	Tasks []map[string]any
}

func v1ID(v any) map[string]any { return map[string]any{"value": v} }

// MesosV1FromState converts a state JSON document (as /master/state serves it).
func MesosV1FromState(t testing.TB, state []byte) *MesosV1Cluster {
	t.Helper()
	var st struct {
		Slaves     []map[string]any `json:"slaves"`
		Frameworks []struct {
			ID       string           `json:"id"`
			Name     string           `json:"name"`
			Hostname string           `json:"hostname"`
			Tasks    []map[string]any `json:"tasks"`
		} `json:"frameworks"`
	}
	require.NoError(t, json.Unmarshal(state, &st))
	c := &MesosV1Cluster{}
	for _, s := range st.Slaves {
		c.Agents = append(c.Agents, map[string]any{
			"agent_info": map[string]any{"hostname": s["hostname"], "id": v1ID(s["id"]), "port": 5051},
			"active":     true, "version": "1.9.0", "pid": s["pid"],
		})
	}
	for _, fw := range st.Frameworks {
		c.Frameworks = append(c.Frameworks, map[string]any{
			"framework_info": map[string]any{"user": "root", "name": fw.Name, "id": v1ID(fw.ID), "hostname": fw.Hostname},
			"active":         true, "connected": true, "recovered": false,
		})
		for _, task := range fw.Tasks {
			c.Tasks = append(c.Tasks, v1TaskJSON(t, fw.ID, task))
		}
	}
	return c
}

// v1TaskJSON converts a state JSON task: IDs become {"value"}, the "ports"
// text a RANGES resource, task and status labels Labels messages.
func v1TaskJSON(t testing.TB, fwID string, task map[string]any) map[string]any {
	out := map[string]any{
		"name": task["name"], "task_id": v1ID(task["id"]), "framework_id": v1ID(fwID),
		"agent_id": v1ID(task["slave_id"]), "state": task["state"],
	}
	if res, ok := task["resources"].(map[string]any); ok {
		var v1res []any
		for name, v := range res {
			if f, ok := v.(float64); ok {
				v1res = append(v1res, map[string]any{"name": name, "type": "SCALAR", "scalar": map[string]any{"value": f}})
			}
		}
		if ports, ok := res["ports"].(string); ok {
			var ranges []any
			for part := range strings.SplitSeq(strings.Trim(ports, "[]"), ",") {
				if part = strings.TrimSpace(part); part == "" {
					continue
				}
				lo, hi, _ := strings.Cut(part, "-")
				b, err1 := strconv.ParseUint(lo, 10, 64)
				e, err2 := strconv.ParseUint(hi, 10, 64)
				require.NoError(t, err1)
				require.NoError(t, err2)
				ranges = append(ranges, map[string]any{"begin": b, "end": e})
			}
			v1res = append(v1res, map[string]any{"name": "ports", "type": "RANGES", "ranges": map[string]any{"range": ranges}})
		}
		out["resources"] = v1res
	}
	if sts, ok := task["statuses"].([]any); ok {
		var v1sts []any
		for _, s := range sts {
			s := s.(map[string]any)
			v1s := map[string]any{"task_id": v1ID(task["id"]), "agent_id": v1ID(task["slave_id"])}
			for k, v := range s {
				if k == "labels" {
					v = map[string]any{"labels": v}
				}
				v1s[k] = v
			}
			v1sts = append(v1sts, v1s)
		}
		out["statuses"] = v1sts
	}
	if d, ok := task["discovery"]; ok {
		out["discovery"] = d
	}
	// The container is protobuf JSON in both; task labels are a list in
	// the state, a Labels message in the operator API.
	if c, ok := task["container"]; ok {
		out["container"] = c
	}
	if l, ok := task["labels"]; ok {
		out["labels"] = map[string]any{"labels": l}
	}
	return out
}

// Subscribed is the SUBSCRIBED event, with the tasks given.
func (c *MesosV1Cluster) Subscribed(tasks []map[string]any, heartbeat float64) map[string]any {
	return map[string]any{"type": "SUBSCRIBED", "subscribed": map[string]any{
		"get_state": map[string]any{
			"get_tasks":      map[string]any{"tasks": tasks},
			"get_frameworks": map[string]any{"frameworks": c.Frameworks},
			"get_agents":     map[string]any{"agents": c.Agents},
		},
		"heartbeat_interval_seconds": heartbeat,
	}}
}

// LaunchEvents are the events of the tasks' launches: TASK_ADDED while
// staging, then a TASK_UPDATED per status, the last with the task's state.
func (c *MesosV1Cluster) LaunchEvents() []map[string]any {
	var out []map[string]any
	for _, task := range c.Tasks {
		staged := map[string]any{}
		for k, v := range task {
			staged[k] = v
		}
		staged["state"] = "TASK_STAGING"
		delete(staged, "statuses")
		out = append(out, map[string]any{"type": "TASK_ADDED", "task_added": map[string]any{"task": staged}})
		sts, _ := task["statuses"].([]any)
		for i, s := range sts {
			state := s.(map[string]any)["state"]
			if i == len(sts)-1 {
				state = task["state"]
			}
			out = append(out, map[string]any{"type": "TASK_UPDATED", "task_updated": map[string]any{
				"framework_id": task["framework_id"], "status": s, "state": state,
			}})
		}
	}
	return out
}

// TaskAddedEvent is a TASK_ADDED event (master.proto Event.TaskAdded) for a
// task just launched in state (TASK_STAGING as Mesos sends it), with no
// status yet and one host port.
func TaskAddedEvent(frameworkID, agentID, taskID, name, state string, port int) map[string]any {
	return map[string]any{"type": "TASK_ADDED", "task_added": map[string]any{"task": map[string]any{
		"name": name, "task_id": v1ID(taskID), "framework_id": v1ID(frameworkID), "agent_id": v1ID(agentID),
		"state": state,
		"resources": []any{map[string]any{"name": "ports", "type": "RANGES",
			"ranges": map[string]any{"range": []any{map[string]any{"begin": port, "end": port}}}}},
	}}}
}

// TaskUpdatedEvent is a TASK_UPDATED event (master.proto Event.TaskUpdated)
// moving the task to state; its status (mesos.proto TaskStatus) carries
// the container's address ip in container_status.network_infos when ip
// is not empty. ts is the status's timestamp.
func TaskUpdatedEvent(frameworkID, agentID, taskID, state, ip string, ts float64) map[string]any {
	status := map[string]any{"task_id": v1ID(taskID), "state": state, "agent_id": v1ID(agentID), "timestamp": ts}
	if ip != "" {
		status["container_status"] = map[string]any{"network_infos": []any{map[string]any{
			"ip_addresses": []any{map[string]any{"protocol": "IPv4", "ip_address": ip}}}}}
	}
	return map[string]any{"type": "TASK_UPDATED", "task_updated": map[string]any{
		"framework_id": v1ID(frameworkID), "status": status, "state": state,
	}}
}
