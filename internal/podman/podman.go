// Package podman is how this project asks podman about a stack's
// containers. podman-compose labels every container of a project with
// io.podman.compose.project=<project>.
package podman

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ProjectLabel is the label podman-compose puts on a project's containers.
const ProjectLabel = "io.podman.compose.project"

// ErrNotInstalled is returned when there is no podman to ask.
var ErrNotInstalled = errors.New("podman is not installed")

// CLI asks the podman command on PATH.
type CLI struct{}

// Running lists the running containers of a compose project.
func (CLI) Running(ctx context.Context, project string) ([]string, error) {
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	out, err := exec.CommandContext(ctx, "podman", "ps", "--filter", "label="+ProjectLabel+"="+project, "--format", "{{.Names}}").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("podman ps: %w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("podman ps: %w", err)
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if n := strings.TrimSpace(sc.Text()); n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}
