package mesos

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// decoder turns the scanner's values into a State.
type decoder struct {
	s *scanner
	// lenient turns JSON type mismatches into typeErr instead of errors:
	// inside a task they only disqualify that task.
	lenient bool
	typeErr bool
	// stateRead is set when the task being read has a string "state"
	// (the last one, when repeated): a malformed task whose state is
	// unknown may have been running.
	stateRead bool
	intern    map[string]string
	// Scratch space reused from task to task.
	cur, best status
	niIPs     []netip.Addr
	// niStrict holds the addresses of the network info being read as
	// dcos-net reads them (see navLatest).
	niStrict []netip.Addr
	// lat is the latest status of the task being read, whatever its
	// state, as far as dcos-net reads it; nav its other dcos-net fields.
	lat   navLatest
	nav   navTask
	label []byte
	// labelValue holds a label's value while navLabels reads it.
	labelValue []byte
	idHash     []byte
	// chunks gathers the running tasks of the framework being read, in
	// fixed-size chunks reused from framework to framework: a growing
	// slice would copy every task several times over as it grew. They
	// are copied once, into a slice of the final size.
	chunks [][]Task
	used   int // chunks in use
}

// taskChunk is the number of tasks per chunk.
const taskChunk = 1024

func (d *decoder) addTask(t Task) {
	if d.used == 0 || len(d.chunks[d.used-1]) == taskChunk {
		if d.used == len(d.chunks) {
			d.chunks = append(d.chunks, make([]Task, 0, taskChunk))
		}
		d.used++
	}
	c := &d.chunks[d.used-1]
	*c = append(*c, t)
}

// takeTasks appends the gathered tasks to dst and empties the chunks.
func (d *decoder) takeTasks(dst []Task) []Task {
	n := 0
	for _, c := range d.chunks[:d.used] {
		n += len(c)
	}
	if n == 0 {
		return dst
	}
	dst = slices.Grow(dst, n)
	for i, c := range d.chunks[:d.used] {
		dst = append(dst, c...)
		clear(c)
		d.chunks[i] = c[:0]
	}
	d.used = 0
	return dst
}

// status is what a task status contributes: only the latest running one
// is kept.
type status struct {
	running    bool
	ts         float64
	unhealthy  bool
	netInfoIPs []netip.Addr
	mesosIPs   []netip.Addr
	dockerIPs  []netip.Addr
	// containerIPs, containerVoid and netPorts are what the status's
	// network_infos say for dcos-net: every ip_addresses address (void
	// when a network info has no such list) and its port mappings.
	containerIPs  []netip.Addr
	containerVoid bool
	netPorts      portMap
}

func (st *status) reset() {
	*st = status{netInfoIPs: st.netInfoIPs[:0], mesosIPs: st.mesosIPs[:0], dockerIPs: st.dockerIPs[:0],
		containerIPs: st.containerIPs[:0]}
}

// str interns b: strings that repeat across tasks are stored once.
func (d *decoder) str(b []byte) string {
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	d.intern[s] = s
	return s
}

// mismatch consumes a value of the wrong JSON type for what.
func (d *decoder) mismatch(what string) error {
	off := d.s.offset()
	if err := d.s.skip(); err != nil {
		return err
	}
	if d.lenient {
		d.typeErr = true
		return nil
	}
	return fmt.Errorf("%s: wrong JSON type at offset %d", what, off)
}

// string reads a string; set is false for null, which leaves a field as
// it was. The value is valid until the next read.
func (d *decoder) string(what string) (v []byte, set bool, err error) {
	switch d.s.kind() {
	case '"':
		v, err = d.s.str()
		return v, err == nil, err
	case 'n':
		_, err = d.s.literal()
		return nil, false, err
	}
	return nil, false, d.mismatch(what)
}

// stringTo reads a string into *dst, interned or not.
func (d *decoder) stringTo(dst *string, what string, intern bool) error {
	v, set, err := d.string(what)
	if set {
		if intern {
			*dst = d.str(v)
		} else {
			*dst = string(v)
		}
	}
	return err
}

// number reads a number's text; set is false for null.
func (d *decoder) number(what string) (v []byte, set bool, err error) {
	switch d.s.kind() {
	case '0':
		v, err = d.s.number()
		return v, err == nil, err
	case 'n':
		_, err = d.s.literal()
		return nil, false, err
	}
	return nil, false, d.mismatch(what)
}

