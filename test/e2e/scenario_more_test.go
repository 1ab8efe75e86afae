package e2e

// Issue 4, scenarios 8–13: several stacks, a busy or unreachable Duplicati, hooks, timers
// and a broken stack file, under the real manager with real podman-compose stacks. The
// Duplicati simulator is reached over loopback (REST route) unless a scenario says otherwise.

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// moreSerialEnv sets up three stacks s1 < s2 < s3 (each with its own 2 s job in the sim,
// backup IDs 1, 2, 3), all running. schedule, when set, goes into every stack file.
func moreSerialEnv(t *testing.T, schedule string) (*env, *sim, []*stack, map[string]string) {
	env := newEnv(t)
	names := []string{env.moreStackName("s1"), env.moreStackName("s2"), env.moreStackName("s3")}
	var backups []string
	ids := map[string]string{}
	for i, n := range names {
		id := fmt.Sprint(i + 1)
		ids[n] = id
		backups = append(backups, fmt.Sprintf("%s=%s:2s:Success", id, n))
	}
	s := env.startSim(backups...)
	env.writeConfig(restConfig(s))
	for _, n := range names {
		sched := ""
		if schedule != "" {
			sched = fmt.Sprintf("  schedule = %q\n", schedule)
		}
		env.writeStack(n, fmt.Sprintf("stack %q {\n  jobs = [%q]\n%s}\n", n, ids[n], sched))
	}
	stacks := env.moreUpStacks(names...)
	return env, s, stacks, ids
}

func moreWatchedUnits(stacks []*stack) []string {
	var u []string
	for _, s := range stacks {
		u = append(u, s.Unit, "backup-hold@"+s.Name+".service")
	}
	return u
}

