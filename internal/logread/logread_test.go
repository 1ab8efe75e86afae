package logread

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	now := time.Date(2026, 3, 10, 14, 30, 15, 0, loc)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"now", now},
		{"today", time.Date(2026, 3, 10, 0, 0, 0, 0, loc)},
		{"yesterday", time.Date(2026, 3, 9, 0, 0, 0, 0, loc)},
		{"tomorrow", time.Date(2026, 3, 11, 0, 0, 0, 0, loc)},
		{"2026-01-31", time.Date(2026, 1, 31, 0, 0, 0, 0, loc)},
		{"2026-01-31 03:00", time.Date(2026, 1, 31, 3, 0, 0, 0, loc)},
		{"2026-01-31 03:00:07", time.Date(2026, 1, 31, 3, 0, 7, 0, loc)},
		{"2026-01-31T03:00:07", time.Date(2026, 1, 31, 3, 0, 7, 0, loc)},
		{"2026-01-31T03:00:07Z", time.Date(2026, 1, 31, 3, 0, 7, 0, time.UTC)},
		{"03:04", time.Date(2026, 3, 10, 3, 4, 0, 0, loc)},
		{"03:04:05", time.Date(2026, 3, 10, 3, 4, 5, 0, loc)},
		{"-1h", now.Add(-time.Hour)},
		{"-2d", now.Add(-48 * time.Hour)},
		{"30min ago", now.Add(-30 * time.Minute)},
		{"1h 30min ago", now.Add(-90 * time.Minute)},
		{"+5s", now.Add(5 * time.Second)},
		{"@1700000000", time.Unix(1700000000, 0)},
		{"@1700000000.5", time.Unix(1700000000, 5e8)},
	} {
		got, err := ParseSince(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "last tuesday", "-1fortnight", "ago", "2026-13-01", "-h"} {
		if got, err := ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) = %v, want an error", bad, got)
		}
	}
}

func TestArgs(t *testing.T) {
	got := Args(Query{Units: []string{"backup@a.service", "backup-hold@a.service"}, Since: "-1h", Lines: 1, Follow: true})
	want := []string{"--user", "--no-pager", "--quiet", "--output=cat", "--unit=backup@a.service", "--unit=backup-hold@a.service", "--since=-1h", "--lines=1", "--follow"}
	if !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
}

func stamp(t time.Time, msg string) string { return t.Format(time.RFC3339) + " " + msg }

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	d1 := time.Date(2026, 3, 9, 23, 0, 0, 0, time.Local)
	d2 := time.Date(2026, 3, 10, 1, 0, 0, 0, time.Local)
	write := func(name string, lines ...string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("backup-a-2026-03-09.log", stamp(d1, "one"), stamp(d1.Add(time.Minute), "two"))
	write("backup-a-2026-03-10.log", stamp(d2, "three"), stamp(d2.Add(time.Minute), "four"))
	write("backup-a-b-2026-03-10.log", stamp(d2, "of stack a-b"))
	write("backup-a-latest.log", stamp(d2, "not a day"))
	f := Files{Dir: dir, Stack: "a"}
	for _, c := range []struct {
		name string
		q    FileQuery
		want []string
	}{
		{"all, oldest first, only the stack's own files", FileQuery{}, []string{"one", "two", "three", "four"}},
		{"since a time in the first file", FileQuery{Since: d1.Add(30 * time.Second)}, []string{"two", "three", "four"}},
		{"since skips earlier days", FileQuery{Since: d2}, []string{"three", "four"}},
		{"last", FileQuery{Last: 3}, []string{"two", "three", "four"}},
	} {
		var got []string
		if err := f.Lines(context.Background(), c.q, func(l string) { got = append(got, StripStamp(l)) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if err := (Files{Dir: filepath.Join(dir, "missing"), Stack: "a"}).Lines(context.Background(), FileQuery{}, func(string) { t.Error("a line") }); err != nil {
		t.Errorf("missing log_dir: %v, want no lines and no error", err)
	}
}

// Follow shows whole lines as they are appended, and the next day's file.
func TestFilesFollow(t *testing.T) {
	dir := t.TempDir()
	p1 := filepath.Join(dir, "backup-a-2026-03-09.log")
	if err := os.WriteFile(p1, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Files{Dir: dir, Stack: "a", Poll: 5 * time.Millisecond}.Lines(ctx, FileQuery{Follow: true}, func(l string) { got <- l })
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l := <-got:
			if l != want {
				t.Fatalf("line %q, want %q", l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line %q", want)
		}
	}
	expect("old")
	fh, err := os.OpenFile(p1, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("half")
	time.Sleep(30 * time.Millisecond)
	fh.WriteString(" and whole\n")
	fh.Close()
	expect("half and whole")
	if err := os.WriteFile(filepath.Join(dir, "backup-a-2026-03-10.log"), []byte("next day\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect("next day")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Lines after cancel: %v", err)
	}
}
