package foreground

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backup-stack/backup-stack/internal/logread"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// logs prints one run's log lines while it is followed.
type logs struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	last   atomic.Int64 // UnixNano of the last line printed
}

// startLogs prints the run's lines from the journal and, when log_dir is
// set, from its file too: whichever source has a line first is shown, the
// other ignored, because the same lines reach both and it cannot be known
// beforehand which one has them (journald may not run, or store nothing
// for the user).
func (f *Follower) startLogs(ctx context.Context, t Target, start time.Time) *logs {
	lctx, cancel := context.WithCancel(ctx)
	l := &logs{cancel: cancel}
	l.last.Store(f.now().UnixNano())
	var mu sync.Mutex
	chosen := ""
	emit := func(src string, strip bool) func(string) {
		return func(line string) {
			mu.Lock()
			defer mu.Unlock()
			if chosen == "" {
				chosen = src
				f.printf(f.Err, "(log lines of %s from %s)\n", t.Stack, src)
			}
			if chosen != src {
				return
			}
			if strip {
				line = logread.StripStamp(line)
			}
			f.printf(f.Out, "%s\n", line)
			l.last.Store(f.now().UnixNano())
		}
	}
	q := logread.Query{
		Units:  []string{systemd.BackupService(t.Stack), systemd.HoldService(t.Stack)},
		Since:  sinceArg(start),
		Follow: true,
	}
	l.wg.Go(func() {
		err := f.Journal.Lines(lctx, q, emit("the journal", false))
		// Without log_dir the journal is all there is: say why it is silent.
		if err != nil && t.LogDir == "" && lctx.Err() == nil {
			f.printf(f.Err, "cannot read the journal: %v\n", err)
		}
	})
	if t.LogDir != "" {
		files := logread.Files{Dir: t.LogDir, Stack: t.Stack, Open: f.Open, Poll: f.FilePoll}
		// The files stamp whole seconds: a line of this run's first second
		// must not be dropped.
		fq := logread.FileQuery{Since: start.Truncate(time.Second), Follow: true}
		l.wg.Go(func() {
			if err := files.Lines(lctx, fq, emit(t.LogDir, true)); err != nil && lctx.Err() == nil {
				f.printf(f.Err, "cannot read the log file: %v\n", err)
			}
		})
	}
	return l
}

// drain lets the last lines of an ended run arrive (the file is read
// every FilePoll, journalctl -f takes its time too), then stops.
func (l *logs) drain(f *Follower) {
	if l == nil {
		return
	}
	quiet := durationOr(f.Quiet, time.Second)
	deadline := f.now().Add(durationOr(f.MaxDrain, 3*time.Second))
	for {
		now := f.now()
		if now.Sub(time.Unix(0, l.last.Load())) >= quiet || !now.Before(deadline) {
			break
		}
		time.Sleep(quiet / 10)
	}
	l.stop()
}

func (l *logs) stop() {
	if l == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
}

// sinceArg is a start time for journalctl --since: "@" and Unix seconds
// with microseconds, so that nothing of an earlier run of the same second
// is shown.
func sinceArg(t time.Time) string {
	return fmt.Sprintf("@%d.%06d", t.Unix(), t.Nanosecond()/1000)
}
