package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/podman"
	"github.com/backup-stack/backup-stack/internal/snapshot"
)

// snapRunner stands in for cp, rm and btrfs: it records every command and
// makes (cp, btrfs snapshot) or removes (rm) the destination, so that the
// steps' checks of the file system see what the real commands leave.
type snapRunner struct {
	mu    sync.Mutex
	calls []string
	// during runs inside the first cp, as a slow copy would let things happen.
	during func()
	fail   func(argv []string) error
}

func (r *snapRunner) Run(ctx context.Context, name string, args ...string) error {
	argv := append([]string{name}, args...)
	r.mu.Lock()
	r.calls = append(r.calls, strings.Join(argv, " "))
	during := r.during
	if name == "cp" {
		r.during = nil
	}
	r.mu.Unlock()
	if name == "cp" && during != nil {
		during()
		// A copy goes on until it ends or is cancelled.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if r.fail != nil {
		if err := r.fail(argv); err != nil {
			return err
		}
	}
	if name == "cp" {
		return os.MkdirAll(argv[len(argv)-1], 0o755)
	}
	return nil
}

func (r *snapRunner) Stream(ctx context.Context, _ io.Writer, name string, args ...string) error {
	return r.Run(ctx, name, args...)
}

func (r *snapRunner) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// snapStack is stack a in snapshot mode, copying two directories of dir
// into dir/snaps.
func snapStack(t *testing.T, dir string) *hcl.Stack {
	st := stackA(nil)
	for _, n := range []string{"data", "db"} {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st.Snapshot = &hcl.Snapshot{Paths: []string{filepath.Join(dir, "data"), filepath.Join(dir, "db")},
		Method: "copy", Into: filepath.Join(dir, "snaps"), Timeout: time.Minute}
	return st
}

// snapEnv is an env whose snapshots go through a snapRunner, with stack a
// held down (restoreWorld) and its plan gated in snapshot mode.
func snapEnv(t *testing.T) (*testEnv, *snapRunner, *Plan) {
	te := newEnv(t, invA)
	restoreWorld(te, invA)
	r := &snapRunner{}
	te.Snapshots = snapshot.New(r)
	st := snapStack(t, t.TempDir())
	p, err := Gate(context.Background(), te.Env, cfgA, st, time.Second, idleNow)
	if err != nil {
		t.Fatal(err)
	}
	p.Held, p.HeldAt, p.Stopped, p.UnitActive = true, time.Now().Add(-time.Second), true, true
	te.mgr.SetProp(holdA, "InvocationID", "hold-1")
	te.savePlan(t, p)
	return te, r, p
}

func TestGatePlansTheSnapshot(t *testing.T) {
	te, _, p := snapEnv(t)
	d := te.plan(t)
	if len(d.Snapshots) != 2 || d.Snapshots[0].Method != snapshot.Copy || filepath.Base(d.Snapshots[1].Dest) != "db" ||
		filepath.Base(filepath.Dir(d.Snapshots[0].Dest)) != "a" {
		t.Fatalf("planned snapshots %+v", d.Snapshots)
	}
	if !reflect.DeepEqual(d.Snapshots, p.Snapshots) || !d.SnapshotMode() {
		t.Errorf("the saved plan %+v differs from the gate's %+v", d.Snapshots, p.Snapshots)
	}
}

// A snapshot that cannot be made as asked fails the gate: nothing stops.
func TestGateRefusesAnImpossibleSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name, method, want string
		mod                func(st *hcl.Stack)
	}{
		{"btrfs on a plain directory", "btrfs", "is not a btrfs subvolume", nil},
		{"a missing path", "copy", "no such file or directory", func(st *hcl.Stack) { st.Snapshot.Paths[1] += "-gone" }},
		{"into inside the data", "copy", "overlap", func(st *hcl.Stack) { st.Snapshot.Into = filepath.Join(st.Snapshot.Paths[0], "snaps") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			te.mgr.Set("active", unitA)
			st := snapStack(t, t.TempDir())
			st.Snapshot.Method = tc.method
			if tc.mod != nil {
				tc.mod(st)
			}
			_, err := Gate(context.Background(), te.Env, cfgA, st, time.Second, idleNow)
			if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was stopped") {
				t.Fatalf("gate: %v, want a precondition naming %q", err, tc.want)
			}
			te.changes(t)
			if te.plan(t) != nil {
				t.Errorf("a refused gate saved a plan")
			}
		})
	}
}

