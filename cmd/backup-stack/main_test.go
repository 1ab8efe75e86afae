package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/duplicatisim"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/manager/managertest"
	"github.com/backup-stack/backup-stack/internal/podman"
)

func TestVerdict(t *testing.T) {
	cases := []struct {
		name     string
		warnFail bool
		out      duplicati.Outcome
		err      error
		code     int
		word     string
	}{
		{"success", false, duplicati.Outcome{Result: duplicati.ResultSuccess, TaskID: 3}, nil, 0, "Success (task 3)"},
		{"warning counted as success", false, duplicati.Outcome{Result: duplicati.ResultWarning}, nil, 0, "counted as success"},
		{"warning is failure", true, duplicati.Outcome{Result: duplicati.ResultWarning}, nil, exitcode.Warning, "warning_is_failure"},
		{"error", false, duplicati.Outcome{Result: duplicati.ResultError, Message: "disk full"}, nil, exitcode.JobError, "disk full (Error)"},
		{"fatal", false, duplicati.Outcome{Result: duplicati.ResultFatal}, nil, exitcode.Fatal, "Fatal"},
		{"unknown on the API route", false, duplicati.Outcome{Result: duplicati.ResultUnknown}, nil, exitcode.Unknown, "outcome unknown"},
		{"unknown on the exec route", false, duplicati.Outcome{Result: duplicati.ResultUnknown, UnknownIsSuccess: true}, nil, 0, "finished, result unknown"},
		{"timeout", false, duplicati.Outcome{}, fmt.Errorf("x: %w", duplicati.ErrTimeout), exitcode.Timeout, "wait_timeout"},
		{"unreachable", false, duplicati.Outcome{}, fmt.Errorf("x: %w", duplicati.ErrUnreachable), exitcode.Unreachable, "unreachable"},
		{"unparseable", false, duplicati.Outcome{}, fmt.Errorf("x: %w", duplicati.ErrUnparseable), exitcode.Unreachable, "unreachable"},
		{"no such job", false, duplicati.Outcome{}, fmt.Errorf("x: %w", duplicati.ErrNoSuchJob), exitcode.Usage, "no such"},
		{"interrupted", false, duplicati.Outcome{}, fmt.Errorf("x: %w", duplicati.ErrInterrupted), exitcode.Interrupted, "interrupted"},
		{"still held", false, duplicati.Outcome{}, fmt.Errorf("x: %w: %w", duplicati.ErrInterrupted, duplicati.ErrStillHeld), exitcode.StillHeld, "still holds"},
		{"label not repeated", false, duplicati.Outcome{Job: "j", BackupID: "1"}, fmt.Errorf("job \"j\" (backup 1): gone: %w", duplicati.ErrInterrupted), exitcode.Interrupted, "gone: interrupted"},
		{"other error", false, duplicati.Outcome{}, errors.New("boom"), 1, "boom"},
	}
	for _, c := range cases {
		code, msg := verdict(c.warnFail, c.out, c.err)
		if code != c.code || !strings.Contains(msg, c.word) {
			t.Errorf("%s: got %d %q, want %d containing %q", c.name, code, msg, c.code, c.word)
		}
	}
}

// cli runs Main with a configuration directory holding config and stacks,
// a fake user manager and fake containers.
type cli struct {
	t    *testing.T
	dir  string
	mgr  *managertest.Fake
	pods *fakePods
}

