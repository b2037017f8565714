package dnswire

import (
	"encoding/binary"
	"math"
)

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

// AppendAged appends r as AppendReply does, for a reply kept age seconds
// in a cache whose entry has maxTTL seconds left to live: every TTL is
// lowered by age (to no less than zero) and then capped at maxTTL, so
// clients never hold a record past the entry that served it.
func (r *Response) AppendAged(dst []byte, q *Query, limit int, age, maxTTL uint32) []byte {
	return r.appendReply(dst, q, limit, ttlMode{age: age, limit: maxTTL})
}

// AppendStale appends r as AppendReply does with every TTL set to ttl: an
// expired answer served because the upstreams failed (RFC 8767 4).
func (r *Response) AppendStale(dst []byte, q *Query, limit int, ttl uint32) []byte {
	return r.appendReply(dst, q, limit, ttlMode{stale: true, value: ttl})
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
	copy(dst[HeaderLen:], q.name[:q.nameLen])
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

// AppendError appends to dst[:0] a reply to q with rcode and no records:
// q's ID, opcode, RD and CD bits, RA set, q's question as the client cased
// it, and an OPT record when q had one.
func AppendError(dst []byte, q *Query, rcode int) []byte {
	dst = appendHeader(dst, q, rcode)
	return appendQuestionOPT(dst, q)
}

// AppendTruncated appends to dst[:0] an empty reply to q with TC set,
// carrying the rcode and AA bit of upstream, a truncated reply: the client
// retries over TCP.
func AppendTruncated(dst []byte, q *Query, upstream []byte) []byte {
	dst = appendHeader(dst, q, int(upstream[3]&0xF))
	dst[2] |= byte(flagTC>>8) | upstream[2]&byte(flagAA>>8)
	return appendQuestionOPT(dst, q)
}

// AppendFormErr appends to dst[:0] a FORMERR reply with no sections to
// msg, a message that does not parse, keeping its ID, opcode and RD bit;
// ra sets RA (a recursive server's reply). It returns nil, meaning no
// reply at all, when msg has no complete header or is itself a response:
// answering either could start a loop with another server.
func AppendFormErr(dst, msg []byte, ra bool) []byte {
	if len(msg) < HeaderLen || msg[2]&byte(flagQR>>8) != 0 {
		return nil
	}
	var fl byte
	if ra {
		fl = byte(flagRA)
	}
	return append(dst[:0], msg[0], msg[1], byte(flagQR>>8)|msg[2]&0x79, fl|rcodeFormErr, 0, 0, 0, 0, 0, 0, 0, 0)
}

// rcodeFormErr is FORMERR.
const rcodeFormErr = 1

// appendHeader appends the header of a reply to q with rcode, one
// question, no answer or authority records, and an OPT record when q had
// one.
func appendHeader(dst []byte, q *Query, rcode int) []byte {
	flags := uint16(flagQR|flagRA) | uint16(q.Opcode)<<11 | uint16(rcode&0xF)
	if q.RD {
		flags |= flagRD
	}
	if q.CD {
		flags |= flagCD
	}
	var arcount byte
	if q.EDNS {
		arcount = 1
	}
	return append(dst[:0], byte(q.ID>>8), byte(q.ID), byte(flags>>8), byte(flags),
		0, 1, 0, 0, 0, 0, 0, arcount)
}

// appendQuestionOPT appends q's question, with the client's casing, and
// our OPT record when q had one.
func appendQuestionOPT(dst []byte, q *Query) []byte {
	dst = append(dst, q.name[:q.nameLen]...)
	dst = append(dst, q.key[q.nameLen:q.nameLen+4]...)
	if q.EDNS {
		var do byte
		if q.DO {
			do = ednsDO >> 8
		}
		dst = append(dst, 0, 0, typeOPT, byte(MaxUDPSize>>8), byte(MaxUDPSize&0xFF), 0, 0, do, 0, 0, 0)
	}
	return dst
}
