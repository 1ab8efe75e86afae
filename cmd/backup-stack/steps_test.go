package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
)

// runDir and stateDir are where the steps keep their files, from the
// XDG_RUNTIME_DIR and XDG_STATE_HOME that newCLI sets.
func (c *cli) runDir() string   { return filepath.Join(c.dir, "run", "backup-stack") }
func (c *cli) stateDir() string { return filepath.Join(c.dir, "state", "backup-stack") }

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

func (c *cli) record(stack string) *orchestrate.Record {
	c.t.Helper()
	r, err := orchestrate.LoadRecord(c.runDir(), stack)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *cli) changes(want ...string) {
	c.t.Helper()
	if got := c.mgr.Changes(); !reflect.DeepEqual(got, want) {
		c.t.Fatalf("manager changes %q, want %q", got, want)
	}
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

// A whole backup of stack a, step by step as backup@a.service runs them.
func TestStepsWholeBackup(t *testing.T) {
	sim, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 100 * time.Millisecond})
	hc := newPings(t)
	metricsFile := filepath.Join(t.TempDir(), "backup.prom")
	c := newCLI(t, apiConfig(url, "", "")+fmt.Sprintf("metrics_file = %q\n", metricsFile), map[string]string{
		"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n" + onDemandA + fmt.Sprintf("  healthcheck {\n    url = %q\n  }\n", hc.url) + "}\n",
	})
	// The stack and its socket run; the hold unit's drop-in conflicts with all three.
	c.mgr.Set("active", unitA, sockA).Set("inactive", svcA).Conflicts(holdA, unitA, sockA, svcA)
	c.pods.set("a", "a-app", "a-db")
	t.Setenv("INVOCATION_ID", "inv-1")

	c.must(0, "gate", "a")
	r := c.record("a")
	if r == nil || r.InvocationID != "inv-1" || !r.UnitActive || !r.SocketActive || r.ServiceActive || r.Held {
		t.Fatalf("record after gate: %+v", r)
	}
	c.changes()

	c.must(0, "hold", "a")
	c.changes("start " + holdA)
	if r := c.record("a"); !r.Held {
		t.Fatalf("record after hold: %+v", r)
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
	c.must(0, "wait-stopped", "a")
	if names, _ := c.pods.Running(context.Background(), "a"); len(names) != 0 {
		t.Fatal("wait-stopped returned while containers ran")
	}

	c.must(0, "run", "a") // no --force: the hold is active
	ev := sim.Events()
	if len(ev) != 1 || ev[0].BackupID != "1" || ev[0].Result != "Success" {
		t.Fatalf("Duplicati events %+v", ev)
	}

	t.Setenv("SERVICE_RESULT", "success")
	t.Setenv("EXIT_STATUS", "0")
	marker := filepath.Join(t.TempDir(), "post_backup")
	c.must(0, "hook", "a", "post_backup", "--", "sh", "-c", `echo "$SERVICE_RESULT" > "$0"`, marker)
	if b, err := os.ReadFile(marker); err != nil || string(b) != "success\n" {
		t.Fatalf("post_backup hook: %q %v", b, err)
	}

	c.must(0, "restore", "a")
	c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA+" "+sockA)
	for u, want := range map[string]string{unitA: "active", sockA: "active", svcA: "inactive", holdA: "inactive"} {
		if s := c.mgr.State(u); s != want {
			t.Errorf("%s is %s after restore, want %s", u, s, want)
		}
	}

	c.must(0, "hook", "a", "verify", "--ignore-failure", "--", "false")
	start := time.Now()
	c.must(0, "release", "a")

	h := c.history("a")
	if h == nil {
		t.Fatal("no history")
	}
	if h.Result != "success" || h.InvocationID != "inv-1" || h.ExitStatus != "0" || len(h.Failures) != 0 || !h.Succeeded() {
		t.Errorf("history %+v", h)
	}
	if h.Gate.IsZero() || !h.HeldAt.After(h.Gate) || !h.RestoredAt.After(h.HeldAt) || h.Finished.Before(start) {
		t.Errorf("history times: gate %s held %s restored %s finished %s", h.Gate, h.HeldAt, h.RestoredAt, h.Finished)
	}
	if want := h.RestoredAt.Sub(h.HeldAt).Seconds(); h.Downtime != want || h.Downtime <= 0 {
		t.Errorf("downtime %v, want %v", h.Downtime, want)
	}
	if !h.LastSuccess.Equal(h.Finished) {
		t.Errorf("last success %s, finished %s", h.LastSuccess, h.Finished)
	}
	if c.record("a") != nil {
		t.Error("record kept after a restored run")
	}
	if _, err := os.Stat(filepath.Join(c.runDir(), "slot")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("slot not freed: %v", err)
	}
	if got, want := hc.got(), []string{"POST /ping/uuid/start", "POST /ping/uuid"}; !reflect.DeepEqual(got, want) {
		t.Errorf("health pings %q, want %q", got, want)
	}
	m, err := os.ReadFile(metricsFile)
	if err != nil || !strings.Contains(string(m), `backup_stack_last_success{stack="a"} 1`) {
		t.Errorf("metrics file: %v\n%s", err, m)
	}
	c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA+" "+sockA)

	// What the commands about every stack say afterwards.
	out, _ := c.must(0, "list")
	if !strings.Contains(out, "success "+h.Finished.Format(time.DateTime)) || !strings.Contains(out, "(down ") {
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
}

