package foreground

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/logread"
	"github.com/backup-stack/backup-stack/internal/manager/managertest"
)

// fakeJournal emits its lines (for every query), then, when following,
// waits for the end of the context.
type fakeJournal struct {
	lines []string
	mu    sync.Mutex
	qs    []logread.Query
}

func (j *fakeJournal) Lines(ctx context.Context, q logread.Query, emit func(string)) error {
	j.mu.Lock()
	j.qs = append(j.qs, q)
	j.mu.Unlock()
	for _, l := range j.lines {
		emit(l)
	}
	if q.Follow {
		<-ctx.Done()
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for the log goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run is what a scripted backup of one stack does at its nth poll (the
// show before the start is poll 0).
type run struct {
	status map[int]string // StatusText at poll n
	endAt  int            // the run ends at this poll
	result string
	code   int
	signal map[int]os.Signal // a signal arrives at poll n
}

type followCase struct {
	name      string
	runs      map[string]run
	stacks    []string
	ask       func(ctx context.Context, q string) (bool, error) // nil: no terminal
	follow    bool
	journal   []string
	wantCode  int
	wantCalls []string // Changes() of the fake
	wantOut   []string // substrings of stdout
	notOut    []string
	wantErr   []string // substrings of stderr
	wantOnce  []string // substrings of stdout, exactly once
}

func yes(context.Context, string) (bool, error) { return true, nil }
func no(context.Context, string) (bool, error)  { return false, nil }

func TestFollower(t *testing.T) {
	ok := run{endAt: 3, result: "success"}
	cases := []followCase{{
		name: "two stacks succeed in order, one line each", stacks: []string{"b", "a"},
		runs:      map[string]run{"a": ok, "b": ok},
		wantCalls: []string{"start --no-block backup@b.service", "start --no-block backup@a.service"},
		wantOut:   []string{"b: backup succeeded", "a: backup succeeded"},
	}, {
		name: "the first failure's exit status is the exit code; the next stack still runs", stacks: []string{"a", "b", "c"},
		runs:      map[string]run{"a": ok, "b": {endAt: 2, result: "exit-code", code: 5}, "c": {endAt: 2, result: "exit-code", code: 9}},
		wantCode:  5,
		wantCalls: []string{"start --no-block backup@a.service", "start --no-block backup@b.service", "start --no-block backup@c.service"},
		wantOut:   []string{"b: backup failed", "exit status 5 (a job ended with Error)", "c: backup failed"},
	}, {
		name: "a failure without an exit status is 1", stacks: []string{"a"},
		runs:     map[string]run{"a": {endAt: 2, result: "timeout"}},
		wantCode: 1, wantOut: []string{"a: backup failed", "Result=timeout"},
		wantCalls: []string{"start --no-block backup@a.service"},
	}, {
		name: "follow prints the journal and changed StatusText", stacks: []string{"a"}, follow: true,
		runs:      map[string]run{"a": {endAt: 4, result: "success", status: map[int]string{1: "gate: waiting", 2: "gate: waiting", 3: "job 1/1"}}},
		journal:   []string{"gate a: took the backup slot"},
		wantCalls: []string{"start --no-block backup@a.service"},
		wantOut:   []string{"gate a: took the backup slot", "-- a: job 1/1\n", "a: backup succeeded"},
		wantOnce:  []string{"-- a: gate: waiting\n"},
		wantErr:   []string{"(log lines of a from the journal)"},
	}, {
		name: "without --follow no log lines and no status", stacks: []string{"a"},
		runs:      map[string]run{"a": {endAt: 3, result: "success", status: map[int]string{1: "job 1/1"}}},
		journal:   []string{"gate a: took the backup slot"},
		wantCalls: []string{"start --no-block backup@a.service"},
		notOut:    []string{"took the backup slot", "job 1/1"},
	}, {
		name: "Ctrl-C on a terminal, answered y: the unit is stopped, the rest not started", stacks: []string{"a", "b"}, follow: true,
		runs:      map[string]run{"a": {endAt: 1000, signal: map[int]os.Signal{2: syscall.SIGINT}}, "b": ok},
		ask:       yes,
		wantCode:  10,
		wantCalls: []string{"start --no-block backup@a.service", "stop backup@a.service"},
		wantOut:   []string{"a: backup stopped", "exit status 10"},
		wantErr:   []string{"stopping backup@a.service", "not started: b"},
	}, {
		name: "Ctrl-C on a terminal, answered n: the backup goes on and is followed to its end", stacks: []string{"a"},
		runs:      map[string]run{"a": {endAt: 4, result: "success", signal: map[int]os.Signal{2: syscall.SIGINT}}},
		ask:       no,
		wantCalls: []string{"start --no-block backup@a.service"},
		wantOut:   []string{"a: backup succeeded"},
		wantErr:   []string{"the backup goes on"},
	}, {
		name: "Ctrl-C without a terminal: stop following, the backup keeps running", stacks: []string{"a", "b"},
		runs:      map[string]run{"a": {endAt: 1000, signal: map[int]os.Signal{2: syscall.SIGINT}}, "b": ok},
		wantCode:  10,
		wantCalls: []string{"start --no-block backup@a.service"},
		wantErr:   []string{"stopped following backup@a.service; the backup goes on", "not started: b"},
		notOut:    []string{"a: backup"},
	}, {
		name: "SIGTERM on a terminal asks nothing and leaves the backup running", stacks: []string{"a"},
		runs:      map[string]run{"a": {endAt: 1000, signal: map[int]os.Signal{2: syscall.SIGTERM}}},
		ask:       func(context.Context, string) (bool, error) { panic("asked") },
		wantCode:  10,
		wantCalls: []string{"start --no-block backup@a.service"},
		wantErr:   []string{"the backup goes on"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake, sigs := script(t, c.runs)
			var out, errw syncBuffer
			f := &Follower{Manager: fake, Journal: &fakeJournal{lines: c.journal}, Out: &out, Err: &errw,
				Follow: c.follow, Signals: sigs, Ask: c.ask, Poll: time.Millisecond, StatusEvery: time.Nanosecond,
				Quiet: 20 * time.Millisecond, MaxDrain: 200 * time.Millisecond}
			var ts []Target
			for _, s := range c.stacks {
				ts = append(ts, Target{Stack: s})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code, err := f.All(ctx, ts)
			if code != c.wantCode || (err != nil) != (c.wantCode != 0) {
				t.Errorf("All = %d, %v; want %d", code, err, c.wantCode)
			}
			if got := fake.Changes(); !slices.Equal(got, c.wantCalls) {
				t.Errorf("manager changes %q, want %q", got, c.wantCalls)
			}
			for _, w := range c.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.notOut {
				if strings.Contains(out.String(), w) {
					t.Errorf("stdout has %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.wantOnce {
				if n := strings.Count(out.String(), w); n != 1 {
					t.Errorf("stdout has %q %d times, want once:\n%s", w, n, out.String())
				}
			}
			for _, w := range c.wantErr {
				if !strings.Contains(errw.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errw.String())
				}
			}
		})
	}
}

// script makes a fake manager play the runs: each unit's polls are
// counted, and at its nth poll the run's StatusText, signal and end apply.
func script(t *testing.T, runs map[string]run) (*managertest.Fake, chan os.Signal) {
	fake := managertest.New()
	sigs := make(chan os.Signal, 1)
	for stack, r := range runs {
		unit := "backup@" + stack + ".service"
		n := -1
		fake.On("show "+unit, func() {
			n++
			if s, ok := r.status[n]; ok {
				fake.SetProp(unit, "StatusText", s)
			}
			if s, ok := r.signal[n]; ok {
				sigs <- s
			}
			if n == r.endAt {
				fake.Finish(unit, r.result, r.code)
			}
		})
		fake.On("stop "+unit, func() { fake.Finish(unit, "exit-code", 10) })
	}
	return fake, sigs
}

func TestStatusTextAtMostEvery(t *testing.T) {
	fake, sigs := script(t, map[string]run{"a": {endAt: 6, result: "success",
		status: map[int]string{1: "one", 2: "two", 3: "three", 4: "four"}}})
	var out, errw syncBuffer
	f := &Follower{Manager: fake, Journal: &fakeJournal{}, Out: &out, Err: &errw, Follow: true, Signals: sigs,
		Poll: time.Millisecond, StatusEvery: time.Hour, Quiet: time.Millisecond}
	if code, err := f.All(context.Background(), []Target{{Stack: "a"}}); code != 0 {
		t.Fatalf("All = %d, %v", code, err)
	}
	if got := strings.Count(out.String(), "-- a: "); got != 1 || !strings.Contains(out.String(), "-- a: one") {
		t.Errorf("want only the first StatusText within the interval, got:\n%s", out.String())
	}
}

// The log_dir fallback: the file's lines of this run, without their stamps;
// lines of an earlier run are not shown.
func TestFollowerLogDirFallback(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour).Format(time.RFC3339) + " gate a: an earlier run\n"
	now := time.Now().Format(time.RFC3339) + " gate a: this run\n"
	file := filepath.Join(dir, fmt.Sprintf("backup-a-%s.log", time.Now().Format("2006-01-02")))
	if err := os.WriteFile(file, []byte(old+now), 0o600); err != nil {
		t.Fatal(err)
	}
	fake, sigs := script(t, map[string]run{"a": {endAt: 3, result: "success"}})
	var out, errw syncBuffer
	f := &Follower{Manager: fake, Journal: &fakeJournal{}, Out: &out, Err: &errw, Follow: true, Signals: sigs,
		Poll: time.Millisecond, FilePoll: 5 * time.Millisecond, Quiet: 50 * time.Millisecond}
	if code, err := f.All(context.Background(), []Target{{Stack: "a", LogDir: dir}}); code != 0 {
		t.Fatalf("All = %d, %v", code, err)
	}
	if !strings.Contains(out.String(), "\ngate a: this run\n") && !strings.HasPrefix(out.String(), "gate a: this run\n") {
		t.Errorf("stdout lacks the run's line without its stamp:\n%s", out.String())
	}
	if strings.Contains(out.String(), "earlier run") {
		t.Errorf("stdout shows an earlier run's line:\n%s", out.String())
	}
	if !strings.Contains(errw.String(), "from "+dir) {
		t.Errorf("stderr does not name the source:\n%s", errw.String())
	}
}

func TestLineAnswer(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{{"y\n", true}, {"YES\n", true}, {"n\n", false}, {"\n", false}, {"", false}, {"yup\n", false}} {
		var w bytes.Buffer
		got, err := LineAnswer(strings.NewReader(c.in), &w)(context.Background(), "stop?")
		if err != nil || got != c.want {
			t.Errorf("%q: %v, %v; want %v", c.in, got, err, c.want)
		}
		if !strings.Contains(w.String(), "stop? [y/N]") {
			t.Errorf("question shown as %q", w.String())
		}
	}
}
