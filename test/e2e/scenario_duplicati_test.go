package e2e

// The Duplicati client against the simulator's version profiles, which behave like the
// real server: a stop or abort of a queued task is a silent no-op, an abort of a running
// task lands late (and is lost in the task's first moments), task IDs restart at 2 after a
// restart, the exec route reads results from `list-backups --json` metadata, and 2.3.1.0's
// util refuses a data folder it does not own. Each scenario runs the real generator output
// under the test's own systemd --user manager with a real podman-compose stack, and checks
// the manager (systemctl show), podman and what the simulator saw (GET /sim/events), not
// only what the helper says.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dupEndClaims are words with which a log line says that our task has ended (or was
// aborted). None may be written while Duplicati still shows the task queued.
var dupEndClaims = regexp.MustCompile(`(?i)aborted|task [0-9]+ has ended|ended after the abort|gone after the abort|no longer queued|it ended there`)

// TestDuplicatiStopWhileQueued: REST route, profile 2.3.1.0. Between the gate and `run`, a
// pre_backup hook makes Duplicati busy with a task of another backup (POST /sim/hold), so
// our task is queued; then `systemctl --user stop backup@S`. Duplicati ignores an abort of a
// queued task, so the helper must keep following it:
//
//   - abort-lands: the hold lasts 7 s; the abort is re-sent once our task runs and lands.
//     Nothing in the log claims the task ended while the sim shows it queued; the sim's
//     event of our task ends Aborted before the helper exits and before the stack is
//     restored.
//   - still-held: the hold lasts 45 s, far beyond the stop budget (a drop-in sets
//     TimeoutStopSec=20s, so the helper follows the task for 20 s - 15 s = 5 s): the run
//     exits 12 and says Duplicati still holds the task and may back up the live stack.
//
// Both times the stack ends up running and the hold unit inactive.
func TestDuplicatiStopWhileQueued(t *testing.T) {
	t.Parallel()
	t.Run("abort-lands", func(t *testing.T) { dupStopWhileQueued(t, false) })
	t.Run("still-held", func(t *testing.T) { dupStopWhileQueued(t, true) })
}

