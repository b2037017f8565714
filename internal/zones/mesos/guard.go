package mesos

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
)

// Guard is the authoritative port's client policy, so that the port is no
// reflector: clients outside master.allowNets get REFUSED, and UDP replies
// are rate limited per client prefix (master.rrl). Its checks allocate
// nothing and take no lock: the master answers repeated questions in
// about 100 ns, and the guard must not change that.
//
// A client outside the allowed networks gets REFUSED rather than silence,
// as BIND answers a query that allow-query denies: RFC 1035's REFUSED is
// the rcode for a refusal on policy grounds, a misconfigured client learns
// at once instead of timing out, and the reply is the query's header and
// question only, never larger than the query, so it amplifies nothing.
// Refusals are rate limited like every other UDP reply.
type Guard struct {
	allow netSet
	rrl   *rateLimiter // nil: no rate limiting

	refused, limited, dropped, slipped atomic.Uint64
}

// GuardStats counts what a Guard did, since start.
type GuardStats struct {
	// Refused counts queries from clients outside the allowed networks,
	// answered REFUSED (or dropped, when over the rate limit).
	Refused uint64
	// RateLimited counts UDP replies over the rate limit: Dropped were
	// not sent, Slipped went out truncated and empty instead.
	RateLimited, Dropped, Slipped uint64
}

