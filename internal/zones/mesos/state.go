package mesos

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
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
	// CompletedFrameworks lists the IDs of the frameworks the master
	// reports as completed (torn down).
	CompletedFrameworks []string
	// Skipped counts tasks left out because a field had the wrong JSON
	// type: running ones, and ones whose state could not be read (they
	// may have been running).
	Skipped int
}

// RunningTasks returns the number of running tasks decoded.
func (st *State) RunningTasks() int {
	n := 0
	for i := range st.Frameworks {
		n += len(st.Frameworks[i].Tasks)
	}
	return n
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

	// The fields dcos-net's names need (see navstar.go):

	// ContainerIPs are the addresses listed in the ip_addresses of every
	// container_status.network_infos entry of the task's latest status
	// (by timestamp, whatever its state), IPv4 and IPv6, in order; nil
	// when there are none or a network info has no ip_addresses list
	// (dcos_net_mesos_listener:handle_task_ip).
	ContainerIPs []netip.Addr
	// HostPorts reports whether one of the task's ports is mapped to a
	// host port (dcos_dns_mesos:is_port_mapping over handle_task_ports):
	// a TCP or UDP port mapping of a DOCKER container, or in the
	// network_infos of a MESOS container (the task's own, else its
	// latest status's), a port resource named by a VIP_PORT<n> task
	// label, or a DiscoveryInfo port whose network-scope label is
	// "host". A malformed port list counts as none, as in dcos-net.
	HostPorts bool
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

// DecodeState reads a Mesos master state from r. It streams: the state is
// read one value at a time and only the fields naming needs are kept, so
// memory stays proportional to the result, not to the JSON; skipped
// values (completed tasks, resources, labels) are checked but never
// materialized. Repeated strings (agent IDs, task names) are shared.
// Unknown fields are ignored; tasks that are not TASK_RUNNING are dropped.
// Syntax errors fail the whole decode; a running task whose fields have
// the wrong JSON types is skipped and counted. The typing rules are
// encoding/json's for the fields read (null leaves a field unset, object
// keys inside tasks and agents match case-insensitively).
func DecodeState(r io.Reader) (*State, error) {
	d := &decoder{s: newScanner(r), intern: make(map[string]string)}
	st := &State{}
	if err := d.state(st); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if !d.s.atEnd() {
		if d.s.rerr != nil {
			return nil, fmt.Errorf("state: %w", d.s.syntax("reading"))
		}
		return nil, errors.New("state: trailing data after the state object")
	}
	return st, nil
}
