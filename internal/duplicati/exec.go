package duplicati

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// execBackend is the exec route: it runs Options.Command + {"status"|"list-backups"|"run", ...}.
//
// What it can and cannot know:
//   - `run` without --wait only enqueues; `status` shows queued and active tasks with their
//     backup IDs. So completion is "our backup is neither active nor queued", which needs
//     care: it must have been seen first (or `run` must have returned cleanly, which means
//     the POST was accepted), and it must be gone in TWO consecutive polls because the server
//     reads the active task and the queue non-atomically.
//   - The result (Success/Warning/...) is not visible: `status` shows none, and the only
//     util command that reports one is `run --wait` (2.2.0.2 and later, exit code only from
//     2.3.1.0). `run --wait` is deliberately NOT used: it re-authenticates and retries with
//     no delay on every error, including "Backup is not queued or running", so a job that
//     ends before its first check turns it into an endless busy loop;
//     before 2.1.2.0 it crashes after 15 minutes. So Result is always Unknown
//     here, Outcome.UnknownIsSuccess is set so the caller may count the run as the seed did.
//   - A task cannot be aborted through the util: on cancellation Run says so and returns.
type execBackend struct {
	o      Options
	noJSON atomic.Bool // the util has no --json (Duplicati before 2.1.2.0)
}

// invocation is the result of one util run.
type invocation struct {
	out         string // stdout and stderr, interleaved
	err         error  // nil when the process exited 0
	timedOut    bool   // killed after RunTimeout
	interrupted bool   // the caller's context ended
}

