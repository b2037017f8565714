package mesos

import (
	"encoding/json"
	"strconv"
	"strings"
)

// parsePorts reads a Mesos ranges resource, "[31000-31001, 31005-31005]".
// It is lenient: malformed ranges are skipped, ports are clamped to
// 1-65535.
func parsePorts(raw json.RawMessage) []PortRange {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return parsePortRanges(s)
}

// parsePortRanges parses the text of a ranges resource.
func parsePortRanges(s string) []PortRange {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	var out []PortRange
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			hi = lo
		}
		l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 64)
		if err1 != nil || err2 != nil || l > h || h == 0 || l > 65535 {
			continue
		}
		out = append(out, PortRange{Lo: uint16(max(l, 1)), Hi: uint16(min(h, 65535))})
	}
	return out
}
