package orchestrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/manager/managertest"
	"github.com/backup-stack/backup-stack/internal/podman"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Unit names of the test stack "a".
const (
	unitA = "a-stack.service"
	sockA = "a-ondemand.socket"
	svcA  = "a-ondemand.service"
	holdA = "backup-hold@a.service"
	bkA   = "backup@a.service"
	bkB   = "backup@b.service"
	invA  = "inv-a"
)

// syncBuffer is a log sink that a step running in another goroutine may
// write while the test reads it.
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

// fakePods answers Running from a script: answer i to call i, the last
// one repeating.
type fakePods struct {
	mu      sync.Mutex
	seq     [][]string
	err     error
	calls   int
	project string
}

func (p *fakePods) Running(_ context.Context, project string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.project = project
	i := min(p.calls, len(p.seq)-1)
	p.calls++
	if p.err != nil {
		return nil, p.err
	}
	if i < 0 {
		return nil, nil
	}
	return append([]string(nil), p.seq[i]...), nil
}

type testEnv struct {
	*Env
	mgr  *managertest.Fake
	pods *fakePods
	log  *syncBuffer
}

func newEnv(t *testing.T, inv string) *testEnv {
	t.Helper()
	buf := &syncBuffer{}
	te := &testEnv{mgr: managertest.New(), pods: &fakePods{}, log: buf}
	te.Env = &Env{
		Dir:          t.TempDir(),
		InvocationID: inv,
		Manager:      te.mgr,
		Containers:   te.pods,
		Log:          slog.New(slog.NewTextHandler(buf, nil)),
		Poll:         2 * time.Millisecond,
	}
	return te
}

