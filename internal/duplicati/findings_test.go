package duplicati

// One test per way the real Duplicati (reference section 10) is unkinder than the first
// simulator was. Each failed against the client before it verified aborts, read results
// from the metadata on the exec route and checked task identities after a restart.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

// linesBefore returns the log lines written before t that contain sub (case-insensitive).
func (l *logBuf) linesBefore(t time.Time, sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		ts, err := time.ParseInLocation("15:04:05.000", line[:12], time.Local)
		if err != nil {
			continue
		}
		now := time.Now()
		ts = time.Date(now.Year(), now.Month(), now.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), time.Local)
		if ts.Before(t) && strings.Contains(strings.ToLower(line), strings.ToLower(sub)) {
			out = append(out, line)
		}
	}
	return out
}

// eventOf is the sim's event of a task ID.
func eventOf(sim *duplicatisim.Sim, id int64, bid string) (duplicatisim.Event, bool) {
	var found duplicatisim.Event
	ok := false
	for _, ev := range sim.Events() {
		if ev.TaskID == id && ev.BackupID == bid {
			found, ok = ev, true // the last one: IDs repeat after a restart
		}
	}
	return found, ok
}

func withPassword(q duplicatisim.Quirks) duplicatisim.Quirks {
	if q.Password == "" {
		q.Password = "pw-of-the-test"
	}
	return q
}

// TestAbortOfQueuedTaskIsVerified: Duplicati ignores an abort of a queued task. The client
// must not call it aborted, must send the abort again when the task starts, and must return
// only once the task really ended — in every profile.
func TestAbortOfQueuedTaskIsVerified(t *testing.T) {
	for _, ver := range duplicatisim.Versions {
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, docs(3*time.Second, "Success"), withPassword(duplicatisim.Quirks{Version: ver}), envOpts{})
			// Ours queues behind a running task (2.1.0.x puts a run at the front of the queue).
			e.sim.HoldQueue("2", 1500*time.Millisecond)
			waitEvent(t, e.sim, 2*time.Second, func(ev duplicatisim.Event) bool { return ev.BackupID == "2" && !ev.Started.IsZero() })
			b := e.backend(t, "api", func(o *Options) { o.Password = "pw-of-the-test"; o.AbortWait = 15 * time.Second })
			ctx, cancel := context.WithCancel(context.Background())
			var queuedAtCancel atomic.Bool
			go func() {
				waitEvent(t, e.sim, 5*time.Second, func(ev duplicatisim.Event) bool { return ev.BackupID == "1" })
				time.Sleep(300 * time.Millisecond) // seen Waiting
				running := false
				for _, ev := range e.sim.Events() {
					running = running || started("1")(ev)
				}
				queuedAtCancel.Store(!running)
				cancel()
			}()
			oc, err := b.Run(ctx, "Docs")
			returned := time.Now()
			t.Logf("err %v\nlog:\n%s\nevents %+v", err, e.logs, e.sim.Events())
			if !errors.Is(err, ErrInterrupted) || errors.Is(err, ErrStillHeld) {
				t.Fatalf("err = %v, want ErrInterrupted after the task ended", err)
			}
			ev, ok := eventOf(e.sim, oc.TaskID, "1")
			if !ok || ev.Started.IsZero() || ev.Finished.IsZero() || ev.Finished.After(returned) {
				t.Fatalf("Run returned at %s, but the task is %+v: not ended before", returned.Format(time.StampMilli), ev)
			}
			if ev.Finished.Sub(ev.Started) > 2500*time.Millisecond {
				t.Errorf("the task ran %s of its 3s: the abort did not land", ev.Finished.Sub(ev.Started))
			}
			if l := e.logs.linesBefore(ev.Started, "aborted"); len(l) > 0 {
				t.Errorf("the log says aborted while the task was queued: %q", l)
			}
			if !queuedAtCancel.Load() {
				t.Fatalf("the task was not queued when Run was cancelled: the test proves nothing")
			}
			if !e.logs.Has("started; sent the abort again") {
				t.Error("the abort was not sent again when the task started")
			}
		})
	}
}

