package orchestrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/livestatus"
	"github.com/backup-stack/backup-stack/internal/manager/managertest"
	"github.com/backup-stack/backup-stack/internal/podman"
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

// fakePods answers List from a script: answer i to call i, the last one
// repeating. errs, when set, gives the error of call i (the last repeating).
type fakePods struct {
	mu      sync.Mutex
	seq     [][]podman.Container
	err     error
	errs    []error
	calls   int
	project string
	killed  []string
	delay   time.Duration // how long each List takes, as a podman ps on a busy machine
}

func (p *fakePods) Kill(_ context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = append(p.killed, name)
	return nil
}

func (p *fakePods) List(ctx context.Context, project string) ([]podman.Container, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.delay > 0 {
		p.mu.Unlock()
		time.Sleep(p.delay)
		p.mu.Lock()
	}
	p.project = project
	i := p.calls
	p.calls++
	if len(p.errs) > 0 {
		if err := p.errs[min(i, len(p.errs)-1)]; errors.Is(err, errBlock) {
			// Like podman under a deadline: the call lasts until it ends.
			p.mu.Unlock()
			<-ctx.Done()
			p.mu.Lock()
			return nil, fmt.Errorf("podman ps: %w", ctx.Err())
		} else if err != nil {
			return nil, err
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if len(p.seq) == 0 {
		return nil, nil
	}
	return append([]podman.Container(nil), p.seq[min(i, len(p.seq)-1)]...), nil
}

func (p *fakePods) n() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// ctr is a container; running(names) are running containers.
func ctr(name, state string) podman.Container { return podman.Container{Name: name, State: state} }

func running(names ...string) []podman.Container {
	var cs []podman.Container
	for _, n := range names {
		cs = append(cs, ctr(n, "running"))
	}
	return cs
}

// errBlock in fakePods.errs makes that call last until its context ends.
var errBlock = errors.New("block")

var errNoPodman = fmt.Errorf("%w: exec: \"podman\": executable file not found in $PATH", podman.ErrNotInstalled)

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
		StateDir:     t.TempDir(),
		InvocationID: inv,
		Manager:      te.mgr,
		Containers:   te.pods,
		Log:          slog.New(slog.NewTextHandler(buf, nil)),
		Poll:         2 * time.Millisecond,
	}
	if inv != "" {
		// The steps run as processes of backup@a.service's running invocation (FromUnit).
		te.mgr.SetProp("backup@a.service", "InvocationID", inv).Set("activating", "backup@a.service")
	}
	return te
}

