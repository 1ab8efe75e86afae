package main

// `backup-stack backup S...` is the seed's `bin/backup S...`: each stack's
// backup@S.service is started in the order given, one after another, and
// followed until it ends (package foreground). The backup itself runs in
// the manager as always, the same unit the timer starts.

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/foreground"
	"github.com/backup-stack/backup-stack/internal/logread"
)

// BackupCmd backs up stacks now, one after another.
type BackupCmd struct {
	Stacks []string `arg:"" name:"stack" help:"Stacks to back up, in this order (names, or unit names such as cryptpad-stack.service)."`
	Follow bool     `short:"f" help:"Print each backup's log lines and progress until it ends (else one line per stack)."`
}

// Run starts and follows every stack's backup. The exit code is 0 when all
// succeeded, else the exit status of the first that failed (or 1).
func (c *BackupCmd) Run(ctx context.Context, app *App) error {
	// Every stack is checked before the first backup starts: a typo in the
	// third name must not be found after two stacks were taken down.
	var targets []foreground.Target
	for _, arg := range c.Stacks {
		cfg, st, err := app.stack(app.resolveTyped(arg))
		if err != nil {
			return err
		}
		targets = append(targets, foreground.Target{Stack: st.Name, LogDir: cfg.LogDir})
	}
	// main's context ends at the first SIGINT or SIGTERM. Here a Ctrl-C is
	// a question, so this command takes the signals itself and follows
	// with a context that only it ends.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if ctx.Err() != nil {
		// A Ctrl-C before the signals were taken here: start nothing.
		return withCode(exitcode.Interrupted, fmt.Errorf("interrupted before any backup started"))
	}
	f := &foreground.Follower{
		Manager: app.Manager,
		Journal: logread.Journalctl{},
		Open:    func(dir, name string) (*os.File, error) { return openLogFile(dir, name, false) },
		Out:     app.Stdout,
		Err:     app.Stderr,
		Follow:  c.Follow,
		Signals: sigs,
	}
	if foreground.IsTerminal(os.Stdin) {
		f.Ask = foreground.LineAnswer(os.Stdin, app.Stderr)
	}
	code, err := f.All(context.WithoutCancel(ctx), targets)
	return withCode(code, err)
}