// TestAbortNotLandingIsStillHeld: when Duplicati still holds the task at the end of
// AbortWait (queued behind a long task, or an abort that never lands, Duplicati #7105),
// Run says so plainly with ErrStillHeld.
func TestAbortNotLandingIsStillHeld(t *testing.T) {
	for _, tc := range []struct {
		name   string
		quirks duplicatisim.Quirks
		hold   time.Duration
	}{
		{"queued behind a long task", duplicatisim.Quirks{}, 6 * time.Second},
		{"abort ignored while running", duplicatisim.Quirks{AbortIgnored: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, docs(8*time.Second, "Success"), withPassword(tc.quirks), envOpts{})
			if tc.hold > 0 {
				e.sim.HoldQueue("2", tc.hold)
			}
			b := e.backend(t, "api", func(o *Options) { o.Password = "pw-of-the-test"; o.AbortWait = 1500 * time.Millisecond })
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				if tc.hold == 0 {
					waitEvent(t, e.sim, 5*time.Second, started("1"))
				} else {
					waitEvent(t, e.sim, 5*time.Second, func(ev duplicatisim.Event) bool { return ev.BackupID == "1" })
				}
				time.Sleep(500 * time.Millisecond)
				cancel()
			}()
			_, err := b.Run(ctx, "Docs")
			t.Logf("err %v\nlog:\n%s", err, e.logs)
			if !errors.Is(err, ErrStillHeld) || !errors.Is(err, ErrInterrupted) {
				t.Fatalf("err = %v, want ErrStillHeld and ErrInterrupted", err)
			}
			for _, want := range []string{"still holds task", "may still back up the live stack", "web UI"} {
				if !strings.Contains(err.Error(), want) || !e.logs.Has(want) {
					t.Errorf("error and log must say %q: %v", want, err)
				}
			}
			if l := e.logs.linesBefore(time.Now(), "aborted"); len(l) > 0 {
				t.Errorf("the log calls a task that did not end aborted: %q", l)
			}
		})
	}
}

// TestAbortOfRunningTaskLandsLate: an abort lands only when the operation notices it. Run
// returns after the task ended, not when the abort was answered.
func TestAbortOfRunningTaskLandsLate(t *testing.T) {
	e := newEnv(t, docs(10*time.Second, "Success"), withPassword(duplicatisim.Quirks{AbortDelay: 1500 * time.Millisecond}), envOpts{})
	b := e.backend(t, "api", func(o *Options) { o.Password = "pw-of-the-test"; o.AbortWait = 10 * time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitEvent(t, e.sim, 5*time.Second, started("1"))
		time.Sleep(800 * time.Millisecond)
		cancel()
	}()
	oc, err := b.Run(ctx, "Docs")
	returned := time.Now()
	if !errors.Is(err, ErrInterrupted) || errors.Is(err, ErrStillHeld) {
		t.Fatalf("err = %v", err)
	}
	ev, _ := eventOf(e.sim, oc.TaskID, "1")
	if ev.Finished.IsZero() || ev.Finished.After(returned) {
		t.Fatalf("returned at %s before the task ended: %+v\nlog:\n%s", returned.Format(time.StampMilli), ev, e.logs)
	}
	if ev.Result != "Aborted" {
		t.Errorf("sim event %+v, want Aborted", ev)
	}
}

// TestExecResultFromMetadata: on the exec route a job that throws, and a run answered by
// an existing verify task, are not successes where the metadata tells (2.1.2.0 and later);
// before 2.1.2.0 the result is "finished, result unknown".
func TestExecResultFromMetadata(t *testing.T) {
	for _, ver := range duplicatisim.Versions {
		old := ver == "2.1.0.5"
		for _, tc := range []struct {
			name    string
			result  string
			verify  bool
			want    Result
			message string
		}{
			{"fatal", "Fatal", false, ResultFatal, "simulated fatal error"},
			{"success", "Success", false, ResultSuccess, "finished"},
			{"existing verify task", "Success", true, ResultUnknown, "no backup ran"},
		} {
			t.Run(ver+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, docs(500*time.Millisecond, tc.result), duplicatisim.Quirks{Version: ver}, envOpts{})
				if tc.verify {
					e.sim.HoldQueue("1", 800*time.Millisecond)
				}
				oc, err := e.backend(t, "exec", nil).Run(context.Background(), "Docs")
				t.Logf("outcome %+v err %v\nlog:\n%s", oc, err, e.logs)
				if err != nil {
					t.Fatal(err)
				}
				if old {
					if oc.Result != ResultUnknown || !oc.UnknownIsSuccess || !strings.Contains(oc.Message, "result unknown") {
						t.Errorf("2.1.0.5: outcome %+v, want finished, result unknown", oc)
					}
					return
				}
				if oc.Result != tc.want || oc.UnknownIsSuccess || !strings.Contains(oc.Message, tc.message) {
					t.Errorf("outcome %+v, want %s with %q", oc, tc.want, tc.message)
				}
				if (tc.want == ResultSuccess) != oc.Succeeded() {
					t.Errorf("Succeeded() = %v for %+v", oc.Succeeded(), oc)
				}
			})
		}
	}
}

