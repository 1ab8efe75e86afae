package e2e

// Helpers of scenario_plan_test.go ("a stack is never left down and never backed up live":
// the plan frozen at the gate). Every identifier here starts with "plan" so that it cannot
// clash with helpers written for the other scenarios.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Bounds of the plan scenarios: every wait below uses one of them.
const (
	planBackupTimeout = 90 * time.Second // one `systemctl --user start backup@<stack>`
	planEventTimeout  = 45 * time.Second // the sim shows a job Started / Finished
	planOtherTimeout  = 45 * time.Second // the backup of the other stack (slot check)
	planOtherMaxTook  = 20 * time.Second // ... which must not have waited for the slot
)

// planRig is one test's world: the stack under test S (a 2-container compose stack, sim
// backup ID 1 named <S>-job) and another stack O (its unit is a trivial oneshot, kept
// inactive; sim backup ID 2, 1 s) whose backup shows whether the slot is free. REST route.
type planRig struct {
	t         *testing.T
	e         *env
	s         *sim
	st        *stack
	other     string // name of stack O
	stackFile string // S's stack file
	stackHCL  string // S's stack file as written by newPlanRig
	cfgHCL    string // config.hcl as written by newPlanRig
	job       string // sim backup name of S
}

// newPlanRig starts a manager, the simulator (S's job of jobDur, O's of 1 s), config.hcl
// (REST route), the compose stack S (extra HCL goes inside S's stack block) and stack O,
// reloads, and anchors both backup units (an inactive unit nothing refers to may be unloaded,
// and `systemctl show` then answers Result=success whatever happened). With up, S's unit is
// started and its two containers run.
func newPlanRig(t *testing.T, base string, jobDur time.Duration, extra string, up bool) *planRig {
	t.Helper()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	binary(t, "duplicati-sim")
	e := newEnv(t)
	r := &planRig{t: t, e: e}
	name := e.moreStackName(base)
	r.other = e.moreStackName("zo" + base)
	r.job = name + "-job"
	r.s = e.startSim(fmt.Sprintf("1=%s:%s:Success", r.job, jobDur), fmt.Sprintf("2=%s-job:1s:Success", r.other))
	r.cfgHCL = restConfig(r.s)
	e.writeConfig(r.cfgHCL)
	r.st = e.composeStack(name)
	e.writeUserUnit(r.other+"-stack.service", "[Unit]\nDescription=e2e: plain unit of stack "+r.other+
		"\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
	r.stackHCL = fmt.Sprintf(`stack %q {
  jobs          = [%q]
  stop_timeout  = "30s"
  start_timeout = "60s"
  wait_timeout  = "2m"
%s}
`, name, r.job, extra)
	r.stackFile = filepath.Join(e.configDir(), "stacks", name+".hcl")
	e.writeStack(name, r.stackHCL)
	e.writeStack(r.other, fmt.Sprintf("stack %q {\n  jobs = [%q]\n}\n", r.other, r.other+"-job"))
	anchor := "plan-anchor-" + e.id + ".service"
	// The stack unit too: once a reload took the hold's drop-in (its Conflicts=) away, nothing
	// else refers to the stopped stack unit, and its timestamps would go with it.
	e.writeUserUnit(anchor, fmt.Sprintf("[Unit]\nDescription=e2e: keeps the backup and stack units loaded\nAfter=%s %s %s\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
		r.backupUnit(), "backup@"+r.other+".service", r.st.Unit))
	e.daemonReload()
	for _, u := range []string{r.backupUnit(), "backup@" + r.other + ".service", r.holdUnit()} {
		if p := e.show(u, "LoadState", "DropInPaths"); p["LoadState"] != "loaded" || !strings.Contains(p["DropInPaths"], "50-stack.conf") {
			out, _ := e.systemctl("cat", u)
			t.Fatalf("%s: %v, want loaded with its generated drop-in; cat: %s; manager.log: %s", u, p, oneLine(out), e.tail("manager.log"))
		}
	}
	if out, err := e.systemctl("start", anchor); err != nil {
		t.Fatalf("start %s: %v: %s", anchor, err, oneLine(out))
	}
	if up {
		r.startStack()
	}
	return r
}

func (r *planRig) backupUnit() string { return "backup@" + r.st.Name + ".service" }
func (r *planRig) holdUnit() string   { return "backup-hold@" + r.st.Name + ".service" }

// phase runs f as a subtest that shares the rig (the env's t is the subtest's meanwhile, so
// that its Fatal ends the subtest only).
func (r *planRig) phase(name string, f func(t *testing.T)) bool {
	return r.t.Run(name, func(t *testing.T) {
		pt, pe := r.t, r.e.t
		r.t, r.e.t = t, t
		defer func() { r.t, r.e.t = pt, pe }()
		f(t)
	})
}

func (r *planRig) state(unit string) string {
	r.t.Helper()
	return r.e.show(unit, "ActiveState")["ActiveState"]
}

// startStack starts S's unit and checks its two containers run.
func (r *planRig) startStack() {
	r.t.Helper()
	if out, err := r.e.systemctl("start", r.st.Unit); err != nil {
		r.t.Fatalf("start %s: %v: %s; stack log: %s", r.st.Unit, err, oneLine(out), r.e.tail("stack-"+r.st.Name+".log"))
	}
	if c := r.e.runningContainers(r.st.Project); len(c) != 2 {
		r.t.Fatalf("after starting %s, running containers of %s = %v, want 2", r.st.Unit, r.st.Project, c)
	}
}

// fail is Fatalf with the end of units.log.
func (r *planRig) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s; units.log: %s", fmt.Sprintf(format, args...), oneLine(lastBytes([]byte(r.e.unitLog()), 3000)))
}

