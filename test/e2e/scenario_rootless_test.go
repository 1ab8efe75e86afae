package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRootlessUsersIsolated: two unprivileged users, A and B, each with their own systemd
// --user manager, rootless podman and Duplicati, both running a stack of the same name. A
// backup of A's stack stops only A's stack: B's stack unit and containers keep running
// (same start times before and after), B's backup units never run, B's slot is never taken,
// B's Duplicati sees no task, and neither podman sees the other's containers.
func TestRootlessUsersIsolated(t *testing.T) {
	t.Parallel()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	a := newEnvMode(t, modeRootless)
	b := newEnvMode(t, modeRootless)
	name := "shared-" + a.id // one name for both users
	simA := a.startSim("1=" + name + "-job:6s:Success")
	simB := b.startSim("1=" + name + "-job:6s:Success")
	var stA, stB *stack
	for _, x := range []struct {
		e  *env
		s  *sim
		st **stack
	}{{a, simA, &stA}, {b, simB, &stB}} {
		x.e.writeConfig(restConfig(x.s))
		*x.st = x.e.composeStack(name)
		x.e.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [%q]\n  stop_timeout = \"30s\"\n  start_timeout = \"60s\"\n}\n", name, name+"-job"))
		x.e.daemonReload()
		x.e.basicAnchor("backup@" + name + ".service")
		if out, err := x.e.systemctl("start", (*x.st).Unit); err != nil {
			t.Fatalf("%s: start %s: %v: %s", x.e.userName(), (*x.st).Unit, err, oneLine(out))
		}
		if c := x.e.runningContainers(name); len(c) != 2 {
			t.Fatalf("%s: running containers of %s: %v, want 2", x.e.userName(), name, c)
		}
		x.e.expectRootless(name + "_app_1")
	}
	t.Logf("users %s (uid %d) and %s (uid %d), stack %s in both", a.user.name, a.user.uid, b.user.name, b.user.uid, name)

	idsA, idsB := containerIDs(a, name), containerIDs(b, name)
	for id := range idsA {
		if idsB[id] != "" {
			t.Fatalf("container %s is in both users' podman", id)
		}
	}
	bStarted := containerStarts(b, name)
	bActiveSince := b.show(stB.Unit, "ActiveEnterTimestampMonotonic")["ActiveEnterTimestampMonotonic"]
	bSlot := filepath.Join(b.run, "backup-stack", "slot")

	// A's backup, in the background; B is watched while it runs.
	rA := &basicRig{t: t, e: a, st: stA, s: simA, route: "api", job: name + "-job", backupID: "1"}
	before := rA.maxTask()
	run := rA.startBackup()
	started := rA.waitStarted(before)
	polls := 0
	for {
		select {
		case <-run.done:
		default:
			if st := b.show(stB.Unit, "ActiveState")["ActiveState"]; st != "active" {
				t.Fatalf("during A's backup (task %d), B's %s is %s", started.TaskID, stB.Unit, st)
			}
			if c := b.runningContainers(name); len(c) != 2 {
				t.Fatalf("during A's backup, B's containers: %v, want 2", c)
			}
			if _, err := os.Stat(bSlot); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("during A's backup, B's slot %s exists (%v)", bSlot, err)
			}
			for _, u := range []string{"backup@" + name + ".service", "backup-hold@" + name + ".service"} {
				if p := b.show(u, "ActiveState", "InvocationID"); p["ActiveState"] != "inactive" || p["InvocationID"] != "" {
					t.Fatalf("during A's backup, B's %s: %v, want inactive and never run", u, p)
				}
			}
			if polls == 0 {
				// A's stack is down right now (its job runs).
				if c := a.runningContainers(name); len(c) != 0 {
					t.Fatalf("A's job runs, yet A's containers %v run", c)
				}
			}
			polls++
			time.Sleep(300 * time.Millisecond)
			continue
		}
		break
	}
	run.wait(t)
	if run.err != nil {
		rA.fail("A's backup: %v: %s", run.err, oneLine(run.out))
	}
	rA.expectSucceeded("A's backup")
	rA.expectUp("A after its backup")
	if fin := rA.waitFinished(before); fin.Result != "Success" {
		t.Errorf("A's job: %+v", fin)
	}
	if ev := simB.events(); len(ev) != 0 {
		t.Errorf("B's Duplicati saw tasks: %+v", ev)
	}
	if got := containerStarts(b, name); fmt.Sprint(got) != fmt.Sprint(bStarted) {
		t.Errorf("B's containers were restarted: before %v, after %v", bStarted, got)
	}
	if got := b.show(stB.Unit, "ActiveState", "ActiveEnterTimestampMonotonic"); got["ActiveState"] != "active" || got["ActiveEnterTimestampMonotonic"] != bActiveSince {
		t.Errorf("B's %s: %v, want still active since %s", stB.Unit, got, bActiveSince)
	}
	// A's run left its history; B has none.
	if _, err := os.Stat(filepath.Join(a.home, ".local", "state", "backup-stack", "history", name+".json")); err != nil {
		t.Errorf("A's run history: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.home, ".local", "state", "backup-stack", "history", name+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("B has a run history for %s (%v)", name, err)
	}
	for id := range containerIDs(a, name) {
		if _, err := b.podman("container", "exists", id); err == nil {
			t.Errorf("B's podman sees A's container %s", id)
		}
	}
	t.Logf("B watched over %d polls during A's backup (task %d): stack active, 2 containers, no slot, backup units never ran; B's containers kept their start times %v", polls, started.TaskID, bStarted)
}

// containerIDs maps the IDs of a compose project's containers to their names.
func containerIDs(e *env, project string) map[string]string {
	e.t.Helper()
	out, err := e.podman("ps", "-a", "--filter", "label=io.podman.compose.project="+project, "--format", "{{.ID}} {{.Names}}")
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// containerStarts lists "name=StartedAt" of a project's containers, sorted by name.
func containerStarts(e *env, project string) []string {
	e.t.Helper()
	var out []string
	for _, n := range e.runningContainers(project) {
		s, err := e.podman("inspect", "--format", "{{.State.StartedAt}}", n)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, n+"="+strings.TrimSpace(s))
	}
	return out
}
