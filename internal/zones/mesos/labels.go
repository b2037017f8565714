package mesos

import (
	"crypto/sha1"
	"encoding/base32"
	"strings"
	"unicode/utf8"
)

// LabelFunc turns an arbitrary name into one DNS label.
type LabelFunc func(string) string

// maxLabel is the longest label DNS can carry (RFC 1035 section 2.3.4).
const maxLabel = 63

// RFC1123 makes name an RFC 1123 host name label the way Mesos-DNS does:
// lower-cased; letters and digits kept; '-', '.' and '_' turned into '-';
// everything else dropped; leading '-' trimmed; cut to 63 characters with
// trailing '-' trimmed.
func RFC1123(name string) string { return label(name, maxLabel, "-", "-") }

// RFC952 is RFC1123 with the stricter RFC 952 rules: at most 24
// characters and no leading digit.
func RFC952(name string) string { return label(name, 24, "-0123456789", "-") }

// label maps name to the label alphabet, trims the left cutset, cuts it to
// maxlen and trims the right cutset. Like Mesos-DNS, when trimming the cut
// end shortened the label it is refilled from what followed the cut (minus
// its leading right-cutset characters), so "a-" + "-b" style names keep as
// many characters as fit.
func label(name string, maxlen int, left, right string) string {
	mapped := strings.Map(labelRune, name)
	trim := strings.TrimLeft(mapped, left)
	size := min(len(trim), maxlen)
	head := strings.TrimRight(trim[:size], right)
	if len(head) == size {
		return head
	}
	tail := strings.TrimLeft(trim[size:], right)
	if len(tail) > 0 {
		return head + tail[:min(len(tail), size-len(head))]
	}
	return head
}

// labelRune maps one character to the label alphabet, or drops it (-1).
func labelRune(r rune) rune {
	switch {
	case r >= 'A' && r <= 'Z':
		return r + ('a' - 'A')
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		return r
	case r == '-' || r == '.' || r == '_':
		return '-'
	}
	return -1
}

// domainFrag sanitizes a dotted name (a framework name) label by label:
// each '.'-separated part goes through spec, empty results are dropped, and
// the rest are joined with '.' again ("Metronome.Jobs" → "metronome.jobs").
func domainFrag(name string, spec LabelFunc) string {
	if !strings.Contains(name, ".") {
		return spec(name)
	}
	var b strings.Builder
	for part := range strings.SplitSeq(name, ".") {
		if l := spec(part); l != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(l)
		}
	}
	return b.String()
}

// zbase32 is the human-oriented base-32 alphabet of Mesos-DNS's task hashes.
var zbase32 = base32.NewEncoding("ybndrfg8ejkmcpqxot1uwisza345h769").WithPadding(base32.NoPadding)

// taskHash is the 5-character hash in a task's canonical name: the first
// characters of the z-base-32 encoding of SHA-1(task ID).
func taskHash(id string) string { return taskHashBytes([]byte(id)) }

// taskHashBytes is taskHash for an ID given as bytes.
func taskHashBytes(id []byte) string {
	sum := sha1.Sum(id)
	var out [8]byte
	// 5 base-32 characters need 25 bits: the first 4 bytes are enough.
	zbase32.Encode(out[:], sum[:4])
	return string(out[:5])
}

// agentTail is the last '-'-separated field of an agent ID, lower-cased
// ("...-S12" → "s12").
func agentTail(id string) string {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		id = id[i+1:]
	}
	return strings.ToLower(id)
}

// rawNameOK reports whether a DiscoveryInfo name can be used unsanitized
// (Mesos-DNS publishes it as given, next to the sanitized form): only
// letters, digits, '-', '_' and '.' with no empty label. Anything else
// cannot be written as a host name, so only the sanitized form is used.
func rawNameOK(name string) bool {
	if name == "" || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	for l := range strings.SplitSeq(name, ".") {
		if len(l) > maxLabel {
			return false
		}
	}
	return true
}

// fitLast shortens the last label of the dotted name so that, with suffix
// appended to it, the label fits in 63 octets: the cut part is the task's,
// so hash and agent suffixes stay intact and names stay unique. Trailing
// '-' left at the cut are trimmed, as the label rules do. When the suffix
// alone is too long for a label (an agent ID with a very long last
// field) no such name exists: ok is false.
func fitLast(name, suffix string) (fit string, ok bool) {
	start := strings.LastIndexByte(name, '.') + 1
	budget := maxLabel - len(suffix)
	if budget < 0 {
		return "", false
	}
	if len(name)-start <= budget {
		return name + suffix, true
	}
	return strings.TrimRight(name[:start+budget], "-") + suffix, true
}

// appendFitLast appends fitLast(name, "-"+hash+"-"+agentTail(slaveID))
// to dst without building the suffix. When that name cannot exist it
// returns dst unchanged and false.
func appendFitLast(dst []byte, name, hash, slaveID string) ([]byte, bool) {
	tail := slaveID
	if i := strings.LastIndexByte(slaveID, '-'); i >= 0 {
		tail = slaveID[i+1:]
	}
	for i := 0; i < len(tail); i++ {
		if tail[i] >= utf8.RuneSelf {
			// Not ASCII: lower-case it as agentTail does.
			tail = strings.ToLower(tail)
			break
		}
	}
	start := strings.LastIndexByte(name, '.') + 1
	budget := maxLabel - (2 + len(hash) + len(tail))
	switch {
	case budget < 0:
		return dst, false
	case len(name)-start <= budget:
		dst = append(dst, name...)
	default:
		dst = append(dst, strings.TrimRight(name[:start+budget], "-")...)
	}
	dst = append(append(append(dst, '-'), hash...), '-')
	for i := 0; i < len(tail); i++ {
		c := tail[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// fitFirst returns "_" + name with the first label of name shortened so
// that, with the underscore, it fits in 63 octets.
func fitFirst(name string) string { return string(appendFitFirst(nil, name)) }

// appendFitFirst appends fitFirst(name) to dst.
func appendFitFirst(dst []byte, name string) []byte {
	dst = append(dst, '_')
	end := strings.IndexByte(name, '.')
	if end < 0 {
		end = len(name)
	}
	if end+1 <= maxLabel {
		return append(dst, name...)
	}
	return append(append(dst, strings.TrimRight(name[:maxLabel-1], "-")...), name[end:]...)
}
