package e2e

// Issue 14, item 5: `backup-stack check` under the real manager, with real podman and the
// Duplicati simulator (REST route): a correct setup passes, and each broken piece is named
// at its file and line, with a non-zero exit.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkSetup is what the stack file and config.hcl of TestCheckLiveProblems say. The
// stack file's layout is fixed, so that each attribute has a known line (see checkStackFile).
type checkSetup struct {
	unit, job, requirePath, socket, service, hook, schedule string
	passwordFile                                            string
}

// checkStackFile renders the stack file: unit on line 2, jobs 3, require_paths 4,
// on_demand.socket 6, the hook's command 10, schedule 12.
func checkStackFile(name string, s checkSetup) string {
	return fmt.Sprintf(`stack %q {
  unit          = %q
  jobs          = [%q]
  require_paths = [%q]
  on_demand {
    socket  = %q
    service = %q
  }
  hook "pre_stop" {
    command = [%q]
  }
  schedule = %q
}
`, name, s.unit, s.job, s.requirePath, s.socket, s.service, s.hook, s.schedule)
}

func TestCheckLiveProblems(t *testing.T) {
	t.Parallel()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	e := newEnv(t)
	name := "chk-" + e.id
	job := name + "-job"
	s := e.startSim("1=" + job + ":1s:Success")
	goodConfig := restConfig(s)
	e.writeConfig(goodConfig)
	st := e.composeStack(name)
	sock, svc := name+"-od.socket", name+"-od.service"
	e.writeUserUnit(sock, fmt.Sprintf("[Unit]\nDescription=e2e on-demand socket of %s\n\n[Socket]\nListenStream=%s\n", name, filepath.Join(e.run, name+".sock")))
	e.writeUserUnit(svc, fmt.Sprintf("[Unit]\nDescription=e2e on-demand starter of %[1]s\n\n[Service]\nType=oneshot\nExecStart=systemctl --user start %[1]s\n", st.Unit))
	good := checkSetup{unit: st.Unit, job: job, requirePath: e.dir, socket: sock, service: svc,
		hook: "true", schedule: "*-*-* 03:30:00"}
	stackFile := filepath.Join(e.configDir(), "stacks", name+".hcl")
	cfgFile := filepath.Join(e.configDir(), "config.hcl")
	e.writeStack(name, checkStackFile(name, good))
	e.daemonReload()
	if out, err := e.systemctl("start", st.Unit); err != nil {
		t.Fatalf("start %s: %v: %s; stack log: %s", st.Unit, err, oneLine(out), e.tail("stack-"+name+".log"))
	}

	envOut, err := e.systemctl("show-environment")
	if err != nil {
		t.Fatalf("show-environment: %v: %s", err, oneLine(envOut))
	}
	managerPath := ""
	for _, kv := range strings.Split(envOut, "\n") {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			managerPath = v
		}
	}
	if managerPath == "" || managerPath == e.path {
		t.Fatalf("the manager's PATH is %q, the helper's %q: the hook check would not tell them apart", managerPath, e.path)
	}

	check := func() (string, int) {
		t.Helper()
		out, code, err := e.runHelper(2*time.Minute, "check")
		if err != nil {
			t.Fatalf("check: %v: %s", err, out)
		}
		return out, code
	}

	start := time.Now()
	out, code := check()
	t.Logf("timing: check of a good setup took %s; output:\n%s", time.Since(start).Round(time.Millisecond), out)
	if code != 0 || !strings.Contains(out, "OK: 1 stack(s) ready for backup: "+name) || !strings.Contains(out, "reachable (REST route, "+s.URL) {
		t.Fatalf("good setup: exit %d, want 0 and an OK summary:\n%s", code, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// The test's manager has no logind to ask about lingering: a warning, not a failure.
		if !strings.HasPrefix(line, "Duplicati") && !strings.HasPrefix(line, "OK:") && !strings.Contains(line, "warning: cannot tell whether lingering is on") {
			t.Errorf("good setup: unexpected line %q", line)
		}
	}

	for _, tc := range []struct {
		name   string
		change func(s *checkSetup)
		file   string // where the problem is
		line   int
		holds  string
	}{
		{"unit name typo", func(s *checkSetup) { s.unit = name + "-stak.service" }, stackFile, 2,
			"the user manager has no unit " + name + "-stak.service (unit)"},
		{"missing on-demand socket", func(s *checkSetup) { s.socket = name + "-gone.socket" }, stackFile, 6,
			"the user manager has no unit " + name + "-gone.socket (on_demand.socket)"},
		{"unknown Duplicati job", func(s *checkSetup) { s.job = "no-such-job" }, stackFile, 3,
			`Duplicati has no backup "no-such-job" (it has: ` + job + " (ID 1))"},
		{"hook program not on PATH", func(s *checkSetup) { s.hook = "no-such-hook-program" }, stackFile, 10,
			// The manager's own PATH (which the helper's differs from here), not the shell's.
			`program "no-such-hook-program" is not on the units' PATH (` + managerPath + ")"},
		{"missing require_paths entry", func(s *checkSetup) { s.requirePath = filepath.Join(e.dir, "no-disk") }, stackFile, 4,
			"require_paths[0] " + filepath.Join(e.dir, "no-disk") + " does not exist"},
		{"invalid schedule", func(s *checkSetup) { s.schedule = "daily at 3" }, stackFile, 12,
			`Invalid schedule; schedule "daily at 3" is not systemd calendar syntax`},
		{"missing password_file", func(s *checkSetup) { s.passwordFile = filepath.Join(e.dir, "no-password") }, cfgFile, 3,
			"password_file: open " + filepath.Join(e.dir, "no-password") + ": no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			tc.change(&bad)
			e.writeStack(name, checkStackFile(name, bad))
			if bad.passwordFile != "" {
				e.writeConfig(fmt.Sprintf("duplicati {\n  url = %q\n  password_file = %q\n}\n", s.URL, bad.passwordFile))
			}
			defer func() {
				e.writeStack(name, checkStackFile(name, good))
				e.writeConfig(goodConfig)
			}()
			out, code := check()
			t.Logf("exit %d:\n%s", code, out)
			want := fmt.Sprintf("%s:%d:", tc.file, tc.line)
			var hit []string
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, want) && strings.Contains(line, tc.holds) {
					hit = append(hit, line)
				}
			}
			if code == 0 || len(hit) != 1 || strings.Contains(out, "OK:") {
				t.Errorf("exit %d (want non-zero), %d line(s) at %s holding %q (want 1):\n%s", code, len(hit), want, tc.holds, out)
			}
			if tc.file == stackFile && !strings.Contains(hit0(hit), "stack "+name+": ") {
				t.Errorf("the line does not name the stack: %q", hit0(hit))
			}
		})
	}

	// Everything put back: check passes again.
	if out, code := check(); code != 0 {
		t.Errorf("restored setup: exit %d:\n%s", code, out)
	}
}

func hit0(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}
