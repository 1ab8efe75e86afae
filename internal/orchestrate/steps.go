// Package orchestrate holds the small steps that backup@<stack>.service
// runs around the Duplicati jobs: the gate (single slot, Duplicati idle,
// required paths, the plan with what was up), the hold, the wait for the
// containers, the hooks, and the finish (restore, containers back, release),
// plus the recovery of a stack that a crash left down. systemd does the
// stopping and starting; these steps decide, wait and check. Only the gate
// reads the configuration: every later step works from the plan.
package orchestrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/livestatus"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/podman"
	"github.com/backup-stack/backup-stack/internal/snapshot"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Errors that map to distinct exit codes of backup-stack.
var (
	ErrPrecondition = errors.New("precondition failed")
	ErrGateTimeout  = errors.New("gave up waiting")
	ErrUnreachable  = errors.New("Duplicati unreachable")
	ErrNotFromUnit  = errors.New("not run from backup@.service")
	ErrNoPlan       = errors.New("no plan of this run")
)

// Containers lists the containers of a compose project, in any state, and
// kills one.
type Containers interface {
	List(ctx context.Context, project string) ([]podman.Container, error)
	Kill(ctx context.Context, name string) error
}

// Env is what every step needs.
type Env struct {
	// Dir is the runtime state directory (the slot; see RuntimeDir).
	Dir string
	// StateDir is the durable state directory (plans, history; see StateDir).
	StateDir string
	// InvocationID of the running backup@<stack>.service.
	InvocationID string
	Manager      manager.Manager
	Containers   Containers
	Log          *slog.Logger
	// Poll is the interval of every wait loop.
	Poll time.Duration
	// Status is the unit's live status line (sd_notify STATUS=); nil outside a unit.
	Status *livestatus.Notifier
	// Snapshots makes and removes the snapshots of snapshot mode; nil is
	// snapshot.ForUser().
	Snapshots *snapshot.Snapshotter
	// DuplicatiIdle, when set, tells whether Duplicati runs or queues no
	// task: a snapshot is removed only once nothing may still read it.
	DuplicatiIdle IdleFunc
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

// FromUnit refuses unless this process is part of the invocation that unit
// runs now. A step typed in a shell has no INVOCATION_ID, or (a shell in a
// terminal service) another unit's: either way it must not touch the plan,
// the slot or the history of a run it is not part of. Comparing with the
// plan alone is not enough: finish without a plan restores a held stack.
func (e *Env) FromUnit(ctx context.Context, unit string) error {
	if err := e.needInvocation(); err != nil {
		return err
	}
	ps, err := e.Manager.Show(ctx, []string{unit}, "InvocationID", "ActiveState")
	if err != nil {
		return fmt.Errorf("asking the manager which invocation %s runs: %w", unit, err)
	}
	inv, state := ps[0]["InvocationID"], ps[0]["ActiveState"]
	if inv != e.InvocationID || !systemd.Running(state) {
		return fmt.Errorf("%w: this process is not part of %s (its INVOCATION_ID is %s; the unit is %s with invocation %q): the steps run only from the unit; start the backup with `systemctl --user start %s`",
			ErrNotFromUnit, unit, e.InvocationID, state, inv, unit)
	}
	return nil
}

// SlotFor returns the slot of this runtime directory, whose holders are
// checked against the manager.
func (e *Env) SlotFor() Slot {
	return Slot{Dir: e.Dir, Alive: func(ctx context.Context, h Holder) (bool, error) {
		return e.invocationRunning(ctx, h.Stack, h.InvocationID)
	}}
}

// invocationRunning reports whether backup@stack.service still runs that
// invocation (including its ExecStopPost= steps).
func (e *Env) invocationRunning(ctx context.Context, stack, inv string) (bool, error) {
	ps, err := e.Manager.Show(ctx, []string{systemd.BackupService(stack)}, "InvocationID", "ActiveState")
	if err != nil {
		return false, err
	}
	return ps[0]["InvocationID"] == inv && systemd.Running(ps[0]["ActiveState"]), nil
}

// OwnPlan returns this invocation's plan of stack. ErrNoPlan when there is
// none (the gate did not get that far), wrapped with why.
func (e *Env) OwnPlan(ctx context.Context, stack string) (*Plan, error) {
	if err := e.FromUnit(ctx, systemd.BackupService(stack)); err != nil {
		return nil, err
	}
	p, err := LoadPlan(e.StateDir, stack)
	if err != nil && !errors.Is(err, ErrDamagedState) {
		return nil, err
	}
	if err != nil {
		e.warn("%v", err)
	}
	if p == nil || p.InvocationID != e.InvocationID {
		return nil, fmt.Errorf("%w (invocation %s): the gate did not let it begin", ErrNoPlan, e.InvocationID)
	}
	return p, nil
}

// save writes the plan; a plan that cannot be saved is an error of the step.
func (e *Env) save(p *Plan) error {
	if err := p.Save(e.StateDir); err != nil {
		return fmt.Errorf("saving the plan: %w", err)
	}
	return nil
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

// Gate runs before anything is stopped, and is the only step that reads
// the configuration. If an earlier run of the stack left it held down (a
// crash, a shutdown), that run's plan is restored first: what is active now
// is not the truth. Then it waits (stack still up) for the single backup
// slot and an idle Duplicati, at most maxWait in all, checks the required
// paths, and saves the plan: the settings and what is up now.
func Gate(ctx context.Context, e *Env, cfg *hcl.Config, st *hcl.Stack, maxWait time.Duration, idle IdleFunc) (*Plan, error) {
	if err := e.FromUnit(ctx, systemd.BackupService(st.Name)); err != nil {
		return nil, err
	}
	prev, err := LoadPlan(e.StateDir, st.Name)
	if err != nil {
		e.warn("%v", err)
		if !errors.Is(err, ErrDamagedState) {
			return nil, err
		}
	}
	if prev != nil && prev.InvocationID != e.InvocationID && !prev.Finished {
		if _, err := Recover(ctx, e, prev, "found by the next backup's gate"); err != nil {
			return nil, fmt.Errorf("the stack was left down by an earlier backup (invocation %s) and could not be restored: %w", prev.InvocationID, err)
		}
	}
	if err := CheckPaths(st.RequirePaths); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	me := Holder{Stack: st.Name, InvocationID: e.InvocationID, Since: time.Now()}
	holder := "?"
	err = e.SlotFor().Take(wctx, me, e.poll(), func(h Holder) {
		holder = h.Stack
		e.info("waiting for the backup slot: stack %q is being backed up (since %s); stack %q stays up meanwhile",
			h.Stack, h.Since.Format(time.TimeOnly), st.Name)
		e.Status.Set(livestatus.WaitingSlot(h.Stack))
	})
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, gateTimeout(fmt.Sprintf("waited %s for the backup slot (wait_timeout; held by %s)", maxWait, holder))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s while waiting for the backup slot: %w", Interrupted(ctx), ctx.Err())
		}
		return nil, err
	}
	e.info("took the backup slot")
	if err := waitIdle(wctx, e, maxWait, idle); err != nil {
		return nil, err
	}
	if err := CheckPaths(st.RequirePaths); err != nil {
		return nil, err
	}
	p := NewPlan(cfg, st, e.InvocationID)
	if err := planSnapshots(ctx, e, p); err != nil {
		return nil, err
	}
	up, err := manager.Up(ctx, e.Manager, p.Units()...)
	if err != nil {
		return nil, err
	}
	p.UnitActive = up[0]
	if len(up) > 1 {
		p.SocketActive = up[1]
	}
	if len(up) > 2 {
		p.ServiceActive = up[2]
	}
	if cs, err := e.Containers.List(ctx, p.Settings.ProjectLabel); err == nil {
		p.Containers = podman.Up(cs)
	} else if !errors.Is(err, podman.ErrNotInstalled) {
		return nil, err
	}
	if err := e.save(p); err != nil {
		return nil, err
	}
	e.info("recorded: %s", p.describe())
	return p, nil
}

