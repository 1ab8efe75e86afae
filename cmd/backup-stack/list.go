package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/backup-stack/backup-stack/internal/orchestrate"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// ListCmd lists the configured stacks, like the seed's `backup list`.
type ListCmd struct {
	Units bool `help:"Print only the backup units (backup@<stack>.service), one per line, for systemctl --user start $(backup-stack list --units)."`
}

func (c *ListCmd) Run(ctx context.Context, app *App) error {
	set, _, err := app.load()
	if err != nil {
		return err
	}
	if c.Units {
		for _, st := range set.Stacks {
			fmt.Fprintln(app.Stdout, systemd.BackupService(st.Name))
		}
		return nil
	}
	stateDir, _ := app.stateDir()
	states, _ := liveStates(ctx, app.Manager, set.Stacks)
	down := app.leftDown(ctx)
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STACK\tUNIT\tLABEL\tJOBS\tSCHEDULE\tNEXT RUN\tLAST RESULT\tHELD")
	for _, st := range set.Stacks {
		next := orDash(states[st.Name].next)
		held := "no"
		if systemd.Up(states[st.Name].hold) {
			held = "yes"
		}
		if p := down[st.Name]; p != nil {
			held = leftDownWords(p)
		}
		last := "never"
		if h, err := orchestrate.LoadHistory(stateDir, st.Name); err == nil && h != nil {
			last = fmt.Sprintf("%s %s", orDash(h.Outcome()), h.Finished.Format(time.DateTime))
			if h.Downtime > 0 {
				last += fmt.Sprintf(" (down %.1fs)", h.Downtime)
			}
			if h.Reason != "" {
				last += ": " + shortReason(h.Reason)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, st.Unit, st.ProjectLabel,
			strings.Join(st.Jobs, ","), orDash(st.Schedule), next, last, held)
	}
	gone := make([]string, 0, len(down))
	for name := range down {
		gone = append(gone, name)
	}
	sort.Strings(gone)
	for _, name := range gone {
		p := down[name]
		if _, ok := set.Stack(name); !ok {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, p.Settings.Unit, p.Settings.ProjectLabel,
				strings.Join(p.Settings.Jobs, ","), "-", "-", "(no stack file now)", leftDownWords(p))
		}
	}
	if len(set.Broken) > 0 {
		fmt.Fprintf(tw, "\n%d file(s) skipped because of errors (see backup-stack validate): %s\n", len(set.Broken), strings.Join(set.Broken, " "))
	}
	return tw.Flush()
}

// shortReason fits a run's reason into a table cell: its first line, at most 120 runes.
func shortReason(r string) string {
	r, _, _ = strings.Cut(r, "\n")
	if rs := []rune(r); len(rs) > 120 {
		return string(rs[:119]) + "…"
	}
	return r
}