// plan is the plan of stack a on disk, nil when there is none.
func (te *testEnv) plan(t *testing.T) *Plan {
	t.Helper()
	p, err := LoadPlan(te.StateDir, "a")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (te *testEnv) savePlan(t *testing.T, p *Plan) {
	t.Helper()
	if err := p.Save(te.StateDir); err != nil {
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

// unwritable points the env's state directory below a regular file, so
// that no plan can be saved.
func (te *testEnv) unwritable(t *testing.T) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	te.StateDir = filepath.Join(f, "sub")
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

func (te *testEnv) changes(t *testing.T, want ...string) {
	t.Helper()
	if got := te.mgr.Changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("manager changes %q, want %q", got, want)
	}
}

func stackA(od *hcl.OnDemand) *hcl.Stack {
	return &hcl.Stack{
		Name: "a", Unit: unitA, ProjectLabel: "proj-a", Jobs: []string{"job-a"},
		RestorePolicy: hcl.RestorePrevious, StopTimeout: time.Second, StartTimeout: time.Second,
		WaitTimeout: time.Hour, OnDemand: od,
	}
}

var (
	cfgA      = &hcl.Config{}
	odSocket  = &hcl.OnDemand{Socket: sockA}
	odService = &hcl.OnDemand{Socket: sockA, Service: svcA}
)

// planA is the plan the gate of invocation inv would freeze for stack a,
// changed by mods.
func planA(inv string, od *hcl.OnDemand, mods ...func(*Plan)) *Plan {
	p := NewPlan(cfgA, stackA(od), inv)
	for _, m := range mods {
		m(p)
	}
	return p
}

// held makes a plan held down since a second ago, with what was up.
func held(unit, sock, svc bool, containers ...string) func(*Plan) {
	return func(p *Plan) {
		p.Held, p.HeldAt = true, time.Now().Add(-time.Second)
		p.UnitActive, p.SocketActive, p.ServiceActive = unit, sock, svc
		p.Containers = containers
	}
}

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

// restoreWorld is the manager while stack a is held down: the hold is
// active, the stack, its socket and service are not, and (as the
// generated drop-in says) they conflict both ways. backup@a.service runs
// invocation run (the current one, not the plan's, unless they are equal).
func restoreWorld(te *testEnv, run string) {
	te.mgr.Set("active", holdA).Set("inactive", unitA, sockA, svcA)
	te.mgr.Conflicts(holdA, unitA, sockA, svcA)
	for _, u := range []string{unitA, sockA, svcA} {
		te.mgr.Conflicts(u, holdA)
	}
	if run != "" {
		te.mgr.SetProp(bkA, "InvocationID", run).Set("active", bkA)
	}
}

// ---------------------------------------------------------------- Gate

func TestGateSlot(t *testing.T) {
	ctx := context.Background()
	holderB := Holder{Stack: "b", InvocationID: "inv-b", Since: time.Now().Add(-time.Minute)}
	for _, tc := range []struct {
		name  string
		setup func(te *testEnv)
		// holderShows is how many times the holder's unit must have been asked.
		holderShows int
		waited      bool
	}{
		{name: "slot free", holderShows: 0},
		{name: "live holder leaves after a few polls", holderShows: 3, waited: true, setup: func(te *testEnv) {
			te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("active", bkB)
			n := 0
			te.mgr.On("show "+bkB, func() {
				if n++; n == 3 {
					te.mgr.Set("inactive", bkB)
				}
			})
		}},
		{name: "deactivating holder (finishing) still holds it", holderShows: 2, waited: true, setup: func(te *testEnv) {
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
		{name: "stale holder: its unit is not loaded", holderShows: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.mgr.Set("active", unitA)
			if tc.name != "slot free" {
				te.putHolder(t, holderB)
			}
			if tc.setup != nil {
				tc.setup(te)
			}
			// Duplicati is asked only once the slot is ours.
			idleSeenHolder := false
			idle := func(ctx context.Context) (bool, string, error) {
				if h := te.holder(t); h == nil || h.Stack != "a" || h.InvocationID != invA {
					idleSeenHolder = true
				}
				return true, "idle", nil
			}
			p, err := Gate(ctx, te.Env, cfgA, stackA(nil), 5*time.Second, idle)
			if err != nil {
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
			disk := te.plan(t)
			if disk == nil || disk.InvocationID != invA || !disk.UnitActive || disk.Held || disk.Finished {
				t.Errorf("plan %+v", disk)
			}
			if p == nil || p.InvocationID != invA || !p.UnitActive {
				t.Errorf("returned plan %+v", p)
			}
			te.changes(t)
		})
	}
}

func TestGateSlotNeverFreed(t *testing.T) {
	te := newEnv(t, invA)
	te.putHolder(t, Holder{Stack: "b", InvocationID: "inv-b"})
	te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("active", bkB, unitA)
	idle := &scripted{seq: []answer{{ready: true}}}
	start := time.Now()
	_, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), 40*time.Millisecond, idle.idle)
	// The deadline ends either the wait between two looks or a look itself.
	if !errors.Is(err, ErrGateTimeout) || !(strings.Contains(err.Error(), `"b"`) || strings.Contains(err.Error(), "held by b)")) {
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
	if p := te.plan(t); p != nil {
		t.Errorf("a plan was written: %+v", p)
	}
}

func TestGateSlotCanceled(t *testing.T) {
	te := newEnv(t, invA)
	te.putHolder(t, Holder{Stack: "b", InvocationID: "inv-b"})
	te.mgr.SetProp(bkB, "InvocationID", "inv-b").Set("active", bkB)
	ctx, cancel := context.WithCancel(context.Background())
	te.mgr.On("show "+bkB, cancel)
	_, err := Gate(ctx, te.Env, cfgA, stackA(nil), 5*time.Second, idleNow)
	if err == nil || errors.Is(err, ErrGateTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a canceled gate is not a timeout: got %v", err)
	}
}

func TestGateHolderUnknowable(t *testing.T) {
	te := newEnv(t, invA)
	te.putHolder(t, Holder{Stack: "b", InvocationID: "inv-b"})
	te.mgr.Fail("show "+bkB, errors.New("no user manager"))
	_, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), 5*time.Second, idleNow)
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
			_, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), tc.maxWait, s.idle)
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
			if p := te.plan(t); (p != nil) != (tc.want == nil) {
				t.Errorf("plan %+v after error %v", p, err)
			}
			if tc.want == ErrUnreachable && !errors.Is(err, errDown) {
				t.Errorf("the last error is lost: %v", err)
			}
			if tc.want == ErrGateTimeout && !strings.Contains(err.Error(), "running x") {
				t.Errorf("the timeout does not say what Duplicati was doing: %v", err)
			}
			if tc.want != nil {
				te.changes(t)
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
	_, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), 50*time.Millisecond, idle)
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
		_, err := Gate(context.Background(), te.Env, cfgA, st, 5*time.Second, s.idle)
		if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("got %v", err)
		}
		if time.Since(start) > time.Second {
			t.Error("waited before checking the paths")
		}
		// Only the check that this is the unit's own invocation (FromUnit).
		if c := te.mgr.Calls(); len(c) != 1 || c[0] != "show "+bkA || s.n() != 0 {
			t.Errorf("asked the manager %q / Duplicati %d times before failing", c, s.n())
		}
		if h := te.holder(t); h == nil || h.Stack != "b" {
			t.Errorf("slot %+v", h)
		}
		if te.plan(t) != nil {
			t.Error("plan written")
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
		_, err := Gate(context.Background(), te.Env, cfgA, st, 5*time.Second, idle)
		if !errors.Is(err, ErrPrecondition) {
			t.Fatalf("got %v", err)
		}
		if te.plan(t) != nil {
			t.Error("plan written although a required path is gone")
		}
	})
	t.Run("present: a directory and a file", func(t *testing.T) {
		te := newEnv(t, invA)
		st := stackA(nil)
		f := filepath.Join(te.Dir, "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		st.RequirePaths = []string{te.Dir, f}
		if _, err := Gate(context.Background(), te.Env, cfgA, st, 5*time.Second, idleNow); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGateFreezesWhatWasUp(t *testing.T) {
	type up struct{ unit, sock, svc bool }
	for _, tc := range []struct {
		name   string
		od     *hcl.OnDemand
		states map[string]string
		show   string // the one show of the stack's units
		want   up
	}{
		{"unit active", nil, map[string]string{unitA: "active"}, "show " + unitA, up{unit: true}},
		{"unit inactive", nil, map[string]string{unitA: "inactive"}, "show " + unitA, up{}},
		{"unit not loaded", nil, nil, "show " + unitA, up{}},
		{"unit activating counts as up", nil, map[string]string{unitA: "activating"}, "show " + unitA, up{unit: true}},
		{"unit reloading counts as up", nil, map[string]string{unitA: "reloading"}, "show " + unitA, up{unit: true}},
		{"unit deactivating is down", nil, map[string]string{unitA: "deactivating"}, "show " + unitA, up{}},
		{"unit failed is down", nil, map[string]string{unitA: "failed"}, "show " + unitA, up{}},
		{"socket active, unit inactive", odSocket, map[string]string{sockA: "active"}, "show " + unitA + " " + sockA, up{sock: true}},
		{"unit and socket active; no service configured", odSocket, map[string]string{unitA: "active", sockA: "active", svcA: "active"},
			"show " + unitA + " " + sockA, up{unit: true, sock: true}},
		{"all three active", odService, map[string]string{unitA: "active", sockA: "active", svcA: "active"},
			"show " + unitA + " " + sockA + " " + svcA, up{true, true, true}},
		{"only the on-demand service active", odService, map[string]string{svcA: "active"},
			"show " + unitA + " " + sockA + " " + svcA, up{svc: true}},
		{"socket listening, service idle", odService, map[string]string{sockA: "active", svcA: "inactive"},
			"show " + unitA + " " + sockA + " " + svcA, up{sock: true}},
		{"nothing active", odService, nil, "show " + unitA + " " + sockA + " " + svcA, up{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			for u, s := range tc.states {
				te.mgr.Set(s, u)
			}
			te.pods.seq = [][]podman.Container{{ctr("a-app", "running"), ctr("a-old", "exited"), ctr("a-web", "stopping"), ctr("a-new", "created")}}
			before := time.Now()
			p, err := Gate(context.Background(), te.Env, cfgA, stackA(tc.od), time.Second, idleNow)
			if err != nil {
				t.Fatal(err)
			}
			if got := count(te.mgr.Calls(), tc.show); got != 1 {
				t.Errorf("%q made %d times; calls %q", tc.show, got, te.mgr.Calls())
			}
			disk := te.plan(t)
			if disk == nil {
				t.Fatal("no plan")
			}
			if disk.Gate.Before(before) || disk.Gate.After(time.Now()) {
				t.Errorf("gate time %s", disk.Gate)
			}
			for _, q := range []*Plan{p, disk} {
				if got := (up{q.UnitActive, q.SocketActive, q.ServiceActive}); got != tc.want {
					t.Errorf("froze %+v, want %+v", got, tc.want)
				}
				if want := []string{"a-app", "a-web"}; !reflect.DeepEqual(q.Containers, want) {
					t.Errorf("containers %q, want the ones not down %q", q.Containers, want)
				}
				if q.Stack != "a" || q.InvocationID != invA || q.Held || q.Restored || q.Finished {
					t.Errorf("plan %+v", q)
				}
			}
			if te.pods.project != "proj-a" {
				t.Errorf("asked podman about %q", te.pods.project)
			}
			if !strings.Contains(te.log.String(), "recorded: "+unitA) || !strings.Contains(te.log.String(), "2 container(s) running: a-app, a-web") {
				t.Errorf("no 'recorded' line:\n%s", te.log)
			}
			te.changes(t)
		})
	}
}

// The plan freezes every setting the later steps need.
func TestGateFreezesTheSettings(t *testing.T) {
	te := newEnv(t, invA)
	stackFile := filepath.Join(t.TempDir(), "a.hcl")
	if err := os.WriteFile(stackFile, []byte(`stack "a" {}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &hcl.Config{Duplicati: hcl.Duplicati{URL: "http://127.0.0.1:8200", WaitTimeout: time.Hour}, LogDir: "/var/log/b", MetricsFile: "/m.prom"}
	st := stackA(odService)
	st.File = stackFile
	st.RestorePolicy = hcl.RestoreAlways
	st.StopTimeout, st.StartTimeout, st.WaitTimeout = 3*time.Second, 4*time.Second, 5*time.Second
	st.Hooks = []hcl.Hook{
		{Kind: "pre_stop", Command: []string{"true"}, IgnoreFailure: true, Timeout: time.Minute},
		{Kind: "verify", Command: []string{"curl", "-f", "x"}, Timeout: 2 * time.Minute},
	}
	st.Notify = &hcl.Notify{OnFailure: []string{"ntfy", "failed"}}
	st.Healthcheck = &hcl.Healthcheck{URL: "https://hc.example/x"}
	if _, err := Gate(context.Background(), te.Env, cfg, st, time.Second, idleNow); err != nil {
		t.Fatal(err)
	}
	p := te.plan(t)
	want := Settings{
		Unit: unitA, Socket: sockA, Service: svcA, ProjectLabel: "proj-a", RestorePolicy: hcl.RestoreAlways,
		StopTimeout: 3 * time.Second, StartTimeout: 4 * time.Second, WaitTimeout: 5 * time.Second, Jobs: []string{"job-a"},
		Hooks: []Hook{
			{Kind: "pre_stop", Command: []string{"true"}, IgnoreFailure: true, Timeout: time.Minute},
			{Kind: "verify", Command: []string{"curl", "-f", "x"}, Timeout: 2 * time.Minute},
		},
		Duplicati: cfg.Duplicati, LogDir: "/var/log/b", MetricsFile: "/m.prom",
		Notify: st.Notify, Healthcheck: st.Healthcheck,
	}
	if !reflect.DeepEqual(p.Settings, want) {
		t.Errorf("settings\n%+v\nwant\n%+v", p.Settings, want)
	}
	if len(p.Sources) != 1 || len(p.Sources[stackFile]) != 64 {
		t.Errorf("sources %q", p.Sources)
	}
	if ch := p.Changed(); len(ch) != 0 {
		t.Errorf("changed at once: %q", ch)
	}
}

func TestGatePodmanAndManager(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(te *testEnv)
		wantErr string // "" = passes
	}{
		{"podman not installed: no containers, passes", func(te *testEnv) { te.pods.err = errNoPodman }, ""},
		{"podman fails: refuses", func(te *testEnv) { te.pods.err = errors.New("podman ps: exit status 125") }, "exit status 125"},
		{"the manager cannot say what is up", func(te *testEnv) { te.mgr.Fail("show "+unitA, errors.New("manager gone")) }, "manager gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.mgr.Set("active", unitA)
			tc.setup(te)
			_, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), time.Second, idleNow)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p := te.plan(t); p == nil || len(p.Containers) != 0 || !p.UnitActive {
					t.Errorf("plan %+v", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if te.plan(t) != nil {
				t.Error("plan written without knowing what was up")
			}
		})
	}
}

func TestGatePlanCannotBeSaved(t *testing.T) {
	t.Run("state directory below a file", func(t *testing.T) {
		te := newEnv(t, invA)
		te.unwritable(t)
		_, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), time.Second, idleNow)
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("the plan's temporary file cannot be created", func(t *testing.T) {
		// A stack name whose plan file name fits and whose temporary file
		// name does not (this works as root too).
		te := newEnv(t, invA)
		st := stackA(nil)
		st.Name = strings.Repeat("n", 245)
		te.mgr.SetProp("backup@"+st.Name+".service", "InvocationID", invA).Set("activating", "backup@"+st.Name+".service")
		_, err := Gate(context.Background(), te.Env, cfgA, st, time.Second, idleNow)
		if err == nil || !strings.Contains(err.Error(), "saving the plan") {
			t.Fatalf("got %v", err)
		}
	})
}

// settle gives up on units still changing after its bound and returns
// their states as they are: the caller decides.
func TestSettleStillChanging(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Set("activating", unitA).Set("deactivating", holdA)
	start := time.Now()
	states, err := settle(context.Background(), te.Env, 40*time.Millisecond, unitA, holdA)
	if err != nil || !reflect.DeepEqual(states, []string{"activating", "deactivating"}) {
		t.Fatalf("%q %v", states, err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > time.Second {
		t.Errorf("returned after %s", d)
	}
}

func TestStepsNeedInvocationID(t *testing.T) {
	te := newEnv(t, "")
	if _, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), time.Second, idleNow); !errors.Is(err, ErrNotFromUnit) ||
		!strings.Contains(err.Error(), "systemctl --user start backup@") {
		t.Fatalf("gate: %v", err)
	}
	if _, err := te.OwnPlan(context.Background(), "a"); !errors.Is(err, ErrNotFromUnit) {
		t.Fatalf("own plan: %v", err)
	}
	if c := te.mgr.Calls(); len(c) != 0 {
		t.Errorf("manager called: %q", c)
	}
}

// An earlier run of the stack that did not finish is dealt with before
// anything else: what is active now is not the truth while it holds the
// stack down.
func TestGateRecoversAnEarlierPlanFirst(t *testing.T) {
	for _, tc := range []struct {
		name    string
		earlier *Plan // nil: a damaged file
		changes []string
		// recovered: the earlier plan's invocation was checked.
		recovered bool
		unitUp    bool // the new plan says the unit was up
	}{
		{"left down: restored first", planA("inv-old", nil, held(true, false, false)),
			[]string{"stop --alone " + holdA, "start " + unitA}, true, true},
		{"left down, unit was not up: the hold is released", planA("inv-old", nil, held(false, false, false)),
			[]string{"stop --alone " + holdA}, true, false},
		{"never held (its gate failed): finished, nothing started", planA("inv-old", nil, func(p *Plan) { p.Fail("gate (exit 11)") }),
			nil, true, false},
		{"held and restored, not finished: nothing started", planA("inv-old", nil, held(true, false, false), func(p *Plan) { p.Restored = true }),
			nil, true, false},
		{"finished: left alone", planA("inv-old", nil, held(true, false, false), func(p *Plan) { p.Finished = true }),
			nil, false, false},
		{"our own invocation's: not recovered", planA(invA, nil, held(true, false, false)), nil, false, false},
		{"damaged: moved aside", nil, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te, invA)
			if tc.earlier != nil {
				te.savePlan(t, tc.earlier)
			} else {
				if err := os.MkdirAll(filepath.Join(te.StateDir, "plan"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(planPath(te.StateDir, "a"), []byte("{half"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// The restore comes before the slot and Duplicati.
			slotAtRestore := false
			te.mgr.On("stop --alone "+holdA, func() { slotAtRestore = te.holder(t) != nil })
			idleAfter := func(context.Context) (bool, string, error) {
				if tc.changes != nil && len(te.mgr.Changes()) != len(tc.changes) {
					t.Error("Duplicati asked before the earlier plan was restored")
				}
				return true, "idle", nil
			}
			p, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), time.Second, idleAfter)
			if err != nil {
				t.Fatal(err)
			}
			te.changes(t, tc.changes...)
			if slotAtRestore {
				t.Error("the slot was taken before the earlier plan was restored")
			}
			// The first show is the gate's own check (FromUnit).
			if got := count(te.mgr.Calls(), "show "+bkA) > 1; got != tc.recovered {
				t.Errorf("earlier invocation checked: %v, want %v", got, tc.recovered)
			}
			disk := te.plan(t)
			if disk == nil || disk.InvocationID != invA || disk.Held || disk.Finished || disk.UnitActive != tc.unitUp || p.UnitActive != tc.unitUp {
				t.Errorf("new plan %+v, want unit up %v", disk, tc.unitUp)
			}
			if tc.earlier == nil {
				m, _ := filepath.Glob(planPath(te.StateDir, "a") + ".corrupt-*")
				if len(m) != 1 || !strings.Contains(te.log.String(), "damaged") {
					t.Errorf("damaged plan not moved aside: %q\n%s", m, te.log)
				}
			}
			if len(tc.changes) > 0 && !strings.Contains(te.log.String(), "inv-old") {
				t.Errorf("the journal does not name the earlier run:\n%s", te.log)
			}
		})
	}
}

func TestGateRefusesWhenTheEarlierPlanCannotBeRestored(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(te *testEnv)
		wantErr string
	}{
		{"the start fails", func(te *testEnv) {
			te.mgr.Fail("start "+unitA, errors.New("Job for a-stack.service failed"))
		}, "Job for a-stack.service failed"},
		{"the hold cannot be released", func(te *testEnv) {
			te.mgr.Fail("stop --alone "+holdA, errors.New("access denied"))
		}, "releasing the hold"},
		{"the manager cannot say whether that run still runs", func(te *testEnv) {
			// The gate's own check (FromUnit) gets its answer; the look at the earlier run does not.
			te.mgr.On("show "+bkA, func() { te.mgr.Fail("show "+bkA, errors.New("no user manager")) })
		}, "no user manager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te, invA)
			te.savePlan(t, planA("inv-old", nil, held(true, false, false)))
			tc.setup(te)
			idle := &scripted{seq: []answer{{ready: true}}}
			_, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), time.Second, idle.idle)
			if err == nil || !strings.Contains(err.Error(), "left down by an earlier backup (invocation inv-old) and could not be restored") ||
				!strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			disk := te.plan(t)
			if disk == nil || disk.InvocationID != "inv-old" || !disk.LeftDown() || disk.Finished {
				t.Errorf("the earlier plan must stay unfinished: %+v", disk)
			}
			if te.holder(t) != nil || idle.n() != 0 {
				t.Error("the gate went on")
			}
		})
	}
}

func TestGatePlanUnreadable(t *testing.T) {
	te := newEnv(t, invA)
	// A directory where the plan should be: not damage to move aside.
	if err := os.MkdirAll(planPath(te.StateDir, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), time.Second, idleNow); err == nil || errors.Is(err, ErrDamagedState) {
		t.Fatalf("got %v", err)
	}
	te.changes(t)
}

// ---------------------------------------------------------------- Hold

func TestHold(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("Failed to start backup-hold@a.service: Connection reset by peer")
	for _, tc := range []struct {
		name  string
		od    *hcl.OnDemand
		stop  time.Duration
		setup func(te *testEnv)
		// onStart runs when the hold unit is asked to start, before the
		// fake applies (or fails) the start.
		onStart func(te *testEnv)
		wantErr []string // nil = success
		warned  bool
	}{
		{name: "stops the stack, socket and service", od: odService, setup: func(te *testEnv) {
			te.mgr.Set("active", unitA, sockA, svcA).Conflicts(holdA, unitA, sockA, svcA)
		}},
		{name: "start error but the units settled fine", setup: func(te *testEnv) {
			te.mgr.Set("active", unitA).Fail("start "+holdA, boom)
		}, onStart: func(te *testEnv) { te.mgr.Set("active", holdA).Set("inactive", unitA) }, warned: true},
		{name: "the start outlives stop_timeout, the job ends well", stop: 100 * time.Millisecond, setup: func(te *testEnv) {
			te.mgr.Set("active", unitA)
			n := 0
			te.mgr.On("show "+holdA+" "+unitA, func() {
				if n++; n == 3 {
					te.mgr.Set("active", holdA).Set("inactive", unitA)
				}
			})
		}, onStart: func(te *testEnv) {
			time.Sleep(150 * time.Millisecond)
			te.mgr.Set("activating", holdA).Set("deactivating", unitA)
		}, warned: true},
		{name: "hold not up: error naming stop_timeout", setup: func(te *testEnv) {
			te.mgr.Set("active", unitA).Fail("start "+holdA, boom)
		}, wantErr: []string{holdA + " did not start within stop_timeout 1s", "raise stop_timeout", boom.Error()}},
		{name: "the stack is still active after the hold", setup: func(te *testEnv) {
			te.mgr.Set("active", unitA) // no Conflicts=: the hold stops nothing
		}, wantErr: []string{unitA + " is still active after " + holdA + " started"}},
		{name: "the socket is still active after the hold", od: odSocket, setup: func(te *testEnv) {
			te.mgr.Set("active", unitA, sockA).Conflicts(holdA, unitA)
		}, wantErr: []string{sockA + " is still active"}},
		{name: "the manager does not answer", stop: 50 * time.Millisecond, setup: func(te *testEnv) {
			te.mgr.Set("active", unitA).Conflicts(holdA, unitA).Fail("show "+holdA+" "+unitA, errors.New("manager gone"))
		}, wantErr: []string{"did not answer within 50ms", "manager gone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			tc.setup(te)
			p := planA(invA, tc.od, func(p *Plan) { p.UnitActive = true })
			if tc.stop > 0 {
				p.Settings.StopTimeout = tc.stop
			}
			te.savePlan(t, p)
			// Held must be on disk before the hold unit is asked to start.
			heldAtStart := false
			te.mgr.On("start "+holdA, func() {
				d, _ := LoadPlan(te.StateDir, "a")
				heldAtStart = d != nil && d.Held && !d.HeldAt.IsZero()
				if tc.onStart != nil {
					tc.onStart(te)
				}
			})
			err := Hold(ctx, te.Env, p)
			if tc.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want %q", err, w)
				}
			}
			if !heldAtStart {
				t.Error("the plan was not saved as Held before the hold unit started")
			}
			if d := te.plan(t); !d.Held || d.HeldAt.IsZero() || !p.Held {
				t.Errorf("plan %+v: the restore would not run", d)
			}
			te.changes(t, "start "+holdA)
			if tc.wantErr == nil {
				for _, u := range p.Units() {
					if s := te.mgr.State(u); s != "inactive" {
						t.Errorf("%s is %s while held", u, s)
					}
				}
			}
			if got := strings.Contains(te.log.String(), "yet it is active and the stack is down"); got != tc.warned {
				t.Errorf("warned %v, want %v:\n%s", got, tc.warned, te.log)
			}
		})
	}
}

func TestHoldCanceled(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	ctx, cancel := context.WithCancel(context.Background())
	te.mgr.On("start "+holdA, cancel)
	p := planA(invA, nil)
	if err := Hold(ctx, te.Env, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if d := te.plan(t); d == nil || !d.Held {
		t.Errorf("plan %+v", d)
	}
}

func TestHoldPlanCannotBeSaved(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	te.unwritable(t)
	if err := Hold(context.Background(), te.Env, planA(invA, nil)); err == nil || !strings.Contains(err.Error(), "saving the plan") {
		t.Fatalf("got %v", err)
	}
	te.changes(t)
	if te.mgr.State(unitA) != "active" {
		t.Error("stack stopped without a plan saying so")
	}
}

// ---------------------------------------------------------------- WaitStopped

func TestWaitStopped(t *testing.T) {
	boom := errors.New("podman ps: exit status 125")
	for _, tc := range []struct {
		name    string
		seq     [][]podman.Container
		err     error
		errs    []error
		timeout time.Duration
		wantErr []string // nil = success
		calls   int      // exact; -1 = at least 2
		stopped bool
	}{
		{name: "none at all", seq: nil, timeout: time.Second, calls: 1, stopped: true},
		{name: "every state that is down", seq: [][]podman.Container{{ctr("a-1", "exited"), ctr("a-2", "stopped"), ctr("a-3", "created"), ctr("a-4", "configured")}},
			timeout: time.Second, calls: 1, stopped: true},
		{name: "down after a few polls", seq: [][]podman.Container{running("a-app", "a-db"), {ctr("a-app", "stopping"), ctr("a-db", "exited")},
			{ctr("a-app", "stopping"), ctr("a-db", "exited")}, {ctr("a-app", "exited"), ctr("a-db", "exited")}},
			timeout: time.Second, calls: 4, stopped: true},
		{name: "a stopping container blocks until stop_timeout", seq: [][]podman.Container{{ctr("a-app", "stopping"), ctr("a-db", "exited"), ctr("a-p", "paused")}},
			timeout: 100 * time.Millisecond, calls: -1,
			wantErr: []string{`containers of project "proj-a" still running after stop_timeout 100ms`, "raise stop_timeout", "a-app (stopping), a-p (paused); no job was started"}},
		{name: "podman not installed", err: errNoPodman, timeout: time.Second, calls: 1, stopped: true},
		{name: "podman fails", err: boom, timeout: time.Second, calls: 1, wantErr: []string{boom.Error()}},
		{name: "podman fails once the deadline is over", errs: []error{nil, errBlock}, seq: [][]podman.Container{running("a-app")},
			timeout: 60 * time.Millisecond, calls: -1, wantErr: []string{"still running after stop_timeout 60ms", "a-app (running)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.pods.seq, te.pods.err, te.pods.errs = tc.seq, tc.err, tc.errs
			p := planA(invA, nil, held(true, false, false))
			p.Settings.StopTimeout = tc.timeout
			start := time.Now()
			err := WaitStopped(context.Background(), te.Env, p)
			d := time.Since(start)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("unexpected %v", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want %q", err, w)
				}
			}
			if strings.Contains(fmt.Sprint(err), "a-db") {
				t.Errorf("an exited container named: %v", err)
			}
			if tc.calls >= 0 && te.pods.n() != tc.calls {
				t.Errorf("asked podman %d times, want %d", te.pods.n(), tc.calls)
			}
			if tc.calls < 0 && te.pods.n() < 2 {
				t.Errorf("asked podman %d times", te.pods.n())
			}
			if te.pods.project != "proj-a" {
				t.Errorf("asked about project %q, want the project label", te.pods.project)
			}
			if tc.wantErr != nil && tc.calls < 0 && d < tc.timeout {
				t.Errorf("gave up after %s, before stop_timeout %s", d, tc.timeout)
			}
			if d > tc.timeout+time.Second {
				t.Errorf("took %s", d)
			}
			if p.Stopped != tc.stopped {
				t.Errorf("stopped %v, want %v", p.Stopped, tc.stopped)
			}
			if d := te.plan(t); (d != nil && d.Stopped) != tc.stopped {
				t.Errorf("plan on disk %+v", d)
			}
			if c := te.mgr.Calls(); len(c) != 0 {
				t.Errorf("manager called: %q", c)
			}
		})
	}
}

func TestWaitStoppedPlanCannotBeSaved(t *testing.T) {
	te := newEnv(t, invA)
	te.unwritable(t)
	if err := WaitStopped(context.Background(), te.Env, planA(invA, nil)); err == nil || !strings.Contains(err.Error(), "saving the plan") {
		t.Fatalf("got %v", err)
	}
}

// ---------------------------------------------------------------- RunHook

func TestRunHook(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	sh := func(script string) []string { return []string{"sh", "-c", script} }
	for _, tc := range []struct {
		name    string
		hooks   []Hook
		kind    string
		n       int
		env     []string
		wantErr []string // nil = no error
		wantIs  error
		ran     string // what the hook wrote to marker; "" = it did not run
		warned  bool
		cancel  bool // the step is stopped (SIGTERM) while the hook runs
	}{
		{name: "success", hooks: []Hook{{Kind: "verify", Command: sh(`echo ok > "$M"`)}}, kind: "verify", n: 1, ran: "ok"},
		{name: "the n-th of its kind", hooks: []Hook{
			{Kind: "verify", Command: sh(`echo first > "$M"`)}, {Kind: "pre_stop", Command: sh(`echo pre > "$M"`)},
			{Kind: "verify", Command: sh(`echo second > "$M"`)}}, kind: "verify", n: 2, ran: "second"},
		{name: "environment passed", hooks: []Hook{{Kind: "post_backup", Command: sh(`echo "$SERVICE_RESULT" > "$M"`)}},
			kind: "post_backup", n: 1, env: []string{"SERVICE_RESULT=exit-code"}, ran: "exit-code"},
		{name: "failure", hooks: []Hook{{Kind: "verify", Command: sh(`echo x > "$M"; exit 3`)}}, kind: "verify", n: 1, ran: "x",
			wantErr: []string{"hook verify: sh: failed (exit 3)"}},
		{name: "failure says the hook's last line", hooks: []Hook{{Kind: "pre_stop", Command: sh(`echo starting; echo "occ: maintenance mode is on already" >&2; exit 2`)}},
			kind: "pre_stop", n: 1, wantErr: []string{"hook pre_stop: sh: occ: maintenance mode is on already (exit 2)"}},
		{name: "killed by a signal", hooks: []Hook{{Kind: "verify", Command: sh(`kill -9 $$`)}}, kind: "verify", n: 1,
			wantErr: []string{"hook verify: sh: failed (killed by signal killed)"}},
		{name: "interrupted", hooks: []Hook{{Kind: "verify", Command: sh(`sleep 5`)}}, kind: "verify", n: 1, cancel: true,
			wantErr: []string{"hook verify: sh: interrupted"}, wantIs: context.Canceled},
		{name: "failure ignored", hooks: []Hook{{Kind: "verify", Command: sh(`echo x > "$M"; exit 3`), IgnoreFailure: true}},
			kind: "verify", n: 1, ran: "x", warned: true},
		{name: "missing program", hooks: []Hook{{Kind: "verify", Command: []string{"/nonexistent/backup-stack-hook"}}}, kind: "verify", n: 1,
			wantErr: []string{"hook verify: /nonexistent/backup-stack-hook: not found (exit 127)"}, wantIs: os.ErrNotExist},
		{name: "not executable", hooks: []Hook{{Kind: "verify", Command: []string{dir}}}, kind: "verify", n: 1,
			wantErr: []string{"hook verify: " + dir + ": not executable (exit 126)"}},
		{name: "missing program on PATH", hooks: []Hook{{Kind: "verify", Command: []string{"backup-stack-no-such-hook"}}}, kind: "verify", n: 1,
			wantErr: []string{"hook verify: backup-stack-no-such-hook: not found (exit 127)"}, wantIs: exec.ErrNotFound},
		{name: "missing program ignored", hooks: []Hook{{Kind: "verify", Command: []string{"/nonexistent/x"}, IgnoreFailure: true}},
			kind: "verify", n: 1, warned: true},
		{name: "no such hook: number 0", hooks: []Hook{{Kind: "verify", Command: sh("true")}}, kind: "verify", n: 0,
			wantErr: []string{"the plan of this run has 1 verify hook(s), not a number 0"}},
		{name: "no such hook: past the last", hooks: []Hook{{Kind: "verify", Command: sh("true")}}, kind: "verify", n: 2,
			wantErr: []string{"has 1 verify hook(s), not a number 2"}},
		{name: "no hook of the kind", kind: "pre_stop", n: 1, wantErr: []string{"has 0 pre_stop hook(s)"}},
		{name: "timeout", hooks: []Hook{{Kind: "verify", Command: sh("sleep 5"), Timeout: 50 * time.Millisecond}}, kind: "verify", n: 1,
			wantErr: []string{"hook verify: sh: hook timed out after 50ms (timeout in the hook block)"}, wantIs: ErrHookTimeout},
		{name: "timeout ignored", hooks: []Hook{{Kind: "verify", Command: sh("sleep 5"), Timeout: 50 * time.Millisecond, IgnoreFailure: true}},
			kind: "verify", n: 1, warned: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(marker)
			t.Setenv("M", marker)
			te := newEnv(t, invA)
			p := planA(invA, nil, func(p *Plan) { p.Settings.Hooks = tc.hooks })
			start := time.Now()
			ctx := context.Background()
			if tc.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			err := RunHook(ctx, te.Env, p, tc.kind, tc.n, tc.env)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("unexpected %v", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want %q", err, w)
				}
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("%v is not %v", err, tc.wantIs)
			}
			b, _ := os.ReadFile(marker)
			if got := strings.TrimSpace(string(b)); got != tc.ran {
				t.Errorf("hook wrote %q, want %q", got, tc.ran)
			}
			if got := strings.Contains(te.log.String(), "ignored as configured (ignore_failure)"); got != tc.warned {
				t.Errorf("ignore warning %v, want %v:\n%s", got, tc.warned, te.log)
			}
			if c := te.mgr.Calls(); len(c) != 0 {
				t.Errorf("manager called: %q", c)
			}
		})
	}
}

// The timeout ends the hook's whole process group: a child that ignores
// its parent's death is killed too, within about a second.
func TestRunHookTimeoutKillsTheProcessGroup(t *testing.T) {
	te := newEnv(t, invA)
	pidFile := filepath.Join(t.TempDir(), "pid")
	const timeout = 300 * time.Millisecond
	p := planA(invA, nil, func(p *Plan) {
		p.Settings.Hooks = []Hook{{Kind: "pre_backup", Timeout: timeout,
			Command: []string{"sh", "-c", `sleep 30 & echo $! > "$0"; trap '' TERM; wait`, pidFile}}}
	})
	start := time.Now()
	err := RunHook(context.Background(), te.Env, p, "pre_backup", 1, nil)
	d := time.Since(start)
	if !errors.Is(err, ErrHookTimeout) || !strings.Contains(err.Error(), "300ms") {
		t.Fatalf("got %v", err)
	}
	if d < timeout || d > timeout+time.Second {
		t.Errorf("returned after %s, timeout %s", d, timeout)
	}
	b, rerr := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if rerr != nil || perr != nil {
		t.Fatalf("child pid: %q %v %v", b, rerr, perr)
	}
	deadline := time.Now().Add(time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the hook's child %d still runs a second after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone reports whether a process no longer runs (absent, or a zombie that
// nobody has reaped yet).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// A hook cut short because the step itself is canceled is not a timeout.
func TestRunHookCanceled(t *testing.T) {
	te := newEnv(t, invA)
	p := planA(invA, nil, func(p *Plan) {
		p.Settings.Hooks = []Hook{{Kind: "verify", Command: []string{"sleep", "5"}}} // default timeout
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := RunHook(ctx, te.Env, p, "verify", 1, nil)
	if err == nil || errors.Is(err, ErrHookTimeout) {
		t.Fatalf("got %v", err)
	}
}

// ---------------------------------------------------------------- Restore

func TestRestorePolicies(t *testing.T) {
	const (
		P = hcl.RestorePrevious
		A = hcl.RestoreAlways
	)
	u, s, v := unitA, sockA, svcA
	for _, tc := range []struct {
		policy          string
		od              *hcl.OnDemand
		unit, sock, svc bool     // what was up at the gate
		start           []string // the one start expected, in order; nil = no start
	}{
		// previous, no on_demand
		{P, nil, true, false, false, []string{u}},
		{P, nil, false, false, false, nil},
		// the plan knows a socket was up, yet its settings have none
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
			restoreWorld(te, "")
			p := planA(invA, tc.od, held(tc.unit, tc.sock, tc.svc), func(p *Plan) { p.Settings.RestorePolicy = tc.policy })
			te.savePlan(t, p)
			if err := Restore(context.Background(), te.Env, p); err != nil {
				t.Fatal(err)
			}
			want := []string{"stop --alone " + holdA}
			if tc.start != nil {
				want = append(want, "start "+strings.Join(tc.start, " "))
			}
			te.changes(t, want...)
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
			d := te.plan(t)
			if !d.Restored || d.RestoredAt.Before(d.HeldAt) || !p.Restored || d.LeftDown() {
				t.Errorf("plan %+v", d)
			}
			if !strings.Contains(te.log.String(), "stack restored; down for") {
				t.Errorf("no downtime line:\n%s", te.log)
			}
			if te.pods.n() != 0 {
				t.Error("asked podman although no container ran at the gate")
			}
		})
	}
}

func TestRestoreDoesNothingUnlessHeld(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Plan)
	}{
		{"never held", func(p *Plan) { p.UnitActive = true }},
		{"restored already", func(p *Plan) { held(true, false, false)(p); p.Restored = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te, "")
			p := planA(invA, nil, tc.mod)
			if err := Restore(context.Background(), te.Env, p); err != nil {
				t.Fatal(err)
			}
			te.changes(t)
			if te.mgr.State(holdA) != "active" {
				t.Error("hold released")
			}
			if te.plan(t) != nil {
				t.Error("plan saved")
			}
		})
	}
}

func TestRestoreFailures(t *testing.T) {
	boom := errors.New("job failed")
	for _, tc := range []struct {
		name     string
		setup    func(te *testEnv)
		changes  []string
		wantErr  []string
		restored bool
	}{
		{"releasing the hold fails", func(te *testEnv) { te.mgr.Fail("stop --alone "+holdA, boom) },
			[]string{"stop --alone " + holdA}, []string{"releasing the hold: " + holdA + " is still up (job failed"}, false},
		{"the stop says no, yet the hold is down", func(te *testEnv) {
			te.mgr.Fail("stop --alone "+holdA, boom).On("stop --alone "+holdA, func() { te.mgr.Set("inactive", holdA) })
		}, []string{"stop --alone " + holdA, "start " + unitA}, nil, true},
		{"the manager cannot say whether the hold is down", func(te *testEnv) { te.mgr.Fail("show "+holdA, boom) },
			[]string{"stop --alone " + holdA}, []string{"releasing the hold", "did not answer within"}, false},
		{"the start fails twice", func(te *testEnv) { te.mgr.Fail("start "+unitA, boom) },
			[]string{"stop --alone " + holdA, "start " + unitA, "start " + unitA}, []string{"restore: " + unitA + " inactive after the start (job failed)"}, false},
		{"the containers do not come back: restored all the same", func(te *testEnv) {
			te.pods.seq = [][]podman.Container{running("a-app")}
		}, []string{"stop --alone " + holdA, "start " + unitA}, []string{"stack a did not come back within start_timeout 100ms: 1 of 2 containers running (a-db: missing)"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te, "")
			p := planA(invA, nil, held(true, false, false, "a-app", "a-db"))
			p.Settings.StopTimeout, p.Settings.StartTimeout = 100*time.Millisecond, 100*time.Millisecond
			te.pods.seq = [][]podman.Container{running("a-app", "a-db")}
			te.savePlan(t, p)
			tc.setup(te)
			err := Restore(context.Background(), te.Env, p)
			if tc.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want %q", err, w)
				}
			}
			te.changes(t, tc.changes...)
			d := te.plan(t)
			if d.Restored != tc.restored || d.LeftDown() == tc.restored {
				t.Errorf("plan %+v, want restored %v", d, tc.restored)
			}
		})
	}
}

func TestRestorePlanCannotBeSaved(t *testing.T) {
	te := newEnv(t, invA)
	restoreWorld(te, "")
	p := planA(invA, nil, held(true, false, false))
	te.unwritable(t)
	if err := Restore(context.Background(), te.Env, p); err == nil || !strings.Contains(err.Error(), "saving the plan") {
		t.Fatalf("got %v", err)
	}
	te.changes(t, "stop --alone "+holdA, "start "+unitA)
}

// ---------------------------------------------------------------- startAndSettle

func TestStartAndSettle(t *testing.T) {
	const bound = 80 * time.Millisecond
	start := "start " + unitA
	for _, tc := range []struct {
		name    string
		setup   func(te *testEnv)
		starts  int
		wantErr []string // nil = success
		warned  bool
	}{
		{name: "up at once", starts: 1},
		{name: "activating for a few polls", starts: 1, setup: func(te *testEnv) {
			n := 0
			te.mgr.On("show "+unitA, func() {
				if n++; n < 3 {
					te.mgr.Set("activating", unitA)
				} else {
					te.mgr.Set("active", unitA)
				}
			})
		}},
		{name: "an error, yet the unit is up (daemon-reexec)", starts: 1, warned: true, setup: func(te *testEnv) {
			te.mgr.Fail(start, errors.New("Connection reset by peer")).On(start, func() { te.mgr.Set("active", unitA) })
		}},
		{name: "an error, the unit down: started once more", starts: 2, setup: func(te *testEnv) {
			te.mgr.Fail(start, errors.New("Connection reset by peer")).On(start, func() { te.mgr.Fail(start, nil) })
		}},
		{name: "an error twice", starts: 2, setup: func(te *testEnv) {
			te.mgr.Fail(start, errors.New("Job for a-stack.service failed"))
		}, wantErr: []string{"restore: " + unitA + " inactive after the start (Job for a-stack.service failed)"}},
		{name: "destructive: not retried", starts: 1, setup: func(te *testEnv) {
			te.mgr.Fail(start, errors.New("Transaction for a-stack.service/start is destructive (backup-hold@a.service has 'start' job queued)"))
		}, wantErr: []string{"restore: " + unitA + " inactive after the start", "is destructive"}},
		{name: "slower than start_timeout, up in the end", starts: 1, setup: func(te *testEnv) {
			te.mgr.On(start, func() { time.Sleep(bound + 30*time.Millisecond); te.mgr.Set("activating", unitA) })
			n := 0
			te.mgr.On("show "+unitA, func() {
				if n++; n == 3 {
					te.mgr.Set("active", unitA)
				}
			})
		}, wantErr: []string{"restore: starting " + unitA + " took longer than start_timeout 80ms (raise start_timeout in the stack file); it is up now"}},
		{name: "slower than start_timeout, never up", starts: 1, setup: func(te *testEnv) {
			te.mgr.On(start, func() { time.Sleep(bound + 30*time.Millisecond) })
		}, wantErr: []string{"restore: " + unitA + " inactive not up within start_timeout 80ms"}},
		{name: "the start succeeds, the unit fails at once", starts: 1, setup: func(te *testEnv) {
			te.mgr.On("show "+unitA, func() { te.mgr.Set("failed", unitA) })
		}, wantErr: []string{"restore: " + unitA + " failed after the start"}},
		{name: "the manager does not answer", starts: 1, setup: func(te *testEnv) {
			te.mgr.Fail("show "+unitA, errors.New("manager gone"))
		}, wantErr: []string{"restore: the manager did not answer within 80ms: manager gone"}},
		{name: "the manager answers again after a re-exec", starts: 1, setup: func(te *testEnv) {
			te.mgr.Fail("show "+unitA, errors.New("manager gone"))
			n := 0
			te.mgr.On("show "+unitA, func() {
				if n++; n == 3 {
					te.mgr.Fail("show "+unitA, nil)
				}
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			if tc.setup != nil {
				tc.setup(te)
			}
			t0 := time.Now()
			_, err := startAndSettle(context.Background(), te.Env, bound, []string{unitA})
			if d := time.Since(t0); d > 3*bound+time.Second {
				t.Errorf("took %s", d)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want %q", err, w)
				}
			}
			if got := count(te.mgr.Calls(), start); got != tc.starts {
				t.Errorf("%d starts, want %d", got, tc.starts)
			}
			if got := strings.Contains(te.log.String(), "yet every unit is up"); got != tc.warned {
				t.Errorf("warned %v, want %v", got, tc.warned)
			}
		})
	}
}

func TestStartAndSettleCanceled(t *testing.T) {
	te := newEnv(t, invA)
	ctx, cancel := context.WithCancel(context.Background())
	te.mgr.On("start "+unitA, func() { te.mgr.Set("activating", unitA); cancel() })
	if _, err := startAndSettle(ctx, te.Env, time.Second, []string{unitA}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// ---------------------------------------------------------------- CameBack

func TestCameBack(t *testing.T) {
	const timeout = 80 * time.Millisecond
	for _, tc := range []struct {
		name       string
		containers []string // running at the gate
		seq        [][]podman.Container
		err        error
		wantErr    string // "" = nil
		calls      int    // exact; -1 = at least 3
	}{
		{name: "none ran at the gate", seq: nil, calls: 0},
		{name: "all run at once", containers: []string{"x", "y"}, seq: [][]podman.Container{running("y", "x", "extra")}, calls: 1},
		{name: "comes back after a few polls", containers: []string{"x", "y"},
			seq:   [][]podman.Container{nil, {ctr("x", "created"), ctr("y", "running")}, {ctr("x", "starting"), ctr("y", "running")}, running("x", "y")},
			calls: 4},
		{name: "a missing container is named", containers: []string{"x", "y"}, seq: [][]podman.Container{running("y")}, calls: -1,
			wantErr: "stack a did not come back within start_timeout 80ms: 1 of 2 containers running (x: missing)"},
		{name: "an exited container is named with its status", containers: []string{"x", "y"},
			seq:     [][]podman.Container{{{Name: "x", State: "exited", Status: "Exited (125) 3 seconds ago"}, ctr("y", "exited")}},
			calls:   -1,
			wantErr: "0 of 2 containers running (x: exited (125) 3 seconds ago, y: exited)"},
		{name: "podman not installed", containers: []string{"x"}, err: errNoPodman, calls: 1},
		{name: "podman fails throughout", containers: []string{"x"}, err: errors.New("podman ps: exit status 125"), calls: -1,
			wantErr: "stack a: cannot tell whether it came back: podman ps: exit status 125"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.pods.seq, te.pods.err = tc.seq, tc.err
			p := planA(invA, nil, held(true, false, false, tc.containers...))
			p.Settings.StartTimeout = timeout
			start := time.Now()
			err := CameBack(context.Background(), te.Env, p)
			if d := time.Since(start); d > timeout+time.Second {
				t.Errorf("took %s", d)
			}
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr && !strings.HasSuffix(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if tc.calls >= 0 && te.pods.n() != tc.calls {
				t.Errorf("asked podman %d times, want %d", te.pods.n(), tc.calls)
			}
			if tc.calls < 0 && te.pods.n() < 3 {
				t.Errorf("asked podman %d times, want a few", te.pods.n())
			}
		})
	}
}

func TestCameBackCanceled(t *testing.T) {
	te := newEnv(t, invA)
	te.pods.seq = [][]podman.Container{nil}
	p := planA(invA, nil, held(true, false, false, "x"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := CameBack(ctx, te.Env, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// ---------------------------------------------------------------- Finish

// hookLog appends name to the file $HOOKLOG.
func hookLog(kind, name string, fail bool) Hook {
	script := fmt.Sprintf(`echo "%s $SERVICE_RESULT" >> "$HOOKLOG"`, name)
	if fail {
		script += "; exit 7"
	}
	return Hook{Kind: kind, Command: []string{"sh", "-c", script}}
}

func TestFinish(t *testing.T) {
	allHooks := []Hook{
		// In file order, mixed kinds: finish runs them by kind.
		hookLog("verify", "verify", false),
		hookLog("pre_stop", "pre_stop (not finish's)", false),
		hookLog("post_backup", "post_backup-1", false),
		hookLog("post_start", "post_start", false),
		hookLog("pre_start", "pre_start", false),
		hookLog("post_backup", "post_backup-2", false),
	}
	for _, tc := range []struct {
		name     string
		mod      func(p *Plan)
		setup    func(te *testEnv)
		order    []string
		changes  []string
		failures []string // prefixes, in order
		finished bool
	}{
		{name: "hooks around the restore, in order", mod: func(p *Plan) { p.Settings.Hooks = allHooks },
			order:   []string{"post_backup-1", "post_backup-2", "pre_start", "restore", "post_start", "verify"},
			changes: []string{"stop --alone " + holdA, "start " + unitA}, finished: true},
		{name: "failures are recorded, every step still runs", mod: func(p *Plan) {
			p.Settings.Hooks = []Hook{hookLog("post_backup", "post_backup", true), hookLog("pre_start", "pre_start", false),
				hookLog("verify", "verify", true), func() Hook { h := hookLog("post_start", "post_start", true); h.IgnoreFailure = true; return h }()}
		}, order: []string{"post_backup", "pre_start", "restore", "post_start", "verify"},
			changes:  []string{"stop --alone " + holdA, "start " + unitA},
			failures: []string{"hook post_backup: sh: failed (exit 7)", "hook verify: sh: failed (exit 7)"}, finished: true},
		{name: "the restore fails: left down, not finished", mod: func(p *Plan) { p.Settings.Hooks = allHooks },
			setup:    func(te *testEnv) { te.mgr.Fail("start "+unitA, errors.New("Transaction is destructive")) },
			order:    []string{"post_backup-1", "post_backup-2", "pre_start", "restore", "post_start", "verify"},
			changes:  []string{"stop --alone " + holdA, "start " + unitA},
			failures: []string{"restore: " + unitA + " inactive after the start (Transaction is destructive)"}, finished: false},
		{name: "never held: nothing to restore, finished", mod: func(p *Plan) {
			p.Held, p.HeldAt = false, time.Time{}
			p.Settings.Hooks = allHooks
		}, order: []string{"post_backup-1", "post_backup-2", "pre_start", "post_start", "verify"}, finished: true},
		{name: "the containers do not come back: recorded, finished", mod: func(p *Plan) {
			p.Containers = []string{"a-app"}
			p.Settings.StartTimeout = 50 * time.Millisecond
		}, setup: func(te *testEnv) { te.pods.seq = [][]podman.Container{{ctr("a-app", "exited")}} },
			order: []string{"restore"}, changes: []string{"stop --alone " + holdA, "start " + unitA},
			failures: []string{"stack a did not come back within start_timeout 50ms: 0 of 1 containers running (a-app: exited)"}, finished: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			restoreWorld(te, invA)
			logFile := filepath.Join(t.TempDir(), "hooks")
			t.Setenv("HOOKLOG", logFile)
			te.mgr.On("start "+unitA, func() {
				f, _ := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
				fmt.Fprintln(f, "restore")
				f.Close()
			})
			if tc.setup != nil {
				tc.setup(te)
			}
			p := planA(invA, nil, held(true, false, false), tc.mod)
			te.savePlan(t, p)
			Finish(context.Background(), te.Env, p, []string{"SERVICE_RESULT=success"})
			b, _ := os.ReadFile(logFile)
			var order []string
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l == "" {
					continue
				}
				name, result, _ := strings.Cut(l, " ")
				if name != "restore" && result != "success" {
					t.Errorf("hook %s got SERVICE_RESULT %q", name, result)
				}
				order = append(order, name)
			}
			if !reflect.DeepEqual(order, tc.order) {
				t.Errorf("order %q, want %q", order, tc.order)
			}
			te.changes(t, tc.changes...)
			d := te.plan(t)
			if len(d.Failures) != len(tc.failures) {
				t.Fatalf("failures %q, want %q", d.Failures, tc.failures)
			}
			for i, f := range tc.failures {
				if !strings.HasPrefix(d.Failures[i], f) {
					t.Errorf("failure %d: %q, want %q", i, d.Failures[i], f)
				}
			}
			if d.Finished != tc.finished || (d.Finished && d.FinishedAt.IsZero()) {
				t.Errorf("finished %v, want %v", d.Finished, tc.finished)
			}
			if d.LeftDown() == tc.finished {
				t.Errorf("left down %v", d.LeftDown())
			}
			if still := strings.Contains(te.log.String(), "still held down"); still == tc.finished {
				t.Errorf("'still held down' said: %v\n%s", still, te.log)
			}
		})
	}
}

func TestFinishSaysWhatChanged(t *testing.T) {
	te := newEnv(t, invA)
	restoreWorld(te, invA)
	dir := t.TempDir()
	stackFile, cfgFile := filepath.Join(dir, "a.hcl"), filepath.Join(dir, "config.hcl")
	for _, f := range []string{stackFile, cfgFile} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st := stackA(nil)
	st.File = stackFile
	p := NewPlan(&hcl.Config{File: cfgFile}, st, invA)
	held(true, false, false)(p)
	if err := os.Remove(stackFile); err != nil {
		t.Fatal(err)
	}
	Finish(context.Background(), te.Env, p, nil)
	if !strings.Contains(te.log.String(), stackFile+" changed during the backup; this run keeps the settings it started with") ||
		strings.Contains(te.log.String(), cfgFile+" changed") {
		t.Errorf("log:\n%s", te.log)
	}
	if !p.Finished || !p.Restored {
		t.Errorf("plan %+v", p)
	}
}

func TestFinishPlanCannotBeSaved(t *testing.T) {
	te := newEnv(t, invA)
	restoreWorld(te, invA)
	p := planA(invA, nil, func(p *Plan) { p.UnitActive = true })
	te.unwritable(t)
	Finish(context.Background(), te.Env, p, nil)
	if !strings.Contains(te.log.String(), "saving the plan") {
		t.Errorf("log:\n%s", te.log)
	}
}

// ---------------------------------------------------------------- Release

func TestRelease(t *testing.T) {
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
			if err := Release(te.Env, "a"); err != nil {
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
	t.Run("unwritable runtime directory", func(t *testing.T) {
		te := newEnv(t, invA)
		f := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		te.Dir = filepath.Join(f, "sub")
		if err := Release(te.Env, "a"); err == nil || !strings.Contains(err.Error(), "releasing the slot") {
			t.Fatalf("got %v", err)
		}
	})
}

// ---------------------------------------------------------------- Recover

func TestRecover(t *testing.T) {
	const why = "at manager start"
	for _, tc := range []struct {
		name     string
		mod      func(p *Plan)
		setup    func(te *testEnv)
		restored bool
		wantErr  string
		changes  []string
		saved    bool // the plan on disk changed
		finished bool
		failures []string // prefixes
	}{
		{name: "finished: nothing", mod: func(p *Plan) { held(true, false, false)(p); p.Finished = true }, finished: true},
		{name: "its invocation still runs: untouched", mod: held(true, false, false), setup: func(te *testEnv) {
			te.mgr.SetProp(bkA, "InvocationID", "inv-old").Set("active", bkA)
		}},
		{name: "its invocation is still finishing (deactivating): untouched", mod: held(true, false, false), setup: func(te *testEnv) {
			te.mgr.SetProp(bkA, "InvocationID", "inv-old").Set("deactivating", bkA)
		}},
		{name: "left down: restored by its policy", mod: held(true, true, false), restored: true,
			changes: []string{"stop --alone " + holdA, "start " + unitA + " " + sockA}, saved: true, finished: true,
			failures: []string{"left down by a backup interrupted at "}},
		{name: "left down, policy always", mod: func(p *Plan) { held(false, false, false)(p); p.Settings.RestorePolicy = hcl.RestoreAlways },
			restored: true, changes: []string{"stop --alone " + holdA, "start " + unitA + " " + sockA}, saved: true, finished: true,
			failures: []string{"left down by a backup interrupted at "}},
		{name: "left down, the unit now runs another invocation", mod: held(true, false, false), setup: func(te *testEnv) {
			te.mgr.SetProp(bkA, "InvocationID", "inv-new").Set("active", bkA)
		}, restored: true, changes: []string{"stop --alone " + holdA, "start " + unitA}, saved: true, finished: true,
			failures: []string{"left down by a backup interrupted at "}},
		{name: "not held: finished with the reason", mod: func(p *Plan) { p.UnitActive = true },
			saved: true, finished: true, failures: []string{"interrupted before it finished (at manager start)"}},
		{name: "held and restored, not finished: finished with the reason", mod: func(p *Plan) { held(true, false, false)(p); p.Restored = true },
			saved: true, finished: true, failures: []string{"interrupted before it finished (at manager start)"}},
		{name: "the restore fails: stays unfinished", mod: held(true, false, false), setup: func(te *testEnv) {
			te.mgr.Fail("start "+unitA, errors.New("unit is masked"))
		}, wantErr: "unit is masked", changes: []string{"stop --alone " + holdA, "start " + unitA, "start " + unitA}, saved: true,
			failures: []string{"restore: " + unitA + " inactive after the start (unit is masked)"}},
		{name: "restored, the containers do not come back: finished, both recorded", mod: held(true, false, false, "a-app"),
			setup: func(te *testEnv) { te.pods.seq = [][]podman.Container{nil} }, restored: true,
			changes: []string{"stop --alone " + holdA, "start " + unitA}, saved: true, finished: true,
			failures: []string{"left down by a backup interrupted at ", "stack a did not come back within start_timeout"}},
		{name: "the manager cannot say whether it runs", mod: held(true, false, false), setup: func(te *testEnv) {
			te.mgr.Fail("show "+bkA, errors.New("no user manager"))
		}, wantErr: "no user manager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, "") // recover runs outside any backup unit
			restoreWorld(te, "")
			if tc.setup != nil {
				tc.setup(te)
			}
			p := planA("inv-old", odSocket, tc.mod)
			p.Settings.StartTimeout = 60 * time.Millisecond
			te.savePlan(t, p)
			before, _ := os.ReadFile(planPath(te.StateDir, "a"))
			restored, err := Recover(context.Background(), te.Env, p, why)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if restored != tc.restored {
				t.Errorf("restored %v, want %v", restored, tc.restored)
			}
			te.changes(t, tc.changes...)
			after, _ := os.ReadFile(planPath(te.StateDir, "a"))
			if saved := !bytes.Equal(before, after); saved != tc.saved {
				t.Errorf("plan saved %v, want %v", saved, tc.saved)
			}
			d := te.plan(t)
			if d.Finished != tc.finished || p.Finished != tc.finished {
				t.Errorf("finished %v, want %v", d.Finished, tc.finished)
			}
			if !tc.saved {
				return
			}
			if len(d.Failures) != len(tc.failures) {
				t.Fatalf("failures %q, want %q", d.Failures, tc.failures)
			}
			for i, f := range tc.failures {
				if !strings.HasPrefix(d.Failures[i], f) {
					t.Errorf("failure %d: %q, want %q", i, d.Failures[i], f)
				}
			}
			if tc.restored && (!d.Restored || !strings.Contains(d.Failures[0], "restored at manager start at ")) {
				t.Errorf("plan %+v", d)
			}
			if tc.restored && !strings.Contains(te.log.String(), "inv-old") {
				t.Errorf("the journal does not name the interrupted run:\n%s", te.log)
			}
		})
	}
}

// A plan is read back from disk; one whose hook has no command (edited by
// hand, or written by another version) must fail that hook, not the whole
// finish: a panic before the restore leaves the stack held down.
func TestRunHookEmptyCommandInAPlan(t *testing.T) {
	te := newEnv(t, invA)
	restoreWorld(te, invA)
	p := planA(invA, nil, held(true, false, false), func(p *Plan) { p.Settings.Hooks = []Hook{{Kind: "post_backup"}} })
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("finish panicked: %v", r)
			}
		}()
		Finish(context.Background(), te.Env, p, nil)
	}()
	if te.mgr.State(unitA) != "active" || len(p.Failures) != 1 {
		t.Errorf("stack %s, failures %q", te.mgr.State(unitA), p.Failures)
	}
}

// TestFromUnit: a step refuses unless its INVOCATION_ID is the one the backup unit runs now
// (typed in a shell: none, or a terminal service's own).
func TestFromUnit(t *testing.T) {
	for _, tc := range []struct {
		name, inv, unitInv, state string
		ok                        bool
	}{
		{"the unit's own process", invA, invA, "activating", true},
		{"in ExecStopPost", invA, invA, "deactivating", true},
		{"typed in a shell", "", invA, "activating", false},
		{"a shell of another service", "inv-terminal", invA, "activating", false},
		{"the unit is not running", invA, invA, "inactive", false},
		{"another run of the unit", invA, "inv-next", "activating", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, tc.inv)
			te.mgr.SetProp(bkA, "InvocationID", tc.unitInv).Set(tc.state, bkA)
			err := te.FromUnit(context.Background(), bkA)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrNotFromUnit)) {
				t.Fatalf("got %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestStatusTexts: the steps set the unit's live status line.
func TestStatusTexts(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	te := newEnv(t, invA)
	te.Status = livestatus.NewWith(func(s string) error { mu.Lock(); sent = append(sent, s); mu.Unlock(); return nil }, 0)
	te.mgr.Set("active", unitA).Conflicts(holdA, unitA).Conflicts(unitA, holdA)
	p := planA(invA, nil)
	te.savePlan(t, p)
	if err := Hold(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	Finish(context.Background(), te.Env, p, nil)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sent, []string{livestatus.Stopping, livestatus.Restoring}) {
		t.Fatalf("sent %q", sent)
	}
}