// idleSlowAfter and idleSlowPoll slow the wait for an idle Duplicati down after a minute:
// on the exec route every look is a util call, and every util call adds a row to the server
// database's TokenFamily table that nothing removes (3,600 an hour at 1 s). Vars for tests.
var (
	idleSlowAfter = time.Minute
	idleSlowPoll  = 10 * time.Second
)

func waitIdle(ctx context.Context, e *Env, maxWait time.Duration, idle IdleFunc) error {
	var last string
	failures := 0
	began := time.Now()
	for {
		ready, words, err := idle(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return idleGaveUp(ctx, maxWait, last)
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
		wait := e.poll()
		if time.Since(began) >= idleSlowAfter {
			wait = max(wait, idleSlowPoll)
		}
		select {
		case <-ctx.Done():
			return idleGaveUp(ctx, maxWait, last)
		case <-time.After(wait):
		}
	}
}

// idleGaveUp says why the wait for an idle Duplicati ended: its bound, or a stop.
func idleGaveUp(ctx context.Context, maxWait time.Duration, last string) error {
	if last == "" {
		last = "no answer"
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return gateTimeout(fmt.Sprintf("waited %s for Duplicati to be idle (wait_timeout; last: %s)", maxWait, last))
	}
	return fmt.Errorf("%s while waiting for Duplicati to be idle (last: %s): %w", Interrupted(ctx), last, context.Canceled)
}

// gateTimeout is ErrGateTimeout in the words of what was waited for.
type gateTimeout string

func (e gateTimeout) Error() string        { return string(e) }
func (e gateTimeout) Is(target error) bool { return target == ErrGateTimeout }

// Interrupted says why ctx ended, in words: "interrupted (received signal
// terminated)" when the cause is known.
func Interrupted(ctx context.Context) string {
	if c := context.Cause(ctx); c != nil && c != context.Canceled && c != context.DeadlineExceeded {
		return "interrupted (" + c.Error() + ")"
	}
	return "interrupted"
}

func (p *Plan) describe() string {
	state := func(b bool) string {
		if b {
			return "active"
		}
		return "inactive"
	}
	s := fmt.Sprintf("%s %s", p.Settings.Unit, state(p.UnitActive))
	if p.Settings.Socket != "" {
		s += fmt.Sprintf(", %s %s", p.Settings.Socket, state(p.SocketActive))
		if p.Settings.Service != "" {
			s += fmt.Sprintf(", %s %s", p.Settings.Service, state(p.ServiceActive))
		}
	}
	return fmt.Sprintf("%s; %d container(s) running: %s", s, len(p.Containers), strings.Join(p.Containers, ", "))
}

// NoteChanges says in the journal when the stack's file or config.hcl
// changed since the gate: the run keeps the settings it started with.
func NoteChanges(e *Env, p *Plan) {
	if ch := p.Changed(); len(ch) > 0 {
		slices.Sort(ch)
		e.warn("%s changed during the backup; this run keeps the settings it started with", strings.Join(ch, ", "))
	}
}

// Hold starts the hold unit, which makes systemd stop the stack, its
// on-demand socket and service, bounded by stop_timeout.
func Hold(ctx context.Context, e *Env, p *Plan) error {
	// Mark first: from here on, whatever happens, the restore must run.
	p.Held, p.HeldAt = true, time.Now()
	if err := e.save(p); err != nil {
		return err
	}
	hold := systemd.HoldService(p.Stack)
	e.Status.Set(livestatus.Stopping)
	e.info("stopping %s (starting %s)", strings.Join(p.Units(), ", "), hold)
	hctx, cancel := context.WithTimeout(ctx, p.Settings.StopTimeout)
	defer cancel()
	startErr := e.Manager.Start(hctx, hold)
	if startErr != nil && ctx.Err() != nil {
		return startErr
	}
	// The start's own answer is not the truth (a daemon-reexec drops the
	// connection, a timeout leaves the job running): what the units are is.
	// After a failed call the hold may still be inactive with its start job
	// queued behind the stack's stop, so that wait goes on until the hold is
	// active or failed, within stop_timeout.
	units := append([]string{hold}, p.Units()...)
	states, err := settle(ctx, e, p.Settings.StopTimeout, units...)
	if err == nil && startErr != nil && states[0] == "inactive" {
		states, err = waitUntil(ctx, e, p.Settings.StopTimeout, units, func(st []string) bool {
			return (st[0] == "active" || st[0] == "failed") && !slices.ContainsFunc(st, changing)
		})
	}
	if err != nil {
		return err
	}
	if states[0] != "active" {
		return fmt.Errorf("%s did not start within stop_timeout %s (it is %s; raise stop_timeout in the stack file): %v", hold, p.Settings.StopTimeout, states[0], startErr)
	}
	for i, u := range p.Units() {
		if systemd.Running(states[i+1]) {
			return fmt.Errorf("%s is still %s after %s started (stop_timeout %s)", u, states[i+1], hold, p.Settings.StopTimeout)
		}
	}
	if startErr != nil {
		e.warn("starting %s said %v, yet it is active and the stack is down; going on", hold, startErr)
	}
	e.info("%s is down for the backup", p.Settings.Unit)
	return nil
}

// settle polls the units until none is changing (activating, deactivating,
// reloading) or bound passes, and returns their states. An error to reach
// the manager (it is re-executing) is retried until bound.
func settle(ctx context.Context, e *Env, bound time.Duration, units ...string) ([]string, error) {
	deadline := time.Now().Add(bound)
	for {
		states, err := manager.States(ctx, e.Manager, units...)
		if err == nil && !slices.ContainsFunc(states, changing) {
			return states, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("the manager did not answer within %s: %w", bound, err)
			}
			return states, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.poll()):
		}
	}
}

