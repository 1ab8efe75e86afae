package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
)

// Units of the test stack "a".
const (
	unitA = "a-stack.service"
	sockA = "a-ondemand.socket"
	svcA  = "a-ondemand.service"
	holdA = "backup-hold@a.service"
	bkA   = "backup@a.service"
)

// runDir and stateDir are where the steps keep their files, from the
// XDG_RUNTIME_DIR and XDG_STATE_HOME that newCLI sets.
func (c *cli) runDir() string   { return filepath.Join(c.dir, "run", "backup-stack") }
func (c *cli) stateDir() string { return filepath.Join(c.dir, "state", "backup-stack") }
func (c *cli) stackFile(name string) string {
	return filepath.Join(c.dir, "config", "backup-stack", "stacks", name+".hcl")
}

// must runs a command and fails the test unless it exits with want.
func (c *cli) must(want int, args ...string) (string, string) {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != want {
		c.t.Fatalf("backup-stack %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

func (c *cli) history(stack string) *orchestrate.History {
	c.t.Helper()
	h, err := orchestrate.LoadHistory(c.stateDir(), stack)
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

func (c *cli) plan(stack string) *orchestrate.Plan {
	c.t.Helper()
	p, err := orchestrate.LoadPlan(c.stateDir(), stack)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cli) changes(want ...string) {
	c.t.Helper()
	if got := c.mgr.Changes(); !reflect.DeepEqual(got, want) {
		c.t.Fatalf("manager changes %q, want %q", got, want)
	}
}

// backupRuns makes the manager say that backup@<stack>.service runs
// invocation inv, as it does while its steps run.
func (c *cli) backupRuns(stack, inv string) {
	c.mgr.SetProp("backup@"+stack+".service", "InvocationID", inv).Set("active", "backup@"+stack+".service")
	c.t.Setenv("INVOCATION_ID", inv)
}

// backupEnded makes the manager say backup@<stack>.service ended with
// result, as backup-notify@ and recover see it.
func (c *cli) backupEnded(stack, result, status string) {
	c.mgr.Set("inactive", "backup@"+stack+".service").
		SetProp("backup@"+stack+".service", "Result", result).SetProp("backup@"+stack+".service", "ExecMainStatus", status)
}

// notifyRuns makes this process a process of a running
// backup-notify@<stack>.service, as the notifier is when the manager starts it.
func (c *cli) notifyRuns(stack string) {
	inv := "notify-inv-" + stack
	c.mgr.SetProp("backup-notify@"+stack+".service", "InvocationID", inv).Set("activating", "backup-notify@"+stack+".service")
	c.t.Setenv("INVOCATION_ID", inv)
}

func (c *cli) slotFree() bool {
	_, err := os.Stat(filepath.Join(c.runDir(), "slot"))
	return errors.Is(err, os.ErrNotExist)
}

// pings records the health pings a stack sends.
type pings struct {
	mu    sync.Mutex
	paths []string
	url   string
}

func newPings(t *testing.T) *pings {
	p := &pings{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		p.mu.Lock()
		p.paths = append(p.paths, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL + "/ping/uuid"
	return p
}

func (p *pings) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

const onDemandA = `
  on_demand {
    socket  = "a-ondemand.socket"
    service = "a-ondemand.service"
  }
`

// hookBlock is a hook that appends "<name> $SERVICE_RESULT" to $HOOKLOG.
func hookBlock(kind, name string, extra string) string {
	return fmt.Sprintf("  hook %q {\n    command = [\"sh\", \"-c\", \"echo %s $SERVICE_RESULT >> \\\"$HOOKLOG\\\"\"]\n%s  }\n", kind, name, extra)
}

// appendNotify is a notify block whose commands append one line per
// notification to out: "$BACKUP_EVENT $BACKUP_RESULT on_failure|on_success".
func appendNotify(out string) string {
	cmd := func(which string) string {
		return fmt.Sprintf(`["sh", "-c", "echo \"$BACKUP_EVENT $BACKUP_RESULT %s $BACKUP_REASON\" >> '%s'"]`, which, out)
	}
	return fmt.Sprintf("  notify {\n    on_failure = %s\n    on_success = %s\n  }\n", cmd("on_failure"), cmd("on_success"))
}

func lines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l != "" {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// A whole backup of stack a, step by step as backup@a.service runs them.
func TestStepsWholeBackup(t *testing.T) {
	sim, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 100 * time.Millisecond})
	hc := newPings(t)
	metricsFile := filepath.Join(t.TempDir(), "backup.prom")
	hookLog := filepath.Join(t.TempDir(), "hooks")
	events := filepath.Join(t.TempDir(), "events")
	t.Setenv("HOOKLOG", hookLog)
	c := newCLI(t, apiConfig(url, "", "")+fmt.Sprintf("metrics_file = %q\n", metricsFile), map[string]string{
		"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n" + onDemandA + fmt.Sprintf("  healthcheck {\n    url = %q\n  }\n", hc.url) +
			hookBlock("pre_stop", "pre_stop", "") + hookBlock("post_backup", "post_backup", "") + hookBlock("pre_start", "pre_start", "") +
			hookBlock("post_start", "post_start", "") + "  hook \"verify\" {\n    command = [\"false\"]\n    ignore_failure = true\n  }\n" +
			appendNotify(events) + "}\n",
	})
	// The stack and its socket run; the hold unit's drop-in conflicts with all three.
	c.mgr.Set("active", unitA, sockA).Set("inactive", svcA).Conflicts(holdA, unitA, sockA, svcA)
	c.pods.set("a", "a-app", "a-db")
	// The containers come back with the stack.
	c.mgr.On("start "+unitA+" "+sockA, func() {
		c.pods.set("a", "a-app", "a-db")
		f, _ := os.OpenFile(hookLog, os.O_APPEND|os.O_WRONLY, 0)
		fmt.Fprintln(f, "restore")
		f.Close()
	})
	c.backupRuns("a", "inv-1")

	c.must(0, "gate", "a")
	p := c.plan("a")
	if p == nil || p.InvocationID != "inv-1" || !p.UnitActive || !p.SocketActive || p.ServiceActive || p.Held ||
		!reflect.DeepEqual(p.Containers, []string{"a-app", "a-db"}) || len(p.Settings.Hooks) != 5 {
		t.Fatalf("plan after gate: %+v", p)
	}
	c.changes()

	// The unit file shows the hook as it was rendered; the plan's runs.
	c.must(0, "hook", "a", "pre_stop", "1", "--", "sh", "-c", `echo pre_stop $SERVICE_RESULT >> "$HOOKLOG"`)
	c.must(0, "hold", "a")
	c.changes("start " + holdA)
	if p := c.plan("a"); !p.Held || p.HeldAt.IsZero() {
		t.Fatalf("plan after hold: %+v", p)
	}
	for _, u := range []string{unitA, sockA, svcA} {
		if s := c.mgr.State(u); s != "inactive" {
			t.Fatalf("%s is %s while held", u, s)
		}
	}

	go func() {
		time.Sleep(30 * time.Millisecond)
		c.pods.set("a")
	}()
	start := time.Now()
	c.must(0, "wait-stopped", "a")
	if time.Since(start) < 30*time.Millisecond {
		t.Error("wait-stopped returned while containers ran")
	}
	if !c.plan("a").Stopped {
		t.Error("plan not marked stopped")
	}

	c.must(0, "run", "a") // no --force: the plan says held and stopped, and the hold is active
	ev := sim.Events()
	if len(ev) != 1 || ev[0].BackupID != "1" || ev[0].Result != "Success" {
		t.Fatalf("Duplicati events %+v", ev)
	}

	t.Setenv("SERVICE_RESULT", "success")
	t.Setenv("EXIT_STATUS", "0")
	finishStart := time.Now()
	c.must(0, "finish", "a")
	c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA+" "+sockA)
	for u, want := range map[string]string{unitA: "active", sockA: "active", svcA: "inactive", holdA: "inactive"} {
		if s := c.mgr.State(u); s != want {
			t.Errorf("%s is %s after finish, want %s", u, s, want)
		}
	}
	// pre_stop ran without SERVICE_RESULT (ExecStartPre=); finish's hooks with it.
	if got, want := lines(t, hookLog), []string{"pre_stop", "post_backup success", "pre_start success", "restore", "post_start success"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hooks ran %q, want %q", got, want)
	}
	p = c.plan("a")
	if !p.Finished || !p.Restored || len(p.Failures) != 0 {
		t.Errorf("plan after finish: %+v", p)
	}

	h := c.history("a")
	if h == nil {
		t.Fatal("no history")
	}
	if h.Result != "success" || h.InvocationID != "inv-1" || h.ExitStatus != "0" || len(h.Failures) != 0 || !h.Succeeded() {
		t.Errorf("history %+v", h)
	}
	if h.Gate.IsZero() || !h.HeldAt.After(h.Gate) || !h.RestoredAt.After(h.HeldAt) || h.Finished.Before(finishStart) {
		t.Errorf("history times: gate %s held %s restored %s finished %s", h.Gate, h.HeldAt, h.RestoredAt, h.Finished)
	}
	if want := h.RestoredAt.Sub(h.HeldAt).Seconds(); h.Downtime != want || h.Downtime <= 0 {
		t.Errorf("downtime %v, want %v", h.Downtime, want)
	}
	if !h.LastSuccess.Equal(h.Finished) {
		t.Errorf("last success %s, finished %s", h.LastSuccess, h.Finished)
	}
	if !c.slotFree() {
		t.Error("slot not freed")
	}
	if got, want := hc.got(), []string{"POST /ping/uuid/start", "POST /ping/uuid"}; !reflect.DeepEqual(got, want) {
		t.Errorf("health pings %q, want %q", got, want)
	}
	m, err := os.ReadFile(metricsFile)
	if err != nil || !strings.Contains(string(m), `backup_stack_last_success{stack="a"} 1`) {
		t.Errorf("metrics file: %v\n%s", err, m)
	}

	// backup-notify@a.service, from the plan of the run that ended.
	c.backupEnded("a", "success", "0")
	c.notifyRuns("a")
	c.must(0, "notify", "a")
	if got := lines(t, events); !reflect.DeepEqual(got, []string{"success success on_success"}) {
		t.Errorf("notifications %q", got)
	}

	// What the commands about every stack say afterwards.
	out, _ := c.must(0, "list")
	if l := strings.Split(out, "\n"); len(l) < 2 || !strings.HasPrefix(l[1], "a ") || !strings.Contains(l[1], " idle ") ||
		!strings.Contains(l[1], " s ago ") || !strings.Contains(l[1], " success ") {
		t.Errorf("list:\n%s", out)
	}
	out, _ = c.must(0, "status", "--stacks", "--json")
	var rows []stackStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("%v\n%s", err, out)
	}
	if rows[0].LastResult != "success" || rows[0].Now != "idle" || rows[0].Held || rows[0].Downtime != h.Downtime ||
		rows[0].LastSuccess == nil || rows[0].Duration <= 0 {
		t.Errorf("status row %+v", rows[0])
	}
	c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA+" "+sockA)
}

// A required hook failed in ExecStopPost=: systemd still says success,
// finish must not; the failure is notified once.
func TestStepsFinishFailsOnAFailedHook(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 50 * time.Millisecond})
	hc := newPings(t)
	events := filepath.Join(t.TempDir(), "events")
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{
		"a": fmt.Sprintf("stack \"a\" {\n  jobs = [\"job-a\"]\n  healthcheck {\n    url = %q\n  }\n", hc.url) +
			"  hook \"verify\" {\n    command = [\"false\"]\n  }\n" + appendNotify(events) + "}\n",
	})
	c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	// An earlier success, whose time must be carried over.
	earlier := time.Now().Add(-24 * time.Hour).Truncate(time.Second).UTC()
	if err := (&orchestrate.History{Stack: "a", Result: "success", Finished: earlier, LastSuccess: earlier}).Save(c.stateDir()); err != nil {
		t.Fatal(err)
	}
	c.backupRuns("a", "inv-2")
	c.must(0, "gate", "a")
	c.must(0, "hold", "a")
	c.must(0, "wait-stopped", "a")
	c.must(0, "run", "a")
	t.Setenv("SERVICE_RESULT", "success")
	t.Setenv("EXIT_STATUS", "0")
	_, errs := c.must(exitcode.Failure, "finish", "a")
	if !strings.Contains(errs, "these steps failed: hook verify: false: failed (exit 1)") {
		t.Errorf("finish stderr:\n%s", errs)
	}
	h := c.history("a")
	if h.Result != "failed" || !reflect.DeepEqual(h.Failures, []string{"hook verify: false: failed (exit 1)"}) || h.Succeeded() ||
		h.Reason != "hook verify: false: failed (exit 1)" {
		t.Errorf("history %+v", h)
	}
	if !h.LastSuccess.Equal(earlier) {
		t.Errorf("last success %s, want the earlier %s", h.LastSuccess, earlier)
	}
	if got := hc.got(); len(got) != 2 || got[1] != "POST /ping/uuid/fail" {
		t.Errorf("pings %q", got)
	}
	c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA)
	if p := c.plan("a"); !p.Finished || p.LeftDown() {
		t.Errorf("plan %+v", p)
	}

	out, _ := c.must(0, "status", "--stacks")
	if !strings.Contains(out, " failed ") || !strings.Contains(out, "hook verify: false") {
		t.Errorf("status --stacks:\n%s", out)
	}
	// The notification goes out as a failure although systemd said
	// success, and only once however often notify runs.
	c.backupEnded("a", "success", "0")
	c.notifyRuns("a")
	c.must(0, "notify", "a")
	_, errs = c.must(0, "notify", "a") // the same notifier run again
	if !strings.Contains(errs, "the failure of this run was reported already") {
		t.Errorf("second notify:\n%s", errs)
	}
	if got := lines(t, events); !reflect.DeepEqual(got, []string{"failure success on_failure hook verify: false: failed (exit 1)"}) {
		t.Errorf("notifications %q", got)
	}
	if !c.plan("a").Notified {
		t.Error("plan not marked notified")
	}
}

