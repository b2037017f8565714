package mesos

import (
	"net/netip"
	"strconv"
)

// The fields dcos-net's DNS names need beyond Mesos-DNS's: the container
// addresses of a task's latest status and whether it maps a host port.
// dcos-net reads them with exact keys (Erlang maps from jiffy), so these
// fields do too, and a value of the wrong shape never disqualifies the
// task (it still gets its Mesos-DNS names): it has the effect it has in
// dcos-net, where the function reading it fails and leaves the task's
// ports, or its container addresses, unset. null is read as absent.

// portMap is what a part of a task says about host ports: nothing, a host
// port, or a value dcos-net's port functions fail on, which leaves the
// task without ports. It combines by max: a failure anywhere wins.
type portMap uint8

const (
	pmNone portMap = iota
	pmHost
	pmVoid
)

// navTask gathers a task's dcos-net fields while it is read.
type navTask struct {
	// containerType is container.type; typeSet says it was given.
	containerType []byte
	typeSet       bool
	typeVoid      bool
	// docker is what container.docker.port_mappings says; taskNI what
	// container.network_infos[].port_mappings says, present when the
	// task's container lists network_infos at all.
	docker, taskNI portMap
	taskNIPresent  bool
	// vipMax is the largest VIP_PORT index among the task's labels, -1
	// without one; vip is pmVoid when a label could not be read.
	vipMax int
	vip    portMap
	// disc is what the DiscoveryInfo ports say.
	disc portMap
}

func (n *navTask) reset() {
	*n = navTask{containerType: n.containerType[:0], vipMax: -1}
}

// hostPorts is dcos-net's is_port_mapping over the task's ports
// (dcos_net_mesos_listener:handle_task_ports): a port mapping of a
// DOCKER container, one in the network_infos of a MESOS container (the
// task's own, else its latest status's), a port resource named by a
// VIP_PORT<n> task label, or a DiscoveryInfo port of network-scope
// "host". statusNI is what the latest status's network_infos say; ports
// is the number of host ports in the task's port resources.
func (n *navTask) hostPorts(statusNI portMap, ports int) bool {
	pm := n.disc
	switch {
	case n.typeVoid:
		pm = pmVoid
	case !n.typeSet || string(n.containerType) == "MESOS":
		if n.taskNIPresent {
			pm = max(pm, n.taskNI)
		} else {
			pm = max(pm, statusNI)
		}
	case string(n.containerType) == "DOCKER":
		pm = max(pm, n.docker)
	default:
		// handle_task_port_mappings has no clause for other types.
		pm = pmVoid
	}
	pm = max(pm, n.vip)
	if n.vipMax >= 0 {
		// lists:nth fails past the last port.
		if n.vipMax >= ports {
			pm = pmVoid
		} else {
			pm = max(pm, pmHost)
		}
	}
	return pm == pmHost
}

// navObject reads an object with fn: null is absent, anything else but an
// object is void (consumed).
func (d *decoder) navObject(fn func(key []byte) error) (void bool, err error) {
	switch d.s.kind() {
	case '{':
		return false, d.s.object(fn)
	case 'n':
		_, err = d.s.literal()
		return false, err
	}
	return true, d.s.skip()
}

// navArray reads an array with fn, once per element: null is absent
// (present false), anything else but an array is void.
func (d *decoder) navArray(fn func() error) (present, void bool, err error) {
	switch d.s.kind() {
	case '[':
		return true, false, d.s.array(fn)
	case 'n':
		_, err = d.s.literal()
		return false, false, err
	}
	return false, true, d.s.skip()
}

// navString reads a string (valid until the next read): null is absent,
// another type void.
func (d *decoder) navString() (v []byte, present, void bool, err error) {
	switch d.s.kind() {
	case '"':
		v, err = d.s.str()
		return v, err == nil, false, err
	case 'n':
		_, err = d.s.literal()
		return nil, false, false, err
	}
	return nil, false, true, d.s.skip()
}

