package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/livestatus"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/notify"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// stepErr maps the errors of the steps to exit codes.
func stepErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, orchestrate.ErrPrecondition):
		return withCode(exitcode.Precondition, err)
	case errors.Is(err, orchestrate.ErrGateTimeout):
		return withCode(exitcode.Timeout, err)
	case errors.Is(err, orchestrate.ErrUnreachable):
		return withCode(exitcode.Unreachable, err)
	case errors.Is(err, orchestrate.ErrNotFromUnit), errors.Is(err, orchestrate.ErrNoPlan):
		return withCode(exitcode.Usage, err)
	case errors.Is(err, context.Canceled):
		return withCode(exitcode.Interrupted, err)
	}
	return err
}

// planStep is a step after the gate: it works from this run's plan only.
type planStep struct {
	plan *orchestrate.Plan
	log  *slog.Logger
	env  *orchestrate.Env
	name string
}

// planStep loads this invocation's plan of stack. It never reads the HCL:
// an edit, a broken or a deleted stack file changes nothing for this run.
func (a *App) planStep(ctx context.Context, stack, name string) (*planStep, error) {
	if err := exactStack(stack); err != nil {
		return nil, err
	}
	env, err := a.env(a.logger("", stack, name+" "+stack), 0)
	if err != nil {
		return nil, err
	}
	env.Status = livestatus.New()
	p, err := env.OwnPlan(ctx, stack)
	if err != nil {
		return nil, stepErr(err)
	}
	env.Log = a.logger(p.Settings.LogDir, stack, name+" "+stack)
	if p.Settings.Duplicati.PollInterval > 0 && a.Poll <= 0 {
		env.Poll = min(p.Settings.Duplicati.PollInterval, time.Second)
	}
	return &planStep{plan: p, log: env.Log, env: env, name: name}, nil
}

// fail records why the step failed in the plan (the run history shows it:
// systemd only reports the main process's exit status) and returns err.
func (s *planStep) fail(err error) error {
	if err == nil {
		return nil
	}
	err = stepErr(err)
	code := exitcode.Failure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	why := fmt.Sprintf("%s (exit %d): %v", s.name, code, err)
	if strings.HasPrefix(err.Error(), "hook "+s.name+": ") {
		why = err.Error() // names the hook, its program and its exit status already
	}
	s.plan.Fail(why)
	if serr := s.plan.Save(s.env.StateDir); serr != nil {
		s.log.Error(fmt.Sprintf("saving the plan: %v", serr))
	}
	s.log.Error(err.Error())
	return err
}

// GateCmd is the first ExecStartPre= of backup@.service. Like every step,
// it is called with the exact stack name after "--" and takes it as it is.
type GateCmd struct {
	Stack string `arg:"" help:"The stack's exact name (the units pass it after --)."`
}

