package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
)

// ReloadCmd applies configuration changes. A daemon-reload alone re-runs
// the generator, but the manager does not start a timer that a generator
// newly linked into timers.target.wants (that only happens at manager
// start), keeps a removed stack's timer running, and keeps an active
// timer's old schedule until the timer is restarted.
type ReloadCmd struct{}

func (c *ReloadCmd) Run(ctx context.Context, app *App) error {
	set, diags, err := app.load()
	if err != nil {
		return err
	}
	for _, d := range diags {
		fmt.Fprintln(app.Stderr, hcl.FormatDiag(d))
	}
	sc := orchestrate.Systemctl{}
	if err := sc.Run(ctx, "daemon-reload"); err != nil {
		return err
	}
	fmt.Fprintln(app.Stdout, "systemctl --user daemon-reload: done (the generator ran)")
	scheduled := map[string]bool{}
	for _, st := range set.Stacks {
		if st.Schedule != "" {
			scheduled["backup@"+st.Name+".timer"] = true
		}
	}
	out, err := sc.Output(ctx, "list-units", "--all", "--plain", "--no-legend", "backup@*.timer")
	if err != nil {
		return err
	}
	var stale []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], ".timer") {
			continue
		}
		if !scheduled[f[0]] && f[2] == "active" {
			stale = append(stale, f[0])
		}
	}
	if len(stale) > 0 {
		if err := sc.Stop(ctx, stale...); err != nil {
			return err
		}
		fmt.Fprintf(app.Stdout, "stopped timers of stacks without a schedule now: %s\n", strings.Join(stale, " "))
	}
	var timers []string
	for _, st := range set.Stacks {
		if st.Schedule != "" {
			timers = append(timers, "backup@"+st.Name+".timer")
		}
	}
	if len(timers) > 0 {
		// restart starts a new timer and re-arms a changed one; Persistent=
		// keeps its memory of the last run across the restart.
		if err := sc.Run(ctx, append([]string{"restart"}, timers...)...); err != nil {
			return err
		}
		fmt.Fprintf(app.Stdout, "(re)started timers: %s\n", strings.Join(timers, " "))
	}
	if len(set.Broken) > 0 {
		return withCode(exitUsage, fmt.Errorf("%d file(s) with errors were skipped: %s (see backup-stack validate)", len(set.Broken), strings.Join(set.Broken, " ")))
	}
	return nil
}
