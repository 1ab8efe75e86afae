package livestatus

import (
	"sync"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicati"
)

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{1024*1024 - 1, "1.0 MiB"}, {1288490189, "1.2 GiB"}, {3 << 30, "3.0 GiB"}, {5 << 40, "5.0 TiB"},
	} {
		if got := Bytes(c.in); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234, "1,234"}, {123456, "123,456"}, {1234567, "1,234,567"}, {-1234, "-1,234"},
	} {
		if got := Thousands(c.in); got != c.want {
			t.Errorf("Thousands(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{-time.Second, "0 s"}, {0, "0 s"}, {40 * time.Second, "40 s"}, {time.Minute, "1 min"}, {150 * time.Second, "3 min"},
		{59*time.Minute + 50*time.Second, "1 h"}, {2*time.Hour + 5*time.Minute, "2 h 5 min"},
	} {
		if got := Duration(c.in); got != c.want {
			t.Errorf("Duration(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTexts(t *testing.T) {
	full := &duplicati.Progress{Fraction: 0.425, ProcessedBytes: 1288490189, TotalBytes: 3 << 30, ProcessedFiles: 1234, Remaining: 3 * time.Minute}
	for _, c := range []struct {
		name, got, want string
	}{
		{"rest", Job(1, 2, "nextcloud-db", full, time.Minute), `job 1 of 2 "nextcloud-db": 42 %, 1.2 GiB of 3.0 GiB, 1,234 files, about 3 min left`},
		{"counting", Job(1, 1, "x", &duplicati.Progress{Fraction: 0.1, StillCounting: true, Remaining: time.Hour}, 0), `job 1 of 1 "x": 10 %`},
		{"exec", Job(2, 2, "x", nil, 2*time.Minute), `job 2 of 2 "x": running for 2 min`},
		{"slot", WaitingSlot("S2"), "waiting for the backup slot (held by S2)"},
		{"idle", WaitingIdle(duplicati.ServerState{Active: &duplicati.Task{ID: 7, BackupID: "3"}}), "waiting for Duplicati to be idle (task 7 of backup 3 running)"},
		{"paused", WaitingIdle(duplicati.ServerState{Paused: true, Queued: []duplicati.Task{{ID: 2}}}), "waiting for Duplicati to be idle (1 task(s) queued, Duplicati is paused)"},
		{"stopping", Stopping, "stopping the stack"},
		{"restoring", Restoring, "restoring the stack"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
}

type recorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *recorder) send(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, s)
	return nil
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sent...)
}

// TestNotifierThrottles: the first text goes out at once, the texts within the interval
// collapse into the last one, which goes out when the interval ends.
func TestNotifierThrottles(t *testing.T) {
	r := &recorder{}
	n := NewWith(r.send, 200*time.Millisecond)
	n.Set("a")
	n.Set("b")
	n.Set("c")
	if got := r.get(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("within the interval: sent %q, want [a]", got)
	}
	time.Sleep(400 * time.Millisecond)
	if got := r.get(); len(got) != 2 || got[1] != "c" {
		t.Fatalf("after the interval: sent %q, want [a c]", got)
	}
	n.Set("c") // unchanged: nothing to send
	n.Set("d")
	n.Flush()
	if got := r.get(); len(got) != 3 || got[2] != "d" {
		t.Fatalf("after Flush: sent %q, want [a c d]", got)
	}
}

func TestNilNotifier(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New()
	if n != nil {
		t.Fatal("New without NOTIFY_SOCKET is not nil")
	}
	n.Set("x") // must not panic
	n.Flush()
}
