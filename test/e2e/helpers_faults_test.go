package e2e

// Helpers of scenario_faults_test.go (fault scenarios: the manager killed or stopped
// mid-job, a container that will not stop, an image removed mid-job, hooks that hang, a
// restore slower than start_timeout). Every identifier here starts with "fault" so that it
// cannot clash with helpers written for the other scenarios.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultTimeout bounds one backup (or one wait for a state) of a fault scenario.
const faultTimeout = 60 * time.Second

// faultRig is one fault scenario's manager, simulator and (first) stack.
type faultRig struct {
	t        *testing.T
	e        *env
	s        *sim
	st       *stack
	unit     string // backup@<stack>.service
	hold     string // backup-hold@<stack>.service
	notified string // file the stack's on_failure command appends "NOTIFY ..." lines to
}

// faultNotifyHCL is a notify block whose on_failure appends one line per notification to
// file: "NOTIFY <stack>|<event>|<result>|<reason>".
func faultNotifyHCL(file string) string {
	script := fmt.Sprintf(`printf 'NOTIFY %%s|%%s|%%s|%%s\n' "$BACKUP_STACK" "$BACKUP_EVENT" "$BACKUP_RESULT" "$BACKUP_REASON" >> %s`, file)
	return fmt.Sprintf("  notify {\n    on_failure = [%q, %q, %q]\n  }\n", "/bin/sh", "-c", script)
}

// faultLogDropIns makes backup-recover.service and backup-notify@.service append their
// output to units.log too (there is no journald). Call before a daemon-reload.
func (e *env) faultLogDropIns() {
	logPath := filepath.Join(e.dir, "units.log")
	for _, u := range []string{"backup-recover.service", "backup-notify@.service"} {
		e.writeUserUnit(u+".d/90-e2e-log.conf", fmt.Sprintf("[Service]\nStandardOutput=append:%s\nStandardError=append:%s\n", logPath, logPath))
	}
}

// newFaultRig starts a manager and a simulator with one backup (ID 1, <stack>-job, of the
// given duration, Success) on the REST route, and writes the stack file (jobs, timeouts,
// notify, extra inside the stack block) and the compose stack. Call up to start it.
func newFaultRig(t *testing.T, base string, jobDur time.Duration, timeouts, extra string) *faultRig {
	t.Helper()
	return newFaultRigMode(t, modeRoot, base, jobDur, timeouts, extra)
}

// newFaultRigMode is newFaultRig in the given mode.
func newFaultRigMode(t *testing.T, m mode, base string, jobDur time.Duration, timeouts, extra string) *faultRig {
	t.Helper()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	binary(t, "duplicati-sim")
	e := newEnvMode(t, m)
	e.faultLogDropIns()
	name := e.moreStackName(base)
	r := &faultRig{t: t, e: e, unit: "backup@" + name + ".service", hold: "backup-hold@" + name + ".service",
		notified: filepath.Join(e.dir, "notified-"+name)}
	r.s = e.startSim(fmt.Sprintf("1=%s-job:%s:Success", name, jobDur))
	e.writeConfig(restConfig(r.s))
	if timeouts == "" {
		timeouts = "  stop_timeout  = \"30s\"\n  start_timeout = \"30s\"\n"
	}
	e.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [%q]\n%s%s%s}\n", name, name+"-job", timeouts, faultNotifyHCL(r.notified), extra))
	r.st = e.composeStack(name)
	return r
}

