package e2e

// Helpers of scenario_duplicati_test.go (the Duplicati client against the simulator's
// version profiles: a stop while our task is queued, a Fatal job and an existing verify on
// the exec route, the data-folder check and exec_user, a task ID reused after a restart).
// Every identifier here starts with "dup" so that it cannot clash with helpers written for
// the other scenarios.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dupTimeout bounds one backup (or one wait for a state) of these scenarios.
const dupTimeout = 60 * time.Second

// dupRig is one scenario's manager, simulator and stack S (a 2-container compose stack,
// sim backup ID 1 named <S>-job).
type dupRig struct {
	t    *testing.T
	e    *env
	s    *sim
	st   *stack
	name string
	job  string
	unit string // backup@S.service
	hold string // backup-hold@S.service
}

// dupRigOpts configure newDupRig.
type dupRigOpts struct {
	Route   string   // "api" or "exec"
	Version string   // simulator profile, set through POST /sim/quirks
	Job     string   // duration and result of S's job: "20s:Success"
	Others  []string // further sim backups, "ID=NAME:DURATION:RESULT"
	// Extra returns HCL for inside S's stack block (hooks), given the running simulator.
	Extra func(s *sim) string
	// DropIn, when set, is written as backup@S.service.d/90-e2e-dup.conf before the reload.
	DropIn string
}

// newDupRig starts a manager, the simulator (S's job as backup ID 1 plus o.Others) with
// the profile o.Version, the route's config.hcl (exec: a sim container), writes S's stack
// file, brings S up (two containers) and anchors backup@S.
func newDupRig(t *testing.T, base string, o dupRigOpts) *dupRig {
	t.Helper()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	binary(t, "duplicati-sim")
	e := newEnv(t)
	name := e.moreStackName(base)
	r := &dupRig{t: t, e: e, name: name, job: name + "-job", unit: "backup@" + name + ".service", hold: "backup-hold@" + name + ".service"}
	r.s = e.startSim(append([]string{fmt.Sprintf("1=%s:%s", r.job, o.Job)}, o.Others...)...)
	r.s.dupSetVersion(o.Version)
	switch o.Route {
	case "api":
		e.writeConfig(restConfig(r.s))
	case "exec":
		e.writeConfig(execConfig(e.simContainer()))
	default:
		t.Fatalf("newDupRig: unknown route %q", o.Route)
	}
	extra := ""
	if o.Extra != nil {
		extra = o.Extra(r.s)
	}
	e.writeStack(name, fmt.Sprintf(`stack %q {
  jobs          = [%q]
  stop_timeout  = "30s"
  start_timeout = "30s"
  wait_timeout  = "2m"
%s}
`, name, r.job, extra))
	if o.DropIn != "" {
		e.writeUserUnit(r.unit+".d/90-e2e-dup.conf", o.DropIn)
	}
	r.st = e.moreUpStacks(name)[0]
	if p := e.show(r.unit, "LoadState", "DropInPaths"); p["LoadState"] != "loaded" || !strings.Contains(p["DropInPaths"], "50-stack.conf") {
		out, _ := e.systemctl("cat", r.unit)
		t.Fatalf("%s: %v, want loaded with its generated drop-in; cat: %s; manager.log: %s", r.unit, p, oneLine(out), e.tail("manager.log"))
	}
	e.basicAnchor(r.unit)
	return r
}

// dupSetVersion switches the simulator to a version profile and checks it took.
func (s *sim) dupSetVersion(v string) {
	s.e.t.Helper()
	s.setQuirks(map[string]any{"Version": v})
	b, err := s.do("GET", "/sim/quirks", nil)
	if err != nil {
		s.e.t.Fatal(err)
	}
	var q struct{ Version string }
	if err := json.Unmarshal(b, &q); err != nil || q.Version != v {
		s.e.t.Fatalf("GET /sim/quirks after setting Version %q: %s (%v)", v, oneLine(string(b)), err)
	}
}

// dupHoldHook is a pre_backup hook that POSTs /sim/hold for backupID and d: a task of
// Duplicati's own (Verify) takes the queue after the gate saw Duplicati idle and the stack
// is down, right before `run`. (The gate waits for an idle Duplicati, so a hold placed
// before the backup would only delay it.)
func dupHoldHook(s *sim, backupID string, d time.Duration) string {
	u := s.URL + "/sim/hold?" + url.Values{"backup": {backupID}, "duration": {d.String()}}.Encode()
	return fmt.Sprintf("  hook \"pre_backup\" {\n    command = [\"curl\", \"-fsS\", \"-X\", \"POST\", \"-d\", \"\", %q]\n    timeout = \"20s\"\n  }\n", u)
}

