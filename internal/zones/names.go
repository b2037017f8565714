package zones

import (
	"strings"

	"github.com/miekg/dns"
)

// canonical is dns.CanonicalName with a fast path for names that already
// are: generated zones add a million of them.
func canonical(name string) string {
	if n := len(name); n > 0 && name[n-1] == '.' {
		i := 0
		for ; i < n; i++ {
			if c := name[i]; c >= 'A' && c <= 'Z' {
				break
			}
		}
		if i == n {
			return name
		}
	}
	return dns.CanonicalName(name)
}

// parent returns the name with its first label removed, or "" at the root.
func parent(name string) string {
	if strings.IndexByte(name, '\\') < 0 {
		// No escaped dots: the first '.' ends the first label.
		if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
			return name[i+1:]
		}
		return ""
	}
	off, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[off:]
}
