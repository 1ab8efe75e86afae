package main

// `backup-stack explain S` says, from the decoded configuration and the
// generator's own rendering, what a backup of S will do and which units do
// it. It is a dry run: it starts, stops and writes nothing.

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/systemd"
	"github.com/backup-stack/backup-stack/units"
)

// ExplainCmd prints a stack's backup sequence in words, and its units.
type ExplainCmd struct {
	Stack     string `arg:"" help:"Stack name (or its unit name)."`
	UnitFiles bool   `name:"unit-files" help:"Also print the stack's unit files as the generator writes them (backup-generator --dry-run S)."`
	Helper    string `placeholder:"PATH" help:"Absolute path of backup-stack in the units shown (default: this program)."`
}

func (c *ExplainCmd) Run(ctx context.Context, app *App) error {
	name := app.resolveTyped(c.Stack)
	// The whole set: the stack's After= names the stack sorted before it,
	// and a broken config.hcl is an error as for every command.
	set, _, err := app.load()
	if err != nil {
		return err
	}
	if _, _, err := app.stack(name); err != nil {
		return err // the stack's own file is broken or missing: say so, with its diagnostics
	}
	st, _ := set.Stack(name)
	helper := c.Helper
	if helper == "" {
		if helper, err = os.Executable(); err != nil {
			return fmt.Errorf("cannot find my own path for the units: %w", err)
		}
	}
	files, err := stackFiles(set, st.Name, helper)
	if err != nil {
		return err
	}
	x := explainer{w: app.Stdout, cfg: set.Config, st: st}
	x.sequence()
	x.unitList(ctx, app.Manager, files)
	if c.UnitFiles {
		fmt.Fprintf(app.Stdout, "\nUnit files (as backup-generator --dry-run %s prints them):\n", st.Name)
		return units.DryRun(app.Stdout, files)
	}
	return nil
}

// stackFiles renders the configuration as the generator does and keeps the
// templates and the files of one stack.
func stackFiles(set *hcl.Set, stack, helper string) ([]units.File, error) {
	all, err := units.Render(set, units.Options{Helper: helper})
	var out []units.File
	for _, f := range all {
		if !strings.Contains(f.Path, "/") || ownedByStack(f.Path, stack) {
			out = append(out, f)
		}
	}
	if !containsPath(out, systemd.DropInPath(systemd.BackupService(stack), systemd.StackDropIn)) {
		if err == nil {
			err = fmt.Errorf("stack %q was not rendered", stack)
		}
		return nil, fmt.Errorf("the generator would write no units for stack %q: %w", stack, err)
	}
	return out, nil
}

// ownedByStack reports whether a generated path belongs to the stack.
func ownedByStack(p, stack string) bool {
	for _, u := range []string{systemd.BackupService(stack), systemd.HoldService(stack), systemd.BackupTimer(stack)} {
		if strings.HasPrefix(p, u+".d/") {
			return true
		}
	}
	link, _ := systemd.WantsLink(stack)
	return p == link
}

func containsPath(fs []units.File, p string) bool {
	for _, f := range fs {
		if f.Path == p {
			return true
		}
	}
	return false
}

// explainer writes the explanation of one stack.
type explainer struct {
	w   io.Writer
	cfg *hcl.Config
	st  *hcl.Stack
	n   int // the last step number
}

func (x *explainer) step(format string, args ...any) {
	x.n++
	fmt.Fprintf(x.w, "%3d. %s\n", x.n, fmt.Sprintf(format, args...))
}

func (x *explainer) detail(format string, args ...any) {
	fmt.Fprintf(x.w, "       %s\n", fmt.Sprintf(format, args...))
}

// held lists what the hold stops (the hold unit's Conflicts=).
func (x *explainer) held() []string {
	names := []string{x.st.Unit}
	if od := x.st.OnDemand; od != nil {
		names = append(names, od.Socket)
		if od.Service != "" {
			names = append(names, od.Service)
		}
	}
	return names
}

func (x *explainer) hooks(kind string) {
	for i, h := range x.st.HooksOf(kind) {
		line, err := systemd.HookLine(h.Command)
		if err != nil {
			line = strings.Join(h.Command, " ")
		}
		fail := "a failure fails the backup"
		if h.IgnoreFailure {
			fail = "a failure is only logged (ignore_failure)"
		}
		x.step("hook %s %d: %s", kind, i+1, line)
		x.detail("at most %s (timeout), then its process group is killed; %s", h.Timeout, fail)
	}
}

