package duplicati

// Tests of both routes against the simulator (internal/duplicatisim). The exec route runs the
// stand-in util (cmd/duplicati-sim, built in TestMain, symlinked as duplicati-server-util).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

var (
	utilPath  string // the stand-in duplicati-server-util
	utilError error
)

func TestMain(m *testing.M) {
	progressEvery = 400 * time.Millisecond // production: 30s
	dir, err := os.MkdirTemp("", "duplicati-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "duplicati-sim")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/backup-stack/backup-stack/cmd/duplicati-sim").CombinedOutput()
	if err != nil {
		utilError = fmt.Errorf("building cmd/duplicati-sim: %v\n%s", err, out)
	} else {
		utilPath = filepath.Join(dir, "duplicati-server-util")
		if err := os.Symlink(bin, utilPath); err != nil {
			utilError = err
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuf collects Logf lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *logBuf) Has(s string) bool { return strings.Contains(l.String(), s) }

// env is one simulator behind an httptest server.
type env struct {
	sim    *duplicatisim.Sim
	srv    *httptest.Server
	url    string // what the client is told (may be a dead address)
	config string // XDG_CONFIG_HOME of the util
	logs   *logBuf
	mark   atomic.Int64 // UnixNano of a moment a `during` hook records (cancel, quirk switch)
}

type envOpts struct {
	noPassword bool   // the server has no password set (a random one: no login works)
	dead       bool   // client URL points at a closed port
	forceHost  string // rewrite the Host header the sim sees (hostname check)
}

// testPassword is the server password of every env that does not set its own (a real
// server always has one, and refuses an empty one).
const testPassword = "pw-of-the-test"

func newEnv(t testing.TB, backups []duplicatisim.Backup, q duplicatisim.Quirks, eo envOpts) *env {
	t.Helper()
	if q.Password == "" && !eo.noPassword {
		q.Password = testPassword
	}
	sim := duplicatisim.New(backups, q)
	h := sim.Handler()
	if eo.forceHost != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Host = eo.forceHost
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	e := &env{sim: sim, srv: srv, url: srv.URL, logs: &logBuf{}, config: t.TempDir()}
	if eo.dead {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.url = "http://" + l.Addr().String()
		l.Close()
	}
	return e
}

func (e *env) backend(t testing.TB, route string, mod func(*Options)) Backend {
	t.Helper()
	o := Options{Logf: e.logs.Logf}
	switch route {
	case "api":
		o.URL = e.url // PollInterval: default 500ms
		o.Password = testPassword
	case "exec":
		if utilError != nil {
			t.Fatal(utilError)
		}
		// The util keeps a settings file under XDG_CONFIG_HOME (a refresh token): one per env.
		o.Command = []string{"env", "DUPLICATI_SIM_HOSTURL=" + e.url, "XDG_CONFIG_HOME=" + e.config, utilPath}
		o.PollInterval = 100 * time.Millisecond
		o.RunTimeout = 3 * time.Second
	}
	if mod != nil {
		mod(&o)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitEvent polls the sim's events until pred holds for one of them.
func waitEvent(t testing.TB, sim *duplicatisim.Sim, d time.Duration, pred func(duplicatisim.Event) bool) (duplicatisim.Event, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, ev := range sim.Events() {
			if pred(ev) {
				return ev, true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return duplicatisim.Event{}, false
}

func started(bid string) func(duplicatisim.Event) bool {
	return func(ev duplicatisim.Event) bool {
		return ev.BackupID == bid && ev.Operation == "Backup" && !ev.Started.IsZero()
	}
}

// eventFor is the sim's event for oc: by task ID when known, else the backup's last backup task.
func eventFor(sim *duplicatisim.Sim, oc Outcome) (duplicatisim.Event, bool) {
	var found duplicatisim.Event
	ok := false
	for _, ev := range sim.Events() {
		if oc.TaskID != 0 && ev.TaskID == oc.TaskID {
			return ev, true
		}
		if oc.TaskID == 0 && ev.BackupID == oc.BackupID && ev.Operation == "Backup" {
			found, ok = ev, true
		}
	}
	return found, ok
}

type scenario struct {
	name    string
	routes  []string // default both
	backups []duplicatisim.Backup
	quirks  duplicatisim.Quirks
	env     envOpts
	opts    func(*Options)
	before  func(t *testing.T, e *env)
	// during runs concurrently with Run; cancel cancels Run's context.
	during func(t *testing.T, e *env, cancel context.CancelFunc)
	job    string
	api    Result // expected Result on the API route when err is nil
	// exec is the expected Result on the exec route from 2.1.2.0 on, which reads the
	// backup's metadata ("" = derived from api: Warning and Error show as Success there,
	// since only a run that threw leaves a trace). Before 2.1.2.0 it is always Unknown.
	exec    Result
	wantErr []error
	maxDur  time.Duration
	check   func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration)
}

func docs(d time.Duration, result string) []duplicatisim.Backup {
	return []duplicatisim.Backup{
		{ID: "1", Name: "Docs", Duration: d, Result: result},
		{ID: "2", Name: "Photos", Duration: d, Result: "Success"},
	}
}

var both = []string{"api", "exec"}

func TestRun(t *testing.T) {
	scenarios := []scenario{
		{name: "success", backups: docs(600*time.Millisecond, "Success"), api: ResultSuccess},
		{name: "by ID", job: "1", backups: docs(300*time.Millisecond, "Success"), api: ResultSuccess},
		{name: "warning", backups: docs(600*time.Millisecond, "Warning"), api: ResultWarning,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if route == "api" && !strings.Contains(oc.Message, "warning") {
					t.Errorf("Message %q does not name the warning", oc.Message)
				}
			}},
		{name: "error", backups: docs(600*time.Millisecond, "Error"), api: ResultError},
		{name: "fatal", backups: docs(600*time.Millisecond, "Fatal"), api: ResultFatal,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if route == "api" && !strings.Contains(oc.Message, "simulated fatal error") {
					t.Errorf("Message %q is not the task's ErrorMessage", oc.Message)
				}
			}},
		{name: "run hangs after enqueue, job outlasts RunTimeout", routes: []string{"exec"},
			backups: docs(2*time.Second, "Success"), quirks: duplicatisim.Quirks{RunHangs: true},
			opts: func(o *Options) { o.RunTimeout = 700 * time.Millisecond }, maxDur: 5 * time.Second,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if !e.logs.Has("killed") {
					t.Error("no log line about the killed run")
				}
			}},
		{name: "run hangs after enqueue, job ends during the hang", routes: []string{"exec"},
			backups: docs(500*time.Millisecond, "Success"), quirks: duplicatisim.Quirks{RunHangs: true},
			opts: func(o *Options) { o.RunTimeout = 2 * time.Second }, maxDur: 5 * time.Second},
		{name: "run hangs before enqueue", routes: []string{"exec"},
			backups: docs(500*time.Millisecond, "Success"), quirks: duplicatisim.Quirks{RunHangsBeforeEnqueue: true},
			opts:    func(o *Options) { o.RunTimeout = 700 * time.Millisecond },
			wantErr: []error{ErrUnreachable}, maxDur: 700*time.Millisecond + 2*time.Second,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if !strings.Contains(err.Error(), "nothing was enqueued") {
					t.Errorf("error is not clear: %v", err)
				}
				if n := len(e.sim.Events()); n != 0 {
					t.Errorf("%d tasks were enqueued", n)
				}
			}},
		{name: "queued before active", backups: docs(300*time.Millisecond, "Success"),
			quirks: duplicatisim.Quirks{QueuedDelay: 1200 * time.Millisecond}, api: ResultSuccess},
		{name: "another task holds the queue", backups: docs(300*time.Millisecond, "Warning"), api: ResultWarning,
			before: func(t *testing.T, e *env) { e.sim.HoldQueue("2", 1200*time.Millisecond) },
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if !e.logs.Has("queued") {
					t.Error("no log line saying the task is queued")
				}
				if oc.Existing {
					t.Error("Existing set for a fresh task")
				}
			}},
		{name: "existing task of the same backup", backups: docs(300*time.Millisecond, "Success"), api: ResultUnknown, exec: ResultUnknown,
			before: func(t *testing.T, e *env) { e.sim.HoldQueue("1", 1200*time.Millisecond) },
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if !oc.Existing || !e.logs.Has("already") {
					t.Errorf("existing task not reported: Existing=%v, log:\n%s", oc.Existing, e.logs)
				}
				ev, _ := eventFor(e.sim, oc)
				if ev.Operation != "Verify" {
					t.Errorf("waited for %+v, want the verify task", ev)
				}
				for _, ev := range e.sim.Events() {
					if ev.Operation == "Backup" {
						t.Errorf("a backup task was enqueued: %+v", ev)
					}
				}
			}},
		{name: "paused server", backups: docs(300*time.Millisecond, "Success"), quirks: duplicatisim.Quirks{Paused: true},
			opts:    func(o *Options) { o.WaitTimeout = 1200 * time.Millisecond; o.AbortWait = time.Second },
			wantErr: []error{ErrTimeout, ErrStillHeld}, maxDur: 1200*time.Millisecond + 1000*time.Millisecond + 1500*time.Millisecond,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				b := e.backend(t, route, nil)
				st, err := b.State(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if !st.Paused || !strings.HasPrefix(st.String(), "paused") || st.Idle() {
					t.Errorf("state %+v (%s): want paused with our task queued", st, st)
				}
				if _, _, ok := st.Holds("1"); !ok {
					t.Errorf("state %s does not hold backup 1", st)
				}
				if !e.logs.Has("paused") {
					t.Error("no log line about the paused server")
				}
			}},
		{name: "token expiry", backups: docs(1500*time.Millisecond, "Success"), api: ResultSuccess,
			quirks: duplicatisim.Quirks{TokenTTL: 300 * time.Millisecond},
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if route == "api" && !e.logs.Has("logging in again") {
					t.Error("no re-login logged")
				}
			}},
		{name: "restart at job end", backups: docs(600*time.Millisecond, "Warning"), api: ResultWarning,
			quirks: duplicatisim.Quirks{RestartAtJobEnd: true},
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if route == "api" && !strings.Contains(oc.Message, "vanished") {
					t.Errorf("Message %q does not say the result came from the log after the task vanished", oc.Message)
				}
			}},
		{name: "race gap", backups: docs(500*time.Millisecond, "Success"), api: ResultSuccess,
			quirks: duplicatisim.Quirks{RaceGap: true},
			before: func(t *testing.T, e *env) { e.sim.HoldQueue("2", 800*time.Millisecond) }},
		{name: "unparseable status", routes: []string{"exec"}, backups: docs(300*time.Millisecond, "Success"),
			quirks: duplicatisim.Quirks{StatusGarbage: true}, wantErr: []error{ErrUnparseable}, maxDur: 1500 * time.Millisecond},
		{name: "unparseable status while waiting", routes: []string{"exec"}, backups: docs(5*time.Second, "Success"),
			wantErr: []error{ErrUnparseable}, maxDur: 4 * time.Second,
			during: func(t *testing.T, e *env, cancel context.CancelFunc) {
				if _, ok := waitEvent(t, e.sim, 3*time.Second, started("1")); ok {
					time.Sleep(700 * time.Millisecond) // well into the wait loop
					e.mark.Store(time.Now().UnixNano())
					e.sim.SetQuirks(func(q *duplicatisim.Quirks) { q.StatusGarbage = true })
				}
			},
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if oc.TaskID == 0 || !e.logs.Has("running") {
					t.Error("the switch did not happen during the wait")
				}
				// within one poll (100ms) plus process start-up
				if d := time.Since(time.Unix(0, e.mark.Load())); d > time.Second {
					t.Errorf("ErrUnparseable %s after the output changed", d)
				}
			}},
		{name: "unreachable", env: envOpts{dead: true}, backups: docs(300*time.Millisecond, "Success"),
			wantErr: []error{ErrUnreachable}, maxDur: 5 * time.Second},
		{name: "no such job", job: "Nope", backups: docs(300*time.Millisecond, "Success"), wantErr: []error{ErrNoSuchJob}, maxDur: 3 * time.Second},
		{name: "cancelled while running", backups: docs(6*time.Second, "Success"), wantErr: []error{ErrInterrupted},
			maxDur: 3*time.Second + 7*time.Second,
			during: func(t *testing.T, e *env, cancel context.CancelFunc) {
				waitEvent(t, e.sim, 3*time.Second, started("1"))
				time.Sleep(700 * time.Millisecond) // well into the wait loop
				e.mark.Store(time.Now().UnixNano())
				cancel()
			},
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if errors.Is(err, ErrStillHeld) {
					t.Errorf("the task was still held when Run returned: %v", err)
				}
				if !e.logs.Has("running") {
					t.Error("cancelled before the wait loop saw the task running")
				}
				ev, ok := waitEvent(t, e.sim, time.Second, started("1"))
				if !ok {
					t.Fatal("task never started")
				}
				switch route {
				case "api":
					if ev.Result != "Aborted" {
						t.Errorf("task not aborted: %+v", ev)
					}
					if !e.logs.Has("abort") {
						t.Error("abort not logged")
					}
				case "exec":
					if ev.Result == "Aborted" {
						t.Errorf("exec route cannot abort, yet: %+v", ev)
					}
					// It cannot abort, so it waits until Duplicati is done with the task.
					if ev.Finished.IsZero() || ev.Finished.After(time.Now()) {
						t.Errorf("Run returned before the task ended: %+v", ev)
					}
					if !e.logs.Has("duplicati-server-util cannot abort it") {
						t.Error("missing the plain 'cannot abort it' line")
					}
				}
			}},
		{name: "wrong password", routes: []string{"api"}, backups: docs(300*time.Millisecond, "Success"),
			quirks: duplicatisim.Quirks{Password: "right"}, opts: func(o *Options) { o.Password = "wrong" },
			wantErr: []error{ErrAuth, ErrUnreachable}, maxDur: 3 * time.Second,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if strings.Contains(err.Error()+e.logs.String(), "wrong") {
					t.Error("password leaked into the error or log")
				}
			}},
		{name: "right password", routes: []string{"api"}, backups: docs(300*time.Millisecond, "Success"), api: ResultSuccess,
			quirks: duplicatisim.Quirks{Password: "s3cret"}, opts: func(o *Options) { o.Password = "s3cret" },
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if e.logs.Has("s3cret") {
					t.Error("password logged")
				}
			}},
		{name: "hostname not allowed", routes: []string{"api"}, backups: docs(300*time.Millisecond, "Success"),
			env: envOpts{forceHost: "duplicati:8200"}, wantErr: []error{ErrUnreachable}, maxDur: 3 * time.Second,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				if !strings.Contains(err.Error(), "DUPLICATI__WEBSERVICE_ALLOWED_HOSTNAMES") || !strings.Contains(err.Error(), "Invalid hostname") {
					t.Errorf("error gives no hint: %v", err)
				}
			}},
		{name: "hostname allowed", routes: []string{"api"}, backups: docs(300*time.Millisecond, "Success"), api: ResultSuccess,
			env: envOpts{forceHost: "duplicati:8200"}, quirks: duplicatisim.Quirks{AllowedHosts: []string{"duplicati"}}},
		{name: "progress lines", backups: docs(2*time.Second, "Success"), api: ResultSuccess,
			check: func(t *testing.T, e *env, route string, oc Outcome, err error, took time.Duration) {
				want := "still running"
				if route == "api" {
					want = "Backup_ProcessingFiles"
				}
				if !e.logs.Has(want) {
					t.Errorf("no progress line with %q", want)
				}
			}},
	}
	for _, ver := range duplicatisim.Versions {
		for _, sc := range scenarios {
			routes := sc.routes
			if routes == nil {
				routes = both
			}
			for _, route := range routes {
				t.Run(ver+"/"+route+"/"+sc.name, func(t *testing.T) {
					t.Parallel()
					// 4 profiles x 2 routes x the table: bound what runs at once, or the
					// util's process starts on 2 cores stretch every timing.
					scenarioSlots <- struct{}{}
					defer func() { <-scenarioSlots }()
					runScenario(t, sc, route, ver)
				})
			}
		}
	}
}

