package e2e

// Issue 6 under the real user manager: OnFailure=/OnSuccess= notifications,
// healthchecks.io-style pings (and their outage), status --stacks, and the
// metrics file. The stack is a plain user service: podman adds nothing to
// what is checked here.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pingRecorder is a loopback healthchecks.io stand-in.
type pingRecorder struct {
	mu    sync.Mutex
	pings []string // "<path> <first line of body>"
	srv   *http.Server
	url   string
}

func newPingRecorder(t *testing.T) *pingRecorder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pingRecorder{url: "http://" + l.Addr().String() + "/ping/e2e-uuid"}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.pings = append(p.pings, strings.TrimPrefix(r.URL.Path, "/ping/e2e-uuid")+" "+string(b))
		p.mu.Unlock()
	})}
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *pingRecorder) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pings
	p.pings = nil
	return out
}

func kinds(pings []string) []string {
	var k []string
	for _, p := range pings {
		path, _, _ := strings.Cut(p, " ")
		if path == "" {
			path = "(success)"
		}
		k = append(k, path)
	}
	return k
}

func TestNotifyPingsMetricsStatus(t *testing.T) {
	t.Parallel()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	e := newEnv(t)
	name := "nt-" + e.id
	job := name + "-job"
	s := e.startSim(fmt.Sprintf("1=%s:1s:Error", job))
	pr := newPingRecorder(t)
	notified := filepath.Join(e.dir, "notified")
	metricsFile := filepath.Join(e.dir, "backup.prom")
	e.writeConfig(restConfig(s) + fmt.Sprintf(`
notify {
  on_failure = ["/bin/sh", "-c", "printf '%%s|%%s|%%s|%%s|%%s\\n' \"$BACKUP_STACK\" \"$BACKUP_EVENT\" \"$BACKUP_RESULT\" \"$BACKUP_EXIT_STATUS\" \"$(printf '%%s' \"$BACKUP_LOG\" | grep -c Error)\" >> %s"]
}
healthcheck { url = %q }
metrics_file = %q
log_dir = %q
`, notified, pr.url, metricsFile, filepath.Join(e.dir, "logs")))
	e.writeUserUnit(name+"-stack.service", "[Service]\nExecStart=/bin/sleep infinity\n")
	e.writeStack(name, fmt.Sprintf("stack %q {\n  jobs = [%q]\n  wait_timeout = \"1m\"\n}\n", name, job))
	e.daemonReload()
	if _, err := e.systemctl("start", name+"-stack.service"); err != nil {
		t.Fatal(err)
	}
	unit := "backup@" + name + ".service"
	if got := e.show(unit, "OnFailure")["OnFailure"]; got != "backup-notify@"+name+".service" {
		t.Fatalf("OnFailure=%q", got)
	}
	if got := e.show(unit, "OnSuccess")["OnSuccess"]; got != "" {
		t.Fatalf("OnSuccess=%q without on_success configured", got)
	}
	readNotified := func() []string {
		b, _ := os.ReadFile(notified)
		return strings.Fields(string(b))
	}
	statusOf := func() stackStatusE2E {
		t.Helper()
		out, code, err := e.runHelper(30*time.Second, "status", "--stacks", "--json")
		if err != nil || code != 0 {
			t.Fatalf("status --stacks: code %d err %v: %s", code, err, out)
		}
		var rows []stackStatusE2E
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("status --stacks --json: %v: %s", err, out)
		}
		return rows[0]
	}

	// 1. The job ends Error: the unit fails, on_failure runs exactly once with
	// the right variables, /start then /fail are pinged.
	if _, err := e.systemctl("start", unit); err == nil {
		t.Fatal("a backup whose job ended Error must fail")
	}
	e.waitFor("the failure notification", 30*time.Second, 100*time.Millisecond, func() bool { return len(readNotified()) > 0 })
	time.Sleep(2 * time.Second) // a second notification would show by now
	got := readNotified()
	if want := name + "|failure|exit-code|5|"; len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Fatalf("notifications %q, want exactly one starting %q", got, want)
	}
	if strings.HasSuffix(got[0], "|0") {
		t.Errorf("BACKUP_LOG did not carry the log lines naming the Error: %q", got[0])
	}
	if k := kinds(pr.take()); strings.Join(k, " ") != "/start /fail" {
		t.Fatalf("pings %v, want /start /fail", k)
	}
	if st := statusOf(); st.LastResult != "exit-code" || st.Now != "idle" || st.Held {
		t.Fatalf("status after a failure: %+v", st)
	}
	if e.show(name+"-stack.service", "ActiveState")["ActiveState"] != "active" {
		t.Fatal("the stack was not restored after the failed job")
	}

	// 2. The job succeeds: no failure notification, /start then the plain URL.
	if _, err := s.do("POST", "/sim/backups", []byte(fmt.Sprintf(`{"ID":"1","Name":%q,"Duration":"4s","Result":"Success"}`, job))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := e.systemctlTimeout(90*time.Second, "start", unit); done <- err }()
	// While it runs, status --stacks says so.
	e.waitFor("the job to start", 30*time.Second, 100*time.Millisecond, func() bool {
		for _, ev := range s.events() {
			if ev.Result == "" && !ev.Started.IsZero() {
				return true
			}
		}
		return false
	})
	if st := statusOf(); st.Now != "running" || !st.Held {
		t.Fatalf("status during a backup: %+v, want running and held", st)
	}
	if err := <-done; err != nil {
		t.Fatalf("successful backup: %v\n%s", err, e.unitLog())
	}
	time.Sleep(1500 * time.Millisecond)
	if got := readNotified(); len(got) != 1 {
		t.Fatalf("a successful backup sent a failure notification: %q", got)
	}
	if k := kinds(pr.take()); strings.Join(k, " ") != "/start (success)" {
		t.Fatalf("pings %v, want /start then the success URL", k)
	}
	st := statusOf()
	if st.LastResult != "success" || st.LastSuccess == nil || st.Downtime <= 0 || st.Now != "idle" {
		t.Fatalf("status after a success: %+v", st)
	}
	t.Logf("status --stacks after success: downtime %.2fs, duration %.2fs", st.Downtime, st.Duration)

	// 3. The metrics file reflects the last run.
	m, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("backup_stack_last_success{stack=%q} 1", name),
		fmt.Sprintf("backup_stack_last_result{stack=%q,result=\"success\"} 1", name),
		"# TYPE backup_stack_last_success_timestamp_seconds gauge",
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, m)
		}
	}

	// 4. notify-test goes through every channel: the command (event "test")
	// and the healthcheck's /log endpoint, which changes no check state.
	if out, code, err := e.runHelper(30*time.Second, "notify-test", name); err != nil || code != 0 {
		t.Fatalf("notify-test: code %d err %v: %s", code, err, out)
	}
	if got := readNotified(); len(got) != 2 || !strings.HasPrefix(got[1], name+"|test|test|") {
		t.Fatalf("notify-test did not run the command with BACKUP_EVENT=test: %q", got)
	}
	if k := kinds(pr.take()); strings.Join(k, " ") != "/log" {
		t.Fatalf("notify-test pings %v, want /log", k)
	}

	// 5. The ping server is down: the backup still succeeds, and the log says
	// the ping failed without showing the URL.
	pr.srv.Close()
	if out, err := e.systemctl("start", unit); err != nil {
		t.Fatalf("a health-ping outage failed the backup: %v %s\n%s", err, out, e.unitLog())
	}
	log := e.unitLog()
	if !strings.Contains(log, "health ping") || !strings.Contains(log, "failed (the backup is not affected)") {
		t.Errorf("the ping failure is not logged:\n%s", log)
	}
	if strings.Contains(log, "e2e-uuid") {
		t.Errorf("the ping URL leaked into the log")
	}
}

type stackStatusE2E struct {
	Stack       string     `json:"stack"`
	Now         string     `json:"now"`
	Held        bool       `json:"held"`
	LastResult  string     `json:"last_result"`
	LastSuccess *time.Time `json:"last_success"`
	Duration    float64    `json:"duration_seconds"`
	Downtime    float64    `json:"downtime_seconds"`
}
