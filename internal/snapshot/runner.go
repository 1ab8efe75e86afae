package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// Runner runs one command to its end; ctx cancels it. The error of a failed command says
// which command it was and what it wrote to stderr (see CommandError).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) error
	// Stream is Run with the command's stdout written to w as it comes. w must take all of
	// it (a writer that has what it needs discards the rest): a command whose stdout is
	// no longer read would never end.
	Stream(ctx context.Context, w io.Writer, name string, args ...string) error
}

// ExecRunner runs commands with os/exec, stdout discarded, stderr kept for the error.
type ExecRunner struct{}

// maxStderr bounds the stderr an error carries (cp may complain once per file).
const maxStderr = 4096

// Run runs name with args.
func (r ExecRunner) Run(ctx context.Context, name string, args ...string) error {
	return r.Stream(ctx, nil, name, args...)
}

// Stream runs name with args, its stdout written to w (discarded when w is nil).
func (ExecRunner) Stream(ctx context.Context, w io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(cmd.Environ(), "LC_ALL=C")
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	msg := strings.TrimSpace(stderr.String())
	if len(msg) > maxStderr {
		msg = msg[:maxStderr] + " ..."
	}
	return &CommandError{Argv: append([]string{name}, args...), Stderr: msg, Err: err}
}

// CommandError is a failed command: its argv, its stderr and the cause.
type CommandError struct {
	Argv   []string
	Stderr string
	Err    error
}

func (e *CommandError) Error() string {
	q := make([]string, len(e.Argv))
	for i, a := range e.Argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	s := strings.Join(q, " ") + ": " + e.Err.Error()
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

func (e *CommandError) Unwrap() error { return e.Err }
