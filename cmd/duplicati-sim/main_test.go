package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

var (
	simBin  string // the built binary
	utilBin string // symlink named duplicati-server-util
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "duplicati-sim-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	simBin = filepath.Join(dir, "duplicati-sim")
	utilBin = filepath.Join(dir, "duplicati-server-util")
	build := exec.Command("go", "build", "-o", simBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building duplicati-sim:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if err := os.Symlink("duplicati-sim", utilBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startSim runs a simulator in-process and returns it with its host URL (no trailing slash).
// Without a password in q it gets testPassword (the util stand-in signs in without one).
func startSim(t *testing.T, backups []duplicatisim.Backup, q duplicatisim.Quirks) (*duplicatisim.Sim, string) {
	t.Helper()
	if q.Password == "" {
		q.Password = testPassword
	}
	s := duplicatisim.New(backups, q)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	return s, srv.URL
}

const testPassword = "test-pw-1"

type result struct {
	stdout, stderr string
	code           int
	timedOut       bool
}

// util runs the stand-in with a clean environment plus env, killing it after timeout.
func util(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, utilBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TZ=UTC"}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), timedOut: ctx.Err() != nil}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running util: %v", err)
	}
	return r
}

var stamp = regexp.MustCompile(`^\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d\]: `)

// normalize replaces the host URL and the wait-line timestamps.
func normalize(s, host string) string {
	if host != "" {
		s = strings.ReplaceAll(s, host, "HOST")
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = stamp.ReplaceAllString(l, "[TIME]: ")
	}
	return strings.Join(lines, "\n")
}

func check(t *testing.T, r result, host string, wantOut string, wantCode int) {
	t.Helper()
	if got := normalize(r.stdout, host); got != wantOut || r.code != wantCode {
		t.Fatalf("exit %d (want %d)\n--- stdout:\n%s--- want:\n%s--- stderr:\n%s", r.code, wantCode, got, wantOut, r.stderr)
	}
}

var backups = []duplicatisim.Backup{
	{ID: "1", Name: "cryptpad", Duration: 300 * time.Millisecond},
	{ID: "2", Name: "My Backup", Duration: 300 * time.Millisecond, Result: "Warning"},
	{ID: "3", Name: "nextcloud", Duration: 300 * time.Millisecond},
}

func TestStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		q     duplicatisim.Quirks
		setup func(s *duplicatisim.Sim, host string)
		want  string
	}{
		{"idle", duplicatisim.Quirks{}, nil,
			"Connecting to HOST/...\nServer state: Running\nActive task: None\nScheduler tasks: Empty\n\n"},
		{"paused idle", duplicatisim.Quirks{Paused: true}, nil,
			"Connecting to HOST/...\nServer state: Paused\nActive task: None\nScheduler tasks: Empty\n\n"},
		{"active and queued", duplicatisim.Quirks{}, func(s *duplicatisim.Sim, host string) {
			s.HoldQueue("1", 10*time.Second)
			waitActive(s)
			s.HoldQueue("3", time.Second)
		}, "Connecting to HOST/...\nServer state: Running\nActive task: [Task 2]: BackupId = 1\nScheduled tasks:\n  [Task 3]: BackupId = 3\n\n"},
		{"task without backup", duplicatisim.Quirks{}, func(s *duplicatisim.Sim, host string) {
			s.HoldQueue("", 10*time.Second)
			waitActive(s)
		}, "Connecting to HOST/...\nServer state: Running\nActive task: [Task 2]: BackupId = \nScheduler tasks: Empty\n\n"},
		{"garbage", duplicatisim.Quirks{StatusGarbage: true}, nil,
			"Connecting to HOST/...\nServerStatus { State = RUNNING, Current = -, Pending = 0 }\n\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, host := startSim(t, backups, tc.q)
			if tc.setup != nil {
				tc.setup(s, host)
			}
			check(t, util(t, 10*time.Second, nil, "status", "--hosturl", host), host, tc.want, 0)
		})
	}
}

