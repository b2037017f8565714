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
// Every record's data must fit its type (walker.rdata). A truncated reply
// ends after its question: its records are not read.
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
		if err := w.rdata(rtype, start+10, off); err != nil {
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

// rdata checks the RDATA at [off, end) of a record of type rtype. The
// types a stub resolver parses must have exactly their layout, or the
// reply is refused: relayed and cached, a 3-byte A record or a TXT string
// that overruns its record would reach every client as a message it cannot
// read. The domain names inside the RDATA of the types whose names may be
// compressed (RFC 1035 and those miekg/dns decompresses) are walked, so
// that pointers to them are accepted and pointers in them are checked.
// Other types' data is opaque here.
func (w *walker) rdata(rtype uint16, off, end int) error {
	switch rtype {
	case 1: // A
		if end-off != 4 {
			return respErr("A data of %d bytes", end-off)
		}
	case 28: // AAAA
		if end-off != 16 {
			return respErr("AAAA data of %d bytes", end-off)
		}
	case 2, 3, 4, 5, 7, 8, 9, 12, 39: // NS MD MF CNAME MB MG MR PTR DNAME
		_, err := w.names(rtype, off, end, 0, 1, 0, true)
		return err
	case 6: // SOA: MNAME, RNAME, then serial, refresh, retry, expire, minimum
		_, err := w.names(rtype, off, end, 0, 2, 20, true)
		return err
	case 14, 17: // MINFO RP
		_, err := w.names(rtype, off, end, 0, 2, 0, true)
		return err
	case 15, 18, 21, 36: // MX AFSDB RT KX: preference, name
		_, err := w.names(rtype, off, end, 2, 1, 0, true)
		return err
	case 26: // PX: preference, two names
		_, err := w.names(rtype, off, end, 2, 2, 0, true)
		return err
	case 33: // SRV: priority, weight, port, target
		_, err := w.names(rtype, off, end, 6, 1, 0, true)
		return err
	case 35: // NAPTR: order, preference, three character-strings, replacement
		p := off + 4
		for range 3 {
			if p >= end {
				return respErr("NAPTR data truncated at offset %d", off)
			}
			p += 1 + int(w.msg[p])
		}
		_, err := w.names(rtype, p, end, 0, 1, 0, true)
		return err
	case 46: // RRSIG: 18 bytes, the signer's name, the signature
		_, err := w.names(rtype, off, end, 18, 1, 0, false)
		return err
	case 47: // NSEC: the next name, the type bit maps
		_, err := w.names(rtype, off, end, 0, 1, 0, false)
		return err
	case 16, 99: // TXT SPF: one or more character-strings
		if off == end {
			return respErr("type %d data empty", rtype)
		}
		for off < end {
			off += 1 + int(w.msg[off])
		}
		if off != end {
			return respErr("type %d character-string overruns its record data", rtype)
		}
	case 250: // TSIG: algorithm, time, fudge, MAC size, MAC, original ID, error, other length, other data
		p, err := w.names(rtype, off, end, 0, 1, 10, false)
		if err != nil {
			return err
		}
		p += 10 + int(binary.BigEndian.Uint16(w.msg[p+8:]))
		if p+6 > end {
			return respErr("TSIG data truncated at offset %d", p)
		}
		if p+6+int(binary.BigEndian.Uint16(w.msg[p+4:])) != end {
			return respErr("TSIG data does not fill its record exactly")
		}
	case 257: // CAA: flags, tag length (at least 1), tag, value
		if end-off < 2 || w.msg[off+1] == 0 || off+2+int(w.msg[off+1]) > end {
			return respErr("CAA data of %d bytes with a bad tag", end-off)
		}
	case 64, 65: // SVCB HTTPS: priority, target, then SvcParams as key, length, value
		p, err := w.names(rtype, off, end, 2, 1, 0, false)
		if err != nil {
			return err
		}
		for p < end {
			if p+4 > end {
				return respErr("type %d parameter truncated at offset %d", rtype, p)
			}
			p += 4 + int(binary.BigEndian.Uint16(w.msg[p+2:]))
		}
		if p != end {
			return respErr("type %d parameter overruns its record data", rtype)
		}
	}
	return nil
}

// names checks RDATA of type rtype at [off, end) made of pre fixed bytes,
// n domain names and post fixed bytes, and with exact nothing after them
// (otherwise anything may follow: a signature, type bit maps). It returns
// the offset just past the names.
func (w *walker) names(rtype uint16, off, end, pre, n, post int, exact bool) (int, error) {
	off += pre
	for range n {
		if off >= end {
			return 0, respErr("type %d data truncated before a name at offset %d", rtype, off)
		}
		next, err := w.name(off)
		if err != nil {
			return 0, err
		}
		if next > end {
			return 0, respErr("type %d name at offset %d overruns its record data", rtype, off)
		}
		off = next
	}
	if rest := end - off; rest < post || exact && rest != post {
		return 0, respErr("type %d data has %d bytes after its names, want %d", rtype, rest, post)
	}
	return off, nil
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
	// miekg/dns packs some record data it unpacked from nothing (an empty
	// TSIG, say) into bytes it cannot unpack again: a reply re-packed so
	// must still read back.
	var check dns.Msg
	if err := check.Unpack(out); err != nil {
		return nil, fmt.Errorf("%w: re-packed reply does not unpack: %w", errResponse, err)
	}
	return out, nil
}
