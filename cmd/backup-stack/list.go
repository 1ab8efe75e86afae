package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// ListCmd is the one overview of the stacks (`status --stacks` is the same).
type ListCmd struct {
	ListOutput
	Units bool `help:"Print only the backup units (backup@<stack>.service), one per line, for systemctl --user start $(backup-stack list --units)."`
	Names bool `hidden:"" help:"Print only the stack names, one per line (for shell completion)."`
}

// ListOutput are the flags of the overview, shared by list and status --stacks.
type ListOutput struct {
	JSON  bool   `name:"json" help:"Print JSON: one object per stack, with absolute times."`
	Color string `name:"color" enum:"auto,always,never" default:"auto" placeholder:"WHEN" help:"Colour the table: auto (on a terminal, unless NO_COLOR is set), always, never."`
	Full  bool   `short:"l" help:"Do not cut cells to the terminal's width."`
}

func (c *ListCmd) Run(ctx context.Context, app *App) error {
	set, _, err := app.load()
	if err != nil {
		return err
	}
	switch {
	case c.Units:
		for _, st := range set.Stacks {
			fmt.Fprintln(app.Stdout, systemd.BackupService(st.Name))
		}
		return nil
	case c.Names:
		for _, st := range set.Stacks {
			fmt.Fprintln(app.Stdout, st.Name)
		}
		return nil
	}
	rows := app.collectStacks(ctx, set)
	if c.JSON {
		if rows == nil {
			rows = []stackStatus{} // "[]", not "null", for jq
		}
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return fmt.Errorf("writing the JSON: %w", err)
		}
		return nil
	}
	t := probeStdout(app.Stdout)
	opts := tableOpts{
		Width: tableWidth(t, os.Getenv("COLUMNS"), c.Full),
		Color: useColor(c.Color, t, os.Getenv("NO_COLOR"), os.Getenv("TERM")),
		Now:   time.Now(),
	}
	if err := drawTable(app.Stdout, rows, opts); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	if len(set.Broken) > 0 {
		fmt.Fprintf(app.Stdout, "\n%d file(s) skipped because of errors (see backup-stack validate): %s\n", len(set.Broken), strings.Join(set.Broken, " "))
	}
	return nil
}

// shortReason fits a run's reason into a table cell: its first line, at most 120 runes.
func shortReason(r string) string {
	r, _, _ = strings.Cut(r, "\n")
	if rs := []rune(r); len(rs) > 120 {
		return string(rs[:119]) + "…"
	}
	return r
}
