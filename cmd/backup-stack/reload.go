package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// ReloadCmd applies configuration changes: a daemon-reload re-runs the
// generator, and manager.ApplyTimers does what the reload alone does not
// (start new timers, re-arm changed ones, stop those of removed schedules).
type ReloadCmd struct{}

func (c *ReloadCmd) Run(ctx context.Context, app *App) error {
	set, diags, err := app.load()
	if err != nil {
		return err
	}
	for _, d := range diags {
		fmt.Fprintln(app.Stderr, hcl.FormatDiag(d))
	}
	if sd, err := app.stateDir(); err == nil {
		for _, w := range planWarnings(sd, set) {
			fmt.Fprintln(app.Stderr, w)
		}
	}
	var timers []string
	for _, st := range set.Stacks {
		if st.Schedule != "" {
			timers = append(timers, systemd.BackupTimer(st.Name))
		}
	}
	if err := app.applyToManager(ctx, timers); err != nil {
		return err
	}
	if len(set.Broken) > 0 {
		return withCode(exitcode.Usage, fmt.Errorf("%d file(s) with errors were skipped: %s (see backup-stack validate)", len(set.Broken), strings.Join(set.Broken, " ")))
	}
	return nil
}
