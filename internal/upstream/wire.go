package upstream

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/spartan-dns/spartan/internal/dnswire"
)

// Wire-format offsets and flags, RFC 1035 4.1.1.
const (
	headerLen = dnswire.HeaderLen
	flagQR    = 1 << 15
	flagTC    = 1 << 9

	rcodeNoError  = 0
	rcodeNXDomain = 3
)

// errQuery reports a query this package cannot send: it must be a packed
// message with exactly one uncompressed question.
var errQuery = fmt.Errorf("upstream: query: %w", dnswire.ErrQuestion)

// questionEnd returns the end of the single question of a packed query.
func questionEnd(q []byte) (int, error) {
	end, err := dnswire.QuestionEnd(q)
	if err != nil {
		return 0, errQuery
	}
	return end, nil
}

// verdict is what a datagram read on a leg's socket means for the leg.
type verdict uint8

const (
	// mismatch: not the reply to this leg (wrong ID, not a response, a
	// different question): ignore it and keep reading.
	mismatch verdict = iota
	// answer: NOERROR (NODATA included) or NXDOMAIN that the reply
	// parser accepts.
	answer
	// truncated: the reply to this leg with TC set.
	truncated
	// failure: the reply to this leg, but an error rcode or unparseable.
	failure
	// caseMismatch: the reply to this leg in every respect (ID, source,
	// question ignoring case) but the case of its question's letters,
	// while the leg wants them exactly as sent (DNS 0x20): either a spoof
	// that guessed the ID and the port but not the casing, or an upstream
	// that normalises case. The leg asks again over TCP to tell which.
	caseMismatch
)

// check classifies reply for a leg that sent ID id and question question
// (the query's bytes from offset 12 to the end of its question); exact
// says the reply's question must be the one sent byte for byte, letters'
// case included (DNS 0x20), rather than ignoring case.
//
// A reply that match finds to be a NOERROR or NXDOMAIN reply to the leg is
// an answer (or truncated, with TC) only when dnswire.CheckReply accepts it:
// the reply parser's own structural check (opcode, every name including
// those in record data, record bounds, the data layout of the record types
// a stub resolver parses, OPT placement), so a reply that wins a race
// always parses and a client can always read it. One it refuses is a
// failure, held while other legs are pending.
func check(reply []byte, id uint16, question []byte, exact bool) verdict {
	v := match(reply, id, question, exact)
	if v != answer {
		return v
	}
	if dnswire.CheckReply(question, reply) != nil {
		return failure
	}
	if binary.BigEndian.Uint16(reply[2:])&flagTC != 0 {
		// Only its header and question were read: a truncated reply
		// may be cut anywhere after them.
		return truncated
	}
	return answer
}

// match is check without the structural check of the records: answer
// means a NOERROR or NXDOMAIN reply to the leg, whatever follows its
// question.
//
// The ID, the QR bit and the question (name compared case-insensitively,
// type and class) must match, otherwise the datagram is a mismatch: a
// spoof or a stale reply. With exact, a reply whose question differs from
// the one sent only in the case of its letters is a caseMismatch,
// whatever its rcode. Two exceptions make a leg fail rather than wait:
// a reply with the right ID whose question cannot even be parsed (our
// server sent garbage), and an error reply with no question section, which
// some servers send with FORMERR or NOTIMP. Neither can make a bad answer
// win; at worst a spoofer who guessed ID and port turns a leg into a
// failure, which it could do by dropping packets too.
func match(reply []byte, id uint16, question []byte, exact bool) verdict {
	if len(reply) < headerLen || binary.BigEndian.Uint16(reply) != id {
		return mismatch
	}
	flags := binary.BigEndian.Uint16(reply[2:])
	if flags&flagQR == 0 {
		return mismatch
	}
	rcode := int(flags & 0xF)
	switch qd := binary.BigEndian.Uint16(reply[4:]); {
	case qd == 0:
		if rcode != rcodeNoError && rcode != rcodeNXDomain {
			return failure
		}
		return mismatch
	case qd != 1:
		return mismatch
	}
	qend := headerLen + len(question)
	if len(reply) < qend || !dnswire.EqualQuestion(reply[headerLen:qend], question) {
		if off, ok := dnswire.SkipName(reply, headerLen, true); !ok || off+4 > len(reply) {
			return failure
		}
		return mismatch
	}
	if exact && string(reply[headerLen:qend]) != string(question) {
		return caseMismatch
	}
	if rcode != rcodeNoError && rcode != rcodeNXDomain {
		return failure
	}
	return answer
}

// randomizeCase gives each ASCII letter of the name in question (an
// uncompressed wire name followed by type and class) a random case, the
// DNS 0x20 of draft-vixie-dnsext-dns0x20: a reply must echo it to be
// accepted, so a blind spoofer must guess one bit per letter on top of
// the ID and the port. Label lengths are below 64, never letters.
func randomizeCase(question []byte) {
	var bits uint64
	left := 0
	for i, c := range question[:len(question)-4] {
		if l := c | 0x20; l < 'a' || l > 'z' {
			continue
		}
		if left == 0 {
			bits, left = rand.Uint64(), 64
		}
		question[i] = c&^0x20 | byte(bits&1)<<5
		bits >>= 1
		left--
	}
}
