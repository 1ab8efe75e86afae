package main

// `backup-stack logs S` shows what the stack's backups logged: the journal
// of backup@S, backup-hold@S and backup-notify@S, or, when the journal has
// nothing of them (no journald, or it keeps nothing for the user), the
// log_dir files the helper writes next to it.

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/logread"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// LogsCmd prints a stack's backup log.
type LogsCmd struct {
	Stack  string `arg:"" help:"Stack name (or its unit name)."`
	Follow bool   `short:"f" help:"Keep printing new lines until Ctrl-C (like journalctl -f: the last 10 lines first, unless --since is given)."`
	Since  string `placeholder:"TIME" help:"Only lines since TIME, as journalctl --since takes it (\"today\", \"-1h\", \"2026-01-31 03:00\"). The log_dir fallback understands: @unix, now/today/yesterday/tomorrow, YYYY-MM-DD[ HH:MM[:SS]], RFC 3339, HH:MM[:SS], -1h / 30min ago."`
}

func (c *LogsCmd) Run(ctx context.Context, app *App) error {
	cfg, st, err := app.stack(app.resolveTyped(c.Stack))
	if err != nil {
		return err
	}
	v := logView{
		Journal: logread.Journalctl{},
		Open:    func(dir, name string) (*os.File, error) { return openLogFile(dir, name, false) },
		Out:     app.Stdout,
		Err:     app.Stderr,
		Now:     time.Now,
	}
	return v.show(ctx, st.Name, cfg.LogDir, c.Since, c.Follow)
}

// logView picks the source and prints it.
type logView struct {
	Journal  logread.Journal
	Open     func(dir, name string) (*os.File, error)
	Out, Err io.Writer
	Now      func() time.Time
	// FilePoll is how often -f reads the files (0: 500ms).
	FilePoll time.Duration
}

// logUnits are the units whose journal `logs` shows.
func logUnits(stack string) []string {
	return []string{systemd.BackupService(stack), systemd.HoldService(stack), systemd.NotifyService(stack)}
}

func (v logView) show(ctx context.Context, stack, logDir, since string, follow bool) error {
	units := logUnits(stack)
	// One entry is enough to know the journal has the stack's lines.
	has := false
	probeErr := v.Journal.Lines(ctx, logread.Query{Units: units, Since: since, Lines: 1}, func(string) { has = true })
	journalCmd := "journalctl " + strings.Join(logread.Args(logread.Query{Units: units, Since: since, Follow: follow}), " ")
	if has || (logDir == "" && follow && probeErr == nil) {
		fmt.Fprintf(v.Err, "backup-stack: showing the journal (%s)\n", journalCmd)
		return v.Journal.Lines(ctx, logread.Query{Units: units, Since: since, Follow: follow}, v.println)
	}
	if logDir == "" {
		if probeErr != nil {
			return fmt.Errorf("reading the journal: %w; and no log_dir is set in config.hcl to read instead", probeErr)
		}
		fmt.Fprintf(v.Err, "backup-stack: the journal has no lines of %s%s, and config.hcl sets no log_dir to read instead\n",
			strings.Join(units, ", "), sinceWords(since))
		return nil
	}
	q := logread.FileQuery{Follow: follow}
	if since != "" {
		t, err := logread.ParseSince(since, v.Now())
		if err != nil {
			return withCode(exitcode.Usage, err)
		}
		q.Since = t
	} else if follow {
		q.Last = 10 // as journalctl -f does
	}
	why := "the journal has no lines of " + strings.Join(units, ", ") + sinceWords(since)
	if probeErr != nil {
		why = fmt.Sprintf("the journal cannot be read (%v)", probeErr)
	}
	fmt.Fprintf(v.Err, "backup-stack: %s; showing the log_dir files %s\n", why, logFileGlob(logDir, stack))
	files := logread.Files{Dir: logDir, Stack: stack, Open: v.Open, Poll: v.FilePoll}
	return files.Lines(ctx, q, v.println)
}

func (v logView) println(line string) { fmt.Fprintln(v.Out, line) }

func sinceWords(since string) string {
	if since == "" {
		return ""
	}
	return " since " + since
}

// logFileGlob names the files of a stack in log_dir, for messages.
func logFileGlob(dir, stack string) string {
	return strings.TrimSuffix(logPath(dir, stack, time.Time{}), "0001-01-01.log") + "YYYY-MM-DD.log"
}