// A required hook failed in ExecStopPost=: systemd still says success, the
// release must not.
func TestStepsReleaseFailsOnAFailedHook(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 50 * time.Millisecond})
	hc := newPings(t)
	event := filepath.Join(t.TempDir(), "event")
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{
		"a": fmt.Sprintf("stack \"a\" {\n  jobs = [\"job-a\"]\n  healthcheck {\n    url = %q\n  }\n", hc.url) + notifyBlock(event) + "}\n",
	})
	c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	// An earlier success, whose time must be carried over.
	earlier := time.Now().Add(-24 * time.Hour).Truncate(time.Second).UTC()
	if err := (&orchestrate.History{Stack: "a", Result: "success", Finished: earlier, LastSuccess: earlier}).Save(c.stateDir()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INVOCATION_ID", "inv-2")
	c.must(0, "gate", "a")
	c.must(0, "hold", "a")
	c.must(0, "wait-stopped", "a")
	c.must(0, "run", "a")
	t.Setenv("SERVICE_RESULT", "success")
	t.Setenv("EXIT_STATUS", "0")
	c.must(exitcode.Failure, "hook", "a", "verify", "--", "false")
	c.must(0, "restore", "a")
	_, errs := c.must(exitcode.Failure, "release", "a")
	if !strings.Contains(errs, "these steps failed: verify hook") {
		t.Errorf("release stderr:\n%s", errs)
	}
	h := c.history("a")
	if h.Result != "failed" || !reflect.DeepEqual(h.Failures, []string{"verify hook"}) || h.Succeeded() {
		t.Errorf("history %+v", h)
	}
	if !h.LastSuccess.Equal(earlier) {
		t.Errorf("last success %s, want the earlier %s", h.LastSuccess, earlier)
	}
	if got := hc.got(); len(got) != 2 || got[1] != "POST /ping/uuid/fail" {
		t.Errorf("pings %q", got)
	}
	c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA)

	out, _ := c.must(0, "status", "--stacks")
	if !strings.Contains(out, "failed (verify hook)") {
		t.Errorf("status --stacks:\n%s", out)
	}
	// The notification goes out as a failure although systemd said success.
	c.mgr.SetProp("backup@a.service", "Result", "success").SetProp("backup@a.service", "ExecMainStatus", "0")
	c.must(0, "notify", "a")
	if b, _ := os.ReadFile(event); strings.TrimSpace(string(b)) != "failure success 0 on_failure" {
		t.Errorf("notification %q", b)
	}
}

