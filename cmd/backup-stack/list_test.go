package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/backup-stack/backup-stack/internal/orchestrate"
)

var listStacks = map[string]string{
	"alpha": "stack \"alpha\" {\n  jobs = [\"alpha\"]\n  schedule = \"*-*-* 03:30:00\"\n}\n",
	"beta":  "stack \"beta\" {\n  jobs = [\"beta\", \"beta-db\"]\n}\n",
	"gamma": "stack \"gamma\" {\n  jobs = [\"gamma\"]\n}\n",
}

// TestListLiveStates: a running backup unit's StatusText makes the stack
// waiting or running, with the text in the table and the JSON; status
// --stacks prints the same as list.
func TestListLiveStates(t *testing.T) {
	c := newCLI(t, "", listStacks)
	t.Setenv("NO_COLOR", "")
	t.Setenv("COLUMNS", "")
	c.mgr.Set("active", "backup@alpha.service").
		SetProp("backup@alpha.service", "StatusText", "waiting for the backup slot (held by beta)").
		SetProp("backup@alpha.timer", "NextElapseUSecRealtime", time.Now().Add(3*time.Hour).Format("Mon 2006-01-02 15:04:05 MST"))
	c.mgr.Set("activating", "backup@beta.service").Set("active", "backup-hold@beta.service").
		SetProp("backup@beta.service", "StatusText", `job 1 of 2 "beta": 42 %, 1.2 GiB of 2.9 GiB`)
	fin := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if err := (&orchestrate.History{Stack: "gamma", Result: "exit-code", Reason: "job \"gamma\": disk full",
		Gate: fin.Add(-time.Minute), Finished: fin}).Save(c.stateDir()); err != nil {
		t.Fatal(err)
	}

	out, _ := c.must(0, "list", "--json")
	var rows []stackStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	want := []struct{ stack, state, now, text string }{
		{"alpha", stateWaiting, "running", "waiting for the backup slot (held by beta)"},
		{"beta", stateRunning, "running", `job 1 of 2 "beta": 42 %, 1.2 GiB of 2.9 GiB`},
		{"gamma", stateIdle, "idle", ""},
	}
	for i, w := range want {
		r := rows[i]
		if r.Stack != w.stack || r.State != w.state || r.Now != w.now || r.StatusText != w.text {
			t.Errorf("row %d: %+v, want stack %s state %s now %s text %q", i, r, w.stack, w.state, w.now, w.text)
		}
	}
	if rows[0].NextRunAt == nil || rows[0].NextRun == "" || rows[0].Schedule == "" || rows[0].Unit != "alpha-stack.service" {
		t.Errorf("alpha: next run %v %q, schedule %q, unit %q", rows[0].NextRunAt, rows[0].NextRun, rows[0].Schedule, rows[0].Unit)
	}
	if !rows[1].Held || strings.Join(rows[1].Jobs, ",") != "beta,beta-db" {
		t.Errorf("beta: %+v", rows[1])
	}
	if rows[2].LastResult != "exit-code" || rows[2].LastRun == nil || rows[2].Duration != 60 {
		t.Errorf("gamma: %+v", rows[2])
	}
	if same, _ := c.must(0, "status", "--stacks", "--json"); same != out {
		t.Errorf("status --stacks --json differs from list --json:\n%s\n%s", same, out)
	}

	table, _ := c.must(0, "list")
	if same, _ := c.must(0, "status", "--stacks"); same != table {
		t.Errorf("status --stacks differs from list:\n%s\n%s", same, table)
	}
	for _, w := range []string{"waiting for the backup slot (held by beta)", "in 3 h", "2 h ago", "exit-code", "job \"gamma\": disk full", "1m00s"} {
		if !strings.Contains(table, w) {
			t.Errorf("list lacks %q:\n%s", w, table)
		}
	}
	if strings.Contains(table, "\x1b[") {
		t.Errorf("list to a pipe is coloured:\n%q", table)
	}

	t.Setenv("COLUMNS", "80")
	narrow, _ := c.must(0, "list")
	for _, l := range strings.Split(strings.TrimSpace(narrow), "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("COLUMNS=80: line of %d columns: %q", n, l)
		}
	}
	if !strings.Contains(narrow, "waiting") || !strings.Contains(narrow, "…") {
		t.Errorf("COLUMNS=80: want the state and a cut status text:\n%s", narrow)
	}
}

func TestListColorFlag(t *testing.T) {
	c := newCLI(t, "", listStacks)
	t.Setenv("COLUMNS", "100")
	cases := []struct {
		args    []string
		noColor string
		want    bool
	}{
		{[]string{"list"}, "", false}, // not a terminal
		{[]string{"list", "--color=always"}, "", true},
		{[]string{"list", "--color=always"}, "1", true}, // the flag beats NO_COLOR
		{[]string{"list", "--color=never"}, "", false},
		{[]string{"list", "--color", "auto"}, "1", false},
	}
	for _, tc := range cases {
		t.Setenv("NO_COLOR", tc.noColor)
		out, _ := c.must(0, tc.args...)
		if got := strings.Contains(out, "\x1b["); got != tc.want {
			t.Errorf("%v NO_COLOR=%q: coloured %v, want %v:\n%q", tc.args, tc.noColor, got, tc.want, out)
		}
	}
	if code, _, errs := c.run("list", "--color=sometimes"); code != 2 || !strings.Contains(errs, "--color") {
		t.Errorf("--color=sometimes: exit %d, %s", code, errs)
	}
}

func TestListNamesAndUnits(t *testing.T) {
	c := newCLI(t, "", listStacks)
	if out, _ := c.must(0, "list", "--names"); out != "alpha\nbeta\ngamma\n" {
		t.Errorf("list --names:\n%s", out)
	}
	if out, _ := c.must(0, "list", "--units"); out != "backup@alpha.service\nbackup@beta.service\nbackup@gamma.service\n" {
		t.Errorf("list --units:\n%s", out)
	}
	if out, _ := c.must(0, "list", "--help"); strings.Contains(out, "--names") {
		t.Errorf("list --help shows the hidden --names:\n%s", out)
	}
}

// stepCommands are the unit steps --help leaves out.
var stepCommands = []string{"gate", "hook", "hold", "held", "wait-stopped", "finish", "notify"}

func TestHelpHidesSteps(t *testing.T) {
	c := newCLI(t, "", nil)
	out, _ := c.must(0, "--help")
	for _, s := range stepCommands {
		if regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(s) + `( |$)`).MatchString(out) {
			t.Errorf("--help lists the step %s:\n%s", s, out)
		}
	}
	for _, s := range []string{"recover", "list", "completion", "man"} {
		if !regexp.MustCompile(`(?m)^\s+` + s + `( |$)`).MatchString(out) {
			t.Errorf("--help does not list %s:\n%s", s, out)
		}
	}
	for _, s := range stepCommands {
		out, _ := c.must(0, s, "--help")
		if !strings.Contains(out, "Usage: backup-stack "+s) {
			t.Errorf("%s --help:\n%s", s, out)
		}
	}
}

// TestVersionFlag: --version names the program and a version (the text is
// internal/buildinfo's).
func TestVersionFlag(t *testing.T) {
	c := newCLI(t, "", nil)
	out, _ := c.must(0, "--version")
	if !regexp.MustCompile(`^backup-stack \S+( \([^\n]*\))?\n$`).MatchString(out) {
		t.Errorf("--version: %q", out)
	}
}
