package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
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

// trail is the final empty line of 2.1.2.0+ (the middleware's Console.WriteLine).
func trail(v string) string {
	if p, _ := duplicatisim.ProfileFor(v); p.UtilTrailingLine {
		return "\n"
	}
	return ""
}

func TestUtilProfilesStatusAndRun(t *testing.T) {
	t.Parallel()
	for _, v := range duplicatisim.Versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			_, host := startSim(t, backups, duplicatisim.Quirks{Version: v})
			check(t, util(t, 10*time.Second, nil, "status", "--hosturl", host), host,
				"Connecting to HOST/...\nServer state: Running\nActive task: None\nScheduler tasks: Empty\n"+trail(v), 0)
			want := "Connecting to HOST/...\nRunning backup My Backup (ID: 2)\nWaiting for backup to finish...\n"
			code := 0
			switch v {
			case "2.1.0.5":
				want += "Backup finished\n"
			case "2.2.0.3", "2.3.0.4":
				want += "Backup status: Warning\n\n"
			default:
				want, code = want+"Backup status: Warning\n\n", 2
			}
			check(t, util(t, 20*time.Second, nil, "run", "My Backup", "--wait", "--poll-interval", "1", "--hosturl", host), host, want, code)
		})
	}
}

func TestUtilProfilesOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args     []string
		accepted map[string]bool // version -> accepted
	}{
		{[]string{"--json", "status"}, map[string]bool{"2.1.0.5": false, "2.2.0.3": true, "2.3.0.4": true, "2.3.1.0": true}},
		{[]string{"list-backups", "--detailed"}, map[string]bool{"2.1.0.5": false, "2.2.0.3": true, "2.3.0.4": true, "2.3.1.0": true}},
		{[]string{"run", "1", "--skip-queue"}, map[string]bool{"2.1.0.5": false, "2.2.0.3": true, "2.3.0.4": true, "2.3.1.0": true}},
		{[]string{"status", "--portable-mode"}, map[string]bool{"2.1.0.5": false, "2.2.0.3": true, "2.3.0.4": true, "2.3.1.0": true}},
		{[]string{"status", "--allow-insecure-datafolder"}, map[string]bool{"2.1.0.5": false, "2.2.0.3": false, "2.3.0.4": false, "2.3.1.0": true}},
		{[]string{"status", "--ignore-revocation-failure"}, map[string]bool{"2.1.0.5": false, "2.2.0.3": false, "2.3.0.4": false, "2.3.1.0": true}},
	}
	for _, v := range duplicatisim.Versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			_, host := startSim(t, backups, duplicatisim.Quirks{Version: v, Paused: true})
			for _, tc := range cases {
				opt := ""
				for _, a := range tc.args {
					if strings.HasPrefix(a, "--") {
						opt = a
					}
				}
				r := util(t, 10*time.Second, nil, append(tc.args, "--hosturl", host)...)
				if tc.accepted[v] {
					if r.code != 0 || r.stderr != "" {
						t.Fatalf("%v refused: exit %d %q", tc.args, r.code, r.stderr)
					}
				} else if r.code != 1 || r.stdout != "" || r.stderr != "Unrecognized command or argument '"+opt+"'.\n" {
					t.Fatalf("%v: exit %d stdout %q stderr %q", tc.args, r.code, r.stdout, r.stderr)
				}
			}
		})
	}
}