// moreWaitBackupsDone waits until no job is queued in the manager and each backup unit has
// finished a run that began after since; it fails unless each ended with Result=success.
func (e *env) moreWaitBackupsDone(stacks []*stack, since time.Time, timeout time.Duration) {
	e.t.Helper()
	var last string
	done := func() bool {
		out, err := e.systemctlTimeout(10*time.Second, "list-jobs", "--no-legend")
		if err != nil || strings.TrimSpace(out) != "" && !strings.Contains(out, "No jobs") {
			last = fmt.Sprintf("jobs: %v %s", err, oneLine(out))
			return false
		}
		for _, s := range stacks {
			if h := e.moreHistory(s.Name); h == nil || h.Finished.Before(since) {
				last = fmt.Sprintf("no run of %s recorded since %s: %+v", s.Name, since.Format("15:04:05.000"), h)
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			e.t.Fatalf("backups not done after %s; last: %s", timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, s := range stacks {
		e.moreWantSuccess(s.Name, since)
	}
}

// Scenario 8a: three stacks started in one command run one after another in name order,
// and each stack's down interval holds no other stack's job.
func TestScenario8aThreeStacksOneCommand(t *testing.T) {
	t.Parallel()
	env, s, stacks, ids := moreSerialEnv(t, "")
	w := env.moreWatchUnits(moreWatchedUnits(stacks)...)
	since := time.Now()
	var args []string
	for _, st := range stacks {
		args = append(args, "backup@"+st.Name)
	}
	out, err := env.moreStart(args...)
	polled := w.stop()
	t.Logf("timing: systemctl --user start %s returned after %s", strings.Join(args, " "), time.Since(since).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("systemctl --user start %v: %v: %s; units.log: %s", args, err, out, env.tail("units.log"))
	}
	for _, st := range stacks {
		env.moreWantSuccess(st.Name, since)
		if got := env.runningContainers(st.Project); len(got) != 2 {
			t.Errorf("after the backups, project %s runs %v, want 2 containers", st.Project, got)
		}
	}
	order := env.moreSerialCheck(stacks, ids, s.moreJobs(since), polled)
	want := []string{stacks[0].Name, stacks[1].Name, stacks[2].Name}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("order = %v, want name order %v", order, want)
	}
}

// Scenario 8b: three separate --no-block starts in reverse name order, a fraction of a
// second apart: ordering cannot help (the jobs were not queued together), the gate's single
// slot must still keep the down intervals apart.
func TestScenario8bThreeStacksReverseNoBlock(t *testing.T) {
	t.Parallel()
	env, s, stacks, ids := moreSerialEnv(t, "")
	w := env.moreWatchUnits(moreWatchedUnits(stacks)...)
	since := time.Now()
	for i := len(stacks) - 1; i >= 0; i-- {
		if out, err := env.systemctlTimeout(30*time.Second, "start", "--no-block", "backup@"+stacks[i].Name); err != nil {
			t.Fatalf("start --no-block backup@%s: %v: %s", stacks[i].Name, err, out)
		}
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
	}
	env.moreWaitBackupsDone(stacks, since, moreScenarioTimeout)
	polled := w.stop()
	t.Logf("timing: all three done %s after the first start", time.Since(since).Round(time.Millisecond))
	for _, st := range stacks {
		if got := env.runningContainers(st.Project); len(got) != 2 {
			t.Errorf("after the backups, project %s runs %v, want 2 containers", st.Project, got)
		}
	}
	order := env.moreSerialCheck(stacks, ids, s.moreJobs(since), polled)
	if order[0] != stacks[2].Name {
		t.Errorf("order = %v: %s was started first (and alone) and should have gone first", order, stacks[2].Name)
	}
	if strings.Contains(env.unitLog(), "waiting for the backup slot") {
		t.Logf("units.log shows backups waiting at the gate for the slot, as designed")
	} else {
		t.Errorf("no backup waited for the slot at its gate; units.log: %s", env.tail("units.log"))
	}
	// A waiting gate names the holder and since when it holds the slot: that is when the
	// holder took it, which for the second holder is after the first one was restored.
	byName := map[string]*stack{}
	for _, st := range stacks {
		byName[st.Name] = st
	}
	waitRE := regexp.MustCompile(`waiting for the backup slot: stack "([^"]+)" is being backed up \(since ([0-9:]{8})\)`)
	for _, m := range waitRE.FindAllStringSubmatch(env.unitLog(), -1) {
		holder := m[1]
		clock, err := time.ParseInLocation(time.TimeOnly, m[2], time.Local)
		if err != nil || byName[holder] == nil {
			t.Errorf("cannot read %q: %v", m[0], err)
			continue
		}
		y, mo, d := since.Date()
		since := time.Date(y, mo, d, clock.Hour(), clock.Minute(), clock.Second(), 0, time.Local)
		hDown := env.moreStackDown(byName[holder].Unit)
		earliest := since
		for i, n := range order {
			if n == holder && i > 0 {
				earliest = env.moreStackDown(byName[order[i-1]].Unit).To
			}
		}
		if since.Add(time.Second).Before(earliest) || since.After(hDown.From) {
			t.Errorf("%q: the holder took the slot between %s and %s", m[0], earliest.Format("15:04:05.000"), hDown.From.Format("15:04:05.000"))
		}
	}
}

// Scenario 8c: the same OnCalendar schedule on three stacks: the timers fire together, the
// backups run one after another in name order with no overlap.
func TestScenario8cThreeStacksOneSchedule(t *testing.T) {
	t.Parallel()
	env, s, stacks, ids := moreSerialEnv(t, "")
	// The stacks are up; now give them one schedule a few seconds ahead.
	env.moreAccuracy()
	cal, at := moreCalendarIn(6 * time.Second)
	for _, st := range stacks {
		env.writeStack(st.Name, fmt.Sprintf("stack %q {\n  jobs = [%q]\n  schedule = %q\n}\n", st.Name, ids[st.Name], cal))
	}
	env.daemonReload()
	var timers []string
	for _, st := range stacks {
		timers = append(timers, "backup@"+st.Name+".timer")
	}
	moreEnsureTimers(env, timers)
	w := env.moreWatchUnits(moreWatchedUnits(stacks)...)
	since := time.Now()
	if time.Until(at) < time.Second {
		t.Fatalf("setup took too long: the schedule %q is already due", cal)
	}
	env.waitFor("the timers to fire", time.Until(at)+30*time.Second, 200*time.Millisecond, func() bool {
		return len(s.events()) > 0
	})
	env.moreWaitBackupsDone(stacks, since, moreScenarioTimeout)
	polled := w.stop()
	for _, tm := range timers {
		ts := env.showTimes(tm, "LastTriggerUSec")
		t.Logf("%s fired at %s (%s after %s)", tm, ts["LastTriggerUSec"].Format("15:04:05.000000"), ts["LastTriggerUSec"].Sub(at).Round(time.Millisecond), cal)
		if ts["LastTriggerUSec"].Before(at) {
			t.Errorf("%s fired before its schedule", tm)
		}
	}
	order := env.moreSerialCheck(stacks, ids, s.moreJobs(since), polled)
	want := []string{stacks[0].Name, stacks[1].Name, stacks[2].Name}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("order = %v, want name order %v (one schedule: the jobs are queued together)", order, want)
	}
}

// moreEnsureTimers makes sure the timers are active after a daemon-reload. A timer that
// the generator adds (with its timers.target.wants/ link) to a running manager is not
// started by the reload itself; `systemctl --user start timers.target` pulls it in, as a
// new login would.
func moreEnsureTimers(env *env, timers []string) {
	t := env.t
	t.Helper()
	var inactive []string
	for _, tm := range timers {
		if p := env.show(tm, "ActiveState", "LoadState"); p["ActiveState"] != "active" {
			inactive = append(inactive, fmt.Sprintf("%s(%s/%s)", tm, p["LoadState"], p["ActiveState"]))
		}
	}
	if len(inactive) == 0 {
		t.Logf("timers active right after daemon-reload")
		return
	}
	t.Logf("after daemon-reload the new timers are not active: %v; starting timers.target", inactive)
	if out, err := env.systemctl("start", "timers.target"); err != nil {
		t.Fatalf("start timers.target: %v: %s", err, out)
	}
	for _, tm := range timers {
		if p := env.show(tm, "ActiveState"); p["ActiveState"] != "active" {
			t.Fatalf("%s: %v after starting timers.target", tm, p)
		}
	}
}

// Scenario 9: Duplicati is busy with another task: the stack stays up until Duplicati is
// idle; only then is it stopped, and the backup completes.
func TestScenario9BusyDuplicati(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	name := env.moreStackName("busy")
	s := env.startSim("1=" + name + ":1s:Success")
	env.writeConfig(restConfig(s))
	env.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n}\n", name))
	st := env.moreUpStacks(name)[0]

	// The REST route, then the exec route (podman exec into a container with the stand-in).
	container := env.simContainer()
	for _, route := range []struct{ name, config string }{{"REST", restConfig(s)}, {"exec", execConfig(container)}} {
		t.Logf("---- %s route", route.name)
		env.writeConfig(route.config)
		busyBefore := strings.Count(env.unitLog(), "Duplicati is busy")
		w := env.moreWatchUnits(st.Unit, "backup-hold@"+name+".service")
		since := time.Now()
		s.hold("", 5*time.Second)
		env.waitFor("the other task to become active", 10*time.Second, 50*time.Millisecond, func() bool {
			for _, ev := range s.events() {
				if ev.Operation != "Backup" && !ev.Started.IsZero() {
					return true
				}
			}
			return false
		})
		out, err := env.moreStart("backup@" + name)
		polled := w.stop()
		if err != nil {
			t.Fatalf("%s route: start backup@%s: %v: %s; units.log: %s", route.name, name, err, out, env.tail("units.log"))
		}
		var other, own *simEvent
		for _, ev := range s.events() {
			ev := ev
			if ev.Queued.Before(since) {
				continue
			}
			if ev.Operation == "Backup" && ev.BackupID == "1" {
				own = &ev
			} else if ev.Operation != "Backup" {
				other = &ev
			}
		}
		if other == nil || other.Finished.IsZero() || own == nil || own.Finished.IsZero() {
			t.Fatalf("sim events: want the other task and our backup finished: %+v", s.events())
		}
		down := env.moreStackDown(st.Unit)
		t.Logf("%s route: other task %s; stack down %s; own job %s", route.name, moreInterval{other.Started, other.Finished}, down, moreInterval{own.Started, own.Finished})
		if !down.From.After(other.Finished) {
			t.Errorf("stack stopped at %s, before the other task finished at %s", down.From.Format("15:04:05.000"), other.Finished.Format("15:04:05.000"))
		}
		for _, c := range polled[st.Unit] {
			if c.State != "active" && c.At.Before(other.Finished) {
				t.Errorf("stack seen %s at %s while the other task ran (until %s)", c.State, c.At.Format("15:04:05.000"), other.Finished.Format("15:04:05.000"))
			}
		}
		if !own.Started.After(other.Finished) || own.Result != "Success" {
			t.Errorf("own job %+v: want started after the other task and Success", *own)
		}
		if strings.Count(env.unitLog(), "Duplicati is busy") == busyBefore {
			t.Errorf("units.log does not say the gate waited for a busy Duplicati: %s", env.tail("units.log"))
		}
		env.moreWantSuccess(name, since)
		if got := env.runningContainers(st.Project); len(got) != 2 {
			t.Errorf("after the backup, project %s runs %v", st.Project, got)
		}
	}
}

// Scenario 10: Duplicati unreachable (REST on a closed port; exec route with a container
// that does not exist) fails the unit with the gate's exit status 9, and a missing
// require_paths entry with 11; in every case the stack never went down.
func TestScenario10GateFailuresNeverStop(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	name := env.moreStackName("gate")
	s := env.startSim("1=" + name + ":1s:Success")
	stackHCL := fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n}\n", name)
	env.writeStack(name, stackHCL)
	env.writeConfig(restConfig(s))
	st := env.moreUpStacks(name)[0]
	unit := "backup@" + name + ".service"
	hold := "backup-hold@" + name + ".service"

	cases := []struct {
		what   string
		config string
		stack  string
		status string
	}{
		{"REST route, closed port", env.closedRESTConfig("http://" + moreClosedPort(t)), stackHCL, "9"},
		{"exec route, no such container", execConfig("nosuch-" + env.id), stackHCL, "9"},
		{"require_paths missing", restConfig(s),
			fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n  require_paths = [%q]\n}\n", name, env.morePath("no-such-dir")), "11"},
	}
	for _, c := range cases {
		env.writeConfig(c.config)
		env.writeStack(name, c.stack)
		env.daemonReload()
		w := env.moreWatchUnits(st.Unit, hold)
		start := time.Now()
		out, err := env.moreStart("backup@" + name)
		took := time.Since(start)
		polled := w.stop()
		if err == nil {
			t.Errorf("%s: systemctl start succeeded; want a failed unit", c.what)
		}
		p := env.show(unit, "Result", "ExecMainStatus", "ActiveState")
		status, rec := env.moreExecStatus(unit, "ExecStartPre", "gate")
		t.Logf("%s: start failed after %s (%s); %v; gate: status=%s", c.what, took.Round(time.Millisecond), oneLine(out), p, status)
		if p["Result"] != "exit-code" {
			t.Errorf("%s: Result=%q, want exit-code", c.what, p["Result"])
		}
		if status != c.status {
			t.Errorf("%s: gate exit status %q, want %s (%s)", c.what, status, c.status, rec)
		}
		// The history has no exit status here: systemd sets $EXIT_STATUS for ExecStopPost=
		// from the main process only, and a failing ExecStartPre= means it never ran.
		if h := env.moreHistory(name); h == nil || h.Finished.Before(start) || h.Result != "exit-code" {
			t.Errorf("%s: run history %+v, want result exit-code", c.what, h)
		}
		for _, ch := range polled[st.Unit] {
			if ch.State != "active" {
				t.Errorf("%s: stack unit went %s at %s: %s", c.what, ch.State, ch.At.Format("15:04:05.000"), moreFmtSamples(polled[st.Unit]))
				break
			}
		}
		for _, ch := range polled[hold] {
			if ch.State != "inactive" {
				t.Errorf("%s: %s went %s: %s", c.what, hold, ch.State, moreFmtSamples(polled[hold]))
				break
			}
		}
		if got := env.runningContainers(st.Project); len(got) != 2 {
			t.Errorf("%s: project %s runs %v", c.what, st.Project, got)
		}
	}
	for _, ev := range s.events() {
		if ev.Operation == "Backup" {
			t.Errorf("a backup ran in the sim: %+v", ev)
		}
	}
}

