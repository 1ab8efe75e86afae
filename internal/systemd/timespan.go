package systemd

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timespanUnits are the units systemd's format_timespan() writes and parse_sec() reads.
var timespanUnits = map[string]time.Duration{
	"us": time.Microsecond, "usec": time.Microsecond, "µs": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond,
	"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
	"M": 2629800 * time.Second, "month": 2629800 * time.Second, "months": 2629800 * time.Second,
	"y": 31557600 * time.Second, "year": 31557600 * time.Second, "years": 31557600 * time.Second,
}

// ParseTimespan reads a time span as `systemctl show` prints it ("1min 30s", "1h",
// "500ms", "infinity"; a bare number is seconds). ok is false for infinity.
func ParseTimespan(s string) (d time.Duration, ok bool, err error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, false, nil
	}
	if s == "" {
		return 0, false, fmt.Errorf("empty time span")
	}
	rest := s
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, false, fmt.Errorf("time span %q: want a number at %q", s, rest)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, false, fmt.Errorf("time span %q: %w", s, err)
		}
		rest = strings.TrimLeft(rest[i:], " ")
		j := 0
		for j < len(rest) && rest[j] != ' ' && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		unit := time.Second
		if j > 0 {
			u, known := timespanUnits[rest[:j]]
			if !known {
				return 0, false, fmt.Errorf("time span %q: unknown unit %q", s, rest[:j])
			}
			unit = u
		}
		d += time.Duration(n * float64(unit))
		rest = rest[j:]
	}
	return d, true, nil
}
