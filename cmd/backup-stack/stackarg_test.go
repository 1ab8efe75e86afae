package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
	"github.com/backup-stack/backup-stack/internal/exitcode"
)

// The units call every step with the exact stack name after "--", as
// units/render.go and templates/ write them. A stack named x-stack must be
// backed up as x-stack, not as x (which exists too): a step never shortens.
func TestStepsTakeTheExactNameAfterDashDash(t *testing.T) {
	sim, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-xs", Duration: 50 * time.Millisecond})
	hookLog := filepath.Join(t.TempDir(), "hooks")
	t.Setenv("HOOKLOG", hookLog)
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{
		"x":       "stack \"x\" {\n  jobs = [\"job-x\"]\n}\n",
		"x-stack": "stack \"x-stack\" {\n  jobs = [\"job-xs\"]\n" + hookBlock("pre_stop", "pre_stop", "") + hookBlock("post_start", "post_start", "") + "}\n",
	})
	const (
		unitXS = "x-stack-stack.service"
		holdXS = "backup-hold@x-stack.service"
	)
	c.mgr.Set("active", unitXS, "x-stack.service").Conflicts(holdXS, unitXS)
	c.mgr.On("start "+unitXS, func() {})
	c.backupRuns("x-stack", "inv-xs")

	c.must(0, "gate", "--", "x-stack")
	if p := c.plan("x-stack"); p == nil || p.Settings.Unit != unitXS {
		t.Fatalf("plan of x-stack after the gate: %+v", p)
	}
	if p := c.plan("x"); p != nil {
		t.Fatalf("the gate of x-stack wrote a plan of x: %+v", p)
	}
	c.must(0, "hook", "--", "x-stack", "pre_stop", "1", "--", "sh", "-c", `echo pre_stop $SERVICE_RESULT >> "$HOOKLOG"`)
	c.must(0, "hold", "--", "x-stack")
	c.must(0, "wait-stopped", "--", "x-stack")
	c.must(0, "run", "--", "x-stack")
	if ev := sim.Events(); len(ev) != 1 || ev[0].BackupID != "1" {
		t.Fatalf("Duplicati ran %+v, want job-xs (backup 1) only", ev)
	}
	t.Setenv("SERVICE_RESULT", "success")
	c.must(0, "finish", "--", "x-stack")
	c.changes("start "+holdXS, "stop --alone "+holdXS, "start "+unitXS)
	if got := lines(t, hookLog); strings.Join(got, "|") != "pre_stop|post_start success" {
		t.Errorf("hooks ran %q", got)
	}
	if h := c.history("x-stack"); h == nil || !h.Succeeded() {
		t.Errorf("history of x-stack %+v", h)
	}
	if h := c.history("x"); h != nil {
		t.Errorf("history of x %+v", h)
	}
	c.backupEnded("x-stack", "success", "0")
	c.notifyRuns("x-stack")
	c.must(0, "notify", "--", "x-stack")
	c.must(0, "held", "--", "x-stack")
}

// A name that looks like an option, passed after "--" as the units do, is
// not a stack name: every step refuses it (exit 2) instead of printing its
// help and exiting 0. Names that are not stack names at all, and unit
// names, are refused by every step too: a step never maps a name.
func TestStepsRefuseWhatIsNoStackName(t *testing.T) {
	c := newCLI(t, "", map[string]string{"x": `stack "x" { jobs = ["j"] }`})
	c.backupRuns("x", "inv-1")
	steps := [][]string{{"gate"}, {"hold"}, {"held"}, {"wait-stopped"}, {"run"}, {"finish"}, {"notify"}}
	for _, name := range []string{"-h", "--help", "--version", "-x", "_x", "x-stack.service", "backup@x.service", "a b", "../x", ""} {
		for _, step := range steps {
			args := append(append([]string{}, step...), "--", name)
			code, out, errs := c.run(args...)
			if code != exitcode.Usage || strings.Contains(out, "Usage:") || strings.Contains(out, "dev") && name == "--version" {
				t.Errorf("backup-stack %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, exitcode.Usage, out, errs)
			}
		}
		args := []string{"hook", "--", name, "pre_stop", "1", "--", "true"}
		if code, out, errs := c.run(args...); code != exitcode.Usage || strings.Contains(out, "Usage:") {
			t.Errorf("backup-stack %q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
		}
	}
	c.changes()
}

// What a person types is shortened only when no stack has that exact name;
// after "--" it is the exact name.
func TestTypedStackNames(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events")
	notify := fmt.Sprintf("  notify {\n    on_failure = [\"sh\", \"-c\", \"echo $BACKUP_STACK >> '%s'\"]\n  }\n", out)
	c := newCLI(t, "", map[string]string{
		"x":       "stack \"x\" {\n  jobs = [\"j\"]\n" + notify + "}\n",
		"x-stack": "stack \"x-stack\" {\n  jobs = [\"j\"]\n" + notify + "}\n",
		"y":       "stack \"y\" {\n  jobs = [\"j\"]\n" + notify + "}\n",
	})
	cases := []struct {
		args []string
		want string // the stack the command worked on, "" = refused
	}{
		{[]string{"notify-test", "x-stack"}, "x-stack"},   // the exact name wins
		{[]string{"notify-test", "x-stack.service"}, "x"}, // x's unit name
		{[]string{"notify-test", "x-stack-stack.service"}, "x-stack"},
		{[]string{"notify-test", "backup@x-stack.service"}, "x-stack"},
		{[]string{"notify-test", "y-stack"}, "y"}, // no stack y-stack: y's unit
		{[]string{"notify-test", "y-stack.service"}, "y"},
		{[]string{"notify-test", " y "}, "y"},
		{[]string{"notify-test", "--", "y-stack"}, ""}, // after --: exact, and there is no y-stack
		{[]string{"notify-test", "--", "x-stack"}, "x-stack"},
		{[]string{"notify-test", "z-stack"}, ""},
	}
	// run, typed by a person (no INVOCATION_ID: it refuses, naming the unit
	// to start), and from the unit, after "--".
	for args, want := range map[string]string{"run y-stack": "backup@y.service", "run -- y-stack": "backup@y-stack.service",
		"run x-stack": "backup@x-stack.service", "run x-stack.service": "backup@x.service"} {
		code, _, errs := c.run(strings.Fields(args)...)
		if code != exitcode.Usage || !strings.Contains(errs, "systemctl --user start "+want) {
			t.Errorf("%s: exit %d, want a usage error naming %s: %s", args, code, want, errs)
		}
	}
	for _, tc := range cases {
		before := len(lines(t, out))
		code, stdout, errs := c.run(tc.args...)
		got := lines(t, out)
		switch {
		case tc.want == "" && code != exitcode.Usage:
			t.Errorf("%q: exit %d, want %d: %s %s", tc.args, code, exitcode.Usage, stdout, errs)
		case tc.want == "" && len(got) != before:
			t.Errorf("%q notified %q", tc.args, got[before:])
		case tc.want != "" && (code != 0 || len(got) != before+1 || got[before] != tc.want):
			t.Errorf("%q: exit %d, notified %q, want stack %s: %s %s", tc.args, code, got[before:], tc.want, stdout, errs)
		}
	}
}
