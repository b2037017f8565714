package dnswire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/miekg/dns"
)

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
	if len(reply) < HeaderLen {
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
	qend := HeaderLen + len(qs)
	if len(reply) < qend || !EqualQuestion(reply[HeaderLen:qend], qs) {
		return -1, -1, 0, respErr("question does not match the query")
	}
	w := walker{msg: reply, starts: starts}
	if _, err := w.name(HeaderLen); err != nil {
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
			if n >= MaxNameLen {
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
