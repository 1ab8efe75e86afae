package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/podman"
	"github.com/backup-stack/backup-stack/internal/snapshot"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// defaultUnitPath is the PATH systemd gives units when its manager has
// none (DEFAULT_PATH_NORMAL).
const defaultUnitPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

// fileStart is the first position of file, for a problem about a file as a whole.
func fileStart(file string) hhcl.Range {
	return hhcl.Range{Filename: file, Start: hhcl.InitialPos, End: hhcl.InitialPos}
}

// checkSchedules runs systemd-analyze calendar on every schedule of the
// selected files, also those of files with other errors (see scheduleDiags).
func checkSchedules(ctx context.Context, w *checkWorld, in *checkInput, res *checkResult) {
	if w.Calendar == nil {
		for _, st := range in.stacks {
			if st.Schedule != "" {
				res.problems = append(res.problems, problem{warn: true, what: "cannot check the schedules: systemd-analyze is not installed",
					fix: "install systemd (the package that has systemd-analyze) to check them"})
				return
			}
		}
		return
	}
	diags, _ := scheduleDiags(ctx, w.Calendar, in.files)
	for _, d := range diags {
		res.problems = append(res.problems, diagProblem(in.set.Dir, d))
	}
}

// checkEnvironment reads the PATH the units (and so the hooks) get: the
// user manager's own environment, not the shell's.
func checkEnvironment(ctx context.Context, w *checkWorld, in *checkInput, res *checkResult) {
	env, err := w.Manager.Environment(ctx)
	if err != nil {
		res.problems = append(res.problems, problem{what: fmt.Sprintf("cannot read the user manager's environment: %v", err),
			fix: "check that your user manager runs (systemctl --user show-environment)"})
		return
	}
	in.unitPath, in.havePath = defaultUnitPath, true
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			in.unitPath = v
		}
	}
}

// checkDuplicati: the secret file is usable, Duplicati answers, and which
// backups it has (for checkJobs).
func checkDuplicati(ctx context.Context, w *checkWorld, in *checkInput, res *checkResult) {
	d := in.set.Config.Duplicati
	cfg := in.configFile()
	if d.URL != "" {
		for _, s := range []struct{ attr, path string }{{"password_file", d.PasswordFile}, {"token_file", d.TokenFile}} {
			if s.path == "" {
				continue
			}
			if err := w.Secret(s.attr, s.path); err != nil {
				p := problem{pos: in.at(cfg, "duplicati."+s.attr, fileStart(cfg)), what: err.Error()}
				if errors.Is(err, fs.ErrNotExist) {
					p.fix = fmt.Sprintf("write the secret into %s on one line, owned by you, mode 0600 (chmod 600 %s)", s.path, shellQuote(s.path))
				}
				res.problems = append(res.problems, p)
			}
		}
	}
	if w.Duplicati == nil {
		if w.DuplicatiErr != nil && !errors.Is(w.DuplicatiErr, errCheckSecret) {
			res.problems = append(res.problems, problem{what: fmt.Sprintf("cannot talk to Duplicati: %v", w.DuplicatiErr),
				fix: "correct the duplicati block of " + cfg})
		}
		return
	}
	if _, err := w.Duplicati.State(ctx); err != nil {
		p := problem{what: fmt.Sprintf("Duplicati cannot be reached (%s): %v", w.Route, err)}
		if !strings.Contains(err.Error(), "exec_user") { // the data-folder refusal carries its own fix
			p.fix = "start Duplicati, or correct url / container in the duplicati block of " + cfg
		}
		res.problems = append(res.problems, p)
		return
	}
	switch v, err := w.Duplicati.Version(ctx); {
	case err != nil:
		res.info = append(res.info, fmt.Sprintf("Duplicati reachable (%s), version unknown: %v", w.Route, err))
	case v == "":
		res.info = append(res.info, fmt.Sprintf("Duplicati reachable (%s); it does not show its version here", w.Route))
	default:
		res.info = append(res.info, fmt.Sprintf("Duplicati %s reachable (%s)", v, w.Route))
	}
	list, err := w.Duplicati.Backups(ctx)
	if err != nil {
		res.problems = append(res.problems, problem{what: fmt.Sprintf("cannot list Duplicati's backups: %v", err),
			fix: "check Duplicati's log; until then no job of any stack can be checked"})
		return
	}
	in.backups, in.haveBackups = list, true
}

