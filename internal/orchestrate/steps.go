// Package orchestrate holds the small steps that backup@<stack>.service
// runs around the Duplicati jobs: the gate (single slot, Duplicati idle,
// required paths, record of what was active), the hold, the wait for the
// containers, the hooks of ExecStopPost=, the restore and the release.
// systemd does the stopping and starting; these steps decide and wait.
package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/podman"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Errors that map to distinct exit codes of backup-stack.
var (
	ErrPrecondition = errors.New("precondition failed")
	ErrGateTimeout  = errors.New("gave up waiting")
	ErrUnreachable  = errors.New("Duplicati unreachable")
	ErrNotFromUnit  = errors.New("not run from backup@.service")
)

// Containers answers which containers of a compose project run.
type Containers interface {
	Running(ctx context.Context, project string) ([]string, error)
}

// Env is what every step needs.
type Env struct {
	// Dir is the runtime state directory (see RuntimeDir).
	Dir string
	// InvocationID of the running backup@<stack>.service.
	InvocationID string
	Manager      manager.Manager
	Containers   Containers
	Log          *slog.Logger
	// Poll is the interval of every wait loop.
	Poll time.Duration
}

func (e *Env) info(format string, args ...any)  { e.Log.Info(fmt.Sprintf(format, args...)) }
func (e *Env) warn(format string, args ...any)  { e.Log.Warn(fmt.Sprintf(format, args...)) }
func (e *Env) error(format string, args ...any) { e.Log.Error(fmt.Sprintf(format, args...)) }

func (e *Env) poll() time.Duration {
	if e.Poll <= 0 {
		return time.Second
	}
	return e.Poll
}

func (e *Env) needInvocation() error {
	if e.InvocationID == "" {
		return fmt.Errorf("%w: INVOCATION_ID is not set; start the backup with `systemctl --user start backup@<stack>`", ErrNotFromUnit)
	}
	return nil
}

// SlotFor returns the slot of this runtime directory, whose holders are
// checked against the manager.
func (e *Env) SlotFor() Slot {
	return Slot{Dir: e.Dir, Alive: func(ctx context.Context, h Holder) (bool, error) {
		ps, err := e.Manager.Show(ctx, []string{systemd.BackupService(h.Stack)}, "InvocationID", "ActiveState")
		if err != nil {
			return false, err
		}
		return ps[0]["InvocationID"] == h.InvocationID && systemd.Running(ps[0]["ActiveState"]), nil
	}}
}

// IdleFunc reports whether Duplicati can take our jobs right now, in words.
type IdleFunc func(ctx context.Context) (ready bool, words string, err error)

// CheckPaths touches every required path (which mounts an autofs entry)
// and fails when one is missing.
func CheckPaths(paths []string) error {
	var errs []error
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			var f *os.File
			if f, err = os.Open(p); err == nil {
				_, _ = f.Readdirnames(1)
				f.Close()
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("required path %s: %w", p, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrPrecondition, errors.Join(errs...))
	}
	return nil
}

// Gate runs before anything is stopped. It waits (stack still up) for the
// single backup slot and for an idle Duplicati, checks the required paths
// and records which of the stack's units are active. It waits at most
// maxWait in all.
func Gate(ctx context.Context, e *Env, st *hcl.Stack, maxWait time.Duration, idle IdleFunc) error {
	if err := e.needInvocation(); err != nil {
		return err
	}
	if err := CheckPaths(st.RequirePaths); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	me := Holder{Stack: st.Name, InvocationID: e.InvocationID, Since: time.Now()}
	err := e.SlotFor().Take(wctx, me, e.poll(), func(h Holder) {
		e.info("waiting for the backup slot: stack %q is being backed up (since %s); stack %q stays up meanwhile",
			h.Stack, h.Since.Format(time.TimeOnly), st.Name)
	})
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w after %s: %w", ErrGateTimeout, maxWait, err)
		}
		return err
	}
	e.info("took the backup slot")
	if err := waitIdle(wctx, e, maxWait, idle); err != nil {
		return err
	}
	if err := CheckPaths(st.RequirePaths); err != nil {
		return err
	}
	return record(ctx, e, st)
}

