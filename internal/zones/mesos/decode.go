package mesos

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// decoder turns the token stream of a jsontext.Decoder into a State. The
// jsontext decoder checks the syntax of everything it reads, including
// the values skipped, and hands out strings and numbers as views into its
// buffer, so nothing is materialized that is not kept.
type decoder struct {
	dec jsontext.Decoder
	r   errReader
	// lenient turns JSON type mismatches into typeErr instead of errors:
	// inside a task they only disqualify that task.
	lenient bool
	typeErr bool
	intern  map[string]string
	// keys holds the names of the objects being read, innermost last:
	// the decoder's buffer moves as it reads on.
	keys []byte
	// unq holds strings that needed unescaping.
	unq []byte
	// Scratch space reused from task to task.
	cur, best status
	niIPs     []netip.Addr
	label     []byte
	idHash    []byte
	// chunks gathers the running tasks of the framework being read, in
	// fixed-size chunks reused from framework to framework: a growing
	// slice would copy every task several times over as it grew. They
	// are copied once, into a slice of the final size.
	chunks [][]Task
	used   int // chunks in use
}

// newDecoder reads from r. encoding/json accepts duplicate object names
// (the last one wins) and invalid UTF-8 (replaced by U+FFFD), and so does
// the decoder; jsontext rejects both unless told otherwise.
func newDecoder(r io.Reader) *decoder {
	d := &decoder{intern: make(map[string]string)}
	d.r.r = r
	d.dec.Reset(&d.r, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	return d
}

// errReader remembers its reader's error, to tell read errors from
// syntax errors.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// fail annotates an error that ends the decode.
func (d *decoder) fail(err error) error {
	switch {
	case err == io.EOF:
		// jsontext's word for no value at all.
		return fmt.Errorf("unexpected end of input at offset %d", d.dec.InputOffset())
	case d.r.err != nil:
		return fmt.Errorf("reading the state at offset %d: %w", d.dec.InputOffset(), err)
	}
	return err
}

// end checks that only white space follows the state object.
func (d *decoder) end() error {
	if d.dec.PeekKind() != 0 {
		return errors.New("trailing data after the state object")
	}
	_, err := d.dec.ReadToken() // the error PeekKind met
	var serr *jsontext.SyntacticError
	switch {
	case err == io.EOF:
		return nil
	case err == nil, errors.As(err, &serr):
		return errors.New("trailing data after the state object")
	}
	return d.fail(err)
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
}

func (st *status) reset() {
	*st = status{netInfoIPs: st.netInfoIPs[:0], mesosIPs: st.mesosIPs[:0], dockerIPs: st.dockerIPs[:0]}
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

// kind returns the kind of the next value: '"', '{', '[', 'n' (null),
// 't'/'f' (true/false) or '0' (a number); or the syntax or read error met
// looking for it. The error is taken from the jsontext decoder at once: a
// later look would read on past a failed read.
func (d *decoder) kind() (jsontext.Kind, error) {
	if k := d.dec.PeekKind(); k != 0 {
		return k, nil
	}
	_, err := d.dec.ReadToken()
	if err == nil {
		err = errors.New("jsontext: no token after a failed peek")
	}
	return 0, err
}

// valueOffset is the input offset of the next value, once kind has seen
// it: past the previous token, white space and a ',' or ':'.
func (d *decoder) valueOffset() int64 {
	b := d.dec.UnreadBuffer()
	return d.dec.InputOffset() + int64(len(b)-len(bytes.TrimLeft(b, " \t\r\n,:")))
}

// skip consumes one value of any kind, checking its syntax.
func (d *decoder) skip() error {
	if d.lenient {
		_, err := d.dec.ReadValue()
		return err
	}
	return d.dec.SkipValue()
}

// unquote returns the value of a quoted string that the jsontext decoder
// has checked. Strings without escapes and with valid UTF-8 are returned
// in place; others are decoded as encoding/json does: invalid UTF-8 and
// unpaired surrogates become U+FFFD (jsontext reports those as errors,
// which the decoder has agreed to ignore).
func (d *decoder) unquote(v []byte) []byte {
	s := v[1 : len(v)-1]
	if plainASCII(s) || (bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s)) {
		return s
	}
	d.unq, _ = jsontext.AppendUnquote(d.unq[:0], v)
	return d.unq
}

// plainASCII reports whether s has neither a backslash nor a non-ASCII
// byte, eight bytes at a time: most strings in a state are such.
func plainASCII(s []byte) bool {
	const (
		high = 0x8080808080808080
		ones = 0x0101010101010101
		bs   = '\\' * ones
	)
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		y := x ^ bs // a zero byte where s has a backslash
		if (x|(y-ones)&^y)&high != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c >= utf8.RuneSelf || c == '\\' {
			return false
		}
	}
	return true
}