func (c *GateCmd) Run(ctx context.Context, app *App) error {
	if err := exactStack(c.Stack); err != nil {
		return err
	}
	cfg, st, err := app.stack(c.Stack)
	if err != nil {
		return err
	}
	log := app.logger(cfg.LogDir, st.Name, "gate "+st.Name)
	env, err := app.env(log, cfg.Duplicati.PollInterval)
	if err != nil {
		return err
	}
	env.Status = livestatus.New()
	defer env.Status.Flush()
	d := cfg.Duplicati
	b, err := backend(d, d.WaitTimeout, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	idle := func(ctx context.Context) (bool, string, error) {
		sctx, cancel := context.WithTimeout(ctx, d.RunTimeout)
		defer cancel()
		st, err := b.State(sctx)
		if err != nil {
			return false, "", err
		}
		ready := st.Idle() && !st.Paused
		if !ready {
			env.Status.Set(livestatus.WaitingIdle(st))
		}
		return ready, st.String(), nil
	}
	// An earlier run of this stack that never finished (a crash, a
	// shutdown) is dealt with first, reported as that run: what is active
	// now is not the truth while its plan says the stack is held down.
	if env.InvocationID != "" {
		if prev, err := orchestrate.LoadPlan(env.StateDir, st.Name); err != nil {
			log.Warn(err.Error())
		} else if prev != nil && !prev.Finished && prev.InvocationID != env.InvocationID {
			app.recoverOne(ctx, env, prev, "by the next backup's gate")
		}
	}
	ping(ctx, log, st.Healthcheck, "start", "")
	_, gerr := orchestrate.Gate(ctx, env, cfg, st, d.WaitTimeout, idle)
	if gerr == nil {
		return nil
	}
	gerr = stepErr(gerr)
	log.Error(fmt.Sprintf("the gate did not let the backup begin; %s was not stopped: %v", st.Unit, gerr))
	// Leave the reason for finish, unless an unfinished plan (a stack left
	// down that could not be restored) is there: that one must stay.
	if prev, _ := orchestrate.LoadPlan(env.StateDir, st.Name); env.InvocationID != "" && (prev == nil || prev.Finished) {
		p := orchestrate.NewPlan(cfg, st, env.InvocationID)
		p.Settings.Hooks = nil // the backup never began: nothing to undo
		code := exitcode.Failure
		var ee *exitError
		if errors.As(gerr, &ee) {
			code = ee.code
		}
		p.Fail(fmt.Sprintf("gate (exit %d): %v", code, gerr))
		if err := p.Save(env.StateDir); err != nil {
			log.Error(fmt.Sprintf("saving the plan: %v", err))
		}
	}
	return gerr
}

// HoldCmd starts the hold unit.
type HoldCmd struct {
	Stack string `arg:""`
}

func (c *HoldCmd) Run(ctx context.Context, app *App) error {
	s, err := app.planStep(ctx, c.Stack, "hold")
	if err != nil {
		return err
	}
	return s.fail(orchestrate.Hold(ctx, s.env, s.plan))
}

// HeldCmd is the ExecStart= of backup-hold@.service. It only logs: the
// unit's Conflicts= do the work. It must not need the configuration, so a
// hold unit can always start (and thus always be stopped again).
type HeldCmd struct {
	Stack string `arg:""`
}

func (c *HeldCmd) Run(ctx context.Context, app *App) error {
	if err := exactStack(c.Stack); err != nil {
		return err
	}
	fmt.Fprintf(app.Stderr, "stack %s is held down for its backup; starting the stack (or its socket) stops the backup (%s)\n",
		c.Stack, systemd.BackupService(c.Stack))
	return nil
}

// WaitStoppedCmd waits for the stack's containers to stop.
type WaitStoppedCmd struct {
	Stack string `arg:""`
}

func (c *WaitStoppedCmd) Run(ctx context.Context, app *App) error {
	s, err := app.planStep(ctx, c.Stack, "wait-stopped")
	if err != nil {
		return err
	}
	return s.fail(orchestrate.WaitStopped(ctx, s.env, s.plan))
}

// SnapshotCmd freezes the stack's data (snapshot mode), after wait-stopped.
type SnapshotCmd struct {
	Stack string `arg:""`
}

func (c *SnapshotCmd) Run(ctx context.Context, app *App) error {
	s, err := app.planStep(ctx, c.Stack, "snapshot")
	if err != nil {
		return err
	}
	defer s.env.Status.Flush()
	return s.fail(orchestrate.Snapshot(ctx, s.env, s.plan))
}

// ResumeCmd starts the stack again once its data is frozen (snapshot mode).
type ResumeCmd struct {
	Stack string `arg:""`
}

func (c *ResumeCmd) Run(ctx context.Context, app *App) error {
	s, err := app.planStep(ctx, c.Stack, "resume")
	if err != nil {
		return err
	}
	defer s.env.Status.Flush()
	return s.fail(orchestrate.Resume(ctx, s.env, s.plan))
}

// HookCmd runs a hook of ExecStartPre= from the plan. The command after --
// is what the unit file shows; the plan's hook is what runs.
type HookCmd struct {
	Stack   string   `arg:""`
	Kind    string   `arg:"" enum:"pre_stop,post_stop,pre_backup,post_backup,pre_start,post_start,verify"`
	N       int      `arg:"" help:"Which hook of the kind (1 = the first in the file)."`
	Command []string `arg:"" optional:"" passthrough:"" help:"The hook command as the unit file shows it, after --."`
}

func (c *HookCmd) Run(ctx context.Context, app *App) error {
	s, err := app.planStep(ctx, c.Stack, c.Kind)
	if err != nil {
		return err
	}
	argv := c.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if hooks := s.plan.HooksOf(c.Kind); len(argv) > 0 && c.N >= 1 && c.N <= len(hooks) && !slices.Equal(argv, hooks[c.N-1].Command) {
		orchestrate.NoteChanges(s.env, s.plan)
	}
	return s.fail(orchestrate.RunHook(ctx, s.env, s.plan, c.Kind, c.N, nil))
}

// FinishCmd is the one ExecStopPost= of backup@.service (in the static
// template, so that no reload can drop it): hooks, restore, release, from
// the plan; then the run history, metrics and health ping.
type FinishCmd struct {
	Stack string `arg:""`
}

func (c *FinishCmd) Run(ctx context.Context, app *App) error {
	// The restore must finish even while systemd is stopping the unit: a
	// signal here must not leave the stack down.
	ctx = context.WithoutCancel(ctx)
	result, status := os.Getenv("SERVICE_RESULT"), os.Getenv("EXIT_STATUS")
	s, err := app.planStep(ctx, c.Stack, "finish")
	if errors.Is(err, orchestrate.ErrNoPlan) {
		return app.finishWithoutPlan(ctx, c.Stack)
	}
	if err != nil {
		return err
	}
	if s.plan.SnapshotMode() {
		s.env.DuplicatiIdle = duplicatiIdle(s.plan.Settings.Duplicati)
	}
	orchestrate.Finish(ctx, s.env, s.plan, []string{"SERVICE_RESULT=" + result, "EXIT_STATUS=" + status})
	var errs []error
	if err := orchestrate.Release(s.env, c.Stack); err != nil {
		errs = append(errs, err)
	}
	h := app.writeHistory(ctx, s.log, s.env.StateDir, s.plan, result, status)
	if len(s.plan.Failures) > 0 && result == "success" {
		errs = append(errs, fmt.Errorf("these steps failed: %s", strings.Join(s.plan.Failures, "; ")))
	}
	s.env.Status.Set(livestatus.Finished(h.Outcome() + reasonSuffix(h.Reason)))
	s.env.Status.Flush()
	if h.Succeeded() {
		s.log.Info(fmt.Sprintf("backup of %s finished: result %s", c.Stack, orDash(h.Result)))
	} else {
		s.log.Error(fmt.Sprintf("backup of %s finished: result %s%s", c.Stack, orDash(h.Result), reasonSuffix(h.Reason)))
	}
	return errors.Join(errs...)
}

// finishWithoutPlan ends a run that has no plan. Normally the gate never got
// that far and nothing was stopped. But if the hold unit is up, the plan was
// lost after the hold (damaged and moved aside): what was up at the gate is
// unknown, so the stack is brought back as restore_policy = "always" would,
// from its stack file if it can be read, and the unit fails saying so.
func (app *App) finishWithoutPlan(ctx context.Context, stack string) error {
	env, err := app.env(app.logger("", stack, "finish "+stack), 0)
	if err != nil {
		return err
	}
	defer orchestrate.Release(env, stack)
	hold := systemd.HoldService(stack)
	held, herr := manager.IsUp(ctx, app.Manager, hold)
	if herr == nil && !held {
		env.Log.Info("nothing to restore: the gate did not let the backup begin")
		return nil
	}
	env.Log.Error(fmt.Sprintf("%s is up but this run has no plan (damaged?): what was up at the gate is unknown; bringing the stack back as restore_policy = \"always\" would", hold))
	cfg, st, lerr := app.stack(stack)
	if lerr != nil {
		_ = app.Manager.Stop(ctx, true, hold)
		return fmt.Errorf("no plan and no readable stack file (%v): %s was stopped; start the stack's units by hand", lerr, hold)
	}
	p := orchestrate.NewPlan(cfg, st, env.InvocationID)
	p.Settings.Hooks = nil
	p.Settings.RestorePolicy = hcl.RestoreAlways
	p.Held, p.HeldAt = true, time.Now()
	p.Fail("the plan of this run was lost after the hold; the stack was started as restore_policy = \"always\" would")
	rerr := orchestrate.Restore(ctx, env, p)
	p.Finished, p.FinishedAt = !p.LeftDown(), time.Now()
	if err := p.Save(env.StateDir); err != nil {
		env.Log.Error(fmt.Sprintf("saving the plan: %v", err))
	}
	app.writeHistory(ctx, env.Log, env.StateDir, p, "failed", "")
	return errors.Join(errors.New(p.Reason()), rerr)
}

// duplicatiIdle asks the plan's Duplicati whether it runs or queues no
// task, for the removal of a snapshot that a task may still read (nil when
// no client can be made: the removal then does not wait).
func duplicatiIdle(d hcl.Duplicati) orchestrate.IdleFunc {
	if err := applyEnv(&d); err != nil {
		return nil
	}
	b, err := backend(d, d.WaitTimeout, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil
	}
	return func(ctx context.Context) (bool, string, error) {
		sctx, cancel := context.WithTimeout(ctx, d.RunTimeout)
		defer cancel()
		st, err := b.State(sctx)
		if err != nil {
			return false, "", err
		}
		return st.Idle(), st.String(), nil
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// writeHistory records a finished (or recovered) run: history, metrics,
// health ping. It never fails the run; problems are logged.
func (app *App) writeHistory(ctx context.Context, log *slog.Logger, dir string, p *orchestrate.Plan, result, status string) *orchestrate.History {
	if len(p.Failures) > 0 && result == "success" {
		result = "failed"
	}
	h := &orchestrate.History{
		Stack: p.Stack, InvocationID: p.InvocationID, Result: result, ExitStatus: status,
		Gate: p.Gate, HeldAt: p.HeldAt, RestoredAt: p.RestoredAt, Finished: time.Now(),
		Failures: p.Failures, Reason: p.Reason(), Unknown: p.Unknown,
	}
	if h.Succeeded() && len(p.Unknown) > 0 {
		h.Reason = "finished, result unknown (Duplicati before 2.1.2.0 shows duplicati-server-util no result): job(s) " + strings.Join(p.Unknown, ", ")
	}
	if p.Restored && !p.HeldAt.IsZero() {
		h.Downtime = p.RestoredAt.Sub(p.HeldAt).Seconds()
	}
	if h.Reason == "" && result != "success" {
		h.Reason = "the backup unit ended with result " + orDash(result)
		if status != "" && status != "0" {
			h.Reason += ", exit status " + status
		}
	}
	if prev, err := orchestrate.LoadHistory(dir, p.Stack); err == nil && prev != nil {
		h.LastSuccess = prev.LastSuccess
	} else if err != nil {
		log.Warn(err.Error())
	}
	if h.Succeeded() {
		h.LastSuccess = h.Finished
	}
	if err := h.Save(dir); err != nil {
		log.Error(fmt.Sprintf("cannot write the run history: %v", err))
	}
	if err := app.writeMetrics(p.Settings.MetricsFile, dir); err != nil {
		log.Warn(fmt.Sprintf("cannot write metrics_file: %v", err))
	}
	if hc := p.Settings.Healthcheck; hc != nil && hc.URL != "" {
		excerpt := logExcerpt(ctx, p.Settings.LogDir, p.Stack)
		if h.Succeeded() {
			ping(ctx, log, hc, "success", excerpt)
		} else {
			ping(ctx, log, hc, "fail", strings.TrimPrefix(reasonSuffix(h.Reason), ": ")+"\n"+excerpt)
		}
	}
	return h
}

// RecoverCmd is the ExecStart= of backup-recover.service, which the
// generator makes default.target want: at every manager start it restores
// each stack that a backup interrupted by a crash or a shutdown left down,
// by that backup's plan, and records and reports the outage.
type RecoverCmd struct{}

func (c *RecoverCmd) Run(ctx context.Context, app *App) error {
	ctx = context.WithoutCancel(ctx)
	env, err := app.env(app.logger("", "", "recover"), 0)
	if err != nil {
		return err
	}
	plans, err := orchestrate.Unfinished(env.StateDir)
	if err != nil {
		env.Log.Warn(err.Error())
	}
	var errs []error
	why := "at manager start"
	if env.InvocationID == "" {
		why = "by hand (backup-stack recover)"
	}
	for _, p := range plans {
		if err := app.recoverOne(ctx, env, p, why); err != nil {
			errs = append(errs, fmt.Errorf("stack %s: %w", p.Stack, err))
		}
	}
	return errors.Join(errs...)
}

// recoverOne restores what an unfinished plan left down (orchestrate.Recover)
// and, once that run is finished, records and reports it as that run:
// history with the outage, failure notification, health ping.
func (app *App) recoverOne(ctx context.Context, env *orchestrate.Env, p *orchestrate.Plan, why string) error {
	log := app.logger(p.Settings.LogDir, p.Stack, "recover "+p.Stack)
	penv := *env
	penv.Log = log
	if p.SnapshotMode() {
		penv.DuplicatiIdle = duplicatiIdle(p.Settings.Duplicati)
	}
	restored, err := orchestrate.Recover(ctx, &penv, p, why)
	if err != nil {
		log.Error(err.Error())
		return err
	}
	if !p.Finished {
		return nil // its run is still going
	}
	h := app.writeHistory(ctx, log, env.StateDir, p, "interrupted", "")
	if restored {
		log.Warn(fmt.Sprintf("stack %s restored %s; it was down for %.1fs", p.Stack, why, h.Downtime))
	}
	app.notifyFailure(ctx, log, &penv, p, "interrupted", "")
	return nil
}

// notifyFailure runs the plan's on_failure command once per run.
func (app *App) notifyFailure(ctx context.Context, log *slog.Logger, env *orchestrate.Env, p *orchestrate.Plan, result, status string) {
	if p.Notified || p.Settings.Notify == nil || len(p.Settings.Notify.OnFailure) == 0 {
		return
	}
	p.Notified = true
	if err := p.Save(env.StateDir); err != nil {
		log.Error(fmt.Sprintf("saving the plan: %v", err))
	}
	e := notify.Event{Stack: p.Stack, Kind: "failure", Result: result, ExitStatus: status, Reason: p.Reason(),
		Log: logExcerpt(ctx, p.Settings.LogDir, p.Stack)}
	log.Info(fmt.Sprintf("sending the failure notification: %s", p.Settings.Notify.OnFailure[0]))
	if err := notify.Command(ctx, p.Settings.Notify.OnFailure, e, 2*time.Minute, app.Stderr); err != nil {
		log.Error(fmt.Sprintf("notification command: %v", err))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
