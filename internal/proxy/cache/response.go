package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/miekg/dns"
)

// Response is an upstream reply prepared for the cache and for relaying to
// any number of clients: the packed message without its OPT record, with
// the question lower-cased, plus the offset of every TTL field. It is
// immutable once built, so one Response may be written for many clients
// concurrently.
type Response struct {
	// buf holds the message (buf[:msgLen]) followed by one big-endian
	// uint16 per TTL field giving its offset: one allocation per entry.
	buf    []byte
	msgLen int
	qend   int // end of the question section
	nttl   int // number of TTL offsets

	rcode     int
	ancount   int
	truncated bool
	signed    bool   // carries TSIG or SIG(0): never cached
	minAnswer uint32 // lowest answer TTL in seconds; MaxUint32 without answers
	hasSOA    bool
	soaTTL    uint32 // TTL of the first SOA in authority
	soaMin    uint32 // its MINIMUM field
}

// Rcode is the reply's response code.
func (r *Response) Rcode() int { return r.rcode }

// Truncated reports the TC bit of the upstream reply.
func (r *Response) Truncated() bool { return r.truncated }

// Msg returns the stored message (no OPT, lower-cased question). It aliases
// r and must not be modified.
func (r *Response) Msg() []byte { return r.buf[:r.msgLen] }

// errResponse wraps every reason a reply is refused.
var errResponse = errors.New("cache: unusable reply")

func respErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errResponse, fmt.Sprintf(format, args...))
}

// ParseResponse prepares an upstream reply to q. The reply must be a
// response to a standard query whose single question equals q's (ignoring
// case); its OPT record, if any, is removed. A truncated reply (TC set) is
// kept as its header and question only: it is relayed with empty sections
// and never stored, and its records may be cut anywhere. reply is not
// retained. CheckReply accepts exactly the replies ParseResponse does.
func ParseResponse(q *Query, reply []byte) (*Response, error) {
	return parseResponse(q.question(), reply)
}

// CheckReply reports whether ParseResponse accepts reply as the reply to a
// query whose question section (name, type and class, uncompressed) is
// question: nil when it does, the reason otherwise. An upstream race runs
// it on every reply before the reply may win, so a winning reply always
// parses. It builds no Response and allocates nothing for a reply of up to
// MaxUDPSize bytes, except for the rare replies ParseResponse re-packs,
// which it parses in full.
func CheckReply(question, reply []byte) error {
	var stack [checkStackBytes/64 + 1]uint64
	var starts []uint64
	if n := len(reply)/64 + 1; n <= len(stack) {
		starts = stack[:n]
	} else {
		starts = make([]uint64, n)
	}
	optStart, optEnd, end, err := walkResponse(question, reply, starts, nil)
	if errors.Is(err, errPointer) || (err == nil && optStart >= 0 && optEnd != end) {
		// ParseResponse re-packs these and walks them again.
		_, err = parseResponse(question, reply)
	}
	return err
}

// checkStackBytes is the largest reply CheckReply walks with its label
// bit set on the stack: any UDP reply that respects the buffer size
// advertised upstream. (A larger bit set costs more to clear than a rare
// allocation costs.)
const checkStackBytes = MaxUDPSize

// parseResponse is ParseResponse for the question section qs, which the
// Response stores in place of the reply's (ParseResponse passes the
// lower-cased one).
func parseResponse(qs, reply []byte) (*Response, error) {
	r := new(Response)
	optStart, optEnd, end, err := walkResponse(qs, reply, newStarts(reply), r)
	if errors.Is(err, errPointer) {
		// Legal but unusual compression: let miekg/dns re-pack it.
		var repacked []byte
		if repacked, err = repack(reply); err != nil {
			return nil, err
		}
		reply = repacked
		r = new(Response)
		optStart, optEnd, end, err = walkResponse(qs, reply, newStarts(reply), r)
	}
	if err != nil {
		return nil, err
	}
	reply = reply[:end] // bytes after the last record are not part of it
	if optStart >= 0 && optEnd != end {
		// An OPT before other records is legal but unusual; cutting it out
		// would shift compression targets, so re-pack without it.
		repacked, err := repack(reply)
		if err != nil {
			return nil, err
		}
		r = new(Response)
		optStart, _, end, err = walkResponse(qs, repacked, newStarts(repacked), r)
		if err != nil {
			return nil, err
		}
		if optStart >= 0 {
			return nil, respErr("OPT record left after re-packing")
		}
		reply = repacked[:end]
	}
	msgLen := len(reply)
	if optStart >= 0 {
		msgLen = optStart
	}
	r.msgLen = msgLen
	buf := make([]byte, msgLen+2*r.nttl)
	copy(buf, reply[:msgLen])
	copy(buf[headerLen:], qs)
	switch {
	case r.truncated:
		// Only the header and the question are kept.
		clear(buf[6:headerLen])
	case optStart >= 0:
		binary.BigEndian.PutUint16(buf[10:], binary.BigEndian.Uint16(buf[10:])-1)
	}
	// The walk stored the offsets in r.buf temporarily.
	copy(buf[msgLen:], r.buf)
	r.buf = buf
	return r, nil
}

