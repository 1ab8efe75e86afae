package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/alecthomas/kong"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Stack names on the command line. The units call every step with the
// exact stack name after "--" (`backup-stack gate -- S`): a step takes it
// as it is, never shortened, and refuses anything that is not a stack name.
// What a person types for the commands that take a stack (run, notify-test)
// may also be the stack's unit name (cryptpad-stack.service) or its backup
// unit (backup@cryptpad.service): resolveTyped turns it into the stack's
// name, shortening only when no stack has exactly the name typed.

// exactStack is the check of a unit step's stack argument.
func exactStack(arg string) error {
	if err := systemd.CheckStackName(arg); err != nil {
		return withCode(exitcode.Usage, fmt.Errorf("%q is not a stack name: %v", arg, err))
	}
	return nil
}

// typedStackCommands are the commands whose stack argument a person types.
var typedStackCommands = map[string]func(*CLI) *string{
	"run <stack>":         func(c *CLI) *string { return &c.Run.Stack },
	"notify-test <stack>": func(c *CLI) *string { return &c.NotifyTest.Stack },
}

// resolveTypedStack rewrites the stack argument of a command a person typed
// (see typedStackCommands) to the stack's name, unless it came after "--":
// that is the exact name, as the units pass it.
func (a *App) resolveTypedStack(kctx *kong.Context, cli *CLI, args []string) {
	field, ok := typedStackCommands[kctx.Command()]
	if !ok || slices.Contains(args, "--") {
		return
	}
	*field(cli) = a.resolveTyped(*field(cli))
}

// resolveTyped resolves what a person typed for a stack: the exact name
// when a stack has it, else the stack whose unit name (or backup unit) was
// typed (systemd.ResolveStackArg). A stack exists when its file
// stacks/<name>.hcl exists (even broken: the command then reports its
// errors) or any stack file defines it.
func (a *App) resolveTyped(arg string) string {
	dir, err := a.configDir()
	if err != nil {
		return systemd.StackFromArg(arg)
	}
	var set *hcl.Set
	exists := func(name string) bool {
		if !systemd.ValidStackName(name) {
			return false
		}
		if _, err := os.Stat(filepath.Join(dir, "stacks", name+".hcl")); err == nil {
			return true
		}
		if set == nil {
			set, _ = hcl.Load(dir)
		}
		_, ok := set.Stack(name)
		return ok
	}
	return systemd.ResolveStackArg(arg, exists)
}
