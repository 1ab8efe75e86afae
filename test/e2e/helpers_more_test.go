package e2e

// Helpers of scenario_more_test.go (issue 4, scenarios 8–13). Every identifier here starts
// with "more" so that it cannot clash with helpers written for the other scenarios.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// moreScenarioTimeout bounds the backups of one scenario.
const moreScenarioTimeout = 90 * time.Second

// moreStackName makes a stack (and compose project) name unique to this test, so that two
// suites running on the same machine never share a project: <base>-<testid>. Names keep
// the order of their bases.
func (e *env) moreStackName(base string) string { return base + "-" + e.id }

// moreUpStacks creates a compose stack per name, reloads, and starts the stack units (two
// running containers each).
func (e *env) moreUpStacks(names ...string) []*stack {
	e.t.Helper()
	var out []*stack
	for _, n := range names {
		out = append(out, e.composeStack(n))
	}
	e.daemonReload()
	start := time.Now()
	// One at a time: podman-compose exits 0 even when a container failed to start, and three
	// compose projects brought up in parallel on this 2-core machine once left one project
	// without running containers.
	for _, s := range out {
		if o, err := e.systemctl("start", s.Unit); err != nil {
			e.t.Fatalf("start %s: %v: %s; stack log: %s", s.Unit, err, o, e.tail("stack-"+s.Name+".log"))
		}
		if got := e.runningContainers(s.Project); len(got) != 2 {
			ps, _ := e.podman("ps", "-a", "--filter", "label=io.podman.compose.project="+s.Project, "--format", "{{.Names}} {{.Status}}")
			e.t.Fatalf("project %s runs %v, want 2 containers; podman ps -a: %s; stack log: %s", s.Project, got, oneLine(ps), e.tail("stack-"+s.Name+".log"))
		}
	}
	e.t.Logf("timing: %d stack(s) up in %s", len(out), time.Since(start).Round(time.Millisecond))
	return out
}

// moreStartBackup runs `systemctl --user start args...` bounded by moreScenarioTimeout.
func (e *env) moreStart(args ...string) (string, error) {
	return e.systemctlTimeout(moreScenarioTimeout, append([]string{"start"}, args...)...)
}

// moreSample is one observed ActiveState of a unit.
type moreSample struct {
	At    time.Time
	State string
}

// moreWatch polls the ActiveState of some units every ~100 ms in a goroutine and keeps
// every change (the first sample of each unit included).
type moreWatch struct {
	e       *env
	units   []string
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	changes map[string][]moreSample
	polls   int
	errs    []string
}

func (e *env) moreWatchUnits(units ...string) *moreWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &moreWatch{e: e, units: units, cancel: cancel, done: make(chan struct{}), changes: map[string][]moreSample{}}
	// Take the first sample synchronously, so that nothing after this call is missed.
	w.poll(ctx)
	go func() {
		defer close(w.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			w.poll(ctx)
		}
	}()
	e.t.Cleanup(w.stopQuiet)
	return w
}

func (w *moreWatch) poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	at := time.Now()
	out, err := w.e.systemctlCtx(pctx, append([]string{"show", "-p", "Id,ActiveState"}, w.units...)...)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			w.errs = append(w.errs, fmt.Sprintf("%s: %v: %s", at.Format("15:04:05.000"), err, oneLine(out)))
		}
		return
	}
	w.polls++
	for _, block := range strings.Split(out, "\n\n") {
		var id, state string
		for _, line := range strings.Split(block, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				switch k {
				case "Id":
					id = v
				case "ActiveState":
					state = v
				}
			}
		}
		if id == "" {
			continue
		}
		ch := w.changes[id]
		if len(ch) == 0 || ch[len(ch)-1].State != state {
			w.changes[id] = append(ch, moreSample{At: at, State: state})
		}
	}
}

func (w *moreWatch) stopQuiet() {
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
	}
}

// stop ends the polling and returns the changes per unit.
func (w *moreWatch) stop() map[string][]moreSample {
	w.e.t.Helper()
	w.stopQuiet()
	// A last sample, so that the state at the end is always seen.
	w.poll(context.Background())
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		w.e.t.Logf("watch: %d failed polls, first: %s", len(w.errs), w.errs[0])
	}
	if w.polls < 2 {
		w.e.t.Errorf("watch: only %d successful polls", w.polls)
	}
	out := map[string][]moreSample{}
	for k, v := range w.changes {
		out[k] = append([]moreSample(nil), v...)
	}
	return out
}

func moreFmtSamples(s []moreSample) string {
	var b []string
	for _, x := range s {
		b = append(b, x.At.Format("15:04:05.000")+" "+x.State)
	}
	return strings.Join(b, ", ")
}

// moreInterval is a closed time interval.
type moreInterval struct{ From, To time.Time }

func (i moreInterval) overlaps(j moreInterval) bool {
	return !i.To.Before(j.From) && !j.To.Before(i.From)
}

func (i moreInterval) String() string {
	return fmt.Sprintf("[%s, %s] (%s)", i.From.Format("15:04:05.000"), i.To.Format("15:04:05.000"), i.To.Sub(i.From).Round(time.Millisecond))
}