// newStarts returns a label start bit set for msg.
func newStarts(msg []byte) []uint64 { return make([]uint64, len(msg)/64+1) }

// walkResponse checks reply as the reply to a query with question qs,
// using starts (zeroed, one bit per byte of reply) for the label starts.
// When r is not nil it records there the TTL offsets (in r.buf, as
// big-endian uint16s) and the policy inputs. It returns the extent of the
// OPT record (-1, -1 when there is none) and the end of the last record.
// A truncated reply ends after its question: its records are not read.
func walkResponse(qs, reply []byte, starts []uint64, r *Response) (optStart, optEnd, end int, err error) {
	optStart, optEnd = -1, -1
	if len(reply) < headerLen {
		return -1, -1, 0, respErr("%d bytes is shorter than a header", len(reply))
	}
	flags := binary.BigEndian.Uint16(reply[2:])
	if flags&flagQR == 0 {
		return -1, -1, 0, respErr("QR bit not set")
	}
	if op := (flags >> 11) & 0xF; op != 0 {
		return -1, -1, 0, respErr("opcode %d", op)
	}
	if qd := binary.BigEndian.Uint16(reply[4:]); qd != 1 {
		return -1, -1, 0, respErr("%d questions", qd)
	}
	an := int(binary.BigEndian.Uint16(reply[6:]))
	ns := int(binary.BigEndian.Uint16(reply[8:]))
	ar := int(binary.BigEndian.Uint16(reply[10:]))
	qend := headerLen + len(qs)
	if len(reply) < qend || !equalFold(reply[headerLen:qend], qs) {
		return -1, -1, 0, respErr("question does not match the query")
	}
	w := walker{msg: reply, starts: starts}
	if _, err := w.name(headerLen); err != nil {
		return -1, -1, 0, err
	}
	truncated := flags&flagTC != 0
	if r != nil {
		*r = Response{
			qend:      qend,
			rcode:     int(flags & 0xF),
			ancount:   an,
			truncated: truncated,
			minAnswer: math.MaxUint32,
		}
	}
	if truncated {
		if r != nil {
			r.ancount = 0
		}
		return -1, -1, qend, nil
	}
	var offs []byte
	if r != nil {
		offs = make([]byte, 0, 2*(an+ns+ar))
	}
	hasSOA := false
	off := qend
	for i := 0; i < an+ns+ar; i++ {
		rec := off
		if off, err = w.name(off); err != nil {
			return -1, -1, 0, err
		}
		if off+10 > len(reply) {
			return -1, -1, 0, respErr("record %d truncated at offset %d", i, off)
		}
		rtype := binary.BigEndian.Uint16(reply[off:])
		ttl := binary.BigEndian.Uint32(reply[off+4:])
		rdlen := int(binary.BigEndian.Uint16(reply[off+8:]))
		start := off
		off += 10 + rdlen
		if off > len(reply) {
			return -1, -1, 0, respErr("record %d data overruns the message", i)
		}
		if err := w.rdataNames(rtype, start+10, off); err != nil {
			return -1, -1, 0, err
		}
		if ttl > math.MaxInt32 { // RFC 2181 8: treat as zero
			ttl = 0
		}
		if rtype == typeOPT {
			if i < an+ns || optStart >= 0 {
				return -1, -1, 0, respErr("OPT record outside additional or repeated")
			}
			optStart, optEnd = rec, off
			continue
		}
		if start+4 > math.MaxUint16 {
			return -1, -1, 0, respErr("TTL offset %d beyond 64 KiB", start+4)
		}
		if i >= an && i < an+ns && rtype == typeSOA && !hasSOA {
			if rdlen < 22 {
				return -1, -1, 0, respErr("SOA data of %d bytes", rdlen)
			}
			hasSOA = true
		}
		if r == nil {
			continue
		}
		if rtype == typeTSIG || (rtype == typeSIG && i >= an+ns) {
			r.signed = true
		}
		offs = binary.BigEndian.AppendUint16(offs, uint16(start+4))
		switch {
		case i < an:
			r.minAnswer = min(r.minAnswer, ttl)
		case i < an+ns && rtype == typeSOA && !r.hasSOA:
			r.hasSOA = true
			r.soaTTL = ttl
			r.soaMin = binary.BigEndian.Uint32(reply[off-4:])
			if r.soaMin > math.MaxInt32 {
				r.soaMin = 0
			}
		}
	}
	if r != nil {
		r.nttl = len(offs) / 2
		r.buf = offs
	}
	return optStart, optEnd, off, nil
}

