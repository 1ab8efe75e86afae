package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestHarnessSim checks the simulator plumbing: the sim serves on loopback, a real podman
// container holds its duplicati-server-util stand-in, `podman exec ... status` and `run`
// reach the sim, and the control endpoints answer.
func TestHarnessSim(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	s := env.startSim("1=smoke:1s:Success")
	start := time.Now()
	name := env.simContainer()
	t.Logf("timing: sim container up %s (%s, sim at %s)", time.Since(start).Round(time.Millisecond), name, s.URL)

	start = time.Now()
	out, err := env.podman("exec", name, "duplicati-server-util", "status")
	t.Logf("timing: podman exec status %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("exec status: %v", err)
	}
	if !strings.Contains(out, "Server state: Running") || !strings.Contains(out, "Active task: None") {
		t.Fatalf("status output:\n%s", out)
	}
	if out, err := env.podman("exec", name, "duplicati-server-util", "run", "1"); err != nil {
		t.Fatalf("exec run 1: %v\n%s", err, out)
	}
	env.waitFor("backup 1 to finish in the sim", 30*time.Second, 200*time.Millisecond, func() bool {
		for _, ev := range s.events() {
			if ev.BackupID == "1" && ev.Operation == "Backup" && !ev.Finished.IsZero() {
				t.Logf("event: %+v", ev)
				return ev.Result == "Success"
			}
		}
		return false
	})
	s.hold("1", 3*time.Second)
	out, err = env.podman("exec", name, "duplicati-server-util", "status")
	if err != nil || !strings.Contains(out, "BackupId = 1") {
		t.Fatalf("during a hold, status: %v\n%s", err, out)
	}
	s.setQuirks(map[string]any{"Paused": true})
	out, err = env.podman("exec", name, "duplicati-server-util", "status")
	if err != nil || !strings.Contains(out, "Server state: Paused") {
		t.Fatalf("after quirk Paused, status: %v\n%s", err, out)
	}
}