func TestSnapshotStep(t *testing.T) {
	te, r, p := snapEnv(t)
	if err := Snapshot(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	calls := r.list()
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "cp -a -T -- "+p.Snapshots[0].Source+" ") {
		t.Fatalf("commands %q", calls)
	}
	d := te.plan(t)
	if !d.SnapshotTaken || d.SnapshotTakenAt.IsZero() || d.SnapshotRemoved {
		t.Fatalf("plan after the snapshot: taken %v at %v, removed %v", d.SnapshotTaken, d.SnapshotTakenAt, d.SnapshotRemoved)
	}
	if err := SnapshotsReady(d); err != nil {
		t.Errorf("SnapshotsReady: %v", err)
	}
	te.changes(t) // the stack stays down: resume starts it
}

// Until the snapshot exists, a start of the stack fails the backup, as
// PartOf= does without snapshot mode; what was made is removed.
func TestSnapshotStackStartedEarly(t *testing.T) {
	t.Run("before the snapshot step", func(t *testing.T) {
		te, r, p := snapEnv(t)
		if err := te.mgr.Start(context.Background(), unitA); err != nil { // Conflicts= stop the hold
			t.Fatal(err)
		}
		err := Snapshot(context.Background(), te.Env, p)
		if !errors.Is(err, errStartedEarly) || !strings.Contains(err.Error(), unitA+" was started") {
			t.Fatalf("snapshot: %v", err)
		}
		if c := r.list(); len(c) != 0 {
			t.Errorf("ran %q", c)
		}
		if te.plan(t).SnapshotTaken {
			t.Error("plan says taken")
		}
	})
	t.Run("during the copy", func(t *testing.T) {
		te, r, p := snapEnv(t)
		r.during = func() { _ = te.mgr.Start(context.Background(), unitA) }
		err := Snapshot(context.Background(), te.Env, p)
		if !errors.Is(err, errStartedEarly) || !strings.Contains(err.Error(), "no job was started") {
			t.Fatalf("snapshot: %v", err)
		}
		for _, it := range p.Snapshots {
			if _, err := os.Lstat(it.Dest); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", it.Dest, err)
			}
		}
		if te.plan(t).SnapshotTaken {
			t.Error("plan says taken")
		}
	})
	t.Run("started and stopped again meanwhile", func(t *testing.T) {
		te, r, p := snapEnv(t)
		// Another hold run by the end of the copy: the stack ran in between.
		r.during = func() { te.mgr.SetProp(holdA, "InvocationID", "hold-2") }
		err := Snapshot(context.Background(), te.Env, p)
		if !errors.Is(err, errStartedEarly) {
			t.Fatalf("snapshot: %v", err)
		}
		for _, it := range p.Snapshots {
			if _, err := os.Lstat(it.Dest); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", it.Dest, err)
			}
		}
	})
	t.Run("wait-stopped sees the hold gone", func(t *testing.T) {
		te, _, p := snapEnv(t)
		p.Stopped = false
		te.pods.seq = [][]podman.Container{running("a-app")}
		_ = te.mgr.Start(context.Background(), unitA)
		err := WaitStopped(context.Background(), te.Env, p)
		if !errors.Is(err, errStartedEarly) {
			t.Fatalf("wait-stopped: %v", err)
		}
	})
}

func TestSnapshotFails(t *testing.T) {
	te, r, p := snapEnv(t)
	r.fail = func(argv []string) error {
		if argv[0] == "cp" && strings.HasSuffix(argv[len(argv)-1], "/db") {
			os.MkdirAll(argv[len(argv)-1], 0o755) // half a copy
			return errors.New("cp: error writing: No space left on device")
		}
		return nil
	}
	err := Snapshot(context.Background(), te.Env, p)
	if err == nil || !strings.Contains(err.Error(), "No space left on device") || !strings.Contains(err.Error(), "no job was started") {
		t.Fatalf("snapshot: %v", err)
	}
	for _, it := range p.Snapshots {
		if _, err := os.Lstat(it.Dest); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", it.Dest, err)
		}
	}
	if SnapshotsReady(te.plan(t)) == nil {
		t.Error("SnapshotsReady after a failed snapshot")
	}
}