// invoke runs Command+args in its own process group, stdin from /dev/null (never a TTY),
// bounded by RunTimeout; on timeout or cancellation the whole process group is killed.
func (e *execBackend) invoke(ctx context.Context, args ...string) invocation {
	argv := append(append([]string(nil), e.o.Command...), args...)
	tctx, cancel := context.WithTimeout(ctx, e.o.RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, argv[0], argv[1:]...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	inv := invocation{out: buf.String()}
	what := "`" + strings.Join(args, " ") + "`"
	switch {
	case ctx.Err() != nil:
		inv.interrupted = true
		inv.err = fmt.Errorf("%s: %w", what, ErrInterrupted)
	case tctx.Err() != nil:
		inv.timedOut = true
		inv.err = fmt.Errorf("duplicati-server-util %s did not return within %s (killed): %w", what, fmtDur(e.o.RunTimeout), ErrUnreachable)
	case err != nil:
		var ee *exec.ExitError
		if owner, ok := dataFolderRefusal(inv.out); ok {
			user := "<the owner's uid>"
			if owner != "" {
				user = owner
			}
			inv.err = fmt.Errorf("duplicati-server-util %s refuses its data folder (Duplicati 2.3.1.0 and later accept it only when owned by the calling user or root, mode 0700): %s: "+
				"set exec_user = %q in the duplicati block of config.hcl (podman exec -u), or DUPLICATI__ALLOW_INSECURE_DATAFOLDER=true on the Duplicati container: %w",
				what, lineWith(inv.out, "does not have secure permissions"), user, ErrUnreachable)
		} else if errors.As(err, &ee) && ee.ExitCode() == 1 && strings.TrimSpace(inv.out) == "" {
			// 2.3.1.0 checks its data folder while loading its settings, before it has an
			// output to write to: the refusal is an exit 1 without a word.
			inv.err = fmt.Errorf("duplicati-server-util %s exited with 1 without any output; Duplicati 2.3.1.0 and later do this when the util refuses its data folder "+
				"(accepted only when owned by the calling user or root, mode 0700, and podman exec runs as root unless told otherwise): "+
				"set exec_user in the duplicati block of config.hcl to the owner of the container's data folder (e.g. \"abc\" for linuxserver's image, the UID you gave the official image), "+
				"or DUPLICATI__ALLOW_INSECURE_DATAFOLDER=true on the Duplicati container: %w", what, ErrUnreachable)
		} else if errors.As(err, &ee) {
			inv.err = fmt.Errorf("duplicati-server-util %s exited with %d: %s: %w", what, ee.ExitCode(), lastLine(inv.out), ErrUnreachable)
		} else {
			inv.err = fmt.Errorf("duplicati-server-util %s: %v: %w", what, err, ErrUnreachable)
		}
	}
	return inv
}

func (e *execBackend) State(ctx context.Context) (ServerState, error) {
	inv := e.invoke(ctx, "status")
	if inv.err != nil {
		return ServerState{}, inv.err
	}
	return parseStatus(inv.out)
}

func (e *execBackend) resolve(ctx context.Context, job string) (backupEntry, error) {
	inv := e.invoke(ctx, "list-backups")
	if inv.err != nil {
		return backupEntry{}, inv.err
	}
	list, err := parseListBackups(inv.out)
	if err != nil {
		return backupEntry{}, err
	}
	b, ok := matchBackup(list, job)
	if !ok {
		return backupEntry{}, fmt.Errorf("job %q: %w (known: %s)", job, ErrNoSuchJob, describeBackups(list))
	}
	return b, nil
}

func describeBackups(list []backupEntry) string {
	if len(list) == 0 {
		return "none"
	}
	parts := make([]string, len(list))
	for i, b := range list {
		parts[i] = fmt.Sprintf("%s (ID %s)", b.Name, b.ID)
	}
	return strings.Join(parts, ", ")
}

// execUnknownMsg is Outcome.Message of a finished exec-route job on a server without
// `list-backups --json` (2.1.0.x), where nothing tells how the job ended.
const execUnknownMsg = "finished, result unknown: this Duplicati (before 2.1.2.0) shows no result to duplicati-server-util"

func (e *execBackend) Run(ctx context.Context, job string) (Outcome, error) {
	o := e.o
	logf := o.Logf
	oc := Outcome{Job: job, Result: ResultUnknown}
	deadline := time.NewTimer(o.WaitTimeout)
	defer deadline.Stop()
	began := time.Now()

	// list-backups and status are independent; each is a `podman exec`, and the stack is
	// already down, so ask both at once.
	type stateResult struct {
		s   ServerState
		err error
	}
	preCh := make(chan stateResult, 1)
	go func() {
		st, err := e.State(ctx)
		preCh <- stateResult{st, err}
	}()
	b, before, err := e.resolveMeta(ctx, job)
	preRes := <-preCh
	if err != nil {
		return oc, err
	}
	bid := b.ID
	oc.BackupID = bid
	label := fmt.Sprintf("job %q (backup %s)", job, bid)

	pre, err := preRes.s, preRes.err
	if err != nil {
		return oc, err
	}
	seen := false
	if t, active, ok := pre.Holds(bid); ok {
		oc.Existing, oc.TaskID, seen = true, t.ID, true
		logf("%s: Duplicati already has task %d %s for this backup (%s); run enqueues nothing, waiting for that task",
			label, t.ID, map[bool]string{true: "active", false: "queued"}[active], pre)
	}
	if pre.Paused {
		logf("%s: the Duplicati server is paused: queued tasks do not start until it is resumed", label)
	}

	t0 := time.Now()
	oc.Started = t0
	sawActive := false
	logf("%s: asking Duplicati to run it", label)
	runCtx, runCancel := context.WithCancel(ctx)
	runCh := make(chan invocation, 1)
	go func() { runCh <- e.invoke(runCtx, "run", job) }()
	runPending := true
	defer func() {
		runCancel()
		if runPending {
			<-runCh
		}
	}()

	var (
		runReturned    bool // `run` exited 0: the server accepted the request
		runKilled      bool // `run` hung and was killed; checkAfterKill until the next status
		checkAfterKill bool
		goneStreak     int
		lastPhase      = "" // "queued", "active" (of our task), "gone"
		lastPaused     = pre.Paused
		lastProgress   = time.Now()
		failSince      time.Time // start of a streak of failed status polls
		confirmDelay   = min(o.PollInterval, maxConfirmDelay)
	)
	// interval is the poll interval after d of waiting: every util call adds a TokenFamily
	// row on the server, so after the first minute the route polls less often.
	interval := func() time.Duration {
		if time.Since(began) < execSlowPollAfter {
			return o.PollInterval
		}
		return max(o.PollInterval, execSlowPoll)
	}
	poll := time.NewTimer(o.PollInterval)
	defer poll.Stop()
	reset := func(d time.Duration) {
		poll.Stop()
		select {
		case <-poll.C:
		default:
		}
		poll.Reset(d)
	}
	// stopped follows the task after an interruption or a wait timeout: the util cannot
	// abort, so the only safe answer is to see the task gone, or to say that Duplicati still
	// holds it.
	stopped := func(cause error, what string) (Outcome, error) {
		oc.Finished = time.Now()
		if !seen && !runReturned && !runKilled {
			// `run` never returned: the request may be on its way; look once.
			runCancel()
		}
		held, phase, err := e.followUntilGone(bid, label)
		switch {
		case err != nil:
			logf("%s: %s; cannot tell whether Duplicati still holds the backup: %v", label, what, err)
			return oc, fmt.Errorf("%s: %s; Duplicati could not be asked whether it still holds the backup (%v): it may back up the live stack: %w: %w", label, what, err, cause, ErrStillHeld)
		case held:
			msg := stillHeld(label, oc.TaskID, phase, o.AbortWait, false)
			logf("%s", msg)
			return oc, fmt.Errorf("%s: %w: %w", msg, cause, ErrStillHeld)
		}
		logf("%s: %s; the backup is no longer queued or active in Duplicati (duplicati-server-util cannot abort it; it ended there)", label, what)
		return oc, fmt.Errorf("%s: %s: %w", label, what, cause)
	}

	for {
		select {
		case <-ctx.Done():
			return stopped(ErrInterrupted, "interrupted")
		case <-deadline.C:
			st := "not seen"
			if lastPhase != "" {
				st = lastPhase
			}
			return stopped(ErrTimeout, fmt.Sprintf("not finished after %s (wait timeout; last seen: %s)", fmtDur(time.Since(began)), st))
		case inv := <-runCh:
			runPending = false
			if ctx.Err() != nil {
				return stopped(ErrInterrupted, "interrupted")
			}
			if _, id, ok := parseRunLine(inv.out); ok && id != bid {
				logf("%s: duplicati-server-util ran backup %s, not %s; following backup %s", label, id, bid, id)
				bid, oc.BackupID, seen, goneStreak = id, id, false, 0
				label = fmt.Sprintf("job %q (backup %s)", job, bid)
			}
			switch {
			case inv.timedOut:
				runKilled, checkAfterKill = true, true
				logf("%s: duplicati-server-util run did not return within %s; killed it, checking that the backup was queued", label, fmtDur(o.RunTimeout))
			case inv.err != nil:
				if strings.Contains(inv.out, "No backup found") {
					return oc, fmt.Errorf("job %q: %s: %w", job, lastLine(inv.out), ErrNoSuchJob)
				}
				// The util failed. If the backup is queued or active anyway, wait for it.
				st, err := e.State(ctx)
				if ctx.Err() != nil {
					return stopped(ErrInterrupted, "interrupted")
				}
				if err != nil {
					return oc, inv.err
				}
				if _, _, ok := st.Holds(bid); !ok {
					return oc, inv.err
				}
				logf("%s: %v; but the backup is queued or active, waiting for it", label, inv.err)
				runKilled = true
			default:
				runReturned = true
			}
			reset(0)
		case <-poll.C:
			st, err := e.State(ctx)
			if ctx.Err() != nil {
				return stopped(ErrInterrupted, "interrupted")
			}
			if err != nil {
				if errors.Is(err, ErrUnparseable) {
					return oc, fmt.Errorf("%s: %w", label, err)
				}
				if failSince.IsZero() {
					failSince = time.Now()
				}
				if checkAfterKill || time.Since(failSince) >= unreachableGraceInWait {
					return oc, fmt.Errorf("%s: %w", label, err)
				}
				logf("%s: status failed, retrying: %v", label, err)
				reset(o.PollInterval)
				continue
			}
			failSince = time.Time{}
			if st.Paused != lastPaused {
				lastPaused = st.Paused
				logf("%s: the Duplicati server is %s", label, map[bool]string{true: "paused", false: "running (resumed)"}[st.Paused])
			}
			t, active, ok := st.Holds(bid)
			afterRun := runReturned || runKilled
			if ok {
				seen, goneStreak, checkAfterKill = true, 0, false
				if oc.TaskID != t.ID {
					oc.TaskID = t.ID
				}
				phase := "queued"
				if active {
					phase = "active"
					if !sawActive {
						sawActive = true
						oc.Started = time.Now()
					}
				}
				if phase != lastPhase {
					lastPhase = phase
					lastProgress = time.Now()
					if active {
						logf("%s: task %d running", label, t.ID)
					} else {
						logf("%s: task %d queued (%s)", label, t.ID, st)
					}
				} else if time.Since(lastProgress) >= progressEvery {
					lastProgress = time.Now()
					logf("%s: task %d still %s after %s (%s)", label, t.ID, map[bool]string{true: "running", false: "queued"}[active], fmtDur(time.Since(began)), st)
				}
				reset(interval())
				continue
			}
			if !afterRun {
				// `run` has not returned yet: the backup may simply not be enqueued yet.
				reset(o.PollInterval)
				continue
			}
			if checkAfterKill && !seen {
				return oc, fmt.Errorf("%s: duplicati-server-util run hung and was killed after %s, and the backup is neither queued nor active (%s): nothing was enqueued: %w",
					label, fmtDur(o.RunTimeout), st, ErrUnreachable)
			}
			checkAfterKill = false
			goneStreak++
			// A task seen active cannot go back to the queue, so one answer without it is
			// enough. Otherwise look twice: one answer can miss a task moving from the queue
			// to the active slot (the server reads them non-atomically).
			if goneStreak < 2 && lastPhase != "active" {
				reset(confirmDelay)
				continue
			}
			oc.Finished = time.Now()
			if !seen {
				logf("%s: the backup was never seen queued or active: it finished within one poll", label)
			}
			what := "finished"
			if oc.TaskID != 0 {
				what = fmt.Sprintf("task %d left the queue", oc.TaskID)
			}
			if before == nil {
				oc.UnknownIsSuccess = true
				oc.Message = execUnknownMsg
				logf("%s: %s after %s; %s", label, what, fmtDur(time.Since(began)), execUnknownMsg)
				return oc, nil
			}
			return e.judge(ctx, oc, before, t0, label, what, began)
		}
	}
}

// resolveMeta resolves job with `list-backups --json` where the server has it (2.1.2.0 and
// later) and returns the backup's metadata before the run; on older servers it falls back
// to the text listing and returns nil metadata (nothing will tell the job's result).
func (e *execBackend) resolveMeta(ctx context.Context, job string) (backupEntry, map[string]string, error) {
	if e.noJSON.Load() {
		b, err := e.resolve(ctx, job)
		return b, nil, err
	}
	inv := e.invoke(ctx, "list-backups", "--json")
	if inv.err != nil {
		if strings.Contains(inv.out, "Unrecognized command or argument '--json'") {
			e.noJSON.Store(true)
			e.o.Logf("duplicati-server-util has no --json (Duplicati before 2.1.2.0): job results cannot be read on the exec route")
			b, err := e.resolve(ctx, job)
			return b, nil, err
		}
		return backupEntry{}, nil, inv.err
	}
	list, err := parseListBackupsJSON(inv.out)
	if err != nil {
		return backupEntry{}, nil, err
	}
	entries := make([]backupEntry, len(list))
	for i, b := range list {
		entries[i] = b.backupEntry
	}
	b, ok := matchBackup(entries, job)
	if !ok {
		return backupEntry{}, nil, fmt.Errorf("job %q: %w (known: %s)", job, ErrNoSuchJob, describeBackups(entries))
	}
	for _, m := range list {
		if m.ID == b.ID {
			md := m.Meta
			if md == nil {
				md = map[string]string{}
			}
			return b, md, nil
		}
	}
	return b, map[string]string{}, nil
}

// judge reads the backup's metadata after our task left the queue and compares it with the
// metadata from before the run: a new LastErrorDate means the run threw (Duplicati's message
// is LastErrorMessage), a new LastBackupFinished that it finished; neither means no backup
// of ours ran (the task that left the queue was a verify or compact, or it was interrupted).
func (e *execBackend) judge(ctx context.Context, oc Outcome, before map[string]string, t0 time.Time, label, what string, began time.Time) (Outcome, error) {
	logf := e.o.Logf
	var after map[string]string
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var inv invocation
		if inv = e.invoke(ctx, "list-backups", "--json"); inv.err == nil {
			var list []backupMeta
			if list, err = parseListBackupsJSON(inv.out); err == nil {
				for _, m := range list {
					if m.ID == oc.BackupID {
						after = m.Meta
					}
				}
				if after == nil {
					err = fmt.Errorf("backup %s is no longer listed: %w", oc.BackupID, ErrNoSuchJob)
				}
				break
			}
		} else {
			err = inv.err
		}
		if ctx.Err() != nil {
			return oc, fmt.Errorf("%s: reading the result: %w", label, ErrInterrupted)
		}
	}
	if err != nil {
		oc.Message = "the job left the queue, but its result could not be read: " + err.Error()
		logf("%s: %s after %s; %s", label, what, fmtDur(time.Since(began)), oc.Message)
		return oc, nil
	}
	since := t0.Truncate(time.Second)
	newer := func(k string) (time.Time, bool) {
		if after[k] == "" || after[k] == before[k] {
			return time.Time{}, false
		}
		t, ok := metaTime(after[k])
		return t, ok && !t.Before(since)
	}
	errAt, threw := newer("LastErrorDate")
	finAt, finished := newer("LastBackupFinished")
	switch {
	case threw && (!finished || !finAt.After(errAt)):
		oc.Result = ResultFatal
		oc.Message = orStr(shorten(after["LastErrorMessage"], 300), "the backup failed (Duplicati gave no message)")
		logf("%s: %s after %s; the backup failed: %s", label, what, fmtDur(time.Since(began)), oc.Message)
	case finished:
		oc.Result = ResultSuccess
		oc.Message = "finished (Duplicati's metadata; warnings and non-fatal errors are not visible to duplicati-server-util)"
		logf("%s: %s after %s; the backup finished at %s", label, what, fmtDur(time.Since(began)), finAt.Local().Format(time.TimeOnly))
	default:
		oc.Result = ResultUnknown
		oc.Message = fmt.Sprintf("no backup ran: Duplicati's metadata of backup %s shows neither a finished backup nor an error since %s", oc.BackupID, since.Local().Format(time.TimeOnly))
		if oc.Existing {
			oc.Message += "; the task that was already queued for this backup was not a backup (a verify, compact or repair), or it was interrupted"
		} else {
			oc.Message += "; the run was interrupted in Duplicati, or it was not a backup"
		}
		logf("%s: %s after %s; %s", label, what, fmtDur(time.Since(began)), oc.Message)
	}
	return oc, nil
}

