package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// ValidateCmd checks the configuration with the generator's own code.
type ValidateCmd struct {
	Files []string `arg:"" optional:"" type:"path" help:"Stack files or config.hcl to check (default: the whole configuration directory)."`
}

func (c *ValidateCmd) Run(ctx context.Context, app *App) error {
	dir := app.ConfigDir
	if dir == "" {
		d, err := hcl.Dir()
		if err != nil {
			return withCode(exitcode.Usage, err)
		}
		dir = d
	}
	var diags hhcl.Diagnostics
	cfgPath := filepath.Join(dir, "config.hcl")
	files := []string{cfgPath}
	if len(c.Files) == 0 {
		set, d := hcl.Load(dir)
		diags = d
		stackFiles, _ := hcl.StackFiles(set.Dir) // Load reported an error reading them
		files = append([]string{filepath.Join(set.Dir, "config.hcl")}, stackFiles...)
		// The schedules are checked in the same pass as everything else, in
		// every file, also in one with other errors, so that one run shows
		// every error and the summary counts the files systemd-analyze refuses.
		sd, refused := scheduleDiags(ctx, systemdCalendar(), files)
		diags = append(diags, sd...)
		broken := map[string]bool{}
		for _, b := range set.Broken {
			broken[b] = true
		}
		valid := 0
		for _, st := range set.Stacks {
			if !refused.stack(st) {
				valid++
			}
		}
		for f := range refused.files {
			broken[f] = true
		}
		fmt.Fprintf(app.Stdout, "%s: %d stack(s) valid, %d file(s) with errors\n", dir, valid, len(broken))
		if sd, err := app.stateDir(); err == nil {
			for _, w := range planWarnings(sd, set) {
				fmt.Fprintln(app.Stdout, w)
			}
		}
	} else {
		cfg, d := loadConfigFile(cfgPath)
		diags = append(diags, d...)
		for _, f := range c.Files {
			if filepath.Base(f) == "config.hcl" {
				_, d := loadConfigFile(f)
				diags = append(diags, d...)
				if f != cfgPath {
					files = append(files, f)
				}
				continue
			}
			_, d := hcl.LoadStackFile(f, cfg)
			diags = append(diags, d...)
			files = append(files, f)
		}
		sd, _ := scheduleDiags(ctx, systemdCalendar(), files)
		diags = append(diags, sd...)
	}
	errs := 0
	for _, d := range diags {
		fmt.Fprintln(app.Stdout, hcl.FormatDiag(d))
		if d.Severity == hhcl.DiagError {
			errs++
		}
	}
	if errs > 0 {
		return withCode(exitcode.Usage, fmt.Errorf("%d error(s)", errs))
	}
	return nil
}

func loadConfigFile(path string) (*hcl.Config, hhcl.Diagnostics) {
	set, diags := hcl.Load(filepath.Dir(path))
	var own hhcl.Diagnostics
	for _, d := range diags {
		if d.Subject != nil && d.Subject.Filename == path {
			own = append(own, d)
		}
	}
	return set.Config, own
}

// calendarFunc says whether spec is systemd calendar syntax (nil: it is).
type calendarFunc func(ctx context.Context, spec string) error

// systemdCalendar asks systemd-analyze; nil when there is none to ask. The
// generator cannot (it must not run programs), so a typo there would only
// show when the timer fails to load; validate and check catch it.
func systemdCalendar() calendarFunc {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return nil
	}
	return func(ctx context.Context, spec string) error {
		out, err := exec.CommandContext(ctx, bin, "calendar", "--", spec).CombinedOutput()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("systemd-analyze calendar: %w", ctx.Err())
			}
			return fmt.Errorf("%s", strings.TrimSpace(lastLine(string(out))))
		}
		return nil
	}
}

// refusedSchedules are the schedules calendar refused: the files that set
// them, and their values (a stack inherits config.hcl's).
type refusedSchedules struct {
	files  map[string]bool
	values map[string]bool
}

// stack says whether st's schedule is one of them.
func (r refusedSchedules) stack(st *hcl.Stack) bool {
	return r.files[st.File] || (st.Schedule != "" && r.values[st.Schedule])
}

// scheduleDiags checks the schedule of each file (a stack's own, or
// config.hcl's defaults.schedule) with calendar and reports each refused
// one at its schedule attribute. It reads the files itself, because a file
// with other errors has no Stack, and its schedule must still be checked in
// the same pass. A value the decoder refuses already (systemd.CalendarValue)
// is left to the decoder's own diagnostic. A nil calendar checks nothing.
func scheduleDiags(ctx context.Context, calendar calendarFunc, files []string) (hhcl.Diagnostics, refusedSchedules) {
	refused := refusedSchedules{files: map[string]bool{}, values: map[string]bool{}}
	if calendar == nil {
		return nil, refused
	}
	var diags hhcl.Diagnostics
	verdict := map[string]error{} // each value is asked once
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			continue // the decoder reports a file it cannot read
		}
		a, ok := hcl.ScheduleAttr(hcl.Positions(f, src))
		if !ok || strings.TrimSpace(a.Value) == "" {
			continue
		}
		if _, err := systemd.CalendarValue(a.Value); err != nil {
			continue
		}
		err, asked := verdict[a.Value]
		if !asked {
			err = calendar(ctx, a.Value)
			verdict[a.Value] = err
		}
		if err == nil {
			continue
		}
		r := a.Range
		diags = append(diags, &hhcl.Diagnostic{
			Severity: hhcl.DiagError,
			Summary:  "Invalid schedule",
			Detail: fmt.Sprintf("schedule %q is not systemd calendar syntax (%v); see `man systemd.time`, e.g. \"daily\" or \"*-*-* 03:30:00\".",
				a.Value, err),
			Subject: &r,
		})
		refused.files[f] = true
		refused.values[a.Value] = true
	}
	return diags, refused
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