func waitIdle(ctx context.Context, e *Env, maxWait time.Duration, idle IdleFunc) error {
	var last string
	failures := 0
	for {
		ready, words, err := idle(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return fmt.Errorf("%w after %s for an idle Duplicati (last: %s)", ErrGateTimeout, maxWait, last)
		case err != nil:
			failures++
			if failures >= 3 {
				return fmt.Errorf("%w: %w", ErrUnreachable, err)
			}
			e.warn("Duplicati did not answer (%v); trying again", err)
		case ready:
			e.info("Duplicati is idle")
			return nil
		default:
			failures = 0
			if words != last {
				e.info("Duplicati is busy (%s); waiting before stopping anything", words)
				last = words
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %s for an idle Duplicati (last: %s)", ErrGateTimeout, maxWait, last)
		case <-time.After(e.poll()):
		}
	}
}

func record(ctx context.Context, e *Env, st *hcl.Stack) error {
	old, err := LoadRecord(e.Dir, st.Name)
	if err != nil {
		e.warn("ignoring an unreadable record: %v", err)
		old = nil
	}
	if old != nil && old.InvocationID != e.InvocationID && old.Held && !old.Restored {
		// An earlier run stopped the stack and never restored it (manager
		// crash, restore failure). What is active now is not the truth; that
		// run's memory is.
		e.warn("an earlier backup (invocation %s, %s) left the stack held down; restoring what was active before it",
			old.InvocationID, old.Gate.Format(time.DateTime))
		// It stays Held: the stack is still down, so this run's restore must
		// bring it back even if this run fails before its own hold.
		old.InvocationID = e.InvocationID
		old.Inherited = true
		return old.Save(e.Dir)
	}
	r := &Record{Stack: st.Name, InvocationID: e.InvocationID, Gate: time.Now()}
	units := []string{st.Unit}
	if st.OnDemand != nil {
		units = append(units, st.OnDemand.Socket)
		if st.OnDemand.Service != "" {
			units = append(units, st.OnDemand.Service)
		}
	}
	up, err := manager.Up(ctx, e.Manager, units...)
	if err != nil {
		return err
	}
	r.UnitActive = up[0]
	if len(up) > 1 {
		r.SocketActive = up[1]
	}
	if len(up) > 2 {
		r.ServiceActive = up[2]
	}
	e.info("recorded: %s", r.describe(st))
	return r.Save(e.Dir)
}

func (r *Record) describe(st *hcl.Stack) string {
	state := func(b bool) string {
		if b {
			return "active"
		}
		return "inactive"
	}
	s := fmt.Sprintf("%s %s", st.Unit, state(r.UnitActive))
	if st.OnDemand != nil {
		s += fmt.Sprintf(", %s %s", st.OnDemand.Socket, state(r.SocketActive))
		if st.OnDemand.Service != "" {
			s += fmt.Sprintf(", %s %s", st.OnDemand.Service, state(r.ServiceActive))
		}
	}
	return s
}

// ownRecord returns this invocation's record, or nil.
func ownRecord(e *Env, stack string) (*Record, error) {
	r, err := LoadRecord(e.Dir, stack)
	if err != nil || r == nil || r.InvocationID != e.InvocationID {
		return nil, err
	}
	return r, nil
}

// Hold starts the hold unit, which makes systemd stop the stack, its
// on-demand socket and service.
func Hold(ctx context.Context, e *Env, st *hcl.Stack) error {
	if err := e.needInvocation(); err != nil {
		return err
	}
	r, err := ownRecord(e, st.Name)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("no record of the gate for this run; refusing to stop %s", st.Unit)
	}
	// Mark first: from here on, whatever happens, the restore must run.
	if !r.Held || r.HeldAt.IsZero() {
		// An inherited record keeps the earlier hold's time: the stack has
		// been down since then.
		r.HeldAt = time.Now()
	}
	r.Held = true
	if err := r.Save(e.Dir); err != nil {
		return err
	}
	hold := systemd.HoldService(st.Name)
	e.info("stopping %s (starting %s)", st.Unit, hold)
	hctx, cancel := context.WithTimeout(ctx, st.StopTimeout+30*time.Second)
	defer cancel()
	if err := e.Manager.Start(hctx, hold); err != nil {
		return err
	}
	if active, err := manager.IsUp(ctx, e.Manager, st.Unit); err != nil {
		return err
	} else if active {
		return fmt.Errorf("%s is still active after %s started", st.Unit, hold)
	}
	e.info("%s is down for the backup", st.Unit)
	return nil
}

// WaitStopped waits until no container of the stack's compose project runs.
func WaitStopped(ctx context.Context, e *Env, st *hcl.Stack) error {
	wctx, cancel := context.WithTimeout(ctx, st.StopTimeout)
	defer cancel()
	start := time.Now()
	var last []string
	for {
		names, err := e.Containers.Running(wctx, st.ProjectLabel)
		if errors.Is(err, podman.ErrNotInstalled) {
			e.warn("%v; not waiting for containers labelled %s=%s", err, podman.ProjectLabel, st.ProjectLabel)
			return nil
		}
		if err != nil && wctx.Err() == nil {
			return err
		}
		if err == nil && len(names) == 0 {
			e.info("no container of project %q runs (waited %s)", st.ProjectLabel, time.Since(start).Round(time.Millisecond))
			return nil
		}
		if err == nil {
			last = names
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("containers of project %q still running after stop_timeout %s: %s",
				st.ProjectLabel, st.StopTimeout, strings.Join(last, ", "))
		case <-time.After(e.containerPoll()):
		}
	}
}