// TestUtilTokenFamily: every invocation of 2.1.2.0+ signs in (a row each); 2.1.0.x keeps the
// refresh token in its settings file, so only the first adds a row, and each call prints the
// warning about the missing encryption key.
func TestUtilTokenFamily(t *testing.T) {
	t.Parallel()
	idle := "Server state: Running\nActive task: None\nScheduler tasks: Empty\n"
	warn := "Warning: The encryption key is missing, saving login token without encryption\n"
	for _, v := range duplicatisim.Versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			p, _ := duplicatisim.ProfileFor(v)
			s, host := startSim(t, backups, duplicatisim.Quirks{Version: v})
			home := t.TempDir()
			env := []string{"HOME=" + home}
			for i := 1; i <= 3; i++ {
				want := "Connecting to HOST/...\n" + idle + trail(v)
				if p.UtilStoresRefresh {
					want = "Connecting to HOST/...\n" + warn + idle
				}
				check(t, util(t, 10*time.Second, env, "status", "--hosturl", host), host, want, 0)
				wantRows := i
				if p.UtilStoresRefresh {
					wantRows = 1
				}
				if got := s.TokenFamilyRows(); got != wantRows {
					t.Fatalf("after call %d: %d token families, want %d", i, got, wantRows)
				}
			}
			b, err := os.ReadFile(filepath.Join(home, ".config", "Duplicati", "settings.json"))
			if p.UtilStoresRefresh != (err == nil) || err == nil && !strings.Contains(string(b), `"HostUrl":"`+host+`/"`) {
				t.Fatalf("settings file %s %v", b, err)
			}
			if p.UtilStoresRefresh {
				// with a key there is no warning
				check(t, util(t, 10*time.Second, append(env, "SETTINGS_ENCRYPTION_KEY=k3y"), "status", "--hosturl", host), host,
					"Connecting to HOST/...\n"+idle, 0)
			}
			before := s.TokenFamilyRows()
			// --password: a password login (2.1.0.x tries the DB sign-in first, and still has its refresh token)
			r := util(t, 10*time.Second, nil, "status", "--password", testPassword, "--hosturl", host)
			if r.code != 0 || s.TokenFamilyRows() != before+1 {
				t.Fatalf("--password: exit %d rows %d->%d\n%s", r.code, before, s.TokenFamilyRows(), r.stdout)
			}
			// a wrong --password: refused, except by 2.1.0.x which signs in from the DB anyway
			r = util(t, 10*time.Second, nil, "status", "--password", "wrong", "--hosturl", host)
			if p.UtilSigninAlways {
				check(t, r, host, "Connecting to HOST/...\n"+idle, 0)
			} else {
				check(t, r, host, "Connecting to HOST/...\nFailed to connect to server: Server error (401): Failed to log in\n\n", 2)
			}
		})
	}
}

func TestUtilServerErrors(t *testing.T) {
	t.Parallel()
	t.Run("json error body", func(t *testing.T) {
		t.Parallel()
		_, host := startSim(t, backups, duplicatisim.Quirks{LogLocked: 1})
		check(t, util(t, 20*time.Second, nil, "run", "1", "--wait", "--poll-interval", "1", "--hosturl", host), host,
			"Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\nWaiting for backup to finish...\n"+
				"Server error (400): The backup database is currently in use by another operation and cannot be accessed concurrently. Please wait for the running operation to finish and try again.\n\n", 2)
	})
	t.Run("empty 401 in 2.1.0.5 run --wait (#5904)", func(t *testing.T) {
		t.Parallel()
		_, host := startSim(t, []duplicatisim.Backup{{ID: "1", Name: "a", Duration: 2500 * time.Millisecond}},
			duplicatisim.Quirks{Version: "2.1.0.5", TokenTTL: 1200 * time.Millisecond})
		check(t, util(t, 20*time.Second, nil, "run", "a", "--wait", "--poll-interval", "1", "--hosturl", host), host,
			"Connecting to HOST/...\nRunning backup a (ID: 1)\nWaiting for backup to finish...\n[TIME]: Backup is running ...\n"+
				"System.Net.Http.HttpRequestException: Response status code does not indicate success: 401 (Unauthorized).\n", 1)
	})
	t.Run("json mode", func(t *testing.T) {
		t.Parallel()
		_, host := startSim(t, backups, duplicatisim.Quirks{Password: "pw"})
		r := util(t, 10*time.Second, nil, "--json", "status", "--password", "bad", "--hosturl", host)
		var env struct {
			Success    bool
			ExitCode   int
			Messages   []string
			Exceptions []string
		}
		if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || r.code != 2 || env.Success || env.ExitCode != 2 ||
			len(env.Exceptions) != 1 || env.Exceptions[0] != "Failed to connect to server: Server error (401): Failed to log in" {
			t.Fatalf("exit %d %v:\n%s", r.code, err, r.stdout)
		}
	})
}