// waitUntil polls the units until ok says so or bound passes, and returns
// their last states.
func waitUntil(ctx context.Context, e *Env, bound time.Duration, units []string, ok func([]string) bool) ([]string, error) {
	deadline := time.Now().Add(bound)
	var last []string
	for {
		states, err := manager.States(ctx, e.Manager, units...)
		if err == nil {
			last = states
			if ok(states) {
				return states, nil
			}
		}
		if time.Now().After(deadline) {
			if last == nil {
				return nil, fmt.Errorf("the manager did not answer within %s: %w", bound, err)
			}
			return last, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.poll()):
		}
	}
}

// WatchUp returns a channel that says which of the units came up, polling
// every interval until ctx ends. A backup watches the units the gate froze:
// whoever starts the stack during the job (a person, a socket) makes it a
// backup of a running stack, even after a daemon-reload took the hold
// unit's Conflicts= away (its drop-in is generated from the stack file).
func WatchUp(ctx context.Context, e *Env, units []string, interval time.Duration) <-chan string {
	ch := make(chan string, 1)
	go func() {
		defer close(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
			up, err := manager.Up(ctx, e.Manager, units...)
			if err != nil {
				continue // the manager is re-executing: ask again
			}
			for i, u := range units {
				if up[i] {
					ch <- u
					return
				}
			}
		}
	}()
	return ch
}

