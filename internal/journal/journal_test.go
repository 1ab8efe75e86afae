package journal

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPrioritiesAndFormat(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(New(&buf, Options{Priorities: true, Prefix: "gate a: "}))
	l.Debug("not shown")
	l.Info("took the slot")
	l.Warn("Duplicati did not answer", "try", 2)
	l.Error("restore failed", "unit", "a-stack.service", "why", "exit status 1")
	l.With("stack", "a").WithGroup("job").Info("line one\nline two", "name", "")
	want := "<6>gate a: took the slot\n" +
		"<4>gate a: Duplicati did not answer try=2\n" +
		"<3>gate a: restore failed unit=a-stack.service why=\"exit status 1\"\n" +
		"<6>gate a: line one / line two stack=a job.name=\"\"\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLevelAndTime(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(New(&buf, Options{Time: true, Level: slog.LevelDebug}))
	before := time.Now().Truncate(time.Second)
	l.Debug("shown")
	line := buf.String()
	ts, rest, _ := strings.Cut(line, " ")
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil || at.Before(before) || rest != "shown\n" {
		t.Errorf("line %q: time %v (%v), rest %q", line, at, err, rest)
	}
	if strings.HasPrefix(line, "<") {
		t.Errorf("priority prefix without Priorities: %q", line)
	}
}

func TestPriority(t *testing.T) {
	for l, want := range map[slog.Level]int{slog.LevelError + 4: 3, slog.LevelError: 3, slog.LevelWarn: 4,
		slog.LevelInfo: 6, slog.LevelInfo + 1: 6, slog.LevelDebug: 7} {
		if got := Priority(l); got != want {
			t.Errorf("Priority(%v) = %d, want %d", l, got, want)
		}
	}
}

func TestToJournal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !ToJournal(f) {
		t.Error("the stream named by JOURNAL_STREAM is not the journal")
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1))
	if ToJournal(f) {
		t.Error("another inode counts as the journal")
	}
	os.Unsetenv("JOURNAL_STREAM")
	if ToJournal(f) {
		t.Error("no JOURNAL_STREAM counts as the journal")
	}
}
