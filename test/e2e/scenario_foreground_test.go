package e2e

// `backup-stack backup S1 S2 --follow`, `logs S` and `explain S` under the test's real
// user manager: the foreground commands a person types, run as the test's user. There is
// no journald here, so the log lines must come from the log_dir files.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// foregroundTimeout bounds one foreground command (two backups of a 1s job, and the
// restores).
const foregroundTimeout = 3 * time.Minute

func TestForegroundBackup(t *testing.T) {
	t.Parallel()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	e := newEnv(t)
	s1, s2 := "fga-"+e.id, "fgb-"+e.id
	sim := e.startSim("1="+s1+"-job:1s:Success", "2="+s2+"-job:1s:Success")
	logDir := filepath.Join(e.dir, "backup-logs")
	e.writeConfig(restConfig(sim) + fmt.Sprintf("log_dir = %q\n", logDir))
	for _, name := range []string{s1, s2} {
		e.composeStack(name)
		e.writeStack(name, fmt.Sprintf(`stack %q {
  jobs          = [%q]
  stop_timeout  = "30s"
  start_timeout = "60s"
  wait_timeout  = "2m"
  hook "pre_stop" {
    command = ["/bin/true", "pre-stop of %s"]
  }
}
`, name, name+"-job", name))
	}
	e.daemonReload()
	for _, name := range []string{s1, s2} {
		if out, err := e.systemctl("start", name+"-stack.service"); err != nil {
			t.Fatalf("start %s-stack.service: %v: %s", name, err, oneLine(out))
		}
	}

	// Both stacks, in the order given (s2 first: not name order), followed.
	out, code, err := e.runHelper(foregroundTimeout, "backup", s2, s1, "--follow")
	t.Logf("backup %s %s --follow: exit %d\n%s", s2, s1, code, out)
	if err != nil || code != 0 {
		t.Fatalf("backup --follow: exit %d, %v", code, err)
	}
	inOrder(t, out,
		"(log lines of "+s2+" from "+logDir+")", "gate "+s2, "pre_stop "+s2+": pre_stop hook", "run "+s2, "restore", s2+": backup succeeded",
		"(log lines of "+s1+" from "+logDir+")", "gate "+s1, "run "+s1, s1+": backup succeeded")
	for _, name := range []string{s1, s2} {
		p := e.show("backup@"+name+".service", "ActiveState", "Result")
		if p["ActiveState"] != "inactive" || p["Result"] != "success" {
			t.Errorf("backup@%s.service %v after the command, want inactive and success", name, p)
		}
		if got := e.runningContainers(name); len(got) != 2 {
			t.Errorf("stack %s: running containers %v after its backup, want both back", name, got)
		}
	}

	// logs: this run's lines, from the log_dir files (the journal has none).
	out, code, err = e.runHelper(time.Minute, "logs", s1)
	if err != nil || code != 0 {
		t.Fatalf("logs %s: exit %d, %v: %s", s1, code, err, out)
	}
	inOrder(t, out, "showing the log_dir files", "gate "+s1, "run "+s1, s1+"-job")
	if strings.Contains(out, "gate "+s2) {
		t.Errorf("logs %s shows lines of %s:\n%s", s1, s2, out)
	}

	// explain: the jobs, the hooks and the units, and nothing started.
	before := e.show("backup@"+s1+".service", "InvocationID")["InvocationID"]
	out, code, err = e.runHelper(time.Minute, "explain", s1)
	if err != nil || code != 0 {
		t.Fatalf("explain %s: exit %d, %v: %s", s1, code, err, out)
	}
	inOrder(t, out, "Stack "+s1, `hook pre_stop 1: "/bin/true" "pre-stop of `+s1+`"`, "backup-hold@"+s1+".service",
		`Duplicati backup "`+s1+`-job"`, "Units:", "backup@"+s1+".service", "loaded from:")
	if after := e.show("backup@"+s1+".service", "InvocationID")["InvocationID"]; after != before {
		t.Errorf("explain started backup@%s.service (InvocationID %q -> %q)", s1, before, after)
	}

	// A failing job: the command exits with the unit's status (5: Error).
	body, _ := json.Marshal(map[string]string{"ID": "2", "Name": s2 + "-job", "Duration": "1s", "Result": "Error"})
	if _, err := sim.do("POST", "/sim/backups", body); err != nil {
		t.Fatal(err)
	}
	out, code, err = e.runHelper(foregroundTimeout, "backup", s2)
	t.Logf("backup %s (job fails): exit %d\n%s", s2, code, out)
	if err != nil || code != 5 {
		t.Fatalf("backup %s with a failing job: exit %d, %v; want 5", s2, code, err)
	}
	inOrder(t, out, s2+": backup failed", "exit status 5")
	if strings.Contains(out, "gate "+s2) {
		t.Errorf("without --follow the log lines are printed:\n%s", out)
	}
}

// TestForegroundCtrlC: a Ctrl-C without a terminal (stdin is not a tty here) only stops
// following: the command says so and exits 10, and the backup goes on in the manager to
// its end.
func TestForegroundCtrlC(t *testing.T) {
	t.Parallel()
	binary(t, "backup-generator")
	bin := binary(t, "backup-stack")
	e := newEnv(t)
	name := "fgc-" + e.id
	sim := e.startSim("1=" + name + "-job:8s:Success")
	e.writeConfig(restConfig(sim) + fmt.Sprintf("log_dir = %q\n", filepath.Join(e.dir, "backup-logs")))
	e.composeStack(name)
	e.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [%q]\n  stop_timeout = \"30s\"\n  start_timeout = \"60s\"\n}\n", name, name+"-job"))
	e.daemonReload()
	if out, err := e.systemctl("start", name+"-stack.service"); err != nil {
		t.Fatalf("start %s-stack.service: %v: %s", name, err, oneLine(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), foregroundTimeout)
	defer cancel()
	cmd := e.command(ctx, bin, "backup", name, "--follow")
	cmd.Env = e.userEnv()
	cmd.WaitDelay = 5 * time.Second
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the job to run", basicEventTimeout, 100*time.Millisecond, func() bool {
		return strings.Contains(out.String(), "task") && strings.Contains(out.String(), "running")
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	t.Logf("backup %s --follow, Ctrl-C mid-job: exit %d (%v)\n%s", name, code, err, out.String())
	if code != 10 {
		t.Errorf("exit %d after Ctrl-C without a terminal, want 10", code)
	}
	inOrder(t, out.String(), "stopped following backup@"+name+".service; the backup goes on")
	unit := "backup@" + name + ".service"
	if p := e.show(unit, "ActiveState"); p["ActiveState"] != "activating" && p["ActiveState"] != "deactivating" {
		t.Errorf("%s %v right after the Ctrl-C, want it still running", unit, p)
	}
	e.waitFor(unit+" to end", basicBackupTimeout, 200*time.Millisecond, func() bool {
		p := e.show(unit, "ActiveState", "Job")
		return p["ActiveState"] == "inactive" || p["ActiveState"] == "failed"
	})
	if p := e.show(unit, "Result"); p["Result"] != "success" {
		t.Errorf("%s %v after following stopped, want its backup to have gone on to success", unit, p)
	}
}

// lockedBuffer is an output buffer read while the command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// inOrder fails unless every item occurs in out, each after the one before.
func inOrder(t *testing.T, out string, items ...string) {
	t.Helper()
	rest := out
	for _, it := range items {
		i := strings.Index(rest, it)
		if i < 0 {
			t.Errorf("output lacks %q (after the items before it):\n%s", it, out)
			return
		}
		rest = rest[i+len(it):]
	}
}