var scenarioSlots = make(chan struct{}, 12)

// execResult is what the exec route can tell of a job whose API-route result is r.
func execResult(r Result) Result {
	switch r {
	case "", ResultWarning, ResultError: // "": an exec-only scenario of a successful job
		return ResultSuccess
	}
	return r
}

func runScenario(t *testing.T, sc scenario, route, ver string) {
	q := sc.quirks
	q.Version = ver
	e := newEnv(t, sc.backups, q, sc.env)
	defer func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("log:\n%s\nevents: %+v", e.logs, e.sim.Events())
		}
	}()
	if sc.before != nil {
		sc.before(t, e)
	}
	b := e.backend(t, route, sc.opts)
	job := sc.job
	if job == "" {
		job = "Docs"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	if sc.during != nil {
		wg.Add(1)
		go func() { defer wg.Done(); sc.during(t, e, cancel) }()
	}
	start := time.Now()
	oc, err := b.Run(ctx, job)
	took := time.Since(start)
	returned := time.Now()
	close(done)
	wg.Wait()
	t.Logf("%s: took %s, outcome %+v, err %v", route, took, oc, err)

	maxDur := sc.maxDur
	if maxDur == 0 {
		maxDur = 15 * time.Second
	}
	if took > maxDur {
		t.Errorf("Run took %s, want at most %s", took, maxDur)
	}
	if oc.Job != job {
		t.Errorf("Outcome.Job = %q", oc.Job)
	}
	if len(sc.wantErr) > 0 {
		for _, w := range sc.wantErr {
			if !errors.Is(err, w) {
				t.Errorf("err = %v, want %v", err, w)
			}
		}
		if oc.Result != ResultUnknown {
			t.Errorf("Result %q with an error", oc.Result)
		}
	} else {
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		want := sc.api
		if route == "exec" {
			want = sc.exec
			if want == "" {
				want = execResult(sc.api)
			}
			if ver == "2.1.0.5" {
				want = ResultUnknown
				if oc.Message != execUnknownMsg || !oc.UnknownIsSuccess {
					t.Errorf("exec on %s: Message = %q, UnknownIsSuccess %v", ver, oc.Message, oc.UnknownIsSuccess)
				}
			} else if oc.UnknownIsSuccess {
				t.Errorf("exec on %s: UnknownIsSuccess set, but the metadata tells", ver)
			}
		}
		if oc.Result != want {
			t.Errorf("Result = %q, want %q", oc.Result, want)
		}
		if oc.BackupID != "1" {
			t.Errorf("BackupID = %q", oc.BackupID)
		}
		if route == "api" && oc.TaskID == 0 {
			t.Error("API route without TaskID")
		}
		ev, ok := eventFor(e.sim, oc)
		if !ok || ev.Finished.IsZero() {
			t.Fatalf("Run said done, but the sim's task is not finished: %+v (found %v)", ev, ok)
		}
		if oc.Finished.Before(ev.Finished) {
			t.Errorf("Outcome.Finished %s is before the sim's Finished %s", oc.Finished.Format(time.StampMicro), ev.Finished.Format(time.StampMicro))
		}
		if oc.Started.IsZero() || oc.Finished.Before(oc.Started) {
			t.Errorf("Started %s / Finished %s", oc.Started, oc.Finished)
		}
		// Nothing of our backup may still be queued or active when Run returned.
		for _, ev := range e.sim.Events() {
			if ev.BackupID == "1" && ev.Queued.Before(returned) && (ev.Finished.IsZero() || ev.Finished.After(returned)) && ev.Result != "Dropped" {
				t.Errorf("Run returned while task %+v was still pending", ev)
			}
		}
	}
	if sc.check != nil {
		sc.check(t, e, route, oc, err, took)
	}
}

