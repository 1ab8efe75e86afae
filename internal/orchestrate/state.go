package orchestrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/backup-stack/backup-stack/internal/atomicfile"
)

// RuntimeDir is where the per-user runtime state lives: on the tmpfs of
// XDG_RUNTIME_DIR, because none of it must survive a reboot.
func RuntimeDir() (string, error) {
	x := os.Getenv("XDG_RUNTIME_DIR")
	if x == "" || !filepath.IsAbs(x) {
		return "", errors.New("XDG_RUNTIME_DIR is not set: run this from a systemd user unit or a login session")
	}
	return filepath.Join(x, "backup-stack"), nil
}

// Record is what the gate found active, so the restore can bring back
// exactly that. It belongs to one invocation of backup@<stack>.service.
type Record struct {
	Stack         string    `json:"stack"`
	InvocationID  string    `json:"invocation_id"`
	Gate          time.Time `json:"gate"`
	UnitActive    bool      `json:"unit_active"`
	SocketActive  bool      `json:"socket_active,omitempty"`
	ServiceActive bool      `json:"service_active,omitempty"`
	// Held is set just before the hold unit is started: from then on the
	// restore must run, whatever happens.
	Held   bool      `json:"held"`
	HeldAt time.Time `json:"held_at,omitempty"`
	// Restored is set when the restore brought back what the policy says.
	Restored   bool      `json:"restored"`
	RestoredAt time.Time `json:"restored_at,omitempty"`
	// Inherited says the gate found the stack still held by an earlier run
	// that never restored it, and took over that run's memory.
	Inherited bool `json:"inherited,omitempty"`
}

func recordPath(dir, stack string) string { return filepath.Join(dir, "record", stack+".json") }

// LoadRecord returns the stack's record, or nil when there is none.
func LoadRecord(dir, stack string) (*Record, error) {
	var r Record
	err := readJSON(recordPath(dir, stack), &r)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Save writes the record atomically.
func (r *Record) Save(dir string) error {
	return writeJSON(recordPath(dir, r.Stack), r)
}

// RemoveRecord deletes the stack's record.
func RemoveRecord(dir, stack string) error {
	err := os.Remove(recordPath(dir, stack))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON replaces path atomically, so a reader never sees half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Failures are the failed steps of one invocation that ran with "-" (so
// that the sequence continued) and must still fail the unit at release.
type Failures struct {
	InvocationID string   `json:"invocation_id"`
	Steps        []string `json:"steps"`
}

func failuresPath(dir, stack string) string { return filepath.Join(dir, "failed", stack+".json") }

// AddFailure records a failed step for this invocation.
func AddFailure(dir, stack, inv, step string) error {
	var f Failures
	err := readJSON(failuresPath(dir, stack), &f)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if f.InvocationID != inv {
		f = Failures{InvocationID: inv}
	}
	f.Steps = append(f.Steps, step)
	return writeJSON(failuresPath(dir, stack), &f)
}

// TakeFailures returns and clears the failed steps of this invocation.
func TakeFailures(dir, stack, inv string) ([]string, error) {
	var f Failures
	err := readJSON(failuresPath(dir, stack), &f)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_ = os.Remove(failuresPath(dir, stack))
	if f.InvocationID != inv {
		return nil, nil
	}
	return f.Steps, nil
}