func (te *testEnv) record(t *testing.T) *Record {
	t.Helper()
	r, err := LoadRecord(te.Dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (te *testEnv) saveRecord(t *testing.T, r Record) {
	t.Helper()
	if r.Stack == "" {
		r.Stack = "a"
	}
	if err := r.Save(te.Dir); err != nil {
		t.Fatal(err)
	}
}

// holder is what the slot file says, nil when there is none.
func (te *testEnv) holder(t *testing.T) *Holder {
	t.Helper()
	var h Holder
	err := readJSON(filepath.Join(te.Dir, "slot"), &h)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &h
}

func (te *testEnv) putHolder(t *testing.T, h Holder) {
	t.Helper()
	if err := writeJSON(filepath.Join(te.Dir, "slot"), h); err != nil {
		t.Fatal(err)
	}
}

// count is how many calls of exactly that recorded form were made.
func count(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

func stackA(od *hcl.OnDemand) *hcl.Stack {
	return &hcl.Stack{
		Name: "a", Unit: unitA, ProjectLabel: "proj-a", Jobs: []string{"job-a"},
		RestorePolicy: hcl.RestorePrevious, StopTimeout: time.Second, StartTimeout: time.Second,
		OnDemand: od,
	}
}

var (
	odSocket  = &hcl.OnDemand{Socket: sockA}
	odService = &hcl.OnDemand{Socket: sockA, Service: svcA}
)

func idleNow(context.Context) (bool, string, error) { return true, "idle", nil }

// answer is one reply of a scripted Duplicati.
type answer struct {
	ready bool
	words string
	err   error
}

// scripted answers from a script, the last answer repeating, and counts
// the calls.
type scripted struct {
	mu    sync.Mutex
	seq   []answer
	calls int
}

func (s *scripted) idle(context.Context) (bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.seq[min(s.calls, len(s.seq)-1)]
	s.calls++
	return a.ready, a.words, a.err
}

func (s *scripted) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var errDown = errors.New("connection refused")

// ---------------------------------------------------------------- Gate

func TestGateSlot(t *testing.T) {
	ctx := context.Background()
	holderB := Holder{Stack: "b", InvocationID: "inv-b", Since: time.Now().Add(-time.Minute)}
	for _, tc := range []struct {
		name string
		// setup prepares the slot and the holder's unit.
		setup func(te *testEnv)
		// holderShows is how many times the holder's unit must have been asked.
		holderShows int
		waited      bool
	}{
		{name: "slot free", setup: func(*testEnv) {}, holderShows: 0},
		{name: "live holder leaves after a few polls", holderShows: 3, waited: true, setup: func(te *testEnv) {
			te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("active", bkB)
			n := 0
			te.mgr.On("show "+bkB, func() {
				if n++; n == 3 {
					te.mgr.Set("inactive", bkB)
				}
			})
		}},
		{name: "deactivating holder (restoring) still holds it", holderShows: 2, waited: true, setup: func(te *testEnv) {
			te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("deactivating", bkB)
			n := 0
			te.mgr.On("show "+bkB, func() {
				if n++; n == 2 {
					te.mgr.Set("inactive", bkB)
				}
			})
		}},
		{name: "stale holder: its unit runs another invocation", holderShows: 1, setup: func(te *testEnv) {
			te.mgr.SetProp(bkB, "InvocationID", "inv-b-later").Set("active", bkB)
		}},
		{name: "stale holder: its unit is inactive", holderShows: 1, setup: func(te *testEnv) {
			te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("inactive", bkB)
		}},
		{name: "stale holder: its unit failed", holderShows: 1, setup: func(te *testEnv) {
			te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("failed", bkB)
		}},
		{name: "stale holder: its unit is not loaded", holderShows: 1, setup: func(*testEnv) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.mgr.Set("active", unitA)
			if tc.name != "slot free" {
				te.putHolder(t, holderB)
			}
			tc.setup(te)
			// Duplicati is asked only once the slot is ours.
			idleSeenHolder := false
			idle := func(ctx context.Context) (bool, string, error) {
				if h := te.holder(t); h == nil || h.Stack != "a" || h.InvocationID != invA {
					idleSeenHolder = true
				}
				return true, "idle", nil
			}
			if err := Gate(ctx, te.Env, stackA(nil), 5*time.Second, idle); err != nil {
				t.Fatal(err)
			}
			if idleSeenHolder {
				t.Error("Duplicati was asked before the slot was ours")
			}
			if got := count(te.mgr.Calls(), "show "+bkB); got != tc.holderShows {
				t.Errorf("holder's unit asked %d times, want %d (calls %q)", got, tc.holderShows, te.mgr.Calls())
			}
			h := te.holder(t)
			if h == nil || h.Stack != "a" || h.InvocationID != invA || h.Since.IsZero() {
				t.Fatalf("slot holder %+v, want a/%s", h, invA)
			}
			if got := strings.Count(te.log.String(), "waiting for the backup slot"); got != map[bool]int{true: 1, false: 0}[tc.waited] {
				t.Errorf("%d 'waiting' lines, waited=%v:\n%s", got, tc.waited, te.log)
			}
			if r := te.record(t); r == nil || r.InvocationID != invA || !r.UnitActive {
				t.Errorf("record %+v", r)
			}
			if ch := te.mgr.Changes(); len(ch) != 0 {
				t.Errorf("the gate changed the manager: %q", ch)
			}
		})
	}
}

func TestGateSlotNeverFreed(t *testing.T) {
	te := newEnv(t, invA)
	te.putHolder(t, Holder{Stack: "b", InvocationID: "inv-b"})
	te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("active", bkB, unitA)
	idle := &scripted{seq: []answer{{ready: true}}}
	start := time.Now()
	err := Gate(context.Background(), te.Env, stackA(nil), 40*time.Millisecond, idle.idle)
	// The deadline ends either the wait between two looks or a look itself.
	if !errors.Is(err, ErrGateTimeout) || !(strings.Contains(err.Error(), `"b"`) || strings.Contains(err.Error(), "holder b")) {
		t.Fatalf("want ErrGateTimeout naming stack b, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %s, maxWait 40ms", d)
	}
	if idle.n() != 0 {
		t.Error("Duplicati asked while the slot was not ours")
	}
	if h := te.holder(t); h == nil || h.Stack != "b" {
		t.Errorf("slot now %+v, want still b", h)
	}
	if r := te.record(t); r != nil {
		t.Errorf("a record was written: %+v", r)
	}
}

func TestGateSlotCanceled(t *testing.T) {
	te := newEnv(t, invA)
	te.putHolder(t, Holder{Stack: "b", InvocationID: "inv-b"})
	te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("active", bkB)
	ctx, cancel := context.WithCancel(context.Background())
	te.mgr.On("show "+bkB, cancel)
	err := Gate(ctx, te.Env, stackA(nil), 5*time.Second, idleNow)
	if err == nil || errors.Is(err, ErrGateTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a canceled gate is not a timeout: got %v", err)
	}
}

func TestGateHolderUnknowable(t *testing.T) {
	te := newEnv(t, invA)
	te.putHolder(t, Holder{Stack: "b", InvocationID: "inv-b"})
	te.mgr.Fail("show "+bkB, errors.New("no user manager"))
	err := Gate(context.Background(), te.Env, stackA(nil), 5*time.Second, idleNow)
	if err == nil || !strings.Contains(err.Error(), "no user manager") || !strings.Contains(err.Error(), "holder b") {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, ErrGateTimeout) {
		t.Fatal("a manager failure is not a timeout")
	}
	if h := te.holder(t); h == nil || h.Stack != "b" {
		t.Errorf("slot taken although its holder could not be checked: %+v", h)
	}
}

func TestGateDuplicati(t *testing.T) {
	busy := func(w string) answer { return answer{words: w} }
	ready := answer{ready: true, words: "idle"}
	fail := answer{err: errDown}
	for _, tc := range []struct {
		name    string
		seq     []answer
		maxWait time.Duration
		want    error // nil, ErrUnreachable or ErrGateTimeout
		calls   int   // exact calls of the idle func; -1 = at least 2
		busyLog int   // "is busy" lines (one per change of words)
	}{
		{"idle at once", []answer{ready}, 5 * time.Second, nil, 1, 0},
		{"busy then idle", []answer{busy("running x"), busy("running x"), busy("queued y"), ready}, 5 * time.Second, nil, 4, 2},
		{"unreachable 3 times", []answer{fail, fail, fail, ready}, 5 * time.Second, ErrUnreachable, 3, 0},
		{"unreachable twice then idle", []answer{fail, fail, ready}, 5 * time.Second, nil, 3, 0},
		{"a busy answer resets the count of failures", []answer{fail, fail, busy("running x"), fail, fail, ready}, 5 * time.Second, nil, 6, 1},
		{"never idle within maxWait", []answer{busy("running x")}, 40 * time.Millisecond, ErrGateTimeout, -1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.mgr.Set("active", unitA)
			s := &scripted{seq: tc.seq}
			err := Gate(context.Background(), te.Env, stackA(nil), tc.maxWait, s.idle)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.calls >= 0 && s.n() != tc.calls {
				t.Errorf("Duplicati asked %d times, want %d", s.n(), tc.calls)
			}
			if tc.calls < 0 && s.n() < 2 {
				t.Errorf("Duplicati asked %d times, want a few", s.n())
			}
			if got := strings.Count(te.log.String(), "Duplicati is busy"); got != tc.busyLog {
				t.Errorf("%d busy lines, want %d:\n%s", got, tc.busyLog, te.log)
			}
			r := te.record(t)
			if (r != nil) != (tc.want == nil) {
				t.Errorf("record %+v after error %v", r, err)
			}
			if tc.want == ErrUnreachable && !errors.Is(err, errDown) {
				t.Errorf("the last error is lost: %v", err)
			}
		})
	}
}

func TestGateIdleCallCutByTheDeadline(t *testing.T) {
	te := newEnv(t, invA)
	calls := 0
	idle := func(ctx context.Context) (bool, string, error) {
		calls++
		if calls == 1 {
			return false, "running x", nil
		}
		<-ctx.Done() // an HTTP request that the deadline ends
		return false, "", fmt.Errorf("get state: %w", ctx.Err())
	}
	err := Gate(context.Background(), te.Env, stackA(nil), 50*time.Millisecond, idle)
	if !errors.Is(err, ErrGateTimeout) || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "running x") {
		t.Fatalf("want a timeout naming the last state, got %v", err)
	}
}

