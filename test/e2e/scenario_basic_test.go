package e2e

// Scenarios 1–7 of issue 4 (happy path on both routes, restore policies, on-demand freeze,
// jobs ending Error/Fatal, SIGKILL of the helper, stop mid-job, stack started mid-job) and
// the real-systemd escaping check of units/testdata/tricky-argv.json. Each scenario runs the
// real generator output under the test's own systemd --user manager with real podman-compose
// stacks (two containers labelled io.podman.compose.project=<stack>) behind
// <stack>-stack.service, and the Duplicati simulator on loopback (API route) or in a podman
// container (exec route).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// Bounds of the basic scenarios: every wait below uses one of them.
const (
	basicBackupTimeout = 90 * time.Second // one `systemctl --user start backup@<stack>`
	basicEventTimeout  = 45 * time.Second // the sim shows the job Started / Finished
	basicStateTimeout  = 30 * time.Second // a unit reaches a state
)

// basicRig is one test's stack, simulator and route.
type basicRig struct {
	t        *testing.T
	e        *env
	st       *stack
	s        *sim
	route    string // "api" or "exec"
	job      string // Duplicati backup name in the stack's jobs
	backupID string // its ID in the simulator
}

// newBasicRig starts a manager, a simulator with one backup (ID 1, named <stack>-job, of the
// given duration and result), the route's config.hcl, a compose stack <base>-<test id>
// with the stack file (extra HCL inside the stack block) and runs daemon-reload. The
// stack is NOT started.
func newBasicRig(t *testing.T, route, base string, jobDur time.Duration, result, extra string) *basicRig {
	t.Helper()
	return newBasicRigMode(t, modeRoot, route, base, jobDur, result, extra)
}

// newBasicRigMode is newBasicRig in the given mode (root, or a rootless user's own manager
// and podman).
func newBasicRigMode(t *testing.T, m mode, route, base string, jobDur time.Duration, result, extra string) *basicRig {
	t.Helper()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	e := newEnvMode(t, m)
	name := base + "-" + e.id
	r := &basicRig{t: t, e: e, route: route, job: name + "-job", backupID: "1"}
	r.s = e.startSim(fmt.Sprintf("%s=%s:%s:%s", r.backupID, r.job, jobDur, result))
	switch route {
	case "api":
		e.writeConfig(restConfig(r.s))
	case "exec":
		e.writeConfig(execConfig(e.simContainer()))
	default:
		t.Fatalf("unknown route %q", route)
	}
	r.st = e.composeStack(name)
	e.writeStack(name, fmt.Sprintf(`stack %q {
  jobs          = [%q]
  stop_timeout  = "30s"
  start_timeout = "60s"
  wait_timeout  = "2m"
%s}
`, name, r.job, extra))
	e.daemonReload()
	if ls := e.show(r.backupUnit(), "LoadState")["LoadState"]; ls != "loaded" {
		out, _ := e.systemctl("cat", r.backupUnit())
		t.Fatalf("%s LoadState = %q; cat: %s; manager.log: %s", r.backupUnit(), ls, oneLine(out), e.tail("manager.log"))
	}
	e.basicAnchor(r.backupUnit())
	return r
}

// basicAnchor keeps unit loaded after it went inactive. The manager unloads an inactive unit
// nothing refers to, and `systemctl show` of an unloaded unit answers Result=success and
// ExecMainStatus=0 whatever happened: an active unit with After= on it is such a reference.
func (e *env) basicAnchor(unit string) {
	e.t.Helper()
	anchor := "basic-anchor-" + strings.TrimSuffix(unit, ".service") + ".service"
	e.writeUserUnit(anchor, fmt.Sprintf("[Unit]\nDescription=e2e: keeps %[1]s loaded\nAfter=%[1]s\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n", unit))
	e.daemonReload()
	if out, err := e.systemctl("start", anchor); err != nil {
		e.t.Fatalf("start %s: %v: %s", anchor, err, oneLine(out))
	}
}

// expectSucceeded: the backup unit's last run (a real one: it has an InvocationID and its
// main process exited) ended with Result=success and exit status 0.
func (r *basicRig) expectSucceeded(when string) {
	r.t.Helper()
	p := r.e.show(r.backupUnit(), "LoadState", "ActiveState", "InvocationID", "Result", "ExecMainCode", "ExecMainStatus")
	if p["LoadState"] != "loaded" || p["InvocationID"] == "" || p["ActiveState"] != "inactive" ||
		p["Result"] != "success" || p["ExecMainCode"] != "1" || p["ExecMainStatus"] != "0" {
		r.fail("%s: %s %v, want a finished run with Result=success and ExecMainCode=1 (exited) ExecMainStatus=0", when, r.backupUnit(), p)
	}
}

// waitSettled waits until the backup unit has no job and is neither activating nor
// deactivating. A start job canceled by a stop (the stack started by hand) makes `systemctl
// start backup@<stack>` return while ExecStopPost= (restore, release) still runs.
func (r *basicRig) waitSettled() {
	r.t.Helper()
	r.e.waitFor(r.backupUnit()+" to settle", basicBackupTimeout, 100*time.Millisecond, func() bool {
		p := r.e.show(r.backupUnit(), "ActiveState", "Job")
		return p["ActiveState"] != "activating" && p["ActiveState"] != "deactivating" && (p["Job"] == "" || p["Job"] == "0")
	})
}