func changing(state string) bool {
	return state == "activating" || state == "deactivating" || state == "reloading" || state == "refreshing"
}

// WaitStopped waits until every container of the stack's compose project
// is down (podman ps -a: any state but exited, stopped, created and
// configured counts as running), bounded by stop_timeout.
func WaitStopped(ctx context.Context, e *Env, p *Plan) error {
	e.Status.Set(livestatus.Stopping)
	wctx, cancel := context.WithTimeout(ctx, p.Settings.StopTimeout)
	defer cancel()
	start := time.Now()
	var last []podman.Container
	for {
		cs, err := e.Containers.List(wctx, p.Settings.ProjectLabel)
		if errors.Is(err, podman.ErrNotInstalled) {
			e.warn("%v; not waiting for containers labelled %s=%s", err, podman.ProjectLabel, p.Settings.ProjectLabel)
			p.Stopped = true
			return e.save(p)
		}
		if err != nil && wctx.Err() == nil {
			return err
		}
		if p.SnapshotMode() {
			// No PartOf= here (the backup must outlive its hold): whoever
			// starts the stack before its data is frozen ends the hold.
			if err := stillHeld(wctx, e, p, ""); err != nil {
				return err
			}
		}
		if err == nil {
			last = cs
			if len(podman.Up(cs)) == 0 {
				e.info("no container of project %q runs (waited %s)", p.Settings.ProjectLabel, time.Since(start).Round(time.Millisecond))
				p.Stopped = true
				return e.save(p)
			}
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("containers of project %q still running after stop_timeout %s (raise stop_timeout in the stack file, or make them stop): %s; no job was started",
				p.Settings.ProjectLabel, p.Settings.StopTimeout, describeUp(last))
		case <-time.After(min(e.poll(), 250*time.Millisecond)):
		}
	}
}

