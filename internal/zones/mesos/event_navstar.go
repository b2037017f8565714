package mesos

import (
	"net/netip"
	"strconv"
	"strings"
)

// The fields dcos-net's names need, read from the operator API's Task and
// TaskStatus messages by the rules the state decoder applies to the
// state's JSON (see decode_navstar.go); the tests compare the two.

// v1Container is mesos.proto's ContainerInfo, for its port mappings.
type v1Container struct {
	Type   *string `json:"type"`
	Docker *struct {
		PortMappings []v1PortMapping `json:"port_mappings"`
	} `json:"docker"`
	NetworkInfos *[]v1NetworkInfo `json:"network_infos"`
}

// v1PortMapping is mesos.proto's NetworkInfo.PortMapping and
// ContainerInfo.DockerInfo.PortMapping.
type v1PortMapping struct {
	HostPort      *uint32 `json:"host_port"`
	ContainerPort *uint32 `json:"container_port"`
	Protocol      *string `json:"protocol"`
}

// v1PortMappings is portMappings for decoded mappings: a mapping without
// a host port, a container port or a protocol makes dcos-net's
// handle_port_mappings fail, one with TCP or UDP is a host port.
func v1PortMappings(pms []v1PortMapping) portMap {
	pm := pmNone
	for _, m := range pms {
		switch {
		case m.HostPort == nil || m.ContainerPort == nil || m.Protocol == nil:
			return pmVoid
		case isTCPOrUDP([]byte(*m.Protocol)):
			pm = max(pm, pmHost)
		}
	}
	return pm
}

// v1NetworkPortMappings is networkPortMappings for decoded network infos.
func v1NetworkPortMappings(nis []v1NetworkInfo) portMap {
	pm := pmNone
	for i := range nis {
		pm = max(pm, v1PortMappings(nis[i].PortMappings))
	}
	return pm
}

// navFromV1 is what the task itself says of its host ports: its
// container's port mappings, its VIP_PORT<n> labels and its DiscoveryInfo
// ports' network scopes (dcos_net_mesos_listener:handle_task_ports).
func navFromV1(v *v1Task) navTask {
	n := navTask{vipMax: -1}
	if c := v.Container; c != nil {
		if c.Type != nil {
			n.typeSet = true
			n.containerType = []byte(*c.Type)
		}
		if c.Docker != nil {
			n.docker = v1PortMappings(c.Docker.PortMappings)
		}
		if c.NetworkInfos != nil {
			n.taskNIPresent = true
			n.taskNI = v1NetworkPortMappings(*c.NetworkInfos)
		}
	}
	for _, l := range v.Labels.Labels {
		key := l.Key
		if len(key) < len("vip_port") || !strings.EqualFold(key[:len("vip_port")], "vip_port") {
			continue
		}
		idx, err := strconv.Atoi(key[len("vip_port"):])
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange && key[len("vip_port")] != '-' {
				n.vipMax = int(^uint(0) >> 1) // past any port list
			}
			continue
		}
		if idx >= 0 && (strings.HasPrefix(l.Value, "tcp://") || strings.HasPrefix(l.Value, "udp://")) {
			n.vipMax = max(n.vipMax, idx)
		}
	}
	if v.Discovery != nil {
		for _, p := range v.Discovery.Ports.Ports {
			var dp navDiscPort
			dp.number = true // a required field of the message
			dp.proto = p.Protocol != ""
			dp.tcpUDP = isTCPOrUDP([]byte(p.Protocol))
			for _, l := range p.Labels.Labels {
				if l.Key != "network-scope" {
					continue
				}
				dp.scopes++
				dp.host = l.Value == "host"
				dp.other = dp.other || (l.Value != "host" && l.Value != "container")
			}
			n.disc = max(n.disc, dp.portMap())
		}
	}
	return n
}

// latestStatus keeps s as the task's latest status for dcos-net when it is
// later than the one kept (the first of equal timestamps wins, whatever
// the state: handle_task_status), and sets t's container addresses and
// host ports from it. It never changes a slice t or best shared with an
// earlier version of the task.
func latestStatus(t *Task, best *statusMark, s *v1Status) {
	l := &best.latest
	if l.have && !(s.Timestamp > l.ts) {
		return
	}
	*l = navLatest{have: true, ts: s.Timestamp}
	if cs := s.ContainerStatus; cs != nil {
		l.netPorts = v1NetworkPortMappings(cs.NetworkInfos)
		for i := range cs.NetworkInfos {
			ni := &cs.NetworkInfos[i]
			if ni.IPAddresses == nil {
				// handle_task_ip wants every network info's list.
				l.void = true
				break
			}
			for _, a := range ni.IPAddresses {
				if ip, err := netip.ParseAddr(a.IPAddress); err == nil && ip.Zone() == "" {
					l.ips = append(l.ips, ip.Unmap())
				}
			}
		}
	}
	best.setHostPorts(t)
}

// setHostPorts sets t's dcos-net fields from what best holds.
func (best *statusMark) setHostPorts(t *Task) {
	l := &best.latest
	t.ContainerIPs = nil
	if l.have && !l.void && len(l.ips) > 0 {
		t.ContainerIPs = l.ips
	}
	ports := 0
	for _, r := range t.Ports {
		ports += int(r.Hi) - int(r.Lo) + 1
	}
	t.HostPorts = best.nav.hostPorts(l.netPorts, ports)
}