// expectFailed: the backup unit's last run failed; it returns the properties.
func (r *basicRig) expectFailed(when string) map[string]string {
	r.t.Helper()
	r.waitSettled()
	p := r.e.show(r.backupUnit(), "LoadState", "ActiveState", "InvocationID", "Result", "ExecMainCode", "ExecMainStatus")
	if p["LoadState"] != "loaded" || p["InvocationID"] == "" || p["ActiveState"] != "failed" || p["Result"] == "success" {
		r.fail("%s: %s %v, want a failed run", when, r.backupUnit(), p)
	}
	return p
}

func (r *basicRig) backupUnit() string { return "backup@" + r.st.Name + ".service" }
func (r *basicRig) holdUnit() string   { return "backup-hold@" + r.st.Name + ".service" }

// startStack starts <stack>-stack.service and checks its two containers run.
func (r *basicRig) startStack() {
	r.t.Helper()
	if out, err := r.e.systemctl("start", r.st.Unit); err != nil {
		r.t.Fatalf("start %s: %v: %s; stack log: %s", r.st.Unit, err, oneLine(out), r.e.tail("stack-"+r.st.Name+".log"))
	}
	r.expectUp("after starting it")
}

// stopStack stops <stack>-stack.service and checks no container of it runs.
func (r *basicRig) stopStack() {
	r.t.Helper()
	if out, err := r.e.systemctl("stop", r.st.Unit); err != nil {
		r.t.Fatalf("stop %s: %v: %s", r.st.Unit, err, oneLine(out))
	}
	r.expectDown("after stopping it")
}

// expectUp: the stack unit is active and exactly its two containers run.
func (r *basicRig) expectUp(when string) {
	r.t.Helper()
	if st := r.state(r.st.Unit); st != "active" {
		r.t.Fatalf("%s: %s ActiveState = %q, want active", when, r.st.Unit, st)
	}
	if c := r.e.runningContainers(r.st.Project); len(c) != 2 {
		r.t.Fatalf("%s: running containers of %s = %v, want 2", when, r.st.Project, c)
	}
}

// expectDown: the stack unit is inactive and no container with its label runs.
func (r *basicRig) expectDown(when string) {
	r.t.Helper()
	if st := r.state(r.st.Unit); st != "inactive" {
		r.t.Fatalf("%s: %s ActiveState = %q, want inactive", when, r.st.Unit, st)
	}
	if c := r.e.runningContainers(r.st.Project); len(c) != 0 {
		r.t.Fatalf("%s: running containers of %s = %v, want none", when, r.st.Project, c)
	}
}

func (r *basicRig) state(unit string) string {
	r.t.Helper()
	return r.e.show(unit, "ActiveState")["ActiveState"]
}

// basicBgRun is a `systemctl --user start backup@<stack>` running in the background, as a person
// would type it.
type basicBgRun struct {
	done       chan struct{}
	out        string
	err        error
	start, end time.Time
}

func (r *basicRig) startBackup() *basicBgRun {
	b := &basicBgRun{done: make(chan struct{}), start: time.Now()}
	unit := r.backupUnit()
	go func() {
		defer close(b.done)
		ctx, cancel := context.WithTimeout(context.Background(), basicBackupTimeout)
		defer cancel()
		b.out, b.err = r.e.systemctlCtx(ctx, "start", unit)
		b.end = time.Now()
	}()
	return b
}

// wait waits for the background start to return (bounded).
func (b *basicBgRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(basicBackupTimeout + 10*time.Second):
		t.Fatalf("systemctl --user start did not return within %s", basicBackupTimeout+10*time.Second)
	}
}

// backup runs one backup in the foreground and returns its output and error.
func (r *basicRig) backup() *basicBgRun {
	r.t.Helper()
	b := r.startBackup()
	b.wait(r.t)
	return b
}

func (r *basicRig) maxTask() int64 { return r.s.maxTask() }

// waitEvent waits for the first backup event of our backup with a task ID above after that
// satisfies cond, and returns it.
func (r *basicRig) waitEvent(what string, after int64, cond func(simEvent) bool) simEvent {
	r.t.Helper()
	return r.e.waitBackupEvent(r.s, r.backupID, what, after, basicEventTimeout, cond)
}

// waitBackupEvent waits, at most timeout, for the first Backup event of backupID with a task
// ID above after that satisfies cond, and returns it.
func (e *env) waitBackupEvent(s *sim, backupID, what string, after int64, timeout time.Duration, cond func(simEvent) bool) simEvent {
	e.t.Helper()
	var got simEvent
	e.waitFor(what, timeout, 50*time.Millisecond, func() bool {
		for _, ev := range s.events() {
			if ev.TaskID > after && ev.BackupID == backupID && ev.Operation == "Backup" && cond(ev) {
				got = ev
				return true
			}
		}
		return false
	})
	return got
}

func (r *basicRig) waitStarted(after int64) simEvent {
	r.t.Helper()
	return r.waitEvent("the sim job to start", after, func(ev simEvent) bool { return !ev.Started.IsZero() })
}

func (r *basicRig) waitFinished(after int64) simEvent {
	r.t.Helper()
	return r.waitEvent("the sim job to finish", after, func(ev simEvent) bool { return !ev.Finished.IsZero() && ev.Result != "" })
}

