// Command timeline prints what happened during `make demo`: for each stack, when systemd
// stopped it, when its Duplicati job ran (from the simulator's /sim/events), when it was
// restored, its downtime and job time, and whether each stack was down only during its
// own job. It exits 1 when a backup failed, a timestamp is missing or the answer is no.
//
//	timeline --sim http://127.0.0.1:PORT --stack alpha=1 --stack beta=2 ...
//
// It talks to the user manager with `systemctl --user` (XDG_RUNTIME_DIR must point at it).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

type simEvent struct {
	TaskID    int64
	BackupID  string
	Operation string
	Queued    time.Time
	Started   time.Time
	Finished  time.Time
	Result    string
}

type stack struct {
	name, backupID string

	backupStart, backupEnd time.Time // backup@S left inactive / entered inactive again
	backupResult           string
	stopBegin, stopped     time.Time // S-stack.service left active / entered inactive
	runExit                time.Time // ExecStart= (backup-stack run) exited
	restoreBegin           time.Time // S-stack.service left inactive again (restore started it)
	restored               time.Time // S-stack.service active again
	jobQueued, jobStart    time.Time
	jobEnd                 time.Time
	jobResult              string
}

type stackFlags []string

func (s *stackFlags) String() string     { return strings.Join(*s, ",") }
func (s *stackFlags) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	simURL := flag.String("sim", "", "base URL of duplicati-sim serve")
	var specs stackFlags
	flag.Var(&specs, "stack", "NAME=BACKUP_ID, repeatable, in backup order")
	flag.Parse()
	if *simURL == "" || len(specs) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*simURL, specs, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "timeline:", err)
		os.Exit(1)
	}
}

func run(simURL string, specs []string, w io.Writer) error {
	events, err := fetchEvents(simURL)
	if err != nil {
		return err
	}
	var stacks []*stack
	for _, spec := range specs {
		name, id, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("--stack %q: want NAME=BACKUP_ID", spec)
		}
		st := &stack{name: name, backupID: id}
		if err := st.load(events); err != nil {
			return err
		}
		stacks = append(stacks, st)
	}
	return report(w, stacks)
}

func fetchEvents(base string) ([]simEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(base, "/")+"/sim/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /sim/events: %s", resp.Status)
	}
	var ev []simEvent
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		return nil, fmt.Errorf("GET /sim/events: %w", err)
	}
	return ev, nil
}

// show returns the named properties of a unit, timestamps in UTC with microseconds.
func show(unit string, props ...string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", "--user", "show", "--timestamp=us+utc",
		"-p", strings.Join(props, ","), unit).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("systemctl --user show %s: %v: %s", unit, err, strings.TrimSpace(string(out)))
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// parseTS parses "Wed 2026-11-25 10:00:00.123456 UTC".
func parseTS(unit, prop, v string) (time.Time, error) {
	if v == "" || v == "n/a" {
		return time.Time{}, fmt.Errorf("%s has no %s (did it run?)", unit, prop)
	}
	t, err := time.Parse("Mon 2006-01-02 15:04:05.000000 MST", v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %s=%q: %v", unit, prop, v, err)
	}
	return t, nil
}

func (st *stack) load(events []simEvent) error {
	bu := "backup@" + st.name + ".service"
	p, err := show(bu, "InactiveExitTimestamp", "InactiveEnterTimestamp", "ExecMainExitTimestamp", "Result")
	if err != nil {
		return err
	}
	if st.runExit, err = parseTS(bu, "ExecMainExitTimestamp", p["ExecMainExitTimestamp"]); err != nil {
		return err
	}
	if st.backupStart, err = parseTS(bu, "InactiveExitTimestamp", p["InactiveExitTimestamp"]); err != nil {
		return err
	}
	if st.backupEnd, err = parseTS(bu, "InactiveEnterTimestamp", p["InactiveEnterTimestamp"]); err != nil {
		return err
	}
	st.backupResult = p["Result"]
	su := st.name + "-stack.service"
	p, err = show(su, "ActiveExitTimestamp", "InactiveEnterTimestamp", "InactiveExitTimestamp", "ActiveEnterTimestamp", "ActiveState")
	if err != nil {
		return err
	}
	if st.stopBegin, err = parseTS(su, "ActiveExitTimestamp", p["ActiveExitTimestamp"]); err != nil {
		return err
	}
	if st.stopped, err = parseTS(su, "InactiveEnterTimestamp", p["InactiveEnterTimestamp"]); err != nil {
		return err
	}
	if st.restoreBegin, err = parseTS(su, "InactiveExitTimestamp", p["InactiveExitTimestamp"]); err != nil {
		return err
	}
	if st.restored, err = parseTS(su, "ActiveEnterTimestamp", p["ActiveEnterTimestamp"]); err != nil {
		return err
	}
	if p["ActiveState"] != "active" || !st.restored.After(st.stopBegin) {
		return fmt.Errorf("%s was not restored (ActiveState=%s)", su, p["ActiveState"])
	}
	for _, ev := range events {
		if ev.BackupID != st.backupID || ev.Operation != "Backup" {
			continue
		}
		st.jobQueued, st.jobStart, st.jobEnd, st.jobResult = ev.Queued, ev.Started, ev.Finished, ev.Result
	}
	if st.jobStart.IsZero() || st.jobEnd.IsZero() {
		return fmt.Errorf("the simulator has no finished backup %s for stack %s", st.backupID, st.name)
	}
	return nil
}