func describeUp(cs []podman.Container) string {
	var out []string
	for _, c := range cs {
		if !c.Down() {
			out = append(out, fmt.Sprintf("%s (%s)", c.Name, c.State))
		}
	}
	return strings.Join(out, ", ")
}

// ErrHookTimeout is a hook that did not end within its timeout.
var ErrHookTimeout = errors.New("hook timed out")

// RunHook runs hook n (1-based) of a kind from the plan, bounded by its
// timeout (the hook's whole process group is killed then). A failure is
// returned unless the hook has ignore_failure; the caller records it.
// env is added to the hook's environment.
func RunHook(ctx context.Context, e *Env, p *Plan, kind string, n int, env []string) error {
	hooks := p.HooksOf(kind)
	if n < 1 || n > len(hooks) {
		return fmt.Errorf("the plan of this run has %d %s hook(s), not a number %d", len(hooks), kind, n)
	}
	h := hooks[n-1]
	if len(h.Command) == 0 || h.Command[0] == "" {
		return fmt.Errorf("hook %s %d of the plan has no command (a damaged plan?)", kind, n)
	}
	e.info("%s hook: %s", kind, strings.Join(h.Command, " "))
	err := runBounded(ctx, h, env)
	if err == nil {
		return nil
	}
	if h.IgnoreFailure {
		e.warn("%s hook failed (%v); ignored as configured (ignore_failure)", kind, err)
		return nil
	}
	// The reason people read (list, BACKUP_REASON): the hook, its program, what went wrong.
	return fmt.Errorf("hook %s: %s: %w", kind, h.Command[0], err)
}

func runBounded(ctx context.Context, h Hook, env []string) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = hcl.DefaultHookTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, h.Command[0], h.Command[1:]...)
	// Its output goes to the journal; its last line also into the reason.
	last := &lastLine{}
	cmd.Stdout, cmd.Stderr = os.Stderr, io.MultiWriter(os.Stderr, last)
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that the timeout ends the hook's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case hctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		return fmt.Errorf("%w after %s (timeout in the hook block)", ErrHookTimeout, timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", Interrupted(ctx), ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		what := last.String()
		if what == "" {
			what = "failed"
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("%s (killed by signal %s)", what, ws.Signal())
		}
		return fmt.Errorf("%s (exit %d)", what, ee.ExitCode())
	}
	// The program could not be started at all: said as a shell would, with its exit status.
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return &startError{"not found (exit 127)", err}
	case errors.Is(err, fs.ErrPermission):
		return &startError{"not executable (exit 126)", err}
	}
	return &startError{fmt.Sprintf("cannot be started: %v (exit 126)", err), err}
}

// startError is a hook program that could not be started, in a shell's words (the
// caller names the program); it wraps exec's own error for errors.Is.
type startError struct {
	words string
	err   error
}

func (e *startError) Error() string { return e.words }
func (e *startError) Unwrap() error { return e.err }

// lastLine keeps the last non-empty line written to it (at most 200 bytes): a
// failing hook's own last words make the best reason.
type lastLine struct {
	buf  []byte
	line string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if t := strings.TrimSpace(string(l.buf[:i])); t != "" {
			l.line = t
		}
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	return len(p), nil
}

