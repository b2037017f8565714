// Package wire holds the DNS wire-format pieces the benchmark helpers share:
// the query names they generate, queries built without allocation, replies
// built straight from a query's bytes (so a fake upstream costs almost
// nothing next to the server being measured) and latency percentiles.
package wire

import (
	"encoding/binary"
	"slices"
)

// HeaderLen is the length of a DNS message header.
const HeaderLen = 12

// SeqNamesPerLetter is how many names one leading letter of SeqName covers.
const SeqNamesPerLetter = 1000000

// SeqNameLen is the wire length of every SeqName: "a000000.example.com.".
// All have the same length so that the trivial responder's prepared reply
// fits any of them.
const SeqNameLen = 21

// SeqName appends the wire form of the i-th benchmark name to dst:
// "a000000.example.com." .. "z999999.example.com.", then it wraps. The
// leading letter is i / SeqNamesPerLetter, so runs that start at different
// multiples of SeqNamesPerLetter never share a name.
func SeqName(dst []byte, i uint64) []byte {
	var label [8]byte
	label[0] = 7
	label[1] = 'a' + byte((i/SeqNamesPerLetter)%26)
	n := i % SeqNamesPerLetter
	for k := 7; k >= 2; k-- {
		label[k] = '0' + byte(n%10)
		n /= 10
	}
	dst = append(dst, label[:]...)
	return append(dst, "\x07example\x03com\x00"...)
}

// AppendQuery appends a query with one question (name in wire form, class
// IN) and the RD bit to dst.
func AppendQuery(dst []byte, id uint16, name []byte, qtype uint16) []byte {
	dst = AppendQueryHeader(dst, id)
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint16(dst, qtype)
	return append(dst, 0, 1)
}

// AppendQueryHeader appends the header of a query with the RD bit and one
// question, which the caller appends next.
func AppendQueryHeader(dst []byte, id uint16) []byte {
	dst = binary.BigEndian.AppendUint16(dst, id)
	return append(dst, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; QDCOUNT 1
}

// QuestionEnd returns the offset just past the first question of msg
// (name, type and class) when msg has exactly one question whose name has
// no compression pointer; ok is false for anything else, including
// truncated or malformed input.
func QuestionEnd(msg []byte) (end int, ok bool) {
	if len(msg) < HeaderLen || binary.BigEndian.Uint16(msg[4:]) != 1 {
		return 0, false
	}
	off := HeaderLen
	for {
		if off >= len(msg) || off-HeaderLen > 255 {
			return 0, false
		}
		l := int(msg[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 {
			return 0, false // a pointer or a reserved label type
		}
		off += 1 + l
	}
	if off+4 > len(msg) {
		return 0, false
	}
	return off + 4, true
}

// Reply describes the answer AppendReply builds.
type Reply struct {
	// TTL of the A record.
	TTL uint32
	// A is the address every A question is answered with.
	A [4]byte
}

// AppendReply appends to dst the reply to query: the query's header and
// question with QR and RA set, and for an A question in class IN one A
// record (its owner a compression pointer to the question); any other
// question gets an empty NOERROR answer (NODATA). A query carrying an
// additional record (EDNS) gets an OPT record advertising 1232 bytes. ok is
// false when the query is not a single-question query.
func (r Reply) AppendReply(dst, query []byte) (out []byte, ok bool) {
	qend, ok := QuestionEnd(query)
	if !ok || query[2]&0x80 != 0 {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, query[:qend]...)
	h := dst[start:]
	h[2] = h[2]&0x79 | 0x80 // QR; keep opcode and RD; clear AA, TC
	h[3] = 0x80             // RA, RCODE NOERROR
	qtype := binary.BigEndian.Uint16(query[qend-4:])
	qclass := binary.BigEndian.Uint16(query[qend-2:])
	var an uint16
	if qtype == 1 && qclass == 1 {
		an = 1
	}
	edns := binary.BigEndian.Uint16(query[10:]) > 0
	binary.BigEndian.PutUint16(h[6:], an)
	binary.BigEndian.PutUint16(h[8:], 0)
	binary.BigEndian.PutUint16(h[10:], 0)
	if an == 1 {
		dst = append(dst, 0xc0, HeaderLen, 0, 1, 0, 1)
		dst = binary.BigEndian.AppendUint32(dst, r.TTL)
		dst = append(dst, 0, 4)
		dst = append(dst, r.A[:]...)
	}
	if edns {
		binary.BigEndian.PutUint16(dst[start+10:], 1)
		dst = append(dst, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0)
	}
	return dst, true
}

// Header is what a load client needs from a reply's header.
type Header struct {
	ID      uint16
	Rcode   int
	Answers int
}

// ParseHeader reads the header of a reply; ok is false when msg is too
// short or is not a response.
func ParseHeader(msg []byte) (h Header, ok bool) {
	if len(msg) < HeaderLen || msg[2]&0x80 == 0 {
		return Header{}, false
	}
	return Header{
		ID:      binary.BigEndian.Uint16(msg),
		Rcode:   int(msg[3] & 0x0f),
		Answers: int(binary.BigEndian.Uint16(msg[6:])),
	}, true
}

// Percentiles returns the values at the given quantiles (0 < q <= 1) of
// samples, which it sorts in place; all zero when there are no samples.
// The value at quantile q is the smallest sample with at least q of the
// samples at or below it.
func Percentiles(samples []uint32, qs ...float64) []uint32 {
	out := make([]uint32, len(qs))
	if len(samples) == 0 {
		return out
	}
	slices.Sort(samples)
	for i, q := range qs {
		k := int(q*float64(len(samples))+0.999999) - 1
		out[i] = samples[min(max(k, 0), len(samples)-1)]
	}
	return out
}
