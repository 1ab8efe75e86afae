package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// overviewNow is the fixed "now" of the overview's golden files.
var overviewNow = time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time {
	t := overviewNow.Add(d)
	return &t
}

// overviewRows is one row of every kind the overview draws.
func overviewRows() []stackStatus {
	return []stackStatus{
		{Stack: "cryptpad", State: stateIdle, LastResult: "success", LastRun: at(-10*time.Hour - 29*time.Minute),
			Duration: 252, Downtime: 31.4, NextRunAt: at(13*time.Hour + 30*time.Minute)},
		{Stack: "immich", State: stateWaiting, StatusText: "waiting for the backup slot (held by nextcloud)",
			LastResult: "success", LastRun: at(-26 * time.Hour), Duration: 4000, Downtime: 3700, NextRunAt: at(50 * time.Second)},
		{Stack: "nextcloud", State: stateRunning, Held: true,
			StatusText: `job 1 of 2 "nextcloud": 42 %, 1.2 GiB of 2.9 GiB, about 3 min left`,
			LastResult: "failed", LastRun: at(-3 * 24 * time.Hour),
			Reason: `job "nextcloud" (backup ID 1): Error: disk full`, Duration: 9.25, Downtime: 7, NextRunAt: at(20 * time.Minute)},
		{Stack: "paperless-ngx-with-a-very-long-name", State: stateLeftDown, LeftDown: true,
			LeftDownSince: at(-2 * time.Hour), LastResult: "interrupted", LastRun: at(-2 * time.Hour)},
		{Stack: "vaultwarden", State: stateIdle, NextRun: "tomorrow"},
		{Stack: "wiki", State: stateHeld, Held: true, LastResult: "success, result unknown", LastRun: at(-40 * time.Second),
			Unknown: []string{"wiki-db"}, Duration: 0.4},
		{Stack: "gone", State: stateLeftDown, LeftDown: true, NoStackFile: true},
	}
}

// TestOverviewGolden draws the table at 80 and 100 columns, unbounded (not
// a terminal), with and without colour.
func TestOverviewGolden(t *testing.T) {
	cases := []struct {
		name  string
		width int
		color bool
	}{
		{"list-80.txt", 80, false},
		{"list-100.txt", 100, false},
		{"list-100-color.txt", 100, true},
		{"list-80-color.txt", 80, true},
		{"list-unbounded.txt", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := drawTable(&b, overviewRows(), tableOpts{Width: c.width, Color: c.color, Now: overviewNow}); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
			if c.color != strings.Contains(b.String(), "\x1b[") {
				t.Errorf("colour %v, but the output has escapes: %v", c.color, !c.color)
			}
		})
	}
}

// TestOverviewFits: at every width the lines fit and nothing wraps; the
// columns that must stay do stay down to 70 columns.
func TestOverviewFits(t *testing.T) {
	for width := 30; width <= 200; width++ {
		var b bytes.Buffer
		if err := drawTable(&b, overviewRows(), tableOpts{Width: width, Color: true, Now: overviewNow}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(stripSGR(b.String()), "\n"), "\n")
		if len(lines) != len(overviewRows())+1 {
			t.Fatalf("width %d: %d lines, want %d", width, len(lines), len(overviewRows())+1)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > width {
				t.Errorf("width %d: line of %d columns: %q", width, n, l)
			}
		}
		if width >= 70 {
			for _, head := range []string{"STACK", "STATE", "LAST RUN", "RESULT", "DETAIL"} {
				if !strings.Contains(lines[0], head) {
					t.Errorf("width %d: header %q lacks %s", width, lines[0], head)
				}
			}
		}
	}
}

// stripSGR removes the colour escapes drawTable writes.
func stripSGR(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return b.String() + s
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], 'm')
		if j < 0 {
			return b.String()
		}
		s = s[i+j+1:]
	}
}