// Scenario 11: hooks run in the documented order, each seeing the stack in the state its
// name promises; ignore_failure works; a failing required post_start fails the unit after
// the restore; a failing required pre_stop aborts before anything is stopped.
func TestScenario11Hooks(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	name := env.moreStackName("hooks")
	s := env.startSim("1=" + name + ":1s:Success")
	env.writeConfig(restConfig(s))
	env.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n}\n", name))
	st := env.moreUpStacks(name)[0]
	unit := "backup@" + name + ".service"
	hookLog := env.morePath("hooks.log")

	stackWith := func(hooks string) string {
		return fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n%s}\n", name, hooks)
	}
	hook := func(kind string, exit int, ignore bool) string {
		h := fmt.Sprintf("  hook %q {\n    command = %s\n", kind, moreHookCmd(kind, st, hookLog, exit))
		if ignore {
			h += "    ignore_failure = true\n"
		}
		return h + "  }\n"
	}
	kinds := []string{"pre_stop", "post_stop", "pre_backup", "post_backup", "pre_start", "post_start", "verify"}

	// 1. One hook of each kind, written in reverse order in the file: the order of the run is
	// the documented one, not the file's.
	var all string
	for i := len(kinds) - 1; i >= 0; i-- {
		all += hook(kinds[i], 0, false)
	}
	env.writeStack(name, stackWith(all))
	env.daemonReload()
	if out, err := env.moreStart("backup@" + name); err != nil {
		t.Fatalf("backup with all hooks: %v: %s; units.log: %s", err, out, env.tail("units.log"))
	}
	lines := moreReadLines(t, hookLog)
	t.Logf("hooks.log:\n%s", strings.Join(lines, "\n"))
	var got []string
	seen := map[string]string{}
	for _, l := range lines {
		k := strings.Fields(l)[0]
		got = append(got, k)
		seen[k] = l
	}
	if strings.Join(got, " ") != strings.Join(kinds, " ") {
		t.Errorf("hook order = %v, want %v", got, kinds)
	}
	wantLine := map[string]*regexp.Regexp{
		"pre_stop":    regexp.MustCompile(`^pre_stop result= active=active n=2$`),
		"post_stop":   regexp.MustCompile(`^post_stop result= active=inactive n=0$`),
		"pre_backup":  regexp.MustCompile(`^pre_backup result= active=inactive n=0$`),
		"post_backup": regexp.MustCompile(`^post_backup result=success active=inactive n=0$`),
		"pre_start":   regexp.MustCompile(`^pre_start result=success active=inactive n=0$`),
		"post_start":  regexp.MustCompile(`^post_start result=success active=active n=2$`),
		"verify":      regexp.MustCompile(`^verify result=success active=active n=2$`),
	}
	for _, k := range kinds {
		if !wantLine[k].MatchString(seen[k]) {
			t.Errorf("%s hook saw %q, want %s", k, seen[k], wantLine[k])
		}
	}

	run := func(what string, hooks string) (error, time.Time, map[string][]moreSample) {
		env.writeStack(name, stackWith(hooks))
		env.daemonReload()
		w := env.moreWatchUnits(st.Unit)
		since := time.Now()
		out, err := env.moreStart("backup@" + name)
		polled := w.stop()
		t.Logf("%s: systemctl start: err=%v %s; %v", what, err, oneLine(out), env.show(unit, "Result", "ExecMainStatus"))
		if got := env.runningContainers(st.Project); len(got) != 2 {
			t.Errorf("%s: project %s runs %v after the backup, want 2", what, st.Project, got)
		}
		if p := env.show(st.Unit, "ActiveState"); p["ActiveState"] != "active" {
			t.Errorf("%s: %s is %s after the backup", what, st.Unit, p["ActiveState"])
		}
		return err, since, polled
	}

	// 2. A failing post_start with ignore_failure: the unit still succeeds.
	err, since, _ := run("post_start fails, ignore_failure", hook("post_start", 1, true))
	if err != nil {
		t.Errorf("post_start failing with ignore_failure = true: the unit failed: %v", err)
	}
	env.moreWantSuccess(name, since)

	// 3. A failing post_start without ignore_failure: the stack is restored, the unit fails
	// (finish exits non-zero).
	err, _, polled := run("post_start fails, required", hook("post_start", 1, false))
	if err == nil {
		t.Errorf("required post_start failed but the unit succeeded")
	}
	if p := env.show(unit, "Result"); p["Result"] != "exit-code" {
		t.Errorf("required post_start failed: %v, want Result=exit-code", p)
	}
	if status, rec := env.moreExecStatus(unit, "ExecStopPost", "finish"); status == "0" || status == "" {
		t.Errorf("finish status %q, want non-zero (%s)", status, rec)
	} else {
		t.Logf("finish exit status %s", status)
	}
	if d := moreDownIntervals(polled[st.Unit]); len(d) != 1 {
		t.Errorf("required post_start failed: want one down interval of the stack, saw %s", moreFmtSamples(polled[st.Unit]))
	}

	// 4. A failing pre_stop without ignore_failure: nothing is stopped, no job runs.
	err, since, polled = run("pre_stop fails, required", hook("pre_stop", 1, false))
	if err == nil {
		t.Errorf("required pre_stop failed but the unit succeeded")
	}
	if p := env.show(unit, "Result"); p["Result"] != "exit-code" {
		t.Errorf("required pre_stop failed: %v, want Result=exit-code", p)
	}
	for _, ch := range polled[st.Unit] {
		if ch.State != "active" {
			t.Errorf("required pre_stop failed, yet the stack went %s: %s", ch.State, moreFmtSamples(polled[st.Unit]))
			break
		}
	}
	for _, ev := range s.events() {
		if !ev.Queued.Before(since) {
			t.Errorf("required pre_stop failed, yet a task ran in the sim: %+v", ev)
		}
	}
}