// moreDownIntervals derives from polled changes the intervals in which a unit was not
// active (from the first non-active sample to the next active sample).
func moreDownIntervals(s []moreSample) []moreInterval {
	var out []moreInterval
	var from time.Time
	for _, x := range s {
		if x.State != "active" && from.IsZero() {
			from = x.At
		} else if x.State == "active" && !from.IsZero() {
			out = append(out, moreInterval{from, x.At})
			from = time.Time{}
		}
	}
	if !from.IsZero() {
		out = append(out, moreInterval{from, time.Now()})
	}
	return out
}

// showTimes returns timestamp properties of a unit with microseconds
// (`systemctl show --timestamp=us+utc`); unset ones are zero.
func (e *env) showTimes(unit string, props ...string) map[string]time.Time {
	e.t.Helper()
	out, err := e.systemctlTimeout(30*time.Second, "show", "--timestamp=us+utc", "-p", strings.Join(props, ","), unit)
	if err != nil {
		e.t.Fatalf("systemctl --user show --timestamp=us+utc %s: %v: %s", unit, err, oneLine(out))
	}
	m := map[string]time.Time{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || v == "" || v == "n/a" {
			continue
		}
		ts, err := time.Parse("Mon 2006-01-02 15:04:05.000000 MST", v)
		if err != nil {
			// Some properties (LastTriggerUSec) ignore --timestamp in systemd 252.
			ts, err = time.Parse("Mon 2006-01-02 15:04:05 MST", v)
		}
		if err != nil {
			e.t.Fatalf("%s %s=%q: %v", unit, k, v, err)
		}
		m[k] = ts
	}
	return m
}

// moreStackDown is the last down interval of a stack unit by its own timestamps: from
// leaving active (its stop began) to entering active again (its restore finished).
func (e *env) moreStackDown(unit string) moreInterval {
	e.t.Helper()
	ts := e.showTimes(unit, "ActiveExitTimestamp", "ActiveEnterTimestamp")
	iv := moreInterval{ts["ActiveExitTimestamp"], ts["ActiveEnterTimestamp"]}
	if iv.From.IsZero() || iv.To.IsZero() || !iv.To.After(iv.From) {
		e.t.Fatalf("%s: no down interval in its timestamps: %v", unit, ts)
	}
	return iv
}

// moreJobs returns the sim's finished Backup tasks per backup ID that started at or after
// since.
func (s *sim) moreJobs(since time.Time) map[string][]simEvent {
	out := map[string][]simEvent{}
	for _, ev := range s.events() {
		if ev.Operation == "Backup" && !ev.Started.IsZero() && !ev.Started.Before(since) {
			out[ev.BackupID] = append(out[ev.BackupID], ev)
		}
	}
	return out
}

// moreClosedPort returns a loopback address on which nothing listens.
func moreClosedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// moreExecStatus returns the exit status recorded for the Exec line of a unit (property
// prop, e.g. ExecStartPre) whose argv contains word, e.g. "gate": "9", or "" when absent.
func (e *env) moreExecStatus(unit, prop, word string) (string, string) {
	e.t.Helper()
	out, err := e.systemctlTimeout(30*time.Second, "show", "-p", prop, unit)
	if err != nil {
		e.t.Fatalf("show %s %s: %v", unit, prop, err)
	}
	for _, rec := range moreExecRE.FindAllString(out, -1) {
		argv := moreArgvRE.FindStringSubmatch(rec)
		if argv == nil || !strings.Contains(" "+argv[1]+" ", " "+word+" ") {
			continue
		}
		if st := moreStatusRE.FindStringSubmatch(rec); st != nil {
			return st[1], rec
		}
		return "", rec
	}
	return "", out
}

var (
	moreExecRE   = regexp.MustCompile(`\{[^{}]*\}`)
	moreArgvRE   = regexp.MustCompile(`argv\[\]=([^;]*);`)
	moreStatusRE = regexp.MustCompile(`status=([0-9]+)`)
)

// moreAccuracy writes a drop-in for every backup@*.timer with AccuracySec=1s: the
// generator does not set AccuracySec, and the default of 1 min lets a timer fire up to a
// minute late (see TestScenario12Timer).
func (e *env) moreAccuracy() {
	e.writeUserUnit("backup@.timer.d/90-e2e-accuracy.conf", "[Timer]\nAccuracySec=1s\n")
}

// moreCalendarIn returns an OnCalendar expression (UTC, seconds precision) d from now, and
// the instant it names.
func moreCalendarIn(d time.Duration) (string, time.Time) {
	at := time.Now().Add(d).UTC().Truncate(time.Second).Add(time.Second)
	return at.Format("*-*-* 15:04:05") + " UTC", at
}

