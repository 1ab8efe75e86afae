package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/metrics"
	"github.com/backup-stack/backup-stack/internal/notify"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

const logExcerptLines = 20

// logExcerpt returns the last lines of a stack's log: from log_dir when it
// is set (today's file), else from the journal. The file is opened with the
// checks of the writer (openLogFile): the excerpt goes to notification
// commands and the health ping, so a symlink planted in log_dir must not
// make it send another file of the user's.
func logExcerpt(ctx context.Context, logDir, stack string) string {
	if logDir != "" {
		if b, err := readLogTail(logDir, filepath.Base(logPath(logDir, stack, time.Now()))); err == nil {
			return tail(string(b), logExcerptLines)
		}
	}
	jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(jctx, "journalctl", "--user", "-u", systemd.BackupService(stack),
		"-n", fmt.Sprint(logExcerptLines), "-o", "cat", "--no-pager").Output()
	if err != nil {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "-- ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// maxExcerptRead bounds how much of the end of a log file logExcerpt reads.
const maxExcerptRead = 256 << 10

func readLogTail(dir, name string) ([]byte, error) {
	f, err := openLogFile(dir, name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxExcerptRead {
		if _, err := f.Seek(fi.Size()-maxExcerptRead, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, maxExcerptRead))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ping sends a health ping; a failure is logged and never fails a backup.
func ping(ctx context.Context, log *slog.Logger, hc *hcl.Healthcheck, kind, body string) {
	if hc == nil || hc.URL == "" {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if err := notify.Ping(pctx, nil, hc.URL, kind, body); err != nil {
		log.Warn(fmt.Sprintf("health ping %q failed (the backup is not affected): %v", kind, err))
		return
	}
	log.Info(fmt.Sprintf("health ping %q sent", kind))
}

// writeMetrics rewrites metrics_file from the history of every stack that
// has a file in stacks/. It lists the files without decoding them: the step
// that calls it reads only its own stack's file.
func (a *App) writeMetrics(metricsFile, stateDir string) error {
	if metricsFile == "" {
		return nil
	}
	dir, err := a.configDir()
	if err != nil {
		return err
	}
	files, err := hcl.StackFiles(dir)
	if err != nil {
		return err
	}
	var ms []metrics.Stack
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hcl")
		m := metrics.Stack{Name: name}
		if h, err := orchestrate.LoadHistory(stateDir, name); err == nil && h != nil {
			m.LastRun, m.LastSuccess, m.Success, m.Result = h.Finished, h.LastSuccess, h.Succeeded(), h.Outcome()
			m.Duration, m.Downtime = h.Duration().Seconds(), h.Downtime
		}
		ms = append(ms, m)
	}
	return metrics.Write(metricsFile, ms)
}

// NotifyCmd is the ExecStart= of backup-notify@.service, which backup@
// triggers through OnFailure=/OnSuccess=. It works from the plan of the run
// that just ended (a stack file broken meanwhile must not silence it) and
// falls back to the configuration when there is no plan.
type NotifyCmd struct {
	Stack string `arg:""`
}

func (c *NotifyCmd) Run(ctx context.Context, app *App) error {
	if !systemd.ValidStackName(c.Stack) {
		return withCode(exitcode.Usage, fmt.Errorf("%q is not a stack name", c.Stack))
	}
	ps, err := app.Manager.Show(ctx, []string{systemd.BackupService(c.Stack)}, "Result", "ExecMainStatus", "InvocationID")
	if err != nil {
		return err
	}
	env, err := app.env(app.logger("", c.Stack, "notify "+c.Stack), 0)
	if err != nil {
		return err
	}
	// Only backup-notify@S.service itself may report (and mark reported) the
	// run that ended: typed in a shell it would send a notification for a run
	// it is not part of and keep the real one from being sent. `notify-test`
	// is the command for people.
	if err := env.FromUnit(ctx, systemd.NotifyService(c.Stack)); err != nil {
		return stepErr(err)
	}
	p, perr := orchestrate.LoadPlan(env.StateDir, c.Stack)
	if perr != nil {
		env.Log.Warn(perr.Error())
	}
	var n *hcl.Notify
	logDir := ""
	if p != nil && p.InvocationID == ps[0]["InvocationID"] {
		n, logDir = p.Settings.Notify, p.Settings.LogDir
	} else {
		p = nil
		cfg, st, err := app.stack(c.Stack)
		if err != nil {
			return err
		}
		n, logDir = st.Notify, cfg.LogDir
	}
	log := app.logger(logDir, c.Stack, "notify "+c.Stack)
	e := notify.Event{Stack: c.Stack, Result: ps[0]["Result"], ExitStatus: ps[0]["ExecMainStatus"], Kind: "failure"}
	if e.Result == "success" {
		e.Kind = "success"
	}
	// A step after the jobs that failed also shows as a failure; the
	// history written by finish knows.
	if h, herr := orchestrate.LoadHistory(env.StateDir, c.Stack); herr == nil && h != nil && h.InvocationID == ps[0]["InvocationID"] {
		if !h.Succeeded() {
			e.Kind = "failure"
		}
		e.Reason = h.Reason
	}
	if e.Kind == "failure" && p != nil {
		if p.Notified {
			log.Info("the failure of this run was reported already")
			return nil
		}
		p.Notified = true
		if err := p.Save(env.StateDir); err != nil {
			log.Error(fmt.Sprintf("saving the plan: %v", err))
		}
	}
	argv := commandFor(n, e.Kind)
	if argv == nil {
		return nil
	}
	e.Log = logExcerpt(ctx, logDir, c.Stack)
	log.Info(fmt.Sprintf("sending the %s notification: %s", e.Kind, argv[0]))
	if err := notify.Command(ctx, argv, e, 2*time.Minute, app.Stderr); err != nil {
		return fmt.Errorf("notification command: %w", err)
	}
	return nil
}

func commandFor(n *hcl.Notify, kind string) []string {
	if n == nil {
		return nil
	}
	if kind == "success" {
		return n.OnSuccess
	}
	return n.OnFailure
}

// NotifyTestCmd sends a test through every configured channel.
type NotifyTestCmd struct {
	Stack string `arg:""`
}

func (c *NotifyTestCmd) Run(ctx context.Context, app *App) error {
	_, st, err := app.stack(c.Stack)
	if err != nil {
		return err
	}
	e := notify.Event{Stack: st.Name, Kind: "test", Result: "test",
		Log: "backup-stack notify-test: this is a test notification, no backup ran."}
	channels, failed := 0, 0
	report := func(name string, err error) {
		channels++
		if err != nil {
			failed++
			fmt.Fprintf(app.Stdout, "%-22s FAILED: %v\n", name, err)
			return
		}
		fmt.Fprintf(app.Stdout, "%-22s ok\n", name)
	}
	if st.Notify != nil {
		for _, k := range []string{"failure", "success"} {
			if argv := commandFor(st.Notify, k); argv != nil {
				report("notify on_"+k, notify.Command(ctx, argv, e, 2*time.Minute, app.Stderr))
			}
		}
	}
	if st.Healthcheck != nil {
		// The /log endpoint records an event without changing the check's state.
		report("healthcheck (log ping)", notify.Ping(ctx, nil, st.Healthcheck.URL, notify.PingLog, e.Log))
	}
	if channels == 0 {
		return withCode(exitcode.Usage, fmt.Errorf("stack %s has no notify or healthcheck configured (in its file or config.hcl)", st.Name))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d channel(s) failed", failed, channels)
	}
	return nil
}