// dupEvent mirrors duplicatisim.Event, with Boot (simEvent has none).
// dupEvent is the simulator's record of one task.
type dupEvent = simEvent

func (ev dupEvent) String() string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("15:04:05.000")
	}
	return fmt.Sprintf("{task %d boot %d backup %q %s queued %s started %s finished %s result %q}",
		ev.TaskID, ev.Boot, ev.BackupID, ev.Operation, f(ev.Queued), f(ev.Started), f(ev.Finished), ev.Result)
}

func (s *sim) dupEvents() []dupEvent { return s.events() }

// dupFind returns the first event matching cond.
func (s *sim) dupFind(cond func(dupEvent) bool) (dupEvent, bool) {
	for _, ev := range s.dupEvents() {
		if cond(ev) {
			return ev, true
		}
	}
	return dupEvent{}, false
}

// dupWait waits for an event matching cond.
func (s *sim) dupWait(what string, cond func(dupEvent) bool) dupEvent {
	s.e.t.Helper()
	var got dupEvent
	s.e.waitFor(what, dupTimeout, 25*time.Millisecond, func() bool {
		var ok bool
		got, ok = s.dupFind(cond)
		return ok
	})
	return got
}

func dupFmtEvents(evs []dupEvent) string {
	var b []string
	for _, ev := range evs {
		b = append(b, ev.String())
	}
	return strings.Join(b, ", ")
}

// dupLogin logs in on the simulator's REST API with its password and returns the token.
func (s *sim) dupLogin() string {
	s.e.t.Helper()
	body, _ := json.Marshal(map[string]any{"Password": s.Password, "RememberMe": false})
	b, err := s.do("POST", "/api/v1/auth/login", body)
	if err != nil {
		s.e.t.Fatal(err)
	}
	var out struct{ AccessToken string }
	if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" {
		s.e.t.Fatalf("login: %v: %s", err, oneLine(string(b)))
	}
	return out.AccessToken
}

// dupRun is POST /api/v1/backup/{id}/run with a bearer token; it returns the task ID.
func (s *sim) dupRun(token, backupID string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/api/v1/backup/"+url.PathEscape(backupID)+"/run", bytes.NewReader(nil))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("POST backup/%s/run: %s: %s", backupID, resp.Status, oneLine(string(b)))
	}
	var out struct{ ID int64 }
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("POST backup/%s/run: %v: %s", backupID, err, oneLine(string(b)))
	}
	return out.ID, nil
}

// dupLine is one line of units.log with the time the watcher first saw it (at or after it
// was written).
type dupLine struct {
	At   time.Time
	Text string
}

// dupLogWatch tails units.log every 20 ms from where it ended when the watch began.
type dupLogWatch struct {
	mu     sync.Mutex
	lines  []dupLine
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *env) dupWatchLog() *dupLogWatch {
	path := filepath.Join(e.dir, "units.log")
	var off int64
	if fi, err := os.Stat(path); err == nil {
		off = fi.Size()
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &dupLogWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var part []byte
		read := func() {
			f, err := os.Open(path)
			if err != nil {
				return
			}
			defer f.Close()
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return
			}
			b, _ := io.ReadAll(f)
			if len(b) == 0 {
				return
			}
			now := time.Now()
			off += int64(len(b))
			part = append(part, b...)
			w.mu.Lock()
			for {
				i := bytes.IndexByte(part, '\n')
				if i < 0 {
					break
				}
				w.lines = append(w.lines, dupLine{At: now, Text: string(part[:i])})
				part = part[i+1:]
			}
			w.mu.Unlock()
		}
		for {
			read()
			select {
			case <-ctx.Done():
				read()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// stop ends the watch and returns the lines seen.
func (w *dupLogWatch) stop() []dupLine {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]dupLine(nil), w.lines...)
}

// dupStackStatus is one row of `backup-stack status --stacks --json`, with the reason.
// dupStackStatus is one row of `status --stacks --json`.
type dupStackStatus = faultStackStatus

func (e *env) dupStatus(stack string) (dupStackStatus, string) { return e.faultStatus(stack) }

// settle waits until backup@S has settled and returns its properties.
func (r *dupRig) settle() map[string]string {
	r.t.Helper()
	var p map[string]string
	r.e.waitFor(r.unit+" to settle", dupTimeout, 100*time.Millisecond, func() bool {
		p = r.e.show(r.unit, "LoadState", "ActiveState", "Result", "Job", "ExecMainCode", "ExecMainStatus", "InvocationID")
		return p["ActiveState"] != "activating" && p["ActiveState"] != "deactivating" && (p["Job"] == "" || p["Job"] == "0")
	})
	return p
}

// expectStackBack: S's unit is active with both containers running (podman ps -a), the
// hold unit inactive, and the plan restored and finished.
func (r *dupRig) expectStackBack(when string) {
	r.t.Helper()
	r.e.faultWaitUp(r.st, time.Now(), 30*time.Second)
	ps, _ := r.e.podman("ps", "-a", "--filter", "label=io.podman.compose.project="+r.st.Project, "--format", "{{.Names}}\t{{.Status}}")
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(ps), "\n") {
		if name, status, ok := strings.Cut(l, "\t"); ok {
			states = append(states, status)
			if !strings.HasPrefix(status, "Up ") {
				r.t.Errorf("%s: podman ps -a shows %s %q, want it running (Up ...)", when, name, status)
			}
		}
	}
	if len(states) != 2 {
		r.t.Errorf("%s: podman ps -a shows %d containers of %s (%s), want 2 running", when, len(states), r.st.Project, oneLine(ps))
	}
	if st := r.e.show(r.hold, "ActiveState")["ActiveState"]; st != "inactive" {
		r.t.Errorf("%s: %s ActiveState = %s, want inactive", when, r.hold, st)
	}
	if p := r.e.faultReadPlan(r.name); p == nil || !p.Restored || !p.Finished {
		r.t.Errorf("%s: plan %+v, want restored and finished", when, p)
	}
}

