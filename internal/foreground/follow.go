// Package foreground starts stacks' backups in the user manager and follows
// them from a terminal (`backup-stack backup S... [--follow]`): one after
// another, with their log lines and progress, and a Ctrl-C that asks before
// it stops a backup. The backup itself is the same backup@S.service a timer
// starts; only systemd runs it.
package foreground

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/logread"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Target is one stack to back up.
type Target struct {
	Stack string
	// LogDir is config.hcl's log_dir ("" = none): where the log lines come
	// from when the journal has none.
	LogDir string
}

// Follower runs the backups. Zero durations take the defaults below.
type Follower struct {
	Manager manager.Manager
	Journal logread.Journal
	// Open opens a log_dir file for reading (nil: os.Open).
	Open     func(dir, name string) (*os.File, error)
	Out, Err io.Writer
	// Follow prints log lines and StatusText; without it each stack gets
	// one result line.
	Follow bool
	// Signals delivers SIGINT and SIGTERM.
	Signals <-chan os.Signal
	// Ask asks a yes/no question on the terminal; nil when there is none.
	Ask func(ctx context.Context, question string) (bool, error)
	// Poll is how often the manager is asked about the unit (500ms).
	Poll time.Duration
	// StatusEvery is the least time between two StatusText lines (2s).
	StatusEvery time.Duration
	// FilePoll is how often the log_dir files are read (500ms).
	FilePoll time.Duration
	// Quiet ends the log after the unit ended once no line came for this
	// long (1s), or after MaxDrain (3s) at the latest.
	Quiet, MaxDrain time.Duration
	Now             func() time.Time

	mu sync.Mutex // one writer at a time on Out
}

// Outcome is how one backup ended.
type Outcome struct {
	Stack, Unit string
	// Result and Status are the unit's Result= and ExecMainStatus=.
	Result string
	Status int
	OK     bool
	// Unseen: the run had ended before the first poll saw it.
	Unseen bool
	// Stopped: stopped on request (Ctrl-C, y). Left: following stopped
	// while the backup goes on.
	Stopped, Left bool
	Took          time.Duration
}

