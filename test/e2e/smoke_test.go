package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHarnessSmoke checks the harness itself: a manager starts, a compose stack unit brings
// two labelled containers up and stops them, the generator (when built) is run on
// daemon-reload, and the manager exits cleanly.
func TestHarnessSmoke(t *testing.T) {
	t.Parallel()
	forModes(t, testHarnessSmoke)
}

func testHarnessSmoke(t *testing.T, m mode) {
	env := newEnvMode(t, m)
	name := "smoke-" + env.id
	st := env.composeStack(name)
	env.daemonReload()

	start := time.Now()
	if out, err := env.systemctl("start", st.Unit); err != nil {
		t.Fatalf("start %s: %v: %s; stack log: %s", st.Unit, err, out, env.tail("stack-"+name+".log"))
	}
	t.Logf("timing: compose up (systemctl start %s) %s", st.Unit, time.Since(start).Round(time.Millisecond))
	if got := env.show(st.Unit, "ActiveState")["ActiveState"]; got != "active" {
		t.Fatalf("%s ActiveState = %q, want active", st.Unit, got)
	}
	running := env.runningContainers(name)
	if len(running) != 2 {
		t.Fatalf("running containers of project smoke = %v, want 2", running)
	}
	t.Logf("running: %v", running)
	if m == modeRootless {
		env.expectRootless(name + "_app_1")
	}

	start = time.Now()
	if out, err := env.systemctl("stop", st.Unit); err != nil {
		t.Fatalf("stop %s: %v: %s", st.Unit, err, out)
	}
	t.Logf("timing: compose stop (systemctl stop %s) %s", st.Unit, time.Since(start).Round(time.Millisecond))
	if got := env.runningContainers(name); len(got) != 0 {
		t.Fatalf("after stop, running containers = %v, want none", got)
	}
	if got := env.show(st.Unit, "ActiveState")["ActiveState"]; got != "inactive" {
		t.Errorf("%s ActiveState = %q after stop, want inactive", st.Unit, got)
	}

	if haveBinary("backup-generator") {
		env.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [\"smoke\"]\n}\n", name))
		env.daemonReload()
		p := env.show("backup@"+name+".service", "LoadState", "FragmentPath", "DropInPaths")
		if p["LoadState"] != "loaded" {
			out, _ := env.systemctl("cat", "backup@"+name+".service")
			t.Errorf("backup@smoke.service LoadState = %q, want loaded (%v); cat: %s; manager.log: %s", p["LoadState"], p, out, env.tail("manager.log"))
		} else {
			t.Logf("generated: %s drop-ins %s", p["FragmentPath"], p["DropInPaths"])
			if !strings.Contains(p["DropInPaths"], "90-e2e-log.conf") {
				t.Errorf("test log drop-in not applied to backup@smoke.service: %q", p["DropInPaths"])
			}
		}
	} else {
		t.Logf("backup-generator not built yet: generated-unit check skipped (%s)", suite.buildErr["backup-generator"])
	}

	if err := env.stopManager(); err != nil {
		t.Errorf("manager did not exit cleanly: %v; manager.log: %s", err, env.tail("manager.log"))
	}
}
