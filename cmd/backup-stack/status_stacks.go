package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// The states of a stack in the overview (stackStatus.State).
const (
	stateIdle     = "idle"
	stateRunning  = "running"   // backup@S runs and its status text does not start with "waiting"
	stateWaiting  = "waiting"   // backup@S runs and says it waits (slot, idle Duplicati)
	stateHeld     = "held"      // only the hold unit is active: a stop or restore in progress
	stateLeftDown = "left-down" // an interrupted backup left the stack down
	stateUnknown  = "unknown"   // the user manager could not be asked
)

// stackStatus is one row of `list` (and `status --stacks`), and of their --json.
// The fields up to Schedule are the JSON of earlier versions and keep their
// names and meaning; the ones after were added.
type stackStatus struct {
	Stack string `json:"stack"`
	// Now is "running" while backup@<stack> runs, "held" while only the
	// hold unit is active (a stop or restore in progress), else "idle".
	Now  string `json:"now"`
	Held bool   `json:"held"`
	// LeftDown: a backup interrupted by a crash or shutdown left the stack
	// held down, and nothing has restored it yet.
	LeftDown    bool       `json:"left_down,omitempty"`
	LastResult  string     `json:"last_result,omitempty"`
	LastRun     *time.Time `json:"last_run,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	Duration    float64    `json:"duration_seconds,omitempty"`
	Downtime    float64    `json:"downtime_seconds,omitempty"`
	Failures    []string   `json:"failures,omitempty"`
	// Reason says in words why the last run failed (or that its result is unknown).
	Reason string `json:"reason,omitempty"`
	// Unknown are the jobs of the last run whose result Duplicati did not show.
	Unknown  []string `json:"unknown_result_jobs,omitempty"`
	NextRun  string   `json:"next_run,omitempty"`
	Schedule string   `json:"schedule,omitempty"`

	// State is one of the state* constants: Now in a fixed vocabulary, with
	// "waiting" told apart from "running" by the unit's status text.
	State string `json:"state"`
	// StatusText is what the running backup unit last told systemd (sd_notify STATUS=).
	StatusText string `json:"status_text,omitempty"`
	// NextRunAt is NextRun as a time, when systemctl's text could be read.
	NextRunAt *time.Time `json:"next_run_at,omitempty"`
	// LeftDownSince is when the interrupted backup stopped the stack.
	LeftDownSince *time.Time `json:"left_down_since,omitempty"`
	// NoStackFile: the row comes from a left-down plan whose stack file is gone.
	NoStackFile  bool     `json:"no_stack_file,omitempty"`
	Unit         string   `json:"unit,omitempty"`
	ProjectLabel string   `json:"project_label,omitempty"`
	Jobs         []string `json:"jobs,omitempty"`
}

// live is what the manager says about one stack's units now.
type live struct {
	backup, hold string // ActiveState of backup@S.service and backup-hold@S.service
	status       string // StatusText of backup@S.service
	next         string // NextElapseUSecRealtime of backup@S.timer
}

// liveStates asks the manager about every stack's units in one call.
func liveStates(ctx context.Context, m manager.Manager, stacks []*hcl.Stack) (map[string]live, error) {
	if len(stacks) == 0 {
		return nil, nil
	}
	var units []string
	for _, st := range stacks {
		units = append(units, systemd.BackupService(st.Name), systemd.HoldService(st.Name), systemd.BackupTimer(st.Name))
	}
	ps, err := m.Show(ctx, units, "ActiveState", "StatusText", "NextElapseUSecRealtime")
	if err != nil {
		return nil, err
	}
	out := make(map[string]live, len(stacks))
	for i, st := range stacks {
		if 3*i+2 >= len(ps) {
			break // a short answer: the rows without one show idle
		}
		l := live{backup: ps[3*i]["ActiveState"], hold: ps[3*i+1]["ActiveState"], status: ps[3*i]["StatusText"]}
		if st.Schedule != "" {
			l.next = ps[3*i+2]["NextElapseUSecRealtime"]
		}
		out[st.Name] = l
	}
	return out, nil
}

// liveState maps a running backup unit's status text to running or waiting:
// the helper's texts for the gate's waits start with "waiting" (slot, idle
// Duplicati), every other text is work in progress.
func liveState(statusText string) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(statusText)), "waiting") {
		return stateWaiting
	}
	return stateRunning
}

// collectStacks builds the overview's rows: every configured stack, then
// the stacks an interrupted backup left down whose file is gone.
func (a *App) collectStacks(ctx context.Context, set *hcl.Set) []stackStatus {
	stateDir, _ := a.stateDir()
	states, lerr := liveStates(ctx, a.Manager, set.Stacks)
	down := a.leftDown(ctx)
	var rows []stackStatus
	for _, st := range set.Stacks {
		r := stackStatus{Stack: st.Name, Now: "idle", State: stateIdle, Schedule: st.Schedule,
			Unit: st.Unit, ProjectLabel: st.ProjectLabel, Jobs: st.Jobs}
		l := states[st.Name]
		switch {
		case lerr != nil:
			r.Now, r.State = "unknown (no user manager reachable)", stateUnknown
		case systemd.Running(l.backup):
			r.Now, r.State, r.StatusText = "running", liveState(l.status), l.status
		}
		if systemd.Up(l.hold) {
			r.Held = true
			if r.Now == "idle" {
				r.Now, r.State = "held", stateHeld
			}
		}
		r.NextRun = l.next
		if t, ok := parseSystemdTime(l.next); ok {
			r.NextRunAt = &t
		}
		if p := down[st.Name]; p != nil {
			r.markLeftDown(p)
		}
		r.addHistory(stateDir)
		rows = append(rows, r)
	}
	var gone []string
	for name := range down {
		if _, ok := set.Stack(name); !ok {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		p := down[name]
		r := stackStatus{Stack: name, NoStackFile: true, Held: true, Unit: p.Settings.Unit,
			ProjectLabel: p.Settings.ProjectLabel, Jobs: p.Settings.Jobs}
		r.markLeftDown(p)
		r.addHistory(stateDir)
		rows = append(rows, r)
	}
	return rows
}

func (r *stackStatus) markLeftDown(p *orchestrate.Plan) {
	r.Now, r.State, r.LeftDown = leftDownWords(p), stateLeftDown, true
	if !p.HeldAt.IsZero() {
		t := p.HeldAt
		r.LeftDownSince = &t
	}
}

// addHistory fills in the last finished run, if there is one.
func (r *stackStatus) addHistory(stateDir string) {
	h, err := orchestrate.LoadHistory(stateDir, r.Stack)
	if err != nil || h == nil {
		return
	}
	r.LastResult, r.Reason, r.Unknown = h.Outcome(), h.Reason, h.Unknown
	fin := h.Finished
	r.LastRun = &fin
	if !h.LastSuccess.IsZero() {
		ls := h.LastSuccess
		r.LastSuccess = &ls
	}
	r.Duration, r.Downtime, r.Failures = h.Duration().Seconds(), h.Downtime, h.Failures
}

// parseSystemdTime reads a timestamp as `systemctl show` prints it
// ("Thu 2026-12-03 03:30:00 CET"), in the local zone systemctl used too.
func parseSystemdTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "n/a" {
		return time.Time{}, false
	}
	for _, layout := range []string{"Mon 2006-01-02 15:04:05 MST", "Mon 2006-01-02 15:04:05", "2006-01-02 15:04:05 MST"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