func TestGateRequirePaths(t *testing.T) {
	t.Run("missing: fails before any wait", func(t *testing.T) {
		te := newEnv(t, invA)
		te.putHolder(t, Holder{Stack: "b", InvocationID: "inv-b"})
		te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("active", bkB)
		st := stackA(nil)
		st.RequirePaths = []string{te.Dir, filepath.Join(te.Dir, "missing")}
		s := &scripted{seq: []answer{{ready: true}}}
		start := time.Now()
		err := Gate(context.Background(), te.Env, st, 5*time.Second, s.idle)
		if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("got %v", err)
		}
		if time.Since(start) > time.Second {
			t.Error("waited before checking the paths")
		}
		if c := te.mgr.Calls(); len(c) != 0 || s.n() != 0 {
			t.Errorf("asked the manager %q / Duplicati %d times before failing", c, s.n())
		}
		if h := te.holder(t); h == nil || h.Stack != "b" {
			t.Errorf("slot %+v", h)
		}
		if te.record(t) != nil {
			t.Error("record written")
		}
	})
	t.Run("vanishes during the wait", func(t *testing.T) {
		te := newEnv(t, invA)
		mnt := filepath.Join(t.TempDir(), "mnt")
		if err := os.Mkdir(mnt, 0o700); err != nil {
			t.Fatal(err)
		}
		st := stackA(nil)
		st.RequirePaths = []string{mnt}
		idle := func(context.Context) (bool, string, error) {
			if err := os.Remove(mnt); err != nil {
				t.Error(err)
			}
			return true, "idle", nil
		}
		err := Gate(context.Background(), te.Env, st, 5*time.Second, idle)
		if !errors.Is(err, ErrPrecondition) {
			t.Fatalf("got %v", err)
		}
		if te.record(t) != nil {
			t.Error("record written although a required path is gone")
		}
	})
	t.Run("present", func(t *testing.T) {
		te := newEnv(t, invA)
		st := stackA(nil)
		f := filepath.Join(te.Dir, "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		st.RequirePaths = []string{te.Dir, f}
		if err := Gate(context.Background(), te.Env, st, 5*time.Second, idleNow); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStepsNeedInvocationID(t *testing.T) {
	ctx := context.Background()
	st := stackA(odService)
	for name, step := range map[string]func(e *Env) error{
		"gate": func(e *Env) error { return Gate(ctx, e, st, time.Second, idleNow) },
		"hold": func(e *Env) error { return Hold(ctx, e, st) },
		"hook": func(e *Env) error { return RunHook(ctx, e, st, "verify", false, []string{"true"}) },
		"restore": func(e *Env) error {
			return Restore(ctx, e, st)
		},
		"release": func(e *Env) error { _, _, err := Release(ctx, e, st); return err },
	} {
		t.Run(name, func(t *testing.T) {
			te := newEnv(t, "")
			// A held record of someone: without an invocation, nothing may touch it.
			te.saveRecord(t, Record{InvocationID: "", Held: true, UnitActive: true})
			err := step(te.Env)
			if !errors.Is(err, ErrNotFromUnit) || !strings.Contains(err.Error(), "systemctl --user start backup@") {
				t.Fatalf("got %v", err)
			}
			if c := te.mgr.Calls(); len(c) != 0 {
				t.Errorf("manager called: %q", c)
			}
			if r := te.record(t); r == nil || !r.Held || r.Restored {
				t.Errorf("record changed: %+v", r)
			}
		})
	}
}

func TestGateRecordsWhatWasActive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		od     *hcl.OnDemand
		states map[string]string
		show   string // the one show of the stack's units
		want   Record
	}{
		{"unit active", nil, map[string]string{unitA: "active"}, "show " + unitA, Record{UnitActive: true}},
		{"unit inactive", nil, map[string]string{unitA: "inactive"}, "show " + unitA, Record{}},
		{"unit not loaded", nil, nil, "show " + unitA, Record{}},
		{"unit activating counts as up", nil, map[string]string{unitA: "activating"}, "show " + unitA, Record{UnitActive: true}},
		{"unit reloading counts as up", nil, map[string]string{unitA: "reloading"}, "show " + unitA, Record{UnitActive: true}},
		{"unit deactivating is down", nil, map[string]string{unitA: "deactivating"}, "show " + unitA, Record{}},
		{"unit failed is down", nil, map[string]string{unitA: "failed"}, "show " + unitA, Record{}},
		{"socket active, unit inactive", odSocket, map[string]string{sockA: "active"},
			"show " + unitA + " " + sockA, Record{SocketActive: true}},
		{"unit and socket active", odSocket, map[string]string{unitA: "active", sockA: "active", svcA: "active"},
			"show " + unitA + " " + sockA, Record{UnitActive: true, SocketActive: true}},
		{"all three active", odService, map[string]string{unitA: "active", sockA: "active", svcA: "active"},
			"show " + unitA + " " + sockA + " " + svcA, Record{UnitActive: true, SocketActive: true, ServiceActive: true}},
		{"only the on-demand service active", odService, map[string]string{svcA: "active"},
			"show " + unitA + " " + sockA + " " + svcA, Record{ServiceActive: true}},
		{"socket listening, service idle", odService, map[string]string{sockA: "active", svcA: "inactive"},
			"show " + unitA + " " + sockA + " " + svcA, Record{SocketActive: true}},
		{"nothing active", odService, nil, "show " + unitA + " " + sockA + " " + svcA, Record{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			for u, s := range tc.states {
				te.mgr.Set(s, u)
			}
			before := time.Now()
			if err := Gate(context.Background(), te.Env, stackA(tc.od), time.Second, idleNow); err != nil {
				t.Fatal(err)
			}
			if got := count(te.mgr.Calls(), tc.show); got != 1 {
				t.Errorf("%q made %d times; calls %q", tc.show, got, te.mgr.Calls())
			}
			r := te.record(t)
			if r == nil {
				t.Fatal("no record")
			}
			if r.Gate.Before(before) || r.Gate.After(time.Now()) {
				t.Errorf("gate time %s", r.Gate)
			}
			got := Record{UnitActive: r.UnitActive, SocketActive: r.SocketActive, ServiceActive: r.ServiceActive,
				Held: r.Held, Restored: r.Restored, Inherited: r.Inherited}
			if got != tc.want {
				t.Errorf("recorded %+v, want %+v", got, tc.want)
			}
			if r.Stack != "a" || r.InvocationID != invA {
				t.Errorf("record of %s/%s", r.Stack, r.InvocationID)
			}
			if !strings.Contains(te.log.String(), "recorded: "+unitA) {
				t.Errorf("no 'recorded' line:\n%s", te.log)
			}
		})
	}
}

func TestGateInheritsAnUnrestoredRecord(t *testing.T) {
	old := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	for _, tc := range []struct {
		name     string
		earlier  *Record // nil: write garbage
		inherits bool
	}{
		{"held, not restored, other invocation", &Record{InvocationID: "inv-old", Gate: old, Held: true, HeldAt: old,
			UnitActive: true, SocketActive: true, ServiceActive: true}, true},
		{"held and restored", &Record{InvocationID: "inv-old", Gate: old, Held: true, Restored: true, UnitActive: true, SocketActive: true}, false},
		{"never held", &Record{InvocationID: "inv-old", Gate: old, UnitActive: true, SocketActive: true}, false},
		{"our own invocation (gate run again)", &Record{InvocationID: invA, Gate: old, Held: true, UnitActive: true, SocketActive: true}, false},
		{"unreadable", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			// The stack is down now (the earlier run held it); only the
			// service of the socket runs.
			te.mgr.Set("inactive", unitA, sockA).Set("active", svcA)
			if tc.earlier != nil {
				te.saveRecord(t, *tc.earlier)
			} else {
				if err := os.MkdirAll(filepath.Join(te.Dir, "record"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(recordPath(te.Dir, "a"), []byte("{half"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Gate(context.Background(), te.Env, stackA(odService), time.Second, idleNow); err != nil {
				t.Fatal(err)
			}
			r := te.record(t)
			// An inherited record stays Held (the stack is still down from
			// the earlier run); a fresh one is not held yet.
			if r == nil || r.InvocationID != invA || r.Held != tc.inherits || r.Restored {
				t.Fatalf("record %+v", r)
			}
			asked := count(te.mgr.Calls(), "show "+unitA+" "+sockA+" "+svcA)
			if tc.inherits {
				if !r.Inherited || !r.UnitActive || !r.SocketActive || !r.ServiceActive || !r.Gate.Equal(old) {
					t.Errorf("inherited record lost the earlier memory: %+v", r)
				}
				if asked != 0 {
					t.Error("asked the manager what is active, although the earlier run's memory is the truth")
				}
				if !strings.Contains(te.log.String(), "inv-old") {
					t.Errorf("the journal does not name the earlier run:\n%s", te.log)
				}
			} else {
				if r.Inherited || r.UnitActive || r.SocketActive || !r.ServiceActive || r.Gate.Equal(old) {
					t.Errorf("want a fresh record of what is active now, got %+v", r)
				}
				if asked != 1 {
					t.Errorf("show made %d times", asked)
				}
			}
		})
	}
}

func TestGateRecordFails(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Fail("show "+unitA, errors.New("manager gone"))
	err := Gate(context.Background(), te.Env, stackA(nil), time.Second, idleNow)
	if err == nil || !strings.Contains(err.Error(), "manager gone") {
		t.Fatalf("got %v", err)
	}
	if te.record(t) != nil {
		t.Error("record written without knowing what was active")
	}
}

// ---------------------------------------------------------------- Hold

func TestHold(t *testing.T) {
	ctx := context.Background()
	t.Run("no record: refuses, starts nothing", func(t *testing.T) {
		te := newEnv(t, invA)
		te.mgr.Set("active", unitA)
		err := Hold(ctx, te.Env, stackA(nil))
		if err == nil || !strings.Contains(err.Error(), "no record") {
			t.Fatalf("got %v", err)
		}
		if ch := te.mgr.Changes(); len(ch) != 0 {
			t.Errorf("changes %q", ch)
		}
		if te.mgr.State(unitA) != "active" {
			t.Error("stack stopped")
		}
	})
	t.Run("another invocation's record: refuses", func(t *testing.T) {
		te := newEnv(t, invA)
		te.saveRecord(t, Record{InvocationID: "inv-old", UnitActive: true})
		if err := Hold(ctx, te.Env, stackA(nil)); err == nil {
			t.Fatal("held on another run's record")
		}
		if ch := te.mgr.Changes(); len(ch) != 0 {
			t.Errorf("changes %q", ch)
		}
		if r := te.record(t); r.Held || r.InvocationID != "inv-old" {
			t.Errorf("the other run's record was changed: %+v", r)
		}
	})
	t.Run("holds: marks the record first, then starts the hold", func(t *testing.T) {
		te := newEnv(t, invA)
		te.mgr.Set("active", unitA, sockA).Conflicts(holdA, unitA, sockA, svcA)
		te.saveRecord(t, Record{InvocationID: invA, UnitActive: true, SocketActive: true})
		heldAtStart := false
		te.mgr.On("start "+holdA, func() {
			r, _ := LoadRecord(te.Dir, "a")
			heldAtStart = r != nil && r.Held && !r.HeldAt.IsZero()
		})
		if err := Hold(ctx, te.Env, stackA(odSocket)); err != nil {
			t.Fatal(err)
		}
		if !heldAtStart {
			t.Error("the record was not marked Held before the hold unit started")
		}
		if got, want := te.mgr.Changes(), []string{"start " + holdA}; !reflect.DeepEqual(got, want) {
			t.Errorf("changes %q, want %q", got, want)
		}
		for u, s := range map[string]string{holdA: "active", unitA: "inactive", sockA: "inactive"} {
			if te.mgr.State(u) != s {
				t.Errorf("%s is %s, want %s", u, te.mgr.State(u), s)
			}
		}
		if r := te.record(t); !r.Held || r.HeldAt.IsZero() || !r.UnitActive || !r.SocketActive {
			t.Errorf("record %+v", r)
		}
	})
	t.Run("the start of the hold fails: the record still says held", func(t *testing.T) {
		te := newEnv(t, invA)
		boom := errors.New("job for backup-hold@a.service failed")
		te.mgr.Set("active", unitA).Fail("start "+holdA, boom)
		te.saveRecord(t, Record{InvocationID: invA, UnitActive: true})
		if err := Hold(ctx, te.Env, stackA(nil)); !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		if r := te.record(t); r == nil || !r.Held {
			t.Fatalf("record %+v: the restore would not run", r)
		}
		// And so the restore brings the stack back.
		if err := Restore(ctx, te.Env, stackA(nil)); err != nil {
			t.Fatal(err)
		}
		if got, want := te.mgr.Changes(), []string{"start " + holdA, "stop --alone " + holdA, "start " + unitA}; !reflect.DeepEqual(got, want) {
			t.Errorf("changes %q, want %q", got, want)
		}
	})
	t.Run("the stack is still active after the hold", func(t *testing.T) {
		te := newEnv(t, invA)
		te.mgr.Set("active", unitA) // no Conflicts=: the hold stops nothing
		te.saveRecord(t, Record{InvocationID: invA, UnitActive: true})
		err := Hold(ctx, te.Env, stackA(nil))
		if err == nil || !strings.Contains(err.Error(), "still active") {
			t.Fatalf("got %v", err)
		}
		if r := te.record(t); !r.Held {
			t.Error("record not held")
		}
	})
	t.Run("cannot tell whether the stack stopped", func(t *testing.T) {
		te := newEnv(t, invA)
		te.mgr.Set("active", unitA).Conflicts(holdA, unitA).Fail("show "+unitA, errors.New("manager gone"))
		te.saveRecord(t, Record{InvocationID: invA, UnitActive: true})
		if err := Hold(ctx, te.Env, stackA(nil)); err == nil || !strings.Contains(err.Error(), "manager gone") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("the record cannot be written: nothing is stopped", func(t *testing.T) {
		te := newEnv(t, invA)
		// A name whose record file is readable but whose atomic write's
		// temporary file name is too long (this works as root too).
		st := stackA(nil)
		st.Name = strings.Repeat("n", 245)
		te.mgr.Set("active", unitA).Conflicts(systemd.HoldService(st.Name), unitA)
		b := []byte(fmt.Sprintf(`{"stack":%q,"invocation_id":%q,"unit_active":true}`, st.Name, invA))
		if err := os.MkdirAll(filepath.Join(te.Dir, "record"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(recordPath(te.Dir, st.Name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Hold(ctx, te.Env, st); err == nil {
			t.Fatal("held without being able to mark the record")
		}
		if ch := te.mgr.Changes(); len(ch) != 0 {
			t.Errorf("changes %q", ch)
		}
		if te.mgr.State(unitA) != "active" {
			t.Error("stack stopped")
		}
	})
}

// ---------------------------------------------------------------- WaitStopped

func TestWaitStopped(t *testing.T) {
	boom := errors.New("podman ps: exit status 125")
	for _, tc := range []struct {
		name    string
		seq     [][]string
		err     error
		timeout time.Duration
		wantErr string // "" = nil
		calls   int    // exact; -1 = at least 2
	}{
		{"gone at once", [][]string{nil}, nil, time.Second, "", 1},
		{"gone after a few polls", [][]string{{"a-app", "a-db"}, {"a-db"}, {"a-db"}, nil}, nil, time.Second, "", 4},
		{"still running after stop_timeout", [][]string{{"a-app", "a-db"}, {"a-db", "a-app"}}, nil, 40 * time.Millisecond,
			`containers of project "proj-a" still running after stop_timeout 40ms: a-db, a-app`, -1},
		{"podman not installed", nil, fmt.Errorf("%w: exec: \"podman\": not found", podman.ErrNotInstalled), time.Second, "", 1},
		{"podman fails", nil, boom, time.Second, boom.Error(), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.pods.seq, te.pods.err = tc.seq, tc.err
			st := stackA(nil)
			st.StopTimeout = tc.timeout
			start := time.Now()
			err := WaitStopped(context.Background(), te.Env, st)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if tc.calls >= 0 && te.pods.calls != tc.calls {
				t.Errorf("asked podman %d times, want %d", te.pods.calls, tc.calls)
			}
			if tc.calls < 0 && te.pods.calls < 2 {
				t.Errorf("asked podman %d times", te.pods.calls)
			}
			if te.pods.project != "proj-a" {
				t.Errorf("asked about project %q, want the project label", te.pods.project)
			}
			if d := time.Since(start); d > tc.timeout+time.Second {
				t.Errorf("took %s", d)
			}
			if ch := te.mgr.Calls(); len(ch) != 0 {
				t.Errorf("manager called: %q", ch)
			}
		})
	}
}

// ---------------------------------------------------------------- RunHook

func TestRunHook(t *testing.T) {
	for _, tc := range []struct {
		name     string
		record   *Record
		ignore   bool
		exit     int // exit status of the hook; -1 = no command at all
		wantErr  bool
		wantRan  bool
		failures []string
	}{
		{name: "no record: skipped", exit: 1, wantRan: false},
		{name: "another invocation's record: skipped", record: &Record{InvocationID: "inv-old", Held: true}, exit: 1},
		{name: "success", record: &Record{InvocationID: invA, Held: true}, exit: 0, wantRan: true},
		{name: "gate passed, never held: still runs", record: &Record{InvocationID: invA}, exit: 0, wantRan: true},
		{name: "failure is recorded", record: &Record{InvocationID: invA, Held: true}, exit: 3, wantErr: true, wantRan: true,
			failures: []string{"verify hook"}},
		{name: "failure ignored", record: &Record{InvocationID: invA, Held: true}, ignore: true, exit: 3, wantRan: true},
		{name: "empty command", record: &Record{InvocationID: invA, Held: true}, exit: -1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			if tc.record != nil {
				te.saveRecord(t, *tc.record)
			}
			marker := filepath.Join(t.TempDir(), "ran")
			var argv []string
			if tc.exit >= 0 {
				argv = []string{"sh", "-c", fmt.Sprintf("touch %q; exit %d", marker, tc.exit)}
			}
			err := RunHook(context.Background(), te.Env, stackA(nil), "verify", tc.ignore, argv)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			_, serr := os.Stat(marker)
			if ran := serr == nil; ran != tc.wantRan {
				t.Errorf("hook ran: %v, want %v", ran, tc.wantRan)
			}
			got, ferr := TakeFailures(te.Dir, "a", invA)
			if ferr != nil || !reflect.DeepEqual(got, tc.failures) {
				t.Errorf("failures %q (%v), want %q", got, ferr, tc.failures)
			}
		})
	}
}

func TestRunHookUnreadableRecord(t *testing.T) {
	te := newEnv(t, invA)
	if err := os.MkdirAll(filepath.Join(te.Dir, "record"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recordPath(te.Dir, "a"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RunHook(context.Background(), te.Env, stackA(nil), "verify", false, []string{"true"}); err == nil {
		t.Fatal("want the record's error")
	}
}

// ---------------------------------------------------------------- Restore

// restoreWorld is the manager while stack a is held down: the hold is
// active, the stack, its socket and service are not, and (as the
// generated drop-in says) they conflict both ways.
func restoreWorld(te *testEnv) {
	te.mgr.Set("active", holdA).Set("inactive", unitA, sockA, svcA)
	te.mgr.Conflicts(holdA, unitA, sockA, svcA)
	for _, u := range []string{unitA, sockA, svcA} {
		te.mgr.Conflicts(u, holdA)
	}
}

func TestRestorePolicies(t *testing.T) {
	const (
		P = hcl.RestorePrevious
		A = hcl.RestoreAlways
	)
	u, s, v := unitA, sockA, svcA
	for _, tc := range []struct {
		policy          string
		od              *hcl.OnDemand
		unit, sock, svc bool     // what the gate recorded
		start           []string // the one start expected, in order; nil = no start
	}{
		// previous, no on_demand
		{P, nil, true, false, false, []string{u}},
		{P, nil, false, false, false, nil},
		// the record knows a socket, the stack file no longer has one
		{P, nil, false, true, true, nil},
		{P, nil, true, true, true, []string{u}},
		// previous, on_demand socket only
		{P, odSocket, true, true, false, []string{u, s}},
		{P, odSocket, true, false, false, []string{u}},
		{P, odSocket, false, true, false, []string{s}},
		{P, odSocket, false, false, false, nil},
		{P, odSocket, false, false, true, nil}, // no service configured: not started
		{P, odSocket, true, true, true, []string{u, s}},
		// previous, on_demand socket and service
		{P, odService, false, false, false, nil},
		{P, odService, true, false, false, []string{u}},
		{P, odService, false, true, false, []string{s}},
		{P, odService, false, false, true, []string{v}},
		{P, odService, true, true, false, []string{u, s}},
		{P, odService, true, false, true, []string{u, v}},
		{P, odService, false, true, true, []string{s, v}},
		{P, odService, true, true, true, []string{u, s, v}},
		// always
		{A, nil, false, false, false, []string{u}},
		{A, nil, true, false, false, []string{u}},
		{A, nil, false, true, true, []string{u}},
		{A, odSocket, false, false, false, []string{u, s}},
		{A, odSocket, true, true, false, []string{u, s}},
		{A, odSocket, false, false, true, []string{u, s}},
		{A, odService, false, false, false, []string{u, s}},
		{A, odService, true, true, true, []string{u, s}}, // the service is the socket's to start
		{A, odService, false, false, true, []string{u, s}},
	} {
		od := "none"
		if tc.od != nil {
			od = "socket"
			if tc.od.Service != "" {
				od = "socket+service"
			}
		}
		name := fmt.Sprintf("%s/%s/unit=%v,socket=%v,service=%v", tc.policy, od, tc.unit, tc.sock, tc.svc)
		t.Run(name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te)
			heldAt := time.Now().Add(-time.Second)
			te.saveRecord(t, Record{InvocationID: invA, Held: true, HeldAt: heldAt,
				UnitActive: tc.unit, SocketActive: tc.sock, ServiceActive: tc.svc})
			st := stackA(tc.od)
			st.RestorePolicy = tc.policy
			if err := Restore(context.Background(), te.Env, st); err != nil {
				t.Fatal(err)
			}
			want := []string{"stop --alone " + holdA}
			if tc.start != nil {
				want = append(want, "start "+strings.Join(tc.start, " "))
			}
			if got := te.mgr.Changes(); !reflect.DeepEqual(got, want) {
				t.Errorf("changes %q, want %q", got, want)
			}
			started := map[string]bool{}
			for _, x := range tc.start {
				started[x] = true
			}
			for _, x := range []string{unitA, sockA, svcA} {
				want := map[bool]string{true: "active", false: "inactive"}[started[x]]
				if got := te.mgr.State(x); got != want {
					t.Errorf("%s is %s, want %s", x, got, want)
				}
			}
			if got := te.mgr.State(holdA); got != "inactive" {
				t.Errorf("hold is %s", got)
			}
			r := te.record(t)
			if !r.Restored || r.RestoredAt.Before(heldAt) {
				t.Errorf("record %+v", r)
			}
			if f, _ := TakeFailures(te.Dir, "a", invA); f != nil {
				t.Errorf("failures %q", f)
			}
		})
	}
}

func TestRestoreInheritedRecordBringsBackTheEarlierState(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, invA)
	restoreWorld(te)
	// The earlier run held the stack down with the unit and socket active,
	// and died before its restore.
	te.saveRecord(t, Record{InvocationID: "inv-old", Gate: time.Now().Add(-time.Hour), Held: true,
		UnitActive: true, SocketActive: true})
	st := stackA(odService)
	if err := Gate(ctx, te.Env, st, time.Second, idleNow); err != nil {
		t.Fatal(err)
	}
	if err := Hold(ctx, te.Env, st); err != nil {
		t.Fatal(err)
	}
	if err := Restore(ctx, te.Env, st); err != nil {
		t.Fatal(err)
	}
	want := []string{"start " + holdA, "stop --alone " + holdA, "start " + unitA + " " + sockA}
	if got := te.mgr.Changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("changes %q, want %q", got, want)
	}
	r, failed, err := Release(ctx, te.Env, st)
	if err != nil || failed != nil || r == nil || !r.Inherited {
		t.Fatalf("release: %+v %q %v", r, failed, err)
	}
	if te.record(t) != nil {
		t.Error("finished record kept")
	}
}

func TestRestoreDoesNothingWhenNotHeld(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record *Record
	}{
		{"no record", nil},
		{"gate passed, never held", &Record{InvocationID: invA, UnitActive: true}},
		{"another invocation held it", &Record{InvocationID: "inv-old", Held: true, UnitActive: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te)
			if tc.record != nil {
				te.saveRecord(t, *tc.record)
			}
			if err := Restore(context.Background(), te.Env, stackA(nil)); err != nil {
				t.Fatal(err)
			}
			if ch := te.mgr.Changes(); len(ch) != 0 {
				t.Errorf("changes %q", ch)
			}
			if r := te.record(t); r != nil && r.Restored {
				t.Error("marked restored")
			}
			if te.mgr.State(holdA) != "active" {
				t.Error("hold released")
			}
		})
	}
}

func TestRestoreFailures(t *testing.T) {
	boom := errors.New("job failed")
	for _, tc := range []struct {
		name    string
		setup   func(te *testEnv)
		changes []string
		wantErr string
	}{
		{"releasing the hold fails", func(te *testEnv) { te.mgr.Fail("stop --alone "+holdA, boom) },
			[]string{"stop --alone " + holdA}, "releasing the hold: job failed"},
		{"the start fails", func(te *testEnv) { te.mgr.Fail("start "+unitA+" "+sockA, boom) },
			[]string{"stop --alone " + holdA, "start " + unitA + " " + sockA}, "restore: job failed"},
		{"the unit is not up after its start", func(te *testEnv) {
			// The fake applies a start after its hook, so the crash is
			// armed by the start and happens before the next look.
			te.mgr.On("start "+unitA+" "+sockA, func() {
				te.mgr.On("show "+unitA+" "+sockA, func() { te.mgr.Set("failed", unitA) })
			})
		}, []string{"stop --alone " + holdA, "start " + unitA + " " + sockA}, "restore: " + unitA + " is not active after its start"},
		{"the socket is not up after its start", func(te *testEnv) {
			te.mgr.On("show "+unitA+" "+sockA, func() { te.mgr.Set("inactive", sockA) })
		}, []string{"stop --alone " + holdA, "start " + unitA + " " + sockA}, "restore: " + sockA + " is not active after its start"},
		{"cannot tell whether it came up", func(te *testEnv) { te.mgr.Fail("show "+unitA+" "+sockA, boom) },
			[]string{"stop --alone " + holdA, "start " + unitA + " " + sockA}, "cannot tell whether"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te)
			te.saveRecord(t, Record{InvocationID: invA, Held: true, HeldAt: time.Now(), UnitActive: true, SocketActive: true})
			tc.setup(te)
			err := Restore(context.Background(), te.Env, stackA(odSocket))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if got := te.mgr.Changes(); !reflect.DeepEqual(got, tc.changes) {
				t.Errorf("changes %q, want %q", got, tc.changes)
			}
			if f, _ := TakeFailures(te.Dir, "a", invA); !reflect.DeepEqual(f, []string{"restore"}) {
				t.Errorf("failures %q, want [restore]", f)
			}
			if r := te.record(t); r == nil || !r.Held || r.Restored {
				t.Errorf("record %+v: the next run must still restore", r)
			}
		})
	}
}

func TestRestoreWaitsForTheStartWithinStartTimeout(t *testing.T) {
	te := newEnv(t, invA)
	restoreWorld(te)
	te.saveRecord(t, Record{InvocationID: invA, Held: true, UnitActive: true})
	st := stackA(nil)
	st.StartTimeout = time.Nanosecond // the start's context is over at once
	err := Restore(context.Background(), te.Env, st)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if f, _ := TakeFailures(te.Dir, "a", invA); !reflect.DeepEqual(f, []string{"restore"}) {
		t.Errorf("failures %q", f)
	}
}

// ---------------------------------------------------------------- Release

func TestReleaseRecord(t *testing.T) {
	for _, tc := range []struct {
		name     string
		record   *Record
		returned bool // Release returns the record
		kept     bool // the record file remains
	}{
		{"no record", nil, false, false},
		{"gate passed, never held", &Record{InvocationID: invA, UnitActive: true}, true, false},
		{"held and restored", &Record{InvocationID: invA, Held: true, Restored: true}, true, false},
		{"held, not restored", &Record{InvocationID: invA, Held: true}, true, true},
		{"another invocation's record", &Record{InvocationID: "inv-old", Held: true}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			if tc.record != nil {
				te.saveRecord(t, *tc.record)
			}
			r, failed, err := Release(context.Background(), te.Env, stackA(nil))
			if err != nil || failed != nil {
				t.Fatalf("%v %q", err, failed)
			}
			if (r != nil) != tc.returned {
				t.Errorf("returned record %+v", r)
			}
			if kept := te.record(t) != nil; kept != tc.kept {
				t.Errorf("record kept %v, want %v", kept, tc.kept)
			}
			if tc.kept && tc.returned && !strings.Contains(te.log.String(), "keeping the record") {
				t.Errorf("no word about the kept record:\n%s", te.log)
			}
			if ch := te.mgr.Changes(); len(ch) != 0 {
				t.Errorf("changes %q", ch)
			}
		})
	}
}

func TestReleaseSlot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		slot  *Holder
		freed bool
	}{
		{"ours", &Holder{Stack: "a", InvocationID: invA}, true},
		{"another stack's", &Holder{Stack: "b", InvocationID: "inv-b"}, false},
		{"an earlier invocation of ours", &Holder{Stack: "a", InvocationID: "inv-old"}, false},
		{"free", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			if tc.slot != nil {
				te.putHolder(t, *tc.slot)
			}
			if _, _, err := Release(context.Background(), te.Env, stackA(nil)); err != nil {
				t.Fatal(err)
			}
			h := te.holder(t)
			if freed := h == nil; freed != tc.freed {
				t.Errorf("slot now %+v, want freed=%v", h, tc.freed)
			}
			if !tc.freed && *h != *tc.slot {
				t.Errorf("slot changed to %+v", h)
			}
		})
	}
}