// checkLinger: a timer of a user manager fires only while the manager
// runs, which without lingering is only while the user is logged in.
func checkLinger(ctx context.Context, w *checkWorld, in *checkInput, res *checkResult) {
	var scheduled []string
	for _, st := range in.stacks {
		if st.Schedule != "" {
			scheduled = append(scheduled, st.Name)
		}
	}
	if len(scheduled) == 0 {
		return
	}
	on, err := w.Linger(ctx)
	switch {
	case err != nil:
		res.problems = append(res.problems, problem{warn: true,
			what: fmt.Sprintf("cannot tell whether lingering is on (%v)", err),
			fix:  "without it the timers of " + strings.Join(scheduled, ", ") + " fire only while you are logged in: loginctl enable-linger $USER"})
	case !on:
		res.problems = append(res.problems, problem{
			what: "lingering is off: the timers of " + strings.Join(scheduled, ", ") + " fire only while you are logged in",
			fix:  "loginctl enable-linger $USER"})
	}
}

// unitRef is a unit a stack needs, and the attribute that names it.
type unitRef struct {
	name, attr string // attr "": generated by backup-stack
}

func stackUnits(st *hcl.Stack) []unitRef {
	us := []unitRef{{st.Unit, "unit"}}
	if od := st.OnDemand; od != nil {
		if od.Socket != "" {
			us = append(us, unitRef{od.Socket, "on_demand.socket"})
		}
		if od.Service != "" {
			us = append(us, unitRef{od.Service, "on_demand.service"})
		}
	}
	us = append(us, unitRef{systemd.BackupService(st.Name), ""}, unitRef{systemd.HoldService(st.Name), ""})
	if st.Schedule != "" {
		us = append(us, unitRef{systemd.BackupTimer(st.Name), ""})
	}
	return us
}

// checkUnits: the manager has loaded every unit the stack names and every
// unit the generator writes for it.
func checkUnits(ctx context.Context, w *checkWorld, in *checkInput, st *hcl.Stack) []problem {
	us := stackUnits(st)
	names := make([]string, len(us))
	for i, u := range us {
		names[i] = u.name
	}
	props, err := w.Manager.Show(ctx, names, "LoadState")
	if err != nil {
		return []problem{{stack: st.Name, what: fmt.Sprintf("cannot ask the user manager about its units: %v", err),
			fix: "check that your user manager runs (systemctl --user status)"}}
	}
	var out []problem
	for i, u := range us {
		ls := props[i]["LoadState"]
		if ls == "loaded" {
			continue
		}
		p := problem{stack: st.Name, pos: &st.Range}
		if u.attr != "" {
			p.pos = in.at(st.File, u.attr, st.Range)
		}
		switch {
		case ls == "masked":
			p.what, p.fix = fmt.Sprintf("%s is masked", u.name), "systemctl --user unmask "+u.name
		case ls == "not-found" && u.attr != "":
			p.what = fmt.Sprintf("the user manager has no unit %s (%s)", u.name, u.attr)
			p.fix = fmt.Sprintf("correct %s, or install the unit (systemctl --user list-unit-files shows the units it has)", u.attr)
		case ls == "not-found":
			p.what = fmt.Sprintf("the generated unit %s is not loaded", u.name)
			p.fix = "run backup-stack reload; if it stays missing, check the install (backup-generator in a user-generators directory, see README Install)"
		default:
			p.what = fmt.Sprintf("%s did not load (LoadState=%s)", u.name, ls)
			p.fix = "systemctl --user status " + u.name + " says why"
		}
		out = append(out, p)
	}
	return out
}

// checkContainers: the compose label finds the stack's containers, else
// wait-stopped would find nothing to wait for and back up a running stack.
func checkContainers(ctx context.Context, w *checkWorld, in *checkInput, st *hcl.Stack) []problem {
	pos := in.at(st.File, "project_label", st.Range)
	cs, err := w.Containers.List(ctx, st.ProjectLabel)
	if err != nil {
		return []problem{{stack: st.Name, what: fmt.Sprintf("cannot list the containers of project %q: %v", st.ProjectLabel, err),
			fix: "install podman, or run check as the user whose podman runs the stack"}}
	}
	if len(cs) > 0 {
		return nil
	}
	label := podman.ProjectLabel + "=" + st.ProjectLabel
	up, err := manager.IsUp(ctx, w.Manager, st.Unit)
	if err != nil { // checkUnits reports the manager's failure
		return []problem{{stack: st.Name, pos: pos, warn: true,
			what: fmt.Sprintf("no container is labelled %s, and the manager cannot say whether %s is up", label, st.Unit),
			fix:  "run check again once the user manager answers"}}
	}
	if up {
		return []problem{{stack: st.Name, pos: pos,
			what: fmt.Sprintf("no container is labelled %s although %s is up", label, st.Unit),
			fix:  "set project_label to the compose project's name (podman ps --format '{{.Labels}}' shows io.podman.compose.project)"}}
	}
	return []problem{{stack: st.Name, pos: pos, warn: true,
		what: fmt.Sprintf("no container is labelled %s, and %s is down, so the label cannot be checked", label, st.Unit),
		fix:  fmt.Sprintf("start the stack once (systemctl --user start %s) and run check again", st.Unit)}}
}

