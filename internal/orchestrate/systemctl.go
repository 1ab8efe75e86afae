package orchestrate

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Systemctl runs `systemctl --user`. The helper talks to the manager this
// way (and not over D-Bus) because the only endpoint every user manager
// has is its private socket, which systemctl finds from XDG_RUNTIME_DIR.
type Systemctl struct {
	// Bin is the systemctl binary; "" means "systemctl" from PATH.
	Bin string
}

func (s Systemctl) bin() string {
	if s.Bin == "" {
		return "systemctl"
	}
	return s.Bin
}

func (s Systemctl) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin(), append([]string{"--user"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	if err != nil {
		if ctx.Err() != nil {
			return text, fmt.Errorf("systemctl --user %s: %w", strings.Join(args, " "), ctx.Err())
		}
		if text != "" {
			return text, fmt.Errorf("systemctl --user %s: %w: %s", strings.Join(args, " "), err, text)
		}
		return text, fmt.Errorf("systemctl --user %s: %w", strings.Join(args, " "), err)
	}
	return text, nil
}

// Run runs any systemctl --user command and returns its error.
func (s Systemctl) Run(ctx context.Context, args ...string) error {
	_, err := s.run(ctx, args...)
	return err
}

// Output runs any systemctl --user command and returns its output.
func (s Systemctl) Output(ctx context.Context, args ...string) (string, error) {
	return s.run(ctx, args...)
}

// Start starts units in one transaction and waits for the jobs to finish.
func (s Systemctl) Start(ctx context.Context, units ...string) error {
	_, err := s.run(ctx, append([]string{"start"}, units...)...)
	return err
}

// Stop stops units and waits for the jobs to finish.
func (s Systemctl) Stop(ctx context.Context, units ...string) error {
	_, err := s.run(ctx, append([]string{"stop"}, units...)...)
	return err
}

// StopAlone stops units without propagating the stop along dependencies
// (--job-mode=ignore-dependencies). The restore needs it for the hold unit:
// backup@<stack> is PartOf= the hold unit, and a propagated stop job would
// replace the backup unit's still running start job (a oneshot's start job
// lasts through ExecStopPost=), so the `systemctl start backup@<stack>` that
// is waiting would report "canceled" after a good backup.
func (s Systemctl) StopAlone(ctx context.Context, units ...string) error {
	_, err := s.run(ctx, append([]string{"stop", "--job-mode=ignore-dependencies"}, units...)...)
	return err
}

// Show returns the requested properties of a unit.
func (s Systemctl) Show(ctx context.Context, unit string, props ...string) (map[string]string, error) {
	args := []string{"show", unit}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	out, err := s.run(ctx, args...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Active reports whether a unit is active, activating or reloading: the
// states in which "start it again afterwards" is the right memory.
func (s Systemctl) Active(ctx context.Context, unit string) (bool, error) {
	m, err := s.Show(ctx, unit, "ActiveState")
	if err != nil {
		return false, err
	}
	switch m["ActiveState"] {
	case "active", "activating", "reloading":
		return true, nil
	}
	return false, nil
}
