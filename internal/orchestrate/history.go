package orchestrate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// History is the last finished run of a stack, for `backup-stack list`.
type History struct {
	Stack        string `json:"stack"`
	InvocationID string `json:"invocation_id"`
	// Result is systemd's $SERVICE_RESULT ("success", "exit-code",
	// "signal", "timeout" ...), or "failed" when a step after the jobs failed.
	Result     string    `json:"result"`
	ExitStatus string    `json:"exit_status,omitempty"`
	Gate       time.Time `json:"gate,omitempty"`
	HeldAt     time.Time `json:"held_at,omitempty"`
	RestoredAt time.Time `json:"restored_at,omitempty"`
	Finished   time.Time `json:"finished"`
	// Downtime is how long the stack was held down, in seconds.
	Downtime float64  `json:"downtime_seconds,omitempty"`
	Failures []string `json:"failures,omitempty"`
	// Reason says in words why the run failed ("" when it did not).
	Reason string `json:"reason,omitempty"`
	// Unknown are the jobs whose result Duplicati did not show (see Plan.Unknown).
	Unknown []string `json:"unknown,omitempty"`
	// LastSuccess is the end of the last successful run, carried over from
	// run to run, so a dead man's switch can be built on it.
	LastSuccess time.Time `json:"last_success,omitempty"`
}

// Succeeded reports whether the run succeeded.
func (h *History) Succeeded() bool { return h.Result == "success" && len(h.Failures) == 0 }

// Outcome is the result in words for people and metrics: systemd's result, except that a
// success with a job of unknown result is "success, result unknown".
func (h *History) Outcome() string {
	if h.Succeeded() && len(h.Unknown) > 0 {
		return "success, result unknown"
	}
	if len(h.Failures) > 0 && h.Result == "success" {
		return "failed"
	}
	return h.Result
}

// Duration is the time from the gate to the end of the run.
func (h *History) Duration() time.Duration {
	if h.Gate.IsZero() {
		return 0
	}
	return h.Finished.Sub(h.Gate)
}

// StateDir is where history is kept: $XDG_STATE_HOME/backup-stack, else
// ~/.local/state/backup-stack.
func StateDir() (string, error) {
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "backup-stack"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state", "backup-stack"), nil
}

func historyPath(dir, stack string) string { return filepath.Join(dir, "history", stack+".json") }

// Save writes the history entry atomically.
func (h *History) Save(stateDir string) error { return writeJSON(historyPath(stateDir, h.Stack), h) }

// LoadHistory returns the last run of stack, or nil. A damaged file is
// moved aside (and said in the error), with a nil history.
func LoadHistory(stateDir, stack string) (*History, error) {
	var h History
	path := historyPath(stateDir, stack)
	err := readJSON(path, &h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil && h.Stack != stack {
		err = fmt.Errorf("it is the history of stack %q", h.Stack)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, moveAside(path, err.Error())
	}
	return &h, nil
}