// The gate fails with distinct exit codes, stops nothing, and leaves its
// reason in a plan for finish, which writes it to the history.
func TestStepsGateFailures(t *testing.T) {
	shortWait := func(url string) string {
		return fmt.Sprintf("duplicati {\n  url = %q\n  password_file = %q\n  wait_timeout = \"300ms\"\n  run_timeout = \"2s\"\n}\n", url, testPasswordFile)
	}
	hook := "  hook \"post_backup\" {\n    command = [\"false\"]\n  }\n"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, c *cli, sim *duplicatisim.Sim)
		cfg   func(url string) string
		stack string
		code  int
		says  string
	}{
		{"require_paths missing", nil, nil,
			"stack \"a\" {\n  jobs = [\"job-a\"]\n  require_paths = [\"/nonexistent/backup-target\"]\n" + hook + "}\n", exitcode.Precondition,
			"required path /nonexistent/backup-target"},
		{"Duplicati unreachable", func(t *testing.T, c *cli, sim *duplicatisim.Sim) {
			// A podman that cannot reach the container.
			bin := t.TempDir()
			if err := os.WriteFile(filepath.Join(bin, "podman"), []byte("#!/bin/sh\necho 'Error: no container with name or ID \"duplicati\" found' >&2\nexit 125\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		}, func(string) string { return "duplicati {\n  container = \"duplicati\"\n}\n" },
			"stack \"a\" {\n  jobs = [\"job-a\"]\n" + hook + "}\n", exitcode.Unreachable, "Duplicati unreachable"},
		{"Duplicati busy past wait_timeout", func(t *testing.T, c *cli, sim *duplicatisim.Sim) { sim.HoldQueue("1", 10*time.Second) },
			shortWait, "stack \"a\" {\n  jobs = [\"job-a\"]\n" + hook + "}\n", exitcode.Timeout, "waited 300ms for Duplicati to be idle (wait_timeout; last: "},
		{"slot held past wait_timeout", func(t *testing.T, c *cli, sim *duplicatisim.Sim) {
			if err := os.MkdirAll(c.runDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(orchestrate.Holder{Stack: "b", InvocationID: "inv-b", Since: time.Now()})
			if err := os.WriteFile(filepath.Join(c.runDir(), "slot"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			c.mgr.SetProp("backup@b.service", "InvocationID", "inv-b").Set("active", "backup@b.service")
		}, shortWait, "stack \"a\" {\n  jobs = [\"job-a\"]\n" + hook + "}\n", exitcode.Timeout, "backup slot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
			cfg := apiConfig(url, "", "")
			if tc.cfg != nil {
				cfg = tc.cfg(url)
			}
			c := newCLI(t, cfg, map[string]string{"a": tc.stack})
			c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
			if tc.setup != nil {
				tc.setup(t, c, sim)
			}
			c.backupRuns("a", "inv-3")
			_, errs := c.must(tc.code, "gate", "a")
			if !strings.Contains(errs, unitA+" was not stopped") || !strings.Contains(errs, tc.says) {
				t.Errorf("gate stderr:\n%s", errs)
			}
			p := c.plan("a")
			if p == nil || p.InvocationID != "inv-3" || p.Held || len(p.Settings.Hooks) != 0 || len(p.Failures) != 1 ||
				!strings.HasPrefix(p.Failures[0], fmt.Sprintf("gate (exit %d): ", tc.code)) {
				t.Fatalf("plan after a failed gate: %+v", p)
			}
			// ExecStopPost= runs anyway: no hook, nothing to restore.
			t.Setenv("SERVICE_RESULT", "exit-code")
			t.Setenv("EXIT_STATUS", fmt.Sprint(tc.code))
			c.must(0, "finish", "a")
			c.changes()
			if c.mgr.State(unitA) != "active" {
				t.Error("stack stopped")
			}
			h := c.history("a")
			if h.Result != "exit-code" || h.ExitStatus != fmt.Sprint(tc.code) || len(h.Failures) != 1 || h.Failures[0] != p.Failures[0] || h.Reason != p.Failures[0] {
				t.Errorf("history %+v", h)
			}
			if tc.name != "slot held past wait_timeout" && !c.slotFree() {
				t.Error("slot not freed")
			}
		})
	}
}

func TestStepsGateWaitsForABusyDuplicati(t *testing.T) {
	sim, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	sim.HoldQueue("1", 300*time.Millisecond)
	c.backupRuns("a", "inv-4")
	start := time.Now()
	_, errs := c.must(0, "gate", "a")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gate passed after %s while Duplicati was busy", d)
	}
	if !strings.Contains(errs, "Duplicati is busy") {
		t.Errorf("stderr:\n%s", errs)
	}
	if p := c.plan("a"); p == nil || p.UnitActive {
		t.Errorf("plan %+v", p)
	}
}

func TestStepsWithoutInvocationID(t *testing.T) {
	c := newCLI(t, "", map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	for _, args := range [][]string{
		{"gate", "a"}, {"hold", "a"}, {"wait-stopped", "a"}, {"finish", "a"}, {"hook", "a", "verify", "1", "--", "true"},
	} {
		_, errs := c.must(exitcode.Usage, args...)
		if !strings.Contains(errs, "INVOCATION_ID is not set") {
			t.Errorf("%s: %s", args[0], errs)
		}
	}
	_, errs := c.must(exitcode.Usage, "run", "a")
	if !strings.Contains(errs, "INVOCATION_ID is not set") || !strings.Contains(errs, "--force") {
		t.Errorf("run: %s", errs)
	}
	c.changes()
	if entries, _ := os.ReadDir(c.stateDir()); len(entries) > 0 {
		t.Errorf("files written: %v", entries)
	}
	if entries, _ := os.ReadDir(c.runDir()); len(entries) > 0 {
		t.Errorf("files written: %v", entries)
	}
}

func TestStepsWithoutAPlan(t *testing.T) {
	c := newCLI(t, "", map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	c.backupRuns("a", "inv-5")
	for _, step := range []string{"hold", "wait-stopped"} {
		_, errs := c.must(exitcode.Usage, step, "a")
		if !strings.Contains(errs, "no plan of this run (invocation inv-5)") {
			t.Errorf("%s: %s", step, errs)
		}
	}
	c.must(exitcode.Usage, "hook", "a", "pre_stop", "1", "--", "true")
	// A plan of another invocation is not this run's.
	if err := (&orchestrate.Plan{Stack: "a", InvocationID: "inv-old"}).Save(c.stateDir()); err != nil {
		t.Fatal(err)
	}
	c.must(exitcode.Usage, "hold", "a")
	// finish without a plan: nothing was stopped; the slot is released.
	if err := os.MkdirAll(c.runDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(orchestrate.Holder{Stack: "a", InvocationID: "inv-5", Since: time.Now()})
	if err := os.WriteFile(filepath.Join(c.runDir(), "slot"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs := c.must(0, "finish", "a")
	if !strings.Contains(errs, "nothing to restore: the gate did not let the backup begin") {
		t.Errorf("finish: %s", errs)
	}
	if !c.slotFree() {
		t.Error("slot not freed")
	}
	c.changes()
	if c.mgr.State(unitA) != "active" {
		t.Error("stack stopped")
	}
	// Not a stack name.
	c.must(exitcode.Usage, "hold", "a b")
	c.must(exitcode.Usage, "finish", "../a")
}

func TestStepsOtherFailures(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	stack := "stack \"a\" {\n  jobs = [\"job-a\"]\n  stop_timeout = \"100ms\"\n  start_timeout = \"100ms\"\n}\n"
	t.Run("the hold unit fails to start", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Fail("start "+holdA, errors.New("job failed"))
		c.backupRuns("a", "inv-6")
		c.must(0, "gate", "a")
		_, errs := c.must(exitcode.Failure, "hold", "a")
		if !strings.Contains(errs, holdA+" did not start within stop_timeout 100ms") {
			t.Errorf("%s", errs)
		}
		t.Setenv("SERVICE_RESULT", "exit-code")
		c.must(0, "finish", "a")
		if h := c.history("a"); len(h.Failures) != 1 || !strings.HasPrefix(h.Failures[0], "hold (exit 1): "+holdA+" did not start") || h.Result != "exit-code" {
			t.Errorf("history %+v", h)
		}
		c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA)
	})
	t.Run("containers do not stop", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
		c.pods.set("a", "a-app")
		c.backupRuns("a", "inv-7")
		c.must(0, "gate", "a")
		c.must(0, "hold", "a")
		_, errs := c.must(exitcode.Failure, "wait-stopped", "a")
		if !strings.Contains(errs, `containers of project "a" still running after stop_timeout 100ms`) || !strings.Contains(errs, "a-app (running)") {
			t.Errorf("%s", errs)
		}
		// The run refuses: the plan does not say stopped.
		_, errs = c.must(exitcode.Usage, "run", "a")
		if !strings.Contains(errs, "containers stopped: false") || !strings.Contains(errs, "no job was started") {
			t.Errorf("run: %s", errs)
		}
		t.Setenv("SERVICE_RESULT", "exit-code")
		c.must(0, "finish", "a")
		h := c.history("a")
		if len(h.Failures) != 2 || !strings.HasPrefix(h.Failures[0], "wait-stopped (exit 1)") || !strings.HasPrefix(h.Failures[1], "run (exit 2)") ||
			h.Result != "exit-code" {
			t.Errorf("history %+v", h)
		}
	})
	t.Run("run refuses unless the hold unit is up", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
		c.backupRuns("a", "inv-7b")
		c.must(0, "gate", "a")
		_, errs := c.must(exitcode.Usage, "run", "a")
		if !strings.Contains(errs, "plan held: false") {
			t.Errorf("run before the hold: %s", errs)
		}
		c.must(0, "hold", "a")
		c.must(0, "wait-stopped", "a")
		c.mgr.Set("inactive", holdA) // someone started the stack: the hold is gone
		_, errs = c.must(exitcode.Usage, "run", "a")
		if !strings.Contains(errs, holdA+" up: false") {
			t.Errorf("run without the hold: %s", errs)
		}
		c.mgr.Fail("show "+holdA, errors.New("no user manager"))
		c.must(exitcode.Usage, "run", "a")
	})
	t.Run("a hook fails or is out of range", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{
			"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n  hook \"pre_stop\" {\n    command = [\"false\"]\n  }\n}\n",
		})
		c.backupRuns("a", "inv-7c")
		c.must(0, "gate", "a")
		_, errs := c.must(exitcode.Failure, "hook", "a", "pre_stop", "1", "--", "false")
		if !strings.Contains(errs, "hook pre_stop: false: failed (exit 1)") {
			t.Errorf("%s", errs)
		}
		_, errs = c.must(exitcode.Failure, "hook", "a", "pre_stop", "2", "--", "false")
		if !strings.Contains(errs, "has 1 pre_stop hook(s), not a number 2") {
			t.Errorf("%s", errs)
		}
		c.must(exitcode.Usage, "hook", "a", "no_such_kind", "1")
		p := c.plan("a")
		if len(p.Failures) != 2 || p.Failures[0] != "hook pre_stop: false: failed (exit 1)" {
			t.Errorf("failures %q", p.Failures)
		}
	})
	t.Run("the restore fails: left down until recover", func(t *testing.T) {
		events := filepath.Join(t.TempDir(), "events")
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{
			"a": strings.TrimSuffix(stack, "}\n") + appendNotify(events) + "}\n",
		})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA).Fail("start "+unitA, errors.New("start failed"))
		c.backupRuns("a", "inv-8")
		c.must(0, "gate", "a")
		c.must(0, "hold", "a")
		c.must(0, "wait-stopped", "a")
		c.must(0, "run", "a")
		t.Setenv("SERVICE_RESULT", "success")
		_, errs := c.must(exitcode.Failure, "finish", "a")
		if !strings.Contains(errs, "still held down") || !strings.Contains(errs, "these steps failed: restore: "+unitA+" inactive after the start (start failed)") {
			t.Errorf("%s", errs)
		}
		h := c.history("a")
		if h.Result != "failed" || len(h.Failures) != 1 || h.Downtime != 0 || !h.RestoredAt.IsZero() {
			t.Errorf("history %+v", h)
		}
		if p := c.plan("a"); p == nil || !p.LeftDown() || p.Finished {
			t.Fatalf("plan %+v", p)
		}
		if !c.slotFree() {
			t.Error("the slot is held by a run that ended")
		}
		// The manager restarts; recover brings the stack back.
		c.mgr.Fail("start "+unitA, nil)
		c.backupEnded("a", "success", "0")
		t.Setenv("INVOCATION_ID", "")
		c.must(0, "recover")
		if c.mgr.State(unitA) != "active" || c.mgr.State(holdA) != "inactive" {
			t.Errorf("after recover: %s %s", c.mgr.State(unitA), c.mgr.State(holdA))
		}
		h = c.history("a")
		if h.Result != "interrupted" || h.InvocationID != "inv-8" || h.Downtime <= 0 || len(h.Failures) != 2 {
			t.Errorf("history %+v", h)
		}
		if p := c.plan("a"); !p.Finished || !p.Restored || !p.Notified {
			t.Errorf("plan %+v", p)
		}
		// The reason people are told is that the stack was left down.
		if got := lines(t, events); len(got) != 1 || !strings.HasPrefix(got[0], "failure interrupted on_failure left down by a backup interrupted at ") {
			t.Errorf("notifications %q", got)
		}
	})
	t.Run("the containers do not come back", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
		c.pods.set("a", "a-app")
		c.mgr.On("start "+unitA, func() {
			c.pods.mu.Lock()
			c.pods.exited = map[string][]string{"a": {"a-app"}}
			c.pods.mu.Unlock()
		})
		c.backupRuns("a", "inv-9")
		c.must(0, "gate", "a")
		c.must(0, "hold", "a")
		c.pods.set("a")
		c.must(0, "wait-stopped", "a")
		t.Setenv("SERVICE_RESULT", "success")
		_, errs := c.must(exitcode.Failure, "finish", "a")
		want := "stack a did not come back within start_timeout 100ms: 0 of 1 containers running (a-app: exited (0) 1 second ago)"
		if !strings.Contains(errs, want) {
			t.Errorf("finish stderr:\n%s", errs)
		}
		h := c.history("a")
		if h.Result != "failed" || h.Reason != want || h.Downtime <= 0 {
			t.Errorf("history %+v", h)
		}
		if p := c.plan("a"); !p.Finished || !p.Restored {
			t.Errorf("plan %+v: nothing more to start, so it is finished", p)
		}
	})
	t.Run("the unit was killed during the jobs", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
		c.backupRuns("a", "inv-9b")
		c.must(0, "gate", "a")
		c.must(0, "hold", "a")
		c.must(0, "wait-stopped", "a")
		t.Setenv("SERVICE_RESULT", "signal")
		t.Setenv("EXIT_STATUS", "TERM")
		c.must(0, "finish", "a")
		h := c.history("a")
		if h.Result != "signal" || len(h.Failures) != 0 || h.Reason != "the backup unit ended with result signal, exit status TERM" || h.Downtime <= 0 {
			t.Errorf("history %+v", h)
		}
		c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA)
	})
	t.Run("the history cannot be written: finish still restores and releases", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
		c.backupRuns("a", "inv-10")
		c.must(0, "gate", "a")
		c.must(0, "hold", "a")
		if err := os.MkdirAll(filepath.Join(c.stateDir(), "history", "a.json"), 0o700); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SERVICE_RESULT", "success")
		_, errs := c.must(0, "finish", "a")
		if !strings.Contains(errs, "cannot write the run history") {
			t.Errorf("%s", errs)
		}
		if !c.slotFree() || c.mgr.State(unitA) != "active" {
			t.Error("slot not freed or stack not restored")
		}
	})
}