// planBg is a `systemctl --user start` running in the background, as a person types it.
type planBg struct {
	unit       string
	done       chan struct{}
	out        string
	err        error
	code       int // exit code of systemctl; -1 when it did not exit by itself
	start, end time.Time
}

func (r *planRig) startBackupOf(unit string) *planBg {
	b := &planBg{unit: unit, done: make(chan struct{}), start: time.Now(), code: -1}
	go func() {
		defer close(b.done)
		ctx, cancel := context.WithTimeout(context.Background(), planBackupTimeout)
		defer cancel()
		b.out, b.err = r.e.systemctlCtx(ctx, "start", unit)
		b.end = time.Now()
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
		case b.err == nil:
			b.code = 0
		case errors.As(b.err, &ee):
			b.code = ee.ExitCode()
		}
	}()
	return b
}

func (r *planRig) startBackup() *planBg { return r.startBackupOf(r.backupUnit()) }

// wait waits for the background start to return (bounded).
func (b *planBg) wait(t *testing.T) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(planBackupTimeout + 10*time.Second):
		t.Fatalf("systemctl --user start %s did not return within %s", b.unit, planBackupTimeout+10*time.Second)
	}
}

func (b *planBg) String() string {
	return fmt.Sprintf("exit %d after %s, printed %q", b.code, b.end.Sub(b.start).Round(time.Millisecond), strings.TrimSpace(b.out))
}

func (r *planRig) maxTask() int64 { return r.s.maxTask() }

// waitJob waits for the first Backup event of backup ID 1 with a task ID above after that
// satisfies cond, and returns it.
func (r *planRig) waitJob(what string, after int64, cond func(simEvent) bool) simEvent {
	r.t.Helper()
	var got simEvent
	r.e.waitFor(what, planEventTimeout, 50*time.Millisecond, func() bool {
		for _, ev := range r.s.events() {
			if ev.TaskID > after && ev.BackupID == "1" && ev.Operation == "Backup" && cond(ev) {
				got = ev
				return true
			}
		}
		return false
	})
	return got
}