func TestReleaseFailures(t *testing.T) {
	t.Run("ours", func(t *testing.T) {
		te := newEnv(t, invA)
		for _, s := range []string{"gate (exit 4)", "verify hook"} {
			if err := AddFailure(te.Dir, "a", invA, s); err != nil {
				t.Fatal(err)
			}
		}
		_, failed, err := Release(context.Background(), te.Env, stackA(nil))
		if err != nil || !reflect.DeepEqual(failed, []string{"gate (exit 4)", "verify hook"}) {
			t.Fatalf("%q %v", failed, err)
		}
		if f, _ := TakeFailures(te.Dir, "a", invA); f != nil {
			t.Errorf("failures left behind: %q", f)
		}
	})
	t.Run("another invocation's are not ours", func(t *testing.T) {
		te := newEnv(t, invA)
		if err := AddFailure(te.Dir, "a", "inv-old", "restore"); err != nil {
			t.Fatal(err)
		}
		_, failed, err := Release(context.Background(), te.Env, stackA(nil))
		if err != nil || failed != nil {
			t.Fatalf("%q %v", failed, err)
		}
	})
	t.Run("another stack's are not ours", func(t *testing.T) {
		te := newEnv(t, invA)
		if err := AddFailure(te.Dir, "b", invA, "restore"); err != nil {
			t.Fatal(err)
		}
		_, failed, err := Release(context.Background(), te.Env, stackA(nil))
		if err != nil || failed != nil {
			t.Fatalf("%q %v", failed, err)
		}
		if f, _ := TakeFailures(te.Dir, "b", invA); f == nil {
			t.Error("stack b's failures were taken by a's release")
		}
	})
	t.Run("unreadable files are errors, the slot is still freed", func(t *testing.T) {
		te := newEnv(t, invA)
		te.putHolder(t, Holder{Stack: "a", InvocationID: invA})
		for _, p := range []string{recordPath(te.Dir, "a"), failuresPath(te.Dir, "a")} {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := Release(context.Background(), te.Env, stackA(nil))
		if err == nil || strings.Count(err.Error(), "unexpected end of JSON") != 2 {
			t.Fatalf("want both errors, got %v", err)
		}
		if te.holder(t) != nil {
			t.Error("slot not freed")
		}
	})
}

// A whole run: gate, hold, wait, hooks, restore, release.
func TestStepsInSequence(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, invA)
	te.mgr.Set("active", unitA, sockA).Conflicts(holdA, unitA, sockA, svcA)
	te.pods.seq = [][]string{{"a-app"}, nil}
	st := stackA(odService)
	if err := Gate(ctx, te.Env, st, time.Second, idleNow); err != nil {
		t.Fatal(err)
	}
	if err := Hold(ctx, te.Env, st); err != nil {
		t.Fatal(err)
	}
	if err := WaitStopped(ctx, te.Env, st); err != nil {
		t.Fatal(err)
	}
	if err := RunHook(ctx, te.Env, st, "post_backup", false, []string{"false"}); err == nil {
		t.Fatal("failing hook")
	}
	if err := Restore(ctx, te.Env, st); err != nil {
		t.Fatal(err)
	}
	if err := RunHook(ctx, te.Env, st, "verify", true, []string{"false"}); err != nil {
		t.Fatal(err)
	}
	r, failed, err := Release(ctx, te.Env, st)
	if err != nil || !reflect.DeepEqual(failed, []string{"post_backup hook"}) {
		t.Fatalf("%q %v", failed, err)
	}
	if r == nil || !r.Held || !r.Restored || !r.UnitActive || !r.SocketActive || r.ServiceActive {
		t.Errorf("record %+v", r)
	}
	want := []string{"start " + holdA, "stop --alone " + holdA, "start " + unitA + " " + sockA}
	if got := te.mgr.Changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("changes %q, want %q", got, want)
	}
	if te.holder(t) != nil || te.record(t) != nil {
		t.Error("slot or record left behind")
	}
}