func dupStopWhileQueued(t *testing.T, stillHeld bool) {
	holdFor, dropIn, base := 7*time.Second, "", "dsq"
	if stillHeld {
		// The generator's TimeoutStopSec= is stop_timeout + 3 x start_timeout + 5 min
		// (units.Timeouts, Margin): no stack file makes it small. A user's drop-in does.
		holdFor, dropIn, base = 45*time.Second, "[Service]\nTimeoutStopSec=20s\n", "dsh"
	}
	r := newDupRig(t, base, dupRigOpts{
		Route: "api", Version: "2.3.1.0", Job: "20s:Success",
		Others: []string{"2=other-" + base + ":1s:Success"},
		Extra:  func(s *sim) string { return dupHoldHook(s, "2", holdFor) },
		DropIn: dropIn,
	})
	e := r.e
	if stillHeld {
		if v := e.show(r.unit, "TimeoutStopUSec")["TimeoutStopUSec"]; v != "20s" {
			t.Fatalf("%s TimeoutStopUSec = %q, want 20s from the drop-in: the scenario proves nothing", r.unit, v)
		}
	}
	w := e.dupWatchLog()
	since := time.Now()
	if out, err := e.systemctlTimeout(30*time.Second, "start", "--no-block", r.unit); err != nil {
		t.Fatalf("start --no-block %s: %v: %s", r.unit, err, oneLine(out))
	}
	holdEv := r.s.dupWait("the hold (a Verify of backup 2) to run", func(ev dupEvent) bool {
		return ev.Operation == "Verify" && ev.BackupID == "2" && !ev.Queued.Before(since) && !ev.Started.IsZero()
	})
	ours := r.s.dupWait("our Backup task to be queued", func(ev dupEvent) bool {
		return ev.Operation == "Backup" && ev.BackupID == "1" && !ev.Queued.Before(since)
	})
	if !ours.Started.IsZero() {
		t.Fatalf("our task %s started at once; the hold %s did not hold the queue: the scenario proves nothing", ours, holdEv)
	}
	// Let the helper see the task queued (it polls at least every 500 ms).
	time.Sleep(700 * time.Millisecond)
	if ev, _ := r.s.dupFind(func(ev dupEvent) bool { return ev.TaskID == ours.TaskID && ev.Boot == ours.Boot }); !ev.Started.IsZero() {
		t.Fatalf("our task %s started before the stop: the scenario proves nothing", ev)
	}
	if st := e.show(r.unit, "ActiveState")["ActiveState"]; st != "activating" {
		t.Fatalf("%s is %s while our task is queued, want activating; units.log: %s", r.unit, st, e.tail("units.log"))
	}
	stopAt := time.Now()
	if out, err := e.systemctlTimeout(30*time.Second, "stop", "--no-block", r.unit); err != nil {
		t.Fatalf("stop --no-block %s: %v: %s", r.unit, err, oneLine(out))
	}
	p := r.settle()
	settledAt := time.Now()
	lines := w.stop()
	ts := e.showTimes(r.unit, "ExecMainExitTimestamp", "InactiveEnterTimestamp")
	exitAt := ts["ExecMainExitTimestamp"]
	upAt := e.showTimes(r.st.Unit, "ActiveEnterTimestamp")["ActiveEnterTimestamp"]
	ev, _ := r.s.dupFind(func(ev dupEvent) bool { return ev.TaskID == ours.TaskID && ev.Boot == ours.Boot })
	holdNow, _ := r.s.dupFind(func(x dupEvent) bool { return x.TaskID == holdEv.TaskID && x.Boot == holdEv.Boot })
	t.Logf("%s after the stop: %v; run exited %s after the stop; stack active again at %s (%s after the stop)",
		r.unit, p, dupMs(exitAt.Sub(stopAt)), upAt.Format("15:04:05.000"), dupMs(upAt.Sub(stopAt)))
	t.Logf("sim: hold %s; ours %s", holdNow, ev)
	if exitAt.Before(stopAt) || upAt.Before(stopAt) {
		t.Fatalf("timestamps make no sense: stop %s, run exited %s, stack active %s", stopAt.Format("15:04:05.000"), exitAt.Format("15:04:05.000"), upAt.Format("15:04:05.000"))
	}

	// What the log said, and when it was first seen (at or after it was written).
	// Every line about S (run's, and the helper's last word), not the hook's curl output.
	var runLines []string
	for _, l := range lines {
		if !strings.Contains(l.Text, r.name) {
			continue
		}
		runLines = append(runLines, l.At.Format("15:04:05.000")+" "+l.Text)
		if c := dupEndClaims.FindString(l.Text); c != "" && (ev.Started.IsZero() || l.At.Before(ev.Started)) {
			t.Errorf("the log said %q (seen %s) while the sim showed our task %d queued (%s): %q",
				c, l.At.Format("15:04:05.000"), ev.TaskID, ev, l.Text)
		}
	}
	t.Logf("run lines after the start:\n%s", strings.Join(runLines, "\n"))
	if holdNow.Result == "Aborted" || holdNow.Result == "Stopped" {
		t.Errorf("the hold (another backup's task) %s was cancelled: the helper aborted a task that is not ours", holdNow)
	}

	h := e.faultReadHistory(r.name)
	if h == nil || h.Finished.Before(since) {
		t.Fatalf("no run history of this run: %+v; units.log: %s", h, e.tail("units.log"))
	}
	if !stillHeld {
		switch {
		case ev.Started.IsZero() || ev.Finished.IsZero():
			t.Errorf("our task %s did not start and end in the sim after the stop (the hold ended %s)", ev, holdNow.Finished.Format("15:04:05.000"))
		case ev.Result != "Aborted":
			t.Errorf("our task %s ended %q, want Aborted (the abort re-sent once it ran)", ev, ev.Result)
		}
		if !ev.Finished.IsZero() {
			if exitAt.Before(ev.Finished) {
				t.Errorf("run exited at %s, %s before Duplicati ended our task (%s): it stopped following a task still held",
					exitAt.Format("15:04:05.000"), dupMs(ev.Finished.Sub(exitAt)), ev.Finished.Format("15:04:05.000"))
			}
			if !ev.Finished.Before(upAt) {
				t.Errorf("the stack was restored at %s, before (or as) Duplicati ended our task at %s: a backup of the live stack",
					upAt.Format("15:04:05.000"), ev.Finished.Format("15:04:05.000"))
			}
			t.Logf("figures: stop → our task started %s (queued %s in all), started → ended %s, ended → run exited %s, ended → stack active %s",
				dupMs(ev.Started.Sub(stopAt)), dupMs(ev.Started.Sub(ev.Queued)), dupMs(ev.Finished.Sub(ev.Started)),
				dupMs(exitAt.Sub(ev.Finished)), dupMs(upAt.Sub(ev.Finished)))
		}
		if p["ExecMainStatus"] != "10" {
			t.Errorf("%s ExecMainStatus = %s, want 10 (interrupted, the task was aborted): %v", r.unit, p["ExecMainStatus"], p)
		}
		if h.Result == "success" && len(h.Failures) == 0 {
			t.Errorf("history %+v says success for a stopped backup", h)
		}
	} else {
		if p["ExecMainStatus"] != "12" {
			t.Errorf("%s ExecMainStatus = %s, want 12 (Duplicati still holds the task): %v", r.unit, p["ExecMainStatus"], p)
		}
		if !ev.Started.IsZero() && ev.Started.Before(exitAt) {
			t.Errorf("our task %s started before run exited at %s: the premise (still queued at the end of the stop budget) failed", ev, exitAt.Format("15:04:05.000"))
		}
		if ev.Result == "Aborted" || !ev.Finished.IsZero() {
			t.Errorf("our task %s has ended in the sim, want still queued behind the 45s hold", ev)
		}
		// 20 s stop budget less the 15 s reserve: the helper follows the task 5 s.
		if took := exitAt.Sub(stopAt); took < 4500*time.Millisecond || took > 12*time.Second {
			t.Errorf("run exited %s after the stop, want about 5s (TimeoutStopSec 20s less the 15s reserve)", dupMs(took))
		}
		wantMsg := []string{fmt.Sprintf("Duplicati still holds task %d", ours.TaskID), "may still back up the live stack"}
		log := strings.Join(runLines, "\n")
		for _, m := range wantMsg {
			if !strings.Contains(log, m) {
				t.Errorf("the run's log does not say %q:\n%s", m, log)
			}
			if !strings.Contains(h.Reason, m) {
				t.Errorf("history reason %q does not say %q", h.Reason, m)
			}
		}
		if st, raw := e.dupStatus(r.name); !strings.Contains(st.Reason, wantMsg[0]) {
			t.Errorf("status --stacks --json reason %q does not say %q: %s", st.Reason, wantMsg[0], oneLine(raw))
		}
		t.Logf("figures: stop → run exited %s, stop → stack active %s, while our task stays queued (hold ends %s)",
			dupMs(exitAt.Sub(stopAt)), dupMs(upAt.Sub(stopAt)), holdEv.Started.Add(holdFor).Format("15:04:05.000"))
	}
	t.Logf("history: result %q exit %q reason %q; settled %s after the stop", h.Result, h.ExitStatus, h.Reason, dupMs(settledAt.Sub(stopAt)))
	r.expectStackBack("after the stop")
}