// walker reads the names of a message, remembering where each label
// starts. A compression pointer must target such a label start: then every
// name reads only name bytes, never a TTL field that a cache hit rewrites,
// and pointers can only point backwards, so removing a trailing OPT record
// never breaks one.
type walker struct {
	msg    []byte
	starts []uint64 // bit set of label start offsets
}

// errPointer marks replies whose compression the walker does not accept;
// re-packing them with miekg/dns normalises the pointers.
var errPointer = fmt.Errorf("%w: compression pointer to something not a preceding label", errResponse)

// name walks the name at off and returns the offset just past it.
func (w *walker) name(off int) (int, error) {
	start := off
	for n := 0; ; {
		if off >= len(w.msg) {
			return 0, respErr("name at offset %d overruns the message", start)
		}
		c := int(w.msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			n += 1 + c
			if n >= maxNameWire {
				return 0, respErr("name at offset %d longer than 255 bytes", start)
			}
			w.starts[off/64] |= 1 << (off % 64)
			off += 1 + c
		case 0xC0:
			if off+2 > len(w.msg) {
				return 0, respErr("pointer at offset %d truncated", off)
			}
			ptr := int(binary.BigEndian.Uint16(w.msg[off:]) & 0x3FFF)
			if ptr >= start || w.starts[ptr/64]&(1<<(ptr%64)) == 0 {
				return 0, errPointer
			}
			return off + 2, nil
		default:
			return 0, respErr("label type %#x at offset %d", c&0xC0, off)
		}
	}
}

// rdataNames walks the domain names inside the RDATA at [off, end) of the
// types whose names may be compressed (RFC 1035 and those miekg/dns
// decompresses), so that pointers to them are accepted and pointers in
// them are checked.
func (w *walker) rdataNames(rtype uint16, off, end int) error {
	var skip, names int
	switch rtype {
	case 2, 3, 4, 5, 7, 8, 9, 12, 39: // NS MD MF CNAME MB MG MR PTR DNAME
		names = 1
	case 6, 14, 17: // SOA MINFO RP
		names = 2
	case 15, 18, 21, 36: // MX AFSDB RT KX
		skip, names = 2, 1
	case 26: // PX
		skip, names = 2, 2
	case 33: // SRV
		skip, names = 6, 1
	case 46: // RRSIG signer
		skip, names = 18, 1
	case 47: // NSEC next name
		names = 1
	case 35: // NAPTR: order, preference, three character-strings, name
		skip = 4
		for range 3 {
			if off+skip >= end {
				return respErr("NAPTR data truncated at offset %d", off)
			}
			skip += 1 + int(w.msg[off+skip])
		}
		names = 1
	default:
		return nil
	}
	off += skip
	for range names {
		if off >= end {
			return respErr("record data truncated before a name at offset %d", off)
		}
		next, err := w.name(off)
		if err != nil {
			return err
		}
		if next > end {
			return respErr("name at offset %d overruns its record data", off)
		}
		off = next
	}
	return nil
}

// equalFold compares two wire-format byte strings ignoring ASCII case.
func equalFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// repack re-encodes reply with miekg/dns, without its OPT record.
func repack(reply []byte) ([]byte, error) {
	var m dns.Msg
	if err := m.Unpack(reply); err != nil {
		return nil, fmt.Errorf("%w: unpack: %w", errResponse, err)
	}
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
	m.Compress = true
	out, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%w: re-pack: %w", errResponse, err)
	}
	return out, nil
}

// ttlMode says how TTLs and flags are rewritten on the way out.
type ttlMode struct {
	age   uint32 // seconds spent in the cache, subtracted from every TTL
	limit uint32 // no TTL above this (the entry's remaining lifetime)
	stale bool   // every TTL becomes staleTTL
	value uint32 // the stale TTL
	auth  bool   // an authoritative server's own data: AA and RA kept as stored
}

var passTTL = ttlMode{limit: math.MaxUint32}

// AppendReply appends r, rewritten as the reply to q, to dst[:0] and
// returns it: q's ID, flags (RA set, AA clear) and question casing, an OPT record when q had
// one, and TC with empty sections when the whole reply exceeds limit bytes
// or the upstream's reply was truncated. TTLs are relayed unchanged.
func (r *Response) AppendReply(dst []byte, q *Query, limit int) []byte {
	return r.appendReply(dst, q, limit, passTTL)
}