// editCompose rewrites the stack's compose.yaml through edit (before up).
func (r *faultRig) editCompose(edit func(compose string) string) {
	r.t.Helper()
	p := filepath.Join(r.st.Dir, "compose.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	out := edit(string(b))
	if out == string(b) {
		r.t.Fatalf("editCompose changed nothing in %s", p)
	}
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// up reloads and starts the stack unit; both containers must run.
func (r *faultRig) up() {
	r.t.Helper()
	r.e.daemonReload()
	start := time.Now()
	if out, err := r.e.systemctl("start", r.st.Unit); err != nil {
		// Setup only, like the retry below: once in CI, podman-compose failed in its network
		// check (assert_cnt_nets) while many rootless users started podman at once, and
		// passed when the test ran again. Say why, and try once more.
		r.t.Logf("setup: start %s failed: %v: %s; stack log: %s; starting it again", r.st.Unit, err, oneLine(out), r.e.tail("stack-"+r.st.Name+".log"))
		if out, err := r.e.systemctl("restart", r.st.Unit); err != nil {
			r.t.Fatalf("start %s, twice: %v: %s; stack log: %s", r.st.Unit, err, oneLine(out), r.e.tail("stack-"+r.st.Name+".log"))
		}
	}
	if ok, why := r.e.faultStackUp(r.st); !ok {
		// Setup only: podman-compose exits 0 when a container fails to start, which happens
		// now and then on this busy machine. Say why, and try once more.
		var errs []string
		for _, l := range strings.Split(r.e.unitLogFile("stack-"+r.st.Name+".log"), "\n") {
			if strings.Contains(strings.ToLower(l), "error") {
				errs = append(errs, strings.TrimSpace(l))
			}
		}
		r.t.Logf("setup: the stack did not come up (%s); errors in its log: %q; starting it again", why, errs)
		if out, err := r.e.systemctl("restart", r.st.Unit); err != nil {
			r.t.Fatalf("restart %s: %v: %s", r.st.Unit, err, oneLine(out))
		}
		if ok, why := r.e.faultStackUp(r.st); !ok {
			r.t.Fatalf("after starting it twice: %s; stack log: %s", why, r.e.tail("stack-"+r.st.Name+".log"))
		}
	}
	r.t.Logf("timing: stack %s up in %s", r.st.Name, time.Since(start).Round(time.Millisecond))
}

// faultStackUp: the stack unit is active and exactly two containers of its project run.
func (e *env) faultStackUp(st *stack) (bool, string) {
	e.t.Helper()
	state := e.show(st.Unit, "ActiveState")["ActiveState"]
	c := e.runningContainers(st.Project)
	if state != "active" || len(c) != 2 {
		return false, fmt.Sprintf("%s is %s with containers %v", st.Unit, state, c)
	}
	return true, ""
}

// faultWaitUp waits until the stack is up and returns how long that took from since.
func (e *env) faultWaitUp(st *stack, since time.Time, timeout time.Duration) time.Duration {
	e.t.Helper()
	var why string
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if ok, why = e.faultStackUp(st); ok {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			ps, _ := e.podman("ps", "-a", "--filter", "label=io.podman.compose.project="+st.Project, "--format", "{{.Names}} {{.State}} {{.Status}}")
			e.t.Fatalf("stack %s not up %s after %s: %s; podman ps -a: %s; units.log: %s", st.Name,
				time.Since(since).Round(time.Millisecond), since.Format("15:04:05.000"), why, oneLine(ps), e.tail("units.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// faultWaitSettled waits until unit has no job and is neither activating nor deactivating.
func (e *env) faultWaitSettled(unit string, timeout time.Duration) map[string]string {
	e.t.Helper()
	var p map[string]string
	e.waitFor(unit+" to settle", timeout, 100*time.Millisecond, func() bool {
		p = e.show(unit, "ActiveState", "Result", "Job", "ExecMainStatus", "InvocationID")
		return p["ActiveState"] != "activating" && p["ActiveState"] != "deactivating" && (p["Job"] == "" || p["Job"] == "0")
	})
	return p
}

// faultWaitJobStarted waits for a Backup task of the sim with that backup ID that started
// at or after since.
func (s *sim) faultWaitJobStarted(backupID string, since time.Time) simEvent {
	s.e.t.Helper()
	var got simEvent
	s.e.waitFor("the sim job "+backupID+" to start", faultTimeout, 50*time.Millisecond, func() bool {
		for _, ev := range s.events() {
			if ev.Operation == "Backup" && ev.BackupID == backupID && !ev.Started.IsZero() && !ev.Queued.Before(since) {
				got = ev
				return true
			}
		}
		return false
	})
	return got
}

// faultJobsSince returns every Backup task the sim queued at or after since.
func (s *sim) faultJobsSince(since time.Time) []simEvent {
	var out []simEvent
	for _, ev := range s.events() {
		queued := !ev.Queued.IsZero() && !ev.Queued.Before(since)
		started := !ev.Started.IsZero() && !ev.Started.Before(since)
		if ev.Operation == "Backup" && (queued || started) {
			out = append(out, ev)
		}
	}
	return out
}

// faultProc is a process found in one of the test's unit cgroups.
type faultProc struct {
	PID     int
	Cgroup  string
	Cmdline string
}

// faultUnitProcs lists the processes in the cgroups of the given units (and their
// sub-cgroups) below the manager's own cgroup in the name=systemd and unified hierarchies:
// app.slice/<unit>, or app.slice/app-<template>.slice/<unit> for template instances.
func (e *env) faultUnitProcs(units ...string) []faultProc {
	want := map[string]bool{}
	for _, u := range units {
		want[u] = true
	}
	seen := map[int]bool{}
	var out []faultProc
	for _, base := range e.cgroupAppSlices() {
		filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if path != base && !want[d.Name()] && !strings.HasSuffix(d.Name(), ".slice") {
				return filepath.SkipDir // another unit's cgroup
			}
			if !want[d.Name()] {
				return nil
			}
			filepath.WalkDir(path, func(sub string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(sub)
				for _, f := range strings.Fields(string(b)) {
					pid, err := strconv.Atoi(f)
					if err != nil || pid <= 1 || seen[pid] {
						continue
					}
					seen[pid] = true
					cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
					out = append(out, faultProc{PID: pid, Cgroup: strings.TrimPrefix(filepath.Dir(sub), "/sys/fs/cgroup/"),
						Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))})
				}
				return nil
			})
			return filepath.SkipDir
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// faultAlive reports whether pid exists and is not a zombie.
func faultAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// faultStackUnits are the units of one stack whose processes a crash leaves behind.
func faultStackUnits(st *stack) []string {
	return []string{"backup@" + st.Name + ".service", "backup-hold@" + st.Name + ".service",
		"backup-notify@" + st.Name + ".service", st.Unit}
}

// faultCrashManager SIGKILLs this test's manager and then, as the system manager would when
// user@UID.service dies, SIGKILLs every process left in the cgroups of the given units
// (DESIGN fact 15: here nothing else would). Those cgroups are below the test manager's own,
// so everything in them is this test's. It returns what it killed.
func (e *env) faultCrashManager(units []string) []faultProc {
	t := e.t
	t.Helper()
	if err := syscall.Kill(e.managerPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 manager %d: %v", e.managerPID, err)
	}
	select {
	case <-e.managerDone:
	case <-time.After(15 * time.Second):
		t.Fatalf("manager %d did not exit within 15s of SIGKILL", e.managerPID)
	}
	var killed []faultProc
	deadline := time.Now().Add(15 * time.Second)
	for {
		procs := e.faultUnitProcs(units...)
		left := 0
		for _, p := range procs {
			if !faultAlive(p.PID) {
				continue
			}
			left++
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err == nil {
				killed = append(killed, p)
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crash: processes of the units still alive after 15s: %+v", procs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return killed
}

// faultRestartManager starts a new manager for the same $HOME and $XDG_RUNTIME_DIR after
// the old one is gone, and returns when it was asked to start.
func (e *env) faultRestartManager() time.Time {
	e.t.Helper()
	select {
	case <-e.managerDone:
	default:
		e.t.Fatal("faultRestartManager: the old manager still runs")
	}
	e.stopped = false
	at := time.Now()
	e.startManager()
	return at
}

// faultHistory is the run history (history/<stack>.json) as the scenarios read it.
type faultHistory struct {
	Stack        string    `json:"stack"`
	InvocationID string    `json:"invocation_id"`
	Result       string    `json:"result"`
	ExitStatus   string    `json:"exit_status"`
	Gate         time.Time `json:"gate"`
	HeldAt       time.Time `json:"held_at"`
	RestoredAt   time.Time `json:"restored_at"`
	Finished     time.Time `json:"finished"`
	Downtime     float64   `json:"downtime_seconds"`
	Failures     []string  `json:"failures"`
	Reason       string    `json:"reason"`
}

func (e *env) faultStateFile(kind, stack string) string {
	return filepath.Join(e.home, ".local", "state", "backup-stack", kind, stack+".json")
}

// faultReadHistory reads the stack's history, or nil.
func (e *env) faultReadHistory(stack string) *faultHistory {
	e.t.Helper()
	b, err := os.ReadFile(e.faultStateFile("history", stack))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var h faultHistory
	if err := json.Unmarshal(b, &h); err != nil {
		e.t.Fatalf("history of %s: %v: %s", stack, err, b)
	}
	return &h
}

// faultPlan is the part of plan/<stack>.json the scenarios read (see planState).
type faultPlan = planState

func (e *env) faultReadPlan(stack string) *faultPlan {
	e.t.Helper()
	b, err := os.ReadFile(e.faultStateFile("plan", stack))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var p faultPlan
	if err := json.Unmarshal(b, &p); err != nil {
		e.t.Fatalf("plan of %s: %v: %s", stack, err, b)
	}
	return &p
}

// faultNotifications returns the lines the on_failure command wrote so far.
func (r *faultRig) faultNotifications() []string {
	var out []string
	for _, l := range moreReadLines(r.t, r.notified) {
		if strings.HasPrefix(l, "NOTIFY ") {
			out = append(out, l)
		}
	}
	return out
}

// wantOneNotification waits for the first notification, gives a second one time to show,
// and fails unless there is exactly one. It returns it.
func (r *faultRig) wantOneNotification(wait time.Duration) string {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for len(r.faultNotifications()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a second notification would show by now
	got := r.faultNotifications()
	if len(got) != 1 {
		r.t.Errorf("notifications %q, want exactly one; units.log: %s", got, r.e.tail("units.log"))
		if len(got) == 0 {
			return ""
		}
	}
	return got[0]
}

// faultStackStatus is one row of `backup-stack status --stacks --json`.
type faultStackStatus struct {
	Stack      string   `json:"stack"`
	Now        string   `json:"now"`
	Held       bool     `json:"held"`
	LeftDown   bool     `json:"left_down"`
	LastResult string   `json:"last_result"`
	Downtime   float64  `json:"downtime_seconds"`
	Failures   []string `json:"failures"`
	Reason     string   `json:"reason"`
}

func (e *env) faultStatus(stack string) (faultStackStatus, string) {
	e.t.Helper()
	out, code, err := e.runHelper(30*time.Second, "status", "--stacks", "--json")
	if err != nil {
		e.t.Fatalf("status --stacks --json: %v (exit %d): %s", err, code, out)
	}
	var rows []faultStackStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		e.t.Fatalf("status --stacks --json (exit %d): %v: %s", code, err, out)
	}
	for _, r := range rows {
		if r.Stack == stack {
			return r, out
		}
	}
	e.t.Fatalf("status --stacks --json has no row for %s: %s", stack, out)
	return faultStackStatus{}, out
}

// faultListLine returns the line of `backup-stack list` that names stack.
func (e *env) faultListLine(stack string) string {
	e.t.Helper()
	out, code, err := e.runHelper(30*time.Second, "list")
	if err != nil || code != 0 {
		e.t.Fatalf("backup-stack list: exit %d %v: %s", code, err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == stack {
			return l
		}
	}
	e.t.Fatalf("backup-stack list names no %s: %s", stack, out)
	return ""
}

var (
	faultStartRE = regexp.MustCompile(`start_time=\[([^\]]*)\]`)
	faultStopRE  = regexp.MustCompile(`stop_time=\[([^\]]*)\]`)
)

// faultExec returns the start and stop time and the status of the Exec line of unit
// (prop, e.g. ExecStartPre) whose argv contains word.
func (e *env) faultExec(unit, prop, word string) (start, stop time.Time, status, rec string) {
	e.t.Helper()
	out, err := e.systemctlTimeout(30*time.Second, "show", "--timestamp=us+utc", "-p", prop, unit)
	if err != nil {
		e.t.Fatalf("show %s %s: %v", unit, prop, err)
	}
	parse := func(re *regexp.Regexp, s string) time.Time {
		m := re.FindStringSubmatch(s)
		if m == nil || m[1] == "" || m[1] == "n/a" {
			return time.Time{}
		}
		ts, err := time.Parse("Mon 2006-01-02 15:04:05.000000 MST", m[1])
		if err != nil {
			e.t.Fatalf("%s %s: %q: %v", unit, prop, m[1], err)
		}
		return ts
	}
	for _, r := range moreExecRE.FindAllString(out, -1) {
		argv := moreArgvRE.FindStringSubmatch(r)
		if argv == nil || !strings.Contains(" "+argv[1]+" ", " "+word+" ") {
			continue
		}
		st := ""
		if m := moreStatusRE.FindStringSubmatch(r); m != nil {
			st = m[1]
		}
		return parse(faultStartRE, r), parse(faultStopRE, r), st, r
	}
	return time.Time{}, time.Time{}, "", out
}

// faultProcWatch polls the processes of some units every 50 ms and records, per command
// line matching a pattern, when it was first and last seen.
type faultProcWatch struct {
	mu     sync.Mutex
	seen   map[string][2]time.Time // "pid cmdline" -> first, last
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *env) faultWatchProcs(match func(cmdline string) bool, units ...string) *faultProcWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &faultProcWatch{seen: map[string][2]time.Time{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			now := time.Now()
			for _, p := range e.faultUnitProcs(units...) {
				if !match(p.Cmdline) || !faultAlive(p.PID) {
					continue
				}
				k := fmt.Sprintf("%d %s", p.PID, p.Cmdline)
				w.mu.Lock()
				s := w.seen[k]
				if s[0].IsZero() {
					s[0] = now
				}
				s[1] = now
				w.seen[k] = s
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *faultProcWatch) stop() map[string][2]time.Time {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][2]time.Time{}
	for k, v := range w.seen {
		out[k] = v
	}
	return out
}

// faultFirstAfter returns the time of the first sample at or after since whose state
// satisfies cond (zero if none).
func faultFirstAfter(s []moreSample, since time.Time, cond func(string) bool) time.Time {
	for _, x := range s {
		if !x.At.Before(since) && cond(x.State) {
			return x.At
		}
	}
	return time.Time{}
}

func faultMs(d time.Duration) string { return d.Round(time.Millisecond).String() }

// faultBug runs, as subtest name, a check of a product bug these scenarios found (and
// that was fixed): it fails with "<bug>: <evidence>" if the bug comes back.
func faultBug(t *testing.T, name, bug string, check func() (ok bool, evidence string)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		if ok, ev := check(); !ok {
			t.Errorf("regression: %s: %s", bug, ev)
		}
	})
}

// unitLogFile returns a file in the test dir ("" if missing).
func (e *env) unitLogFile(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.dir, name))
	return string(b)
}
