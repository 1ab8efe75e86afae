package systemd

import (
	"testing"
	"time"
)

func TestParseTimespan(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
		bad  bool
	}{
		{"1min 30s", 90 * time.Second, true, false},
		{"1h", time.Hour, true, false},
		{"2h 5min 1s 500ms", 2*time.Hour + 5*time.Minute + time.Second + 500*time.Millisecond, true, false},
		{"90", 90 * time.Second, true, false},
		{"1.5s", 1500 * time.Millisecond, true, false},
		{"100us", 100 * time.Microsecond, true, false},
		{"infinity", 0, false, false},
		{"", 0, false, true},
		{"5 fortnights", 0, false, true},
		{"min", 0, false, true},
	} {
		d, ok, err := ParseTimespan(c.in)
		if (err != nil) != c.bad || d != c.want || ok != c.ok {
			t.Errorf("ParseTimespan(%q) = %v, %v, %v; want %v, %v, error %v", c.in, d, ok, err, c.want, c.ok, c.bad)
		}
	}
}