// A run that inherits an earlier run's memory and then fails before its
// own hold (a required pre_stop hook fails, or the unit is stopped) must
// not forget that memory: the stack is still down from the earlier run.
func TestInheritedRecordSurvivesARunThatNeverHeld(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, "inv-2")
	restoreWorld(te)
	te.saveRecord(t, Record{InvocationID: "inv-1", Gate: time.Now().Add(-time.Hour), Held: true, UnitActive: true})
	st := stackA(nil)
	if err := Gate(ctx, te.Env, st, time.Second, idleNow); err != nil {
		t.Fatal(err)
	}
	// pre_stop fails here: systemd goes straight to ExecStopPost=.
	if err := Restore(ctx, te.Env, st); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Release(ctx, te.Env, st); err != nil {
		t.Fatal(err)
	}
	restored := te.mgr.State(unitA) == "active"
	r := te.record(t)
	if !restored && (r == nil || !r.UnitActive) {
		t.Fatalf("stack a is down (%s) and no record remembers it was active: %+v", te.mgr.State(unitA), r)
	}
}

// ---------------------------------------------------------------- files

func TestHistory(t *testing.T) {
	dir := t.TempDir()
	if h, err := LoadHistory(dir, "a"); h != nil || err != nil {
		t.Fatalf("no history yet: %v %v", h, err)
	}
	gate := time.Now().Add(-time.Minute).Truncate(time.Second).UTC()
	want := &History{Stack: "a", InvocationID: invA, Result: "success", Gate: gate, HeldAt: gate.Add(time.Second),
		RestoredAt: gate.Add(30 * time.Second), Finished: gate.Add(time.Minute), Downtime: 29, LastSuccess: gate.Add(time.Minute)}
	if err := want.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadHistory(dir, "a")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v", got, err)
	}
	if !got.Succeeded() || got.Duration() != time.Minute {
		t.Errorf("succeeded %v duration %s", got.Succeeded(), got.Duration())
	}
	for _, h := range []History{{Result: "success", Failures: []string{"verify hook"}}, {Result: "exit-code"}, {Result: ""}} {
		if h.Succeeded() {
			t.Errorf("%+v counted as success", h)
		}
	}
	if d := (&History{Finished: time.Now()}).Duration(); d != 0 {
		t.Errorf("duration without a gate: %s", d)
	}
	if err := os.WriteFile(historyPath(dir, "b"), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if h, err := LoadHistory(dir, "b"); h != nil || err == nil || !strings.Contains(err.Error(), "b.json") {
		t.Fatalf("unreadable history: %v %v", h, err)
	}
}

func TestStateDirAndRuntimeDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct{ xdg, want string }{
		{"/srv/state", "/srv/state/backup-stack"},
		{"relative/state", filepath.Join(home, ".local", "state", "backup-stack")},
		{"", filepath.Join(home, ".local", "state", "backup-stack")},
	} {
		t.Setenv("XDG_STATE_HOME", tc.xdg)
		if got, err := StateDir(); err != nil || got != tc.want {
			t.Errorf("XDG_STATE_HOME=%q: %q %v, want %q", tc.xdg, got, err, tc.want)
		}
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	if got, err := StateDir(); err == nil {
		t.Errorf("no HOME: got %q", got)
	}

	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got, err := RuntimeDir(); err != nil || got != "/run/user/1000/backup-stack" {
		t.Errorf("%q %v", got, err)
	}
	for _, x := range []string{"", "run/user/1000"} {
		t.Setenv("XDG_RUNTIME_DIR", x)
		if got, err := RuntimeDir(); err == nil || !strings.Contains(err.Error(), "XDG_RUNTIME_DIR") {
			t.Errorf("XDG_RUNTIME_DIR=%q: %q %v", x, got, err)
		}
	}
}

func TestPollDefaults(t *testing.T) {
	if p := (&Env{}).poll(); p != time.Second {
		t.Errorf("default poll %s", p)
	}
	if p := (&Env{}).containerPoll(); p != 250*time.Millisecond {
		t.Errorf("container poll %s", p)
	}
	if p := (&Env{Poll: 5 * time.Millisecond}).containerPoll(); p != 5*time.Millisecond {
		t.Errorf("container poll %s", p)
	}
}