// TestDuplicatiExecFatalInList: exec route through a podman container, profiles 2.3.1.0 and
// 2.2.0.3: a job that throws (Result Fatal). The unit fails with 6 and Duplicati's message
// reaches `backup-stack list` and `status --stacks --json`; the stack is back up.
func TestDuplicatiExecFatalInList(t *testing.T) {
	t.Parallel()
	r := newDupRig(t, "dxf", dupRigOpts{Route: "exec", Version: "2.3.1.0", Job: "1s:Fatal"})
	for _, v := range []string{"2.3.1.0", "2.2.0.3"} {
		t.Run(v, func(t *testing.T) {
			pt, pe := r.t, r.e.t
			r.t, r.e.t = t, t
			defer func() { r.t, r.e.t = pt, pe }()
			r.s.dupSetVersion(v)
			since := time.Now()
			out, err := r.e.systemctlTimeout(dupTimeout, "start", r.unit)
			took := time.Since(since)
			p := r.settle()
			t.Logf("systemctl --user start %s: err %v, %s, took %s; %v", r.unit, err, oneLine(out), dupMs(took), p)
			if err == nil {
				t.Errorf("systemctl --user start %s succeeded although the job ended Fatal", r.unit)
			}
			if p["ActiveState"] != "failed" || p["ExecMainStatus"] != "6" {
				t.Errorf("%s %v, want failed with ExecMainStatus=6 (Fatal); units.log: %s", r.unit, p, r.e.tail("units.log"))
			}
			var jobs []dupEvent
			for _, ev := range r.s.dupEvents() {
				if ev.Operation == "Backup" && ev.BackupID == "1" && !ev.Queued.Before(since) {
					jobs = append(jobs, ev)
				}
			}
			if len(jobs) != 1 || jobs[0].Result != "Fatal" || jobs[0].Finished.IsZero() {
				t.Errorf("sim Backup tasks of backup 1 since the start: %s, want exactly one that ended Fatal", dupFmtEvents(jobs))
			}
			h := r.expectReason([]string{"simulated fatal error"}, nil)
			if h.Finished.Before(since) {
				t.Errorf("history %+v is not of this run (started %s)", h, since.Format("15:04:05.000"))
			}
			r.expectStackBack("after the Fatal job")
		})
	}
}

