package dnswire

import (
	"encoding/binary"
	"errors"

	"github.com/miekg/dns"
)

// Limits and sizes of the wire format.
const (
	// HeaderLen is the length of a message header (RFC 1035 4.1.1).
	HeaderLen = 12
	// MaxNameLen is the longest name in wire format, the root label
	// included (RFC 1035 2.3.4).
	MaxNameLen = 255
	// MaxUDPSize is the EDNS buffer size spartan advertises, upstream and
	// to clients, and the largest UDP reply it writes (the DNS Flag Day
	// 2020 value, which avoids IP fragmentation).
	MaxUDPSize = 1232

	maxLabel = 63
	optRRLen = 11 // root owner, type, class, TTL, RDLENGTH
)

// Record types and classes the parsers look at.
const (
	typeOPT   = 41
	typeSOA   = 6
	typeTSIG  = 250
	typeSIG   = 24
	typeIXFR  = 251
	typeAXFR  = 252
	classINET = 1
)

// Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2) and the EDNS DO bit.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagAD = 1 << 5
	flagCD = 1 << 4

	ednsDO = 1 << 15
)

// WireName returns the lower-cased, uncompressed wire form of a domain
// name in presentation format ("Example.COM" or "example.com.").
func WireName(domain string) ([]byte, error) {
	buf := make([]byte, MaxNameLen+1)
	n, err := dns.PackDomainName(dns.CanonicalName(domain), buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	return buf[:n:n], nil
}

// InZone reports whether the lower-cased, uncompressed wire name is zone
// or a name below it: zone must be a suffix of name that starts at one of
// its label boundaries.
func InZone(name, zone []byte) bool {
	if len(name) < len(zone) || string(name[len(name)-len(zone):]) != string(zone) {
		return false
	}
	for off := 0; off < len(name); off += 1 + int(name[off]) {
		if off == len(name)-len(zone) {
			return true
		}
		if name[off] == 0 {
			break
		}
	}
	return false
}

// EqualQuestion compares two uncompressed question sections of a single
// question (name, type, class): the name's ASCII letters
// case-insensitively (RFC 4343), type and class byte for byte.
func EqualQuestion(a, b []byte) bool {
	if len(a) != len(b) || len(b) < 4 {
		return false
	}
	n := len(b) - 4
	for i := 0; i < n; i++ {
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
	return string(a[n:]) == string(b[n:])
}

// ErrQuestion reports a message whose question section cannot be read.
var ErrQuestion = errors.New("dnswire: not a packed message with one uncompressed question")

// QuestionEnd returns the offset just past the single question of the
// packed message msg, whose name must not be compressed (nothing precedes
// a first question for a pointer to point to).
func QuestionEnd(msg []byte) (int, error) {
	if len(msg) < HeaderLen || binary.BigEndian.Uint16(msg[4:]) != 1 {
		return 0, ErrQuestion
	}
	off, ok := SkipName(msg, HeaderLen, false)
	if !ok || off+4 > len(msg) {
		return 0, ErrQuestion
	}
	return off + 4, nil
}

// SkipName returns the offset just past the name at off in msg, and false
// when the name is malformed: it overruns msg, exceeds 255 bytes, uses an
// obsolete label type, or, with pointers false, holds a compression
// pointer at all. A pointer must point backwards, which bounds the walk.
func SkipName(msg []byte, off int, pointers bool) (int, bool) {
	end := -1
	total := 0
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return end, true
		case l&0xC0 == 0xC0:
			if !pointers || off+1 >= len(msg) {
				return 0, false
			}
			target := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if target >= off || target < HeaderLen {
				return 0, false
			}
			if end < 0 {
				end = off + 2
			}
			off = target
		case l > maxLabel:
			return 0, false // 0x40 and 0x80: obsolete label types
		default:
			total += l + 1
			if total > MaxNameLen {
				return 0, false
			}
			off += 1 + l
		}
	}
}