// expectHoldInactive: the hold unit is not active (the stack is not held down any more).
func (r *basicRig) expectHoldInactive(when string) {
	r.t.Helper()
	if st := r.state(r.holdUnit()); st != "inactive" && st != "failed" {
		r.t.Fatalf("%s: %s ActiveState = %q, want inactive", when, r.holdUnit(), st)
	}
}

// slotFree: no backup slot file is left in the runtime dir.
func (r *basicRig) slotFree() bool {
	_, err := os.Stat(filepath.Join(r.e.run, "backup-stack", "slot"))
	return errors.Is(err, os.ErrNotExist)
}

func (r *basicRig) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s; units.log: %s", fmt.Sprintf(format, args...), oneLine(lastBytes([]byte(r.e.unitLog()), 3000)))
}

func basicMs(d time.Duration) string { return d.Round(time.Millisecond).String() }

// TestBasicHappyPath is scenario 1 on both routes: while the job runs the stack is down
// (unit inactive, no container with its label), after `systemctl --user start backup@<stack>`
// returns 0 the stack and its two containers are back and Result=success. Downtime, job time,
// overhead and job end → restored are measured and logged.
func TestBasicHappyPath(t *testing.T) {
	t.Parallel()
	forModes(t, testBasicHappyPath)
}

func testBasicHappyPath(t *testing.T, m mode) {
	for _, route := range []string{"api", "exec"} {
		t.Run(route, func(t *testing.T) {
			t.Parallel()
			r := newBasicRigMode(t, m, route, "hp", 4*time.Second, "Success", "")
			r.startStack()
			if m == modeRootless {
				r.e.expectRootless(r.st.Project + "_app_1")
			}
			before := r.maxTask()
			b := r.startBackup()
			started := r.waitStarted(before)
			// The job runs: the stack must be down right now.
			if st := r.state(r.st.Unit); st != "inactive" {
				r.fail("while the job runs (task %d), %s ActiveState = %q, want inactive", started.TaskID, r.st.Unit, st)
			}
			if c := r.e.runningContainers(r.st.Project); len(c) != 0 {
				r.fail("while the job runs (task %d), containers of %s still run: %v", started.TaskID, r.st.Project, c)
			}
			if st := r.state(r.holdUnit()); st != "active" {
				r.fail("while the job runs, %s ActiveState = %q, want active", r.holdUnit(), st)
			}
			finished := r.waitEvent("the sim job to finish", before, func(ev simEvent) bool {
				return ev.TaskID == started.TaskID && !ev.Finished.IsZero() && ev.Result != ""
			})
			b.wait(t)
			if b.err != nil {
				r.fail("systemctl --user start %s: %v: %s", r.backupUnit(), b.err, oneLine(b.out))
			}
			if strings.Contains(strings.ToLower(b.out), "cancel") {
				r.fail("systemctl --user start %s exited 0 but said %q", r.backupUnit(), oneLine(b.out))
			}
			r.expectUp("after the backup")
			r.expectSucceeded("after the backup")
			r.expectHoldInactive("after the backup")
			if finished.Result != "Success" {
				t.Errorf("sim result %q, want Success", finished.Result)
			}

			// Figures. Stack stop begins at ActiveExitTimestamp (the hold's stop job), it is
			// back at ActiveEnterTimestamp (restore's start finished).
			ts := r.e.showTimes(r.st.Unit, "ActiveExitTimestamp", "InactiveEnterTimestamp", "InactiveExitTimestamp", "ActiveEnterTimestamp")
			stopAt, downAt, upAt := ts["ActiveExitTimestamp"], ts["InactiveEnterTimestamp"], ts["ActiveEnterTimestamp"]
			startAt := ts["InactiveExitTimestamp"]
			helperExit := r.e.showTimes(r.backupUnit(), "ExecMainExitTimestamp")["ExecMainExitTimestamp"]
			if stopAt.IsZero() || downAt.IsZero() || upAt.IsZero() || startAt.IsZero() || helperExit.IsZero() {
				t.Fatalf("missing timestamps of %s: %v (helper exit %v)", r.st.Unit, ts, helperExit)
			}
			if !(stopAt.Before(downAt) || stopAt.Equal(downAt)) || !downAt.Before(finished.Started) || !finished.Finished.Before(upAt) {
				r.fail("order wrong: stack stop %s, down %s, job %s–%s, stack up %s",
					stopAt.Format(time.StampMicro), downAt.Format(time.StampMicro), finished.Started.Format(time.StampMicro),
					finished.Finished.Format(time.StampMicro), upAt.Format(time.StampMicro))
			}
			downtime := upAt.Sub(stopAt)
			job := finished.Finished.Sub(finished.Started)
			t.Logf("figures (%s, %s route): downtime %s (stack stop began → stack active again), job %s (sim Started→Finished), overhead %s (downtime − job), job end → restored %s, stop took %s, stack down → job started %s, systemctl start backup@ took %s",
				m, route, basicMs(downtime), basicMs(job), basicMs(downtime-job), basicMs(upAt.Sub(finished.Finished)), basicMs(downAt.Sub(stopAt)),
				basicMs(finished.Started.Sub(downAt)), basicMs(b.end.Sub(b.start)))
			t.Logf("figures (%s, %s route): job end → helper exit %s (polling), helper exit → stack start began %s (ExecStopPost up to the restore's start), stack start (compose up) %s",
				m, route, basicMs(helperExit.Sub(finished.Finished)), basicMs(startAt.Sub(helperExit)), basicMs(upAt.Sub(startAt)))
		})
	}
}