// expectReason checks the reason of the last run: every want is in the history's reason
// and in the reason of `status --stacks --json`, no unwanted word is in them, and the run
// did not succeed. `backup-stack list` is checked in the subtest list-shows-reason: its
// LAST RESULT cell must show the same (and none of the unwanted words). It returns the
// history.
func (r *dupRig) expectReason(want, unwanted []string) *faultHistory {
	r.t.Helper()
	h := r.e.faultReadHistory(r.name)
	if h == nil {
		r.t.Fatalf("no run history of %s; units.log: %s", r.name, r.e.tail("units.log"))
	}
	st, raw := r.e.dupStatus(r.name)
	line := strings.Join(strings.Fields(r.e.faultListLine(r.name)), " ")
	r.t.Logf("history: result %q exit %q reason %q", h.Result, h.ExitStatus, h.Reason)
	r.t.Logf("status --stacks --json: last_result %q reason %q", st.LastResult, st.Reason)
	r.t.Logf("backup-stack list: %q", line)
	for _, w := range want {
		if !strings.Contains(h.Reason, w) {
			r.t.Errorf("history reason %q does not contain %q", h.Reason, w)
		}
		if !strings.Contains(st.Reason, w) {
			r.t.Errorf("status --stacks --json reason %q does not contain %q: %s", st.Reason, w, oneLine(raw))
		}
	}
	for _, u := range unwanted {
		for what, s := range map[string]string{"history reason": h.Reason, "status --stacks --json reason": st.Reason, "backup-stack list line": line} {
			if strings.Contains(s, u) {
				r.t.Errorf("%s %q contains %q", what, s, u)
			}
		}
	}
	if st.LastResult == "success" || h.Result == "success" && len(h.Failures) == 0 {
		r.t.Errorf("last result %q / history %+v, want a failure", st.LastResult, h)
	}
	r.t.Run("list-shows-reason", func(t *testing.T) {
		for _, w := range want {
			if strings.Contains(line, w) {
				continue
			}
			cell := line
			if i := strings.Index(line, h.Reason[:min(len(h.Reason), 20)]); i >= 0 {
				cell = line[i:]
			}
			t.Errorf("backup-stack list does not show %q: its reason cell is %q; the reason is %d runes, and list cuts it at 100 (shortReason, cmd/backup-stack/list.go) while the prefix before Duplicati's words (%q) already takes %d",
				w, cell, len([]rune(h.Reason)), dupReasonPrefix(h.Reason), len([]rune(dupReasonPrefix(h.Reason))))
		}
	})
	return h
}

// dupReasonPrefix is the part of a run's reason before Duplicati's own words: up to and
// including "(backup ID N): ".
func dupReasonPrefix(reason string) string {
	const mark = "(backup ID "
	i := strings.Index(reason, mark)
	if i < 0 {
		return ""
	}
	if j := strings.Index(reason[i:], "): "); j >= 0 {
		return reason[:i+j+3]
	}
	return reason[:i]
}

// dupMs formats a duration in milliseconds.
func dupMs(d time.Duration) string { return d.Round(time.Millisecond).String() }