// followUntilGone polls `status` (independent of the cancelled caller) until bid is neither
// queued nor active, for at most AbortWait. It reports whether the backup is still held and
// in which phase.
func (e *execBackend) followUntilGone(bid, label string) (held bool, phase string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.o.AbortWait)
	defer cancel()
	logged := false
	for {
		st, serr := e.State(ctx)
		if serr == nil {
			t, active, ok := st.Holds(bid)
			if !ok {
				return false, "", nil
			}
			phase = map[bool]string{true: "running", false: "queued"}[active]
			if !logged {
				logged = true
				e.o.Logf("%s: task %d is still %s in Duplicati; duplicati-server-util cannot abort it: waiting up to %s for it to end", label, t.ID, phase, fmtDur(e.o.AbortWait))
			}
			err = nil
		} else {
			err = serr
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return true, "unknown", err
			}
			return true, phase, nil
		case <-time.After(time.Second):
		}
	}
}

// stillHeld is the plain message for a task Duplicati still holds when we stop waiting.
func stillHeld(label string, id int64, phase string, waited time.Duration, canAbort bool) string {
	task := "its task"
	if id != 0 {
		task = fmt.Sprintf("task %d", id)
	}
	how := "cancel it in Duplicati's web UI (the task's stop button), or restart the Duplicati container"
	if canAbort && id != 0 {
		how = fmt.Sprintf("cancel it in Duplicati's web UI (the task's stop button; POST /api/v1/task/%d/abort once it runs), or restart the Duplicati container", id)
	}
	return fmt.Sprintf("%s: Duplicati still holds %s (%s) %s after we stopped waiting: it may still back up the live stack once the stack is restored; %s",
		label, task, phase, fmtDur(waited), how)
}