// TestRestartReusesTaskID: task IDs restart at 2 after a server restart; a task of another
// backup that gets our ID must not give us its success or its Fatal.
func TestRestartReusesTaskID(t *testing.T) {
	backups := []duplicatisim.Backup{
		{ID: "1", Name: "Docs", Duration: 4 * time.Second, Result: "Success"},
		{ID: "2", Name: "Photos", Duration: 300 * time.Millisecond, Result: "Fatal"},
	}
	for _, route := range both {
		t.Run(route, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backups, withPassword(duplicatisim.Quirks{}), envOpts{})
			b := e.backend(t, route, func(o *Options) { o.Password = "pw-of-the-test" })
			go func() {
				waitEvent(t, e.sim, 5*time.Second, started("1"))
				time.Sleep(500 * time.Millisecond)
				e.sim.Restart()
				runViaREST(t, e, "2")
			}()
			oc, err := b.Run(context.Background(), "Docs")
			t.Logf("outcome %+v err %v\nlog:\n%s\nevents %+v", oc, err, e.logs, e.sim.Events())
			if oc.Succeeded() {
				t.Errorf("a backup that Duplicati dropped counts as a success: %+v", oc)
			}
			if strings.Contains(oc.Message, "simulated fatal error") || (err != nil && strings.Contains(err.Error(), "simulated fatal error")) {
				t.Errorf("the other backup's Fatal is reported as ours: %+v %v", oc, err)
			}
			if route == "api" && !strings.Contains(oc.Message+fmt.Sprint(err), "restarted") {
				t.Errorf("the result does not say Duplicati restarted: %q %v", oc.Message, err)
			}
		})
	}
}

// runViaREST starts backup id through the simulator's REST API, as another client would.
func runViaREST(t *testing.T, e *env, id string) {
	body, _ := json.Marshal(map[string]any{"Password": "pw-of-the-test"})
	resp, err := http.Post(e.srv.URL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	var tok struct{ AccessToken string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/backup/"+id+"/run", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
}

// TestCredentials: an empty password never logs in; a pre-authenticated token needs no
// login at all (and adds no TokenFamily row); 2.1.0.5 has no pre-authenticated tokens.
func TestCredentials(t *testing.T) {
	const tok = "preauth-token-of-the-test"
	for _, tc := range []struct {
		name    string
		quirks  duplicatisim.Quirks
		opts    func(*Options)
		wantErr error
		rows    int
	}{
		{"no password", duplicatisim.Quirks{}, func(o *Options) { o.Password = "" }, ErrAuth, 0},
		{"password", withPassword(duplicatisim.Quirks{}), func(o *Options) { o.Password = "pw-of-the-test" }, nil, 1},
		{"token", duplicatisim.Quirks{PreAuthTokens: []string{tok}}, func(o *Options) { o.Token = tok }, nil, 0},
		{"token on 2.1.0.5", duplicatisim.Quirks{Version: "2.1.0.5", PreAuthTokens: nil}, func(o *Options) { o.Token = tok }, ErrAuth, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, docs(1500*time.Millisecond, "Success"), tc.quirks, envOpts{noPassword: tc.quirks.Password == ""})
			oc, err := e.backend(t, "api", tc.opts).Run(context.Background(), "Docs")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || oc.Result != ResultSuccess {
				t.Fatalf("outcome %+v err %v\nlog:\n%s", oc, err, e.logs)
			}
			if n := e.sim.TokenFamilyRows(); n != tc.rows {
				t.Errorf("TokenFamily rows = %d, want %d", n, tc.rows)
			}
		})
	}
}

