package orchestrate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/snapshot"
)

// Plan is one backup of one stack, frozen at its gate: every setting the
// later steps need, what the gate found running, and how far the run got.
// It lives under $XDG_STATE_HOME (a reboot empties $XDG_RUNTIME_DIR) and is
// written atomically and durably at every change, so that
//
//   - no step after the gate reads the HCL again: an edit, a broken or a
//     deleted file during the backup cannot change what the run does;
//   - a crash or a shutdown in the middle leaves the truth behind: which
//     units were up at the gate, that the stack was held down, and since when,
//     for `backup-stack recover` at the next manager start.
type Plan struct {
	Stack        string    `json:"stack"`
	InvocationID string    `json:"invocation_id"`
	Gate         time.Time `json:"gate"`
	// Sources are the files the settings came from, with their SHA-256 at
	// the gate ("" for a file that did not exist).
	Sources  map[string]string `json:"sources"`
	Settings Settings          `json:"settings"`

	// What was up at the gate.
	UnitActive    bool     `json:"unit_active"`
	SocketActive  bool     `json:"socket_active,omitempty"`
	ServiceActive bool     `json:"service_active,omitempty"`
	Containers    []string `json:"containers,omitempty"`

	// Held is set just before the hold unit is started: from then on the
	// stack must be restored, whatever happens.
	Held   bool      `json:"held"`
	HeldAt time.Time `json:"held_at,omitempty"`
	// Stopped: wait-stopped saw every container of the project down.
	Stopped bool `json:"stopped,omitempty"`

	// Snapshots (snapshot mode) are the snapshots the gate planned: what the
	// snapshot step makes, and what finish or recover remove. Saved before
	// any is made, so that a crash in the middle leaves their names behind.
	Snapshots []snapshot.Item `json:"snapshots,omitempty"`
	// SnapshotTaken: every snapshot exists and was made while the stack was
	// held down. From then on the stack may run again.
	SnapshotTaken   bool      `json:"snapshot_taken,omitempty"`
	SnapshotTakenAt time.Time `json:"snapshot_taken_at,omitempty"`
	// SnapshotRemoved: finish or recover removed them.
	SnapshotRemoved bool `json:"snapshot_removed,omitempty"`
	// HooksRun are the hook kinds that already ran (resume runs pre_start and
	// post_start; finish does not run them again).
	HooksRun []string `json:"hooks_run,omitempty"`
	// Restored is set when the restore brought back what the policy says.
	Restored   bool      `json:"restored"`
	RestoredAt time.Time `json:"restored_at,omitempty"`
	// Failures are the steps that failed, each in words.
	Failures []string `json:"failures,omitempty"`
	// Unknown are the jobs that finished without a way to tell how (the exec route of a
	// Duplicati before 2.1.2.0): the run counts as a success, shown as "result unknown".
	Unknown []string `json:"unknown,omitempty"`
	// Notified: the failure notification of this run was sent.
	Notified bool `json:"notified,omitempty"`
	// Finished is set by the last step (finish, or recover).
	Finished   bool      `json:"finished"`
	FinishedAt time.Time `json:"finished_at,omitempty"`
}

// Settings are the stack's settings as the gate read them.
type Settings struct {
	Unit          string            `json:"unit"`
	Socket        string            `json:"socket,omitempty"`
	Service       string            `json:"service,omitempty"`
	ProjectLabel  string            `json:"project_label"`
	RestorePolicy string            `json:"restore_policy"`
	StopTimeout   time.Duration     `json:"stop_timeout"`
	StartTimeout  time.Duration     `json:"start_timeout"`
	WaitTimeout   time.Duration     `json:"wait_timeout"`
	Jobs          []string          `json:"jobs"`
	Hooks         []Hook            `json:"hooks,omitempty"`
	Duplicati     hcl.Duplicati     `json:"duplicati"`
	LogDir        string            `json:"log_dir,omitempty"`
	MetricsFile   string            `json:"metrics_file,omitempty"`
	Notify        *hcl.Notify       `json:"notify,omitempty"`
	Healthcheck   *hcl.Healthcheck  `json:"healthcheck,omitempty"`
	Snapshot      *SnapshotSettings `json:"snapshot,omitempty"`
}

// SnapshotSettings are the stack's snapshot block as the gate read it.
type SnapshotSettings struct {
	Paths   []string        `json:"paths"`
	Method  snapshot.Method `json:"method"`
	Into    string          `json:"into"`
	Timeout time.Duration   `json:"timeout"`
}

// Hook is one hook of the plan.
type Hook struct {
	Kind          string        `json:"kind"`
	Command       []string      `json:"command"`
	IgnoreFailure bool          `json:"ignore_failure,omitempty"`
	Timeout       time.Duration `json:"timeout"`
}