func waitActive(s *duplicatisim.Sim) {
	for i := 0; i < 500; i++ {
		for _, e := range s.Events() {
			if !e.Started.IsZero() && e.Finished.IsZero() {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		busy       bool
		active     string
		scheduled  string
		messageEnd string
	}{
		{"idle", false, `""`, `""`, "Scheduler tasks: Empty"},
		{"busy", true, `{"Task":2,"BackupId":"1"}`, `[{"Task":3,"BackupId":"3"}]`, "  [Task 3]: BackupId = 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, host := startSim(t, backups, duplicatisim.Quirks{})
			if tc.busy {
				s.HoldQueue("1", 10*time.Second)
				waitActive(s)
				s.HoldQueue("3", time.Second)
			}
			r := util(t, 10*time.Second, nil, "--json", "status", "--hosturl="+host)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stdout)
			}
			keys := []string{"Timestamp", "UnixTimestamp", "Command", "Success", "ExitCode", "Messages", "Exceptions", "ServerState", "ActiveTask", "SchedulerTasks"}
			pos := -1
			for _, k := range keys {
				i := strings.Index(r.stdout, "\n  \""+k+"\": ")
				if i <= pos {
					t.Fatalf("key %s missing or out of order:\n%s", k, r.stdout)
				}
				pos = i
			}
			var env map[string]json.RawMessage
			if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, r.stdout)
			}
			compact := func(m json.RawMessage) string {
				var b bytes.Buffer
				_ = json.Compact(&b, m)
				return b.String()
			}
			var msgs []string
			_ = json.Unmarshal(env["Messages"], &msgs)
			if compact(env["ActiveTask"]) != tc.active || compact(env["SchedulerTasks"]) != tc.scheduled ||
				string(env["Command"]) != `"status"` || string(env["Success"]) != "true" || string(env["ServerState"]) != `"Running"` ||
				msgs[0] != "Connecting to "+host+"/..." || msgs[len(msgs)-1] != tc.messageEnd || compact(env["Exceptions"]) != "[]" {
				t.Fatalf("envelope:\n%s", r.stdout)
			}
		})
	}
}

func TestRunNoWait(t *testing.T) {
	t.Parallel()
	cases := []struct {
		arg, want string
		code      int
		queued    string // backup ID expected queued, "" none
	}{
		{"1", "Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\n\n", 0, "1"},
		{"CRYPTPAD", "Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\n\n", 0, "1"},
		{"my backup", "Connecting to HOST/...\nRunning backup My Backup (ID: 2)\n\n", 0, "2"},
		{"My", "Connecting to HOST/...\nNo backup found with supplied ID or name\n\n", 2, ""},
		{"01", "Connecting to HOST/...\nNo backup found with supplied ID or name\n\n", 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.arg, func(t *testing.T) {
			t.Parallel()
			s, host := startSim(t, backups, duplicatisim.Quirks{Paused: true})
			check(t, util(t, 10*time.Second, nil, "run", tc.arg, "--hosturl", host), host, tc.want, tc.code)
			ev := s.Events()
			if tc.queued == "" && len(ev) != 0 || tc.queued != "" && (len(ev) != 1 || ev[0].BackupID != tc.queued) {
				t.Fatalf("events %+v", ev)
			}
		})
	}
}

func TestRunWait(t *testing.T) {
	t.Parallel()
	cases := []struct {
		result   string
		duration time.Duration
		code     int
		running  int // "Backup is running ..." lines
	}{
		{"Success", 300 * time.Millisecond, 0, 0},
		{"Warning", 300 * time.Millisecond, 2, 0},
		{"Error", 300 * time.Millisecond, 3, 0},
		{"Fatal", 300 * time.Millisecond, 4, 0},
		{"Success", 1500 * time.Millisecond, 0, 1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%v", tc.result, tc.duration), func(t *testing.T) {
			t.Parallel()
			_, host := startSim(t, []duplicatisim.Backup{{ID: "5", Name: "app", Duration: tc.duration, Result: tc.result}}, duplicatisim.Quirks{})
			want := "Connecting to HOST/...\nRunning backup app (ID: 5)\nWaiting for backup to finish...\n" +
				strings.Repeat("[TIME]: Backup is running ...\n", tc.running) +
				"Backup status: " + tc.result + "\n\n"
			check(t, util(t, 20*time.Second, nil, "run", "app", "--wait", "--poll-interval", "1", "--hosturl", host), host, want, tc.code)
		})
	}
}