// TestDuplicatiExecExistingVerify: exec route. A pre_backup hook holds a Verify task of the
// SAME backup (after the gate, with the stack down), so `run` is answered with that task.
// It must not count as a backup: the unit fails with 7 ("no backup ran"), the sim shows no
// Backup task of that backup, and the run did not end before the verify did.
func TestDuplicatiExecExistingVerify(t *testing.T) {
	t.Parallel()
	r := newDupRig(t, "dxv", dupRigOpts{
		Route: "exec", Version: "2.3.1.0", Job: "1s:Success",
		Extra: func(s *sim) string { return dupHoldHook(s, "1", 5*time.Second) },
	})
	since := time.Now()
	out, err := r.e.systemctlTimeout(dupTimeout, "start", r.unit)
	took := time.Since(since)
	p := r.settle()
	t.Logf("systemctl --user start %s: err %v, %s, took %s; %v", r.unit, err, oneLine(out), dupMs(took), p)
	if err == nil {
		t.Errorf("systemctl --user start %s succeeded although no backup ran", r.unit)
	}
	if p["ActiveState"] != "failed" || p["ExecMainStatus"] != "7" {
		t.Errorf("%s %v, want failed with ExecMainStatus=7 (outcome unknown: no backup ran); units.log: %s", r.unit, p, r.e.tail("units.log"))
	}
	var verify, backups []dupEvent
	for _, ev := range r.s.dupEvents() {
		if ev.BackupID != "1" || ev.Queued.Before(since) {
			continue
		}
		switch ev.Operation {
		case "Verify":
			verify = append(verify, ev)
		case "Backup":
			backups = append(backups, ev)
		}
	}
	t.Logf("sim tasks of backup 1 since the start: verify %s; backup %s", dupFmtEvents(verify), dupFmtEvents(backups))
	if len(verify) != 1 || verify[0].Finished.IsZero() {
		t.Fatalf("sim Verify tasks of backup 1: %s, want one finished (the hook's hold): the scenario proves nothing; units.log: %s", dupFmtEvents(verify), r.e.tail("units.log"))
	}
	if len(backups) != 0 {
		t.Errorf("the sim ran Backup tasks of backup 1: %s, want none (run was answered with the verify)", dupFmtEvents(backups))
	}
	exitAt := r.e.showTimes(r.unit, "ExecMainExitTimestamp")["ExecMainExitTimestamp"]
	if exitAt.Before(verify[0].Finished) {
		t.Errorf("run exited at %s, before the verify it waited for ended at %s", exitAt.Format("15:04:05.000"), verify[0].Finished.Format("15:04:05.000"))
	}
	t.Logf("figures: verify %s → %s, run exited %s after it ended", verify[0].Started.Format("15:04:05.000"), verify[0].Finished.Format("15:04:05.000"), dupMs(exitAt.Sub(verify[0].Finished)))
	r.expectReason([]string{"no backup ran"}, nil)
	r.expectStackBack("after the verify")
}