func (x *explainer) sequence() {
	st, d := x.st, x.cfg.Duplicati
	fmt.Fprintf(x.w, "Stack %s (%s)\n", st.Name, st.File)
	fmt.Fprintf(x.w, "  stack unit %s, containers labelled io.podman.compose.project=%s\n", st.Unit, st.ProjectLabel)
	fmt.Fprintf(x.w, "  Duplicati: %s\n", route(d))
	fmt.Fprintf(x.w, "\nWhat `systemctl --user start %s` (or backup-stack backup %s) does; nothing was started now:\n\n",
		systemd.BackupService(st.Name), st.Name)
	x.step("gate (stack still up): restore first what an interrupted earlier backup left down")
	if len(st.RequirePaths) > 0 {
		x.detail("check require_paths: %s (missing: fail with exit 11 before anything stops)", strings.Join(st.RequirePaths, " "))
	}
	x.detail("wait for the single backup slot and an idle Duplicati, at most %s (duplicati wait_timeout)", d.WaitTimeout)
	x.detail("record which of %s are active, and freeze the plan", strings.Join(x.held(), " "))
	x.hooks("pre_stop")
	x.step("hold: start %s, whose Conflicts= makes systemd stop %s", systemd.HoldService(st.Name), strings.Join(x.held(), ", "))
	x.detail("at most %s (stop_timeout)", st.StopTimeout)
	x.step("wait until no container labelled io.podman.compose.project=%s runs, at most %s (stop_timeout)", st.ProjectLabel, st.StopTimeout)
	sn := st.Snapshot
	if sn != nil {
		x.step("snapshot (%s): freeze %s into %s/%s/<name>, all or none, at most %s (snapshot timeout)",
			sn.Method, strings.Join(sn.Paths, " "), sn.Into, st.Name, sn.Timeout)
		x.detail("planned at the gate: a path that cannot be frozen so fails the backup there, before anything stops")
		x.detail("a start of %s before this is done fails the backup, and what was made is removed", strings.Join(x.held(), " or "))
	}
	x.hooks("post_stop")
	if sn != nil {
		fmt.Fprintf(x.w, "\n  resume: the stack starts again now (its data is frozen; the downtime ends here):\n\n")
		x.hooks("pre_start")
		x.restore()
		x.hooks("post_start")
		fmt.Fprintf(x.w, "\n  the jobs read the snapshot, with the stack up:\n\n")
	}
	x.hooks("pre_backup")
	for i, j := range st.Jobs {
		x.step("job %d of %d: Duplicati backup %q", i+1, len(st.Jobs), j)
		x.detail("enqueue it (at most %s, run_timeout), then wait until it has really finished, at most %s (wait_timeout)", d.RunTimeout, st.WaitTimeout)
	}
	if d.WarningIsFailure {
		x.detail("a job that ends with Warning fails the backup (warning_is_failure)")
	}
	fmt.Fprintf(x.w, "\n  then, in ExecStopPost= (after success, failure, timeout, stop or a killed helper alike):\n\n")
	x.hooks("post_backup")
	if sn != nil {
		x.step("restore, if the backup failed before resume (with the pre_start and post_start hooks then)")
		x.step("remove the snapshot %s/%s (a removal that fails fails the backup, naming what is left)", sn.Into, st.Name)
	} else {
		x.hooks("pre_start")
		x.restore()
		x.hooks("post_start")
	}
	x.hooks("verify")
	x.step("free the backup slot; write the history%s", x.extras())
	x.notify()
	startT, stopT := units.Timeouts(x.cfg, st)
	fmt.Fprintf(x.w, "\n  Unit bounds: TimeoutStartSec=%s, TimeoutStopSec=%s (the helper's own bounds above fire first)\n",
		secondsText(startT), secondsText(stopT))
	if strings.TrimSpace(st.Schedule) != "" {
		fmt.Fprintf(x.w, "  Schedule: %s runs it at OnCalendar=%s\n", systemd.BackupTimer(st.Name), st.Schedule)
	} else {
		fmt.Fprintf(x.w, "  Schedule: none; it runs only when started\n")
	}
}

