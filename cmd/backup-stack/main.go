// Command backup-stack is the helper of backup@<stack>.service: it runs a
// stack's Duplicati jobs and waits until they have really finished, answers
// "is Duplicati idle?", validates the configuration, and performs the small
// gate and restore steps the generated units call. systemd itself stops and
// starts the stacks.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/journal"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/podman"
)

// version is set at build time with -ldflags "-X main.version=..."; --version
// prefers the module version Go records (see buildVersion).
var version = "dev"

// CLI is the command line of backup-stack.
type CLI struct {
	Config  string           `help:"Configuration directory (default $XDG_CONFIG_HOME/backup-stack)." type:"path" placeholder:"DIR"`
	Version kong.VersionFlag `help:"Print the version and exit."`

	Backup     BackupCmd     `cmd:"" help:"Back up stacks now, one after another (starts backup@S.service; --follow prints the log and progress); exit status of the first failure."`
	Logs       LogsCmd       `cmd:"" help:"Show a stack's backup log (journal of backup@S, backup-hold@S, backup-notify@S, else the log_dir files)."`
	Explain    ExplainCmd    `cmd:"" help:"Say in words what a stack's backup does, step by step, and which units do it (a dry run)."`
	Run        RunCmd        `cmd:"" help:"Run a stack's Duplicati jobs in order and wait until each has finished."`
	Status     StatusCmd     `cmd:"" help:"Say whether Duplicati is idle (exit 0), busy or paused (exit 3), or cannot tell (exit 1)."`
	Validate   ValidateCmd   `cmd:"" help:"Check config.hcl and the stack files; print file:line:col: messages."`
	Check      CheckCmd      `cmd:"" help:"validate plus the live system: units, containers, Duplicati and its jobs, hooks, require_paths, secrets, schedules, lingering; one line per problem with its fix."`
	List       ListCmd       `cmd:"" help:"The table of stacks: state now (running, waiting, held, LEFT DOWN), last run and result, next run (--json for scripts)."`
	Reload     ReloadCmd     `cmd:"" help:"Apply configuration changes: daemon-reload, start new timers, re-arm changed ones, stop removed ones."`
	Render     RenderCmd     `cmd:"" help:"Rootless mode: write the generator's units into a unit directory (default ~/.config/systemd/user), tracked by a manifest."`
	NotifyTest NotifyTestCmd `cmd:"" name:"notify-test" help:"Send a test through every notification channel configured for a stack."`
	ImportSh   ImportShCmd   `cmd:"" name:"import-sh" help:"Convert the seed's shell stack files (stacks/<name>.sh) into HCL stack files; they are read, never run."`
	Completion CompletionCmd `cmd:"" help:"Print a shell completion script: bash, zsh or fish."`
	Man        ManCmd        `cmd:"" help:"Print the manual page backup-stack(1) in roff (backup-stack man | man -l -)."`

	Gate        GateCmd        `cmd:"" hidden:"" group:"Steps run by the units" help:"Restore a stack an earlier backup left down; wait for the backup slot and an idle Duplicati; check require_paths; freeze the plan."`
	Hook        HookCmd        `cmd:"" hidden:"" group:"Steps run by the units" help:"Run a hook of the plan, bounded by its timeout."`
	Hold        HoldCmd        `cmd:"" hidden:"" group:"Steps run by the units" help:"Start the hold unit, which stops the stack."`
	Held        HeldCmd        `cmd:"" hidden:"" group:"Steps run by the units" help:"ExecStart of backup-hold@.service: log that the stack is held down."`
	WaitStopped WaitStoppedCmd `cmd:"" name:"wait-stopped" hidden:"" group:"Steps run by the units" help:"Wait until every container of the stack's compose project is down."`
	Snapshot    SnapshotCmd    `cmd:"" hidden:"" group:"Steps run by the units" help:"Snapshot mode: freeze the stack's data paths while it is held down (all or none)."`
	Resume      ResumeCmd      `cmd:"" hidden:"" group:"Steps run by the units" help:"Snapshot mode: start the stack again once its data is frozen (pre_start, restore, post_start)."`
	Finish      FinishCmd      `cmd:"" hidden:"" group:"Steps run by the units" help:"ExecStopPost of backup@.service: hooks, restore, containers back, snapshot removal, release, history (from the plan)."`
	Notify      NotifyCmd      `cmd:"" hidden:"" group:"Steps run by the units" help:"Run the stack's notify command for the last result (backup-notify@.service)."`
	Recover     RecoverCmd     `cmd:"" help:"Restore every stack a crash or shutdown left down, now (backup-recover.service runs it at manager start)."`
}

// exitError carries an exit code to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func main() {
	app := &App{Stdout: os.Stdout, Stderr: os.Stderr, Manager: manager.Systemctl{}, Containers: podman.CLI{},
		Priorities: journal.ToJournal(os.Stderr)}
	os.Exit(app.Main(os.Args[1:]))
}

// kongExit unwinds out of kong when it wants to exit (--help, --version),
// so that Main can return the code instead of ending the process.
type kongExit struct{}

// Main runs the CLI and returns the exit code.
func (app *App) Main(args []string) (code int) {
	stdout, stderr := app.Stdout, app.Stderr
	var cli CLI
	kongCode := 0
	parser, err := kong.New(&cli,
		kong.Name("backup-stack"),
		kong.Description("Per-stack Duplicati backups driven by systemd user units.\n\n"+exitcode.Help()),
		kong.Vars{"version": buildVersion()},
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { kongCode = c; panic(kongExit{}) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "backup-stack:", err)
		return exitcode.Failure
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(kongExit); !ok {
				panic(r)
			}
			code = kongCode
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "backup-stack: %v (see backup-stack --help)\n", err)
		return exitcode.Usage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cli.Config != "" {
		app.ConfigDir = cli.Config
	}
	app.resolveTypedStack(kctx, &cli, args)
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(app); err != nil {
		fmt.Fprintf(stderr, "%sbackup-stack: %v\n", app.priority(slog.LevelError), err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return exitcode.Failure
	}
	return 0
}
