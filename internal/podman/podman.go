// Package podman is how this project asks podman about a stack's
// containers. podman-compose labels every container of a project with
// io.podman.compose.project=<project>.
package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ProjectLabel is the label podman-compose puts on a project's containers.
const ProjectLabel = "io.podman.compose.project"

// ErrNotInstalled is returned when there is no podman to ask.
var ErrNotInstalled = errors.New("podman is not installed")

// Container is one container of a project as `podman ps -a` shows it.
type Container struct {
	Name string
	// State is podman's state word: created, running, stopping, exited ...
	State string
	// Status is podman's words for people, e.g. "Exited (125) 3 seconds ago".
	Status string
}

// Down reports whether the container is stopped for good. Every other
// state counts as running: podman ps (without -a) does not list a
// container that is "stopping" (its stop was cut short while its process
// ignores SIGTERM), yet its process still writes to the data.
func (c Container) Down() bool {
	switch c.State {
	case "exited", "stopped", "created", "configured":
		return true
	}
	return false
}

// CLI asks the podman command on PATH.
type CLI struct{}

// List returns every container of a compose project, in any state.
func (CLI) List(ctx context.Context, project string) ([]Container, error) {
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	// JSON, because the template field {{.State}} of podman 4.3 prints the
	// words for people ("Exited (143) 3 seconds ago"), not the state.
	out, err := exec.CommandContext(ctx, "podman", "ps", "-a", "--filter", "label="+ProjectLabel+"="+project, "--format", "json").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("podman ps: %w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("podman ps: %w", err)
	}
	return parse(out)
}

// Kill ends a container with SIGKILL at once and waits until podman has
// recorded it as stopped (`podman stop --time 0`). When podman's record
// stays "stopping" even then (measured with podman 4.3: the stop that was
// cut short took conmon with it, so no exit code is ever recorded and the
// container can neither start nor stop), the container is removed (`podman
// rm -f`): its compose project recreates it on the next `up`, and its
// volumes are kept.
func (c CLI) Kill(ctx context.Context, name string) error {
	out, err := exec.CommandContext(ctx, "podman", "stop", "--time", "0", "--", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("podman stop --time 0 %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	state, err := exec.CommandContext(ctx, "podman", "inspect", "--format", "{{.State.Status}}", "--", name).Output()
	if err != nil || strings.TrimSpace(string(state)) != "stopping" {
		return nil
	}
	out, err = exec.CommandContext(ctx, "podman", "rm", "--force", "--", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("podman rm --force %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return ErrRemoved
}

// ErrRemoved says Kill had to remove the container (see Kill).
var ErrRemoved = errors.New("podman's record of the container stayed \"stopping\"; removed it so that its compose project recreates it (volumes are kept)")

// psEntry is the part of `podman ps --format json` that is used.
type psEntry struct {
	Names  []string `json:"Names"`
	State  string   `json:"State"`
	Status string   `json:"Status"`
}

func parse(out []byte) ([]Container, error) {
	var es []psEntry
	if err := json.Unmarshal(out, &es); err != nil {
		return nil, fmt.Errorf("podman ps: unexpected output: %w", err)
	}
	cs := make([]Container, 0, len(es))
	for _, e := range es {
		if len(e.Names) == 0 {
			continue
		}
		cs = append(cs, Container{Name: e.Names[0], State: strings.ToLower(e.State), Status: e.Status})
	}
	return cs, nil
}

// Up returns the names of the containers that are not down.
func Up(cs []Container) []string {
	var out []string
	for _, c := range cs {
		if !c.Down() {
			out = append(out, c.Name)
		}
	}
	return out
}
