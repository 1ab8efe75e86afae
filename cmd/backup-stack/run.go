package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// RunCmd runs a stack's jobs.
type RunCmd struct {
	Stack string `arg:"" help:"Stack name (or its unit name, e.g. cryptpad-stack.service)."`
	Force bool   `help:"Run the jobs even though the stack is not held down (a backup of a running stack)."`
}

// Run runs every job in order. After a failed job the next jobs still run
// (the stack is down already, and each job is a separate backup), except
// when Duplicati is unreachable or we were interrupted.
func (c *RunCmd) Run(ctx context.Context, app *App) error {
	cfg, st, err := app.stack(c.Stack)
	if err != nil {
		return err
	}
	log := app.logger(cfg, st.Name, "run "+st.Name)
	if !c.Force {
		// Run by hand, this would back up a running stack: the very thing
		// the units exist to prevent.
		hold := systemd.HoldService(st.Name)
		held, err := manager.IsUp(ctx, app.Manager, hold)
		if err != nil || !held {
			return withCode(exitcode.Usage, fmt.Errorf("stack %s is not held down (%s is not active); start the backup with `systemctl --user start %s`, or pass --force to back up the running stack",
				st.Name, hold, systemd.BackupService(st.Name)))
		}
	}
	b, err := backend(cfg.Duplicati, st.WaitTimeout, log)
	if err != nil {
		return err
	}
	worst := 0
	var firstErr error
	for i, job := range st.Jobs {
		start := time.Now()
		log.Info(fmt.Sprintf("job %d/%d %q: starting", i+1, len(st.Jobs), job))
		out, err := b.Run(ctx, job)
		elapsed := time.Since(start).Round(100 * time.Millisecond)
		code, msg := verdict(cfg.Duplicati.WarningIsFailure, out, err)
		level := slog.LevelInfo
		if code != exitcode.OK {
			level = slog.LevelError
		}
		log.Log(ctx, level, fmt.Sprintf("job %q of stack %s: %s after %s", job, st.Name, msg, elapsed))
		if code > worst || (code != 0 && worst == 0) {
			worst = code
			if firstErr == nil {
				firstErr = fmt.Errorf("stack %s: job %q: %s after %s", st.Name, job, msg, elapsed)
			}
		}
		if code == exitcode.Unreachable || code == exitcode.Interrupted {
			break
		}
	}
	if worst != 0 {
		return withCode(worst, firstErr)
	}
	log.Info(fmt.Sprintf("all %d job(s) of stack %s finished successfully", len(st.Jobs), st.Name))
	return nil
}

// verdict maps what the client learnt to an exit code and one line.
func verdict(warningIsFailure bool, out duplicati.Outcome, err error) (int, string) {
	task := ""
	if out.TaskID != 0 {
		task = fmt.Sprintf(" task %d", out.TaskID)
	}
	if out.BackupID != "" {
		task += fmt.Sprintf(" (backup ID %s)", out.BackupID)
	}
	if err != nil {
		switch {
		case errors.Is(err, duplicati.ErrInterrupted):
			return exitcode.Interrupted, fmt.Sprintf("interrupted%s: %v", task, err)
		case errors.Is(err, duplicati.ErrTimeout):
			return exitcode.Timeout, fmt.Sprintf("not finished within wait_timeout%s: %v", task, err)
		case errors.Is(err, duplicati.ErrNoSuchJob):
			return exitcode.Usage, fmt.Sprintf("no such Duplicati backup: %v", err)
		case errors.Is(err, duplicati.ErrUnreachable), errors.Is(err, duplicati.ErrUnparseable):
			return exitcode.Unreachable, fmt.Sprintf("Duplicati unreachable%s: %v", task, err)
		default:
			return exitcode.Failure, fmt.Sprintf("failed%s: %v", task, err)
		}
	}
	detail := ""
	if out.Message != "" {
		detail = ": " + out.Message
	}
	switch out.Result {
	case duplicati.ResultSuccess:
		return 0, "Success" + task
	case duplicati.ResultWarning:
		if warningIsFailure {
			return exitcode.Warning, "Warning" + task + " (warning_is_failure = true)" + detail
		}
		return 0, "Warning" + task + " (counted as success; set warning_is_failure = true to fail)" + detail
	case duplicati.ResultError:
		return exitcode.JobError, "Error" + task + detail
	case duplicati.ResultFatal:
		return exitcode.Fatal, "Fatal" + task + detail
	default:
		if out.Succeeded() {
			return 0, "finished" + task + "; outcome not reported by the exec route (duplicati-server-util gives no result), counted as success"
		}
		return exitcode.Unknown, "outcome unknown" + task + detail
	}
}