func TestEnsureSuccess(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code int
		body string
		want string // Error(); "" = nil
		user bool   // UserReportedException (exit 2)
	}{
		{200, "", "", false},
		{204, "", "", false},
		{401, "", "System.Net.Http.HttpRequestException: Response status code does not indicate success: 401 (Unauthorized).", false},
		{500, "  \n", "System.Net.Http.HttpRequestException: Response status code does not indicate success: 500 (Internal Server Error).", false},
		{404, `{"Error":"No such task found","Code":404}`, "Server error (404): No such task found", true},
		{400, `{"Error":"x","Code":400,"HelpId":"DatabaseLocked"}`, "Server error (400): x", true},
		{400, `{}`, "Server error (0): ", true},
		{404, `not json`, "Failed to parse response (NotFound): not json", true},
		{400, `[1]`, "Failed to parse response (BadRequest): [1]", true},
		{400, `null`, "Failed to parse response (BadRequest): null", true},
		{418, `{"Error":5}`, "Failed to parse response (418): {\"Error\":5}", true},
	}
	for _, tc := range cases {
		err := ensureSuccess(&http.Response{StatusCode: tc.code}, []byte(tc.body))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%d %q: %v", tc.code, tc.body, err)
			}
			continue
		}
		_, isUser := err.(userError)
		if err == nil || err.Error() != tc.want || isUser != tc.user {
			t.Errorf("%d %q: %v (user %v), want %q", tc.code, tc.body, err, isUser, tc.want)
		}
	}
}

// TestUtilExistingTask: `run` on a backup that already has a task (here a Verify) enqueues
// nothing; the util cannot tell, prints the usual line, and --wait waits for the Verify.
func TestUtilExistingTask(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"2.1.0.5", "2.3.1.0"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			s, host := startSim(t, backups, duplicatisim.Quirks{Version: v})
			hold := s.HoldQueue("1", 1500*time.Millisecond)
			check(t, util(t, 10*time.Second, nil, "run", "1", "--hosturl", host), host,
				"Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\n"+trail(v), 0)
			end := "Backup status: Success\n\n"
			if v == "2.1.0.5" {
				end = "Backup finished\n"
			}
			r := util(t, 20*time.Second, nil, "run", "cryptpad", "--wait", "--poll-interval", "1", "--hosturl", host)
			check(t, r, host, "Connecting to HOST/...\nRunning backup cryptpad (ID: 1)\nWaiting for backup to finish...\n[TIME]: Backup is running ...\n"+end, 0)
			if ev := s.Events(); len(ev) != 1 || ev[0].TaskID != hold || ev[0].Operation != "Verify" {
				t.Fatalf("events %+v", ev)
			}
		})
	}
}