// TestExecPollBacksOff: every util call adds a TokenFamily row; after the first minute
// (shortened here) the exec route polls less often.
func TestExecPollBacksOff(t *testing.T) {
	after, slow := execSlowPollAfter, execSlowPoll
	execSlowPollAfter, execSlowPoll = 600*time.Millisecond, 500*time.Millisecond
	defer func() { execSlowPollAfter, execSlowPoll = after, slow }()
	e := newEnv(t, docs(4*time.Second, "Success"), duplicatisim.Quirks{}, envOpts{})
	oc, err := e.backend(t, "exec", func(o *Options) { o.PollInterval = 50 * time.Millisecond }).Run(context.Background(), "Docs")
	if err != nil || !oc.Succeeded() {
		t.Fatalf("outcome %+v err %v", oc, err)
	}
	// 2 list-backups, 1 status, 1 run, about 12 fast and 7 slow polls; polling at 50ms
	// throughout would be about 80.
	n := e.sim.TokenFamilyRows()
	t.Logf("TokenFamily rows for a 4s wait: %d", n)
	if n > 35 || n < 10 {
		t.Errorf("TokenFamily rows = %d, want 10..35", n)
	}
}

// TestRESTLogsInOnce: the REST route logs in once for several jobs and a long wait.
func TestRESTLogsInOnce(t *testing.T) {
	e := newEnv(t, docs(700*time.Millisecond, "Success"), withPassword(duplicatisim.Quirks{}), envOpts{})
	b := e.backend(t, "api", func(o *Options) { o.Password = "pw-of-the-test" })
	for _, job := range []string{"Docs", "Photos", "Docs"} {
		if oc, err := b.Run(context.Background(), job); err != nil || oc.Result != ResultSuccess {
			t.Fatalf("%s: %+v %v", job, oc, err)
		}
	}
	if n := e.sim.TokenFamilyRows(); n != 1 {
		t.Errorf("TokenFamily rows = %d after 3 jobs, want 1 login", n)
	}
}