// Scenario 12: a timer fires and the backup runs.
func TestScenario12Timer(t *testing.T) {
	t.Parallel()
	forModes(t, testScenario12Timer)
}

func testScenario12Timer(t *testing.T, m mode) {
	env := newEnvMode(t, m)
	name := env.moreStackName("timer")
	s := env.startSim("1=" + name + ":1s:Success")
	env.writeConfig(restConfig(s))
	env.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n}\n", name))
	st := env.moreUpStacks(name)[0]
	timer := "backup@" + name + ".timer"
	unit := "backup@" + name + ".service"

	env.moreAccuracy()
	cal, at := moreCalendarIn(5 * time.Second)
	env.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n  schedule = %q\n}\n", name, cal))
	env.daemonReload()
	moreEnsureTimers(env, []string{timer})
	out, err := env.systemctl("list-timers", "--all", "backup@*")
	if err != nil || !strings.Contains(out, timer) {
		t.Errorf("list-timers does not list %s: %v:\n%s", timer, err, out)
	}
	t.Logf("list-timers before it fires:\n%s", out)
	if time.Now().After(at) {
		t.Fatalf("setup took too long: %q already due", cal)
	}
	if len(s.events()) != 0 {
		t.Fatalf("a task ran before the timer fired: %+v", s.events())
	}
	env.waitFor("the timer's backup to finish in the sim", time.Until(at)+75*time.Second, 200*time.Millisecond, func() bool {
		for _, ev := range s.events() {
			if ev.Operation == "Backup" && ev.BackupID == "1" && !ev.Finished.IsZero() {
				return true
			}
		}
		return false
	})
	env.moreWaitBackupsDone([]*stack{{Name: name}}, at, 60*time.Second)
	ts := env.showTimes(timer, "LastTriggerUSec")
	ev := s.events()[0]
	t.Logf("schedule %s; timer fired at %s (+%s); job %s result %s", cal, ts["LastTriggerUSec"].Format("15:04:05.000"),
		ts["LastTriggerUSec"].Sub(at).Round(time.Millisecond), moreInterval{ev.Started, ev.Finished}, ev.Result)
	if ts["LastTriggerUSec"].Before(at) {
		t.Errorf("timer fired at %s, before %s", ts["LastTriggerUSec"], at)
	}
	if ev.Result != "Success" {
		t.Errorf("sim event %+v", ev)
	}
	env.moreWantSuccess(name, at)
	if p := env.show(unit, "Result", "TriggeredBy"); p["Result"] != "success" || !strings.Contains(p["TriggeredBy"], timer) {
		t.Errorf("%s: %v, want Result=success TriggeredBy=%s", unit, p, timer)
	}
	if got := env.runningContainers(st.Project); len(got) != 2 {
		t.Errorf("project %s runs %v after the backup", st.Project, got)
	}
}