// The steps before the jobs fail with distinct exit codes, stop nothing,
// and the release records why.
func TestStepsGateFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	shortWait := func(url string) string {
		return fmt.Sprintf("duplicati {\n  url = %q\n  wait_timeout = \"300ms\"\n  run_timeout = \"2s\"\n}\n", url)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, c *cli, sim *duplicatisim.Sim)
		cfg   func(url string) string
		stack string
		code  int
	}{
		{"require_paths missing", nil, nil,
			"stack \"a\" {\n  jobs = [\"job-a\"]\n  require_paths = [\"/nonexistent/backup-target\"]\n}\n", exitcode.Precondition},
		{"Duplicati unreachable", nil, func(string) string { return apiConfig(closed, "", "") },
			"stack \"a\" {\n  jobs = [\"job-a\"]\n}\n", exitcode.Unreachable},
		{"Duplicati busy past wait_timeout", func(t *testing.T, c *cli, sim *duplicatisim.Sim) { sim.HoldQueue("1", 10*time.Second) },
			shortWait, "stack \"a\" {\n  jobs = [\"job-a\"]\n}\n", exitcode.Timeout},
		{"slot held past wait_timeout", func(t *testing.T, c *cli, sim *duplicatisim.Sim) {
			if err := os.MkdirAll(c.runDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(orchestrate.Holder{Stack: "b", InvocationID: "inv-b", Since: time.Now()})
			if err := os.WriteFile(filepath.Join(c.runDir(), "slot"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			c.mgr.SetProp("backup@b.service", "InvocationID", "inv-b").Set("active", "backup@b.service")
		}, shortWait, "stack \"a\" {\n  jobs = [\"job-a\"]\n}\n", exitcode.Timeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a"})
			cfg := apiConfig(url, "", "")
			if tc.cfg != nil {
				cfg = tc.cfg(url)
			}
			c := newCLI(t, cfg, map[string]string{"a": tc.stack})
			c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
			if tc.setup != nil {
				tc.setup(t, c, sim)
			}
			t.Setenv("INVOCATION_ID", "inv-3")
			_, errs := c.must(tc.code, "gate", "a")
			if !strings.Contains(errs, unitA+" was not stopped") {
				t.Errorf("gate stderr:\n%s", errs)
			}
			if c.record("a") != nil {
				t.Error("record written by a failed gate")
			}
			// ExecStopPost= runs anyway.
			t.Setenv("SERVICE_RESULT", "exit-code")
			t.Setenv("EXIT_STATUS", fmt.Sprint(tc.code))
			c.must(0, "hook", "a", "post_backup", "--", "false") // skipped: the backup never began
			c.must(0, "restore", "a")
			c.must(exitcode.Failure, "release", "a")
			c.changes()
			if c.mgr.State(unitA) != "active" {
				t.Error("stack stopped")
			}
			h := c.history("a")
			want := []string{fmt.Sprintf("gate (exit %d)", tc.code)}
			if h.Result != "exit-code" || h.ExitStatus != fmt.Sprint(tc.code) || !reflect.DeepEqual(h.Failures, want) {
				t.Errorf("history %+v, want failures %q", h, want)
			}
		})
	}
}

func TestStepsGateWaitsForABusyDuplicati(t *testing.T) {
	sim, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a"})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	sim.HoldQueue("1", 300*time.Millisecond)
	t.Setenv("INVOCATION_ID", "inv-4")
	start := time.Now()
	_, errs := c.must(0, "gate", "a")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gate passed after %s while Duplicati was busy", d)
	}
	if !strings.Contains(errs, "Duplicati is busy") {
		t.Errorf("stderr:\n%s", errs)
	}
	if r := c.record("a"); r == nil || r.UnitActive {
		t.Errorf("record %+v", r)
	}
}

