package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/livestatus"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
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
	var (
		jobs  []string
		dup   hcl.Duplicati
		wait  time.Duration
		log   *slog.Logger
		stack string
		save  func(string)
		note  func(jobs []string)
		// status is the unit's live status line (nil by hand: no unit to show it).
		status *livestatus.Notifier
	)
	if c.Force {
		// By hand, with the configuration as it is now.
		cfg, st, err := app.stack(c.Stack)
		if err != nil {
			return err
		}
		stack, jobs, dup, wait = st.Name, st.Jobs, cfg.Duplicati, st.WaitTimeout
		log = app.logger(cfg.LogDir, st.Name, "run "+st.Name)
		save = func(string) {}
		note = func([]string) {}
	} else {
		// From the unit: the plan's jobs and Duplicati, and only while the
		// stack is held down with every container stopped. A run that got
		// here without them (a daemon-reload made systemd skip the rest of
		// ExecStartPre=) would back up a running stack.
		s, err := app.planStep(ctx, systemd.StackFromArg(c.Stack), "run")
		if err != nil {
			return withCode(exitcode.Usage, fmt.Errorf("%w; start the backup with `systemctl --user start %s`, or pass --force to back up the running stack",
				err, systemd.BackupService(systemd.StackFromArg(c.Stack))))
		}
		p := s.plan
		if p.SnapshotMode() {
			// The jobs read the frozen copy: the stack may run meanwhile.
			if err := orchestrate.SnapshotsReady(p); err != nil {
				return s.fail(withCode(exitcode.Usage, err))
			}
		} else {
			hold := systemd.HoldService(p.Stack)
			held, err := manager.IsUp(ctx, app.Manager, hold)
			if err != nil || !held || !p.Held || !p.Stopped {
				return s.fail(withCode(exitcode.Usage, fmt.Errorf("stack %s is not held down with its containers stopped (%s up: %v, plan held: %v, containers stopped: %v); no job was started",
					p.Stack, hold, held, p.Held, p.Stopped)))
			}
		}
		orchestrate.NoteChanges(s.env, p)
		stack, jobs, dup, wait, log = p.Stack, p.Settings.Jobs, p.Settings.Duplicati, p.Settings.WaitTimeout, s.log
		status = s.env.Status
		defer status.Flush()
		if !p.SnapshotMode() {
			// Starting the stack during the job stops this backup: PartOf= on the
			// hold unit does it while the hold's Conflicts= are in place, this
			// watch also when a daemon-reload took them away.
			var cancel context.CancelCauseFunc
			ctx, cancel = context.WithCancelCause(ctx)
			defer cancel(nil)
			go func() {
				if u, ok := <-orchestrate.WatchUp(ctx, s.env, p.Units(), time.Second); ok {
					log.Error(fmt.Sprintf("%s was started during the backup; stopping the job: a backup of a running stack is not the one that was asked for", u))
					cancel(fmt.Errorf("%w: %s was started during the backup", context.Canceled, u))
				}
			}()
		}
		note = func(jobs []string) {
			p.Unknown = jobs
			if err := p.Save(s.env.StateDir); err != nil {
				log.Error(fmt.Sprintf("saving the plan: %v", err))
			}
		}
		save = func(why string) {
			p.Fail("run: " + why)
			if err := p.Save(s.env.StateDir); err != nil {
				log.Error(fmt.Sprintf("saving the plan: %v", err))
			}
		}
	}
	if err := applyEnv(&dup); err != nil {
		return withCode(exitcode.Usage, err)
	}
	b, err := backend(dup, wait, app.abortWait(ctx, stack, wait, c.Force), log)
	if err != nil {
		return err
	}
	worst := 0
	var firstErr error
	var unknown []string
	for i, job := range jobs {
		start := time.Now()
		log.Info(fmt.Sprintf("job %d/%d %q: starting", i+1, len(jobs), job))
		stopStatus := jobStatus(ctx, status, b, i+1, len(jobs), job)
		out, err := b.Run(ctx, job)
		stopStatus()
		elapsed := time.Since(start).Round(100 * time.Millisecond)
		code, msg := verdict(dup.WarningIsFailure, out, err)
		// reason is the run's line for people (list, BACKUP_REASON): the job and what happened.
		reason := fmt.Sprintf("job %q: %s after %s", job, msg, elapsed)
		switch code {
		case exitcode.Timeout:
			// How long, for which job, and which setting bounds it.
			reason = fmt.Sprintf("waited %s for job %q (wait_timeout): %s", fmtWait(wait), job,
				strings.TrimPrefix(msg, "not finished within wait_timeout: "))
		case exitcode.Interrupted, exitcode.StillHeld:
			// Who stopped it: a signal, or the stack started during the backup.
			if c := context.Cause(ctx); c != nil && c.Error() != context.Canceled.Error() {
				reason += " (" + strings.TrimPrefix(c.Error(), context.Canceled.Error()+": ") + ")"
			}
		}
		if err == nil && code == exitcode.OK && out.Result == duplicati.ResultUnknown {
			unknown = append(unknown, job)
		}
		level := slog.LevelInfo
		if code != exitcode.OK {
			level = slog.LevelError
		}
		log.Log(ctx, level, fmt.Sprintf("job %q of stack %s: %s after %s", job, stack, msg, elapsed))
		if code > worst || (code != 0 && worst == 0) {
			worst = code
			if firstErr == nil {
				firstErr = errors.New(reason)
			}
		}
		if code == exitcode.Unreachable || code == exitcode.Interrupted {
			break
		}
	}
	if len(unknown) > 0 {
		note(unknown)
	}
	if worst != 0 {
		save(firstErr.Error())
		// The history says only the job (list shows the stack); a person running it by hand
		// reads the stack too.
		return withCode(worst, fmt.Errorf("stack %s: %w", stack, firstErr))
	}
	log.Info(fmt.Sprintf("all %d job(s) of stack %s finished successfully", len(jobs), stack))
	return nil
}