// pollProps are read at every poll, in one call.
var pollProps = []string{"ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "InvocationID", "Job", "StatusText"}

// maxShowErrors consecutive failed polls end the following: a single one
// is normal while the manager re-executes.
const maxShowErrors = 10

// All backs up the targets one after another and returns the exit code: 0
// when all succeeded, else the first failure's (see Code); after a Ctrl-C
// the remaining stacks are not started.
func (f *Follower) All(ctx context.Context, ts []Target) (int, error) {
	code := 0
	var failed []string
	for i, t := range ts {
		o, err := f.One(ctx, t)
		if err != nil {
			f.printf(f.Err, "%s: %v\n", t.Stack, err)
			o = Outcome{Stack: t.Stack, Status: exitcode.Failure}
		}
		if o.Left {
			f.notStarted(ts[i+1:])
			return exitcode.Interrupted, fmt.Errorf("stopped following the backup of %s, which goes on", t.Stack)
		}
		if !o.OK {
			failed = append(failed, t.Stack)
			if code == 0 {
				code = Code(o)
			}
		}
		if o.Stopped {
			f.notStarted(ts[i+1:])
			break
		}
	}
	if code != 0 {
		return code, fmt.Errorf("the backup of %s failed", strings.Join(failed, ", "))
	}
	return 0, nil
}

// Code is the exit code of a failed backup: the unit's exit status when it
// has one (backup-stack's own codes), else 1.
func Code(o Outcome) int {
	if o.Status > 0 && o.Status < 256 {
		return o.Status
	}
	return exitcode.Failure
}

func (f *Follower) notStarted(rest []Target) {
	if len(rest) == 0 {
		return
	}
	names := make([]string, len(rest))
	for i, t := range rest {
		names[i] = t.Stack
	}
	f.printf(f.Err, "not started: %s\n", strings.Join(names, " "))
}

// One starts the backup of one stack and follows it until it ends.
func (f *Follower) One(ctx context.Context, t Target) (Outcome, error) {
	unit := systemd.BackupService(t.Stack)
	o := Outcome{Stack: t.Stack, Unit: unit}
	before, err := f.Manager.Show(ctx, []string{unit}, pollProps...)
	if err != nil {
		return o, fmt.Errorf("asking the manager about %s: %w", unit, err)
	}
	w := &watch{prior: before[0], lastStatus: before[0]["StatusText"]}
	start := f.now()
	if err := f.Manager.StartNoBlock(ctx, unit); err != nil {
		return o, fmt.Errorf("starting %s: %w", unit, err)
	}
	if f.Follow {
		f.printf(f.Err, "started %s\n", unit)
	}
	var lg *logs
	if f.Follow {
		lg = f.startLogs(ctx, t, start)
	}
	p, err := f.wait(ctx, t, w, &o)
	if err != nil || o.Left {
		lg.stop()
		if o.Left {
			f.printf(f.Err, "stopped following %s; the backup goes on in the manager (follow it with backup-stack logs %s -f, stop it with systemctl --user stop %s)\n",
				unit, t.Stack, unit)
		}
		return o, err
	}
	lg.drain(f)
	o.Took = f.now().Sub(start)
	o.Unseen = !w.seen
	o.Result = p["Result"]
	if p["ExecMainCode"] == "1" { // CLD_EXITED: the status is an exit code
		fmt.Sscan(p["ExecMainStatus"], &o.Status)
	}
	o.OK = o.Result == "success" && o.Status == 0 && !o.Stopped
	f.printf(f.Out, "%s\n", resultLine(o))
	return o, nil
}

// wait polls the unit until its run has ended, printing StatusText with
// Follow and answering signals. It returns the last properties read.
func (f *Follower) wait(ctx context.Context, t Target, w *watch, o *Outcome) (manager.Props, error) {
	tick := time.NewTicker(durationOr(f.Poll, 500*time.Millisecond))
	defer tick.Stop()
	errs := 0
	for {
		ps, err := f.Manager.Show(ctx, []string{o.Unit}, pollProps...)
		switch {
		case err != nil:
			errs++
			if errs >= maxShowErrors || ctx.Err() != nil {
				return nil, fmt.Errorf("following %s: %w", o.Unit, err)
			}
		default:
			errs = 0
			p := ps[0]
			if f.Follow {
				f.status(t, w, p)
			}
			if w.done(p) {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case sig := <-f.Signals:
			switch f.onSignal(ctx, t, sig) {
			case leaveRunning:
				o.Left = true
				return nil, nil
			case stopIt:
				o.Stopped = true
				f.printf(f.Err, "stopping %s (the stack is restored as after any backup)\n", o.Unit)
				if err := f.Manager.Stop(ctx, false, o.Unit); err != nil {
					f.printf(f.Err, "%v\n", err)
				}
				f.drainSignals()
			}
		case <-tick.C:
		}
	}
}

type action int

const (
	keepFollowing action = iota
	leaveRunning
	stopIt
)

// onSignal decides what a signal means: SIGTERM, or a Ctrl-C without a
// terminal, stops following and leaves the backup running; a Ctrl-C on a
// terminal asks whether to stop the backup (a second Ctrl-C while asking
// leaves it running).
func (f *Follower) onSignal(ctx context.Context, t Target, sig os.Signal) action {
	if sig != syscall.SIGINT || f.Ask == nil {
		return leaveRunning
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		yes bool
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		yes, err := f.Ask(actx, "stop the backup of "+t.Stack+"?")
		ch <- answer{yes, err}
	}()
	select {
	case a := <-ch:
		switch {
		case a.err != nil:
			f.printf(f.Err, "cannot read the answer: %v\n", a.err)
			return leaveRunning
		case a.yes:
			return stopIt
		}
		f.printf(f.Err, "the backup goes on\n")
		return keepFollowing
	case <-f.Signals:
		return leaveRunning
	}
}

// drainSignals drops the Ctrl-Cs typed while the stop ran.
func (f *Follower) drainSignals() {
	for {
		select {
		case <-f.Signals:
		default:
			return
		}
	}
}

// watch is what the polls of one run have seen.
type watch struct {
	prior      manager.Props // before the start
	seen       bool          // the run was seen queued or running
	lastStatus string
	lastPrint  time.Time
}

// done reports whether the run has ended: no job, neither activating nor
// deactivating (backup@ is a oneshot: its start job lasts until
// ExecStopPost= has finished).
func (w *watch) done(p manager.Props) bool {
	job := p["Job"] != "" && p["Job"] != "0"
	switch p["ActiveState"] {
	case "activating", "deactivating", "reloading", "refreshing":
		w.seen = true
		return false
	}
	if job || (p["InvocationID"] != "" && p["InvocationID"] != w.prior["InvocationID"]) {
		w.seen = true
	}
	return !job
}

// status prints the unit's StatusText when it changed, at most every
// StatusEvery: a long job updates it often, and the log lines matter more.
func (f *Follower) status(t Target, w *watch, p manager.Props) {
	s := p["StatusText"]
	now := f.now()
	if s == "" || s == w.lastStatus || (!w.lastPrint.IsZero() && now.Sub(w.lastPrint) < durationOr(f.StatusEvery, 2*time.Second)) {
		return
	}
	w.lastStatus, w.lastPrint = s, now
	f.printf(f.Out, "-- %s: %s\n", t.Stack, s)
}

// resultLine is the one line a stack's backup ends with.
func resultLine(o Outcome) string {
	took := o.Took.Round(100 * time.Millisecond)
	if o.OK {
		line := fmt.Sprintf("%s: backup succeeded (%s)", o.Stack, took)
		if o.Unseen {
			line += "; it had ended before it could be followed"
		}
		return line
	}
	verb := "failed"
	if o.Stopped {
		verb = "stopped"
	}
	line := fmt.Sprintf("%s: backup %s after %s: Result=%s", o.Stack, verb, took, o.Result)
	if o.Status != 0 {
		line += fmt.Sprintf(", exit status %d", o.Status)
		if words := statusWords(o.Status); words != "" {
			line += " (" + words + ")"
		}
	}
	return line + fmt.Sprintf("; backup-stack logs %s shows why", o.Stack)
}

// statusWords is the meaning of one of backup-stack's exit codes.
func statusWords(status int) string {
	for _, e := range exitcode.Table {
		if e.Code == status {
			return e.Meaning
		}
	}
	return ""
}

func (f *Follower) printf(w io.Writer, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(w, format, args...)
}

func (f *Follower) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
