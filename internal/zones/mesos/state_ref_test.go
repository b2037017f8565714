package mesos

// The encoding/json decoder DecodeState replaced, kept as the reference the
// streaming decoder is checked against (same State for the same input).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"strings"
)

// rawTask mirrors the JSON of a task, only the fields used.
type rawTask struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	SlaveID   string `json:"slave_id"`
	State     string `json:"state"`
	Resources struct {
		Ports json.RawMessage `json:"ports"`
	} `json:"resources"`
	Statuses  []rawStatus `json:"statuses"`
	Discovery *struct {
		Name  string `json:"name"`
		Ports struct {
			Ports []DiscoveryPort `json:"ports"`
		} `json:"ports"`
	} `json:"discovery"`
}

type rawStatus struct {
	State           string     `json:"state"`
	Timestamp       float64    `json:"timestamp"`
	Healthy         *bool      `json:"healthy"`
	Labels          []rawLabel `json:"labels"`
	ContainerStatus struct {
		NetworkInfos []struct {
			IPAddresses []struct {
				IPAddress string `json:"ip_address"`
			} `json:"ip_addresses"`
			// IPAddress is the Mesos 0.25 form.
			IPAddress    string `json:"ip_address"`
			PortMappings any    `json:"port_mappings"`
		} `json:"network_infos"`
	} `json:"container_status"`
}

type rawLabel struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type rawLeaderInfo struct {
	PID     string `json:"pid"`
	Port    int    `json:"port"`
	Address struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	} `json:"address"`
}

// skip consumes a JSON value without keeping it.
type skip struct{}

func (*skip) UnmarshalJSON([]byte) error { return nil }