func newCLI(t *testing.T, config string, stacks map[string]string) *cli {
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "config", "backup-stack")
	if err := os.MkdirAll(filepath.Join(cfgDir, "stacks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.hcl"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, src := range stacks {
		if err := os.WriteFile(filepath.Join(cfgDir, "stacks", name+".hcl"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "run"))
	for _, v := range []string{"DUPLICATI_CONTAINER", "DUPLICATI_RUN_TIMEOUT", "DUPLICATI_WAIT_TIMEOUT", "INVOCATION_ID"} {
		t.Setenv(v, "")
	}
	return &cli{t: t, dir: dir, mgr: managertest.New(), pods: &fakePods{running: map[string][]string{}}}
}

func (c *cli) app(out, errb *bytes.Buffer) *App {
	return &App{Stdout: out, Stderr: errb, Manager: c.mgr, Containers: c.pods, Poll: time.Millisecond}
}

func (c *cli) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := c.app(&out, &errb).Main(args)
	return code, out.String(), errb.String()
}

// fakePods is the containers of compose projects, by project label: the
// running ones by name; exited lists, by project, containers that podman
// ps -a still shows as exited.
type fakePods struct {
	mu      sync.Mutex
	running map[string][]string
	exited  map[string][]string
	err     error
}

func (p *fakePods) List(_ context.Context, project string) ([]podman.Container, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	var cs []podman.Container
	for _, n := range p.running[project] {
		cs = append(cs, podman.Container{Name: n, State: "running", Status: "Up 3 seconds"})
	}
	for _, n := range p.exited[project] {
		cs = append(cs, podman.Container{Name: n, State: "exited", Status: "Exited (0) 1 second ago"})
	}
	return cs, nil
}

func (p *fakePods) Kill(_ context.Context, name string) error { return nil }

func (p *fakePods) set(project string, names ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[project] = names
}

// startSim starts a simulator whose password is the one in testPasswordFile unless q sets
// another (like the real server, it refuses an empty password).
func startSim(t *testing.T, q duplicatisim.Quirks, backups ...duplicatisim.Backup) (*duplicatisim.Sim, string) {
	if q.Password == "" {
		q.Password = "test-password"
	}
	s := duplicatisim.New(backups, q)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	return s, srv.URL
}

// testPasswordFile is a private password file for the configurations of
// the REST route that do not bring their own: url needs one, and startSim's
// simulators have its password.
var testPasswordFile string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "backup-stack-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPasswordFile = filepath.Join(dir, "duplicati-password")
	if err := os.WriteFile(testPasswordFile, []byte("test-password\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// apiConfig is a config.hcl for the REST route to url, with pwFile (""
// = testPasswordFile) and extra lines in the duplicati block.
func apiConfig(url, pwFile string, extra string) string {
	if pwFile == "" {
		pwFile = testPasswordFile
	}
	c := fmt.Sprintf("duplicati {\n  url = %q\n  wait_timeout = \"20s\"\n  run_timeout = \"5s\"\n", url)
	c += fmt.Sprintf("  password_file = %q\n", pwFile)
	return c + extra + "}\n"
}

func TestStatusExitCodes(t *testing.T) {
	s, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "a", Duration: 3 * time.Second})
	c := newCLI(t, apiConfig(url, "", ""), nil)

	if code, out, errs := c.run("status"); code != 0 || !strings.Contains(out, "idle") {
		t.Fatalf("idle: %d %q %q", code, out, errs)
	}
	s.HoldQueue("1", 2*time.Second)
	code, out, _ := c.run("status", "--json")
	if code != 3 || !strings.Contains(out, `"state": "busy"`) {
		t.Fatalf("busy: %d %s", code, out)
	}
	s.SetQuirks(func(q *duplicatisim.Quirks) { q.Paused = true })
	if code, out, _ := c.run("status"); code != 3 || !strings.Contains(out, "paused") {
		t.Fatalf("paused: %d %q", code, out)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	c = newCLI(t, apiConfig(closed, "", ""), nil)
	start := time.Now()
	code, out, _ = c.run("status", "--json")
	if code != 1 || !strings.Contains(out, `"state": "unknown"`) {
		t.Fatalf("unreachable: %d %s", code, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("status took %s against a closed port", d)
	}
}

func TestRunExitCodes(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	const secret = "s3cret-pa55word"
	if err := os.WriteFile(pw, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		result string
		extra  string
		quirks duplicatisim.Quirks
		code   int
	}{
		{name: "success", result: "Success", code: 0},
		{name: "warning", result: "Warning", code: 0},
		{name: "warning is failure", result: "Warning", extra: "  warning_is_failure = true\n", code: exitcode.Warning},
		{name: "error", result: "Error", code: exitcode.JobError},
		{name: "fatal", result: "Fatal", code: exitcode.Fatal},
		{name: "paused: wait timeout", result: "Success", quirks: duplicatisim.Quirks{Paused: true}, code: exitcode.StillHeld},
		{name: "wrong password", result: "Success", quirks: duplicatisim.Quirks{Password: "other"}, code: exitcode.Unreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.quirks.Password = map[bool]string{true: tc.quirks.Password, false: secret}[tc.quirks.Password != ""]
			_, url := startSim(t, tc.quirks, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 300 * time.Millisecond, Result: tc.result})
			wait := ""
			if tc.quirks.Paused {
				wait = "  wait_timeout = \"2s\"\n"
			}
			c := newCLI(t, apiConfig(url, pw, tc.extra), map[string]string{
				"a": "stack \"a\" {\n  jobs = [\"job-a\"]\n" + wait + "}\n",
			})
			code, out, errs := c.run("run", "--force", "a")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			if strings.Contains(out+errs, secret) {
				t.Fatal("the password reached the output")
			}
			if code != 0 && !strings.Contains(errs, `stack a: job "job-a"`) {
				t.Errorf("no line naming stack and job:\n%s", errs)
			}
		})
	}
}

func TestRunRefusesAStackThatIsNotHeld(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a"})
	c := newCLI(t, apiConfig(url, "", ""), map[string]string{"a": `stack "a" { jobs = ["job-a"] }`})
	code, _, errs := c.run("run", "a-stack.service")
	if code != exitcode.Usage || !strings.Contains(errs, "systemctl --user start backup@a.service") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestValidate(t *testing.T) {
	c := newCLI(t, "", map[string]string{
		"good": `stack "good" { jobs = ["g"] }`,
		"bad":  "stack \"bad\" {\n  jobs = [\"b\"]\n  restore_policy = \"sometimes\"\n}\n",
	})
	code, out, _ := c.run("validate")
	if code != exitcode.Usage {
		t.Fatalf("exit %d, want %d: %s", code, exitcode.Usage, out)
	}
	if !strings.Contains(out, "stacks/bad.hcl:3:20: error: Unknown restore policy") {
		t.Fatalf("no file:line:col diagnostic:\n%s", out)
	}
	code, out, _ = c.run("validate", filepath.Join(c.dir, "config", "backup-stack", "stacks", "good.hcl"))
	if code != 0 {
		t.Fatalf("validating the good file alone: exit %d: %s", code, out)
	}
}

func TestEnvOverridesAndBadValues(t *testing.T) {
	c := newCLI(t, "", map[string]string{"a": `stack "a" { jobs = ["a"] }`})
	t.Setenv("DUPLICATI_RUN_TIMEOUT", "soon")
	code, _, errs := c.run("status")
	if code != exitcode.Usage || !strings.Contains(errs, "DUPLICATI_RUN_TIMEOUT") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestUnknownStackAndHelp(t *testing.T) {
	c := newCLI(t, "", map[string]string{"a": `stack "a" { jobs = ["a"] }`})
	if code, _, errs := c.run("gate", "zzz"); code != exitcode.Usage || !strings.Contains(errs, `no stack "zzz"`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, out, _ := c.run("--help")
	if code != 0 || !strings.Contains(out, "Exit codes:") {
		t.Fatalf("--help: %d %s", code, out)
	}
	if code, _, _ := c.run("no-such-command"); code != exitcode.Usage {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestLogDirGetsADayFile(t *testing.T) {
	_, url := startSim(t, duplicatisim.Quirks{}, duplicatisim.Backup{ID: "1", Name: "job-a", Duration: 100 * time.Millisecond})
	logDir := filepath.Join(t.TempDir(), "logs")
	c := newCLI(t, apiConfig(url, "", "")+fmt.Sprintf("log_dir = %q\n", logDir), map[string]string{
		"a": `stack "a" { jobs = ["job-a"] }`,
	})
	if code, _, errs := c.run("run", "--force", "a"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	name := filepath.Join(logDir, "backup-a-"+time.Now().Format("2006-01-02")+".log")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `run a: job "job-a" of stack a: Success`) {
		t.Fatalf("%s lacks the job's verdict:\n%s", name, b)
	}
	// Appended, not replaced.
	if code, _, _ := c.run("run", "--force", "a"); code != 0 {
		t.Fatal("second run failed")
	}
	b2, _ := os.ReadFile(name)
	if len(b2) <= len(b) || !bytes.HasPrefix(b2, b) {
		t.Fatal("the second run did not append to the day's file")
	}
}