func (r *planRig) waitStarted(after int64) simEvent {
	r.t.Helper()
	return r.waitJob("S's job to start in the sim", after, func(ev simEvent) bool { return !ev.Started.IsZero() })
}

func (r *planRig) waitFinished(after int64) simEvent {
	r.t.Helper()
	return r.waitJob("S's job to finish in the sim", after, func(ev simEvent) bool { return !ev.Finished.IsZero() && ev.Result != "" })
}

// jobsSince returns every Backup task of backup ID 1 with a task ID above after.
func (r *planRig) jobsSince(after int64) []simEvent {
	var out []simEvent
	for _, ev := range r.s.events() {
		if ev.TaskID > after && ev.BackupID == "1" && ev.Operation == "Backup" {
			out = append(out, ev)
		}
	}
	return out
}

// planState is the part of a plan (plan/<stack>.json) the scenarios read.
type planState struct {
	Stack        string            `json:"stack"`
	InvocationID string            `json:"invocation_id"`
	Sources      map[string]string `json:"sources"`
	Settings     struct {
		Unit          string `json:"unit"`
		RestorePolicy string `json:"restore_policy"`
	} `json:"settings"`
	UnitActive bool      `json:"unit_active"`
	Containers []string  `json:"containers"`
	Held       bool      `json:"held"`
	HeldAt     time.Time `json:"held_at"`
	Stopped    bool      `json:"stopped"`
	Restored   bool      `json:"restored"`
	RestoredAt time.Time `json:"restored_at"`
	Failures   []string  `json:"failures"`
	Notified   bool      `json:"notified"`
	Finished   bool      `json:"finished"`
}

func (e *env) planStateDir() string { return filepath.Join(e.home, ".local", "state", "backup-stack") }

// planRead reads the plan of stack; nil (and the error in words) when it is missing or not
// a plan.
func (e *env) planRead(stack string) (*planState, string) {
	b, err := os.ReadFile(filepath.Join(e.planStateDir(), "plan", stack+".json"))
	if err != nil {
		return nil, err.Error()
	}
	var p planState
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Sprintf("%v: %q", err, lastBytes(b, 300))
	}
	return &p, ""
}

// planHistory reads the run history of stack; nil when missing or unreadable (junk written
// by a test must not fail a wait).
func (e *env) planHistory(stack string) *moreHistoryEntry {
	b, err := os.ReadFile(filepath.Join(e.planStateDir(), "history", stack+".json"))
	if err != nil {
		return nil
	}
	var h moreHistoryEntry
	if json.Unmarshal(b, &h) != nil {
		return nil
	}
	return &h
}