// NewGuard returns the guard a validated master configuration asks for.
func NewGuard(cfg config.Master) (*Guard, error) {
	allow, err := parseNets(cfg.AllowNets)
	if err != nil {
		return nil, fmt.Errorf("master.allowNets: %w", err)
	}
	g := &Guard{allow: allow}
	if cfg.RRL.ResponsesPerSecond > 0 {
		if g.rrl, err = newRateLimiter(cfg.RRL); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// client is a client address as the guard compares it: IPv4 (and
// IPv4-mapped IPv6) as 32 bits, IPv6 as two 64-bit halves. Computing it
// once per query keeps the network and prefix checks to a few integer
// operations each.
type client struct {
	v4     bool
	ip4    uint32
	hi, lo uint64
}

func clientOf(a netip.Addr) client {
	if a = a.Unmap(); a.Is4() {
		b := a.As4()
		return client{v4: true, ip4: binary.BigEndian.Uint32(b[:])}
	}
	b := a.As16()
	return client{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// netSet is a list of networks, as masks and masked addresses.
type netSet struct {
	v4 [][2]uint32 // address, mask
	v6 [][4]uint64 // high and low address, high and low mask
}

func parseNets(nets []string) (netSet, error) {
	var s netSet
	for _, n := range nets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return netSet{}, fmt.Errorf("not a CIDR prefix: %q", n)
		}
		c := clientOf(p.Addr())
		// A 4in6 prefix (::ffff:10.0.0.0/104) is an IPv4 one.
		bitLen := p.Bits()
		if c.v4 && p.Addr().Is4In6() {
			bitLen = max(bitLen-96, 0)
		}
		if c.v4 {
			m := mask32(bitLen)
			s.v4 = append(s.v4, [2]uint32{c.ip4 & m, m})
			continue
		}
		mh, ml := mask128(bitLen)
		s.v6 = append(s.v6, [4]uint64{c.hi & mh, c.lo & ml, mh, ml})
	}
	return s, nil
}

func mask32(bits int) uint32 { return ^uint32(0) << (32 - bits) }

func mask128(bits int) (hi, lo uint64) {
	if bits <= 64 {
		return ^uint64(0) << (64 - bits), 0
	}
	return ^uint64(0), ^uint64(0) << (128 - bits)
}

// contains reports whether c is in one of the networks.
func (s *netSet) contains(c client) bool {
	if c.v4 {
		for _, n := range s.v4 {
			if c.ip4&n[1] == n[0] {
				return true
			}
		}
		return false
	}
	for _, n := range s.v6 {
		if c.hi&n[2] == n[0] && c.lo&n[3] == n[1] {
			return true
		}
	}
	return false
}

// Stats returns the guard's counters.
func (g *Guard) Stats() GuardStats {
	return GuardStats{
		Refused: g.refused.Load(), RateLimited: g.limited.Load(),
		Dropped: g.dropped.Load(), Slipped: g.slipped.Load(),
	}
}

// allowed reports whether c may be answered.
func (g *Guard) allowed(c client) bool { return g.allow.contains(c) }

// refuse appends to dst[:0] the REFUSED reply to msg, a query from a
// client outside the allowed networks: its ID, opcode, RD and CD bits and
// question (when it parses, into q), no records.
func (g *Guard) refuse(msg, dst []byte, q *dnswire.Query) []byte {
	g.refused.Add(1)
	out := append(dst[:0], msg[0], msg[1], 0x80|msg[2]&0x79, msg[3]&0x10|dns5, 0, 0, 0, 0, 0, 0, 0, 0)
	if q.Parse(msg) != nil {
		return out
	}
	out[5] = 1
	out = append(out, q.Name()...)
	return binary.BigEndian.AppendUint32(out, uint32(q.Qtype)<<16|uint32(q.Qclass))
}

// dns5 is REFUSED.
const dns5 = 5

// limit applies the rate limit to out, the reply to a UDP query from c
// received at now, and returns what to send: out itself, out cut to a
// truncated empty reply (a slip), or nil.
func (g *Guard) limit(c client, now time.Time, out []byte) []byte {
	if g.rrl == nil || len(out) < dnswire.HeaderLen {
		return out
	}
	v := g.rrl.account(c, now)
	if v == rrlPass {
		return out
	}
	g.limited.Add(1)
	// Only answers (data, NODATA, NXDOMAIN) slip: a truncated error
	// invites a retry that would only be refused again. BIND drops
	// rate-limited errors too.
	if rc := out[3] & 0xF; v == rrlSlip && (rc == 0 || rc == 3) {
		if end, err := dnswire.QuestionEnd(out); err == nil {
			g.slipped.Add(1)
			return truncate(out, end)
		}
	}
	g.dropped.Add(1)
	return nil
}

// truncate cuts reply after its question, at end, and sets TC: what a
// client that cannot take the answer over UDP gets, so that it asks again
// over TCP, which is never rate limited.
func truncate(reply []byte, end int) []byte {
	reply[2] |= 0x02
	clear(reply[6:12])
	return reply[:end]
}

// rrlVerdict is what the rate limiter says of one reply.
type rrlVerdict uint8

const (
	rrlPass rrlVerdict = iota // send it
	rrlDrop                   // over the limit: send nothing
	rrlSlip                   // over the limit: send it truncated
)

// rrlSlots is the number of accounts: a fixed table, so a flood from
// spoofed sources costs no memory. Prefixes whose hashes meet in one slot
// take it over in turn (a tag tells them apart) while its account is not
// in debt, and share it while it is (see account).
const rrlSlots = 1 << 16

// The bits of one slot, one atomic word: tag | slip count | second |
// balance. The second (since the limiter started) wraps after 194 days
// and is compared within half of that; the balance is a 28-bit signed
// number of responses.
const (
	rrlBalBits = 28
	rrlSecBits = 24
	rrlSecMask = 1<<rrlSecBits - 1
	rrlCntMask = 0xF
	rrlMinBal  = -(1 << (rrlBalBits - 1)) + 1
)

// rateLimiter is response rate limiting after BIND 9's rate-limit
// (Vixie and Schryver's DNS RRL; BIND 9 Administrator Reference Manual,
// "Response Rate Limiting"):
//
//   - every client prefix (ipv4-prefix-length 24, ipv6-prefix-length 56
//     by default) has an account, credited with the limit every second,
//     up to the limit, and debited for every UDP response;
//   - while the account is negative, responses are dropped, except that
//     every slip-th one (2 by default) is sent truncated (TC set, no
//     records) so a legitimate client whose address an attacker forges
//     retries over TCP and is answered;
//   - the account cannot fall below -window × limit (window 15 s by
//     default): a client that kept flooding stays limited for up to the
//     window after it slows down, then recovers;
//   - TCP responses are never limited (a TCP client cannot be spoofed),
//     and exempt clients never are.
//
// Unlike BIND, whose responses-per-second account is per client prefix
// and response (name and type), there is one account per prefix, like
// BIND's all-per-second but with slip: the master's clients are the
// agents' proxies, each on its own address, and a per-prefix account
// bounds what any victim network can be sent whatever the names asked.
type rateLimiter struct {
	rate   int64 // responses per second per account
	floor  int64 // lowest balance
	slip   uint64
	v4mask uint32
	v6mask [2]uint64
	exempt netSet
	keys   [3]uint64 // hash keys, random per process
	base   time.Time // second 0
	slots  []atomic.Uint64
}

func newRateLimiter(c config.RRL) (*rateLimiter, error) {
	exempt, err := parseNets(c.Exempt)
	if err != nil {
		return nil, fmt.Errorf("master.rrl.exempt: %w", err)
	}
	r := &rateLimiter{
		rate:   int64(c.ResponsesPerSecond),
		floor:  max(-int64(c.WindowSeconds)*int64(c.ResponsesPerSecond), rrlMinBal),
		slip:   uint64(c.Slip),
		v4mask: mask32(c.IPv4PrefixLength),
		exempt: exempt,
		base:   time.Now(),
		slots:  make([]atomic.Uint64, rrlSlots),
	}
	r.v6mask[0], r.v6mask[1] = mask128(c.IPv6PrefixLength)
	var seed [24]byte
	_, _ = rand.Read(seed[:]) // never fails (crypto/rand)
	for i := range r.keys {
		r.keys[i] = binary.LittleEndian.Uint64(seed[8*i:])
	}
	return r, nil
}

// hash returns the hash of c's prefix.
func (r *rateLimiter) hash(c client) uint64 {
	hi, lo := c.hi&r.v6mask[0], c.lo&r.v6mask[1]
	if c.v4 {
		// The bit above the address keeps IPv4 accounts apart from IPv6.
		hi, lo = 0, 1<<32|uint64(c.ip4&r.v4mask)
	}
	h, l := bits.Mul64(hi^r.keys[0], lo^r.keys[1])
	h, l = bits.Mul64(h^l^r.keys[2], 0x9E3779B97F4A7C15)
	return h ^ l
}

// account debits one response to c's prefix at now and says whether it
// may go out.
func (r *rateLimiter) account(c client, now time.Time) rrlVerdict {
	if r.exempt.contains(c) {
		return rrlPass
	}
	h := r.hash(c)
	slot := &r.slots[h&(rrlSlots-1)]
	tag := h>>56 | 1 // never 0: an empty slot matches no prefix
	sec := uint64(0)
	if d := now.Sub(r.base); d > 0 {
		sec = uint64(d/time.Second) & rrlSecMask
	}
	for {
		old := slot.Load()
		t, s, bal, cnt := tag, sec, r.rate, uint64(0)
		if old != 0 {
			// The account in the slot, credited for the time since it
			// was last touched. It is this prefix's when the tags
			// match; another prefix's account is taken over only when
			// it is not in debt: a colliding prefix then shares the
			// debt rather than wiping it, so a flood can never earn
			// its victim fresh credit through a collision.
			obal := int64(old<<(64-rrlBalBits)) >> (64 - rrlBalBits)
			last := old >> rrlBalBits & rrlSecMask
			os := sec
			switch el := (sec - last) & rrlSecMask; {
			case el >= 1<<(rrlSecBits-1):
				// A query read just before the one that last
				// touched the account: no credit, and the account's
				// second stays.
				os = last
			case el > 0:
				obal = min(r.rate, obal+int64(el)*r.rate)
			}
			if old>>56 == tag || obal < 0 {
				t, s, bal, cnt = old>>56, os, obal, old>>(rrlBalBits+rrlSecBits)&rrlCntMask
			}
		}
		bal--
		v := rrlPass
		if bal < 0 {
			bal = max(bal, r.floor)
			v = rrlDrop
			if r.slip > 0 {
				if cnt++; cnt >= r.slip {
					cnt, v = 0, rrlSlip
				}
			}
		}
		next := t<<56 | cnt<<(rrlBalBits+rrlSecBits) | s<<rrlBalBits | uint64(bal)&(1<<rrlBalBits-1)
		if slot.CompareAndSwap(old, next) {
			return v
		}
	}
}
