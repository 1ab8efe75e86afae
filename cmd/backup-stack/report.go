package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
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
// is set (today's file), else from the journal.
func logExcerpt(ctx context.Context, cfg *hcl.Config, stack string) string {
	if cfg.LogDir != "" {
		if b, err := os.ReadFile(logPath(cfg.LogDir, stack, time.Now())); err == nil {
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

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ping sends a health ping; a failure is logged and never fails a backup.
func ping(ctx context.Context, log *slog.Logger, st *hcl.Stack, kind, body string) {
	if st.Healthcheck == nil || st.Healthcheck.URL == "" {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if err := notify.Ping(pctx, nil, st.Healthcheck.URL, kind, body); err != nil {
		log.Warn(fmt.Sprintf("health ping %q failed (the backup is not affected): %v", kind, err))
		return
	}
	log.Info(fmt.Sprintf("health ping %q sent", kind))
}

// writeMetrics rewrites metrics_file from the history of every stack that
// has a file in stacks/. It lists the files without decoding them: the step
// that calls it reads only its own stack's file.
func (a *App) writeMetrics(cfg *hcl.Config, stateDir string) error {
	if cfg.MetricsFile == "" {
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
			m.LastRun, m.LastSuccess, m.Success, m.Result = h.Finished, h.LastSuccess, h.Succeeded(), h.Result
			m.Duration, m.Downtime = h.Duration().Seconds(), h.Downtime
		}
		ms = append(ms, m)
	}
	return metrics.Write(cfg.MetricsFile, ms)
}

// NotifyCmd is the ExecStart= of backup-notify@.service, which backup@
// triggers through OnFailure=/OnSuccess=.
type NotifyCmd struct {
	Stack string `arg:""`
}

func (c *NotifyCmd) Run(ctx context.Context, app *App) error {
	cfg, st, err := app.stack(c.Stack)
	if err != nil {
		return err
	}
	log := app.logger(cfg, st.Name, "notify "+st.Name)
	ps, err := app.Manager.Show(ctx, []string{systemd.BackupService(st.Name)}, "Result", "ExecMainStatus")
	if err != nil {
		return err
	}
	e := notify.Event{Stack: st.Name, Result: ps[0]["Result"], ExitStatus: ps[0]["ExecMainStatus"], Kind: "failure"}
	if e.Result == "success" {
		e.Kind = "success"
	}
	// A required ExecStopPost= step that failed also shows as a failure;
	// the history written by release knows.
	if dir, derr := app.stateDir(); derr == nil {
		if h, herr := orchestrate.LoadHistory(dir, st.Name); herr == nil && h != nil && !h.Succeeded() {
			e.Kind = "failure"
		}
	}
	argv := commandFor(st.Notify, e.Kind)
	if argv == nil {
		return nil
	}
	e.Log = logExcerpt(ctx, cfg, st.Name)
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