// AppendAuthoritative appends r, the authoritative server's own reply
// for q's question, rewritten as the reply to q: q's ID, RD and CD bits
// and question casing, an OPT record echoing DO when q had one, and the
// AA and RA bits, the TTLs and the records as stored, byte for byte. It
// returns false, having written nothing, when r was truncated or the whole reply exceeds limit bytes: an
// authoritative server truncates record by record, which is the caller's
// job.
func (r *Response) AppendAuthoritative(dst []byte, q *Query, limit int) ([]byte, bool) {
	size := r.msgLen
	if q.EDNS {
		size += optRRLen
	}
	if r.truncated || size > limit {
		return dst[:0], false
	}
	return r.appendReply(dst, q, limit, ttlMode{limit: math.MaxUint32, auth: true}), true
}

// Answers reports whether r is the reply to q's question (ignoring case).
func (r *Response) Answers(q *Query) bool { return r.sameQuestion(q) }

// AnswerSpans appends to dst where each answer record of r's message
// starts and then where the last one ends, from the TTL offsets the parse
// recorded: record i starts where record i-1 ends, the first at the end of
// the question.
func (r *Response) AnswerSpans(dst []uint16) []uint16 {
	msg, offs := r.buf[:r.msgLen], r.buf[r.msgLen:]
	off := r.qend
	for i := range r.ancount {
		dst = append(dst, uint16(off))
		ttl := int(binary.BigEndian.Uint16(offs[2*i:]))
		off = ttl + 6 + int(binary.BigEndian.Uint16(msg[ttl+4:])) // TTL, RDLENGTH, RDATA
	}
	return append(dst, uint16(off))
}

// Size is the memory held by r, in bytes.
func (r *Response) Size() int { return cap(r.buf) }

func (r *Response) appendReply(dst []byte, q *Query, limit int, mode ttlMode) []byte {
	msg := r.buf[:r.msgLen]
	size := r.msgLen
	if q.EDNS {
		size += optRRLen
	}
	truncate := size > limit || r.truncated
	if truncate {
		dst = append(dst[:0], msg[:r.qend]...)
		binary.BigEndian.PutUint32(dst[6:], 0) // ANCOUNT, NSCOUNT
		dst[10], dst[11] = 0, 0
	} else {
		dst = append(dst[:0], msg...)
	}
	binary.BigEndian.PutUint16(dst, q.ID)
	flags := binary.BigEndian.Uint16(dst[2:])
	// We answer as a recursive resolver, whatever the upstream was: RA
	// set, and AA cleared, as for any data relayed or cached (RFC 1035
	// 4.1.1; an authoritative master's AA must not reach the client).
	if mode.auth {
		flags &^= flagTC | flagRD | flagCD | flagAD
	} else {
		flags &^= flagTC | flagRD | flagCD | flagAD | flagAA
		flags |= flagRA
	}
	if q.RD {
		flags |= flagRD
	}
	if q.CD {
		flags |= flagCD
	}
	// RFC 6840 5.8: AD only for a client that asked for it (AD or DO).
	if msg[3]&flagAD != 0 && (q.AD || q.DO) {
		flags |= flagAD
	}
	if truncate {
		flags |= flagTC
	}
	binary.BigEndian.PutUint16(dst[2:], flags)
	copy(dst[headerLen:], q.name[:q.nameLen])
	// An authority's own TTLs go out as they are.
	if !truncate && !mode.auth {
		offs := r.buf[r.msgLen:]
		for i := 0; i < len(offs); i += 2 {
			o := int(binary.BigEndian.Uint16(offs[i:]))
			var ttl uint32
			if mode.stale {
				ttl = mode.value
			} else {
				ttl = binary.BigEndian.Uint32(dst[o:])
				if ttl > math.MaxInt32 {
					ttl = 0
				}
				if ttl > mode.age {
					ttl -= mode.age
				} else {
					ttl = 0
				}
				ttl = min(ttl, mode.limit)
			}
			binary.BigEndian.PutUint32(dst[o:], ttl)
		}
	}
	if q.EDNS {
		var do byte
		if q.DO {
			do = ednsDO >> 8
		}
		dst = append(dst,
			0, 0, typeOPT, // root owner, TYPE OPT
			byte(MaxUDPSize>>8), byte(MaxUDPSize&0xFF), // CLASS: our buffer size
			0, 0, do, 0, // extended RCODE, version, DO and Z
			0, 0) // RDLENGTH
		binary.BigEndian.PutUint16(dst[10:], binary.BigEndian.Uint16(dst[10:])+1)
	}
	return dst
}

// sameQuestion reports whether r answers exactly q's key (lower-cased
// question; the DO/CD bits are checked by the caller).
func (r *Response) sameQuestion(q *Query) bool {
	qs := q.question()
	return r.qend == headerLen+len(qs) && bytes.Equal(r.buf[headerLen:r.qend], qs)
}
