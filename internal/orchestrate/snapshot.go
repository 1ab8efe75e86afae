package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/livestatus"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/snapshot"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Snapshot mode: the stack is down only while its data is frozen.
//
//	gate (plans the snapshots: a refusal stops nothing) → pre_stop → hold →
//	wait-stopped → snapshot → post_stop → resume (pre_start, the hold ends,
//	the stack starts, post_start) → pre_backup → run (the jobs read the
//	snapshots) → finish (post_backup, the restore as a safety net, the
//	snapshots removed, verify).
//
// Until the snapshots exist a start of the stack must still fail the backup.
// PartOf= cannot say so here (the hold ends while the backup goes on, and a
// stop of the hold would stop the backup), so wait-stopped and the snapshot
// step check that the hold is still the one this run started.

// snapshotRemoveTimeout bounds the removal of a run's snapshots; the
// unit's TimeoutStopSec= covers it.
const snapshotRemoveTimeout = hcl.SnapshotRemoveTimeout

func (e *Env) snapshots() *snapshot.Snapshotter {
	if e.Snapshots == nil {
		e.Snapshots = snapshot.ForUser()
	}
	return e.Snapshots
}

// planSnapshots decides, at the gate, how each path is frozen: a path that
// cannot be frozen as asked fails the backup here, before anything stops.
func planSnapshots(ctx context.Context, e *Env, p *Plan) error {
	sn := p.Settings.Snapshot
	if sn == nil {
		return nil
	}
	items, err := e.snapshots().Plan(ctx, sn.Paths, sn.Into, p.Stack, sn.Method)
	if err != nil {
		return fmt.Errorf("%w: %w; nothing was stopped (see \"Snapshot mode\" in the README)", ErrPrecondition, err)
	}
	p.Snapshots = items
	var how []string
	for _, it := range items {
		how = append(how, fmt.Sprintf("%s (%s, %s) -> %s", it.Source, it.Method, it.FSType, it.Dest))
	}
	e.info("snapshot plan: %s", strings.Join(how, "; "))
	return nil
}

// errStartedEarly is a start of the stack before its data was frozen.
var errStartedEarly = errors.New("the stack was started before its data was frozen")

// stillHeld fails when the hold unit is no longer active with invocation inv
// ("" for any): someone started the stack (or its socket), which stopped it.
func stillHeld(ctx context.Context, e *Env, p *Plan, inv string) error {
	hold := systemd.HoldService(p.Stack)
	ps, err := e.Manager.Show(ctx, []string{hold}, "InvocationID", "ActiveState")
	if err != nil {
		return nil // the manager is re-executing: the next look decides
	}
	state, got := ps[0]["ActiveState"], ps[0]["InvocationID"]
	if state == "active" && (inv == "" || got == inv) {
		return nil
	}
	up, _ := manager.Up(ctx, e.Manager, p.Units()...)
	who := ""
	for i, u := range p.Units() {
		if i < len(up) && up[i] {
			who = u + " was started and "
			break
		}
	}
	return fmt.Errorf("%w: %s%s is %s; a snapshot of a running stack is not the one that was asked for, no job was started", errStartedEarly, who, hold, state)
}

// holdInvocation returns the invocation of the active hold unit.
func holdInvocation(ctx context.Context, e *Env, p *Plan) (string, error) {
	ps, err := e.Manager.Show(ctx, []string{systemd.HoldService(p.Stack)}, "InvocationID", "ActiveState")
	if err != nil {
		return "", fmt.Errorf("asking the manager about %s: %w", systemd.HoldService(p.Stack), err)
	}
	if ps[0]["ActiveState"] != "active" {
		return "", stillHeld(ctx, e, p, "")
	}
	return ps[0]["InvocationID"], nil
}

// Snapshot is the step after wait-stopped in snapshot mode: it makes the
// planned snapshots while the stack is held down with every container
// stopped, all or none, bounded by the snapshot block's timeout. A start of
// the stack meanwhile cancels it; a hold that is not the same afterwards
// (started and stopped again) undoes it.
func Snapshot(ctx context.Context, e *Env, p *Plan) error {
	if !p.SnapshotMode() || len(p.Snapshots) == 0 {
		return errors.New("the plan of this run has no snapshot (the stack file had no snapshot block at the gate)")
	}
	if !p.Held || !p.Stopped {
		return fmt.Errorf("stack %s is not held down with its containers stopped (plan held: %v, containers stopped: %v); no snapshot was made", p.Stack, p.Held, p.Stopped)
	}
	inv, err := holdInvocation(ctx, e, p)
	if err != nil {
		return err
	}
	e.Status.Set(livestatus.Snapshotting)
	timeout := p.Settings.Snapshot.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wctx, stop := context.WithCancelCause(tctx)
	defer stop(nil)
	go func() {
		if u, ok := <-WatchUp(wctx, e, p.Units(), 250*time.Millisecond); ok {
			stop(fmt.Errorf("%w: %s was started", errStartedEarly, u))
		}
	}()
	began := time.Now()
	err = e.snapshots().Take(wctx, p.Snapshots)
	switch {
	case err != nil && errors.Is(context.Cause(wctx), errStartedEarly):
		return fmt.Errorf("%w; the snapshot was not finished and is removed, no job was started", context.Cause(wctx))
	case err != nil && tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		return fmt.Errorf("snapshot: not done within %s (timeout in the snapshot block): %w; no job was started", timeout, err)
	case err != nil:
		return fmt.Errorf("%w; no job was started", err)
	}
	if err := stillHeld(ctx, e, p, inv); err != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), snapshotRemoveTimeout)
		defer rcancel()
		if rerr := e.snapshots().Remove(rctx, p.Snapshots); rerr != nil {
			return errors.Join(err, fmt.Errorf("removing the snapshot: %w", rerr))
		}
		return err
	}
	p.SnapshotTaken, p.SnapshotTakenAt = true, time.Now()
	if err := e.save(p); err != nil {
		return err
	}
	var dests []string
	for _, it := range p.Snapshots {
		dests = append(dests, it.Dest)
	}
	e.info("froze %d path(s) in %s (%s): %s", len(p.Snapshots), time.Since(began).Round(time.Millisecond), p.Snapshots[0].Method, strings.Join(dests, ", "))
	return nil
}

