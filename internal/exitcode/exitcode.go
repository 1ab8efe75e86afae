// Package exitcode is the one table of backup-stack's exit codes. The code,
// `backup-stack --help` and the documentation (a test holds README.md and
// docs/architecture.md to Markdown()) all come from it. systemd records the
// code of a unit's main process as ExecMainStatus=, and the notifier and the
// run history pass it on, so the numbers are part of the interface.
package exitcode

import (
	"fmt"
	"strings"
)

// The exit codes, from least to most specific. A run of several jobs exits
// with the highest code among its jobs.
const (
	OK           = 0
	Failure      = 1
	Usage        = 2
	Busy         = 3
	Warning      = 4
	JobError     = 5
	Fatal        = 6
	Unknown      = 7
	Timeout      = 8
	Unreachable  = 9
	Interrupted  = 10
	Precondition = 11
	StillHeld    = 12
)

// Entry is one row of the table.
type Entry struct {
	Code    int
	Meaning string
}

// Table lists every code with its meaning, in order.
var Table = []Entry{
	{OK, "success (status: Duplicati idle)"},
	{Failure, "failure without a more specific code (status: cannot tell)"},
	{Usage, "usage or configuration error: unknown stack, unknown Duplicati job, broken config.hcl"},
	{Busy, "status: Duplicati busy or paused"},
	{Warning, "a job ended with Warning and warning_is_failure = true"},
	{JobError, "a job ended with Error"},
	{Fatal, "a job ended Fatal (or its task failed with an exception)"},
	{Unknown, "a job's outcome is unknown"},
	{Timeout, "timed out: a job did not finish within wait_timeout, or the gate waited too long"},
	{Unreachable, "Duplicati unreachable, or its answer could not be understood"},
	{Interrupted, "interrupted (SIGTERM/SIGINT): the task was aborted or is said to keep running"},
	{Precondition, "a precondition failed at the gate (require_paths missing)"},
	{StillHeld, "stopped waiting (stop or wait_timeout) while Duplicati still holds the task: it may back up the live stack; cancel it in Duplicati"},
}

// Help is the table as plain text for --help.
func Help() string {
	var b strings.Builder
	b.WriteString("Exit codes:")
	for _, e := range Table {
		fmt.Fprintf(&b, "\n  %-2d %s", e.Code, e.Meaning)
	}
	return b.String()
}

// Markdown is the table as the documentation shows it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| code | meaning |\n|---|---|\n")
	for _, e := range Table {
		fmt.Fprintf(&b, "| %d | %s |\n", e.Code, e.Meaning)
	}
	return b.String()
}