func TestRunWaitQueuedAndQuiet(t *testing.T) {
	t.Parallel()
	t.Run("queued behind another task", func(t *testing.T) {
		t.Parallel()
		s, host := startSim(t, backups, duplicatisim.Quirks{})
		s.HoldQueue("3", 1500*time.Millisecond)
		want := "Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\nWaiting for backup to finish...\n" +
			"[TIME]: Backup is queued ...\nBackup status: Success\n\n"
		check(t, util(t, 20*time.Second, nil, "run", "1", "--wait", "--poll-interval=1", "--hosturl", host), host, want, 0)
	})
	t.Run("quiet", func(t *testing.T) {
		t.Parallel()
		_, host := startSim(t, backups, duplicatisim.Quirks{})
		check(t, util(t, 20*time.Second, nil, "run", "2", "--wait", "--quiet", "--poll-interval", "1", "--hosturl", host), host, "Connecting to HOST/...\n\n", 2)
	})
	t.Run("poll interval", func(t *testing.T) {
		t.Parallel()
		_, host := startSim(t, backups, duplicatisim.Quirks{})
		check(t, util(t, 10*time.Second, nil, "run", "1", "--wait", "--poll-interval", "0", "--hosturl", host), host,
			"Poll interval must be at least 1 second\n\n", 2)
	})
}

// TestRunWaitTokenExpiry: the wait outlives the access token and re-authenticates (#5904 fix).
func TestRunWaitTokenExpiry(t *testing.T) {
	t.Parallel()
	_, host := startSim(t, []duplicatisim.Backup{{ID: "1", Name: "a", Duration: 2500 * time.Millisecond}},
		duplicatisim.Quirks{TokenTTL: 1200 * time.Millisecond})
	r := util(t, 20*time.Second, nil, "run", "a", "--wait", "--poll-interval", "1", "--hosturl", host)
	out := normalize(r.stdout, host)
	if r.code != 0 || !strings.Contains(out, "]: Re-authenticating...\nConnecting to HOST/...\n") || !strings.HasSuffix(out, "Backup status: Success\n\n") {
		t.Fatalf("exit %d:\n%s", r.code, out)
	}
}

func TestRunHangs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		q      duplicatisim.Quirks
		queued int
	}{
		{"after enqueue", duplicatisim.Quirks{RunHangs: true, Paused: true}, 1},
		{"before enqueue", duplicatisim.Quirks{RunHangsBeforeEnqueue: true, Paused: true}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, host := startSim(t, backups, tc.q)
			r := util(t, 1500*time.Millisecond, nil, "run", "1", "--hosturl", host)
			if !r.timedOut {
				t.Fatalf("util returned (exit %d): %s", r.code, r.stdout)
			}
			if got := normalize(r.stdout, host); got != "Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\n" {
				t.Fatalf("stdout %q", got)
			}
			if n := len(s.Events()); n != tc.queued {
				t.Fatalf("%d tasks queued, want %d", n, tc.queued)
			}
		})
	}
}

func TestConnectAndAuth(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	deadHP := strings.TrimPrefix(dead, "http://")
	ln.Close()
	_, host := startSim(t, backups, duplicatisim.Quirks{Password: "pw"})
	idle := "Connecting to HOST/...\nServer state: Running\nActive task: None\nScheduler tasks: Empty\n\n"
	denied := "Connecting to HOST/...\nFailed to connect to server: Server error (401): Failed to log in\n\n"
	cases := []struct {
		name string
		env  []string
		args []string
		host string
		want string
		code int
	}{
		// the DB sign-in fails on the transport, then the password prompt throws (stdin is no console)
		{"unreachable", nil, []string{"status", "--hosturl", dead}, dead,
			"Connecting to HOST/...\nFailed to obtain a signin token: Connection refused (" + deadHP + ")\n" +
				"Enter server password: Failed to connect to server: " + consoleRedirected + "\n\n", 2},
		{"unreachable with password", nil, []string{"run", "1", "--wait", "--password", "pw", "--hosturl", dead}, dead,
			"Connecting to HOST/...\nFailed to connect to server: Connection refused (" + deadHP + ")\n\n", 2},
		{"no password: signs in from the DB", nil, []string{"status", "--hosturl", host}, host, idle, 0},
		{"empty password: signs in from the DB", nil, []string{"status", "--password=", "--hosturl", host}, host, idle, 0},
		{"wrong password", nil, []string{"status", "--password", "x", "--hosturl", host}, host, denied, 2},
		{"password flag", nil, []string{"status", "--password=pw", "--hosturl", host}, host, idle, 0},
		{"hosturl env", []string{"DUPLICATI_SIM_HOSTURL=" + host}, []string{"status"}, host, idle, 0},
		{"default hosturl", nil, []string{"health"}, "", "Server is unhealthy\n\n", 1}, // nothing listens on 127.0.0.1:8200 in tests, hopefully
		{"health", nil, []string{"health", "--hosturl", host}, host, "Server is healthy\n\n", 0},
		{"health down", nil, []string{"health", "--hosturl", dead}, dead, "Server is unhealthy\n\n", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "default hosturl" {
				if c, err := net.DialTimeout("tcp", "127.0.0.1:8200", 200*time.Millisecond); err == nil {
					c.Close()
					t.Skip("something listens on 127.0.0.1:8200")
				}
			}
			check(t, util(t, 10*time.Second, tc.env, tc.args...), tc.host, tc.want, tc.code)
		})
	}
}