// Scenario 13: a broken stack file next to a good one: the good stack is generated and
// backs up; the broken one is not generated; validate exits 2 with file:line:col.
func TestScenario13BrokenStackFile(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	good := env.moreStackName("good")
	broken := env.moreStackName("broken")
	s := env.startSim("1=" + good + ":1s:Success")
	env.writeConfig(restConfig(s))
	env.writeStack(good, fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n}\n", good))
	env.writeStack(broken, fmt.Sprintf("stack %q {\n  jobs = [\"1\"]\n  colour = \"blue\"\n}\n", broken))
	st := env.moreUpStacks(good)[0]

	p := env.show("backup@"+good+".service", "LoadState", "SourcePath", "DropInPaths")
	if p["LoadState"] != "loaded" || !strings.HasSuffix(p["SourcePath"], "/"+good+".hcl") {
		t.Errorf("backup@%s.service: %v; want loaded with SourcePath to its stack file", good, p)
	}
	pb := env.show("backup@"+broken+".service", "LoadState", "SourcePath", "DropInPaths")
	t.Logf("backup@%s.service: %v", broken, pb)
	if pb["SourcePath"] != "" || strings.Contains(pb["DropInPaths"], "50-stack.conf") {
		t.Errorf("backup@%s.service was generated: %v", broken, pb)
	}
	if out, err := env.moreStart("backup@" + good); err != nil {
		t.Errorf("backup of the good stack: %v: %s; units.log: %s", err, out, env.tail("units.log"))
	}
	env.moreWantSuccess(good, time.Time{})
	if evs := s.moreJobs(time.Time{}); len(evs["1"]) != 1 || evs["1"][0].Result != "Success" {
		t.Errorf("sim backups: %+v", evs)
	}
	if got := env.runningContainers(st.Project); len(got) != 2 {
		t.Errorf("project %s runs %v after the backup", st.Project, got)
	}

	out, code, err := env.runHelper(30*time.Second, "validate")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup-stack validate (exit %d):\n%s", code, out)
	if code != 2 {
		t.Errorf("validate exit %d, want 2", code)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(broken+".hcl") + `:3:[0-9]+: `).MatchString(out) {
		t.Errorf("validate output has no %s.hcl:3:col: diagnostic:\n%s", broken, out)
	}
	if strings.Contains(out, good+".hcl:") {
		t.Errorf("validate complains about the good file:\n%s", out)
	}
}

