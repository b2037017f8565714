package dnswire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by Query.Parse. They are preallocated so that rejecting a
// hostile packet costs no allocation.
var (
	// ErrMalformed reports a packet that is not a well-formed query.
	ErrMalformed = errors.New("dnswire: malformed query")
	// ErrUnsupported reports a well-formed packet the fast path does not
	// handle (a response, more than one question, records other than one
	// OPT, EDNS version above 0); the caller takes the general path.
	ErrUnsupported = errors.New("dnswire: query not handled by the wire fast path")
	// ErrBadOPT reports a query whose OPT record is malformed: a second
	// OPT record, an OPT outside the additional section or owned by a
	// name other than the root (RFC 6891 6.1.1), options whose framing
	// does not exactly fill its data, or more than MaxQueryOPTData bytes
	// of options. It wraps ErrMalformed. Parse leaves the header and the
	// question in the Query, with EDNS set and DO clear, so that
	// AppendError answers FORMERR with the question and an OPT record:
	// RFC 6891 7 wants an OPT in the reply to a query whose OPT record is
	// at fault, so the client can tell a format error within EDNS from a
	// server without EDNS.
	ErrBadOPT = fmt.Errorf("%w: bad OPT record", ErrMalformed)
)

// MaxQueryOPTData is the most option data a query's OPT record may carry;
// a query with more gets FORMERR (ErrBadOPT) at the cost of reading its
// record headers, whatever the size of the message. Queries are small:
// a cookie option takes 12 to 44 bytes, padding to RFC 8467's 128-byte
// blocks at most 131, and a client subnet option at most 24; 512 leaves
// room for all of them at once and for a few more.
const MaxQueryOPTData = 512

// Bits of the key's last byte (Query.KeyFlags).
const (
	keyDO = 1 << 0
	keyCD = 1 << 1
)

// Query is a client query parsed straight from the wire, without building a
// dns.Msg. It is self-contained (it keeps no reference to the packet) and
// large enough to hold any name, so a Query can live in a reusable buffer
// and parsing allocates nothing.
type Query struct {
	ID     uint16
	Opcode uint8
	RD     bool
	AD     bool
	CD     bool
	Qtype  uint16
	Qclass uint16
	// EDNS reports an OPT record; UDPSize and DO come from it.
	EDNS    bool
	UDPSize uint16
	DO      bool

	nameLen int
	// name is the question name as the client sent it (its casing is
	// restored in every reply).
	name [MaxNameLen]byte
	// key is the lower-cased name followed by qtype, qclass and the DO/CD
	// flag byte: the cache key, compared byte for byte on every hit.
	key    [MaxNameLen + 5]byte
	keyLen int
}

// Name returns the question name in wire format, as the client cased it.
// The slice aliases q and is valid until q is parsed again.
func (q *Query) Name() []byte { return q.name[:q.nameLen] }

// Key returns the cache key: the lower-cased wire name, qtype, qclass and a
// byte of DO/CD flags. The slice aliases q.
func (q *Query) Key() []byte { return q.key[:q.keyLen] }

// LowerName returns the question name in wire format, lower-cased. The
// slice aliases q.
func (q *Query) LowerName() []byte { return q.key[:q.nameLen] }

// Question returns the lower-cased question section (name, type, class),
// as a stored reply carries it. The slice aliases q.
func (q *Query) Question() []byte { return q.key[:q.keyLen-1] }

// KeyFlags returns the key's last byte, which holds the query's DO and CD
// bits: answers differ by them, so they are part of the cache key.
func (q *Query) KeyFlags() byte { return q.key[q.keyLen-1] }

