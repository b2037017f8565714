package dnswire

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// Signed reports a reply that carries TSIG or SIG(0): it belongs to one
// transaction and must never be replayed to another.
func (r *Response) Signed() bool { return r.signed }

// Usable reports whether r is an answer rather than a failure: NOERROR
// (NODATA included) or NXDOMAIN, not truncated.
func (r *Response) Usable() bool {
	return (r.rcode == rcodeNoError || r.rcode == rcodeNXDomain) && !r.truncated
}

// AnswerCount is the number of records in the answer section (0 for a
// truncated reply, whose records are not kept).
func (r *Response) AnswerCount() int { return r.ancount }

// MinAnswerTTL is the lowest TTL in the answer section, in seconds;
// math.MaxUint32 without answers.
func (r *Response) MinAnswerTTL() uint32 { return r.minAnswer }

// SOA returns the TTL and the MINIMUM field of the first SOA record in the
// authority section, which bound a negative answer's lifetime (RFC 2308
// 5); ok is false without one.
func (r *Response) SOA() (ttl, minimum uint32, ok bool) { return r.soaTTL, r.soaMin, r.hasSOA }

// Msg returns the stored message (no OPT, lower-cased question). It aliases
// r and must not be modified.
func (r *Response) Msg() []byte { return r.buf[:r.msgLen] }

// Question returns r's question section, lower-cased. It aliases r.
func (r *Response) Question() []byte { return r.buf[HeaderLen:r.qend] }

// Size is the memory held by r, in bytes.
func (r *Response) Size() int { return cap(r.buf) }

// Answers reports whether r is the reply to q's question (ignoring case;
// the DO and CD bits, which are not part of a reply, are the caller's to
// compare).
func (r *Response) Answers(q *Query) bool {
	qs := q.Question()
	return r.qend == HeaderLen+len(qs) && string(r.buf[HeaderLen:r.qend]) == string(qs)
}

// NewServFail returns the SERVFAIL reply to q, with no records, that stands
// for a failed upstream race.
func NewServFail(q *Query) *Response {
	qs := q.Question()
	buf := make([]byte, HeaderLen+len(qs))
	binary.BigEndian.PutUint16(buf[2:], flagQR|flagRA|rcodeServFail)
	binary.BigEndian.PutUint16(buf[4:], 1)
	copy(buf[HeaderLen:], qs)
	return &Response{buf: buf, msgLen: len(buf), qend: len(buf), rcode: rcodeServFail}
}

// Response codes the policies look at.
const (
	rcodeNoError  = 0
	rcodeServFail = 2
	rcodeNXDomain = 3
)

// errResponse wraps every reason a reply is refused.
var errResponse = errors.New("dnswire: unusable reply")

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
	return parseResponse(q.Question(), reply)
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
	copy(buf[HeaderLen:], qs)
	switch {
	case r.truncated:
		// Only the header and the question are kept.
		clear(buf[6:HeaderLen])
	case optStart >= 0:
		binary.BigEndian.PutUint16(buf[10:], binary.BigEndian.Uint16(buf[10:])-1)
	}
	// The walk stored the offsets in r.buf temporarily.
	copy(buf[msgLen:], r.buf)
	r.buf = buf
	return r, nil
}
