package duplicati

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
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
	o Options
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
		if errors.As(err, &ee) {
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

// execUnknownMsg is Outcome.Message of every finished exec-route job.
const execUnknownMsg = "outcome not reported by the exec route"

func (e *execBackend) Run(ctx context.Context, job string) (Outcome, error) {
	o := e.o
	logf := o.Logf
	oc := Outcome{Job: job, Result: ResultUnknown, UnknownIsSuccess: true}
	deadline := time.NewTimer(o.WaitTimeout)
	defer deadline.Stop()
	began := time.Now()

	// list-backups and status are independent; each is a `podman exec` of
	// ~150 ms, and the stack is already down, so ask both at once.
	type stateResult struct {
		s   ServerState
		err error
	}
	preCh := make(chan stateResult, 1)
	go func() {
		st, err := e.State(ctx)
		preCh <- stateResult{st, err}
	}()
	b, err := e.resolve(ctx, job)
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

	oc.Started = time.Now()
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
	interrupted := func() (Outcome, error) {
		logf("%s: interrupted: the task keeps running in Duplicati; it cannot be aborted through duplicati-server-util", label)
		oc.Finished = time.Now()
		return oc, fmt.Errorf("%s: waiting for Duplicati: %w", label, ErrInterrupted)
	}

	for {
		select {
		case <-ctx.Done():
			return interrupted()
		case <-deadline.C:
			st := "not seen"
			if lastPhase != "" {
				st = lastPhase
			}
			logf("%s: gave up after %s (wait timeout); the task stays in Duplicati, it was not aborted", label, fmtDur(o.WaitTimeout))
			return oc, fmt.Errorf("%s: not finished after %s (last seen: %s): %w", label, fmtDur(time.Since(began)), st, ErrTimeout)
		case inv := <-runCh:
			runPending = false
			if ctx.Err() != nil {
				return interrupted()
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
					return interrupted()
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
				return interrupted()
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
				reset(o.PollInterval)
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
			if goneStreak < 2 {
				reset(confirmDelay) // second look: one reply can miss a task moving from queue to active
				continue
			}
			oc.Finished = time.Now()
			if !seen {
				logf("%s: the backup was never seen queued or active: it finished within one poll", label)
			}
			oc.Message = execUnknownMsg
			how := "the caller decides"
			if oc.UnknownIsSuccess {
				how = "counted as success"
			}
			what := "finished"
			if oc.TaskID != 0 {
				what = fmt.Sprintf("task %d finished", oc.TaskID)
			}
			logf("%s: %s after %s; %s (%s)", label, what, fmtDur(time.Since(began)), execUnknownMsg, how)
			return oc, nil
		}
	}
}