// isTCPOrUDP is dcos-net's handle_protocol: "tcp" or "udp" in any ASCII
// case.
func isTCPOrUDP(p []byte) bool {
	if len(p) != 3 {
		return false
	}
	var l [3]byte
	for i, c := range p {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		l[i] = c
	}
	return l == [3]byte{'t', 'c', 'p'} || l == [3]byte{'u', 'd', 'p'}
}

// portMappings reads a port_mappings list (handle_port_mappings): each
// entry must have container_port, host_port and protocol, and one whose
// protocol is TCP or UDP is a host port.
func (d *decoder) portMappings() (portMap, error) {
	pm := pmNone
	_, void, err := d.navArray(func() error {
		var hostPort, containerPort, proto, tcpUDP bool
		v, err := d.navObject(func(key []byte) error {
			switch string(key) {
			case "host_port":
				hostPort = d.s.kind() != 'n'
			case "container_port":
				containerPort = d.s.kind() != 'n'
			case "protocol":
				p, present, void, err := d.navString()
				proto = present || void
				tcpUDP = present && isTCPOrUDP(p)
				return err
			}
			return d.s.skip()
		})
		switch {
		case v || !hostPort || !containerPort || !proto:
			pm = pmVoid
		case tcpUDP:
			pm = max(pm, pmHost)
		}
		return err
	})
	if void {
		return pmVoid, err
	}
	return pm, err
}

// navContainer reads a task's "container".
func (d *decoder) navContainer(n *navTask) error {
	n.typeSet, n.typeVoid, n.docker, n.taskNI, n.taskNIPresent = false, false, pmNone, pmNone, false
	void, err := d.navObject(func(key []byte) error {
		switch string(key) {
		case "type":
			v, present, void, err := d.navString()
			n.typeSet, n.typeVoid = present, void
			n.containerType = append(n.containerType[:0], v...)
			return err
		case "docker":
			n.docker = pmNone
			void, err := d.navObject(func(key []byte) error {
				if string(key) != "port_mappings" {
					return d.s.skip()
				}
				pm, err := d.portMappings()
				n.docker = pm
				return err
			})
			if void {
				n.docker = pmVoid
			}
			return err
		case "network_infos":
			pm, present, err := d.networkPortMappings()
			n.taskNI, n.taskNIPresent = pm, present
			return err
		}
		return d.s.skip()
	})
	if void {
		n.typeVoid = true
	}
	return err
}

// networkPortMappings reads a network_infos list for its port mappings.
func (d *decoder) networkPortMappings() (portMap, bool, error) {
	pm := pmNone
	present, void, err := d.navArray(func() error {
		if d.s.kind() == 'n' {
			pm = pmVoid
		}
		v, err := d.navObject(func(key []byte) error {
			if string(key) != "port_mappings" {
				return d.s.skip()
			}
			p, err := d.portMappings()
			pm = max(pm, p)
			return err
		})
		if v {
			pm = pmVoid
		}
		return err
	})
	if void {
		return pmVoid, true, err
	}
	return pm, present || void, err
}