func (l *lastLine) String() string {
	s := l.line
	if t := strings.TrimSpace(string(l.buf)); t != "" {
		s = t
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// Restore stops the hold unit and starts what the policy says, bounded by
// start_timeout, then waits until the containers that ran at the gate run
// again. It acts only when the plan says the stack is held and not yet
// restored. The plan is saved as restored once the units are up (the
// containers' check is a separate failure: there is nothing more to start).
func Restore(ctx context.Context, e *Env, p *Plan) error {
	if !p.Held || p.Restored {
		if !p.Held {
			e.info("nothing to restore: %s was not stopped by this run", p.Settings.Unit)
		}
		return nil
	}
	start := p.toStart()
	// The look for containers stuck "stopping" (a podman ps) runs while the
	// hold is released: neither changes what the other sees, and both are
	// on the way to the start, which in snapshot mode ends the downtime.
	var stops sync.WaitGroup
	defer stops.Wait()
	if len(start) > 0 && len(p.Containers) > 0 {
		stops.Go(func() { finishStops(ctx, e, p) })
	}
	hold := systemd.HoldService(p.Stack)
	sctx, cancel := context.WithTimeout(ctx, p.Settings.StopTimeout)
	stopErr := e.Manager.Stop(sctx, true, hold)
	cancel()
	if st, err := settle(ctx, e, p.Settings.StopTimeout, hold); err != nil || systemd.Up(st[0]) {
		return fmt.Errorf("releasing the hold: %s is still up (%v %v)", hold, stopErr, err)
	}
	var late error
	if len(start) == 0 {
		e.info("restore (%s): nothing was active before, nothing to start", p.Settings.RestorePolicy)
	} else {
		stops.Wait()
		e.info("restore (%s): starting %s", p.Settings.RestorePolicy, strings.Join(start, " "))
		up, err := startAndSettle(ctx, e, p.Settings.StartTimeout, start)
		if !up {
			return err
		}
		late = err // up, but later than start_timeout: restored, and still a failure
	}
	p.Restored, p.RestoredAt = true, time.Now()
	if err := e.save(p); err != nil {
		return errors.Join(late, err)
	}
	e.info("stack restored; down for %s", p.RestoredAt.Sub(p.HeldAt).Round(time.Millisecond))
	if p.UnitActive || p.Settings.RestorePolicy == hcl.RestoreAlways {
		return errors.Join(late, CameBack(ctx, e, p))
	}
	return late
}

// finishStops completes the stop of containers of the project that are
// stuck "stopping": the stack unit's TimeoutStopSec= cut `podman stop` short
// before podman sent SIGKILL to a process that ignores SIGTERM. Such a
// container would never start again (podman-compose up cannot start a
// container in that state), so podman's own escalation is done here.
func finishStops(ctx context.Context, e *Env, p *Plan) {
	cs, err := e.Containers.List(ctx, p.Settings.ProjectLabel)
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.State != "stopping" {
			continue
		}
		e.warn("container %s is stuck stopping (its stop was cut short and it ignores SIGTERM); finishing the stop with SIGKILL so that the stack can start again", c.Name)
		if err := e.Containers.Kill(ctx, c.Name); errors.Is(err, podman.ErrRemoved) {
			e.warn("container %s: %v", c.Name, err)
		} else if err != nil {
			e.error("killing container %s: %v", c.Name, err)
		}
	}
}

// toStart is what the policy says to start again.
func (p *Plan) toStart() []string {
	s := p.Settings
	var start []string
	if s.RestorePolicy == hcl.RestoreAlways {
		start = append(start, s.Unit)
		if s.Socket != "" {
			start = append(start, s.Socket)
		}
		return start
	}
	if p.UnitActive {
		start = append(start, s.Unit)
	}
	if s.Socket != "" && p.SocketActive {
		start = append(start, s.Socket)
	}
	if s.Socket != "" && s.Service != "" && p.ServiceActive {
		start = append(start, s.Service)
	}
	return start
}

// startAndSettle starts units and returns when their start jobs have ended
// and they are up. The answer of `systemctl start` is not trusted either
// way: a timeout leaves the job running in the manager (so this waits for
// it to end, bounded by another start_timeout, before the slot can be
// freed), and a daemon-reexec drops the connection mid-job ("unknown"), so
// the units are polled; a unit that is down after that is started once more.
func startAndSettle(ctx context.Context, e *Env, bound time.Duration, units []string) (up bool, err error) {
	for attempt := 1; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, bound)
		err := e.Manager.Start(tctx, units...)
		timedOut := tctx.Err() == context.DeadlineExceeded
		cancel()
		// After a timeout the start job goes on in the manager: wait for it
		// to end, however long (the unit's TimeoutStopSec= is the backstop),
		// because the slot must stay taken until this stack is up or failed.
		wait := bound
		if timedOut {
			wait = 24 * time.Hour
		}
		states, serr := settle(ctx, e, wait, units...)
		if serr != nil {
			return false, fmt.Errorf("restore: %w", serr)
		}
		var down []string
		for i, u := range units {
			// Still activating after the bound is not up: its start job runs on.
			if !systemd.Up(states[i]) || changing(states[i]) {
				down = append(down, fmt.Sprintf("%s %s", u, states[i]))
			}
		}
		switch {
		case len(down) == 0 && timedOut:
			return true, fmt.Errorf("restore: starting %s took longer than start_timeout %s (raise start_timeout in the stack file); it is up now", strings.Join(units, " "), bound)
		case len(down) == 0:
			if err != nil {
				e.warn("restore: the start said %v, yet every unit is up", err)
			}
			return true, nil
		case err != nil && !timedOut && attempt == 1 && !strings.Contains(err.Error(), "destructive"):
			e.warn("restore: the start said %v and %s; starting once more", err, strings.Join(down, ", "))
			continue
		case timedOut:
			return false, fmt.Errorf("restore: %s not up within start_timeout %s (raise start_timeout in the stack file)", strings.Join(down, ", "), bound)
		case err != nil:
			return false, fmt.Errorf("restore: %s after the start (%v)", strings.Join(down, ", "), err)
		default:
			return false, fmt.Errorf("restore: %s after the start (the unit's own log says why)", strings.Join(down, ", "))
		}
	}
}

