// Package logread reads what a stack's backup logged: the journal, through
// journalctl (the only program it runs), or the log_dir files the helper
// writes next to it (backup-<stack>-YYYY-MM-DD.log), for a machine or a
// sandbox where journald has nothing.
package logread

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// Query selects journal entries.
type Query struct {
	// Units are user units (journalctl --user -u U ...).
	Units []string
	// Since is passed to journalctl --since as it is ("" = all).
	Since string
	// Lines > 0 shows only the last Lines entries (-n).
	Lines int
	// Follow keeps printing new entries until the context ends (-f).
	Follow bool
}

// Journal reads entries of the user's units. It is an interface so that
// tests of the commands can replace journalctl.
type Journal interface {
	// Lines calls emit with the message of every entry that q selects, in
	// order. With q.Follow it returns nil when ctx ends.
	Lines(ctx context.Context, q Query, emit func(string)) error
}

// Journalctl is the Journal behind `journalctl --user`.
type Journalctl struct{}

// Args is the journalctl command line of q (without the program).
func Args(q Query) []string {
	args := []string{"--user", "--no-pager", "--quiet", "--output=cat"}
	for _, u := range q.Units {
		args = append(args, "--unit="+u)
	}
	if q.Since != "" {
		args = append(args, "--since="+q.Since)
	}
	if q.Lines > 0 {
		args = append(args, "--lines="+strconv.Itoa(q.Lines))
	}
	if q.Follow {
		args = append(args, "--follow")
	}
	return args
}

// Lines implements Journal.
func (Journalctl) Lines(ctx context.Context, q Query, emit func(string)) error {
	args := Args(q)
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	scanErr := scanLines(out, emit)
	err = cmd.Wait()
	if q.Follow && ctx.Err() != nil {
		return nil // following ends with the context: that is no failure
	}
	what := "journalctl " + strings.Join(args, " ")
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case err != nil && strings.TrimSpace(stderr.String()) != "":
		return fmt.Errorf("%s: %w: %s", what, err, strings.TrimSpace(stderr.String()))
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case scanErr != nil:
		return fmt.Errorf("%s: reading its output: %w", what, scanErr)
	}
	return nil
}

// maxLine bounds one entry: a hook's output line can be long, but not
// without end.
const maxLine = 1 << 20

// scanLines calls emit for every line of r (without its newline).
func scanLines(r io.Reader, emit func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		emit(sc.Text())
	}
	if err := sc.Err(); err != nil {
		// Keep draining so that journalctl is never blocked on a full pipe.
		_, _ = io.Copy(io.Discard, r)
		return err
	}
	return nil
}
