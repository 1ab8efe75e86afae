package manager

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Systemctl is the Manager behind `systemctl --user`.
type Systemctl struct{}

func (Systemctl) run(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--user", "--no-ask-password"}, args...)
	cmd := exec.CommandContext(ctx, "systemctl", full...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	if err != nil {
		what := "systemctl --user " + strings.Join(args, " ")
		switch {
		case ctx.Err() != nil:
			return text, fmt.Errorf("%s: %w", what, ctx.Err())
		case text != "":
			return text, fmt.Errorf("%s: %w: %s", what, err, text)
		default:
			return text, fmt.Errorf("%s: %w", what, err)
		}
	}
	return text, nil
}

// Show implements Manager. systemctl prints one block of NAME=VALUE lines
// per unit, in the order given, separated by a blank line.
func (s Systemctl) Show(ctx context.Context, units []string, props ...string) ([]Props, error) {
	args := []string{"show"}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	args = append(args, "--")
	args = append(args, units...)
	out, err := s.run(ctx, args...)
	if err != nil {
		return nil, err
	}
	return parseShow(out, len(units))
}

func parseShow(out string, n int) ([]Props, error) {
	var blocks []Props
	cur := Props{}
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = Props{}
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			flush()
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cur[k] = v
		}
	}
	flush()
	if len(blocks) != n {
		return nil, fmt.Errorf("systemctl show: %d blocks of properties for %d units", len(blocks), n)
	}
	return blocks, nil
}

// Start implements Manager.
func (s Systemctl) Start(ctx context.Context, units ...string) error {
	_, err := s.run(ctx, append([]string{"start", "--"}, units...)...)
	return err
}

// StartNoBlock implements Manager.
func (s Systemctl) StartNoBlock(ctx context.Context, units ...string) error {
	_, err := s.run(ctx, append([]string{"start", "--no-block", "--"}, units...)...)
	return err
}

// Restart implements Manager.
func (s Systemctl) Restart(ctx context.Context, units ...string) error {
	_, err := s.run(ctx, append([]string{"restart", "--"}, units...)...)
	return err
}

// Stop implements Manager.
func (s Systemctl) Stop(ctx context.Context, alone bool, units ...string) error {
	args := []string{"stop"}
	if alone {
		args = append(args, "--job-mode=ignore-dependencies")
	}
	_, err := s.run(ctx, append(append(args, "--"), units...)...)
	return err
}

// DaemonReload implements Manager.
func (s Systemctl) DaemonReload(ctx context.Context) error {
	_, err := s.run(ctx, "daemon-reload")
	return err
}

// List implements Manager.
func (s Systemctl) List(ctx context.Context, glob string) ([]UnitState, error) {
	out, err := s.run(ctx, "list-units", "--all", "--plain", "--no-legend", "--", glob)
	if err != nil {
		return nil, err
	}
	var us []UnitState
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		us = append(us, UnitState{Name: f[0], LoadState: f[1], ActiveState: f[2]})
	}
	return us, nil
}

// Environment implements Manager. show-environment prints one NAME=VALUE
// per line; a value with a newline is printed $'...'-quoted, which no
// caller of this looks at (PATH has none).
func (s Systemctl) Environment(ctx context.Context) ([]string, error) {
	out, err := s.run(ctx, "show-environment")
	if err != nil {
		return nil, err
	}
	var env []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "=") {
			env = append(env, line)
		}
	}
	return env, nil
}