// restore explains the restore by the stack's policy.
func (x *explainer) restore() {
	st := x.st
	switch st.RestorePolicy {
	case hcl.RestoreAlways:
		start := []string{st.Unit}
		if st.OnDemand != nil {
			start = append(start, st.OnDemand.Socket)
		}
		x.step("restore (restore_policy = %q): start %s, whatever was active before", st.RestorePolicy, strings.Join(start, " "))
	default:
		x.step("restore (restore_policy = %q): start again what of %s was active at the gate; stop %s", st.RestorePolicy, strings.Join(x.held(), " "), systemd.HoldService(st.Name))
	}
	x.detail("then the containers that ran at the gate must run again within %s (start_timeout)", st.StartTimeout)
}

// extras names the other things the end of a run writes and sends.
func (x *explainer) extras() string {
	var out []string
	if x.cfg.MetricsFile != "" {
		out = append(out, "metrics_file "+x.cfg.MetricsFile)
	}
	if x.st.Healthcheck != nil {
		out = append(out, "the healthcheck ping (success or /fail)")
	}
	if x.cfg.LogDir != "" {
		out = append(out, "every line also to "+logFileGlob(x.cfg.LogDir, x.st.Name))
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, "; ")
}

func (x *explainer) notify() {
	n := x.st.Notify
	if n == nil || (len(n.OnFailure) == 0 && len(n.OnSuccess) == 0) {
		x.step("notify: nothing configured (no notify block)")
		return
	}
	for _, e := range []struct {
		event, key string
		cmd        []string
	}{{"failure", "OnFailure", n.OnFailure}, {"success", "OnSuccess", n.OnSuccess}} {
		if len(e.cmd) == 0 {
			continue
		}
		line, err := systemd.HookLine(e.cmd)
		if err != nil {
			line = strings.Join(e.cmd, " ")
		}
		x.step("notify on %s (%s=%s): %s", e.event, e.key, systemd.NotifyService(x.st.Name), line)
	}
}

// unitList names the stack's units: where the generator writes them, and
// where the manager has loaded them from (when it runs).
func (x *explainer) unitList(ctx context.Context, m manager.Manager, files []units.File) {
	fmt.Fprintf(x.w, "\nUnits:\n")
	names := []string{systemd.BackupService(x.st.Name), systemd.HoldService(x.st.Name)}
	if x.st.Notify != nil && (len(x.st.Notify.OnFailure) > 0 || len(x.st.Notify.OnSuccess) > 0) {
		names = append(names, systemd.NotifyService(x.st.Name))
	}
	if strings.TrimSpace(x.st.Schedule) != "" {
		names = append(names, systemd.BackupTimer(x.st.Name))
	}
	var loaded []manager.Props
	if m != nil {
		// Only read: where the manager found them. A manager that cannot be
		// reached is no error for a dry run.
		loaded, _ = m.Show(ctx, names, "LoadState", "FragmentPath", "DropInPaths", "ActiveState")
	}
	for i, u := range names {
		var gen []string
		for _, f := range files {
			if f.Path == templateOf(u) || strings.HasPrefix(f.Path, u+".d/") {
				gen = append(gen, f.Path)
			}
		}
		fmt.Fprintf(x.w, "  %s\n", u)
		if len(gen) > 0 {
			fmt.Fprintf(x.w, "      generated: %s\n", strings.Join(gen, " "))
		}
		if i < len(loaded) && loaded[i]["LoadState"] == "loaded" {
			p := loaded[i]
			fmt.Fprintf(x.w, "      loaded from: %s", p["FragmentPath"])
			if p["DropInPaths"] != "" {
				fmt.Fprintf(x.w, " + %s", p["DropInPaths"])
			}
			fmt.Fprintf(x.w, " (%s)\n", p["ActiveState"])
		} else if loaded != nil && i < len(loaded) {
			fmt.Fprintf(x.w, "      not loaded in the manager (%s): backup-stack reload\n", orDash(loaded[i]["LoadState"]))
		}
	}
	fmt.Fprintf(x.w, "  (systemctl --user cat %s shows the text the manager uses)\n", names[0])
}

// templateOf is the template file of an instance name: backup@S.service
// comes from backup@.service.
func templateOf(unit string) string {
	at := strings.IndexByte(unit, '@')
	dot := strings.LastIndexByte(unit, '.')
	if at < 0 || dot < at {
		return unit
	}
	return unit[:at+1] + unit[dot:]
}

func route(d hcl.Duplicati) string {
	if d.URL != "" {
		return "REST route, " + d.URL
	}
	argv, err := execCommand(d)
	if err != nil {
		return fmt.Sprintf("exec route (%v)", err)
	}
	return "exec route, " + strings.Join(argv, " ") + " ..."
}

func secondsText(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(d.Round(time.Second)/time.Second))
}