func TestListBackups(t *testing.T) {
	t.Parallel()
	_, host := startSim(t, backups, duplicatisim.Quirks{})
	check(t, util(t, 10*time.Second, nil, "list-backups", "--hosturl", host), host,
		"Connecting to HOST/...\n1: cryptpad\n\n2: My Backup\n\n3: nextcloud\n\n\n", 0)
	_, empty := startSim(t, nil, duplicatisim.Quirks{})
	check(t, util(t, 10*time.Second, nil, "list-backups", "--hosturl", empty), empty,
		"Connecting to HOST/...\nNo backups found\n\n", 0)
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args   []string
		stderr string
	}{
		{nil, "Required command was not provided.\n"},
		{[]string{"run"}, "Required argument missing for command: 'run'.\n"},
		{[]string{"frobnicate"}, "Unrecognized command or argument 'frobnicate'.\n"},
		{[]string{"status", "--wait"}, "Unrecognized command or argument '--wait'.\n"},
		{[]string{"run", "1", "--poll-interval", "x"}, "Cannot parse argument 'x' for option '--poll-interval' as expected type 'System.Int32'.\n"},
	}
	for _, tc := range cases {
		r := util(t, 10*time.Second, nil, tc.args...)
		if r.code != 1 || r.stderr != tc.stderr || r.stdout != "" {
			t.Fatalf("%v: exit %d stdout %q stderr %q", tc.args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestServe runs the binary as a server, drives it with the stand-in, and stops it with SIGTERM.
func TestServe(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(simBin, "serve", "--listen", "127.0.0.1:0", "--backup", "1=cryptpad:200ms:Success",
		"--backup", "2=nextcloud:200ms:Error", "--password-file", pwFile, "--quirks", `{"QueuedDelay":"10ms"}`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading address: %v (%s)", err, stderr.String())
	}
	host := "http://" + strings.TrimSpace(line)
	check(t, util(t, 20*time.Second, nil, "run", "nextcloud", "--wait", "--poll-interval", "1", "--password", "secret", "--hosturl", host), host,
		"Connecting to HOST/...\nRunning backup nextcloud (ID: 2)\nWaiting for backup to finish...\nBackup status: Error\n\n", 3)
	check(t, util(t, 10*time.Second, nil, "status", "--hosturl", host), host,
		"Connecting to HOST/...\nServer state: Running\nActive task: None\nScheduler tasks: Empty\n\n", 0)
	check(t, util(t, 10*time.Second, nil, "status", "--password", "nope", "--hosturl", host), host,
		"Connecting to HOST/...\nFailed to connect to server: Server error (401): Failed to log in\n\n", 2)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exit: %v (%s)", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

func TestServeBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--backup", "nonsense"},
		{"serve", "--quirks", `{"Nope":1}`},
		{"serve", "extra"},
		{"serve", "--source", "nonsense"},
		{"serve", "--source", "9=/tmp"},                            // no --backup 9
		{"serve", "--backup", "1=a", "--source", "1=relative/dir"}, // not absolute
		{"bogus"},
	} {
		err := exec.Command(simBin, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%v: %v", args, err)
		}
	}
}

// TestRunWaitRaceGap: the non-atomic serverstate read (reference 3.1(6)) makes `run --wait`
// return while the backup has only just started, reporting the previous log row.
func TestRunWaitRaceGap(t *testing.T) {
	t.Parallel()
	const running = "[TIME]: Backup is running ...\n"
	cases := []struct {
		gap  bool
		want string
	}{
		{true, "[TIME]: Backup is queued ...\nBackup status: No log generated\n\n"},
		{false, "[TIME]: Backup is queued ...\n[TIME]: Backup is running ...\nBackup status: Success\n\n"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.gap), func(t *testing.T) {
			t.Parallel()
			s, host := startSim(t, []duplicatisim.Backup{{ID: "1", Name: "a", Duration: 1200 * time.Millisecond}},
				duplicatisim.Quirks{RaceGap: tc.gap, QueuedDelay: 1500 * time.Millisecond})
			r := util(t, 20*time.Second, nil, "run", "a", "--wait", "--poll-interval", "1", "--hosturl", host)
			// The util prints a line at every poll that finds the job running: a 1.2 s job
			// meets one or two 1 s polls, as the machine's load has it.
			r.stdout = normalize(r.stdout, host)
			for strings.Contains(r.stdout, running+running) {
				r.stdout = strings.Replace(r.stdout, running+running, running, 1)
			}
			check(t, r, "", "Connecting to HOST/...\nRunning backup a (ID: 1)\nWaiting for backup to finish...\n"+tc.want, 0)
			if ev := s.Events(); tc.gap && ev[0].Result != "" {
				t.Fatalf("backup had already finished: %+v", ev)
			}
		})
	}
}

// TestRunWaitBusyLoop: the access token expires while the backup runs; by the time the util
// has re-authenticated the backup has finished, so every retry finds it neither queued nor
// running and re-authenticates again, forever (reference 3.1(2)). A restart at the job end
// alone does not do it: tokens and log rows survive, the wait just ends.
func TestRunWaitBusyLoop(t *testing.T) {
	t.Parallel()
	t.Run("token expiry", func(t *testing.T) {
		t.Parallel()
		s, host := startSim(t, []duplicatisim.Backup{{ID: "1", Name: "a", Duration: 1500 * time.Millisecond}},
			duplicatisim.Quirks{TokenTTL: 1200 * time.Millisecond})
		r := util(t, 4*time.Second, nil, "run", "a", "--wait", "--poll-interval", "1", "--hosturl", host)
		if !r.timedOut || strings.Count(r.stdout, "]: Re-authenticating...\n") < 3 || strings.Contains(r.stdout, "Backup status") {
			t.Fatalf("timedOut=%v exit %d:\n%s", r.timedOut, r.code, r.stdout)
		}
		// every reconnect is another sign-in, another token family row
		if n := s.TokenFamilyRows(); n < 4 {
			t.Fatalf("token families %d", n)
		}
	})
	t.Run("restart at job end", func(t *testing.T) {
		t.Parallel()
		_, host := startSim(t, []duplicatisim.Backup{{ID: "1", Name: "a", Duration: 300 * time.Millisecond}},
			duplicatisim.Quirks{RestartAtJobEnd: true})
		check(t, util(t, 10*time.Second, nil, "run", "a", "--wait", "--poll-interval", "1", "--hosturl", host), host,
			"Connecting to HOST/...\nRunning backup a (ID: 1)\nWaiting for backup to finish...\nBackup status: Success\n\n", 0)
	})
}

// TestServeSources: --source ID=PATH makes the runs of that backup read PATH; GET /sim/reads
// shows what a task read.
func TestServeSources(t *testing.T) {
	t.Parallel()
	dir, other := t.TempDir(), filepath.Join(t.TempDir(), "g")
	for _, p := range []string{filepath.Join(dir, "f"), other} {
		if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(simBin, "serve", "--listen", "127.0.0.1:0", "--source", "1="+dir, "--backup", "1=cryptpad:300ms",
		"--source", "1="+other)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading address: %v (%s)", err, stderr.String())
	}
	host := "http://" + strings.TrimSpace(line)
	check(t, util(t, 20*time.Second, nil, "run", "cryptpad", "--wait", "--poll-interval", "1", "--hosturl", host), host,
		"Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\nWaiting for backup to finish...\nBackup status: Success\n\n", 0)
	resp, err := http.Get(host + "/sim/reads?task=2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r duplicatisim.Reads
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	h := sha256.Sum256([]byte("content"))
	f := filepath.Join(dir, "f")
	if !r.Finished || len(r.Sources) != 2 || len(r.Entries) != 3 || r.Entries[0].Kind != "dir" ||
		r.Entries[1].Path != f || r.Entries[2].Path != other || r.Entries[1].SHA256 != hex.EncodeToString(h[:]) ||
		r.Entries[2].SHA256 != r.Entries[1].SHA256 {
		t.Fatalf("reads %+v", r)
	}
}
