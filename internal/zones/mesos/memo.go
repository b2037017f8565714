package mesos

import (
	"hash/maphash"
	"math/rand/v2"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/dnswire"
)

// Memo bounds: entries enough for the names agents ask for in a large
// cluster, and a cap on bytes that holds whatever the mix; replies above
// memoMaxReply (large SRV sets) are rebuilt every time.
const (
	memoMaxEntries  = 1 << 17
	memoMaxBytes    = 32 << 20
	memoMaxReply    = dnswire.MaxUDPSize
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
	r *dnswire.Response
	// ans holds, for a reply with several answers, its AnswerSpans; the
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
// and it fits in limit bytes (ok). held reports that there is one, fitting
// or not: storing it again would only repeat the work.
func (m *replyMemo) get(q *dnswire.Query, version uint64, dst []byte, limit int) (out []byte, ok, held bool) {
	h := maphash.Bytes(m.seed, q.Key())
	m.mu.Lock()
	var e *memoEntry
	if m.version == version {
		e, held = m.lru.Get(h)
	}
	m.mu.Unlock()
	if !held || !e.r.Answers(q) {
		return dst[:0], false, false
	}
	out, ok = e.r.AppendAuthoritative(dst, q, limit)
	if ok && len(e.ans) > 2 {
		shuffleRecords(out, e.ans)
	}
	return out, ok, true
}

// put stores reply, the untruncated authoritative reply to q built from
// the zones at version, packed uncompressed (see memoable) so that its
// answer records can move. Replies above memoMaxReply are not kept, nor
// are more than memoMaxShuffled answers, nor several answers to ANY.
func (m *replyMemo) put(q *dnswire.Query, version uint64, reply []byte) {
	if len(reply) > memoMaxReply {
		return
	}
	r, err := dnswire.ParseResponse(q, reply)
	if err != nil {
		return
	}
	e := &memoEntry{r: r}
	if spans := r.AnswerSpans(nil); len(spans) > 2 {
		// Several answers: shuffled on every write, as Zone.Lookup
		// shuffles one record set; ANY keeps the zone's order, so it is
		// rebuilt instead.
		if len(spans) > memoMaxShuffled+1 || q.Qtype == dns.TypeANY {
			return
		}
		e.ans = spans
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