// TestDuplicatiDataFolderExecUser: exec route, profile 2.3.1.0, a container whose /data is
// owned by uid 911 with mode 0700. As root (podman exec's default) the util refuses it
// (exit 1, no output; with the quirk DataFolderMessage the real message): `backup-stack
// status` fails and names exec_user. With exec_user = "911" it works: idle (0), and busy (3)
// while a task runs.
func TestDuplicatiDataFolderExecUser(t *testing.T) {
	t.Parallel()
	binary(t, "backup-stack")
	binary(t, "duplicati-sim")
	e := newEnv(t)
	s := e.startSim("1=df-job:1s:Success")
	s.dupSetVersion("2.3.1.0")
	ctr := e.simContainer()
	if out, err := e.podman("exec", ctr, "sh", "-c", "mkdir -p /data && chown 911:911 /data && chmod 700 /data && stat -c '%u %a' /data"); err != nil || strings.TrimSpace(out) != "911 700" {
		t.Fatalf("making /data owned by 911, mode 0700, in %s: %v: %q", ctr, err, out)
	}
	// The premise, straight through podman: as root the util refuses the folder without a
	// word; as 911 it answers.
	if out, err := e.podman("exec", ctr, "duplicati-server-util", "status"); err == nil || !strings.Contains(err.Error(), "exit status 1") || strings.TrimSpace(out) != "" {
		t.Fatalf("podman exec %s duplicati-server-util status (as root): err %v, output %q; want exit 1 without output", ctr, err, out)
	}
	if out, err := e.podman("exec", "-u", "911", ctr, "duplicati-server-util", "status"); err != nil || !strings.Contains(out, "Server state") {
		t.Fatalf("podman exec -u 911 %s duplicati-server-util status: %v: %q; want the server state", ctr, err, out)
	}
	status := func(t *testing.T, what string) (string, int) {
		out, code, err := e.runHelper(60*time.Second, "status")
		if err != nil {
			t.Fatalf("%s: backup-stack status: %v: %s", what, err, out)
		}
		t.Logf("%s: backup-stack status: exit %d: %s", what, code, oneLine(out))
		return out, code
	}
	e.writeConfig(execConfig(ctr))
	dupPhase(e, t, "refused-silently", func(t *testing.T) {
		out, code := status(t, "as root, no message")
		if code == 0 || code == 3 {
			t.Errorf("backup-stack status exit %d, want a failure (1: cannot tell)", code)
		}
		if !strings.Contains(out, "exec_user") || !strings.Contains(out, "data folder") {
			t.Errorf("backup-stack status does not name exec_user and the data folder: %s", out)
		}
	})
	dupPhase(e, t, "refused-with-message", func(t *testing.T) {
		s.setQuirks(map[string]any{"DataFolderMessage": true})
		defer s.setQuirks(map[string]any{"DataFolderMessage": false})
		out, code := status(t, "as root, with the real message")
		if code == 0 || code == 3 {
			t.Errorf("backup-stack status exit %d, want a failure (1: cannot tell)", code)
		}
		if !strings.Contains(out, `exec_user = "911"`) {
			t.Errorf("backup-stack status does not say exec_user = \"911\" (the folder's owner): %s", out)
		}
	})
	dupPhase(e, t, "exec-user-911", func(t *testing.T) {
		e.writeConfig(strings.Replace(execConfig(ctr), "duplicati {\n", "duplicati {\n  exec_user = \"911\"\n", 1))
		out, code := status(t, "exec_user = 911, idle")
		if code != 0 || !strings.Contains(out, "idle") {
			t.Errorf("backup-stack status with exec_user = \"911\": exit %d, want 0 (idle): %s", code, out)
		}
		id := s.dupHoldID(t, "1", 20*time.Second)
		out, code = status(t, "exec_user = 911, a task running")
		if code != 3 || !strings.Contains(out, fmt.Sprintf("running task %d", id)) {
			t.Errorf("backup-stack status with exec_user = \"911\" while task %d runs: exit %d, want 3 (busy) naming the task: %s", id, code, out)
		}
	})
}

// dupPhase runs f as a subtest that shares e (e.t is the subtest's meanwhile, so that the
// helpers' Fatal ends the subtest only).
func dupPhase(e *env, t *testing.T, name string, f func(t *testing.T)) bool {
	return t.Run(name, func(t *testing.T) {
		pe := e.t
		e.t = t
		defer func() { e.t = pe }()
		f(t)
	})
}

// dupHoldID is POST /sim/hold that returns the task ID.
func (s *sim) dupHoldID(t *testing.T, backupID string, d time.Duration) int64 {
	t.Helper()
	s.hold(backupID, d)
	ev, ok := s.dupFind(func(ev dupEvent) bool {
		return ev.Operation == "Verify" && ev.BackupID == backupID && ev.Finished.IsZero()
	})
	if !ok {
		t.Fatalf("no Verify task of backup %s after POST /sim/hold: %s", backupID, dupFmtEvents(s.dupEvents()))
	}
	return ev.TaskID
}

