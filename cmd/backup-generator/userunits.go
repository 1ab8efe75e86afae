package main

// The rootless mode (install.sh --rootless): systemd looks for user
// generators only in system directories, so without root the same files are
// written into the user's unit directory (~/.config/systemd/user) by
// `backup-generator --user-units DIR`, run by backup-generator-render.service
// whenever backup-generator-render.path sees a stack file or config.hcl
// change. A manifest in DIR (units.WriteManaged) lists what was written:
// units of removed stacks are removed, files of the user's are never touched.
// This mode is not a generator run, so it may talk to the manager (--reload).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/units"
)

// writeUserUnits writes files into dir, tracked by the manifest.
func writeUserUnits(dir string, files []units.File, renderErr error, reload bool, stdout io.Writer, logf func(string, ...any)) int {
	if !filepath.IsAbs(dir) {
		logf("--user-units %q: not an absolute path", dir)
		return 2
	}
	// Only broken stacks may be left out; any other render error (the
	// helper path) would make every unit look stale.
	for _, e := range unwrapAll(renderErr) {
		var se *units.StackError
		if e != nil && !errors.As(e, &se) {
			logf("nothing changed in %s", dir)
			return 1
		}
	}
	res, err := units.WriteManaged(dir, files)
	return finishManaged(dir, res, err, reload, stdout, logf)
}

// cleanUserUnits removes what --user-units wrote into dir (uninstall).
func cleanUserUnits(dir string, reload bool, stdout io.Writer, logf func(string, ...any)) int {
	if !filepath.IsAbs(dir) {
		logf("--user-units %q: not an absolute path", dir)
		return 2
	}
	res, err := units.RemoveManaged(dir)
	return finishManaged(dir, res, err, reload, stdout, logf)
}

// finishManaged reports what a managed write or removal did and, with
// reload, applies it to the manager; it returns the exit code.
func finishManaged(dir string, res units.ManagedResult, err error, reload bool, stdout io.Writer, logf func(string, ...any)) int {
	report(stdout, dir, res)
	code := 0
	if err != nil {
		logf("%v", err)
		code = 1
	}
	if reload {
		if rerr := applyToManager(res, stdout); rerr != nil {
			logf("%v", rerr)
			code = 1
		}
	}
	return code
}

func report(w io.Writer, dir string, res units.ManagedResult) {
	fmt.Fprintf(w, "backup-generator: %s: %d written, %d unchanged, %d removed\n", dir, len(res.Written), len(res.Unchanged), len(res.Removed))
	for _, p := range res.Written {
		fmt.Fprintf(w, "  wrote   %s\n", p)
	}
	for _, p := range res.Removed {
		fmt.Fprintf(w, "  removed %s\n", p)
	}
}

// timerChanges says which timers must be (re)started because their wants
// link or schedule was written, and which stopped because their link went.
// A daemon-reload alone does neither: it does not start a unit newly wanted
// by the already active timers.target, and it leaves a timer whose stack is
// gone running.
func timerChanges(res units.ManagedResult) (restart, stop []string) {
	timerOf := func(p string) string {
		if t, ok := strings.CutPrefix(p, "timers.target.wants/"); ok && strings.HasSuffix(t, ".timer") {
			return t
		}
		if d, _, ok := strings.Cut(p, "/"); ok && strings.HasSuffix(d, ".timer.d") && strings.HasPrefix(d, "backup@") {
			return strings.TrimSuffix(d, ".d")
		}
		return ""
	}
	re, st := map[string]bool{}, map[string]bool{}
	for _, p := range res.Written {
		if t := timerOf(p); t != "" {
			re[t] = true
		}
	}
	for _, p := range res.Removed {
		if t, ok := strings.CutPrefix(p, "timers.target.wants/"); ok && strings.HasSuffix(t, ".timer") {
			st[t] = true
		}
	}
	for t := range st {
		delete(re, t)
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return keys(re), keys(st)
}

// applyToManager makes the user manager see the change: daemon-reload, then
// restart the timers whose schedule is new or changed and stop those of
// removed stacks. Nothing changed: nothing to do.
func applyToManager(res units.ManagedResult, stdout io.Writer) error {
	if len(res.Written)+len(res.Removed) == 0 {
		return nil
	}
	restart, stop := timerChanges(res)
	var errs []error
	if err := systemctlUser(stdout, "daemon-reload"); err != nil {
		return err
	}
	if len(stop) > 0 {
		errs = append(errs, systemctlUser(stdout, append([]string{"stop"}, stop...)...))
	}
	if len(restart) > 0 {
		errs = append(errs, systemctlUser(stdout, append([]string{"restart"}, restart...)...))
	}
	return errors.Join(errs...)
}

func systemctlUser(stdout io.Writer, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--user", "--no-ask-password"}, args...)
	out, err := exec.CommandContext(ctx, "systemctl", full...).CombinedOutput()
	fmt.Fprintf(stdout, "  ran     systemctl %s\n", strings.Join(full, " "))
	if err != nil {
		return fmt.Errorf("systemctl %s: %v: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