// checkJobs: every job names a backup Duplicati has.
func checkJobs(ctx context.Context, w *checkWorld, in *checkInput, st *hcl.Stack) []problem {
	if !in.haveBackups {
		return nil
	}
	var out []problem
	for i, job := range st.Jobs {
		if _, ok := duplicati.FindBackup(in.backups, job); ok {
			continue
		}
		out = append(out, problem{stack: st.Name, pos: in.at(st.File, fmt.Sprintf("jobs[%d]", i), st.Range),
			what: fmt.Sprintf("Duplicati has no backup %q (it has: %s)", job, duplicati.DescribeBackups(in.backups)),
			fix:  "name a backup Duplicati has (its name or ID), or create it in Duplicati"})
	}
	return out
}

// checkHooks: each hook's program is found as the hook step will look for
// it, on the PATH of the units.
func checkHooks(ctx context.Context, w *checkWorld, in *checkInput, st *hcl.Stack) []problem {
	if !in.havePath {
		return nil
	}
	var out []problem
	for i, h := range st.Hooks {
		if err := lookProgram(h.Command[0], in.unitPath); err != nil {
			out = append(out, problem{stack: st.Name, pos: in.at(st.File, fmt.Sprintf("hook[%d].command[0]", i), h.Range),
				what: fmt.Sprintf("hook %q: %v", h.Kind, err),
				fix:  "install it, or write its absolute path in command (systemctl --user show-environment shows the units' PATH)"})
		}
	}
	return out
}

// lookProgram finds prog as exec.LookPath would with PATH=path.
func lookProgram(prog, path string) error {
	if strings.Contains(prog, "/") {
		return executable(prog)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry depends on the unit's working directory
		}
		if executable(filepath.Join(dir, prog)) == nil {
			return nil
		}
	}
	return fmt.Errorf("program %q is not on the units' PATH (%s)", prog, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("program %s: %w", p, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("program %s is not a regular file", p)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("program %s is not executable (chmod +x %s)", p, shellQuote(p))
	}
	return nil
}

// checkRequirePaths: the gate refuses a backup while one is missing.
func checkRequirePaths(ctx context.Context, w *checkWorld, in *checkInput, st *hcl.Stack) []problem {
	var out []problem
	for i, p := range st.RequirePaths {
		if _, err := os.Stat(p); err != nil {
			what := fmt.Sprintf("require_paths[%d] %s: %v", i, p, err)
			if errors.Is(err, fs.ErrNotExist) {
				what = fmt.Sprintf("require_paths[%d] %s does not exist", i, p)
			}
			out = append(out, problem{stack: st.Name, pos: in.at(st.File, fmt.Sprintf("require_paths[%d]", i), st.Range),
				what: what, fix: "mount or create it: the gate refuses the backup without it (exit 11)"})
		}
	}
	return out
}

// checkSnapshot: the gate plans the snapshot the same way and refuses the
// backup (before anything stops) when a path cannot be frozen as asked.
// Plan changes nothing but a clone probe file it removes again; like the
// gate's, it walks a path this user cannot read in podman unshare.
func checkSnapshot(ctx context.Context, w *checkWorld, in *checkInput, st *hcl.Stack) []problem {
	sn := st.Snapshot
	if sn == nil {
		return nil
	}
	if _, err := snapshot.ForUser().Plan(ctx, sn.Paths, sn.Into, st.Name, snapshot.Method(sn.Method)); err != nil {
		rng := sn.Range
		return []problem{{stack: st.Name, pos: &rng,
			what: strings.TrimPrefix(err.Error(), "snapshot: "), fix: "the gate refuses the backup until this is fixed (nothing is stopped); see \"Snapshot mode\" in the README"}}
	}
	return nil
}