// TestBasicRestorePolicy is scenario 2: previous keeps an inactive stack inactive and brings
// an active one back; always starts the stack either way. Every run succeeds.
func TestBasicRestorePolicy(t *testing.T) {
	t.Parallel()
	r := newBasicRig(t, "api", "rp", time.Second, "Success", "  restore_policy = \"previous\"\n")
	stackFile := filepath.Join(r.e.configDir(), "stacks", r.st.Name+".hcl")
	setPolicy := func(p string) {
		b, err := os.ReadFile(stackFile)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, old := range []string{`"previous"`, `"always"`} {
			s = strings.Replace(s, "restore_policy = "+old, "restore_policy = "+strconv.Quote(p), 1)
		}
		if err := os.WriteFile(stackFile, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		r.e.daemonReload()
	}
	cases := []struct {
		policy    string
		activeNow bool
		wantUp    bool
	}{
		{"previous", false, false},
		{"previous", true, true},
		{"always", false, true},
		{"always", true, true},
	}
	cur := "previous"
	for _, c := range cases {
		what := fmt.Sprintf("restore_policy %s, stack %s before", c.policy, map[bool]string{true: "active", false: "inactive"}[c.activeNow])
		if c.policy != cur {
			setPolicy(c.policy)
			cur = c.policy
		}
		if up := r.state(r.st.Unit) == "active"; up != c.activeNow {
			if c.activeNow {
				r.startStack()
			} else {
				r.stopStack()
			}
		}
		before := r.maxTask()
		b := r.backup()
		if b.err != nil {
			r.fail("%s: systemctl --user start %s: %v: %s", what, r.backupUnit(), b.err, oneLine(b.out))
		}
		r.expectSucceeded(what)
		if ev := r.waitFinished(before); ev.Result != "Success" {
			r.fail("%s: the job did not run: %+v", what, ev)
		}
		if c.wantUp {
			r.expectUp(what + ", after the backup")
		} else {
			r.expectDown(what + ", after the backup")
		}
		r.expectHoldInactive(what)
		t.Logf("%s: stack %s after the backup, as wanted", what, r.state(r.st.Unit))
	}
}

// basicFreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func basicFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// basicOnDemand is a stack with a socket-activated entry point: <x>-ondemand.socket
// (ListenStream on a free loopback port, Accept=no) whose <x>-ondemand.service starts the
// stack, configured as the stack's on_demand { socket service }.
type basicOnDemand struct {
	*basicRig
	sock, svc, addr string
}

func newBasicOnDemand(t *testing.T, m mode) *basicOnDemand {
	t.Helper()
	// The socket and service names derive from the stack name, which is known once the rig
	// exists; the stack file is then written again with on_demand.
	r := newBasicRigMode(t, m, "api", "od", 5*time.Second, "Success", "")
	x := r.st.Name
	o := &basicOnDemand{basicRig: r, sock: x + "-ondemand.socket", svc: x + "-ondemand.service"}
	port := basicFreePort(t)
	o.addr = fmt.Sprintf("127.0.0.1:%d", port)
	r.e.writeUserUnit(o.sock, fmt.Sprintf("[Unit]\nDescription=e2e on-demand socket of %s\n\n[Socket]\nListenStream=%s\nAccept=no\n", x, o.addr))
	r.e.writeUserUnit(o.svc, fmt.Sprintf("[Unit]\nDescription=e2e on-demand starter of %[1]s\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=systemctl --user start %[1]s\n", r.st.Unit))
	r.e.writeStack(x, fmt.Sprintf(`stack %q {
  jobs          = [%q]
  stop_timeout  = "30s"
  start_timeout = "60s"
  wait_timeout  = "2m"
  on_demand {
    socket  = %q
    service = %q
  }
}
`, x, r.job, o.sock, o.svc))
	r.e.daemonReload()
	if out, _ := r.e.systemctl("cat", r.holdUnit()); !strings.Contains(out, o.sock) || !strings.Contains(out, o.svc) {
		t.Fatalf("%s does not name %s and %s: %s", r.holdUnit(), o.sock, o.svc, oneLine(out))
	}
	return o
}

func (o *basicOnDemand) dial() error {
	c, err := net.DialTimeout("tcp", o.addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func (o *basicOnDemand) states() (sock, svc, stack string) {
	return o.state(o.sock), o.state(o.svc), o.state(o.st.Unit)
}

// backupFrozen runs one backup of an active stack whose socket and service are in the given
// states: during the job all three are inactive and a connection is refused and starts
// nothing; afterwards all three are back as they were.
func (o *basicOnDemand) backupFrozen(name, wantSock, wantSvc string) {
	t := o.t
	t.Helper()
	if s, v, u := o.states(); s != wantSock || v != wantSvc || u != "active" {
		t.Fatalf("%s: before the backup socket %s service %s stack %s, want %s %s active", name, s, v, u, wantSock, wantSvc)
	}
	before := o.maxTask()
	b := o.startBackup()
	ev := o.waitStarted(before)
	if s, v, u := o.states(); s != "inactive" || v != "inactive" || u != "inactive" {
		o.fail("%s: during the job (task %d) socket %s service %s stack %s, want all inactive", name, ev.TaskID, s, v, u)
	}
	err := o.dial()
	if err == nil {
		o.fail("%s: a connection to %s during the backup was accepted", name, o.addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		o.fail("%s: a connection to %s during the backup: %v, want connection refused", name, o.addr, err)
	}
	time.Sleep(500 * time.Millisecond) // give a wrongly started activation time to show
	if s, v, u := o.states(); s != "inactive" || v != "inactive" || u != "inactive" {
		o.fail("%s: after a connection attempt during the job socket %s service %s stack %s, want all inactive", name, s, v, u)
	}
	if c := o.e.runningContainers(o.st.Project); len(c) != 0 {
		o.fail("%s: containers run during the job after a connection attempt: %v", name, c)
	}
	if fin := o.waitEvent("the job", before, func(e simEvent) bool { return e.TaskID == ev.TaskID }); !fin.Finished.IsZero() {
		o.fail("%s: the job had finished before the checks during it were done (%+v); make the job longer", name, fin)
	}
	b.wait(t)
	if b.err != nil {
		o.fail("%s: systemctl --user start %s: %v: %s", name, o.backupUnit(), b.err, oneLine(b.out))
	}
	if s, v, u := o.states(); s != wantSock || v != wantSvc || u != "active" {
		o.fail("%s: after the backup socket %s service %s stack %s, want %s %s active", name, s, v, u, wantSock, wantSvc)
	}
	o.expectUp(name + ", after the backup")
	o.expectHoldInactive(name)
	t.Logf("%s: socket %s, service %s, stack active after the backup; connection during it refused", name, wantSock, wantSvc)
}

// TestBasicOnDemandSocketActive is scenario 3 with the socket active before the backup
// (service inactive, then service active too): both are stopped during the backup, a
// connection is refused and starts nothing, and afterwards they are back exactly as before
// and the socket activates the stack again.
func TestBasicOnDemandSocketActive(t *testing.T) {
	t.Parallel()
	forModes(t, testBasicOnDemandSocketActive)
}

func testBasicOnDemandSocketActive(t *testing.T, m mode) {
	o := newBasicOnDemand(t, m)
	o.startStack()
	if out, err := o.e.systemctl("start", o.sock); err != nil {
		t.Fatalf("start %s: %v: %s", o.sock, err, oneLine(out))
	}
	o.backupFrozen("socket active", "active", "inactive")

	// On-demand activation works again: with the stack down, a connection starts it.
	o.stopStack()
	if err := o.dial(); err != nil {
		t.Fatalf("after the backup, connection to the re-started socket: %v", err)
	}
	o.e.waitFor("the socket to start the stack", basicStateTimeout, 200*time.Millisecond, func() bool {
		return o.state(o.st.Unit) == "active" && o.state(o.svc) == "active"
	})
	o.expectUp("after on-demand activation")

	o.backupFrozen("socket and service active", "active", "active")
}

// TestBasicOnDemandSocketInactive is scenario 3 with socket and service inactive before the
// backup: they stay inactive after it (and the port stays closed).
func TestBasicOnDemandSocketInactive(t *testing.T) {
	t.Parallel()
	o := newBasicOnDemand(t, modeRoot)
	o.startStack()
	o.backupFrozen("socket inactive", "inactive", "inactive")
	if err := o.dial(); err == nil {
		t.Errorf("socket inactive before and after the backup, yet %s accepts connections", o.addr)
	}
}

// TestBasicJobFails is scenario 4: a job that ends Error or Fatal fails the unit (exit status
// 5 or 6 as ExecMainStatus), the stack is restored, and the log names stack, job and result.
func TestBasicJobFails(t *testing.T) {
	t.Parallel()
	forModes(t, testBasicJobFails)
}

func testBasicJobFails(t *testing.T, m mode) {
	r := newBasicRigMode(t, m, "api", "jf", time.Second, "Error", "")
	r.startStack()
	for _, c := range []struct {
		result string
		status string
	}{{"Error", "5"}, {"Fatal", "6"}} {
		body, _ := json.Marshal(map[string]string{"ID": r.backupID, "Name": r.job, "Duration": "1s", "Result": c.result})
		if _, err := r.s.do("POST", "/sim/backups", body); err != nil {
			t.Fatal(err)
		}
		logBefore := len(r.e.unitLog())
		before := r.maxTask()
		b := r.backup()
		if b.err == nil {
			r.fail("%s: systemctl --user start %s exited 0", c.result, r.backupUnit())
		}
		if ev := r.waitFinished(before); ev.Result != c.result {
			r.fail("%s: sim result %q", c.result, ev.Result)
		}
		p := r.expectFailed(c.result)
		if p["ExecMainStatus"] != c.status {
			r.fail("%s: %s %v, want Result != success, ExecMainStatus=%s", c.result, r.backupUnit(), p, c.status)
		}
		r.expectUp(c.result + ": after the backup")
		r.expectHoldInactive(c.result)
		var line string
		for _, l := range strings.Split(r.e.unitLog()[logBefore:], "\n") {
			if strings.Contains(l, r.st.Name) && strings.Contains(l, r.job) && strings.Contains(l, c.result) {
				line = l
				break
			}
		}
		if line == "" {
			r.fail("%s: no log line names stack %s, job %s and %q", c.result, r.st.Name, r.job, c.result)
		}
		t.Logf("%s: unit %v; systemctl said %q; log: %s", c.result, p, oneLine(b.out), line)
	}
}

// TestBasicHelperKilled is scenario 5: `backup-stack run` is killed with SIGKILL mid-job; the
// stack is restored, the unit is failed, the slot is free and the next backup succeeds.
func TestBasicHelperKilled(t *testing.T) {
	t.Parallel()
	forModes(t, testBasicHelperKilled)
}

func testBasicHelperKilled(t *testing.T, m mode) {
	r := newBasicRigMode(t, m, "api", "kill", 6*time.Second, "Success", "")
	r.startStack()
	before := r.maxTask()
	b := r.startBackup()
	ev := r.waitStarted(before)
	pid, err := strconv.Atoi(r.e.show(r.backupUnit(), "MainPID")["MainPID"])
	if err != nil || pid <= 0 {
		r.fail("MainPID of %s: %q", r.backupUnit(), r.e.show(r.backupUnit(), "MainPID")["MainPID"])
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(argv) < 3 || filepath.Base(argv[0]) != "backup-stack" || argv[1] != "run" {
		r.fail("MainPID %d is %q, not backup-stack run", pid, argv)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	t.Logf("killed %q (pid %d) during task %d", argv, pid, ev.TaskID)
	b.wait(t)
	if b.err == nil {
		r.fail("systemctl --user start %s exited 0 after its helper was killed", r.backupUnit())
	}
	p := r.expectFailed("after SIGKILL")
	r.expectUp("after the helper was killed")
	r.expectHoldInactive("after the helper was killed")
	if !r.slotFree() {
		r.fail("the backup slot is still taken after the killed run")
	}
	t.Logf("killed run: %v; systemctl said %q", p, oneLine(b.out))

	// The slot is free: the next backup (which waits for the orphaned task) succeeds.
	after := r.maxTask()
	b2 := r.backup()
	if b2.err != nil {
		r.fail("second backup: %v: %s", b2.err, oneLine(b2.out))
	}
	r.expectSucceeded("second backup")
	if ev2 := r.waitFinished(after); ev2.Result != "Success" {
		r.fail("second backup's job: %+v", ev2)
	}
	r.expectUp("after the second backup")
	if !r.slotFree() {
		r.fail("the backup slot is taken after the second backup")
	}
}

// TestBasicStopMidJob is scenario 6: `systemctl --user stop backup@<stack>` mid-job restores
// the stack and fails the unit with status 10 (interrupted). On the API route the task is
// aborted (sim Result "Aborted"); the exec route cannot abort it, says so, and waits until the
// task has ended before the stack is restored.
func TestBasicStopMidJob(t *testing.T) {
	t.Parallel()
	forModes(t, testBasicStopMidJob)
}

func testBasicStopMidJob(t *testing.T, m mode) {
	for _, route := range []string{"api", "exec"} {
		t.Run(route, func(t *testing.T) {
			t.Parallel()
			r := newBasicRigMode(t, m, route, "stop", 20*time.Second, "Success", "")
			r.startStack()
			before := r.maxTask()
			b := r.startBackup()
			ev := r.waitStarted(before)
			time.Sleep(300 * time.Millisecond) // well inside the job
			logBefore := len(r.e.unitLog())
			start := time.Now()
			if out, err := r.e.systemctlTimeout(basicBackupTimeout, "stop", r.backupUnit()); err != nil {
				r.fail("systemctl --user stop %s: %v: %s", r.backupUnit(), err, oneLine(out))
			}
			stopped := time.Now()
			t.Logf("systemctl --user stop %s took %s", r.backupUnit(), basicMs(time.Since(start)))
			b.wait(t)
			if b.err == nil {
				r.fail("systemctl --user start %s exited 0 although the backup was stopped", r.backupUnit())
			}
			r.expectUp("after the stop")
			r.expectHoldInactive("after the stop")
			p := r.expectFailed("after the stop")
			if p["ExecMainStatus"] != "10" {
				r.fail("after the stop: %v, want ExecMainStatus 10 (interrupted)", p)
			}
			if !r.slotFree() {
				r.fail("the backup slot is still taken after the stop")
			}
			switch route {
			case "api":
				fin := r.waitEvent("the task to end", before, func(e simEvent) bool { return e.TaskID == ev.TaskID && e.Result != "" })
				if fin.Result != "Aborted" {
					r.fail("task %d ended %q, want Aborted", fin.TaskID, fin.Result)
				}
				if fin.Finished.Sub(fin.Started) >= 20*time.Second {
					r.fail("task %d ran its full length: %+v", fin.TaskID, fin)
				}
				t.Logf("stopped run: %v; task %d %s after %s", p, fin.TaskID, fin.Result, basicMs(fin.Finished.Sub(fin.Started)))
			case "exec":
				// The util cannot abort: the stop waits until Duplicati is done with the task,
				// so the stack is never restored while it could still be backed up.
				if log := r.e.unitLog()[logBefore:]; !strings.Contains(log, "duplicati-server-util cannot abort it") {
					r.fail("the exec route did not say that it cannot abort the task: %s", oneLine(log))
				}
				fin := r.waitEvent("the task to end", before, func(e simEvent) bool { return e.TaskID == ev.TaskID && e.Result != "" })
				if fin.Finished.IsZero() || fin.Finished.After(stopped) {
					r.fail("task %d had not ended when the stop returned: %+v", fin.TaskID, fin)
				}
				t.Logf("stopped run: %v; the exec route waited for task %d to end (%s after the stop)", p, ev.TaskID, basicMs(fin.Finished.Sub(start)))
			}
		})
	}
}

// TestBasicStackStartedMidJob is scenario 7: a person starts the stack mid-job. The backup
// fails with status 10, the task is aborted, the stack keeps running, the hold is released.
func TestBasicStackStartedMidJob(t *testing.T) {
	t.Parallel()
	forModes(t, testBasicStackStartedMidJob)
}

func testBasicStackStartedMidJob(t *testing.T, m mode) {
	r := newBasicRigMode(t, m, "api", "man", 20*time.Second, "Success", "")
	r.startStack()
	before := r.maxTask()
	b := r.startBackup()
	ev := r.waitStarted(before)
	start := time.Now()
	if out, err := r.e.systemctlTimeout(basicBackupTimeout, "start", r.st.Unit); err != nil {
		r.fail("systemctl --user start %s mid-job: %v: %s", r.st.Unit, err, oneLine(out))
	}
	t.Logf("systemctl --user start %s mid-job took %s", r.st.Unit, basicMs(time.Since(start)))
	b.wait(t)
	if b.err == nil {
		r.fail("systemctl --user start %s exited 0 although the stack was started mid-job", r.backupUnit())
	}
	if st := r.state(r.backupUnit()); st == "deactivating" {
		t.Logf("systemctl --user start %s returned (%s) while the unit is still %s (ExecStopPost= runs)", r.backupUnit(), oneLine(b.out), st)
	}
	// The stack keeps running while the backup unit winds down (restore, release).
	polls := 0
	r.e.waitFor(r.backupUnit()+" to settle with the stack up", basicBackupTimeout, 100*time.Millisecond, func() bool {
		if st := r.state(r.st.Unit); st != "active" {
			r.fail("the stack started by hand went %s while %s wound down", st, r.backupUnit())
		}
		polls++
		p := r.e.show(r.backupUnit(), "ActiveState", "Job")
		return p["ActiveState"] != "activating" && p["ActiveState"] != "deactivating" && (p["Job"] == "" || p["Job"] == "0")
	})
	t.Logf("stack stayed active over %d polls until %s settled", polls, r.backupUnit())
	p := r.expectFailed("after the stack's start")
	if p["ExecMainStatus"] != "10" {
		r.fail("%s %v, want ExecMainStatus 10 (interrupted)", r.backupUnit(), p)
	}
	fin := r.waitEvent("the task to end", before, func(e simEvent) bool { return e.TaskID == ev.TaskID && e.Result != "" })
	if fin.Result != "Aborted" {
		r.fail("task %d ended %q, want Aborted", fin.TaskID, fin.Result)
	}
	r.expectUp("after the backup was stopped by the stack's start")
	r.expectHoldInactive("after the stack's start")
	time.Sleep(time.Second)
	r.expectUp("a second later")
	if !r.slotFree() {
		r.fail("the backup slot is still taken")
	}
	t.Logf("backup stopped by the stack's start: %v; systemctl said %q; task %d %s", p, oneLine(b.out), fin.TaskID, fin.Result)
}

// basicHCLString writes s as an HCL native-syntax quoted string that decodes to exactly s.
func basicHCLString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, rn := range s {
		switch {
		case rn == '"':
			b.WriteString(`\"`)
		case rn == '\\':
			b.WriteString(`\\`)
		case rn == '\n':
			b.WriteString(`\n`)
		case rn == '\r':
			b.WriteString(`\r`)
		case rn == '\t':
			b.WriteString(`\t`)
		case (rn == '$' || rn == '%') && i+1 < len(s) && s[i+1] == '{':
			// "${" and "%{" open templates; "$${" and "%%{" are their literal forms.
			b.WriteRune(rn)
			b.WriteRune(rn)
		case rn < 0x20 || rn == 0x7f || rn == 0x2028 || rn == 0x2029 || rn == 0xfeff:
			fmt.Fprintf(&b, `\u%04x`, rn)
		default:
			b.WriteRune(rn)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestBasicTrickyArgv is the real-systemd escaping check: every argument list of
// units/testdata/tricky-argv.json is the tail of a pre_backup hook (a plain ExecStartPre=
// line) and of a post_backup hook (run through `backup-stack hook ... --`); each hook writes
// the words it received NUL-separated to its own file, which must hold exactly the words.
func TestBasicTrickyArgv(t *testing.T) {
	t.Parallel()
	gen := binary(t, "backup-generator")
	binary(t, "backup-stack")
	var doc struct {
		Args [][]string `json:"args"`
	}
	raw, err := os.ReadFile(filepath.Join(suite.root, "units", "testdata", "tricky-argv.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Args) < 30 {
		t.Fatalf("tricky-argv.json has only %d lists", len(doc.Args))
	}
	e := newEnv(t)
	name := "tricky-" + e.id
	outDir := filepath.Join(e.dir, "argv")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The hook: sh -c 'printf "%s\0" "$@" > FILE' sh WORDS...
	hook := func(kind string, i int, words []string) string {
		file := filepath.Join(outDir, fmt.Sprintf("%s-%02d", kind, i))
		cmd := []string{"/bin/sh", "-c", `printf '%s\0' "$@" > ` + file, "sh"}
		cmd = append(cmd, words...)
		q := make([]string, len(cmd))
		for j, w := range cmd {
			q[j] = basicHCLString(w)
		}
		return fmt.Sprintf("  hook %q {\n    command = [%s]\n  }\n", kind, strings.Join(q, ", "))
	}
	stackHCL := func(lists map[int][]string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "stack %q {\n  jobs = [\"tricky-job\"]\n  unit = %q\n", name, name+"-stack.service")
		for i := 0; i < len(doc.Args); i++ {
			if w, ok := lists[i]; ok {
				b.WriteString(hook("pre_backup", i, w))
				b.WriteString(hook("post_backup", i, w))
			}
		}
		b.WriteString("}\n")
		return b.String()
	}

	// First each list alone through the generator (dry run): a list the generator refuses is
	// reported as refused, the others all go into one stack.
	accepted := map[int][]string{}
	var refused []string
	probeDir := filepath.Join(e.dir, "probe")
	for i, words := range doc.Args {
		if !utf8.ValidString(strings.Join(words, "")) {
			t.Fatalf("list %d is not UTF-8", i)
		}
		dir := filepath.Join(probeDir, strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Join(dir, "stacks"), 0o755); err != nil {
			t.Fatal(err)
		}
		one := map[int][]string{i: words}
		if err := os.WriteFile(filepath.Join(dir, "stacks", name+".hcl"), []byte(stackHCL(one)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code, err := basicRunCmd(e, 30*time.Second, gen, "--dry-run", "--config", dir)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 || !strings.Contains(out, "backup@"+name+".service.d/50-stack.conf") {
			refused = append(refused, fmt.Sprintf("list %d %q: exit %d: %s", i, words, code, oneLine(out)))
			continue
		}
		accepted[i] = words
	}
	// Every list in the file is meant to pass (units.TestTrickyArgv checks the rendering);
	// a refusal here is a disagreement between the generator and that test.
	for _, r := range refused {
		t.Errorf("generator refused: %s", r)
	}
	t.Logf("%d of %d lists accepted by the generator", len(accepted), len(doc.Args))

	// The stack: a plain unit (no containers needed for an escaping check).
	e.writeUserUnit(name+"-stack.service", "[Unit]\nDescription=e2e tricky stack\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
	s := e.startSim("1=tricky-job:200ms:Success")
	e.writeConfig(restConfig(s))
	e.writeStack(name, stackHCL(accepted))
	e.daemonReload()
	unit := "backup@" + name + ".service"
	if ls := e.show(unit, "LoadState")["LoadState"]; ls != "loaded" {
		out, _ := e.systemctl("cat", unit)
		t.Fatalf("%s LoadState %q; cat: %s; manager.log: %s", unit, ls, oneLine(lastBytes([]byte(out), 2000)), e.tail("manager.log"))
	}
	e.basicAnchor(unit)
	if out, err := e.systemctl("start", name+"-stack.service"); err != nil {
		t.Fatalf("start stack: %v: %s", err, out)
	}
	out, err := e.systemctlTimeout(basicBackupTimeout, "start", unit)
	if err != nil {
		t.Errorf("systemctl --user start %s: %v: %s; units.log: %s", unit, err, oneLine(out), oneLine(lastBytes([]byte(e.unitLog()), 3000)))
	}
	if p := e.show(unit, "InvocationID", "Result", "ExecMainStatus"); p["InvocationID"] == "" || p["Result"] != "success" || p["ExecMainStatus"] != "0" {
		t.Errorf("%s: %v, want a run with Result=success", unit, p)
	}
	ok := 0
	for i := 0; i < len(doc.Args); i++ {
		words, in := accepted[i]
		if !in {
			continue
		}
		var want bytes.Buffer
		for _, w := range words {
			want.WriteString(w)
			want.WriteByte(0)
		}
		for _, kind := range []string{"pre_backup", "post_backup"} {
			got, err := os.ReadFile(filepath.Join(outDir, fmt.Sprintf("%s-%02d", kind, i)))
			if err != nil {
				t.Errorf("%s hook of list %d %q did not run: %v", kind, i, words, err)
				continue
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("%s hook of list %d: got %q, want %q", kind, i, strings.Split(strings.TrimSuffix(string(got), "\x00"), "\x00"), words)
				continue
			}
			ok++
		}
	}
	t.Logf("%d hook runs received their words byte for byte (%d lists × pre_backup, post_backup)", ok, len(accepted))
}

// basicRunCmd runs a program with the user's environment and returns its combined output and exit
// code (err only when it could not run or timed out).
func basicRunCmd(e *env, timeout time.Duration, bin string, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.userEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), -1, fmt.Errorf("%s: timed out after %s", bin, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), 0, nil
}
