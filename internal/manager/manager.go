// Package manager is how this project talks to the systemd user manager:
// one interface, one implementation over `systemctl --user`, and a fake
// (package managertest) for tests.
//
// The implementation runs systemctl rather than speaking D-Bus: the only
// endpoint every user manager has is its private socket, which systemctl
// finds from XDG_RUNTIME_DIR (go-systemd's dbus package wants a session
// bus), and `systemctl start` already waits for the jobs it queued.
package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Props are the properties of one unit, as `systemctl show` prints them.
type Props map[string]string

// UnitState is one line of list-units.
type UnitState struct {
	Name        string
	LoadState   string
	ActiveState string
}

// Manager is the user manager.
type Manager interface {
	// Show returns the requested properties of each unit, in the order of
	// units, in one call. A unit the manager does not know is not an
	// error: it shows LoadState=not-found and ActiveState=inactive.
	Show(ctx context.Context, units []string, props ...string) ([]Props, error)
	// Start starts units in one transaction and waits until the jobs end.
	Start(ctx context.Context, units ...string) error
	// StartNoBlock queues start jobs for units and returns without waiting
	// for them (--no-block): `backup-stack backup` follows the unit itself,
	// so that it can print progress and let a Ctrl-C stop the backup.
	StartNoBlock(ctx context.Context, units ...string) error
	// Restart restarts units (starts those that are not running) and waits.
	Restart(ctx context.Context, units ...string) error
	// Stop stops units and waits. With alone, the stop does not spread
	// along dependencies (--job-mode=ignore-dependencies).
	Stop(ctx context.Context, alone bool, units ...string) error
	// DaemonReload re-runs the generators and reloads every unit file.
	DaemonReload(ctx context.Context) error
	// List returns the units loaded in the manager that match a glob,
	// whatever their state.
	List(ctx context.Context, glob string) ([]UnitState, error)
	// Environment is the manager's own environment (show-environment), as
	// NAME=VALUE lines: what every unit, and so every hook, starts with.
	Environment(ctx context.Context) ([]string, error)
}

// States returns the ActiveState of each unit, in order, in one call.
func States(ctx context.Context, m Manager, units ...string) ([]string, error) {
	if len(units) == 0 {
		return nil, nil
	}
	ps, err := m.Show(ctx, units, "ActiveState")
	if err != nil {
		return nil, err
	}
	if len(ps) != len(units) {
		return nil, fmt.Errorf("systemctl show: %d answers for %d units", len(ps), len(units))
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p["ActiveState"]
	}
	return out, nil
}

// Up reports, for each unit, whether it is up (systemd.Up).
func Up(ctx context.Context, m Manager, units ...string) ([]bool, error) {
	states, err := States(ctx, m, units...)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(states))
	for i, s := range states {
		out[i] = systemd.Up(s)
	}
	return out, nil
}

// IsUp is Up for one unit.
func IsUp(ctx context.Context, m Manager, unit string) (bool, error) {
	up, err := Up(ctx, m, unit)
	if err != nil {
		return false, err
	}
	return up[0], nil
}

// TimerChange says what ApplyTimers did.
type TimerChange struct {
	Restarted []string // started or re-armed
	Stopped   []string // their stack has no schedule any more
}

// ApplyTimers makes the manager run exactly the backup timers of the
// stacks that have a schedule, after a daemon-reload. A reload alone does
// neither half: the manager starts a timer newly linked into
// timers.target.wants only at its own start, keeps the old schedule of an
// active timer until it is restarted, and keeps a removed stack's timer
// running. Restarting keeps a timer's memory of its last run
// (Persistent=true). It is the one policy of `backup-stack reload` and of
// `backup-stack render`.
func ApplyTimers(ctx context.Context, m Manager, scheduled []string) (TimerChange, error) {
	var ch TimerChange
	want := map[string]bool{}
	for _, t := range scheduled {
		want[t] = true
	}
	loaded, err := m.List(ctx, systemd.BackupTimerGlob)
	if err != nil {
		return ch, err
	}
	for _, u := range loaded {
		if !want[u.Name] && systemd.Running(u.ActiveState) {
			ch.Stopped = append(ch.Stopped, u.Name)
		}
	}
	var errs []error
	if len(ch.Stopped) > 0 {
		if err := m.Stop(ctx, false, ch.Stopped...); err != nil {
			errs = append(errs, err)
		}
	}
	if len(scheduled) > 0 {
		if err := m.Restart(ctx, scheduled...); err != nil {
			errs = append(errs, err)
		} else {
			ch.Restarted = scheduled
		}
	}
	return ch, errors.Join(errs...)
}