// NewPlan freezes the settings of st (with cfg's) for one invocation.
func NewPlan(cfg *hcl.Config, st *hcl.Stack, invocation string) *Plan {
	s := Settings{
		Unit: st.Unit, ProjectLabel: st.ProjectLabel, RestorePolicy: st.RestorePolicy,
		StopTimeout: st.StopTimeout, StartTimeout: st.StartTimeout, WaitTimeout: st.WaitTimeout,
		Jobs: st.Jobs, Duplicati: cfg.Duplicati, LogDir: cfg.LogDir, MetricsFile: cfg.MetricsFile,
		Notify: st.Notify, Healthcheck: st.Healthcheck,
	}
	if st.OnDemand != nil {
		s.Socket, s.Service = st.OnDemand.Socket, st.OnDemand.Service
	}
	if sn := st.Snapshot; sn != nil {
		s.Snapshot = &SnapshotSettings{Paths: sn.Paths, Method: snapshot.Method(sn.Method), Into: sn.Into, Timeout: sn.Timeout}
	}
	for _, h := range st.Hooks {
		s.Hooks = append(s.Hooks, Hook{Kind: h.Kind, Command: h.Command, IgnoreFailure: h.IgnoreFailure, Timeout: h.Timeout})
	}
	p := &Plan{Stack: st.Name, InvocationID: invocation, Gate: time.Now(), Settings: s, Sources: map[string]string{}}
	for _, f := range []string{st.File, cfg.File} {
		if f != "" {
			p.Sources[f] = digest(f)
		}
	}
	return p
}

// HooksOf returns the plan's hooks of one kind, in file order.
func (p *Plan) HooksOf(kind string) []Hook {
	var out []Hook
	for _, h := range p.Settings.Hooks {
		if h.Kind == kind {
			out = append(out, h)
		}
	}
	return out
}

// SnapshotMode reports whether this run freezes the stack's data and
// starts the stack again before the jobs.
func (p *Plan) SnapshotMode() bool { return p.Settings.Snapshot != nil }

// Ran reports whether the hooks of kind already ran in this run.
func (p *Plan) Ran(kind string) bool { return slices.Contains(p.HooksRun, kind) }

// Units returns the stack unit, its socket and the socket's service (those
// that are configured), the units the hold stops.
func (p *Plan) Units() []string {
	u := []string{p.Settings.Unit}
	if p.Settings.Socket != "" {
		u = append(u, p.Settings.Socket)
		if p.Settings.Service != "" {
			u = append(u, p.Settings.Service)
		}
	}
	return u
}

// Changed lists the source files whose content differs from the gate's.
func (p *Plan) Changed() []string {
	var out []string
	for f, d := range p.Sources {
		if digest(f) != d {
			out = append(out, f)
		}
	}
	return out
}

// LeftDown reports whether the plan says the stack is held down and was
// never restored.
func (p *Plan) LeftDown() bool { return p != nil && p.Held && !p.Restored && !p.Finished }

// Fail records a failed step in words.
func (p *Plan) Fail(what string) { p.Failures = append(p.Failures, what) }

// Reason is the first failure in words, "" when none.
func (p *Plan) Reason() string {
	if len(p.Failures) == 0 {
		return ""
	}
	return p.Failures[0]
}

func digest(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func planPath(stateDir, stack string) string { return filepath.Join(stateDir, "plan", stack+".json") }

// Save writes the plan atomically and durably.
func (p *Plan) Save(stateDir string) error { return writeJSON(planPath(stateDir, p.Stack), p) }

// LoadPlan returns the stack's last plan, or nil when there is none. A plan
// that cannot be read or does not belong to the stack is moved aside
// (<name>.corrupt-<time>) and reported in the error, with a nil plan: a
// damaged state file must never wedge a stack.
func LoadPlan(stateDir, stack string) (*Plan, error) {
	path := planPath(stateDir, stack)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil || p.Stack != stack || p.InvocationID == "" {
		why := "it names another stack or no invocation"
		if err != nil {
			why = err.Error()
		}
		return nil, moveAside(path, why)
	}
	return &p, nil
}

// moveAside renames a damaged state file out of the way and says so.
func moveAside(path, why string) error {
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("%s is damaged (%s) and could not be moved aside: %w", path, why, err)
	}
	return fmt.Errorf("%w: %s is damaged (%s); moved it to %s and went on from what the manager reports", ErrDamagedState, path, why, aside)
}

// ErrDamagedState marks a state file that was moved aside.
var ErrDamagedState = errors.New("damaged state file")

// Unfinished returns the plans under stateDir whose run never finished,
// sorted by stack. Damaged plans are moved aside and reported in the error.
func Unfinished(stateDir string) ([]*Plan, error) {
	entries, err := os.ReadDir(filepath.Join(stateDir, "plan"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Plan
	var errs []error
	for _, e := range entries {
		stack, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		p, err := LoadPlan(stateDir, stack)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p != nil && !p.Finished {
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}
