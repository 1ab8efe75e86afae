package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// stackStatus is one row of `status --stacks`.
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
}

// live is what the manager says about one stack's units now.
type live struct {
	backup, hold string // ActiveState of backup@S.service and backup-hold@S.service
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
	ps, err := m.Show(ctx, units, "ActiveState", "NextElapseUSecRealtime")
	if err != nil {
		return nil, err
	}
	out := make(map[string]live, len(stacks))
	for i, st := range stacks {
		l := live{backup: ps[3*i]["ActiveState"], hold: ps[3*i+1]["ActiveState"]}
		if st.Schedule != "" {
			l.next = ps[3*i+2]["NextElapseUSecRealtime"]
		}
		out[st.Name] = l
	}
	return out, nil
}

func (a *App) collectStacks(ctx context.Context, set *hcl.Set) []stackStatus {
	stateDir, _ := a.stateDir()
	states, lerr := liveStates(ctx, a.Manager, set.Stacks)
	down := a.leftDown(ctx)
	var rows []stackStatus
	for _, st := range set.Stacks {
		r := stackStatus{Stack: st.Name, Now: "idle", Schedule: st.Schedule}
		l := states[st.Name]
		switch {
		case lerr != nil:
			r.Now = "unknown (no user manager reachable)"
		case systemd.Running(l.backup):
			r.Now = "running"
		}
		if systemd.Up(l.hold) {
			r.Held = true
			if r.Now == "idle" {
				r.Now = "held"
			}
		}
		r.NextRun = l.next
		if p := down[st.Name]; p != nil {
			r.Now, r.LeftDown = leftDownWords(p), true
		}
		if h, err := orchestrate.LoadHistory(stateDir, st.Name); err == nil && h != nil {
			r.LastResult, r.Reason, r.Unknown = h.Outcome(), h.Reason, h.Unknown
			fin := h.Finished
			r.LastRun = &fin
			if !h.LastSuccess.IsZero() {
				ls := h.LastSuccess
				r.LastSuccess = &ls
			}
			r.Duration, r.Downtime, r.Failures = h.Duration().Seconds(), h.Downtime, h.Failures
		}
		rows = append(rows, r)
	}
	return rows
}

func stacksStatus(ctx context.Context, app *App, set *hcl.Set, asJSON bool) error {
	rows := app.collectStacks(ctx, set)
	if asJSON {
		if rows == nil {
			rows = []stackStatus{}
		}
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STACK\tNOW\tLAST RESULT\tWHEN\tDURATION\tDOWNTIME\tNEXT RUN")
	for _, r := range rows {
		when, dur, down := "never", "-", "-"
		if r.LastRun != nil {
			when = r.LastRun.Format(time.DateTime)
			dur = fmt.Sprintf("%.1fs", r.Duration)
			down = fmt.Sprintf("%.1fs", r.Downtime)
		}
		res := orDash(r.LastResult)
		switch {
		case r.Reason != "":
			res += ": " + shortReason(r.Reason)
		case len(r.Failures) > 0:
			res += " (" + strings.Join(r.Failures, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Stack, r.Now, res, when, dur, down, orDash(r.NextRun))
	}
	return tw.Flush()
}
