package upstream

import (
	"encoding/binary"
	"fmt"

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
)

// check classifies reply for a leg that sent ID id and question question
// (the query's bytes from offset 12 to the end of its question).
//
// A reply that match finds to be a NOERROR or NXDOMAIN reply to the leg is
// an answer (or truncated, with TC) only when dnswire.CheckReply accepts it:
// the reply parser's own structural check (opcode, every name including
// those in record data, record bounds, the data layout of the record types
// a stub resolver parses, OPT placement), so a reply that wins a race
// always parses and a client can always read it. One it refuses is a
// failure, held while other legs are pending.
func check(reply []byte, id uint16, question []byte) verdict {
	v := match(reply, id, question)
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
// spoof or a stale reply. Two exceptions make a leg fail rather than wait:
// a reply with the right ID whose question cannot even be parsed (our
// server sent garbage), and an error reply with no question section, which
// some servers send with FORMERR or NOTIMP. Neither can make a bad answer
// win; at worst a spoofer who guessed ID and port turns a leg into a
// failure, which it could do by dropping packets too.
func match(reply []byte, id uint16, question []byte) verdict {
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
	if rcode != rcodeNoError && rcode != rcodeNXDomain {
		return failure
	}
	return answer
}
