package mesos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// State is the part of a Mesos master's state that names are generated
// from. Only running tasks are kept, already reduced to what the generator
// needs, so a State is much smaller than the JSON it came from.
type State struct {
	// Leader is the leading master's address as host:port, from the
	// state's "leader" PID or its "leader_info"; empty when neither says.
	Leader string
	// PID is the host:port of the master that produced the state, from
	// its "pid"; equal to Leader on the leader.
	PID string
	// Frameworks and Slaves are in state order.
	Frameworks []Framework
	Slaves     []Slave
	// Skipped counts running tasks left out because they were malformed.
	Skipped int
}

// Framework is a Mesos framework and its running tasks.
type Framework struct {
	ID, Name string
	// PID is the scheduler's "scheduler(1)@IP:PORT"; Hostname is used
	// when it is missing.
	PID, Hostname string
	Tasks         []Task
}

// Slave is a Mesos agent.
type Slave struct {
	ID, Hostname string
	// PID is "slave(1)@IP:PORT".
	PID string
}

// Task is a running task, reduced to what naming needs.
type Task struct {
	ID, Name, SlaveID string
	// Hash is the task ID's 5-character canonical-name hash.
	Hash string
	// Unhealthy is set when the latest running status says healthy=false.
	Unhealthy bool
	// IPs found in the latest TASK_RUNNING status, by source.
	NetInfoIPs, MesosIPs, DockerIPs []netip.Addr
	// Ports are the host ports from the task's "ports" resource.
	Ports []PortRange
	// Discovery is the task's DiscoveryInfo; nil without a name.
	Discovery *Discovery
}

// PortRange is an inclusive range of host ports.
type PortRange struct{ Lo, Hi uint16 }

// Discovery is a task's DiscoveryInfo.
type Discovery struct {
	Name  string
	Ports []DiscoveryPort
}

// DiscoveryPort is one DiscoveryInfo port.
type DiscoveryPort struct {
	Number   int    `json:"number"`
	Protocol string `json:"protocol"`
	Name     string `json:"name"`
}

// Label keys carrying a task's container IP in its statuses.
const (
	dockerIPLabel = "Docker.NetworkSettings.IPAddress"
	mesosIPLabel  = "MesosContainerizer.NetworkSettings.IPAddress"
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
			IPAddress string `json:"ip_address"`
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
func DecodeState(r io.Reader) (*State, error) {
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
				fw, err := decodeFramework(dec, st)
				if err != nil {
					return err
				}
				st.Frameworks = append(st.Frameworks, fw)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("state: frameworks: %w", err)
			}
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
		st.Leader = leaderInfoAddr(&leaderInfo)
	}
	return st, nil
}

// decodeFramework reads one framework object, streaming its task list.
func decodeFramework(dec *json.Decoder, st *State) (Framework, error) {
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
				if err := dec.Decode(&raw); err != nil {
					var typeErr *json.UnmarshalTypeError
					if errors.As(err, &typeErr) {
						// The value was consumed; only this task is bad.
						if raw.State == "TASK_RUNNING" {
							st.Skipped++
						}
						return nil
					}
					return err
				}
				if t, ok := reduceTask(&raw); ok {
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
func reduceTask(raw *rawTask) (Task, bool) {
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

func appendIP(ips []netip.Addr, s string) []netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return append(ips, a.Unmap().WithZone(""))
	}
	return ips
}

// parsePorts reads a Mesos ranges resource, "[31000-31001, 31005-31005]".
// It is lenient: malformed ranges are skipped, ports are clamped to
// 1-65535.
func parsePorts(raw json.RawMessage) []PortRange {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return nil
	}
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	var out []PortRange
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			hi = lo
		}
		l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 64)
		if err1 != nil || err2 != nil || l > h || h == 0 || l > 65535 {
			continue
		}
		out = append(out, PortRange{Lo: uint16(max(l, 1)), Hi: uint16(min(h, 65535))})
	}
	return out
}

// pidAddr returns the host:port of a libprocess PID ("master@1.2.3.4:5050"),
// or "" when it is not one.
func pidAddr(pid string) string {
	_, addr, ok := strings.Cut(pid, "@")
	if !ok {
		return ""
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return ""
	}
	return addr
}

func leaderInfoAddr(li *rawLeaderInfo) string {
	if a := pidAddr(li.PID); a != "" {
		return a
	}
	if li.Address.IP != "" {
		port := li.Address.Port
		if port == 0 {
			port = li.Port
		}
		if port > 0 {
			return net.JoinHostPort(li.Address.IP, strconv.Itoa(port))
		}
	}
	return ""
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