// CameBack waits, within start_timeout, until every container that ran at
// the gate runs again: a stack unit can be active with no container
// (podman-compose up exits 0 when every container fails to start).
func CameBack(ctx context.Context, e *Env, p *Plan) error {
	if len(p.Containers) == 0 {
		return nil
	}
	deadline := time.Now().Add(p.Settings.StartTimeout)
	for {
		cs, err := e.Containers.List(ctx, p.Settings.ProjectLabel)
		if errors.Is(err, podman.ErrNotInstalled) {
			return nil
		}
		missing := []string{}
		if err == nil {
			byName := map[string]podman.Container{}
			for _, c := range cs {
				byName[c.Name] = c
			}
			for _, n := range p.Containers {
				c, ok := byName[n]
				switch {
				case !ok:
					missing = append(missing, n+": missing")
				case c.State != "running":
					missing = append(missing, fmt.Sprintf("%s: %s", n, orState(c)))
				}
			}
			if len(missing) == 0 {
				e.info("all %d container(s) of project %q run again", len(p.Containers), p.Settings.ProjectLabel)
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("stack %s: cannot tell whether it came back: %w", p.Stack, err)
			}
			return fmt.Errorf("stack %s did not come back within start_timeout %s: %d of %d containers running (%s)",
				p.Stack, p.Settings.StartTimeout, len(p.Containers)-len(missing), len(p.Containers), strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(e.poll(), 250*time.Millisecond)):
		}
	}
}

func orState(c podman.Container) string {
	if c.Status != "" {
		return strings.ToLower(c.Status)
	}
	return c.State
}