// TestExecDataFolderRefusal: from 2.3.1.0 the util refuses a data folder owned by another
// uid; the error says to set exec_user, and running as the owner works.
func TestExecDataFolderRefusal(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown a directory to another uid")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to run the util as another uid")
	}
	if utilError != nil {
		t.Fatal(utilError)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	// The util must be reachable for uid 4321.
	bin := filepath.Join(dir, "duplicati-server-util")
	src, _ := os.ReadFile(utilPath)
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir makes its parent 0700
	e := newEnv(t, docs(300*time.Millisecond, "Success"), duplicatisim.Quirks{Version: "2.3.1.0"}, envOpts{})
	base := []string{"env", "DUPLICATI_SIM_HOSTURL=" + e.url, "DUPLICATI__SERVER_DATAFOLDER=" + data}
	b, err := New(Options{Command: append(append([]string(nil), base...), bin), PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The real 2.3.1.0 util refuses before it has an output: exit 1, not a word.
	_, err = b.State(context.Background())
	if err == nil || !strings.Contains(err.Error(), "set exec_user") || !strings.Contains(err.Error(), "DUPLICATI__ALLOW_INSECURE_DATAFOLDER") {
		t.Fatalf("err = %v, want the data-folder hint naming exec_user", err)
	}
	// Where the refusal is printed, the owner's uid is named.
	e.sim.SetQuirks(func(q *duplicatisim.Quirks) { q.DataFolderMessage = true })
	_, err = b.State(context.Background())
	if err == nil || !strings.Contains(err.Error(), `exec_user = "4321"`) || !strings.Contains(err.Error(), "DUPLICATI__ALLOW_INSECURE_DATAFOLDER") {
		t.Fatalf("err = %v, want the data-folder refusal naming exec_user = \"4321\"", err)
	}
	asOwner := append([]string{"setpriv", "--reuid=4321", "--regid=4321", "--clear-groups"}, append(base, bin)...)
	b, err = New(Options{Command: asOwner, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.State(context.Background()); err != nil {
		t.Fatalf("as the owner: %v", err)
	}
}

// BenchmarkRESTNotice measures how long after the end of a job the REST route notices it
// (target 100ms): the simulator's Finished against Outcome.Finished, over 20 jobs.
func BenchmarkRESTNotice(b *testing.B) {
	e := newEnv(b, docs(200*time.Millisecond, "Success"), withPassword(duplicatisim.Quirks{}), envOpts{})
	be := e.backend(b, "api", func(o *Options) { o.Password = "pw-of-the-test" })
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		for j := 0; j < 20; j++ {
			oc, err := be.Run(context.Background(), "Docs")
			if err != nil {
				b.Fatal(err)
			}
			ev, _ := eventOf(e.sim, oc.TaskID, "1")
			lat = append(lat, oc.Finished.Sub(ev.Finished))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(e.sim.TokenFamilyRows()), "tokenfamily-rows")
}

// TestTokenFamilyPerHour measures the TokenFamily rows one wait adds on each route with the
// production poll settings. It runs only with BENCH_TOKENFAMILY set to the job's length
// (e.g. 1h: `BENCH_TOKENFAMILY=1h go test -run TestTokenFamilyPerHour -v -timeout 2h`),
// and reports; it asserts nothing about the count.
func TestTokenFamilyPerHour(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("BENCH_TOKENFAMILY"))
	if err != nil {
		t.Skip("set BENCH_TOKENFAMILY to a duration to measure")
	}
	for _, tc := range []struct {
		route string
		opts  func(*Options)
		q     duplicatisim.Quirks
	}{
		{"exec", func(o *Options) { o.PollInterval = 0; o.RunTimeout = 0 }, duplicatisim.Quirks{}},
		{"api", nil, duplicatisim.Quirks{}},
		{"api-token", func(o *Options) { o.Password = ""; o.Token = "bench-preauth-token" }, duplicatisim.Quirks{PreAuthTokens: []string{"bench-preauth-token"}}},
	} {
		t.Run(tc.route, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, docs(d, "Success"), tc.q, envOpts{})
			route := strings.TrimSuffix(tc.route, "-token")
			opts := func(o *Options) {
				if route == "exec" {
					o.PollInterval, o.RunTimeout = 0, 0 // production defaults
					b, _ := New(Options{Command: o.Command})
					o.PollInterval = b.(*execBackend).o.PollInterval
				}
				if tc.opts != nil {
					tc.opts(o)
				}
			}
			start := time.Now()
			oc, err := e.backend(t, route, opts).Run(context.Background(), "Docs")
			took := time.Since(start)
			if err != nil || !oc.Succeeded() {
				t.Fatalf("%+v %v", oc, err)
			}
			ev, _ := eventOf(e.sim, oc.TaskID, "1")
			rows := e.sim.TokenFamilyRows()
			t.Logf("%s: job %s, wait %s, TokenFamily rows %d (%.0f per hour of waiting), noticed %s after the job ended",
				tc.route, d, took.Round(time.Second), rows, float64(rows)/took.Hours(), oc.Finished.Sub(ev.Finished).Round(time.Millisecond))
		})
	}
}
