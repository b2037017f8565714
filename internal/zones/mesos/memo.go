package mesos

import (
	"encoding/binary"
	"hash/maphash"
	"math/rand/v2"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/spartan-dns/spartan/internal/proxy/cache"
)

// Memo bounds: entries enough for the names agents ask for in a large
// cluster, and a cap on bytes that holds whatever the mix; replies above
// memoMaxReply (large SRV sets) are rebuilt every time.
const (
	memoMaxEntries  = 1 << 17
	memoMaxBytes    = 32 << 20
	memoMaxReply    = cache.MaxUDPSize
	memoMaxShuffled = 64 // answers a kept reply may have
)

// replyMemo keeps packed replies of the current zones, keyed by question,
// so a repeated query is answered by patching a stored message (ID, flags,
// casing, OPT) instead of unpacking the query, looking the zone up and
// packing a new reply. That path allocates nothing, which keeps the
// garbage collector, and with it the tail latency of a busy master, quiet.
// Every entry belongs to one Authority.Version: a zone swap empties the
// memo. The answers of a kept reply are shuffled on every write, as the
// zone shuffles them (Zone.Lookup).
type replyMemo struct {
	seed maphash.Seed

	mu      sync.Mutex
	version uint64
	bytes   int
	lru     *simplelru.LRU[uint64, *memoEntry]
}

// memoEntry is one kept reply.
type memoEntry struct {
	r *cache.Response
	// ans holds, for a reply with several answers, the offset of each
	// answer record in the message and then the end of the last one; the
	// records are uncompressed, so any order of them is a valid message.
	ans []uint16
}

func newReplyMemo() *replyMemo {
	m := &replyMemo{seed: maphash.MakeSeed()}
	// NewLRU fails only for a size below one.
	m.lru, _ = simplelru.NewLRU(memoMaxEntries, func(_ uint64, e *memoEntry) { m.bytes -= e.size() })
	return m
}

func (e *memoEntry) size() int { return e.r.Size() + 2*len(e.ans) }

// get writes the stored reply to q into dst if there is one for version
// and it fits in limit bytes.
func (m *replyMemo) get(q *cache.Query, version uint64, dst []byte, limit int) ([]byte, bool) {
	h := maphash.Bytes(m.seed, q.Key())
	m.mu.Lock()
	var e *memoEntry
	ok := false
	if m.version == version {
		e, ok = m.lru.Get(h)
	}
	m.mu.Unlock()
	if !ok || !e.r.Answers(q) {
		return dst[:0], false
	}
	out, ok := e.r.AppendAuthoritative(dst, q, limit)
	if ok && len(e.ans) > 2 {
		shuffleRecords(out, e.ans)
	}
	return out, ok
}

// put stores reply, the untruncated authoritative reply to q built from
// the zones at version, with ancount answers. Replies above memoMaxReply
// are not kept, nor are several answers that cannot be reordered.
func (m *replyMemo) put(q *cache.Query, version uint64, reply []byte, ancount int) {
	if len(reply) > memoMaxReply || ancount > memoMaxShuffled {
		return
	}
	e := &memoEntry{}
	if ancount > 1 {
		var ok bool
		if e.ans, ok = answerOffsets(reply, 12+len(q.Name())+4, ancount); !ok {
			return
		}
	}
	var err error
	if e.r, err = cache.ParseResponse(q, reply); err != nil {
		return
	}
	h := maphash.Bytes(m.seed, q.Key())
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case version > m.version:
		m.lru.Purge()
		m.version = version
	case version < m.version:
		return // built from zones already replaced
	}
	m.lru.Remove(h) // Add would replace it without the byte count
	m.lru.Add(h, e)
	m.bytes += e.size()
	for m.bytes > memoMaxBytes {
		m.lru.RemoveOldest()
	}
}

// answerOffsets returns where each of the n answer records of msg starts,
// the answer section starting at off, and where the last one ends. ok is
// false if a name in them is compressed (a pointer would break when the
// records move) or the message is cut short.
func answerOffsets(msg []byte, off, n int) ([]uint16, bool) {
	offs := make([]uint16, 0, n+1)
	for range n {
		offs = append(offs, uint16(off))
		for {
			if off >= len(msg) {
				return nil, false
			}
			l := int(msg[off])
			if l == 0 {
				off++
				break
			}
			if l > 63 { // a pointer or an extended label type
				return nil, false
			}
			off += 1 + l
		}
		if off+10 > len(msg) {
			return nil, false
		}
		rtype := binary.BigEndian.Uint16(msg[off:])
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if off > len(msg) || !plainRdata(rtype) {
			return nil, false
		}
	}
	return append(offs, uint16(off)), true
}

// plainRdata reports whether the records of type t the zones serve with
// several answers have RDATA that moves with them: addresses, or names
// the zone packs uncompressed (miekg/dns compresses only when asked).
func plainRdata(t uint16) bool {
	switch t {
	case 1, 28, 33, 2: // A, AAAA, SRV, NS
		return true
	}
	return false
}

// shuffleRecords puts the records between offs[0] and offs[len(offs)-1]
// of msg in a random order; offs are their starts and the end of the last.
func shuffleRecords(msg []byte, offs []uint16) {
	n := len(offs) - 1
	var perm [memoMaxShuffled]uint8
	for i := range n {
		perm[i] = uint8(i)
	}
	rand.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	var scratch [memoMaxReply]byte
	start, end := int(offs[0]), int(offs[n])
	seg := scratch[:end-start]
	copy(seg, msg[start:end])
	w := start
	for _, p := range perm[:n] {
		w += copy(msg[w:], seg[int(offs[p])-start:int(offs[p+1])-start])
	}
}