// DecodeState reads a Mesos master state from r. It streams: the large
// arrays (frameworks, their tasks, agents) are decoded one element at a
// time and reduced at once, so memory stays proportional to the result,
// not to the JSON. Unknown fields are ignored; tasks that are not
// TASK_RUNNING are dropped. Syntax errors fail the whole decode; a running
// task whose fields have the wrong JSON types is skipped and counted.
func decodeStateRef(r io.Reader) (*State, error) {
	dec := json.NewDecoder(r)
	st := &State{}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var leaderInfo rawLeaderInfo
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		switch key {
		case "leader":
			var s *string
			if err := dec.Decode(&s); err != nil {
				return nil, fmt.Errorf("state: leader: %w", err)
			}
			if s != nil {
				st.Leader = pidAddr(*s)
			}
		case "pid":
			var s *string
			if err := dec.Decode(&s); err != nil {
				return nil, fmt.Errorf("state: pid: %w", err)
			}
			if s != nil {
				st.PID = pidAddr(*s)
			}
		case "leader_info":
			if err := dec.Decode(&leaderInfo); err != nil {
				return nil, fmt.Errorf("state: leader_info: %w", err)
			}
		case "frameworks":
			err = eachElement(dec, func() error {
				fw, err := decodeFrameworkRef(dec, st)
				if err != nil {
					return err
				}
				st.Frameworks = append(st.Frameworks, fw)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("state: frameworks: %w", err)
			}
		case "completed_frameworks":
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("state: completed_frameworks: %w", err)
			}
			st.CompletedFrameworks = append(st.CompletedFrameworks, completedFrameworksRef(raw)...)
		case "slaves":
			var raw struct {
				ID       string `json:"id"`
				Hostname string `json:"hostname"`
				PID      string `json:"pid"`
			}
			err = eachElement(dec, func() error {
				raw.ID, raw.Hostname, raw.PID = "", "", ""
				if err := dec.Decode(&raw); err != nil {
					return err
				}
				st.Slaves = append(st.Slaves, Slave(raw))
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("state: slaves: %w", err)
			}
		default:
			if err := skipValue(dec); err != nil {
				return nil, fmt.Errorf("state: %s: %w", key, err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("state: trailing data after the state object")
	}
	if st.Leader == "" {
		st.Leader = leaderInfoAddr(leaderInfo.PID, leaderInfo.Address.IP, leaderInfo.Address.Port, leaderInfo.Port)
	}
	return st, nil
}

// completedFrameworksRef returns the IDs of the completed frameworks in
// raw; values of the wrong shape are left out.
func completedFrameworksRef(raw json.RawMessage) []string {
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return nil
	}
	var ids []string
	for _, e := range elems {
		dec := json.NewDecoder(bytes.NewReader(e))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			continue
		}
		var id string
		bad := false
		for dec.More() {
			key, err := objectKey(dec)
			if err != nil {
				bad = true
				break
			}
			if key != "id" {
				if skipValue(dec) != nil {
					bad = true
					break
				}
				continue
			}
			var s *string
			if err := dec.Decode(&s); err != nil {
				bad = true
			} else if s != nil {
				id = *s
			}
		}
		if !bad && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// decodeFramework reads one framework object, streaming its task list.
func decodeFrameworkRef(dec *json.Decoder, st *State) (Framework, error) {
	var fw Framework
	if err := expectDelim(dec, '{'); err != nil {
		return fw, err
	}
	var raw rawTask
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return fw, err
		}
		var dst *string
		switch key {
		case "id":
			dst = &fw.ID
		case "name":
			dst = &fw.Name
		case "pid":
			dst = &fw.PID
		case "hostname":
			dst = &fw.Hostname
		case "tasks":
			err := eachElement(dec, func() error {
				// A fresh value each time: decoding into a reused slice
				// would leave stale fields from the previous task.
				raw = rawTask{}
				var msg json.RawMessage
				if err := dec.Decode(&msg); err != nil {
					return err
				}
				if err := json.Unmarshal(msg, &raw); err != nil {
					var typeErr *json.UnmarshalTypeError
					if errors.As(err, &typeErr) {
						// Only this task is bad. It counts when it was
						// running or its state cannot be read.
						var state struct {
							State json.RawMessage `json:"state"`
						}
						_ = json.Unmarshal(msg, &state)
						read := len(state.State) > 0 && state.State[0] == '"'
						if !read || raw.State == "TASK_RUNNING" {
							st.Skipped++
						}
						return nil
					}
					return err
				}
				if t, ok := reduceTaskRef(&raw); ok {
					navTaskRef(&t, &raw, msg)
					fw.Tasks = append(fw.Tasks, t)
				}
				return nil
			})
			if err != nil {
				return fw, fmt.Errorf("framework %q tasks: %w", fw.ID, err)
			}
			continue
		default:
			if err := skipValue(dec); err != nil {
				return fw, fmt.Errorf("framework %q %s: %w", fw.ID, key, err)
			}
			continue
		}
		var s *string
		if err := dec.Decode(&s); err != nil {
			return fw, fmt.Errorf("framework %q %s: %w", fw.ID, key, err)
		}
		if s != nil {
			*dst = *s
		}
	}
	return fw, expectDelim(dec, '}')
}

// reduceTask keeps what naming needs from a running task.
func reduceTaskRef(raw *rawTask) (Task, bool) {
	if raw.State != "TASK_RUNNING" {
		return Task{}, false
	}
	t := Task{ID: raw.ID, Name: raw.Name, SlaveID: raw.SlaveID, Hash: taskHash(raw.ID)}
	t.Ports = parsePorts(raw.Resources.Ports)
	if d := raw.Discovery; d != nil && d.Name != "" {
		t.Discovery = &Discovery{Name: d.Name, Ports: d.Ports.Ports}
	}
	// The latest TASK_RUNNING status carries the addresses: statuses come
	// in no guaranteed order, so go by timestamp.
	latest := -1
	for i := range raw.Statuses {
		s := &raw.Statuses[i]
		if s.State == "TASK_RUNNING" && (latest < 0 || s.Timestamp > raw.Statuses[latest].Timestamp) {
			latest = i
		}
	}
	if latest < 0 {
		return t, true
	}
	s := &raw.Statuses[latest]
	t.Unhealthy = s.Healthy != nil && !*s.Healthy
	for _, ni := range s.ContainerStatus.NetworkInfos {
		if len(ni.IPAddresses) > 0 {
			for _, a := range ni.IPAddresses {
				t.NetInfoIPs = appendIP(t.NetInfoIPs, a.IPAddress)
			}
		} else {
			t.NetInfoIPs = appendIP(t.NetInfoIPs, ni.IPAddress)
		}
	}
	for _, l := range s.Labels {
		switch l.Key {
		case mesosIPLabel:
			t.MesosIPs = appendIP(t.MesosIPs, l.Value)
		case dockerIPLabel:
			t.DockerIPs = appendIP(t.DockerIPs, l.Value)
		}
	}
	return t, true
}

// navTaskRef fills the task's dcos-net fields from its JSON, written from
// dcos_net_mesos_listener's functions over generic JSON values (exact
// keys, as dcos-net's maps have), the way DecodeState documents them.
func navTaskRef(t *Task, raw *rawTask, msg []byte) {
	var obj map[string]any
	_ = json.Unmarshal(msg, &obj)
	// The latest status, whatever its state; the first of equal
	// timestamps.
	latest := -1
	for i := range raw.Statuses {
		if latest < 0 || raw.Statuses[i].Timestamp > raw.Statuses[latest].Timestamp {
			latest = i
		}
	}
	statusNI := pmNone
	if latest >= 0 {
		var ips []netip.Addr
		void := false
		for _, ni := range raw.Statuses[latest].ContainerStatus.NetworkInfos {
			if ni.IPAddresses == nil {
				void = true
			}
			for _, a := range ni.IPAddresses {
				ips = appendStrictIP(ips, []byte(a.IPAddress))
			}
			statusNI = max(statusNI, portMappingsRef(ni.PortMappings))
		}
		if !void && len(ips) > 0 {
			t.ContainerIPs = ips
		}
	}
	pm := pmNone
	switch c := obj["container"].(type) {
	case nil:
		pm = statusNI
	case map[string]any:
		typ, typeSet := c["type"]
		nis, niSet := c["network_infos"]
		switch {
		case typ == nil || typ == "MESOS":
			_, isStr := typ.(string)
			if typeSet && typ != nil && !isStr {
				pm = pmVoid
			} else if niSet && nis != nil {
				list, ok := nis.([]any)
				if !ok {
					pm = pmVoid
				}
				for _, ni := range list {
					m, ok := ni.(map[string]any)
					if !ok {
						pm = pmVoid
						continue
					}
					pm = max(pm, portMappingsRef(m["port_mappings"]))
				}
			} else {
				pm = statusNI
			}
		case typ == "DOCKER":
			switch dk := c["docker"].(type) {
			case nil:
			case map[string]any:
				pm = portMappingsRef(dk["port_mappings"])
			default:
				pm = pmVoid
			}
		default:
			pm = pmVoid
		}
	default:
		pm = pmVoid
	}
	// VIP_PORT<n> task labels.
	ports := 0
	for _, r := range t.Ports {
		ports += int(r.Hi) - int(r.Lo) + 1
	}
	labelsRef(obj["labels"], true, func(k, v string, hasK, hasV bool) {
		if !hasK || !hasV {
			pm = pmVoid
			return
		}
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "vip_port") || !(strings.HasPrefix(v, "tcp://") || strings.HasPrefix(v, "udp://")) {
			return
		}
		idx, ok := new(big.Int).SetString(lk[len("vip_port"):], 10)
		if !ok || idx.Sign() < 0 || lk[len("vip_port"):] == "" {
			return
		}
		if !idx.IsInt64() || idx.Int64() >= int64(ports) {
			pm = pmVoid
		} else {
			pm = max(pm, pmHost)
		}
	}, func() { pm = pmVoid })
	// DiscoveryInfo ports of network-scope host, read as rawTask reads
	// the DiscoveryInfo.
	var extra struct {
		Discovery *struct {
			Ports struct {
				Ports []any `json:"ports"`
			} `json:"ports"`
		} `json:"discovery"`
	}
	_ = json.Unmarshal(msg, &extra)
	if d := extra.Discovery; d != nil {
		for _, p := range d.Ports.Ports {
			m, ok := p.(map[string]any)
			if !ok {
				pm = pmVoid
				continue
			}
			scopes, host, other, void := 0, false, false, false
			labelsRef(m["labels"], false, func(k, v string, hasK, hasV bool) {
				if hasK && hasV && k == "network-scope" {
					scopes++
					host = v == "host"
					other = other || (v != "host" && v != "container")
				}
			}, func() { void = true })
			proto, _ := m["protocol"].(string)
			switch {
			case void || m["number"] == nil || m["protocol"] == nil || scopes > 1 || other:
				pm = pmVoid
			case scopes == 1 && host && isTCPOrUDP([]byte(proto)):
				pm = max(pm, pmHost)
			}
		}
	}
	t.HostPorts = pm == pmHost
}