// A runtime directory that cannot be created: every file is an error, not
// a panic or a silent success.
func TestStateFilesUnwritable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f, "sub") // below a regular file
	if err := (&Record{Stack: "a"}).Save(dir); err == nil {
		t.Error("record saved below a file")
	}
	if _, err := LoadRecord(dir, "a"); err == nil {
		t.Error("LoadRecord: want ENOTDIR")
	}
	if err := RemoveRecord(dir, "a"); err == nil {
		t.Error("RemoveRecord: want ENOTDIR")
	}
	if err := AddFailure(dir, "a", invA, "x"); err == nil {
		t.Error("AddFailure below a file")
	}
	if _, err := TakeFailures(dir, "a", invA); err == nil {
		t.Error("TakeFailures: want ENOTDIR")
	}
	if err := writeJSON(filepath.Join(dir, "x.json"), func() {}); err == nil {
		t.Error("writeJSON of a func")
	}
	s := Slot{Dir: dir, Alive: func(context.Context, Holder) (bool, error) { return true, nil }}
	if _, err := s.TryTake(context.Background(), Holder{Stack: "a", InvocationID: invA}); err == nil || !strings.Contains(err.Error(), "backup slot") {
		t.Errorf("TryTake: %v", err)
	}
	if err := s.Take(context.Background(), Holder{Stack: "a"}, time.Millisecond, func(Holder) {}); err == nil {
		t.Error("Take below a file")
	}
	if err := s.Release(Holder{Stack: "a"}); err == nil {
		t.Error("Release below a file")
	}
	te := newEnv(t, invA)
	te.Dir = dir
	if _, _, err := Release(context.Background(), te.Env, stackA(nil)); err == nil || !strings.Contains(err.Error(), "releasing the slot") {
		t.Errorf("Release step: %v", err)
	}
}

func TestAddFailureToUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	p := failuresPath(dir, "a")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := AddFailure(dir, "a", invA, "restore"); err == nil {
		t.Fatal("a failure added over an unreadable file")
	}
}

func TestSlotReleaseUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	s := Slot{Dir: dir}
	if err := os.WriteFile(filepath.Join(dir, "slot"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(Holder{Stack: "a", InvocationID: invA}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "slot")); !errors.Is(err, os.ErrNotExist) {
		t.Error("an unreadable slot file is not removed on release")
	}
}