func (e *Env) containerPoll() time.Duration { return min(e.poll(), 250*time.Millisecond) }

// RunHook runs one hook of ExecStopPost=. It only runs when this
// invocation got past the gate (a backup that never began has nothing to
// undo), and records a failure that must fail the unit at release.
func RunHook(ctx context.Context, e *Env, st *hcl.Stack, kind string, ignoreFailure bool, argv []string) error {
	if err := e.needInvocation(); err != nil {
		return err
	}
	r, err := ownRecord(e, st.Name)
	if err != nil {
		return err
	}
	if r == nil {
		e.info("%s hook skipped: this run stopped before the gate let it begin", kind)
		return nil
	}
	if len(argv) == 0 {
		return errors.New("empty hook command")
	}
	e.info("%s hook: %s", kind, strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		if ignoreFailure {
			e.warn("%s hook failed (%v); ignored as configured", kind, err)
			return nil
		}
		_ = AddFailure(e.Dir, st.Name, e.InvocationID, kind+" hook")
		return fmt.Errorf("%s hook failed: %w", kind, err)
	}
	return nil
}

// Restore stops the hold unit and starts what the policy says, waiting for
// the start. It only acts when this invocation held the stack down.
func Restore(ctx context.Context, e *Env, st *hcl.Stack) error {
	if err := e.needInvocation(); err != nil {
		return err
	}
	r, err := ownRecord(e, st.Name)
	if err != nil {
		return err
	}
	if r == nil || !r.Held {
		e.info("nothing to restore: %s was not stopped by this run", st.Unit)
		return nil
	}
	fail := func(err error) error {
		_ = AddFailure(e.Dir, st.Name, e.InvocationID, "restore")
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, st.StopTimeout+30*time.Second)
	defer cancel()
	if err := e.Manager.Stop(sctx, true, systemd.HoldService(st.Name)); err != nil {
		return fail(fmt.Errorf("releasing the hold: %w", err))
	}
	var start []string
	switch st.RestorePolicy {
	case hcl.RestoreAlways:
		start = append(start, st.Unit)
		if st.OnDemand != nil {
			start = append(start, st.OnDemand.Socket)
		}
	default:
		if r.UnitActive {
			start = append(start, st.Unit)
		}
		if st.OnDemand != nil && r.SocketActive {
			start = append(start, st.OnDemand.Socket)
		}
		if st.OnDemand != nil && st.OnDemand.Service != "" && r.ServiceActive {
			start = append(start, st.OnDemand.Service)
		}
	}
	if len(start) == 0 {
		e.info("restore (%s): nothing was active before, nothing to start", st.RestorePolicy)
	} else {
		e.info("restore (%s): starting %s", st.RestorePolicy, strings.Join(start, " "))
		tctx, cancel := context.WithTimeout(ctx, st.StartTimeout)
		defer cancel()
		if err := e.Manager.Start(tctx, start...); err != nil {
			return fail(fmt.Errorf("restore: %w", err))
		}
		up, err := manager.Up(ctx, e.Manager, start...)
		if err != nil {
			return fail(fmt.Errorf("restore: cannot tell whether %s came up: %w", strings.Join(start, " "), err))
		}
		for i, u := range start {
			if !up[i] {
				return fail(fmt.Errorf("restore: %s is not active after its start", u))
			}
		}
	}
	r.Restored, r.RestoredAt = true, time.Now()
	if err := r.Save(e.Dir); err != nil {
		return fail(err)
	}
	e.info("stack restored; down for %s", r.RestoredAt.Sub(r.HeldAt).Round(time.Millisecond))
	return nil
}

// Release frees the slot, forgets a finished record and reports the
// failures of the steps that ran with "-".
func Release(ctx context.Context, e *Env, st *hcl.Stack) (*Record, []string, error) {
	if err := e.needInvocation(); err != nil {
		return nil, nil, err
	}
	var errs []error
	r, err := ownRecord(e, st.Name)
	if err != nil {
		errs = append(errs, err)
	}
	if r != nil && (!r.Held || r.Restored) {
		if err := RemoveRecord(e.Dir, st.Name); err != nil {
			errs = append(errs, err)
		}
	} else if r != nil {
		e.error("keeping the record: the stack was not restored; the next backup of %s will restore it", st.Name)
	}
	if err := e.SlotFor().Release(Holder{Stack: st.Name, InvocationID: e.InvocationID}); err != nil {
		errs = append(errs, fmt.Errorf("releasing the slot: %w", err))
	}
	failed, err := TakeFailures(e.Dir, st.Name, e.InvocationID)
	if err != nil {
		errs = append(errs, err)
	}
	return r, failed, errors.Join(errs...)
}
