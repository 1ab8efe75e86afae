package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
)

// RunCmd runs a stack's jobs.
type RunCmd struct {
	Stack string `arg:"" help:"Stack name (or its unit name, e.g. cryptpad-stack.service)."`
	Force bool   `help:"Run the jobs even though the stack is not held down (a backup of a running stack)."`
}

// Exit codes of run, by how bad the outcome is.
const (
	exitWarning     = 4
	exitJobError    = 5
	exitFatal       = 6
	exitUnknown     = 7
	exitTimeout     = 8
	exitUnreachable = 9
	exitInterrupted = 10
	exitPrecond     = 11
)

// Run runs every job in order. After a failed job the next jobs still run
// (the stack is down already, and each job is a separate backup), except
// when Duplicati is unreachable or we were interrupted.
func (c *RunCmd) Run(ctx context.Context, app *App) error {
	set, st, err := app.stack(c.Stack)
	if err != nil {
		return err
	}
	l := app.logger(set, st.Name, "run "+st.Name)
	if !c.Force {
		// Run by hand, this would back up a running stack: the very thing
		// the units exist to prevent.
		held, err := orchestrate.Systemctl{}.Active(ctx, orchestrate.HoldUnit(st.Name))
		if err != nil || !held {
			return withCode(exitUsage, fmt.Errorf("stack %s is not held down (%s is not active); start the backup with `systemctl --user start %s`, or pass --force to back up the running stack",
				st.Name, orchestrate.HoldUnit(st.Name), orchestrate.BackupUnit(st.Name)))
		}
	}
	b, err := backend(set.Config.Duplicati, st.WaitTimeout, l.Logf)
	if err != nil {
		return err
	}
	worst := 0
	var firstErr error
	for i, job := range st.Jobs {
		start := time.Now()
		l.Logf("job %d/%d %q: starting", i+1, len(st.Jobs), job)
		out, err := b.Run(ctx, job)
		elapsed := time.Since(start).Round(100 * time.Millisecond)
		code, msg := verdict(set.Config.Duplicati.WarningIsFailure, out, err)
		l.Logf("job %q of stack %s: %s after %s", job, st.Name, msg, elapsed)
		if code > worst || (code != 0 && worst == 0) {
			worst = code
			if firstErr == nil {
				firstErr = fmt.Errorf("stack %s: job %q: %s after %s", st.Name, job, msg, elapsed)
			}
		}
		if code == exitUnreachable || code == exitInterrupted {
			break
		}
	}
	if worst != 0 {
		return withCode(worst, firstErr)
	}
	l.Logf("all %d job(s) of stack %s finished successfully", len(st.Jobs), st.Name)
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
			return exitInterrupted, fmt.Sprintf("interrupted%s: %v", task, err)
		case errors.Is(err, duplicati.ErrTimeout):
			return exitTimeout, fmt.Sprintf("not finished within wait_timeout%s: %v", task, err)
		case errors.Is(err, duplicati.ErrNoSuchJob):
			return exitUsage, fmt.Sprintf("no such Duplicati backup: %v", err)
		case errors.Is(err, duplicati.ErrUnreachable), errors.Is(err, duplicati.ErrUnparseable):
			return exitUnreachable, fmt.Sprintf("Duplicati unreachable%s: %v", task, err)
		default:
			return 1, fmt.Sprintf("failed%s: %v", task, err)
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
			return exitWarning, "Warning" + task + " (warning_is_failure = true)" + detail
		}
		return 0, "Warning" + task + " (counted as success; set warning_is_failure = true to fail)" + detail
	case duplicati.ResultError:
		return exitJobError, "Error" + task + detail
	case duplicati.ResultFatal:
		return exitFatal, "Fatal" + task + detail
	default:
		if out.Succeeded() {
			return 0, "finished" + task + "; outcome not reported by the exec route (duplicati-server-util gives no result), counted as success"
		}
		return exitUnknown, "outcome unknown" + task + detail
	}
}