// Only the gate reads the configuration: a stack file deleted or broken,
// or config.hcl broken, during the backup changes nothing for this run,
// and the steps say so.
func TestStepsConfigurationChangedDuringTheBackup(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 50 * time.Millisecond})
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, c *cli)
		what   string // validate's words for the change while the backup runs
	}{
		{"stack file deleted", func(t *testing.T, c *cli) {
			if err := os.Remove(c.stackFile("a")); err != nil {
				t.Fatal(err)
			}
		}, "its stack file is gone"},
		{"stack file broken", func(t *testing.T, c *cli) {
			if err := os.WriteFile(c.stackFile("a"), []byte("stack \"a\" {\n  jobs = \n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "its file has errors now"},
		{"stack file edited (other jobs, no hooks), config.hcl broken", func(t *testing.T, c *cli) {
			if err := os.WriteFile(c.stackFile("a"), []byte(`stack "a" { jobs = ["other-job"] }`), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(c.dir, "config", "backup-stack", "config.hcl"), []byte("duplicati {"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "its file or config.hcl changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hookLog := filepath.Join(t.TempDir(), "hooks")
			events := filepath.Join(t.TempDir(), "events")
			t.Setenv("HOOKLOG", hookLog)
			c := newCLI(t, apiConfig(url, "", ""), map[string]string{
				"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n" + hookBlock("pre_stop", "pre_stop", "") + hookBlock("verify", "verify", "") +
					appendNotify(events) + "}\n",
			})
			c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
			c.backupRuns("a", "inv-12")
			c.must(0, "gate", "a")
			tc.change(t, c)
			warning := "warning: stack a is being backed up (since "
			if _, out, _ := c.run("validate"); !strings.Contains(out, warning) || !strings.Contains(out, tc.what+"; that backup keeps the settings it started with") {
				t.Errorf("validate during the backup:\n%s", out)
			}
			// The unit file (rendered from the new file) may show another
			// command: the plan's hook runs, and the step says why.
			_, errs := c.must(0, "hook", "a", "pre_stop", "1", "--", "sh", "-c", "echo changed")
			if !strings.Contains(errs, "changed during the backup; this run keeps the settings it started with") {
				t.Errorf("hook stderr:\n%s", errs)
			}
			c.must(0, "hold", "a")
			c.must(0, "wait-stopped", "a")
			_, errs = c.must(0, "run", "a")
			if !strings.Contains(errs, "changed during the backup") || !strings.Contains(errs, `job "job-a" of stack a: Success`) {
				t.Errorf("run stderr:\n%s", errs)
			}
			t.Setenv("SERVICE_RESULT", "success")
			_, errs = c.must(0, "finish", "a")
			if !strings.Contains(errs, "changed during the backup") {
				t.Errorf("finish stderr:\n%s", errs)
			}
			c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA)
			if got, want := lines(t, hookLog), []string{"pre_stop", "verify success"}; !reflect.DeepEqual(got, want) {
				t.Errorf("hooks %q, want %q", got, want)
			}
			if h := c.history("a"); h == nil || !h.Succeeded() {
				t.Errorf("history %+v", h)
			}
			if _, out, _ := c.run("validate"); strings.Contains(out, warning) {
				t.Errorf("validate after the backup still warns:\n%s", out)
			}
			// The notification comes from the plan too.
			c.backupEnded("a", "exit-code", "5")
			c.notifyRuns("a")
			c.must(0, "notify", "a")
			if got := lines(t, events); len(got) != 1 || got[0] != "failure exit-code on_failure the backup unit ended with result exit-code, exit status 5" &&
				got[0] != "failure exit-code on_failure" {
				t.Errorf("notifications %q", got)
			}
		})
	}
}

// recover, at manager start, restores every stack an interrupted backup
// left down, records the outage and notifies it once; it leaves alone a
// backup that still runs.
func TestRecover(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	eventsA, eventsC := filepath.Join(t.TempDir(), "events-a"), filepath.Join(t.TempDir(), "events-c")
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{
		"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n" + onDemandA + appendNotify(eventsA) + "}\n",
		"b": `stack "b" { jobs = ["job-a"] }`,
		"c": "stack \"c\" {\n  jobs = [\"job-a\"]\n" + appendNotify(eventsC) + "}\n",
	})
	c.mgr.Set("active", unitA, sockA, "b-stack.service", "c-stack.service").Conflicts(holdA, unitA, sockA, svcA).
		Conflicts("backup-hold@b.service", "b-stack.service")
	// a: held down, then the manager died. b: held down and still running.
	// c: passed its gate, died before the hold.
	c.backupRuns("a", "inv-a")
	c.must(0, "gate", "a")
	c.must(0, "hold", "a")
	c.mgr.Set("inactive", bkA)
	c.backupRuns("c", "inv-c")
	c.must(0, "gate", "c")
	c.mgr.Set("inactive", "backup@c.service")
	c.backupRuns("b", "inv-b")
	c.must(0, "gate", "b")
	c.must(0, "hold", "b")
	t.Setenv("INVOCATION_ID", "")
	// Before recover: list and status say which stack was left down.
	out, _ := c.must(0, "list")
	row := func(stack string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, stack+" ") {
				return l
			}
		}
		return ""
	}
	if !strings.Contains(row("a"), "LEFT DOWN") || !strings.Contains(row("a"), "backup-stack recover restores it (interrupted ") ||
		!strings.Contains(row("b"), " running ") || !strings.Contains(row("c"), " idle ") {
		t.Errorf("list:\n%s", out)
	}
	out, _ = c.must(0, "status", "--stacks", "--json")
	var rows []stackStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("%v\n%s", err, out)
	}
	if !rows[0].LeftDown || !strings.HasPrefix(rows[0].Now, "LEFT DOWN") || rows[1].LeftDown || rows[1].Now != "running" || rows[2].LeftDown {
		t.Errorf("status rows %+v", rows)
	}
	// A damaged plan of a stack d is moved aside, and said so.
	if err := os.WriteFile(filepath.Join(c.stateDir(), "plan", "d.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := len(c.mgr.Changes())

	_, errs := c.must(0, "recover")
	if got := c.mgr.Changes()[before:]; !reflect.DeepEqual(got, []string{"stop --alone " + holdA, "start " + unitA + " " + sockA}) {
		t.Errorf("changes %q", got)
	}
	if !strings.Contains(errs, "; it was down for") || !strings.Contains(errs, "d.json is damaged") {
		t.Errorf("stderr:\n%s", errs)
	}
	ha := c.history("a")
	if ha == nil || ha.Result != "interrupted" || ha.InvocationID != "inv-a" || ha.Downtime <= 0 || ha.Succeeded() ||
		!strings.HasPrefix(ha.Reason, "left down by a backup interrupted at ") || !strings.Contains(ha.Reason, "restored by hand (backup-stack recover)") {
		t.Errorf("history of a %+v", ha)
	}
	if got := lines(t, eventsA); len(got) != 1 || !strings.HasPrefix(got[0], "failure interrupted on_failure left down by a backup interrupted at") {
		t.Errorf("notifications of a %q", got)
	}
	if h := c.history("b"); h != nil {
		t.Errorf("b still runs, yet has a history: %+v", h)
	}
	if p := c.plan("b"); p.Finished || !p.LeftDown() || c.mgr.State("backup-hold@b.service") != "active" {
		t.Errorf("b was touched: %+v", p)
	}
	hc := c.history("c")
	if hc == nil || hc.Result != "interrupted" || hc.Downtime != 0 || hc.Reason != "interrupted before it finished (by hand (backup-stack recover))" {
		t.Errorf("history of c %+v", hc)
	}
	if got := lines(t, eventsC); len(got) != 1 || got[0] != "failure interrupted on_failure interrupted before it finished (by hand (backup-stack recover))" {
		t.Errorf("notifications of c %q", got)
	}

	if out, _ := c.must(0, "list"); strings.Contains(out, "LEFT DOWN") {
		t.Errorf("list after recover:\n%s", out)
	}
	// Again: nothing left to do, nothing notified twice.
	before = len(c.mgr.Changes())
	c.must(0, "recover")
	if got := c.mgr.Changes()[before:]; len(got) != 0 {
		t.Errorf("second recover changed %q", got)
	}
	// backup-notify@a for the same run: reported already.
	c.backupEnded("a", "signal", "")
	c.mgr.SetProp(bkA, "InvocationID", "inv-a")
	c.notifyRuns("a")
	c.must(0, "notify", "a")
	if got := lines(t, eventsA); len(got) != 1 {
		t.Errorf("notified again: %q", got)
	}
}

func TestRecoverRestoreFails(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	events := filepath.Join(t.TempDir(), "events")
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{
		"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n" + appendNotify(events) + "}\n",
	})
	c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	c.backupRuns("a", "inv-a")
	c.must(0, "gate", "a")
	c.must(0, "hold", "a")
	c.mgr.Set("inactive", bkA).Fail("start "+unitA, errors.New("Unit a-stack.service is masked."))
	t.Setenv("INVOCATION_ID", "")
	// The stack file went too: the plan is all there is.
	if err := os.Remove(c.stackFile("a")); err != nil {
		t.Fatal(err)
	}
	if out, _ := c.must(0, "list"); !strings.Contains(out, "(no stack file now)") || !strings.Contains(out, "LEFT DOWN") {
		t.Errorf("list:\n%s", out)
	}
	_, errs := c.must(exitcode.Failure, "recover")
	if !strings.Contains(errs, "stack a: restore: "+unitA+" inactive after the start (Unit a-stack.service is masked.)") {
		t.Errorf("stderr:\n%s", errs)
	}
	if p := c.plan("a"); p.Finished || !p.LeftDown() {
		t.Errorf("plan %+v", p)
	}
	if h := c.history("a"); h != nil {
		t.Errorf("history %+v", h)
	}
	if got := lines(t, events); len(got) != 0 {
		t.Errorf("notified %q", got)
	}
	// Fixed by hand: the next recover restores it.
	c.mgr.Fail("start "+unitA, nil)
	c.must(0, "recover")
	if h := c.history("a"); h == nil || h.Result != "interrupted" {
		t.Errorf("history %+v", h)
	}
	if got := lines(t, events); len(got) != 1 {
		t.Errorf("notified %q", got)
	}
	// Nothing to recover at all.
	c2 := newCLI(t, "", nil)
	c2.must(0, "recover")
	c2.changes()
}

// The next backup's gate restores what an earlier one left down before it
// looks at what is up; if that fails, it refuses and keeps the earlier plan.
func TestStepsGateRecoversFirst(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	c.backupRuns("a", "inv-1")
	c.must(0, "gate", "a")
	c.must(0, "hold", "a")
	// inv-1 dies without its finish; inv-2 starts while the restore still fails.
	c.mgr.Fail("start "+unitA, errors.New("Job for a-stack.service failed"))
	c.backupRuns("a", "inv-2")
	_, errs := c.must(exitcode.Failure, "gate", "a")
	if !strings.Contains(errs, "left down by an earlier backup (invocation inv-1) and could not be restored") {
		t.Errorf("gate stderr:\n%s", errs)
	}
	if p := c.plan("a"); p.InvocationID != "inv-1" || !p.LeftDown() || p.Finished {
		t.Fatalf("the earlier plan must stay: %+v", p)
	}
	t.Setenv("SERVICE_RESULT", "exit-code")
	_, errs = c.must(0, "finish", "a")
	if !strings.Contains(errs, "nothing to restore") {
		t.Errorf("finish stderr:\n%s", errs)
	}
	if p := c.plan("a"); p.InvocationID != "inv-1" || !p.LeftDown() {
		t.Fatalf("finish of inv-2 touched inv-1's plan: %+v", p)
	}
	// inv-3: the start works again; its gate restores, then passes.
	c.mgr.Fail("start "+unitA, nil)
	c.backupRuns("a", "inv-3")
	c.must(0, "gate", "a")
	if p := c.plan("a"); p.InvocationID != "inv-3" || !p.UnitActive || p.Held {
		t.Errorf("plan %+v", p)
	}
	if c.mgr.State(unitA) != "active" {
		t.Error("stack not restored")
	}
}

// Damaged plan and history files are moved aside, said in the journal, and
// never stop the next backup.
func TestStepsDamagedStateFiles(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	for _, f := range []string{filepath.Join(c.stateDir(), "plan", "a.json"), filepath.Join(c.stateDir(), "history", "a.json")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("{\"stack\": tru"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.backupRuns("a", "inv-d")
	_, errs := c.must(0, "gate", "a")
	if !strings.Contains(errs, "plan/a.json is damaged") || !strings.Contains(errs, "moved it to") {
		t.Errorf("gate stderr:\n%s", errs)
	}
	c.must(0, "hold", "a")
	c.must(0, "wait-stopped", "a")
	c.must(0, "run", "a")
	t.Setenv("SERVICE_RESULT", "success")
	_, errs = c.must(0, "finish", "a")
	if !strings.Contains(errs, "history/a.json is damaged") {
		t.Errorf("finish stderr:\n%s", errs)
	}
	if h := c.history("a"); h == nil || !h.Succeeded() || h.InvocationID != "inv-d" {
		t.Errorf("history %+v", h)
	}
	for _, d := range []string{"plan", "history"} {
		if m, _ := filepath.Glob(filepath.Join(c.stateDir(), d, "a.json.corrupt-*")); len(m) != 1 {
			t.Errorf("%s: moved aside %q", d, m)
		}
	}
	c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA)
}

// The plan of a run that held its stack down is damaged before its finish:
// finish cannot know what was up, but must not leave the hold in place and
// say that nothing was stopped.
func TestStepsFinishWithAPlanDamagedAfterTheHold(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	c.backupRuns("a", "inv-x")
	c.must(0, "gate", "a")
	c.must(0, "hold", "a")
	if err := os.WriteFile(filepath.Join(c.stateDir(), "plan", "a.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SERVICE_RESULT", "success")
	_, _, errs := c.run("finish", "a")
	if strings.Contains(errs, "the gate did not let the backup begin") {
		t.Errorf("finish says nothing was stopped:\n%s", errs)
	}
	if c.mgr.State(holdA) == "active" || c.mgr.State(unitA) != "active" {
		t.Errorf("after finish: hold %s, stack %s", c.mgr.State(holdA), c.mgr.State(unitA))
	}
}

// App.RuntimeDir and App.StateDir override the environment.
func TestStepsAppDirs(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	t.Setenv("XDG_RUNTIME_DIR", "")
	c.backupRuns("a", "inv-11")
	_, errs := c.must(exitcode.Usage, "gate", "a")
	if !strings.Contains(errs, "XDG_RUNTIME_DIR") {
		t.Errorf("%s", errs)
	}
	rt, sd := filepath.Join(c.dir, "rt"), filepath.Join(c.dir, "st")
	run := func(args ...string) int {
		var out, errb bytes.Buffer
		app := c.app(&out, &errb)
		app.RuntimeDir, app.StateDir = rt, sd
		return app.Main(args)
	}
	if code := run("gate", "a"); code != 0 {
		t.Fatalf("gate: %d", code)
	}
	if p, _ := orchestrate.LoadPlan(sd, "a"); p == nil || p.InvocationID != "inv-11" {
		t.Fatal("no plan in App.StateDir")
	}
	if _, err := os.Stat(filepath.Join(rt, "slot")); err != nil {
		t.Fatalf("no slot in App.RuntimeDir: %v", err)
	}
	t.Setenv("SERVICE_RESULT", "success")
	if code := run("finish", "a"); code != 0 {
		t.Fatalf("finish: %d", code)
	}
	if h, _ := orchestrate.LoadHistory(sd, "a"); h == nil || h.Result != "success" {
		t.Fatalf("history in App.StateDir: %+v", h)
	}
	if h := c.history("a"); h != nil {
		t.Errorf("history also written to the XDG directory: %+v", h)
	}
}

func TestHeldNeedsNoConfiguration(t *testing.T) {
	c := newCLI(t, "this is { not hcl", nil)
	_, errs := c.must(0, "held", "a")
	if !strings.Contains(errs, "stack a is held down") || !strings.Contains(errs, "backup@a.service") {
		t.Errorf("%s", errs)
	}
	c.changes()
}

// notifyStack writes "$BACKUP_EVENT $BACKUP_RESULT $BACKUP_EXIT_STATUS" to
// out on failure and success (the script tells which ran).
func notifyStack(out string) string {
	return "stack \"a\" {\n  jobs = [\"job-a\"]\n" + notifyBlock(out) + "}\n"
}

func notifyBlock(out string) string {
	cmd := func(which string) string {
		return fmt.Sprintf(`["sh", "-c", "echo \"$BACKUP_EVENT $BACKUP_RESULT $BACKUP_EXIT_STATUS %s\" > %s; printf %%s \"$BACKUP_LOG\" > %s.log"]`, which, out, out)
	}
	return fmt.Sprintf("  notify {\n    on_failure = %s\n    on_success = %s\n  }\n", cmd("on_failure"), cmd("on_success"))
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		result     string
		status     string
		history    *orchestrate.History
		want       string // first line written by the command; "" = none ran
		code       int
		failShow   bool
		noNotify   bool
		failingCmd bool
	}{
		{name: "failure", result: "exit-code", status: "9", want: "failure exit-code 9 on_failure"},
		{name: "success", result: "success", status: "0", history: &orchestrate.History{Result: "success"},
			want: "success success 0 on_success"},
		{name: "success without history", result: "success", status: "0", want: "success success 0 on_success"},
		{name: "systemd success, a failed step", result: "success", status: "0",
			history: &orchestrate.History{Result: "failed", Failures: []string{"verify hook"}}, want: "failure success 0 on_failure"},
		{name: "no notify configured", result: "exit-code", noNotify: true},
		{name: "the command fails", result: "exit-code", failingCmd: true, code: exitcode.Failure},
		{name: "no manager", failShow: true, code: exitcode.Failure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "event")
			logDir := filepath.Join(t.TempDir(), "logs")
			stack := notifyStack(out)
			switch {
			case tc.noNotify:
				stack = `stack "a" { jobs = ["job-a"] }`
			case tc.failingCmd:
				stack = "stack \"a\" {\n  jobs = [\"job-a\"]\n  notify {\n    on_failure = [\"false\"]\n  }\n}\n"
			}
			c := newCLI(t, fmt.Sprintf("log_dir = %q\n", logDir), map[string]string{"a": stack})
			if err := os.MkdirAll(logDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(logPath(logDir, "a", time.Now()), []byte("run a: job 1\nrun a: job \"job-a\" failed\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c.mgr.SetProp("backup@a.service", "Result", tc.result).SetProp("backup@a.service", "ExecMainStatus", tc.status)
			if tc.failShow {
				c.mgr.Fail("show backup@a.service", errors.New("no user manager"))
			}
			if tc.history != nil {
				tc.history.Stack = "a"
				tc.history.Finished = time.Now()
				if err := tc.history.Save(c.stateDir()); err != nil {
					t.Fatal(err)
				}
			}
			c.notifyRuns("a")
			c.must(tc.code, "notify", "a")
			b, err := os.ReadFile(out)
			if tc.want == "" {
				if err == nil {
					t.Errorf("a notification ran: %q", b)
				}
				return
			}
			if got := strings.TrimSpace(string(b)); got != tc.want {
				t.Errorf("notification %q, want %q", got, tc.want)
			}
			if l, _ := os.ReadFile(out + ".log"); !strings.Contains(string(l), `job "job-a" failed`) {
				t.Errorf("BACKUP_LOG %q lacks the log_dir excerpt", l)
			}
		})
	}
}

func TestNotifyTest(t *testing.T) {
	hc := newPings(t)
	out := filepath.Join(t.TempDir(), "event")
	t.Run("every channel", func(t *testing.T) {
		stack := strings.TrimSuffix(notifyStack(out), "}\n") + fmt.Sprintf("  healthcheck {\n    url = %q\n  }\n}\n", hc.url)
		c := newCLI(t, "", map[string]string{"a": stack})
		stdout, _ := c.must(0, "notify-test", "a")
		for _, want := range []string{"notify on_failure", "notify on_success", "healthcheck (log ping)"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("no %q line:\n%s", want, stdout)
			}
		}
		if strings.Count(stdout, " ok\n") != 3 {
			t.Errorf("want 3 ok:\n%s", stdout)
		}
		if got := hc.got(); !reflect.DeepEqual(got, []string{"POST /ping/uuid/log"}) {
			t.Errorf("pings %q", got)
		}
		// Both commands ran; the success one last.
		if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "test test  on_success" {
			t.Errorf("last command wrote %q", b)
		}
	})
	t.Run("a failing channel", func(t *testing.T) {
		c := newCLI(t, "", map[string]string{
			"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n  notify {\n    on_failure = [\"false\"]\n    on_success = [\"true\"]\n  }\n}\n",
		})
		stdout, errs := c.must(exitcode.Failure, "notify-test", "a")
		if !strings.Contains(stdout, "notify on_failure") || !strings.Contains(stdout, "FAILED") || !strings.Contains(errs, "1 of 2 channel(s) failed") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, errs)
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		c := newCLI(t, "", map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
		_, errs := c.must(exitcode.Usage, "notify-test", "a")
		if !strings.Contains(errs, "no notify or healthcheck") {
			t.Errorf("%s", errs)
		}
	})
	t.Run("config.hcl's channels apply", func(t *testing.T) {
		c := newCLI(t, "notify {\n  on_failure = [\"true\"]\n}\n", map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
		stdout, _ := c.must(0, "notify-test", "a")
		if !strings.Contains(stdout, "notify on_failure") {
			t.Errorf("%s", stdout)
		}
	})
}

// Three stacks and a broken file, with the manager and the history saying
// what happened.
func listWorld(t *testing.T) (*cli, time.Time) {
	c := newCLI(t, "", map[string]string{
		"a":      "stack \"a\" {\n  jobs = [\"job-a\", \"job-a2\"]\n  schedule = \"daily\"\n}\n",
		"b":      "stack \"b\" {\n  unit = \"bee.service\"\n  project_label = \"bee\"\n  jobs = [\"job-b\"]\n}\n",
		"c":      "stack \"c\" {\n  jobs = [\"job-c\"]\n  schedule = \"weekly\"\n}\n",
		"broken": "stack \"broken\" {\n  jobs = []\n}\n",
	})
	// a: idle, next run known. b: being backed up and held. c: only held
	// (a restore in progress).
	c.mgr.SetProp("backup@a.timer", "NextElapseUSecRealtime", "Tue 2030-01-01 00:00:00 UTC")
	c.mgr.SetProp("backup@b.timer", "NextElapseUSecRealtime", "never shown: b has no schedule")
	c.mgr.Set("active", "backup@b.service", "backup-hold@b.service", "backup-hold@c.service")
	fin := time.Date(2029, 12, 31, 3, 4, 5, 0, time.Local)
	for _, h := range []*orchestrate.History{
		{Stack: "a", Result: "success", Gate: fin.Add(-90 * time.Second), Finished: fin, Downtime: 42.5, LastSuccess: fin},
		{Stack: "c", Result: "success", Failures: []string{"verify hook"}, Gate: fin.Add(-time.Minute), Finished: fin},
	} {
		if err := h.Save(c.stateDir()); err != nil {
			t.Fatal(err)
		}
	}
	return c, fin
}

func TestList(t *testing.T) {
	c, _ := listWorld(t)
	out, _ := c.must(0, "list", "--units")
	if out != "backup@a.service\nbackup@b.service\nbackup@c.service\n" {
		t.Errorf("list --units:\n%s", out)
	}
	out, _ = c.must(0, "list")
	lines := strings.Split(out, "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "STACK") {
		t.Fatalf("list:\n%s", out)
	}
	row := func(stack string) string {
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, stack+" ") {
				return l
			}
		}
		t.Fatalf("no row for %s:\n%s", stack, out)
		return ""
	}
	for stack, want := range map[string][]string{
		// the fixture's times lie in the future: "in N d"
		"a": {" idle ", " in ", " success ", " 1m30s ", " 43s "},
		"b": {" running ", " never "},
		// success by systemd, but a step after the jobs failed; a restore in progress
		"c": {" held ", " failed ", " 1m00s ", " verify hook"},
	} {
		r := row(stack)
		for _, w := range want {
			if !strings.Contains(r, w) {
				t.Errorf("row %q lacks %q", r, w)
			}
		}
	}
	if strings.Contains(out, "never shown") {
		t.Error("next run shown for a stack without a schedule")
	}
	if !strings.Contains(out, "1 file(s) skipped because of errors") || !strings.Contains(out, "broken.hcl") {
		t.Errorf("no word about the broken file:\n%s", out)
	}
	c.changes()
}

func TestStatusStacks(t *testing.T) {
	c, fin := listWorld(t)
	out, _ := c.must(0, "status", "--stacks", "--json")
	var rows []stackStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows:\n%s", len(rows), out)
	}
	a, b, cc := rows[0], rows[1], rows[2]
	if a.Stack != "a" || a.Now != "idle" || a.Held || a.LastResult != "success" || a.LastRun == nil || !a.LastRun.Equal(fin) ||
		a.LastSuccess == nil || a.Duration != 90 || a.Downtime != 42.5 || a.NextRun != "Tue 2030-01-01 00:00:00 UTC" || a.Schedule != "daily" {
		t.Errorf("a: %+v", a)
	}
	if b.Stack != "b" || b.Now != "running" || !b.Held || b.LastResult != "" || b.LastRun != nil || b.NextRun != "" ||
		b.Unit != "bee.service" || b.ProjectLabel != "bee" || !reflect.DeepEqual(b.Jobs, []string{"job-b"}) {
		t.Errorf("b: %+v", b)
	}
	if cc.Stack != "c" || cc.Now != "held" || !cc.Held || cc.LastResult != "failed" || !reflect.DeepEqual(cc.Failures, []string{"verify hook"}) || cc.LastSuccess != nil {
		t.Errorf("c: %+v", cc)
	}

	out, _ = c.must(0, "status", "--stacks")
	for _, want := range []string{"STACK", "running", "held", "failed", "verify hook", "1m30s", "43s", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("status --stacks lacks %q:\n%s", want, out)
		}
	}

	// No manager: the rows still come, from the history.
	var units []string
	for _, s := range []string{"a", "b", "c"} {
		units = append(units, "backup@"+s+".service", "backup-hold@"+s+".service", "backup@"+s+".timer")
	}
	c.mgr.Fail("show "+strings.Join(units, " "), errors.New("no user manager"))
	out, _ = c.must(0, "status", "--stacks", "--json")
	rows = nil
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, r := range rows {
		if !strings.HasPrefix(r.Now, "unknown") || r.Held {
			t.Errorf("%+v", r)
		}
	}
	if rows[0].LastResult != "success" {
		t.Errorf("history lost without a manager: %+v", rows[0])
	}
	out, _ = c.must(0, "list")
	if !strings.Contains(out, " unknown ") || !strings.Contains(out, " success ") {
		t.Errorf("list without a manager:\n%s", out)
	}
	c.changes()
}