// navLabels reads a Labels value, as a state lists it (an array of
// {"key","value"}) or as the operator API does ({"labels": [...]}),
// calling fn for each label with its key and value (nil when missing:
// only strings are kept). It reports a list that is not one as void, and
// when strict also a label that is not an object or whose key or value
// is not a string (dcos-net matches task labels with a function clause,
// which fails on them, but port labels with a pattern, which skips them).
func (d *decoder) navLabels(strict bool, fn func(key, value []byte, hasKey, hasValue bool)) (bool, error) {
	each := func() (bool, error) {
		anyVoid := false
		_, void, err := d.navArray(func() error {
			var k, v []byte
			var hasK, hasV, bad bool
			if d.s.kind() == 'n' {
				bad = true
			}
			lv, err := d.navObject(func(key []byte) error {
				switch string(key) {
				case "key", "value":
					s, present, void, err := d.navString()
					if void {
						bad = true
					}
					if string(key) == "key" {
						k, hasK = append(d.label[:0], s...), present
						d.label = k
					} else {
						v, hasV = append(d.labelValue[:0], s...), present
						d.labelValue = v
					}
					return err
				}
				return d.s.skip()
			})
			bad = bad || lv
			switch {
			case bad && strict:
				anyVoid = true
			case err == nil && !bad:
				fn(k, v, hasK, hasV)
			}
			return err
		})
		return void || anyVoid, err
	}
	if d.s.kind() != '{' {
		return each()
	}
	var void bool
	v, err := d.navObject(func(key []byte) error {
		if string(key) != "labels" {
			return d.s.skip()
		}
		var err error
		void, err = each()
		return err
	})
	return v || void, err
}

// navTaskLabels reads the task's labels for VIP_PORT<n> ones
// (handle_task_vip_labels).
func (d *decoder) navTaskLabels(n *navTask) error {
	n.vipMax, n.vip = -1, pmNone
	void, err := d.navLabels(true, func(key, value []byte, hasKey, hasValue bool) {
		if !hasKey || !hasValue {
			// The function clause wants both.
			n.vip = pmVoid
			return
		}
		if len(key) < len("vip_port") || !asciiEqualFold(key[:len("vip_port")], "vip_port") {
			return
		}
		idx, err := strconv.Atoi(string(key[len("vip_port"):]))
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange && key[len("vip_port")] != '-' {
				// An integer too large for any port list.
				n.vipMax = int(^uint(0) >> 1)
			}
			return
		}
		if idx < 0 {
			return
		}
		s := string(value)
		if len(s) >= 6 && (s[:6] == "tcp://" || s[:6] == "udp://") {
			n.vipMax = max(n.vipMax, idx)
		}
	})
	if void {
		n.vip = pmVoid
	}
	return err
}

func asciiEqualFold(b []byte, lower string) bool {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// navPortLabels reads a DiscoveryInfo port's labels for its
// network-scope (handle_port_scope).
func (d *decoder) navPortLabels(p *navDiscPort) error {
	p.scopes, p.host, p.other = 0, false, false
	void, err := d.navLabels(false, func(key, value []byte, hasKey, hasValue bool) {
		if !hasKey || !hasValue || string(key) != "network-scope" {
			return
		}
		p.scopes++
		p.host = string(value) == "host"
		p.other = p.other || (string(value) != "host" && string(value) != "container")
	})
	p.labelsVoid = void
	return err
}

// navDiscPort is one DiscoveryInfo port as navDiscoveryPort reads it.
type navDiscPort struct {
	number, proto, tcpUDP   bool
	scopes                  int
	host, other, labelsVoid bool
}

// portMap is the port's contribution; handle_port_scope fails on more
// than one network-scope label or an unknown scope.
func (p *navDiscPort) portMap() portMap {
	switch {
	case p.labelsVoid || !p.number || !p.proto || p.scopes > 1 || p.other:
		return pmVoid
	case p.tcpUDP && p.scopes == 1 && p.host:
		return pmHost
	}
	return pmNone
}

// navLatest is the latest status of a task (by timestamp, whatever its
// state: dcos_net_mesos_listener:handle_task_status) as dcos-net reads it.
type navLatest struct {
	have     bool
	ts       float64
	ips      []netip.Addr
	void     bool
	netPorts portMap
}

func (l *navLatest) reset() { *l = navLatest{ips: l.ips[:0]} }

// consider keeps st if it is later than the latest so far; the first of
// equal timestamps wins.
func (l *navLatest) consider(st *status) {
	if l.have && !(st.ts > l.ts) {
		return
	}
	l.have, l.ts, l.void, l.netPorts = true, st.ts, st.containerVoid, st.netPorts
	l.ips = append(l.ips[:0], st.containerIPs...)
}