// Resume is the step after the snapshot (and the post_stop hooks) in
// snapshot mode: pre_start hooks, the restore (the hold ends, the stack
// starts again as the policy says, its containers are checked), post_start
// hooks. The stack's downtime ends here; the jobs then read the snapshots.
// A failed restore fails the step (no job runs; finish tries again); a
// failed hook is recorded and the backup goes on, its data being frozen.
func Resume(ctx context.Context, e *Env, p *Plan) error {
	if !p.SnapshotTaken || p.SnapshotRemoved {
		return fmt.Errorf("stack %s has no snapshot of this run; it stays down until finish restores it, and no job was started", p.Stack)
	}
	e.Status.Set(livestatus.Resuming)
	for _, kind := range []string{"pre_start", "post_start"} {
		if kind == "post_start" {
			if err := Restore(ctx, e, p); err != nil {
				return err
			}
		}
		for i := range p.HooksOf(kind) {
			if err := RunHook(ctx, e, p, kind, i+1, nil); err != nil {
				e.error("%v", err)
				p.Fail(err.Error())
			}
		}
		p.HooksRun = append(p.HooksRun, kind)
		if err := e.save(p); err != nil {
			return err
		}
	}
	return nil
}

// waitNoReader waits, at most readerWait, until Duplicati runs and queues
// no task; it returns what Duplicati still does when the wait ran out, ""
// when it is idle or cannot be asked (three failures in a row).
func waitNoReader(ctx context.Context, e *Env) string {
	wctx, cancel := context.WithTimeout(ctx, readerWait)
	defer cancel()
	failures, last, said := 0, "", false
	for {
		idle, words, err := e.DuplicatiIdle(wctx)
		switch {
		case err == nil && idle:
			return ""
		case err != nil && wctx.Err() == nil:
			if failures++; failures >= 3 {
				e.warn("Duplicati cannot be asked whether it still reads the snapshot (%v); removing it", err)
				return ""
			}
		case err == nil:
			failures, last = 0, words
			if !said {
				e.info("Duplicati still runs a task (%s); waiting for it to end before removing the snapshot", words)
				said = true
			}
		}
		select {
		case <-wctx.Done():
			if last == "" {
				last = "no answer"
			}
			return last
		case <-time.After(e.poll()):
		}
	}
}

// SnapshotsReady checks, for the run step, that this run's snapshots exist:
// the jobs must never read a path that is not the frozen copy.
func SnapshotsReady(p *Plan) error {
	if !p.SnapshotTaken || p.SnapshotRemoved {
		return fmt.Errorf("stack %s has no snapshot of this run (taken: %v, removed: %v); no job was started", p.Stack, p.SnapshotTaken, p.SnapshotRemoved)
	}
	for _, it := range p.Snapshots {
		if _, err := os.Lstat(it.Dest); err != nil {
			return fmt.Errorf("the snapshot %s of %s is gone (%v); no job was started", it.Dest, it.Source, err)
		}
	}
	return nil
}

// readerWait bounds how long a removal waits for Duplicati to end a task
// that may still read the snapshot; a var for tests.
var readerWait = 5 * time.Minute

// RemoveSnapshots removes the run's snapshots unless that was done: on
// every way out of a run (finish, recover). A failure is recorded in the
// plan, so the run fails saying what is left; the next run replaces it.
//
// With waitReader (the job did not end well, or the run was interrupted),
// it first waits until Duplicati runs and queues no task (DuplicatiIdle):
// a task orphaned by a killed helper goes on reading, and a snapshot
// removed under it would become a backup version with files missing. A
// task still running after readerWait keeps the snapshot, and the run fails
// saying so; an unreachable Duplicati reads nothing, so it does not keep it.
func RemoveSnapshots(ctx context.Context, e *Env, p *Plan, waitReader bool) {
	if len(p.Snapshots) == 0 || p.SnapshotRemoved {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, snapshotRemoveTimeout)
	defer cancel()
	if waitReader && p.SnapshotTaken && e.DuplicatiIdle != nil {
		if busy := waitNoReader(rctx, e); busy != "" {
			msg := fmt.Sprintf("the snapshot %s was kept: Duplicati still runs a task after %s (%s), which may be reading it; the next backup of the stack replaces and removes it",
				filepath.Dir(p.Snapshots[0].Dest), readerWait, busy)
			e.error("%s", msg)
			p.Fail(msg)
			return
		}
	}
	began := time.Now()
	if err := e.snapshots().Remove(rctx, p.Snapshots); err != nil {
		msg := fmt.Sprintf("the snapshot could not be removed, remove it by hand (the next backup replaces it): %v", err)
		e.error("%s", msg)
		p.Fail(msg)
		return
	}
	p.SnapshotRemoved = true
	if err := e.save(p); err != nil {
		e.error("%v", err)
	}
	e.info("removed the snapshot (%s)", time.Since(began).Round(time.Millisecond))
}