// int reads a number into an int, as encoding/json: a fraction or an
// exponent is a type mismatch.
func (d *decoder) int(dst *int, what string) error {
	v, set, err := d.number(what)
	if !set || err != nil {
		return err
	}
	n, perr := strconv.ParseInt(string(v), 10, 0)
	if perr != nil {
		if d.lenient {
			d.typeErr = true
			return nil
		}
		return fmt.Errorf("%s: %q is not an integer", what, v)
	}
	*dst = int(n)
	return nil
}

// container checks that an object or array (open, '{' or '[') comes next:
// ok is false for null and for a mismatch, which are consumed.
func (d *decoder) container(open byte, what string) (ok bool, err error) {
	switch d.s.kind() {
	case open:
		return true, nil
	case 'n':
		_, err = d.s.literal()
		return false, err
	}
	return false, d.mismatch(what)
}

// objectOf reads an object (null is none) with fn.
func (d *decoder) objectOf(what string, fn func(key []byte) error) error {
	ok, err := d.container('{', what)
	if !ok || err != nil {
		return err
	}
	return d.s.object(fn)
}

// arrayOf reads an array (null is none) with fn, once per element.
func (d *decoder) arrayOf(what string, fn func() error) error {
	ok, err := d.container('[', what)
	if !ok || err != nil {
		return err
	}
	return d.s.array(fn)
}

// is matches a key inside a struct-shaped object as encoding/json does:
// exactly, or else case-insensitively.
func is(key []byte, name string) bool {
	return string(key) == name || (len(key) == len(name) && bytes.EqualFold(key, []byte(name)))
}

// state reads the top-level object.
func (d *decoder) state(st *State) error {
	var liPID, liIP string
	var liPort, liAddrPort int
	err := d.s.object(func(key []byte) error {
		switch string(key) {
		case "leader", "pid":
			what := string(key)
			v, set, err := d.string(what)
			if err != nil || !set {
				return err
			}
			if what == "leader" {
				st.Leader = pidAddr(string(v))
			} else {
				st.PID = pidAddr(string(v))
			}
			return nil
		case "leader_info":
			return d.objectOf("leader_info", func(key []byte) error {
				switch {
				case is(key, "pid"):
					return d.stringTo(&liPID, "leader_info.pid", false)
				case is(key, "port"):
					return d.int(&liPort, "leader_info.port")
				case is(key, "address"):
					return d.objectOf("leader_info.address", func(key []byte) error {
						switch {
						case is(key, "ip"):
							return d.stringTo(&liIP, "leader_info.address.ip", false)
						case is(key, "port"):
							return d.int(&liAddrPort, "leader_info.address.port")
						}
						return d.s.skip()
					})
				}
				return d.s.skip()
			})
		case "frameworks":
			return d.arrayOf("frameworks", func() error {
				fw, err := d.framework(st)
				if err != nil {
					return fmt.Errorf("frameworks: %w", err)
				}
				st.Frameworks = append(st.Frameworks, fw)
				return nil
			})
		case "completed_frameworks":
			return d.completedFrameworks(st)
		case "slaves":
			return d.arrayOf("slaves", func() error {
				var sl Slave
				err := d.objectOf("slaves", func(key []byte) error {
					switch {
					case is(key, "id"):
						return d.stringTo(&sl.ID, "slave id", true)
					case is(key, "hostname"):
						return d.stringTo(&sl.Hostname, "slave hostname", false)
					case is(key, "pid"):
						return d.stringTo(&sl.PID, "slave pid", false)
					}
					return d.s.skip()
				})
				if err != nil {
					return fmt.Errorf("slaves: %w", err)
				}
				st.Slaves = append(st.Slaves, sl)
				return nil
			})
		}
		return d.s.skip()
	})
	if err != nil {
		return err
	}
	if st.Leader == "" {
		st.Leader = leaderInfoAddr(liPID, liIP, liAddrPort, liPort)
	}
	return nil
}