func TestStatusStacksEmpty(t *testing.T) {
	c := newCLI(t, "", nil)
	out, _ := c.must(0, "status", "--stacks", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("%q", out)
	}
	out, _ = c.must(0, "list")
	if strings.Count(out, "\n") != 1 {
		t.Errorf("list of nothing:\n%s", out)
	}
}

func TestReload(t *testing.T) {
	stacks := map[string]string{
		"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n  schedule = \"daily\"\n}\n",
		"b": "stack \"b\" {\n  jobs = [\"job-b\"]\n  schedule = \"*-*-* 03:30:00\"\n}\n",
		"c": "stack \"c\" {\n  jobs = [\"job-c\"]\n}\n",
	}
	world := func(c *cli) {
		// a's timer is loaded but not started, c lost its schedule, x was
		// removed; other timers are none of our business.
		c.mgr.Set("inactive", "backup@a.timer").Set("active", "backup@c.timer", "backup@x.timer", "other.timer")
	}
	t.Run("applies the timers", func(t *testing.T) {
		c := newCLI(t, "", stacks)
		world(c)
		out, _ := c.must(0, "reload")
		c.changes("daemon-reload", "stop backup@c.timer backup@x.timer", "restart backup@a.timer backup@b.timer")
		for u, want := range map[string]string{"backup@a.timer": "active", "backup@b.timer": "active", "backup@c.timer": "inactive",
			"backup@x.timer": "inactive", "other.timer": "active"} {
			if s := c.mgr.State(u); s != want {
				t.Errorf("%s is %s, want %s", u, s, want)
			}
		}
		for _, want := range []string{"daemon-reload: done", "stopped timers of stacks without a schedule now: [backup@c.timer backup@x.timer]",
			"(re)started timers: [backup@a.timer backup@b.timer]"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("a broken file is skipped and fails the reload", func(t *testing.T) {
		s := map[string]string{"broken": "stack \"broken\" {\n  jobs = [\"x\"]\n  restore_policy = \"sometimes\"\n}\n"}
		for k, v := range stacks {
			s[k] = v
		}
		c := newCLI(t, "", s)
		world(c)
		_, errs := c.must(exitcode.Usage, "reload")
		if !strings.Contains(errs, "broken.hcl:3") || !strings.Contains(errs, "1 file(s) with errors were skipped") {
			t.Errorf("stderr:\n%s", errs)
		}
		c.changes("daemon-reload", "stop backup@c.timer backup@x.timer", "restart backup@a.timer backup@b.timer")
	})
	t.Run("daemon-reload fails: no timer is touched", func(t *testing.T) {
		c := newCLI(t, "", stacks)
		world(c)
		c.mgr.Fail("daemon-reload", errors.New("access denied"))
		_, errs := c.must(exitcode.Failure, "reload")
		if !strings.Contains(errs, "access denied") {
			t.Errorf("%s", errs)
		}
		c.changes("daemon-reload")
	})
	t.Run("a restart fails", func(t *testing.T) {
		c := newCLI(t, "", stacks)
		world(c)
		c.mgr.Fail("restart backup@a.timer backup@b.timer", errors.New("bad unit"))
		out, errs := c.must(exitcode.Failure, "reload")
		if !strings.Contains(errs, "bad unit") || strings.Contains(out, "(re)started") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", out, errs)
		}
	})
	t.Run("a broken config.hcl changes nothing", func(t *testing.T) {
		c := newCLI(t, "duplicati {\n  url = \"ftp://x\"\n}\n", stacks)
		world(c)
		_, errs := c.must(exitcode.Usage, "reload")
		if !strings.Contains(errs, "config.hcl") {
			t.Errorf("%s", errs)
		}
		c.changes()
	})
}

func TestValidateSchedules(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze")
	}
	c := newCLI(t, "", map[string]string{
		"good": "stack \"good\" {\n  jobs = [\"g\"]\n  schedule = \"*-*-* 03:30:00\"\n}\n",
		"bad":  "stack \"bad\" {\n  jobs = [\"b\"]\n  schedule = \"every full moon\"\n}\n",
		"none": "stack \"none\" {\n  jobs = [\"n\"]\n}\n",
	})
	out, _ := c.must(exitcode.Usage, "validate")
	if !strings.Contains(out, "stacks/bad.hcl:3:3: error: Invalid schedule") || !strings.Contains(out, `"every full moon"`) {
		t.Errorf("validate:\n%s", out)
	}
	if strings.Contains(out, "good.hcl") || strings.Contains(out, "none.hcl") {
		t.Errorf("a valid schedule reported:\n%s", out)
	}
	if !strings.Contains(out, "2 stack(s) valid, 1 file(s) with errors") {
		t.Errorf("summary:\n%s", out)
	}
	stacksDir := filepath.Join(c.dir, "config", "backup-stack", "stacks")
	c.must(0, "validate", filepath.Join(stacksDir, "good.hcl"))
	out, _ = c.must(exitcode.Usage, "validate", filepath.Join(stacksDir, "bad.hcl"))
	if !strings.Contains(out, "Invalid schedule") {
		t.Errorf("validate bad.hcl:\n%s", out)
	}
	c.must(0, "validate", filepath.Join(c.dir, "config", "backup-stack", "config.hcl"))
}

// TestStepsTypedByHand: a step typed in a shell while a backup of the stack runs (with no
// INVOCATION_ID, or a terminal service's own) or while none runs refuses, and leaves the
// plan, the history and the units of that run as they were.
func TestStepsTypedByHand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inv      string // the shell's INVOCATION_ID
		unitInv  string // what backup@a.service runs ("" = it is inactive)
		wantText string
	}{
		{"during a backup, no INVOCATION_ID", "", "inv-run", "INVOCATION_ID is not set"},
		{"during a backup, a terminal service's INVOCATION_ID", "inv-terminal", "inv-run", "not part of backup@a.service"},
		{"no backup runs, the last run's INVOCATION_ID", "inv-run", "", "not part of backup@a.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond})
			c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n  hook \"pre_stop\" {\n    command = [\"true\"]\n  }\n}\n"})
			// A run of a, held down: its gate and hold ran from the unit.
			c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
			c.backupRuns("a", "inv-run")
			c.must(0, "gate", "a")
			c.must(0, "hold", "a")
			if err := (&orchestrate.History{Stack: "a", InvocationID: "inv-before", Result: "success", Finished: time.Now()}).Save(c.stateDir()); err != nil {
				t.Fatal(err)
			}
			read := func(kind string) string {
				b, err := os.ReadFile(filepath.Join(c.stateDir(), kind, "a.json"))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			plan, hist, slot := read("plan"), read("history"), ""
			if b, err := os.ReadFile(filepath.Join(c.runDir(), "slot")); err == nil {
				slot = string(b)
			}
			changes := len(c.mgr.Changes())
			if tc.unitInv == "" {
				c.mgr.Set("inactive", bkA)
			}
			t.Setenv("INVOCATION_ID", tc.inv)
			for _, args := range [][]string{
				{"finish", "a"}, {"gate", "a"}, {"hold", "a"}, {"wait-stopped", "a"}, {"hook", "a", "pre_stop", "1", "--", "true"}, {"run", "a"},
				{"notify", "a"},
			} {
				_, errs := c.must(exitcode.Usage, args...)
				want := tc.wantText
				if args[0] == "notify" { // the notifier is part of its own unit
					want = strings.Replace(want, "backup@a.service", "backup-notify@a.service", 1)
				}
				if !strings.Contains(errs, want) {
					t.Errorf("%s: stderr lacks %q:\n%s", args[0], want, errs)
				}
			}
			if got := read("plan"); got != plan {
				t.Errorf("the plan changed:\n%s\nwas:\n%s", got, plan)
			}
			if got := read("history"); got != hist {
				t.Errorf("the history changed:\n%s\nwas:\n%s", got, hist)
			}
			if b, _ := os.ReadFile(filepath.Join(c.runDir(), "slot")); string(b) != slot {
				t.Errorf("the slot changed: %s, was %s", b, slot)
			}
			if got := c.mgr.Changes(); len(got) != changes {
				t.Errorf("units changed: %q", got[changes:])
			}
		})
	}
}