type event struct {
	at    time.Time
	stack string
	what  string
}

func report(w io.Writer, stacks []*stack) error {
	var evs []event
	t0 := stacks[0].backupStart
	for _, st := range stacks {
		if st.backupStart.Before(t0) {
			t0 = st.backupStart
		}
		s := st.name
		evs = append(evs,
			event{st.backupStart, s, "backup@" + s + " started: gate (Duplicati idle? backup slot?)"},
			event{st.stopBegin, s, s + "-stack stopping (backup-hold@" + s + " started, Conflicts=)"},
			event{st.stopped, s, s + "-stack stopped"},
			event{st.jobStart, s, fmt.Sprintf("Duplicati job %s (%s) started", st.backupID, s)},
			event{st.jobEnd, s, fmt.Sprintf("Duplicati job %s finished: %s", st.backupID, st.jobResult)},
			event{st.runExit, s, "backup-stack run " + s + " exited (jobs done)"},
			event{st.restoreBegin, s, s + "-stack starting (restore in ExecStopPost)"},
			event{st.restored, s, s + "-stack running again"},
			event{st.backupEnd, s, "backup@" + s + " finished: " + st.backupResult},
		)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	sec := func(t time.Time) string { return fmt.Sprintf("%7.3f", t.Sub(t0).Seconds()) }
	dur := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

	fmt.Fprintf(w, "Timeline (t = seconds since the first backup unit started, %s UTC)\n", t0.UTC().Format("15:04:05.000"))
	fmt.Fprintf(w, "  %7s  %-6s  %s\n", "t", "stack", "event")
	for _, e := range evs {
		fmt.Fprintf(w, "  %s  %-6s  %s\n", sec(e.at), e.stack, e.what)
	}
	fmt.Fprintln(w)
	span := func(a, b time.Time) string {
		return fmt.Sprintf("%6.2f .. %6.2f", a.Sub(t0).Seconds(), b.Sub(t0).Seconds())
	}
	fmt.Fprintf(w, "  %-6s  %-16s  %-16s  %8s  %8s  %s\n", "stack", "down (t)", "job (t)", "downtime", "job time", "unit / job result")
	var problems []string
	for _, st := range stacks {
		fmt.Fprintf(w, "  %-6s  %-16s  %-16s  %8s  %8s  %s / %s\n", st.name,
			span(st.stopBegin, st.restored), span(st.jobStart, st.jobEnd),
			dur(st.restored.Sub(st.stopBegin)), dur(st.jobEnd.Sub(st.jobStart)), st.backupResult, st.jobResult)
		if st.backupResult != "success" {
			problems = append(problems, fmt.Sprintf("backup@%s.service Result=%s", st.name, st.backupResult))
		}
		if st.jobResult != "Success" {
			problems = append(problems, fmt.Sprintf("job of %s ended %q", st.name, st.jobResult))
		}
	}
	// Down only during its own job: its job lies inside its downtime, and no other stack's
	// job or downtime overlaps it.
	only := true
	for _, a := range stacks {
		if a.jobStart.Before(a.stopped) || a.jobEnd.After(a.restored) {
			only = false
			problems = append(problems, fmt.Sprintf("%s: its job did not run while it was down", a.name))
		}
		for _, b := range stacks {
			if a == b {
				continue
			}
			if overlaps(a.stopBegin, a.restored, b.jobStart, b.jobEnd) {
				only = false
				problems = append(problems, fmt.Sprintf("%s was down during %s's job", a.name, b.name))
			}
			if a.name < b.name && overlaps(a.stopBegin, a.restored, b.stopBegin, b.restored) {
				only = false
				problems = append(problems, fmt.Sprintf("%s and %s were down at the same time", a.name, b.name))
			}
		}
	}
	fmt.Fprintln(w)
	answer := "yes"
	if !only {
		answer = "no"
	}
	fmt.Fprintf(w, "each stack was down only during its own job: %s\n", answer)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func overlaps(a0, a1, b0, b1 time.Time) bool { return a0.Before(b1) && b0.Before(a1) }