// Parse reads a client query. It accepts exactly one question whose name
// has no compression pointers, no answer or authority records, and at most
// one additional record, which must be an EDNS(0) OPT with a root owner.
// Anything else is ErrMalformed (ErrBadOPT for a malformed OPT record) or
// ErrUnsupported; nothing is allocated.
func (q *Query) Parse(msg []byte) error {
	if len(msg) < HeaderLen {
		return ErrMalformed
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&flagQR != 0 || binary.BigEndian.Uint16(msg[4:]) != 1 {
		return ErrUnsupported
	}
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	q.ID = binary.BigEndian.Uint16(msg)
	q.Opcode = uint8(flags>>11) & 0xF
	q.RD = flags&flagRD != 0
	q.AD = flags&flagAD != 0
	q.CD = flags&flagCD != 0
	q.EDNS, q.UDPSize, q.DO = false, 0, false

	off := HeaderLen
	n := 0
	for {
		if off >= len(msg) {
			return ErrMalformed
		}
		l := int(msg[off])
		if l == 0 {
			break
		}
		// 0xC0 is a compression pointer, 0x40 and 0x80 are the obsolete
		// extended label types: none belongs in a query's question.
		if l > maxLabel {
			return ErrMalformed
		}
		if off+1+l > len(msg) || n+1+l+1 > MaxNameLen {
			return ErrMalformed
		}
		q.name[n] = byte(l)
		q.key[n] = byte(l)
		copy(q.name[n+1:], msg[off+1:off+1+l])
		for i := 1; i <= l; i++ {
			c := msg[off+i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			q.key[n+i] = c
		}
		n += 1 + l
		off += 1 + l
	}
	q.name[n] = 0
	q.key[n] = 0
	n++
	off++
	if off+4 > len(msg) {
		return ErrMalformed
	}
	q.nameLen = n
	q.Qtype = binary.BigEndian.Uint16(msg[off:])
	q.Qclass = binary.BigEndian.Uint16(msg[off+2:])
	copy(q.key[n:], msg[off:off+4])
	off += 4
	// The key without DO and CD, so that the question is readable whatever
	// the outcome (AppendError uses it).
	q.key[n+4] = 0
	q.keyLen = n + 5

	if an != 0 || ns != 0 || ar > 1 || ar == 1 &&
		(off+3 > len(msg) || msg[off] != 0 || binary.BigEndian.Uint16(msg[off+1:]) != typeOPT) {
		return q.otherRecords(msg, off, an, ns, ar)
	}
	if ar == 1 {
		// OPT: root owner (one zero byte), TYPE, CLASS = UDP size,
		// TTL = extended RCODE, version, DO and Z, RDLENGTH, options.
		if off+optRRLen > len(msg) {
			return ErrMalformed
		}
		rdlen := int(binary.BigEndian.Uint16(msg[off+9:]))
		data := off + optRRLen
		if data+rdlen > len(msg) {
			return ErrMalformed
		}
		if !optionsOK(msg[data : data+rdlen]) {
			return q.badOPT()
		}
		if msg[off+6] != 0 { // EDNS version: BADVERS is the general path's job
			return ErrUnsupported
		}
		q.EDNS = true
		q.UDPSize = binary.BigEndian.Uint16(msg[off+3:])
		q.DO = binary.BigEndian.Uint16(msg[off+7:])&ednsDO != 0
		off = data + rdlen
	}
	if off != len(msg) {
		return ErrMalformed
	}
	var kf byte
	if q.DO {
		kf |= keyDO
	}
	if q.CD {
		kf |= keyCD
	}
	q.key[n+4] = kf
	return nil
}

// otherRecords reads the records after the question, at off, of a query
// the fast path does not take (answer or authority records, several
// additional records, one that is not an OPT), looking for what makes its
// OPT record malformed: ErrBadOPT then. Records it cannot read (one that
// runs off the end, a name that is not one or a forward pointer, which
// RFC 1035 4.1.4 does not allow) make it ErrMalformed; anything else is
// ErrUnsupported, for the caller's general path.
func (q *Query) otherRecords(msg []byte, off, an, ns, ar int) error {
	opts := 0
	for i := range an + ns + ar {
		owner := off
		end, ok := SkipName(msg, off, true)
		if !ok || end+10 > len(msg) {
			return ErrMalformed
		}
		rtype := binary.BigEndian.Uint16(msg[end:])
		data := end + 10
		off = data + int(binary.BigEndian.Uint16(msg[end+8:]))
		if off > len(msg) {
			return ErrMalformed
		}
		if rtype != typeOPT {
			continue
		}
		opts++
		if opts > 1 || i < an+ns || !isRoot(msg, owner) || !optionsOK(msg[data:off]) {
			return q.badOPT()
		}
	}
	return ErrUnsupported
}

// badOPT marks q as a query with an OPT record (its reply carries one) and
// returns ErrBadOPT.
func (q *Query) badOPT() error {
	q.EDNS = true
	return ErrBadOPT
}

// optionsOK reports whether the data of a query's OPT record is at most
// MaxQueryOPTData bytes of options whose code, length and value exactly
// fill it. Their contents are ignored.
func optionsOK(data []byte) bool {
	if len(data) > MaxQueryOPTData {
		return false
	}
	off := 0
	for off < len(data) {
		if off+4 > len(data) {
			return false
		}
		off += 4 + int(binary.BigEndian.Uint16(data[off+2:]))
	}
	return off == len(data)
}

// isRoot reports whether the name at off in msg, which SkipName has
// accepted, is the root: a zero byte, or pointers leading to one.
func isRoot(msg []byte, off int) bool {
	for {
		switch l := msg[off]; {
		case l == 0:
			return true
		case l&0xC0 == 0xC0:
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
		default:
			return false
		}
	}
}

// Cacheable reports whether answers to q may be cached: a standard query
// of class IN for a data type (not a zone transfer or other meta type).
func (q *Query) Cacheable() bool {
	if q.Opcode != 0 || q.Qclass != classINET {
		return false
	}
	switch t := q.Qtype; {
	case t == 0, t == typeOPT, t == typeTSIG, t == typeIXFR, t == typeAXFR:
		return false
	case t >= 128 && t <= 254: // meta types other than ANY (255)
		return false
	}
	return true
}

// UDPLimit is the largest UDP reply q's sender accepts: 512 without EDNS,
// otherwise its advertised size (at least 512) capped at MaxUDPSize.
func (q *Query) UDPLimit() int {
	if !q.EDNS || q.UDPSize < 512 {
		return 512
	}
	return min(int(q.UDPSize), MaxUDPSize)
}

// AppendQuery appends to dst[:0] the query for q's question that spartan
// sends upstream: ID 0 (the upstream layer sets its own), RD, q's CD bit,
// q's name as the client cased it, and an OPT record advertising
// MaxUDPSize with q's DO bit.
func (q *Query) AppendQuery(dst []byte) []byte {
	var flags uint16 = flagRD
	if q.CD {
		flags |= flagCD
	}
	dst = append(dst[:0], 0, 0, byte(flags>>8), byte(flags), 0, 1, 0, 0, 0, 0, 0, 1)
	dst = append(dst, q.name[:q.nameLen]...)
	dst = append(dst, q.key[q.nameLen:q.nameLen+4]...)
	var do byte
	if q.DO {
		do = ednsDO >> 8
	}
	return append(dst, 0, 0, typeOPT, byte(MaxUDPSize>>8), byte(MaxUDPSize&0xFF), 0, 0, do, 0, 0, 0)
}