// resume: pre_start hooks, the restore, post_start hooks; then finish runs
// post_backup, removes the snapshot and runs verify, and neither restores
// nor runs the start hooks again.
func TestResumeThenFinish(t *testing.T) {
	te, _, p := snapEnv(t)
	logFile := filepath.Join(t.TempDir(), "hooks")
	t.Setenv("HOOKLOG", logFile)
	te.mgr.On("start "+unitA, func() {
		f, _ := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		fmt.Fprintln(f, "restore")
		f.Close()
	})
	p.Settings.Hooks = []Hook{hookLog("post_start", "post_start", false), hookLog("pre_start", "pre_start", false),
		hookLog("post_backup", "post_backup", false), hookLog("verify", "verify", false)}
	te.savePlan(t, p)
	if err := Snapshot(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	if err := Resume(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	if te.mgr.State(unitA) != "active" || te.mgr.State(holdA) == "active" {
		t.Fatalf("after resume: stack %s, hold %s", te.mgr.State(unitA), te.mgr.State(holdA))
	}
	d := te.plan(t)
	if !d.Restored || !d.Ran("pre_start") || !d.Ran("post_start") {
		t.Fatalf("plan after resume: restored %v, hooks run %q", d.Restored, d.HooksRun)
	}
	// The job may run now, with the stack up.
	if err := SnapshotsReady(d); err != nil {
		t.Fatal(err)
	}
	Finish(context.Background(), te.Env, d, []string{"SERVICE_RESULT=success"})
	b, _ := os.ReadFile(logFile)
	got := strings.Fields(strings.ReplaceAll(string(b), " success", ""))
	if want := []string{"pre_start", "restore", "post_start", "post_backup", "verify"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	te.changes(t, "stop --alone "+holdA, "start "+unitA)
	d = te.plan(t)
	if !d.Finished || !d.SnapshotRemoved || len(d.Failures) > 0 {
		t.Errorf("plan after finish: finished %v, removed %v, failures %q", d.Finished, d.SnapshotRemoved, d.Failures)
	}
	for _, it := range d.Snapshots {
		if _, err := os.Lstat(it.Dest); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", it.Dest, err)
		}
	}
	if _, err := os.Lstat(filepath.Dir(d.Snapshots[0].Dest)); !os.IsNotExist(err) {
		t.Errorf("<into>/<stack> left behind: %v", err)
	}
}

// A failed snapshot: finish restores the held stack, with the start hooks,
// and there is nothing left to remove.
func TestFinishAfterAFailedSnapshot(t *testing.T) {
	te, r, p := snapEnv(t)
	r.fail = func(argv []string) error { return errors.New("cp: boom") }
	if err := Snapshot(context.Background(), te.Env, p); err == nil {
		t.Fatal("snapshot did not fail")
	}
	d := te.plan(t)
	Finish(context.Background(), te.Env, d, []string{"SERVICE_RESULT=exit-code"})
	te.changes(t, "stop --alone "+holdA, "start "+unitA)
	d = te.plan(t)
	if !d.Finished || !d.Restored || !d.SnapshotRemoved {
		t.Errorf("finished %v, restored %v, removed %v", d.Finished, d.Restored, d.SnapshotRemoved)
	}
}

// A snapshot that cannot be removed fails the run, saying what is left.
func TestFinishSnapshotNotRemovable(t *testing.T) {
	te, r, p := snapEnv(t)
	if err := Snapshot(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	if err := Resume(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	// Not removable: a file where Remove expects to recurse, under a directory it cannot write.
	parent := filepath.Dir(p.Snapshots[0].Dest)
	if os.Geteuid() == 0 {
		r.fail = nil
		te.Snapshots = snapshot.New(&snapRunner{})
		te.Snapshots.Unshare = true // rm through the runner ...
		r2 := &snapRunner{fail: func(argv []string) error {
			if argv[0] == "podman" {
				return errors.New("rm: cannot remove: Permission denied")
			}
			return nil
		}}
		te.Snapshots.Runner = r2
	} else {
		if err := os.Chmod(parent, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(parent, 0o700) })
	}
	Finish(context.Background(), te.Env, te.plan(t), []string{"SERVICE_RESULT=success"})
	d := te.plan(t)
	if d.SnapshotRemoved || len(d.Failures) != 1 || !strings.Contains(d.Failures[0], "the snapshot could not be removed") {
		t.Fatalf("removed %v, failures %q", d.SnapshotRemoved, d.Failures)
	}
	if !d.Finished {
		t.Error("not finished: the stack is up, only the snapshot is left")
	}
}

// A crash after the snapshot: recover removes it (and restores the stack
// if it was still held).
func TestRecoverRemovesTheSnapshot(t *testing.T) {
	for _, resumed := range []bool{false, true} {
		t.Run(fmt.Sprint("resumed=", resumed), func(t *testing.T) {
			te, _, p := snapEnv(t)
			if err := Snapshot(context.Background(), te.Env, p); err != nil {
				t.Fatal(err)
			}
			if resumed {
				if err := Resume(context.Background(), te.Env, p); err != nil {
					t.Fatal(err)
				}
			}
			// The manager crashed: the unit runs no more.
			te.mgr.Set("inactive", bkA).SetProp(bkA, "InvocationID", "")
			if _, err := Recover(context.Background(), te.Env, te.plan(t), "at manager start"); err != nil {
				t.Fatal(err)
			}
			d := te.plan(t)
			if !d.Finished || !d.SnapshotRemoved || !d.Restored {
				t.Errorf("finished %v, removed %v, restored %v", d.Finished, d.SnapshotRemoved, d.Restored)
			}
			if te.mgr.State(unitA) != "active" {
				t.Errorf("stack %s", te.mgr.State(unitA))
			}
			for _, it := range d.Snapshots {
				if _, err := os.Lstat(it.Dest); !os.IsNotExist(err) {
					t.Errorf("%s left behind: %v", it.Dest, err)
				}
			}
		})
	}
}

// After a job that did not end well, the snapshot is removed only once
// Duplicati runs no task (an orphaned one may still read it); a task that
// goes on past the bound keeps it, and the run fails saying so.
func TestRemoveSnapshotsWaitsForTheReader(t *testing.T) {
	defer func(w time.Duration) { readerWait = w }(readerWait)
	readerWait = 300 * time.Millisecond
	for _, tc := range []struct {
		name     string
		result   string
		answers  []answer
		kept     bool
		minCalls int
	}{
		{"success: no wait", "success", []answer{{ready: false, words: "busy"}}, false, 0},
		{"killed helper: waits for the task to end", "signal", []answer{{words: "Active task: [Task 7]"}, {words: "Active task: [Task 7]"}, {ready: true}}, false, 3},
		{"the task goes on: kept", "signal", []answer{{words: "Active task: [Task 7]"}}, true, 1},
		{"Duplicati unreachable: removed", "exit-code", []answer{{err: errDown}}, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te, _, p := snapEnv(t)
			te.Poll = time.Millisecond
			if err := Snapshot(context.Background(), te.Env, p); err != nil {
				t.Fatal(err)
			}
			if err := Resume(context.Background(), te.Env, p); err != nil {
				t.Fatal(err)
			}
			s := &scripted{seq: tc.answers}
			te.DuplicatiIdle = s.idle
			d := te.plan(t)
			Finish(context.Background(), te.Env, d, []string{"SERVICE_RESULT=" + tc.result})
			d = te.plan(t)
			_, err := os.Lstat(d.Snapshots[0].Dest)
			if kept := err == nil; kept != tc.kept || d.SnapshotRemoved == tc.kept {
				t.Fatalf("snapshot kept %v (removed %v), want kept %v", kept, d.SnapshotRemoved, tc.kept)
			}
			if s.n() < tc.minCalls || (tc.minCalls == 0 && s.n() != 0) {
				t.Errorf("asked Duplicati %d times, want at least %d", s.n(), tc.minCalls)
			}
			if tc.kept && (len(d.Failures) != 1 || !strings.Contains(d.Failures[0], "was kept: Duplicati still runs a task")) {
				t.Errorf("failures %q", d.Failures)
			}
			if !tc.kept && len(d.Failures) != 0 {
				t.Errorf("failures %q", d.Failures)
			}
		})
	}
}