// The generated units for a stack with hooks and on_demand pass `systemd-analyze --user
// verify`, and the hold unit has Conflicts= and After= on the stack unit, socket and service.
func TestScenarioMoreVerifyUnits(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	name := env.moreStackName("verify")
	sock, svc := "od-"+name+".socket", "od-"+name+".service"
	env.writeUserUnit(sock, "[Socket]\nListenStream=%t/od-"+name+".sock\nAccept=no\n")
	env.writeUserUnit(svc, "[Service]\nExecStart=/bin/sleep 60\n")
	env.writeUserUnit(name+"-stack.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
	env.writeConfig("duplicati {\n  container = \"duplicati\"\n}\n")
	env.writeStack(name, fmt.Sprintf(`stack %q {
  jobs     = ["1", "2"]
  schedule = "*-*-* 03:30:00"
  on_demand {
    socket  = %q
    service = %q
  }
  hook "pre_stop" {
    command        = ["/bin/sh", "-c", "echo 100%% $SERVICE_RESULT"]
    ignore_failure = true
  }
  hook "post_stop"   { command = ["/bin/true"] }
  hook "pre_backup"  { command = ["/bin/true", "a b", "c\"d"] }
  hook "post_backup" { command = ["/bin/true"] }
  hook "pre_start"   { command = ["/bin/true"] }
  hook "post_start" {
    command        = ["/bin/false"]
    ignore_failure = true
  }
  hook "verify" { command = ["/bin/true"] }
}
`, name, sock, svc))
	env.daemonReload()

	units := []string{"backup@" + name + ".service", "backup-hold@" + name + ".service", "backup@" + name + ".timer"}
	for _, u := range units {
		if p := env.show(u, "LoadState", "SourcePath"); p["LoadState"] != "loaded" || p["SourcePath"] == "" {
			t.Errorf("%s: %v", u, p)
		}
	}
	hold := env.show("backup-hold@"+name+".service", "Conflicts", "After")
	t.Logf("backup-hold@%s.service: %v", name, hold)
	for _, prop := range []string{"Conflicts", "After"} {
		have := strings.Fields(hold[prop])
		for _, want := range []string{name + "-stack.service", sock, svc} {
			if !moreContains(have, want) {
				t.Errorf("backup-hold@%s.service %s=%q lacks %s", name, prop, hold[prop], want)
			}
		}
	}

	// systemd-analyze --user verify reads unit files by path; the generator's output dir is
	// $XDG_RUNTIME_DIR/systemd/generator.
	gen := env.run + "/systemd/generator/"
	files := []string{gen + "backup@" + name + ".service", gen + "backup-hold@" + name + ".service", gen + "backup@" + name + ".timer"}
	out, err := moreVerify(env, files)
	t.Logf("systemd-analyze --user verify %v: err=%v\n%s", files, err, out)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze --user verify reported something (err=%v):\n%s", err, out)
	}

	// Negative control: verify does read the drop-ins of the instance in the generator dir
	// (a bad key next to 50-stack.conf is reported). Note: systemd 252's verify checks that
	// ExecStart= programs exist, not ExecStartPre=/ExecStopPost= ones.
	bad := gen + "backup@" + name + ".service.d/51-e2e-bad.conf"
	if err := os.WriteFile(bad, []byte("[Service]\nBogusKey=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = moreVerify(env, files[:1])
	os.Remove(bad)
	t.Logf("negative control: err=%v\n%s", err, out)
	if !strings.Contains(out, "51-e2e-bad.conf:2: Unknown key 'BogusKey'") {
		t.Errorf("systemd-analyze --user verify did not see a bad drop-in next to the generated one; the check above proves nothing:\n%s", out)
	}
}

func moreContains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