var (
	lastBackupRE = regexp.MustCompile(`^  Last backup: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
	durationRE   = regexp.MustCompile(`^  Last duration: 00:00:0\d\.\d{7}$`)
	lastErrorRE  = regexp.MustCompile(`^  Last error: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d - The backup failed: simulated fatal error$`)
)

func TestUtilListBackupsDetailedAndJSON(t *testing.T) {
	t.Parallel()
	s, host := startSim(t, []duplicatisim.Backup{
		{ID: "1", Name: "ok", Duration: 100 * time.Millisecond},
		{ID: "2", Name: "flaky", Duration: 100 * time.Millisecond},
	}, duplicatisim.Quirks{})
	runAndWait := func(id string, n int) {
		t.Helper()
		if r := util(t, 10*time.Second, nil, "run", id, "--hosturl", host); r.code != 0 {
			t.Fatalf("run %s: %d %s", id, r.code, r.stdout)
		}
		for i := 0; i < 500; i++ {
			if ev := s.Events(); len(ev) == n && ev[n-1].Result != "" {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("run %s did not finish: %+v", id, s.Events())
	}
	runAndWait("1", 1)
	runAndWait("2", 2)
	// a later run of 2 throws; its error is newer than its last backup (1s resolution)
	s.SetBackup(duplicatisim.Backup{ID: "2", Name: "flaky", Duration: 1100 * time.Millisecond, Result: "Fatal"})
	runAndWait("2", 3)

	r := util(t, 10*time.Second, nil, "list-backups", "--detailed", "--hosturl", host)
	lines := strings.Split(normalize(r.stdout, host), "\n")
	if r.code != 0 || len(lines) != 18 {
		t.Fatalf("exit %d, %d lines:\n%s", r.code, len(lines), r.stdout)
	}
	for i, want := range []any{"Connecting to HOST/...", "1: ok", lastBackupRE, durationRE, "  Source files size: 10.00 KiB",
		"  Target files size: 2.00 KiB", "  Versions: 1", "", "2: flaky", lastBackupRE, durationRE,
		"  Source files size: 10.00 KiB", "  Target files size: 2.00 KiB", "  Versions: 1", lastErrorRE, "", "", ""} {
		switch w := want.(type) {
		case string:
			if lines[i] != w {
				t.Fatalf("line %d %q, want %q\n%s", i, lines[i], w, r.stdout)
			}
		case *regexp.Regexp:
			if !w.MatchString(lines[i]) {
				t.Fatalf("line %d %q, want %s\n%s", i, lines[i], w, r.stdout)
			}
		}
	}

	r = util(t, 10*time.Second, nil, "--json", "list-backups", "--hosturl", host)
	// ListBackups appends string.Empty after each backup: in --json mode that goes straight
	// to the console, before the envelope.
	if !strings.HasPrefix(r.stdout, "\n\n{\n") {
		t.Fatalf("--json list-backups must start with two empty lines:\n%q", r.stdout)
	}
	var env struct {
		Command  string
		Messages []string
		Backups  []struct {
			Id, Name string
			Metadata map[string]string
			Schedule *json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || env.Command != "list-backups" || strings.Join(env.Messages, "|") != "Connecting to "+host+"/...|1: ok|2: flaky" ||
		len(env.Backups) != 2 || env.Backups[1].Id != "2" || env.Backups[1].Name != "flaky" || env.Backups[1].Schedule != nil ||
		env.Backups[1].Metadata["LastErrorMessage"] != "The backup failed: simulated fatal error" ||
		!regexp.MustCompile(`^\d{8}T\d{6}Z$`).MatchString(env.Backups[0].Metadata["LastBackupFinished"]) {
		t.Fatalf("envelope:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, `"Backups": [`) || !strings.Contains(r.stdout, `"Schedule": null`) {
		t.Fatalf("envelope shape:\n%s", r.stdout)
	}
	// no backups: no Backups key at all
	_, empty := startSim(t, nil, duplicatisim.Quirks{})
	r = util(t, 10*time.Second, nil, "--json", "list-backups", "--hosturl", empty)
	if r.code != 0 || strings.Contains(r.stdout, "Backups") || !strings.Contains(r.stdout, `"No backups found"`) {
		t.Fatalf("empty list:\n%s", r.stdout)
	}
}

// utilAs runs the stand-in with a clean environment plus env as the given user (nil = us).
func utilAs(t *testing.T, cred *syscall.Credential, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, utilBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TZ=UTC"}, env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
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

// TestUtilDataFolder: 2.3.1.0's util stat()s its data folder: mode 0700 at most, owned by the
// caller or root. Run as root against a folder owned by someone else it fails with exit 1 and
// (the exception is thrown before the OutputInterceptor exists) no output at all.
func TestUtilDataFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the data folder and to run the util as another user")
	}
	t.Parallel()
	const uid = 54321
	// the other user must be able to run the binary
	if err := os.Chmod(filepath.Dir(utilBin), 0o755); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, mode os.FileMode, owner int) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, owner, owner); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	theirs := mk("theirs", 0o700, uid)
	rootOK := mk("root", 0o700, 0)
	open := mk("open", 0o750, 0)
	narrow := mk("narrow", 0o500, 0)
	idle := "Connecting to HOST/...\nServer state: Running\nActive task: None\nScheduler tasks: Empty\n\n"
	_, host := startSim(t, backups, duplicatisim.Quirks{})
	_, host2304 := startSim(t, backups, duplicatisim.Quirks{Version: "2.3.0.4"})
	them := &syscall.Credential{Uid: uid, Gid: uid}
	cases := []struct {
		name string
		host string
		cred *syscall.Credential
		env  []string
		args []string
		ok   bool
	}{
		{"root, folder of another uid", host, nil, nil, []string{"--server-datafolder", theirs}, false},
		{"root, env folder of another uid", host, nil, []string{"DUPLICATI__SERVER_DATAFOLDER=" + theirs}, nil, false},
		{"the owner", host, them, nil, []string{"--server-datafolder", theirs}, true},
		{"another uid, root's folder", host, them, nil, []string{"--server-datafolder=" + rootOK}, true},
		{"root, own folder", host, nil, nil, []string{"--server-datafolder", rootOK}, true},
		{"group bits", host, nil, nil, []string{"--server-datafolder", open}, false},
		{"missing owner bits", host, nil, nil, []string{"--server-datafolder", narrow}, false},
		{"missing folder: nothing to check", host, nil, nil, []string{"--server-datafolder", filepath.Join(base, "none")}, true},
		{"--allow-insecure-datafolder", host, nil, nil, []string{"--server-datafolder", theirs, "--allow-insecure-datafolder"}, true},
		{"--allow-insecure-datafolder false", host, nil, nil, []string{"--server-datafolder", theirs, "--allow-insecure-datafolder", "false"}, false},
		{"env true", host, nil, []string{"DUPLICATI__ALLOW_INSECURE_DATAFOLDER=true"}, []string{"--server-datafolder", theirs}, true},
		{"env empty", host, nil, []string{"DUPLICATI__ALLOW_INSECURE_DATAFOLDER="}, []string{"--server-datafolder", theirs}, true},
		{"env off", host, nil, []string{"DUPLICATI__ALLOW_INSECURE_DATAFOLDER=off"}, []string{"--server-datafolder", theirs}, false},
		{"2.3.0.4 has no check", host2304, nil, nil, []string{"--server-datafolder", theirs}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := utilAs(t, tc.cred, tc.env, append([]string{"status", "--hosturl", tc.host}, tc.args...)...)
			if tc.ok {
				check(t, r, tc.host, idle, 0)
			} else if r.code != 1 || r.stdout != "" || r.stderr != "" {
				t.Fatalf("exit %d stdout %q stderr %q, want 1 and no output", r.code, r.stdout, r.stderr)
			}
		})
	}
	// the exception text, shown with the DataFolderMessage quirk
	_, h := startSim(t, backups, duplicatisim.Quirks{DataFolderMessage: true})
	for _, tc := range []struct{ dir, detail string }{
		{theirs, "owner is uid 54321 but expected the current user (uid 0) or root"},
		{open, "permissions allow group or other access (750)"},
		{narrow, "permissions are 500 but expected 700"},
	} {
		r := utilAs(t, nil, nil, "status", "--hosturl", h, "--server-datafolder", tc.dir)
		want := "Duplicati.Library.Interface.UserInformationException: The data folder '" + tc.dir + "/' does not have secure permissions (" +
			tc.detail + "). This is a security risk because"
		if r.code != 1 || !strings.HasPrefix(r.stdout, want) ||
			!strings.HasSuffix(r.stdout, "Alternatively, run with --allow-insecure-datafolder to bypass this check if you understand the risks.\n") {
			t.Fatalf("exit %d:\n%s\nwant prefix %s", r.code, r.stdout, want)
		}
	}
}

func TestServeProfileFlags(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--version", "9.9"},
		{"serve", "--version", "2.1.0.5", "--preauth-token", "0123456789abc"},
		{"serve", "--preauth-token", "short"},
		{"serve", "--version", "2.3.0.4", "--quirks", `{"LogLocked":1}`},
		{"serve", "--version", "2.2.0.3", "--backup", "1=mirror:Sync"},
		{"serve", "--password", "x", "--password-file", pwFile},
	} {
		cmd := exec.Command(simBin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.HasPrefix(stderr.String(), "serve: ") {
			t.Fatalf("%v: %v %q", args, err, stderr.String())
		}
	}
	cmd := exec.Command(simBin, "serve", "--listen", "127.0.0.1:0", "--version", "2.2.0.3", "--password", "pw",
		"--preauth-token", "0123456789abc", "--backup", "1=a:100ms")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + strings.TrimSpace(line)
	resp, err := http.Get(base + "/sim/quirks")
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		Version, Password string
		PreAuthTokens     []string
	}
	_ = json.NewDecoder(resp.Body).Decode(&q)
	resp.Body.Close()
	if q.Version != "2.2.0.3" || q.Password != "pw" || len(q.PreAuthTokens) != 1 {
		t.Fatalf("quirks %+v", q)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/backups", nil)
	req.Header.Set("Authorization", "PreAuth 0123456789abc")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"Name":"a"`) {
		t.Fatalf("PreAuth: %d %s", resp.StatusCode, b)
	}
}
