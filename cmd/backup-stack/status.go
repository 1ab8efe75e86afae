package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/exitcode"
)

// StatusCmd tells whether Duplicati is idle.
type StatusCmd struct {
	JSON   bool `name:"json" help:"Print JSON instead of words."`
	Stacks bool `help:"The same as backup-stack list: the table of stacks (with --json, the same JSON)."`
}

type statusJSON struct {
	State  string           `json:"state"` // idle | busy | paused | unknown
	Paused bool             `json:"paused"`
	Active *duplicati.Task  `json:"active"`
	Queued []duplicati.Task `json:"queued"`
	Words  string           `json:"words"`
	Error  string           `json:"error,omitempty"`
}

func (c *StatusCmd) Run(ctx context.Context, app *App) error {
	if c.Stacks {
		// One overview, one code path: `status --stacks` predates list's table.
		return (&ListCmd{ListOutput: ListOutput{JSON: c.JSON, Color: "auto"}}).Run(ctx, app)
	}
	set, _, err := app.load()
	if err != nil {
		return err
	}
	b, err := backend(set.Config.Duplicati, time.Minute, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, set.Config.Duplicati.RunTimeout)
	defer cancel()
	s, err := b.State(sctx)
	out := statusJSON{Queued: []duplicati.Task{}}
	code := 0
	switch {
	case err != nil:
		out.State, out.Error, out.Words = "unknown", err.Error(), "cannot tell: "+err.Error()
		code = exitcode.Failure
	case s.Paused:
		out.State, code = "paused", exitcode.Busy
	case !s.Idle():
		out.State, code = "busy", exitcode.Busy
	default:
		out.State = "idle"
	}
	if err == nil {
		out.Paused, out.Active, out.Words = s.Paused, s.Active, s.String()
		if s.Queued != nil {
			out.Queued = s.Queued
		}
	}
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(app.Stdout, "Duplicati: %s\n", out.Words)
	}
	if code != 0 {
		return withCode(code, fmt.Errorf("Duplicati is %s", out.State))
	}
	return nil
}
