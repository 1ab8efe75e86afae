package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"log/slog"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
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
	case errors.Is(err, orchestrate.ErrNotFromUnit):
		return withCode(exitcode.Usage, err)
	case errors.Is(err, context.Canceled):
		return withCode(exitcode.Interrupted, err)
	}
	return err
}

// recordStepFailure remembers why a step before the jobs failed, so the run
// history (and list, status --stacks, notifications) can say it: systemd
// only reports the main process's exit status.
func (s *stepSetup) recordStepFailure(step string, err error) error {
	if err == nil || s.env.InvocationID == "" {
		return err
	}
	code := exitcode.Failure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	_ = orchestrate.AddFailure(s.env.Dir, s.st.Name, s.env.InvocationID, fmt.Sprintf("%s (exit %d)", step, code))
	return err
}

type stepSetup struct {
	cfg *hcl.Config
	st  *hcl.Stack
	log *slog.Logger
	env *orchestrate.Env
}

func (a *App) step(arg, name string) (*stepSetup, error) {
	cfg, st, err := a.stack(arg)
	if err != nil {
		return nil, err
	}
	log := a.logger(cfg, st.Name, name+" "+st.Name)
	env, err := a.env(log, cfg.Duplicati.PollInterval)
	if err != nil {
		return nil, err
	}
	return &stepSetup{cfg: cfg, st: st, log: log, env: env}, nil
}

// GateCmd is the first ExecStartPre= of backup@.service.
type GateCmd struct {
	Stack string `arg:""`
}

func (c *GateCmd) Run(ctx context.Context, app *App) error {
	s, err := app.step(c.Stack, "gate")
	if err != nil {
		return err
	}
	d := s.cfg.Duplicati
	b, err := backend(d, d.WaitTimeout, slog.New(slog.DiscardHandler))
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
		return st.Idle() && !st.Paused, st.String(), nil
	}
	ping(ctx, s.log, s.st, "start", "")
	err = s.recordStepFailure("gate", stepErr(orchestrate.Gate(ctx, s.env, s.st, d.WaitTimeout, idle)))
	if err != nil {
		// release pings /fail with the log; nothing else to do here.
		s.log.Error(fmt.Sprintf("the gate did not let the backup begin; %s was not stopped", s.st.Unit))
	}
	return err
}

// HoldCmd starts the hold unit.
type HoldCmd struct {
	Stack string `arg:""`
}

func (c *HoldCmd) Run(ctx context.Context, app *App) error {
	s, err := app.step(c.Stack, "hold")
	if err != nil {
		return err
	}
	return s.recordStepFailure("hold", stepErr(orchestrate.Hold(ctx, s.env, s.st)))
}

// HeldCmd is the ExecStart= of backup-hold@.service. It only logs: the
// unit's Conflicts= do the work. It must not need the configuration, so a
// hold unit can always start (and thus always be stopped again).
type HeldCmd struct {
	Stack string `arg:""`
}

func (c *HeldCmd) Run(ctx context.Context, app *App) error {
	fmt.Fprintf(app.Stderr, "stack %s is held down for its backup; starting the stack (or its socket) stops the backup (%s)\n",
		c.Stack, systemd.BackupService(c.Stack))
	return nil
}

// WaitStoppedCmd waits for the stack's containers to stop.
type WaitStoppedCmd struct {
	Stack string `arg:""`
}

func (c *WaitStoppedCmd) Run(ctx context.Context, app *App) error {
	s, err := app.step(c.Stack, "wait-stopped")
	if err != nil {
		return err
	}
	return s.recordStepFailure("wait-stopped", stepErr(orchestrate.WaitStopped(ctx, s.env, s.st)))
}

// HookCmd runs a hook from ExecStopPost=.
type HookCmd struct {
	Stack         string   `arg:""`
	Kind          string   `arg:"" enum:"pre_stop,post_stop,pre_backup,post_backup,pre_start,post_start,verify"`
	IgnoreFailure bool     `help:"Log a failure instead of failing the unit."`
	Command       []string `arg:"" passthrough:"" help:"The hook command, after --."`
}

func (c *HookCmd) Run(ctx context.Context, app *App) error {
	s, err := app.step(c.Stack, c.Kind)
	if err != nil {
		return err
	}
	argv := c.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	return stepErr(orchestrate.RunHook(ctx, s.env, s.st, c.Kind, c.IgnoreFailure, argv))
}

// RestoreCmd brings the stack back.
type RestoreCmd struct {
	Stack string `arg:""`
}

func (c *RestoreCmd) Run(ctx context.Context, app *App) error {
	s, err := app.step(c.Stack, "restore")
	if err != nil {
		return err
	}
	// The restore must finish even while systemd is stopping the unit:
	// a signal here must not leave the stack down.
	return stepErr(orchestrate.Restore(context.WithoutCancel(ctx), s.env, s.st))
}

// ReleaseCmd frees the slot and records the run.
type ReleaseCmd struct {
	Stack string `arg:""`
}

func (c *ReleaseCmd) Run(ctx context.Context, app *App) error {
	s, err := app.step(c.Stack, "release")
	if err != nil {
		return err
	}
	r, failed, err := orchestrate.Release(context.WithoutCancel(ctx), s.env, s.st)
	if errors.Is(err, orchestrate.ErrNotFromUnit) {
		// Typed by hand: it is not part of a run, so it must not write a
		// run's history or send its ping.
		return stepErr(err)
	}
	result := os.Getenv("SERVICE_RESULT")
	if len(failed) > 0 && result == "success" {
		result = "failed"
	}
	h := &orchestrate.History{
		Stack: s.st.Name, InvocationID: s.env.InvocationID, Result: result,
		ExitStatus: os.Getenv("EXIT_STATUS"), Finished: time.Now(), Failures: failed,
	}
	if r != nil {
		h.Gate, h.HeldAt, h.RestoredAt = r.Gate, r.HeldAt, r.RestoredAt
		if r.Restored && !r.HeldAt.IsZero() {
			h.Downtime = r.RestoredAt.Sub(r.HeldAt).Seconds()
		}
	}
	if dir, derr := app.stateDir(); derr == nil {
		if prev, perr := orchestrate.LoadHistory(dir, s.st.Name); perr == nil && prev != nil {
			h.LastSuccess = prev.LastSuccess
		}
		if h.Succeeded() {
			h.LastSuccess = h.Finished
		}
		if herr := h.Save(dir); herr != nil {
			s.log.Error(fmt.Sprintf("cannot write the run history: %v", herr))
		}
		if merr := app.writeMetrics(s.cfg, dir); merr != nil {
			s.log.Warn(fmt.Sprintf("cannot write metrics_file: %v", merr))
		}
	}
	if h.Succeeded() {
		s.log.Info(fmt.Sprintf("backup of %s finished: result %s", s.st.Name, orDash(result)))
		ping(ctx, s.log, s.st, "success", logExcerpt(ctx, s.cfg, s.st.Name))
	} else {
		s.log.Error(fmt.Sprintf("backup of %s finished: result %s", s.st.Name, orDash(result)))
		ping(ctx, s.log, s.st, "fail", logExcerpt(ctx, s.cfg, s.st.Name))
	}
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("these steps failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