func TestStepsOtherFailures(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a"})
	stack := "stack \"a\" {\n  jobs = [\"job-a\"]\n  stop_timeout = \"100ms\"\n}\n"
	t.Run("no INVOCATION_ID", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		for _, step := range []string{"gate", "hold", "restore"} {
			_, errs := c.must(exitcode.Usage, step, "a")
			if !strings.Contains(errs, "INVOCATION_ID is not set") {
				t.Errorf("%s: %s", step, errs)
			}
		}
		c.must(exitcode.Usage, "hook", "a", "verify", "--", "true")
		c.changes()
		if _, err := os.Stat(c.runDir()); err == nil {
			entries, _ := os.ReadDir(c.runDir())
			if len(entries) > 0 {
				t.Errorf("files written: %v", entries)
			}
		}
	})
	t.Run("hold without gate", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
		t.Setenv("INVOCATION_ID", "inv-5")
		_, errs := c.must(exitcode.Failure, "hold", "a")
		if !strings.Contains(errs, "no record of the gate") {
			t.Errorf("%s", errs)
		}
		c.changes()
	})
	t.Run("the hold unit fails to start", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Fail("start "+holdA, errors.New("job failed"))
		t.Setenv("INVOCATION_ID", "inv-6")
		c.must(0, "gate", "a")
		c.must(exitcode.Failure, "hold", "a")
		t.Setenv("SERVICE_RESULT", "exit-code")
		c.must(0, "restore", "a")
		c.must(exitcode.Failure, "release", "a")
		if h := c.history("a"); !reflect.DeepEqual(h.Failures, []string{"hold (exit 1)"}) {
			t.Errorf("history %+v", h)
		}
		c.changes("start "+holdA, "stop --alone "+holdA, "start "+unitA)
	})
	t.Run("containers do not stop", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA)
		c.pods.set("a", "a-app")
		t.Setenv("INVOCATION_ID", "inv-7")
		c.must(0, "gate", "a")
		c.must(0, "hold", "a")
		_, errs := c.must(exitcode.Failure, "wait-stopped", "a")
		if !strings.Contains(errs, "a-app") {
			t.Errorf("%s", errs)
		}
		t.Setenv("SERVICE_RESULT", "exit-code")
		c.must(0, "restore", "a")
		c.must(exitcode.Failure, "release", "a")
		if h := c.history("a"); !reflect.DeepEqual(h.Failures, []string{"wait-stopped (exit 1)"}) || h.Result != "exit-code" {
			t.Errorf("history %+v", h)
		}
	})
	t.Run("the restore fails: the record is kept for the next run", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		c.mgr.Set("active", unitA).Conflicts(holdA, unitA).Fail("start "+unitA, errors.New("start failed"))
		t.Setenv("INVOCATION_ID", "inv-8")
		c.must(0, "gate", "a")
		c.must(0, "hold", "a")
		c.must(exitcode.Failure, "restore", "a")
		t.Setenv("SERVICE_RESULT", "success")
		_, errs := c.must(exitcode.Failure, "release", "a")
		if !strings.Contains(errs, "keeping the record") {
			t.Errorf("%s", errs)
		}
		h := c.history("a")
		if h.Result != "failed" || !reflect.DeepEqual(h.Failures, []string{"restore"}) || h.Downtime != 0 || !h.RestoredAt.IsZero() {
			t.Errorf("history %+v", h)
		}
		if r := c.record("a"); r == nil || !r.Held || r.Restored {
			t.Fatalf("record %+v", r)
		}
		// The next run inherits it and brings the stack back.
		c.mgr.Fail("start "+unitA, nil)
		t.Setenv("INVOCATION_ID", "inv-9")
		c.must(0, "gate", "a")
		if r := c.record("a"); !r.Inherited || !r.UnitActive {
			t.Errorf("record %+v", r)
		}
		c.must(0, "hold", "a")
		c.must(0, "restore", "a")
		c.must(0, "release", "a")
		if c.mgr.State(unitA) != "active" || c.record("a") != nil {
			t.Errorf("stack %s, record %+v", c.mgr.State(unitA), c.record("a"))
		}
	})
	t.Run("release without any history directory", func(t *testing.T) {
		c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": stack})
		t.Setenv("INVOCATION_ID", "inv-10")
		// A state directory that cannot be created: the release still frees the slot.
		blocker := filepath.Join(c.dir, "state")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c.must(0, "gate", "a")
		t.Setenv("SERVICE_RESULT", "success")
		_, errs := c.must(0, "release", "a")
		if !strings.Contains(errs, "cannot write the run history") {
			t.Errorf("%s", errs)
		}
		if _, err := os.Stat(filepath.Join(c.runDir(), "slot")); !errors.Is(err, os.ErrNotExist) {
			t.Error("slot not freed")
		}
	})
}