func TestRelativeTime(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s ago"},
		{40 * time.Second, "in 40 s"},
		{-40 * time.Second, "40 s ago"},
		{-89 * time.Second, "89 s ago"},
		{-90 * time.Second, "2 min ago"},
		{12*time.Minute + 29*time.Second, "in 12 min"},
		{89 * time.Minute, "in 89 min"},
		{90 * time.Minute, "in 2 h"},
		{-3*time.Hour - 29*time.Minute, "3 h ago"},
		{35 * time.Hour, "in 35 h"},
		{-36 * time.Hour, "2 d ago"},
		{10 * 24 * time.Hour, "in 10 d"},
	}
	for _, c := range cases {
		if got := relativeTime(overviewNow.Add(c.d), overviewNow); got != c.want {
			t.Errorf("relativeTime(now%+v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestCellDuration(t *testing.T) {
	cases := []struct {
		s    float64
		ran  bool
		want string
	}{
		{0, false, "-"},
		{0, true, "0.0s"},
		{9.94, true, "9.9s"},
		{10, true, "10s"},
		{59.4, true, "59s"},
		{252, true, "4m12s"},
		{3599, true, "59m59s"},
		{3600, true, "1h00m"},
		{4000, true, "1h07m"},
	}
	for _, c := range cases {
		if got := cellDuration(c.s, c.ran); got != c.want {
			t.Errorf("cellDuration(%v, %v) = %q, want %q", c.s, c.ran, got, c.want)
		}
	}
}

func TestLiveState(t *testing.T) {
	for text, want := range map[string]string{
		"waiting for the backup slot (held by x)":   stateWaiting,
		"Waiting for Duplicati to be idle (task 7)": stateWaiting,
		"stopping the stack":                        stateRunning,
		`job 1 of 2 "x": 42 %, 1 GiB of 2 GiB`:      stateRunning,
		"restoring the stack":                       stateRunning,
		"":                                          stateRunning,
		"the stack is down; waiting is not the first word": stateRunning,
	} {
		if got := liveState(text); got != want {
			t.Errorf("liveState(%q) = %s, want %s", text, got, want)
		}
	}
}

func TestUseColor(t *testing.T) {
	tty, pipe := stdoutInfo{isTTY: true, cols: 100}, stdoutInfo{}
	cases := []struct {
		mode    string
		out     stdoutInfo
		noColor string
		term    string
		want    bool
	}{
		{"auto", tty, "", "xterm", true},
		{"auto", pipe, "", "xterm", false},
		{"auto", tty, "1", "xterm", false},
		{"auto", tty, "0", "xterm", false}, // any non-empty value counts (no-color.org)
		{"auto", tty, "", "dumb", false},
		{"always", pipe, "1", "dumb", true}, // the flag beats NO_COLOR
		{"never", tty, "", "xterm", false},
	}
	for _, c := range cases {
		if got := useColor(c.mode, c.out, c.noColor, c.term); got != c.want {
			t.Errorf("useColor(%s, tty=%v, NO_COLOR=%q, TERM=%s) = %v, want %v", c.mode, c.out.isTTY, c.noColor, c.term, got, c.want)
		}
	}
}

func TestTableWidth(t *testing.T) {
	cases := []struct {
		out     stdoutInfo
		columns string
		full    bool
		want    int
	}{
		{stdoutInfo{isTTY: true, cols: 132}, "", false, 132},
		{stdoutInfo{isTTY: true, cols: 132}, "90", false, 90},
		{stdoutInfo{isTTY: true}, "", false, 80},
		{stdoutInfo{}, "", false, 0},
		{stdoutInfo{}, "100", false, 100},
		{stdoutInfo{}, "junk", false, 0},
		{stdoutInfo{isTTY: true, cols: 132}, "90", true, 0},
	}
	for _, c := range cases {
		if got := tableWidth(c.out, c.columns, c.full); got != c.want {
			t.Errorf("tableWidth(%+v, COLUMNS=%q, full=%v) = %d, want %d", c.out, c.columns, c.full, got, c.want)
		}
	}
}

func TestParseSystemdTime(t *testing.T) {
	loc := time.Local
	want := time.Date(2026, 12, 3, 3, 30, 0, 0, loc)
	local := want.Format("Mon 2006-01-02 15:04:05 MST")
	cases := []struct {
		in string
		ok bool
	}{
		{local, true},
		{"", false},
		{"n/a", false},
		{"tomorrow", false},
	}
	for _, c := range cases {
		got, ok := parseSystemdTime(c.in)
		if ok != c.ok || (ok && !got.Equal(want)) {
			t.Errorf("parseSystemdTime(%q) = %v, %v; want %v, %v", c.in, got, ok, fmt.Sprint(want), c.ok)
		}
	}
}

// TestOverviewKeepsColumnsWithoutDetail: with nothing to say in DETAIL, no
// column is dropped for its sake.
func TestOverviewKeepsColumnsWithoutDetail(t *testing.T) {
	rows := []stackStatus{{Stack: "cryptpad", State: stateIdle, LastResult: "success", LastRun: at(-time.Hour),
		Duration: 252, Downtime: 31, NextRunAt: at(time.Hour)}}
	var b bytes.Buffer
	if err := drawTable(&b, rows, tableOpts{Width: 80, Now: overviewNow}); err != nil {
		t.Fatal(err)
	}
	for _, head := range []string{"TOOK", "DOWN", "NEXT RUN", "DETAIL"} {
		if !strings.Contains(b.String(), head) {
			t.Errorf("80 columns, short rows: %s dropped:\n%s", head, b.String())
		}
	}
}