// TestRunReasons: every way a job fails leaves one line in words in the history, which
// list, the notification and the health ping show.
func TestRunReasons(t *testing.T) {
	for _, tc := range []struct {
		name, stack string
		backup      duplicatisim.Backup
		code        int
		want        string
	}{
		{"Duplicati's own message", "stack \"a\" {\n  jobs = [\"job-a\"]\n}\n",
			duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 20 * time.Millisecond, Result: "Error"}, exitcode.JobError,
			`run: job "job-a": 1 error(s), first: `},
		{"wait_timeout", "stack \"a\" {\n  jobs = [\"job-a\"]\n  wait_timeout = \"1s\"\n}\n",
			duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 10 * time.Second}, exitcode.Timeout,
			`run: waited 1s for job "job-a" (wait_timeout): `},
		{"unknown job", "stack \"a\" {\n  jobs = [\"no-such-job\"]\n}\n",
			duplicatisim.Backup{ID: "1", Name: "job-a"}, exitcode.Usage,
			`run: job "no-such-job": no such Duplicati backup: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startSim(t, duplicatisim.Quirks{}, tc.backup)
			c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": tc.stack})
			c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
			c.backupRuns("a", "inv-r")
			c.must(0, "gate", "a")
			c.must(0, "hold", "a")
			c.must(0, "wait-stopped", "a")
			c.must(tc.code, "run", "a")
			t.Setenv("SERVICE_RESULT", "exit-code")
			t.Setenv("EXIT_STATUS", fmt.Sprint(tc.code))
			c.must(0, "finish", "a")
			if h := c.history("a"); h == nil || !strings.HasPrefix(h.Reason, tc.want) {
				t.Fatalf("history reason %+v, want it to start %q", h, tc.want)
			}
		})
	}
}

func TestFmtWait(t *testing.T) {
	for in, want := range map[time.Duration]string{
		6 * time.Hour: "6h", 2 * time.Minute: "2m", 10 * time.Second: "10s", 90 * time.Second: "1m30s", 90 * time.Minute: "1h30m",
	} {
		if got := fmtWait(in); got != want {
			t.Errorf("fmtWait(%s) = %q, want %q", in, got, want)
		}
	}
}