// `backup-stack release` run by hand (no INVOCATION_ID) must refuse like
// the other steps, and must not overwrite the stack's last run with an
// empty result nor send a failure ping.
func TestReleaseWithoutInvocationIDChangesNothing(t *testing.T) {
	hc := newPings(t)
	c := newCLI(t, "", map[string]string{
		"a": fmt.Sprintf("stack \"a\" {\n  jobs = [\"job-a\"]\n  healthcheck {\n    url = %q\n  }\n}\n", hc.url),
	})
	fin := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	last := &orchestrate.History{Stack: "a", InvocationID: "inv-real", Result: "success", Finished: fin, LastSuccess: fin}
	if err := last.Save(c.stateDir()); err != nil {
		t.Fatal(err)
	}
	code, _, errs := c.run("release", "a")
	if code != exitcode.Usage {
		t.Errorf("exit %d, want %d (like gate, hold, restore): %s", code, exitcode.Usage, errs)
	}
	if h := c.history("a"); h == nil || h.InvocationID != "inv-real" || h.Result != "success" {
		t.Errorf("the last run was overwritten: %+v", h)
	}
	if got := hc.got(); len(got) != 0 {
		t.Errorf("pings sent: %q", got)
	}
}

// App.RuntimeDir and App.StateDir override the environment.
func TestStepsAppDirs(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a"})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("INVOCATION_ID", "inv-11")
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
	if r, _ := orchestrate.LoadRecord(rt, "a"); r == nil {
		t.Fatal("no record in App.RuntimeDir")
	}
	t.Setenv("SERVICE_RESULT", "success")
	if code := run("release", "a"); code != 0 {
		t.Fatalf("release: %d", code)
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
	c, fin := listWorld(t)
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
	when := fin.Format(time.DateTime)
	for stack, want := range map[string][]string{
		"a": {"a-stack.service", "job-a,job-a2", "daily", "Tue 2030-01-01 00:00:00 UTC", "success " + when + " (down 42.5s)"},
		"b": {"bee.service", " bee ", "job-b", "never"},
		"c": {"c-stack.service", "weekly", "success " + when},
	} {
		r := row(stack)
		for _, w := range want {
			if !strings.Contains(r, w) {
				t.Errorf("row %q lacks %q", r, w)
			}
		}
	}
	if f := strings.Fields(row("a")); f[len(f)-1] != "no" {
		t.Errorf("a held: %q", row("a"))
	}
	for _, s := range []string{"b", "c"} {
		if f := strings.Fields(row(s)); f[len(f)-1] != "yes" {
			t.Errorf("%s not held: %q", s, row(s))
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
	if b.Stack != "b" || b.Now != "running" || !b.Held || b.LastResult != "" || b.LastRun != nil || b.NextRun != "" {
		t.Errorf("b: %+v", b)
	}
	if cc.Stack != "c" || cc.Now != "held" || !cc.Held || cc.LastResult != "failed" || !reflect.DeepEqual(cc.Failures, []string{"verify hook"}) || cc.LastSuccess != nil {
		t.Errorf("c: %+v", cc)
	}

	out, _ = c.must(0, "status", "--stacks")
	for _, want := range []string{"STACK", "running", "held", "failed (verify hook)", "90.0s", "42.5s", fin.Format(time.DateTime), "never"} {
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
	if !strings.Contains(out, "success "+fin.Format(time.DateTime)) {
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
	if !strings.Contains(out, "stacks/bad.hcl:1:1: error: Invalid schedule") || !strings.Contains(out, `"every full moon"`) {
		t.Errorf("validate:\n%s", out)
	}
	if strings.Contains(out, "good.hcl") || strings.Contains(out, "none.hcl") {
		t.Errorf("a valid schedule reported:\n%s", out)
	}
	if !strings.Contains(out, "3 stack(s) valid, 0 file(s) with errors") {
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