// TestDuplicatiRestartReusedID: REST route. S's 6 s backup runs as task 2 (the first task
// of the server's life); Duplicati restarts (POST /sim/restart) and at once another backup
// (ID 2, Result Fatal, 2 s) is run through the REST API and gets task ID 2. The helper must
// not take that task's Fatal for ours: backup@S does not succeed, its reason says Duplicati
// restarted and not "simulated fatal error"; the stack is back up.
func TestDuplicatiRestartReusedID(t *testing.T) {
	t.Parallel()
	r := newDupRig(t, "drs", dupRigOpts{
		Route: "api", Version: "2.3.1.0", Job: "6s:Success",
		Others: []string{"2=other-drs:2s:Fatal"},
	})
	token := r.s.dupLogin()
	since := time.Now()
	if out, err := r.e.systemctlTimeout(30*time.Second, "start", "--no-block", r.unit); err != nil {
		t.Fatalf("start --no-block %s: %v: %s", r.unit, err, oneLine(out))
	}
	ours := r.s.dupWait("our Backup task to run", func(ev dupEvent) bool {
		return ev.Operation == "Backup" && ev.BackupID == "1" && !ev.Queued.Before(since) && !ev.Started.IsZero()
	})
	if ours.TaskID != 2 || ours.Boot != 0 {
		t.Fatalf("our task is %s, want task 2 of boot 0 (the first task of the server): the scenario proves nothing", ours)
	}
	// Let the helper follow the task running for a while.
	time.Sleep(time.Until(ours.Started.Add(1500 * time.Millisecond)))
	restartAt := time.Now()
	if _, err := r.s.do("POST", "/sim/restart", nil); err != nil {
		t.Fatal(err)
	}
	id, err := r.s.dupRun(token, "2")
	if err != nil {
		t.Fatalf("run backup 2 right after the restart: %v", err)
	}
	t.Logf("restarted Duplicati %s into our task; backup 2 got task %d %s after the restart", dupMs(restartAt.Sub(ours.Started)), id, dupMs(time.Since(restartAt)))
	if id != ours.TaskID {
		t.Fatalf("backup 2 got task %d, want our old ID %d: the scenario proves nothing", id, ours.TaskID)
	}
	if st := r.e.show(r.unit, "ActiveState")["ActiveState"]; st != "activating" {
		t.Fatalf("%s is %s right after the restart, want still activating (following its task): %s", r.unit, st, r.e.tail("units.log"))
	}
	p := r.settle()
	t.Logf("%s: %v, %s after the restart", r.unit, p, dupMs(time.Since(restartAt)))
	if p["Result"] == "success" || p["ExecMainStatus"] == "0" || p["ActiveState"] != "failed" {
		t.Errorf("%s %v, want a failed run: our task was dropped by the restart, no backup of S ran", r.unit, p)
	}
	if p["ExecMainStatus"] == "6" {
		t.Errorf("%s ExecMainStatus = 6 (Fatal): the other backup's Fatal task %d was taken for ours", r.unit, id)
	}
	evs := r.s.dupEvents()
	var oursNow, theirs dupEvent
	for _, ev := range evs {
		switch {
		case ev.TaskID == ours.TaskID && ev.Boot == ours.Boot:
			oursNow = ev
		case ev.TaskID == id && ev.Boot == ours.Boot+1 && ev.BackupID == "2":
			theirs = ev
		}
	}
	t.Logf("sim: ours %s; theirs %s", oursNow, theirs)
	if oursNow.Result != "Dropped" {
		t.Errorf("our task %s, want Dropped by the restart", oursNow)
	}
	if theirs.BackupID != "2" {
		t.Errorf("no task %d of backup 2 in the next boot: %s", id, dupFmtEvents(evs))
	}
	for _, ev := range evs {
		if ev.Operation == "Backup" && ev.BackupID == "1" && !ev.Queued.Before(since) && (ev.TaskID != oursNow.TaskID || ev.Boot != oursNow.Boot) {
			t.Errorf("another Backup task of backup 1 ran: %s", ev)
		}
	}
	r.expectReason([]string{"Duplicati restarted"}, []string{"simulated fatal error"})
	r.expectStackBack("after the restart")
}
