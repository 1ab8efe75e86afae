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
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const exitHelp = `Exit codes:
  0  success (status: Duplicati idle)
  1  failure without a more specific code (status: cannot tell)
  2  usage or configuration error, or an unknown Duplicati job
  3  status: Duplicati busy or paused
  4  a job ended with Warning and warning_is_failure = true
  5  a job ended with Error
  6  a job ended Fatal
  7  a job's outcome is unknown
  8  timed out (a job did not finish within wait_timeout, or the gate waited too long)
  9  Duplicati unreachable, or its answer could not be understood
  10 interrupted (SIGTERM/SIGINT)
  11 a precondition failed at the gate (require_paths missing)`

// CLI is the command line of backup-stack.
type CLI struct {
	Config  string           `help:"Configuration directory (default $XDG_CONFIG_HOME/backup-stack)." type:"path" placeholder:"DIR"`
	Version kong.VersionFlag `help:"Print the version and exit."`

	Run        RunCmd        `cmd:"" help:"Run a stack's Duplicati jobs in order and wait until each has finished."`
	Status     StatusCmd     `cmd:"" help:"Say whether Duplicati is idle (exit 0), busy or paused (exit 3), or cannot tell (exit 1)."`
	Validate   ValidateCmd   `cmd:"" help:"Check config.hcl and the stack files; print file:line:col: messages."`
	List       ListCmd       `cmd:"" help:"List the configured stacks with schedule, next run and last result."`
	Reload     ReloadCmd     `cmd:"" help:"Apply configuration changes: daemon-reload, start new timers, re-arm changed ones, stop removed ones."`
	NotifyTest NotifyTestCmd `cmd:"" name:"notify-test" help:"Send a test through every notification channel configured for a stack."`

	Gate        GateCmd        `cmd:"" group:"Steps run by backup@.service" help:"Wait for the backup slot and an idle Duplicati, check require_paths, record what is active."`
	Hold        HoldCmd        `cmd:"" group:"Steps run by backup@.service" help:"Start the hold unit, which stops the stack."`
	Held        HeldCmd        `cmd:"" group:"Steps run by backup@.service" help:"ExecStart of backup-hold@.service: log that the stack is held down."`
	WaitStopped WaitStoppedCmd `cmd:"" name:"wait-stopped" group:"Steps run by backup@.service" help:"Wait until no container of the stack's compose project runs."`
	Hook        HookCmd        `cmd:"" group:"Steps run by backup@.service" help:"Run an ExecStopPost hook (only if the backup began) and record a failure."`
	Restore     RestoreCmd     `cmd:"" group:"Steps run by backup@.service" help:"Stop the hold unit and start what the restore policy says."`
	Release     ReleaseCmd     `cmd:"" group:"Steps run by backup@.service" help:"Free the backup slot and report failed steps."`
	Notify      NotifyCmd      `cmd:"" group:"Steps run by backup@.service" help:"Run the stack's notify command for the last result (backup-notify@.service)."`
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

// App is what every command gets.
type App struct {
	Stdout, Stderr io.Writer
	ConfigDir      string
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// kongExit unwinds out of kong when it wants to exit (--help, --version),
// so that Main can return the code instead of ending the process.
type kongExit struct{}

// Main runs the CLI and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) (code int) {
	var cli CLI
	kongCode := 0
	parser, err := kong.New(&cli,
		kong.Name("backup-stack"),
		kong.Description("Per-stack Duplicati backups driven by systemd user units.\n\n"+exitHelp),
		kong.Vars{"version": version},
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { kongCode = c; panic(kongExit{}) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "backup-stack:", err)
		return 1
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
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	app := &App{Stdout: stdout, Stderr: stderr, ConfigDir: cli.Config}
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(app); err != nil {
		fmt.Fprintf(stderr, "backup-stack: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}
