package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A daemon-reload runs the generator, but the manager starts a timer that a
// generator newly wanted only at manager start. `backup-stack reload` closes
// that gap: new timers start, changed schedules are re-armed, removed
// stacks' timers stop.
func TestReloadAppliesSchedules(t *testing.T) {
	t.Parallel()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	e := newEnv(t)
	name := "rl-" + e.id
	timer := "backup@" + name + ".timer"
	stack := func(schedule string) {
		e.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [\"x\"]\n  schedule = %q\n}\n", name, schedule))
	}
	stack("*-*-* 03:30:00")
	e.daemonReload()
	before := e.show(timer, "ActiveState", "LoadState")
	t.Logf("after a plain daemon-reload: %s is %s/%s", timer, before["LoadState"], before["ActiveState"])

	reload := func() {
		t.Helper()
		out, code, err := e.runHelper(60*time.Second, "reload")
		if err != nil || code != 0 {
			t.Fatalf("backup-stack reload: code %d err %v: %s", code, err, out)
		}
	}
	reload()
	if st := e.show(timer, "ActiveState")["ActiveState"]; st != "active" {
		t.Fatalf("after reload %s is %q, want active", timer, st)
	}
	next1 := e.show(timer, "NextElapseUSecRealtime")["NextElapseUSecRealtime"]

	stack("*-*-* 05:45:00")
	reload()
	next2 := e.show(timer, "NextElapseUSecRealtime")["NextElapseUSecRealtime"]
	if next1 == next2 || next2 == "" {
		t.Fatalf("a changed schedule was not re-armed: next run %q then %q", next1, next2)
	}
	t.Logf("next run %s -> %s", next1, next2)

	if err := os.Remove(filepath.Join(e.configDir(), "stacks", name+".hcl")); err != nil {
		t.Fatal(err)
	}
	reload()
	if st := e.show(timer, "ActiveState")["ActiveState"]; st == "active" {
		t.Fatalf("the timer of a removed stack still runs")
	}
}