// Finish is the whole ExecStopPost= of backup@.service, from the plan:
// post_backup and pre_start hooks, the restore, post_start hooks, the
// removal of the snapshots (snapshot mode), verify hooks, and the release
// of the slot. One static line in the template, so
// that no daemon-reload can drop it (a drop-in that vanishes takes its
// ExecStopPost= lines with it, even from a running unit). Every step runs
// whatever failed before it; their failures are recorded in the plan.
// env goes to the hooks ($SERVICE_RESULT ...). The plan is finished unless
// the stack is still held down (the restore failed, or the manager refused
// it while shutting down): then recover restores it at the next start.
func Finish(ctx context.Context, e *Env, p *Plan, env []string) {
	e.Status.Set(livestatus.Restoring)
	NoteChanges(e, p)
	runHooksOf(ctx, e, p, "post_backup", env)
	// In snapshot mode resume ran these already when it got that far.
	if !p.Ran("pre_start") {
		runHooksOf(ctx, e, p, "pre_start", env)
	}
	if err := Restore(ctx, e, p); err != nil {
		e.error("%v", err)
		p.Fail(err.Error())
	}
	if !p.Ran("post_start") {
		runHooksOf(ctx, e, p, "post_start", env)
	}
	// After a job that did not end well (the helper killed, a stop whose
	// abort did not land) Duplicati may still be reading the snapshot.
	RemoveSnapshots(ctx, e, p, !slices.Contains(env, "SERVICE_RESULT=success"))
	runHooksOf(ctx, e, p, "verify", env)
	if !p.LeftDown() {
		p.Finished, p.FinishedAt = true, time.Now()
	} else {
		e.error("the stack is still held down: `backup-stack recover` (at the next manager start, or by hand) restores it")
	}
	if err := e.save(p); err != nil {
		e.error("%v", err)
	}
}

func runHooksOf(ctx context.Context, e *Env, p *Plan, kind string, env []string) {
	for i := range p.HooksOf(kind) {
		if err := RunHook(ctx, e, p, kind, i+1, env); err != nil {
			e.error("%v", err)
			p.Fail(err.Error())
		}
	}
}

// Release frees the slot if this invocation holds it.
func Release(e *Env, stack string) error {
	if err := e.SlotFor().Release(Holder{Stack: stack, InvocationID: e.InvocationID}); err != nil {
		return fmt.Errorf("releasing the slot: %w", err)
	}
	return nil
}

// Recover deals with the plan of a run that never finished (a crash of the
// helper or the manager, a shutdown mid-backup): if it held the stack down,
// the stack is restored by that plan's policy; the plan is then finished.
// It does nothing while that run's unit still runs. It returns whether it
// restored anything. why says who found it, for the journal.
func Recover(ctx context.Context, e *Env, p *Plan, why string) (bool, error) {
	if p.Finished {
		return false, nil
	}
	running, err := e.invocationRunning(ctx, p.Stack, p.InvocationID)
	if err != nil {
		return false, err
	}
	if running {
		return false, nil
	}
	restored := false
	if p.LeftDown() {
		e.warn("stack %s was left down by a backup interrupted after %s (invocation %s, %s); restoring it by its plan (%s)",
			p.Stack, p.HeldAt.Format(time.DateTime), p.InvocationID, why, p.Settings.RestorePolicy)
		// This step is not that run: it acts for it.
		err := Restore(ctx, e, p)
		if p.Restored {
			restored = true
			// First: it is the reason people are told (history, BACKUP_REASON).
			p.Failures = append([]string{fmt.Sprintf("left down by a backup interrupted at %s; restored %s at %s",
				p.HeldAt.Format(time.TimeOnly), why, p.RestoredAt.Format(time.TimeOnly))}, p.Failures...)
		}
		if err != nil {
			p.Fail(err.Error())
			if !p.Restored {
				_ = e.save(p)
				return false, err
			}
		}
	} else {
		p.Fail(fmt.Sprintf("interrupted before it finished (%s)", why))
	}
	// A snapshot the interrupted run left (made, half made, or still in use
	// by its job) goes too; a failure to remove it is recorded, not fatal.
	RemoveSnapshots(ctx, e, p, true)
	p.Finished, p.FinishedAt = true, time.Now()
	return restored, e.save(p)
}
