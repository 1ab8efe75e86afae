package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
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
	var stacks []*hcl.Stack
	if len(c.Files) == 0 {
		set, d := hcl.Load(dir)
		diags, stacks = d, set.Stacks
		fmt.Fprintf(app.Stdout, "%s: %d stack(s) valid, %d file(s) with errors\n", dir, len(set.Stacks), len(set.Broken))
		if sd, err := app.stateDir(); err == nil {
			for _, w := range planWarnings(sd, set) {
				fmt.Fprintln(app.Stdout, w)
			}
		}
	} else {
		cfg, d := loadConfigFile(filepath.Join(dir, "config.hcl"))
		diags = append(diags, d...)
		for _, f := range c.Files {
			if filepath.Base(f) == "config.hcl" {
				_, d := loadConfigFile(f)
				diags = append(diags, d...)
				continue
			}
			st, d := hcl.LoadStackFile(f, cfg)
			diags = append(diags, d...)
			if st != nil {
				stacks = append(stacks, st)
			}
		}
	}
	diags = append(diags, checkCalendars(ctx, stacks)...)
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

// checkCalendars asks systemd-analyze whether each schedule is valid
// calendar syntax. The generator cannot (it must not run programs), so a
// typo there only shows when the timer fails to load; validate catches it.
func checkCalendars(ctx context.Context, stacks []*hcl.Stack) hhcl.Diagnostics {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return nil
	}
	var diags hhcl.Diagnostics
	for _, st := range stacks {
		if st.Schedule == "" {
			continue
		}
		out, err := exec.CommandContext(ctx, bin, "calendar", "--", st.Schedule).CombinedOutput()
		if err != nil {
			r := st.Range
			diags = append(diags, &hhcl.Diagnostic{
				Severity: hhcl.DiagError,
				Summary:  "Invalid schedule",
				Detail: fmt.Sprintf("schedule %q is not systemd calendar syntax (%s); see `man systemd.time`, e.g. \"daily\" or \"*-*-* 03:30:00\".",
					st.Schedule, strings.TrimSpace(lastLine(string(out)))),
				Subject: &r,
			})
		}
	}
	return diags
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