// waitDone waits until backup@S has settled (no job, neither activating nor deactivating)
// and its run history records a run that finished after since. A start whose connection
// was dropped (daemon-reexec) returns while the backup still runs.
func (r *planRig) waitDone(since time.Time) {
	r.t.Helper()
	var last string
	var settledSince time.Time
	deadline := time.Now().Add(planBackupTimeout)
	for {
		p := r.e.show(r.backupUnit(), "ActiveState", "Job")
		h := r.e.planHistory(r.st.Name)
		settled := p["ActiveState"] != "activating" && p["ActiveState"] != "deactivating" && (p["Job"] == "" || p["Job"] == "0")
		if settled && h != nil && !h.Finished.Before(since) {
			return
		}
		last = fmt.Sprintf("%v, history %+v", p, h)
		switch {
		case !settled || time.Since(since) < 2*time.Second:
			settledSince = time.Time{}
		case settledSince.IsZero():
			settledSince = time.Now()
		case time.Since(settledSince) > 15*time.Second:
			// Settled for long without a history of this run: finish never wrote it.
			deadline = time.Now()
		}
		if time.Now().After(deadline) {
			out, _ := r.e.systemctlTimeout(30*time.Second, "show", "-p", "Result,ExecMainStatus,ExecStartPre,ExecStart,ExecStopPost", r.backupUnit())
			r.fail("backup of %s not done after %s: %s; %s", r.st.Name, planBackupTimeout, last, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// expectAsAtGate checks, after a backup that began at since, the truth from the manager,
// podman and the state files: the stack unit is as it was (wantUp) with exactly the
// containers that ran before (before), backup@S's run ended Result=success with exit status
// 0, the hold unit is inactive, the plan is finished (restored when held) with no failure,
// the history says success, and the slot file is gone. Every miss is an Errorf.
func (r *planRig) expectAsAtGate(when string, wantUp bool, before []string, since time.Time) {
	t := r.t
	t.Helper()
	want := map[bool]string{true: "active", false: "inactive"}[wantUp]
	if st := r.state(r.st.Unit); st != want {
		t.Errorf("%s: %s ActiveState = %q, want %s (as at the gate)", when, r.st.Unit, st, want)
	}
	if c := r.e.runningContainers(r.st.Project); !slices.Equal(c, before) {
		ps, _ := r.e.podman("ps", "-a", "--filter", "label=io.podman.compose.project="+r.st.Project, "--format", "{{.Names}} {{.State}}")
		t.Errorf("%s: running containers of %s = %v, want %v (as at the gate); podman ps -a: %s", when, r.st.Project, c, before, oneLine(ps))
	}
	p := r.e.show(r.backupUnit(), "LoadState", "ActiveState", "InvocationID", "Result", "ExecMainCode", "ExecMainStatus")
	plan, why := r.e.planRead(r.st.Name)
	if plan == nil {
		t.Errorf("%s: no readable plan of %s: %s", when, r.st.Name, why)
		plan = &planState{}
	}
	if p["LoadState"] != "loaded" || p["ActiveState"] != "inactive" || p["Result"] != "success" ||
		p["ExecMainCode"] != "1" || p["ExecMainStatus"] != "0" || p["InvocationID"] == "" {
		t.Errorf("%s: %s %v, want a finished run with Result=success ExecMainCode=1 ExecMainStatus=0", when, r.backupUnit(), p)
	}
	if p["InvocationID"] != plan.InvocationID {
		t.Errorf("%s: %s InvocationID %s, the plan's is %s", when, r.backupUnit(), p["InvocationID"], plan.InvocationID)
	}
	if st := r.state(r.holdUnit()); st != "inactive" {
		t.Errorf("%s: %s ActiveState = %q, want inactive", when, r.holdUnit(), st)
	}
	if !plan.Finished || !plan.Held || !plan.Restored || len(plan.Failures) > 0 || plan.Settings.Unit != r.st.Unit {
		t.Errorf("%s: plan %+v, want finished, held, restored, no failures, unit %s", when, *plan, r.st.Unit)
	}
	if h := r.e.planHistory(r.st.Name); h == nil || h.Finished.Before(since) || h.Result != "success" || len(h.Failures) > 0 || h.InvocationID != p["InvocationID"] {
		t.Errorf("%s: run history %+v, want a successful run of invocation %s after %s", when, h, p["InvocationID"], since.Format("15:04:05.000"))
	}
	if _, err := os.Stat(filepath.Join(r.e.run, "backup-stack", "slot")); !errors.Is(err, os.ErrNotExist) {
		b, _ := os.ReadFile(filepath.Join(r.e.run, "backup-stack", "slot"))
		t.Errorf("%s: the slot file is still there (%v): %s", when, err, oneLine(string(b)))
	}
}

// expectSlotFree starts a backup of the other stack right away: it must not wait for the
// slot at its gate, and must end with success and its job run in the sim. It returns how
// long that start took.
func (r *planRig) expectSlotFree(when string) time.Duration {
	t := r.t
	t.Helper()
	mark := len(r.e.unitLog())
	since := time.Now()
	out, err := r.e.systemctlTimeout(planOtherTimeout, "start", "backup@"+r.other+".service")
	took := time.Since(since)
	logs := r.e.unitLog()[mark:]
	if err != nil {
		t.Errorf("%s: the backup of the other stack %s failed after %s: %v: %s; units.log: %s", when, r.other, took.Round(time.Millisecond), err, oneLine(out), oneLine(lastBytes([]byte(logs), 2000)))
	}
	if strings.Contains(logs, "gate "+r.other+": waiting for the backup slot") {
		t.Errorf("%s: the backup of %s waited for the slot: %s", when, r.other, oneLine(lastBytes([]byte(logs), 2000)))
	}
	if took > planOtherMaxTook {
		t.Errorf("%s: the backup of %s (a 1 s job, nothing to stop) took %s", when, r.other, took.Round(time.Millisecond))
	}
	ok := false
	for _, ev := range r.s.events() {
		if ev.BackupID == "2" && ev.Operation == "Backup" && !ev.Started.Before(since) && ev.Result == "Success" {
			ok = true
		}
	}
	if !ok {
		t.Errorf("%s: no successful job of %s in the sim since %s: %+v", when, r.other, since.Format("15:04:05.000"), r.s.events())
	}
	t.Logf("%s: backup of the other stack %s took %s (no wait for the slot)", when, r.other, took.Round(time.Millisecond))
	return took
}

// figures logs downtime (S unit left active → active again, by its own timestamps), the
// job's time in the sim, and from the edit to the end of the start and of the restore.
func (r *planRig) figures(what string, b *planBg, job simEvent, editAt time.Time, wasUp bool) {
	r.t.Helper()
	s := fmt.Sprintf("%s: job %s (sim Started→Finished); systemctl start took %s; edit → start returned %s",
		what, basicMs(job.Finished.Sub(job.Started)), basicMs(b.end.Sub(b.start)), basicMs(b.end.Sub(editAt)))
	if wasUp {
		d := r.e.moreStackDown(r.st.Unit)
		s += fmt.Sprintf("; downtime %s; edit → stack active again %s; job end → stack active %s",
			basicMs(d.To.Sub(d.From)), basicMs(d.To.Sub(editAt)), basicMs(d.To.Sub(job.Finished)))
		if job.Started.Before(d.From) || job.Finished.After(d.To) {
			r.t.Errorf("%s: the job %s ran outside the stack's down interval %s: a backup of a live stack", what, moreInterval{job.Started, job.Finished}, d)
		}
	}
	r.t.Logf("figures %s", s)
}

// expectDownNow: while the job runs, S's unit is inactive, no container of it runs, the hold
// is active.
func (r *planRig) expectDownNow(when string) {
	r.t.Helper()
	if st := r.state(r.st.Unit); st != "inactive" {
		r.fail("%s: %s ActiveState = %q, want inactive", when, r.st.Unit, st)
	}
	if c := r.e.runningContainers(r.st.Project); len(c) != 0 {
		r.fail("%s: containers of %s still run: %v", when, r.st.Project, c)
	}
	if st := r.state(r.holdUnit()); st != "active" {
		r.fail("%s: %s ActiveState = %q, want active", when, r.holdUnit(), st)
	}
}

// expectStillRunning: the job of this run has not finished yet (else the edit came too late
// and the scenario proves nothing).
func (r *planRig) expectStillRunning(when string, after int64) {
	r.t.Helper()
	for _, ev := range r.jobsSince(after) {
		if !ev.Finished.IsZero() {
			r.t.Fatalf("%s: the job had already finished at %s: the edit came too late, the scenario proves nothing", when, ev.Finished.Format("15:04:05.000"))
		}
	}
}

// dropIns returns DropInPaths of a unit.
func (r *planRig) dropIns(unit string) string {
	r.t.Helper()
	return r.e.show(unit, "DropInPaths")["DropInPaths"]
}

// corrupt lists the files moved aside next to path (<path>.corrupt-<time>).
func planCorrupt(path string) []string {
	m, _ := filepath.Glob(path + ".corrupt-*")
	return m
}

// exitCode of a command error (0 when nil, -1 when not an exit).
func planExitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}
