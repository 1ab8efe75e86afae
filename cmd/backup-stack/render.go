package main

// `backup-stack render` is the rootless install (install.sh --rootless):
// systemd looks for user generators only in system directories, so without
// root the generator's files are written into the user's unit directory
// (~/.config/systemd/user) instead, by backup-generator-render.service
// whenever backup-generator-render.path sees a stack file or config.hcl
// change. It renders with the generator's own code (units.Generate). A
// manifest in the directory (units.WriteManaged) lists what was written:
// units of removed stacks are removed, the user's own files are never
// touched, every write is atomic and durable (a person or the manager may
// read the directory at any time). Unlike the generator it may talk to the
// manager: when something changed it runs daemon-reload and applies the
// timers the way `backup-stack reload` does (manager.ApplyTimers).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/systemd"
	"github.com/backup-stack/backup-stack/units"
)

// RenderCmd writes the units into a unit directory (rootless mode).
type RenderCmd struct {
	Dir    string `arg:"" optional:"" placeholder:"DIR" help:"Unit directory to render into (default $XDG_CONFIG_HOME/systemd/user)."`
	Clean  bool   `help:"Remove every file that render wrote (the manifest lists them), and the manifest."`
	Reload bool   `default:"true" negatable:"" help:"When something changed: systemctl --user daemon-reload, then start, re-arm and stop the timers as backup-stack reload does."`
	Helper string `placeholder:"PATH" help:"Absolute path of backup-stack for the units (default: this program)."`
}

func (c *RenderCmd) Run(ctx context.Context, app *App) error {
	dir, err := c.unitDir()
	if err != nil {
		return err
	}
	if c.Clean {
		res, err := units.RemoveManaged(dir)
		return app.finishManaged(ctx, dir, res, err, c.Reload, nil)
	}
	cfgDir, err := app.configDir()
	if err != nil {
		return err
	}
	// Render removes the units of stacks it no longer sees: an unreadable
	// stacks directory must not look like "no stacks".
	if _, err := hcl.StackFiles(cfgDir); err != nil {
		return fmt.Errorf("%v; nothing changed in %s", err, dir)
	}
	helper := c.Helper
	if helper == "" {
		if helper, err = os.Executable(); err != nil {
			return fmt.Errorf("cannot find my own path for the units: %w", err)
		}
	}
	// backup-generator-render.path starts this service on a change, and systemd drops the
	// change events that arrive while the service is still running: an editor's second save,
	// or a second file removed a moment after the first, would never be rendered. So render
	// until the input stays the same over a whole render.
	for round := 1; ; round++ {
		before := inputState(cfgDir)
		err := c.renderOnce(ctx, app, cfgDir, dir, helper)
		if err != nil || inputState(cfgDir) == before || round == maxRenderRounds {
			return err
		}
		fmt.Fprintf(app.Stderr, "backup-stack render: the stack files changed during the render; rendering again\n")
	}
}

// maxRenderRounds bounds the renders of one run when the input keeps changing.
const maxRenderRounds = 5

// inputState is a fingerprint of what a render reads: config.hcl and the stack files, by
// name, size, modification time and inode.
func inputState(cfgDir string) string {
	var b strings.Builder
	files, _ := hcl.StackFiles(cfgDir)
	for _, f := range append([]string{filepath.Join(cfgDir, "config.hcl")}, files...) {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(&b, "%s:-;", f)
			continue
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		fmt.Fprintf(&b, "%s:%d:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano(), ino)
	}
	return b.String()
}

func (c *RenderCmd) renderOnce(ctx context.Context, app *App, cfgDir, dir, helper string) error {
	g := units.Generate(cfgDir, units.Options{Helper: helper})
	for _, d := range g.Diags {
		fmt.Fprintln(app.Stderr, hcl.FormatDiag(d))
	}
	for _, e := range g.Skipped {
		fmt.Fprintf(app.Stderr, "backup-stack render: skipped: %v\n", e)
	}
	if g.Err != nil {
		// Not one stack's problem: every unit would look stale.
		return withCode(exitcode.Usage, fmt.Errorf("%w; nothing changed in %s", g.Err, dir))
	}
	res, err := units.WriteManaged(dir, g.Files)
	return app.finishManaged(ctx, dir, res, err, c.Reload, scheduledTimers(g.Files))
}

func (c *RenderCmd) unitDir() (string, error) {
	if c.Dir != "" {
		if !filepath.IsAbs(c.Dir) {
			return "", withCode(exitcode.Usage, fmt.Errorf("%q: not an absolute path", c.Dir))
		}
		return c.Dir, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "systemd", "user"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", withCode(exitcode.Usage, fmt.Errorf("no unit directory: neither XDG_CONFIG_HOME nor HOME is set"))
	}
	return filepath.Join(home, ".config", "systemd", "user"), nil
}

// scheduledTimers lists the timers that files make timers.target want.
func scheduledTimers(files []units.File) []string {
	var out []string
	for _, f := range files {
		if f.Link != "" {
			if t := systemd.TimerOfPath(f.Path); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// finishManaged reports what a managed write or removal did and, with
// reload and a change, applies it to the manager.
func (app *App) finishManaged(ctx context.Context, dir string, res units.ManagedResult, werr error, reload bool, scheduled []string) error {
	fmt.Fprintf(app.Stdout, "backup-stack render: %s: %d written, %d unchanged, %d removed\n", dir, len(res.Written), len(res.Unchanged), len(res.Removed))
	for _, p := range res.Written {
		fmt.Fprintf(app.Stdout, "  wrote   %s\n", p)
	}
	for _, p := range res.Removed {
		fmt.Fprintf(app.Stdout, "  removed %s\n", p)
	}
	if werr != nil {
		return werr
	}
	if !reload || len(res.Written)+len(res.Removed) == 0 {
		return nil
	}
	return app.applyToManager(ctx, scheduled)
}

// applyToManager is the one way a configuration change reaches the manager:
// daemon-reload (which re-runs the generator, if installed), then the timers.
func (app *App) applyToManager(ctx context.Context, scheduled []string) error {
	if err := app.Manager.DaemonReload(ctx); err != nil {
		return err
	}
	fmt.Fprintln(app.Stdout, "systemctl --user daemon-reload: done")
	ch, err := manager.ApplyTimers(ctx, app.Manager, scheduled)
	if len(ch.Stopped) > 0 {
		fmt.Fprintf(app.Stdout, "stopped timers of stacks without a schedule now: %v\n", ch.Stopped)
	}
	if len(ch.Restarted) > 0 {
		fmt.Fprintf(app.Stdout, "(re)started timers: %v\n", ch.Restarted)
	}
	return err
}
