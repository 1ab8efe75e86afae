package hcl

// What reaches a unit file. The decoder refuses every value that the
// renderer (package units) would refuse, with the very functions the
// renderer uses (package systemd: HookLine, CalendarValue, SourcePath,
// CheckStackName, CheckStackUnit, and under them CheckUTF8, systemd's own
// UTF-8 rules), so that `backup-stack validate` and the generator refuse
// exactly the same stack files, and each refusal carries the file, line and
// column and what to change. Values that reach a unit file: the stack name,
// unit, on_demand socket and service, schedule (also defaults.schedule),
// every hook command and the path of the stack file (SourcePath=).

import (
	"errors"
	"path/filepath"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// elemRange is the range of element i of a list attribute written as a
// list ["a", "b"], else of the whole expression.
func elemRange(a *hhcl.Attribute, i int) hhcl.Range {
	if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && i >= 0 && i < len(t.Exprs) {
		return t.Exprs[i].Range()
	}
	return a.Expr.Range()
}

// hookCommand checks a hook's command as the renderer writes it
// (systemd.HookLine: program rules, every word, the length of the line and
// the kernel's limits). It reports whether the command is usable.
func (d *decoder) hookCommand(a *hhcl.Attribute, argv []string) bool {
	_, err := systemd.HookLine(argv)
	if err == nil {
		return true
	}
	d.commandError(a, "Invalid hook program", err)
	return false
}

// plainCommand checks a command that the helper runs but that no unit file
// holds (notify): the program rules and the kernel's limits.
func (d *decoder) plainCommand(a *hhcl.Attribute, argv []string) bool {
	err := systemd.CheckArgv(argv)
	if err == nil {
		if perr := systemd.CheckProgram(argv[0]); perr != nil {
			err = &systemd.ArgError{Index: 0, Err: perr}
		}
	}
	if err == nil {
		return true
	}
	d.commandError(a, "Invalid program", err)
	return false
}

// commandError turns an error of systemd.HookLine or CheckArgv into a
// diagnostic at the word it is about. programSummary is the summary of an
// error about the program itself.
func (d *decoder) commandError(a *hhcl.Attribute, programSummary string, err error) {
	var ae *systemd.ArgError
	var te *systemd.TextError
	var ale *systemd.ArgLenError
	var le *systemd.LengthError
	switch {
	case errors.As(err, &ae) && errors.As(ae.Err, &te):
		d.errorf(elemRange(a, ae.Index), "Character systemd refuses",
			"%s[%d]: %v; remove it or write another character.", a.Name, ae.Index, te)
	case errors.As(err, &ae) && errors.As(ae.Err, &ale):
		d.errorf(elemRange(a, ae.Index), "Argument too long",
			"%s[%d]: %v; pass long data in a file instead.", a.Name, ae.Index, ale)
	case errors.As(err, &ae):
		d.errorf(elemRange(a, ae.Index), programSummary, "%s: %v.", a.Name, ae.Err)
	case errors.As(err, &le):
		d.errorf(a.Expr.Range(), "Command too long",
			"%s: %v; put the long part into a script or a file and run that.", a.Name, le)
	default:
		d.errorf(a.Expr.Range(), "Command too long",
			"%s: %v; put the long part into a script or a file and run that.", a.Name, err)
	}
}

// checkFileName refuses a stack file whose path cannot be written into its
// units as SourcePath= (systemd.SourcePath, the renderer's own check).
func (d *decoder) checkFileName(filename string) {
	p := filename
	if !filepath.IsAbs(p) {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
	}
	if _, err := systemd.SourcePath(p); err != nil {
		d.errorf(hhcl.Range{Filename: filename, Start: hhcl.InitialPos, End: hhcl.InitialPos}, "Unusable file name",
			"the path of this file, %q, is written into the stack's units (SourcePath=), and %v; rename the file or its directory (letters, digits, '-', '_' and '.' are always safe).",
			p, err)
	}
}