// object reads an object member by member: fn is called with each key and
// must consume exactly one value.
func (d *decoder) object(fn func(key []byte) error) error {
	if err := d.open('{', "an object"); err != nil {
		return err
	}
	for {
		// A name or the end: jsontext allows nothing else here.
		tok, err := d.dec.ReadToken()
		if err != nil {
			return err
		}
		if tok.Kind() == '}' {
			return nil
		}
		// Copied out of the decoder's buffer, onto a stack shared by
		// the nested objects. String unescapes as encoding/json does,
		// and does not allocate for a name without escapes: the string
		// does not outlive the append.
		mark := len(d.keys)
		d.keys = append(d.keys, tok.String()...)
		err = fn(d.keys[mark:])
		d.keys = d.keys[:mark]
		if err != nil {
			return err
		}
	}
}

// array reads an array element by element: fn must consume exactly one
// value.
func (d *decoder) array(fn func() error) error {
	if err := d.open('[', "an array"); err != nil {
		return err
	}
	for {
		k, err := d.kind()
		if err != nil {
			return err
		}
		if k == ']' {
			_, err := d.dec.ReadToken()
			return err
		}
		if err := fn(); err != nil {
			return err
		}
	}
}

// open consumes the start of an object or array, or fails.
func (d *decoder) open(want jsontext.Kind, what string) error {
	k, err := d.kind()
	if err != nil {
		return err
	}
	if k != want {
		return fmt.Errorf("expected %s at offset %d, got %v", what, d.valueOffset(), k)
	}
	_, err = d.dec.ReadToken()
	return err
}

// mismatch consumes a value, which kind has seen, of the wrong JSON type
// for what.
func (d *decoder) mismatch(what string) error {
	off := d.valueOffset()
	if err := d.skip(); err != nil {
		return err
	}
	if d.lenient {
		d.typeErr = true
		return nil
	}
	return fmt.Errorf("%s: wrong JSON type at offset %d", what, off)
}

// scalar reads a value of kind want ('"', '0', or 't' for true and
// false) and returns its text; set is false for null, which leaves a field
// as it was. The text is valid until the next read.
//
// Inside a task (lenient) any value is read whole, without a look at its
// kind first: a task is small, and a value of the wrong type only
// disqualifies the task. Elsewhere an object or array of the wrong type
// is skipped token by token, so that it is never held whole.
func (d *decoder) scalar(want jsontext.Kind, what string) (v jsontext.Value, set bool, err error) {
	if d.lenient {
		if v, err = d.dec.ReadValue(); err != nil {
			return nil, false, err
		}
		switch k := v.Kind(); {
		case k == want, want == 't' && k == 'f':
			return v, true, nil
		case k == 'n':
			return nil, false, nil
		}
		d.typeErr = true
		return nil, false, nil
	}
	k, err := d.kind()
	if err != nil {
		return nil, false, err
	}
	switch {
	case k == want, want == 't' && k == 'f':
		v, err = d.dec.ReadValue()
		return v, err == nil, err
	case k == 'n':
		_, err = d.dec.ReadValue()
		return nil, false, err
	}
	return nil, false, d.mismatch(what)
}

// string reads a string; set is false for null. The value is valid until
// the next read.
func (d *decoder) string(what string) (v []byte, set bool, err error) {
	v, set, err = d.scalar('"', what)
	if set {
		v = d.unquote(v)
	}
	return v, set, err
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
	return d.scalar('0', what)
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
		return fmt.Errorf("%s: %q at offset %d is not an integer", what, v, d.dec.InputOffset()-int64(len(v)))
	}
	*dst = int(n)
	return nil
}

// container checks that an object or array (open, '{' or '[') comes next:
// ok is false for null and for a mismatch, which are consumed.
func (d *decoder) container(open jsontext.Kind, what string) (ok bool, err error) {
	k, err := d.kind()
	if err != nil {
		return false, err
	}
	switch k {
	case open:
		return true, nil
	case 'n':
		_, err = d.dec.ReadValue()
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
	return d.object(fn)
}

// arrayOf reads an array (null is none) with fn, once per element.
func (d *decoder) arrayOf(what string, fn func() error) error {
	ok, err := d.container('[', what)
	if !ok || err != nil {
		return err
	}
	return d.array(fn)
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
	err := d.object(func(key []byte) error {
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
						return d.skip()
					})
				}
				return d.skip()
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
					return d.skip()
				})
				if err != nil {
					return fmt.Errorf("slaves: %w", err)
				}
				st.Slaves = append(st.Slaves, sl)
				return nil
			})
		}
		return d.skip()
	})
	if err != nil {
		return err
	}
	if st.Leader == "" {
		st.Leader = leaderInfoAddr(liPID, liIP, liAddrPort, liPort)
	}
	return nil
}