// TestStateRoutes compares State on both routes for the same server state.
func TestStateRoutes(t *testing.T) {
	e := newEnv(t, docs(3*time.Second, "Success"), duplicatisim.Quirks{}, envOpts{})
	e.sim.HoldQueue("2", 3*time.Second)
	e.sim.HoldQueue("1", 3*time.Second)
	if _, ok := waitEvent(t, e.sim, 2*time.Second, func(ev duplicatisim.Event) bool { return !ev.Started.IsZero() }); !ok {
		t.Fatal("hold task never started")
	}
	var got []string
	for _, route := range both {
		st, err := e.backend(t, route, nil).State(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", route, err)
		}
		got = append(got, st.String())
	}
	want := "running task 2 of backup 2; queued: task 3 (backup 1)" // a fresh server's first task is 2
	for i, s := range got {
		if s != want {
			t.Errorf("%s: State = %q, want %q", both[i], s, want)
		}
	}
}

// TestAPIUnparseable: an answer the client does not understand is ErrUnparseable, promptly.
func TestAPIUnparseable(t *testing.T) {
	for _, tc := range []struct{ name, path, body string }{
		{"task status", "/api/v1/task/5", `{"Status":"Sleeping","ID":5}`},
		{"task json", "/api/v1/task/5", `<html>`},
		{"server state", "/api/v1/serverstate", `{"ProgramState":"Dozing","SchedulerQueueIds":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"AccessToken":"t"}`) })
			mux.HandleFunc("GET /api/v1/backups", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `[{"Backup":{"ID":"1","Name":"Docs"}}]`) })
			mux.HandleFunc("POST /api/v1/backup/1/run", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"Status":"OK","ID":5}`) })
			mux.HandleFunc("GET /api/v1/serverstate", func(w http.ResponseWriter, r *http.Request) {
				if tc.path == r.URL.Path {
					fmt.Fprint(w, tc.body)
					return
				}
				fmt.Fprint(w, `{"ActiveTask":null,"ProgramState":"Running","SchedulerQueueIds":[]}`)
			})
			mux.HandleFunc("GET /api/v1/task/5", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, tc.body) })
			srv := httptest.NewServer(mux)
			defer srv.Close()
			b, err := New(Options{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = b.Run(context.Background(), "Docs")
			if !errors.Is(err, ErrUnparseable) || time.Since(start) > 2*time.Second {
				t.Fatalf("err = %v after %s, want ErrUnparseable at once", err, time.Since(start))
			}
		})
	}
}