// jobStatus keeps the unit's status line on job i of n until the returned func is called:
// Duplicati's progress where the route gives it (REST), else how long the job has run.
func jobStatus(ctx context.Context, status *livestatus.Notifier, b duplicati.Backend, i, n int, job string) (stop func()) {
	if status == nil {
		return func() {}
	}
	var mu sync.Mutex
	var last *duplicati.Progress
	duplicati.OnProgress(b, func(p duplicati.Progress) {
		mu.Lock()
		last = &p
		mu.Unlock()
	})
	start := time.Now()
	show := func() {
		mu.Lock()
		p := last
		mu.Unlock()
		status.Set(livestatus.Job(i, n, job, p, time.Since(start)))
	}
	show()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(livestatus.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				show()
			}
		}
	}()
	return func() {
		cancel()
		<-done
		duplicati.OnProgress(b, nil)
	}
}

// fmtWait says a wait_timeout as it is written in the stack file ("6h", "2m", "90s").
func fmtWait(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// verdict maps what the client learnt to an exit code and one line that starts with
// what matters (Duplicati's own words where it gave any): list and the notification show
// the start of it.
func verdict(warningIsFailure bool, out duplicati.Outcome, err error) (int, string) {
	var ids []string
	if out.TaskID != 0 {
		ids = append(ids, fmt.Sprintf("task %d", out.TaskID))
	}
	if out.BackupID != "" {
		ids = append(ids, "backup "+out.BackupID)
	}
	tag := func(words ...string) string {
		all := append(words, ids...)
		if len(all) == 0 {
			return ""
		}
		return " (" + strings.Join(all, ", ") + ")"
	}
	if err != nil {
		// The client's errors start with the job's label, which the caller prints already.
		text := err.Error()
		if out.Job != "" {
			text = strings.TrimPrefix(text, fmt.Sprintf("job %q (backup %s): ", out.Job, out.BackupID))
		}
		switch {
		case errors.Is(err, duplicati.ErrStillHeld):
			return exitcode.StillHeld, text
		case errors.Is(err, duplicati.ErrInterrupted):
			return exitcode.Interrupted, text
		case errors.Is(err, duplicati.ErrTimeout):
			return exitcode.Timeout, "not finished within wait_timeout: " + text
		case errors.Is(err, duplicati.ErrNoSuchJob):
			return exitcode.Usage, "no such Duplicati backup: " + text
		case errors.Is(err, duplicati.ErrUnreachable), errors.Is(err, duplicati.ErrUnparseable):
			return exitcode.Unreachable, "Duplicati unreachable: " + text
		default:
			return exitcode.Failure, "failed: " + text
		}
	}
	msg := out.Message
	switch out.Result {
	case duplicati.ResultSuccess:
		return 0, "Success" + tag()
	case duplicati.ResultWarning:
		if warningIsFailure {
			return exitcode.Warning, orWords(msg, "Warning") + tag("Warning", "warning_is_failure = true")
		}
		return 0, orWords(msg, "Warning") + tag("Warning, counted as success; set warning_is_failure = true to fail")
	case duplicati.ResultError:
		return exitcode.JobError, orWords(msg, "the backup ended with errors") + tag("Error")
	case duplicati.ResultFatal:
		return exitcode.Fatal, orWords(msg, "the backup failed") + tag("Fatal")
	default:
		if out.Succeeded() {
			return 0, "finished, result unknown" + tag() + ": " + orWords(msg, "Duplicati shows no result") + "; counted as success"
		}
		return exitcode.Unknown, orWords(msg, "outcome unknown") + tag("outcome unknown")
	}
}

func orWords(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// abortWait is how long a stopped job may be followed until Duplicati shows it ended: the
// unit's stop timeout (systemd sends SIGKILL after it) less a reserve for saving the plan
// and logging, so that "Duplicati still holds the task" is said before the kill.
func (app *App) abortWait(ctx context.Context, stack string, wait time.Duration, byHand bool) time.Duration {
	const reserve, least = 15 * time.Second, 5 * time.Second
	// By hand (Ctrl-C) and where the unit cannot be asked: a minute, or wait_timeout if
	// shorter.
	fallback := time.Minute
	if wait > 0 {
		fallback = min(fallback, wait)
	}
	if byHand {
		return fallback
	}
	ps, err := app.Manager.Show(ctx, []string{systemd.BackupService(stack)}, "TimeoutStopUSec")
	if err != nil || len(ps) == 0 {
		return fallback
	}
	d, finite, err := systemd.ParseTimespan(ps[0]["TimeoutStopUSec"])
	switch {
	case err != nil:
		return fallback
	case !finite:
		return 6 * time.Hour
	}
	return max(d-reserve, least)
}