// framework reads one framework object, streaming its task list.
func (d *decoder) framework(st *State) (Framework, error) {
	var fw Framework
	k, err := d.kind()
	if err != nil {
		return fw, err
	}
	if k != '{' {
		return fw, fmt.Errorf("expected a framework object at offset %d, got %v", d.valueOffset(), k)
	}
	err = d.object(func(key []byte) error {
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
					if running {
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
		if err := d.skip(); err != nil {
			return fmt.Errorf("framework %q %s: %w", fw.ID, key, err)
		}
		return nil
	})
	return fw, err
}

// task reads one task and reports whether it is running; d.typeErr says
// whether a field had the wrong JSON type.
func (d *decoder) task() (t Task, running bool, err error) {
	d.lenient, d.typeErr = true, false
	defer func() { d.lenient = false }()
	d.best.reset()
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
			if set {
				running = string(v) == "TASK_RUNNING"
			}
			return err
		case is(key, "resources"):
			return d.objectOf("task resources", func(key []byte) error {
				if !is(key, "ports") {
					return d.skip()
				}
				// Any JSON value is accepted; only a string is a range.
				v, err := d.dec.ReadValue()
				if err != nil {
					return err
				}
				t.Ports = nil
				if v.Kind() == '"' {
					t.Ports = parsePortRanges(string(d.unquote(v)))
				}
				return nil
			})
		case is(key, "statuses"):
			haveBest = false
			return d.arrayOf("task statuses", func() error {
				d.cur.reset()
				if err := d.status(&d.cur); err != nil {
					return err
				}
				// Statuses come in no guaranteed order: the latest
				// running one, by timestamp, carries the addresses.
				if d.cur.running && (!haveBest || d.cur.ts > d.best.ts) {
					d.cur, d.best = d.best, d.cur
					haveBest = true
				}
				return nil
			})
		case is(key, "discovery"):
			ok, err := d.container('{', "task discovery")
			if !ok || err != nil {
				disc = nil
				return err
			}
			disc = &Discovery{}
			return d.discovery(disc)
		}
		return d.skip()
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
			v, set, err := d.scalar('t', "status healthy")
			st.unhealthy = set && v[0] == 'f'
			return err
		case is(key, "labels"):
			st.mesosIPs, st.dockerIPs = st.mesosIPs[:0], st.dockerIPs[:0]
			return d.arrayOf("status labels", func() error { return d.statusLabel(st) })
		case is(key, "container_status"):
			return d.objectOf("container_status", func(key []byte) error {
				if !is(key, "network_infos") {
					return d.skip()
				}
				st.netInfoIPs = st.netInfoIPs[:0]
				return d.arrayOf("network_infos", func() error { return d.networkInfo(st) })
			})
		}
		return d.skip()
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
		return d.skip()
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
	d.niIPs = d.niIPs[:0]
	listed := 0
	var single netip.Addr
	err := d.objectOf("network_info", func(key []byte) error {
		switch {
		case is(key, "ip_addresses"):
			d.niIPs, listed = d.niIPs[:0], 0
			return d.arrayOf("ip_addresses", func() error {
				listed++
				return d.objectOf("ip_address", func(key []byte) error {
					if !is(key, "ip_address") {
						return d.skip()
					}
					v, set, err := d.string("ip_address")
					if set {
						d.niIPs = appendIPBytes(d.niIPs, v)
					}
					return err
				})
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
		}
		return d.skip()
	})
	if listed > 0 {
		st.netInfoIPs = append(st.netInfoIPs, d.niIPs...)
	} else if single.IsValid() {
		st.netInfoIPs = append(st.netInfoIPs, single)
	}
	return err
}

// discovery reads a task's DiscoveryInfo.
func (d *decoder) discovery(disc *Discovery) error {
	return d.object(func(key []byte) error {
		switch {
		case is(key, "name"):
			return d.stringTo(&disc.Name, "discovery name", false)
		case is(key, "ports"):
			return d.objectOf("discovery ports", func(key []byte) error {
				if !is(key, "ports") {
					return d.skip()
				}
				disc.Ports = nil
				return d.arrayOf("discovery ports", func() error {
					var p DiscoveryPort
					err := d.objectOf("discovery port", func(key []byte) error {
						switch {
						case is(key, "number"):
							return d.int(&p.Number, "port number")
						case is(key, "protocol"):
							return d.stringTo(&p.Protocol, "port protocol", true)
						case is(key, "name"):
							return d.stringTo(&p.Name, "port name", true)
						}
						return d.skip()
					})
					disc.Ports = append(disc.Ports, p)
					return err
				})
			})
		}
		return d.skip()
	})
}

// appendIPBytes is appendIP for a value still in the decoder's buffer.
func appendIPBytes(ips []netip.Addr, b []byte) []netip.Addr {
	if len(b) == 0 {
		return ips
	}
	return appendIP(ips, string(b))
}

func appendIP(ips []netip.Addr, s string) []netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return append(ips, a.Unmap().WithZone(""))
	}
	return ips
}
