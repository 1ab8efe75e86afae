// Package managertest is a fake user manager for tests of code that takes
// a manager.Manager. It keeps an ActiveState per unit, applies Conflicts=
// on start the way systemd does (stop jobs first), records every call, and
// fails the calls a test asks it to fail.
package managertest

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/backup-stack/backup-stack/internal/manager"
)

// Fake implements manager.Manager in memory. The zero value is not ready:
// use New.
type Fake struct {
	mu    sync.Mutex
	units map[string]manager.Props
	// conflicts: starting the key stops these units first.
	conflicts map[string][]string
	fail      map[string]error
	calls     []string
	// hooks run after a call was recorded and before it takes effect.
	hooks map[string]func()
	// invocations numbers the runs StartNoBlock begins.
	invocations int
	// env is what Environment returns.
	env []string
}

var _ manager.Manager = (*Fake)(nil)

// New returns a fake manager with no units loaded.
func New() *Fake {
	return &Fake{units: map[string]manager.Props{}, conflicts: map[string][]string{},
		fail: map[string]error{}, hooks: map[string]func(){}}
}

// Set sets the ActiveState of units (loading them).
func (f *Fake) Set(state string, units ...string) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.unit(u)["ActiveState"] = state
	}
	return f
}

// SetProp sets any property of a unit (loading it).
func (f *Fake) SetProp(unit, key, value string) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unit(unit)[key] = value
	return f
}

// Conflicts makes starting unit stop others first, like Conflicts= plus After=.
func (f *Fake) Conflicts(unit string, others ...string) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conflicts[unit] = append(f.conflicts[unit], others...)
	return f
}

// Fail makes every call whose recorded form (see Calls) equals call fail
// with err; a nil err removes the failure.
func (f *Fake) Fail(call string, err error) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, call)
	} else {
		f.fail[call] = err
	}
	return f
}

// On runs fn when a call of that recorded form is made, before it takes
// effect (to change the world under the code being tested).
func (f *Fake) On(call string, fn func()) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks[call] = fn
	return f
}

// State is the ActiveState of unit ("inactive" when not loaded).
func (f *Fake) State(unit string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.units[unit]; ok {
		return p["ActiveState"]
	}
	return "inactive"
}

// Calls returns the calls that changed or asked something, in order, as
// "start a b", "start --no-block a", "stop --alone a", "restart a", "daemon-reload",
// "show a b", "list GLOB".
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Changes returns Calls without the read-only ones (show, list,
// show-environment).
func (f *Fake) Changes() []string {
	var out []string
	for _, c := range f.Calls() {
		if !strings.HasPrefix(c, "show ") && !strings.HasPrefix(c, "list ") && c != "show-environment" {
			out = append(out, c)
		}
	}
	return out
}

func (f *Fake) unit(u string) manager.Props {
	p, ok := f.units[u]
	if !ok {
		p = manager.Props{"Id": u, "LoadState": "loaded", "ActiveState": "inactive"}
		f.units[u] = p
	}
	return p
}

// record logs a call, runs its hook (unlocked) and returns its failure.
func (f *Fake) record(ctx context.Context, call string) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	hook := f.hooks[call]
	err := f.fail[call]
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}

// Show implements manager.Manager.
func (f *Fake) Show(ctx context.Context, units []string, props ...string) ([]manager.Props, error) {
	if err := f.record(ctx, "show "+strings.Join(units, " ")); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]manager.Props, len(units))
	for i, u := range units {
		src, ok := f.units[u]
		if !ok {
			src = manager.Props{"Id": u, "LoadState": "not-found", "ActiveState": "inactive"}
		}
		p := manager.Props{}
		for _, k := range props {
			p[k] = src[k]
		}
		if len(props) == 0 {
			for k, v := range src {
				p[k] = v
			}
		}
		out[i] = p
	}
	return out, nil
}

// Start implements manager.Manager: conflicting units stop, then the
// units become active.
func (f *Fake) Start(ctx context.Context, units ...string) error {
	if err := f.record(ctx, "start "+strings.Join(units, " ")); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		for _, c := range f.conflicts[u] {
			f.unit(c)["ActiveState"] = "inactive"
		}
	}
	for _, u := range units {
		f.unit(u)["ActiveState"] = "active"
	}
	return nil
}

// StartNoBlock implements manager.Manager, recorded as "start --no-block
// a b": each unit becomes activating with a new InvocationID and a queued
// Job, as a real start job leaves it; a test ends the run with Finish.
func (f *Fake) StartNoBlock(ctx context.Context, units ...string) error {
	if err := f.record(ctx, "start --no-block "+strings.Join(units, " ")); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.invocations++
		p := f.unit(u)
		p["ActiveState"] = "activating"
		p["Job"] = fmt.Sprint(f.invocations)
		p["InvocationID"] = fmt.Sprintf("%032x", f.invocations)
	}
	return nil
}

// Finish ends the run of unit the way the manager does: no job, inactive
// with Result=success and status 0, else failed with that result and
// ExecMainStatus.
func (f *Fake) Finish(unit, result string, status int) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.unit(unit)
	p["Job"] = ""
	p["Result"] = result
	p["ExecMainStatus"] = fmt.Sprint(status)
	p["ExecMainCode"] = "1"
	if result == "success" {
		p["ActiveState"] = "inactive"
	} else {
		p["ActiveState"] = "failed"
	}
	return f
}

// Restart implements manager.Manager.
func (f *Fake) Restart(ctx context.Context, units ...string) error {
	if err := f.record(ctx, "restart "+strings.Join(units, " ")); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.unit(u)["ActiveState"] = "active"
	}
	return nil
}

// Stop implements manager.Manager.
func (f *Fake) Stop(ctx context.Context, alone bool, units ...string) error {
	call := "stop "
	if alone {
		call += "--alone "
	}
	if err := f.record(ctx, call+strings.Join(units, " ")); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.unit(u)["ActiveState"] = "inactive"
	}
	return nil
}

// DaemonReload implements manager.Manager.
func (f *Fake) DaemonReload(ctx context.Context) error {
	return f.record(ctx, "daemon-reload")
}

// List implements manager.Manager.
func (f *Fake) List(ctx context.Context, glob string) ([]manager.UnitState, error) {
	if err := f.record(ctx, "list "+glob); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []manager.UnitState
	for name, p := range f.units {
		ok, err := path.Match(glob, name)
		if err != nil {
			return nil, fmt.Errorf("bad glob %q: %w", glob, err)
		}
		if ok {
			out = append(out, manager.UnitState{Name: name, LoadState: p["LoadState"], ActiveState: p["ActiveState"]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SetEnvironment sets the manager's environment (NAME=VALUE), which
// Environment returns.
func (f *Fake) SetEnvironment(env ...string) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.env = append([]string(nil), env...)
	return f
}

// Environment implements manager.Manager; recorded as "show-environment".
func (f *Fake) Environment(ctx context.Context) ([]string, error) {
	if err := f.record(ctx, "show-environment"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.env...), nil
}