// completedFrameworks reads the IDs of the frameworks the master lists as
// completed (torn down), the evidence that a shrink of the zone is real.
// Nothing else of them is kept, and an entry of the wrong shape is only
// no evidence: it fails nothing.
func (d *decoder) completedFrameworks(st *State) error {
	d.lenient = true
	defer func() { d.lenient, d.typeErr = false, false }()
	return d.arrayOf("completed_frameworks", func() error {
		d.typeErr = false
		var id string
		err := d.objectOf("completed framework", func(key []byte) error {
			if string(key) == "id" {
				return d.stringTo(&id, "completed framework id", false)
			}
			return d.s.skip()
		})
		if err != nil {
			return fmt.Errorf("completed_frameworks: %w", err)
		}
		if !d.typeErr && id != "" {
			st.CompletedFrameworks = append(st.CompletedFrameworks, id)
		}
		return nil
	})
}

// framework reads one framework object, streaming its task list.
func (d *decoder) framework(st *State) (Framework, error) {
	var fw Framework
	if d.s.kind() != '{' {
		return fw, d.s.syntax("expected a framework object")
	}
	err := d.s.object(func(key []byte) error {
		switch string(key) {
		case "id":
			return d.stringTo(&fw.ID, "framework id", false)
		case "name":
			return d.stringTo(&fw.Name, "framework name", false)
		case "pid":
			return d.stringTo(&fw.PID, "framework pid", false)
		case "hostname":
			return d.stringTo(&fw.Hostname, "framework hostname", false)
		case "tasks":
			err := d.arrayOf("tasks", func() error {
				t, running, err := d.task()
				if err != nil {
					return err
				}
				switch {
				case d.typeErr:
					if running || !d.stateRead {
						st.Skipped++
					}
				case running:
					d.addTask(t)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("framework %q tasks: %w", fw.ID, err)
			}
			fw.Tasks = d.takeTasks(fw.Tasks)
			return nil
		}
		if err := d.s.skip(); err != nil {
			return fmt.Errorf("framework %q %s: %w", fw.ID, key, err)
		}
		return nil
	})
	return fw, err
}

// task reads one task and reports whether it is running; d.typeErr says
// whether a field had the wrong JSON type.
func (d *decoder) task() (t Task, running bool, err error) {
	d.lenient, d.typeErr, d.stateRead = true, false, false
	defer func() { d.lenient = false }()
	d.best.reset()
	d.nav.reset()
	d.lat.reset()
	d.idHash = d.idHash[:0]
	haveBest := false
	var disc *Discovery
	err = d.objectOf("task", func(key []byte) error {
		switch {
		case is(key, "id"):
			v, set, err := d.string("task id")
			if set {
				t.ID = string(v)
				// Hashed here, from the bytes at hand.
				d.idHash = append(d.idHash[:0], v...)
			}
			return err
		case is(key, "name"):
			return d.stringTo(&t.Name, "task name", true)
		case is(key, "slave_id"):
			return d.stringTo(&t.SlaveID, "task slave_id", true)
		case is(key, "state"):
			v, set, err := d.string("task state")
			d.stateRead = set
			if set {
				running = string(v) == "TASK_RUNNING"
			}
			return err
		case is(key, "resources"):
			return d.objectOf("task resources", func(key []byte) error {
				if !is(key, "ports") {
					return d.s.skip()
				}
				// Any JSON value is accepted; only a string is a range.
				if d.s.kind() != '"' {
					t.Ports = nil
					return d.s.skip()
				}
				v, err := d.s.str()
				if err == nil {
					t.Ports = parsePortRanges(string(v))
				}
				return err
			})
		case is(key, "statuses"):
			haveBest = false
			d.lat.reset()
			return d.arrayOf("task statuses", func() error {
				d.cur.reset()
				if err := d.status(&d.cur); err != nil {
					return err
				}
				// Statuses come in no guaranteed order: the latest
				// running one, by timestamp, carries the addresses.
				d.lat.consider(&d.cur)
				if d.cur.running && (!haveBest || d.cur.ts > d.best.ts) {
					d.cur, d.best = d.best, d.cur
					haveBest = true
				}
				return nil
			})
		case is(key, "discovery"):
			d.nav.disc = pmNone
			ok, err := d.container('{', "task discovery")
			if !ok || err != nil {
				disc = nil
				return err
			}
			disc = &Discovery{}
			return d.discovery(disc)
		case string(key) == "container":
			return d.navContainer(&d.nav)
		case string(key) == "labels":
			return d.navTaskLabels(&d.nav)
		}
		return d.s.skip()
	})
	if err != nil || !running || d.typeErr {
		return Task{}, running, err
	}
	t.Hash = taskHashBytes(d.idHash)
	if disc != nil && disc.Name != "" {
		t.Discovery = disc
	}
	if haveBest {
		b := &d.best
		t.Unhealthy = b.unhealthy
		t.NetInfoIPs = cloneAddrs(b.netInfoIPs)
		t.MesosIPs = cloneAddrs(b.mesosIPs)
		t.DockerIPs = cloneAddrs(b.dockerIPs)
	}
	if d.lat.have && !d.lat.void && len(d.lat.ips) > 0 {
		// Mostly the addresses Mesos-DNS reads too: one copy for both.
		if slices.Equal(d.lat.ips, t.NetInfoIPs) {
			t.ContainerIPs = t.NetInfoIPs
		} else {
			t.ContainerIPs = cloneAddrs(d.lat.ips)
		}
	}
	ports := 0
	for _, r := range t.Ports {
		ports += int(r.Hi) - int(r.Lo) + 1
	}
	t.HostPorts = d.nav.hostPorts(d.lat.netPorts, ports)
	return t, true, nil
}

func cloneAddrs(a []netip.Addr) []netip.Addr {
	if len(a) == 0 {
		return nil
	}
	return append([]netip.Addr(nil), a...)
}

// status reads one task status.
func (d *decoder) status(st *status) error {
	return d.objectOf("task status", func(key []byte) error {
		switch {
		case is(key, "state"):
			v, set, err := d.string("status state")
			if set {
				st.running = string(v) == "TASK_RUNNING"
			}
			return err
		case is(key, "timestamp"):
			v, set, err := d.number("status timestamp")
			if set {
				ts, perr := strconv.ParseFloat(string(v), 64)
				if perr != nil {
					d.typeErr = true
				}
				st.ts = ts
			}
			return err
		case is(key, "healthy"):
			switch d.s.kind() {
			case 't', 'f', 'n':
				c, err := d.s.literal()
				st.unhealthy = c == 'f'
				return err
			}
			return d.mismatch("status healthy")
		case is(key, "labels"):
			st.mesosIPs, st.dockerIPs = st.mesosIPs[:0], st.dockerIPs[:0]
			return d.arrayOf("status labels", func() error { return d.statusLabel(st) })
		case is(key, "container_status"):
			return d.objectOf("container_status", func(key []byte) error {
				if !is(key, "network_infos") {
					return d.s.skip()
				}
				st.netInfoIPs, st.containerIPs = st.netInfoIPs[:0], st.containerIPs[:0]
				st.containerVoid, st.netPorts = false, pmNone
				return d.arrayOf("network_infos", func() error { return d.networkInfo(st) })
			})
		}
		return d.s.skip()
	})
}

// statusLabel reads a {"key","value"} label, keeping container addresses.
func (d *decoder) statusLabel(st *status) error {
	var which int // 1: Mesos IP, 2: Docker IP
	d.label = d.label[:0]
	err := d.objectOf("status label", func(key []byte) error {
		switch {
		case is(key, "key"):
			v, set, err := d.string("label key")
			if set {
				switch string(v) {
				case mesosIPLabel:
					which = 1
				case dockerIPLabel:
					which = 2
				default:
					which = 0
				}
			}
			return err
		case is(key, "value"):
			v, set, err := d.string("label value")
			if set {
				d.label = append(d.label[:0], v...)
			}
			return err
		}
		return d.s.skip()
	})
	switch which {
	case 1:
		st.mesosIPs = appendIPBytes(st.mesosIPs, d.label)
	case 2:
		st.dockerIPs = appendIPBytes(st.dockerIPs, d.label)
	}
	return err
}

// networkInfo reads one network_infos element: its ip_addresses, or the
// older single ip_address when that list is empty.
func (d *decoder) networkInfo(st *status) error {
	d.niIPs, d.niStrict = d.niIPs[:0], d.niStrict[:0]
	listed := 0
	// dcos-net reads only ip_addresses, and fails on a network info
	// without that list.
	strictListed := false
	niPorts := pmNone
	if d.s.kind() == 'n' {
		st.containerVoid = true
	}
	var single netip.Addr
	err := d.objectOf("network_info", func(key []byte) error {
		switch {
		case is(key, "ip_addresses"):
			d.niIPs, d.niStrict, listed = d.niIPs[:0], d.niStrict[:0], 0
			strictListed = d.s.kind() == '['
			return d.arrayOf("ip_addresses", func() error {
				listed++
				// Each address is parsed once for both lists; the
				// strict one keeps the entry's last.
				var last netip.Addr
				err := d.objectOf("ip_address", func(key []byte) error {
					if !is(key, "ip_address") {
						return d.s.skip()
					}
					v, set, err := d.string("ip_address")
					if set {
						last = netip.Addr{}
						if len(v) > 0 {
							if a, perr := netip.ParseAddr(string(v)); perr == nil {
								// A zoned address is no address to
								// Mesos-DNS (see appendIP).
								if a.Zone() == "" {
									d.niIPs = append(d.niIPs, a.Unmap())
								}
								last = a
							}
						}
					}
					return err
				})
				if last.IsValid() && last.Zone() == "" {
					d.niStrict = append(d.niStrict, last)
				}
				return err
			})
		case is(key, "ip_address"):
			v, set, err := d.string("ip_address")
			if set {
				single = netip.Addr{}
				if ips := appendIPBytes(nil, v); len(ips) > 0 {
					single = ips[0]
				}
			}
			return err
		case is(key, "port_mappings"):
			var err error
			niPorts, err = d.portMappings()
			return err
		}
		return d.s.skip()
	})
	if listed > 0 {
		st.netInfoIPs = append(st.netInfoIPs, d.niIPs...)
	} else if single.IsValid() {
		st.netInfoIPs = append(st.netInfoIPs, single)
	}
	st.netPorts = max(st.netPorts, niPorts)
	if strictListed {
		st.containerIPs = append(st.containerIPs, d.niStrict...)
	} else {
		st.containerVoid = true
	}
	return err
}

// discovery reads a task's DiscoveryInfo.
func (d *decoder) discovery(disc *Discovery) error {
	return d.s.object(func(key []byte) error {
		switch {
		case is(key, "name"):
			return d.stringTo(&disc.Name, "discovery name", false)
		case is(key, "ports"):
			return d.objectOf("discovery ports", func(key []byte) error {
				if !is(key, "ports") {
					return d.s.skip()
				}
				disc.Ports = nil
				d.nav.disc = pmNone
				return d.arrayOf("discovery ports", func() error {
					var p DiscoveryPort
					var np navDiscPort
					if d.s.kind() == 'n' {
						// handle_task_discovery_port fails on it.
						d.nav.disc = pmVoid
					}
					err := d.objectOf("discovery port", func(key []byte) error {
						switch string(key) {
						case "number":
							np.number = d.s.kind() != 'n'
						case "protocol":
							np.proto = d.s.kind() != 'n'
						case "labels":
							return d.navPortLabels(&np)
						}
						switch {
						case is(key, "number"):
							return d.int(&p.Number, "port number")
						case is(key, "protocol"):
							err := d.stringTo(&p.Protocol, "port protocol", true)
							if string(key) == "protocol" {
								np.tcpUDP = np.proto && isTCPOrUDP([]byte(p.Protocol))
							}
							return err
						case is(key, "name"):
							return d.stringTo(&p.Name, "port name", true)
						}
						return d.s.skip()
					})
					disc.Ports = append(disc.Ports, p)
					d.nav.disc = max(d.nav.disc, np.portMap())
					return err
				})
			})
		}
		return d.s.skip()
	})
}

// appendIPBytes is appendIP for a value still in the scanner's buffer.
func appendIPBytes(ips []netip.Addr, b []byte) []netip.Addr {
	if len(b) == 0 {
		return ips
	}
	return appendIP(ips, string(b))
}

// appendIP appends the address s, unless it is not one. An IPv6 address
// with a zone ("fe80::1%eth0") is not: Mesos-DNS's Task.IPs reads task
// addresses with net.ParseIP, which refuses zones, so such a source
// yields nothing and the next IP source is used.
func appendIP(ips []netip.Addr, s string) []netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return append(ips, a.Unmap())
	}
	return ips
}