// appendStrictIP appends s as dcos-net's inet:parse_strict_address reads
// it: an IPv4 or IPv6 address without a zone; an IPv4-mapped IPv6 address
// stays IPv6.
func appendStrictIP(ips []netip.Addr, s []byte) []netip.Addr {
	a, err := netip.ParseAddr(string(s))
	if err != nil || a.Zone() != "" {
		return ips
	}
	return append(ips, a)
}

// portMappingsRef is handle_port_mappings over a generic JSON value.
func portMappingsRef(v any) portMap {
	if v == nil {
		return pmNone
	}
	list, ok := v.([]any)
	if !ok {
		return pmVoid
	}
	pm := pmNone
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok || m["host_port"] == nil || m["container_port"] == nil || m["protocol"] == nil {
			pm = pmVoid
			continue
		}
		if p, ok := m["protocol"].(string); ok && isTCPOrUDP([]byte(p)) {
			pm = max(pm, pmHost)
		}
	}
	return pm
}

// labelsRef calls fn for each label of a Labels value (an array, or an
// object holding one under "labels"), and void for a list that is not
// one and, when strict, for a label it cannot read.
func labelsRef(v any, strict bool, fn func(k, v string, hasK, hasV bool), void func()) {
	if m, ok := v.(map[string]any); ok {
		v = m["labels"]
	} else if v != nil {
		if _, ok := v.([]any); !ok {
			void()
			return
		}
	}
	if v == nil {
		return
	}
	list, ok := v.([]any)
	if !ok {
		void()
		return
	}
	for _, e := range list {
		m, ok := e.(map[string]any)
		k, kOK := m["key"].(string)
		val, vOK := m["value"].(string)
		if !ok || (m["key"] != nil && !kOK) || (m["value"] != nil && !vOK) {
			if strict {
				void()
			}
			continue
		}
		fn(k, val, kOK, vOK)
	}
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q at offset %d, got %v", want, dec.InputOffset(), tok)
	}
	return nil
}

func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("expected an object key at offset %d, got %v", dec.InputOffset(), tok)
	}
	return key, nil
}

// eachElement calls fn for every element of the array that comes next; fn
// must consume exactly one value. A JSON null counts as an empty array.
func eachElement(dec *json.Decoder, fn func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("expected an array at offset %d, got %v", dec.InputOffset(), tok)
	}
	for dec.More() {
		if err := fn(); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// skipValue consumes the next value. Arrays and objects are skipped one
// member at a time, so a large unused array (completed tasks) is never
// held in memory whole.
func skipValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	var s skip
	for dec.More() {
		if d == '{' {
			if _, err := objectKey(dec); err != nil {
				return err
			}
		}
		if err := dec.Decode(&s); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}