// moreReadLines reads a file written by hooks.
func moreReadLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// moreSerialCheck asserts, for stacks backed up together, that each stack's own job lies in
// its own down interval and that no other stack's job touches it, and returns the stacks in
// the order in which they went down. It logs downtime and job time per stack.
func (e *env) moreSerialCheck(stacks []*stack, ids map[string]string, jobs map[string][]simEvent, polled map[string][]moreSample) []string {
	t := e.t
	t.Helper()
	down := map[string]moreInterval{}
	job := map[string]moreInterval{}
	for _, s := range stacks {
		down[s.Name] = e.moreStackDown(s.Unit)
		evs := jobs[ids[s.Name]]
		if len(evs) != 1 || evs[0].Finished.IsZero() || evs[0].Result != "Success" {
			t.Fatalf("stack %s: want exactly one finished successful Backup of ID %s in the sim, got %+v", s.Name, ids[s.Name], evs)
		}
		job[s.Name] = moreInterval{evs[0].Started, evs[0].Finished}
		pd := moreDownIntervals(polled[s.Unit])
		if len(pd) != 1 {
			t.Errorf("stack %s: polled ActiveState shows %d down intervals, want 1: %s", s.Name, len(pd), moreFmtSamples(polled[s.Unit]))
		}
		t.Logf("stack %s: down %s by unit timestamps (polled: %v); own job %s", s.Name, down[s.Name], pd, job[s.Name])
	}
	for _, s := range stacks {
		d := down[s.Name]
		if j := job[s.Name]; j.From.Before(d.From) || j.To.After(d.To) {
			t.Errorf("stack %s: its own job %s is not inside its down interval %s", s.Name, j, d)
		}
		for _, o := range stacks {
			if o == s {
				continue
			}
			if d.overlaps(job[o.Name]) {
				t.Errorf("stack %s was down %s while stack %s's job ran %s", s.Name, d, o.Name, job[o.Name])
			}
			if d.overlaps(down[o.Name]) {
				t.Errorf("stacks %s %s and %s %s were down at the same time", s.Name, d, o.Name, down[o.Name])
			}
			for _, pd := range moreDownIntervals(polled[s.Unit]) {
				if pd.overlaps(job[o.Name]) {
					t.Errorf("stack %s was seen down %s (polled) while stack %s's job ran %s", s.Name, pd, o.Name, job[o.Name])
				}
			}
		}
	}
	order := make([]string, 0, len(stacks))
	for _, s := range stacks {
		order = append(order, s.Name)
	}
	sort.Slice(order, func(i, j int) bool { return down[order[i]].From.Before(down[order[j]].From) })
	var total time.Duration
	for _, n := range order {
		total += down[n].To.Sub(down[n].From)
	}
	first, last := down[order[0]].From, down[order[len(order)-1]].To
	t.Logf("order observed: %v; total downtime %s; first stop to last restore %s", order, total.Round(time.Millisecond), last.Sub(first).Round(time.Millisecond))
	return order
}

// moreHookCmd is the HCL list of a hook that appends "<kind> result=<SERVICE_RESULT>
// active=<is-active of the stack unit> n=<running containers>" to file, then exits with
// exit. (`$(` and `$VAR` are literal in HCL; only `${` would be a template.)
func moreHookCmd(kind string, st *stack, file string, exit int) string {
	script := fmt.Sprintf("echo %s result=$SERVICE_RESULT active=$(systemctl --user is-active %s) n=$(podman ps -q --filter label=io.podman.compose.project=%s | wc -l) >> %s; exit %d",
		kind, st.Unit, st.Project, file, exit)
	return fmt.Sprintf("[%q, %q, %q]", "/bin/sh", "-c", script)
}

// moreLoggedPath is a file in the test dir.
func (e *env) morePath(name string) string { return filepath.Join(e.dir, name) }

// moreVerify runs `systemd-analyze --user verify args...` in the user's environment.
func moreVerify(e *env, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemd-analyze", append([]string{"--user", "verify"}, args...)...)
	cmd.Env = append(e.userEnv(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	cmd.Dir = e.home
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// moreHistoryEntry is the part of the helper's run history (written by `release`) that the
// scenarios read.
type moreHistoryEntry struct {
	InvocationID string    `json:"invocation_id"`
	Result       string    `json:"result"`
	ExitStatus   string    `json:"exit_status"`
	Finished     time.Time `json:"finished"`
	Failures     []string  `json:"failures"`
}

// moreHistory reads ~/.local/state/backup-stack/history/<stack>.json, or nil.
//
// A backup@ unit that ended well is inactive and, with nothing referring to it, may be
// unloaded by the manager right away; `systemctl show` then reports a fresh unit with
// Result=success and no timestamps, which proves nothing. The history records the run.
func (e *env) moreHistory(stack string) *moreHistoryEntry {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.home, ".local", "state", "backup-stack", "history", stack+".json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var h moreHistoryEntry
	if err := json.Unmarshal(b, &h); err != nil {
		e.t.Fatalf("history of %s: %v: %s", stack, err, b)
	}
	return &h
}

// moreWantSuccess fails unless the last recorded run of stack finished after since with
// result success and no failed steps.
func (e *env) moreWantSuccess(stack string, since time.Time) {
	e.t.Helper()
	h := e.moreHistory(stack)
	if h == nil || h.Finished.Before(since) || h.Result != "success" || len(h.Failures) > 0 {
		e.t.Errorf("backup@%s: last run %+v, want a successful run after %s; units.log: %s", stack, h, since.Format("15:04:05.000"), e.tail("units.log"))
	}
}
