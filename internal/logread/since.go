package logread

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// SinceFormats says which --since values ParseSince understands (the
// log_dir fallback applies only those; journalctl takes more).
const SinceFormats = `"now", "today", "yesterday", "tomorrow", "@<unix seconds>", ` +
	`"YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]", "YYYY-MM-DDTHH:MM:SS" with or without a zone (RFC 3339), ` +
	`"HH:MM[:SS]" (today), and relative times such as "-1h", "-2d", "30min ago", "1h 30min ago"`

// ParseSince reads a journalctl --since value, in local time, for the
// formats of SinceFormats (systemd.time(7) has more: a weekday, a time
// zone name ...).
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	day := func(offset int) time.Time {
		y, m, d := now.Date()
		return time.Date(y, m, d+offset, 0, 0, 0, 0, now.Location())
	}
	switch s {
	case "now":
		return now, nil
	case "today":
		return day(0), nil
	case "yesterday":
		return day(-1), nil
	case "tomorrow":
		return day(1), nil
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		f, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("--since %q: %w", s, err)
		}
		return time.Unix(0, int64(f*1e9)).In(now.Location()), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			h, m, sec := t.Clock()
			return day(0).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second), nil
		}
	}
	if d, ok := relative(s); ok {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: not one of the forms the log_dir files can be filtered by (%s)", s, SinceFormats)
}

// relative reads "-1h", "+30min", "1h 30min ago" as an offset from now.
func relative(s string) (time.Duration, bool) {
	sign := time.Duration(0)
	switch {
	case strings.HasPrefix(s, "-"):
		sign, s = -1, s[1:]
	case strings.HasPrefix(s, "+"):
		sign, s = 1, s[1:]
	case strings.HasSuffix(s, " ago"):
		sign, s = -1, strings.TrimSuffix(s, " ago")
	default:
		return 0, false
	}
	// A time span as systemd reads it (systemd.time(7)): one home for its units.
	d, ok, err := systemd.ParseTimespan(s)
	if err != nil || !ok {
		return 0, false
	}
	return sign * d, true
}
