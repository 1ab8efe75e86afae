package duplicati

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

func TestParseTimeSpan(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"00:00:00", 0, true},
		{"00:03:05", 3*time.Minute + 5*time.Second, true},
		{"1.02:00:00", 26 * time.Hour, true},
		{"00:00:01.5000000", 1500 * time.Millisecond, true},
		{"-00:00:10", -10 * time.Second, true},
		{"", 0, false}, {"3 min", 0, false}, {"00:xx:00", 0, false},
	} {
		got, err := parseTimeSpan(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestProgressREST: while the task runs, the REST route passes the simulator's
// progressstate of our task to Options.Progress, with a rising fraction and a time left.
func TestProgressREST(t *testing.T) {
	old := progressStatusEvery
	progressStatusEvery = 200 * time.Millisecond
	t.Cleanup(func() { progressStatusEvery = old })
	e := newEnv(t, []duplicatisim.Backup{{ID: "1", Name: "job", Duration: 3 * time.Second}}, duplicatisim.Quirks{}, envOpts{})
	var mu sync.Mutex
	var got []Progress
	b := e.backend(t, "api", func(o *Options) {
		o.Progress = func(p Progress) { mu.Lock(); got = append(got, p); mu.Unlock() }
	})
	out, err := b.Run(context.Background(), "job")
	if err != nil || out.Result != ResultSuccess {
		t.Fatalf("Run: %+v, %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 3 {
		t.Fatalf("Progress called %d times in a 3s job, want at least 3: %+v", len(got), got)
	}
	last := got[len(got)-1]
	if last.TaskID != out.TaskID || last.Fraction <= got[0].Fraction || last.TotalBytes == 0 || got[0].Remaining <= 0 {
		t.Fatalf("progress does not move or lacks numbers: first %+v, last %+v (task %d)", got[0], last, out.TaskID)
	}
}
