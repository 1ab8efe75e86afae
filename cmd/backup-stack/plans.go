package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// leftDown returns, by stack, the plans of backups that left their stack
// held down and whose unit no longer runs them (a crash, a shutdown): the
// stack stays down until `backup-stack recover` or its next gate restores it.
func (app *App) leftDown(ctx context.Context) map[string]*orchestrate.Plan {
	dir, err := app.stateDir()
	if err != nil {
		return nil
	}
	plans, uerr := orchestrate.Unfinished(dir)
	if uerr != nil {
		fmt.Fprintln(app.Stderr, "warning:", uerr)
	}
	out := map[string]*orchestrate.Plan{}
	for _, p := range plans {
		if !p.LeftDown() {
			continue
		}
		ps, err := app.Manager.Show(ctx, []string{systemd.BackupService(p.Stack)}, "InvocationID", "ActiveState")
		if err != nil || (ps[0]["InvocationID"] == p.InvocationID && systemd.Running(ps[0]["ActiveState"])) {
			continue // its backup is still running, or the manager cannot tell
		}
		out[p.Stack] = p
	}
	return out
}

func leftDownWords(p *orchestrate.Plan) string {
	return fmt.Sprintf("LEFT DOWN by a backup interrupted after %s", p.HeldAt.Format(time.DateTime))
}

// planWarnings says which stacks are being backed up (an unfinished plan)
// while their file changed, broke or went: that run keeps the settings it
// started with, and the change applies from the next backup.
func planWarnings(stateDir string, set *hcl.Set) []string {
	plans, err := orchestrate.Unfinished(stateDir)
	var out []string
	if err != nil {
		out = append(out, fmt.Sprintf("warning: %v", err))
	}
	for _, p := range plans {
		_, ok := set.Stack(p.Stack)
		var what string
		switch {
		case !ok && slices.ContainsFunc(set.Broken, func(b string) bool { _, in := p.Sources[b]; return in }):
			what = "its file has errors now"
		case !ok:
			what = "its stack file is gone"
		case len(p.Changed()) > 0:
			what = "its file or config.hcl changed"
		default:
			continue
		}
		out = append(out, fmt.Sprintf("warning: stack %s is being backed up (since %s) and %s; that backup keeps the settings it started with (its restore included), and the change applies from the next backup",
			p.Stack, p.Gate.Format(time.TimeOnly), what))
	}
	return out
}
