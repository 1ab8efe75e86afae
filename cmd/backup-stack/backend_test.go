package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
)

// fakePodman puts a podman on PATH that writes its arguments, one a line,
// to the returned file and fails (State then reports Duplicati unreachable,
// which does not matter here).
func fakePodman(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	argv := filepath.Join(bin, "argv")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argv + "\necho 'Error: no such container' >&2\nexit 125\n"
	if err := os.WriteFile(filepath.Join(bin, "podman"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return argv
}

func execDuplicati(container, util, user string) hcl.Duplicati {
	return hcl.Duplicati{Container: container, ServerUtil: util, ExecUser: user, RunTimeout: 5 * time.Second, WaitTimeout: time.Minute}
}

func TestBackendExecArgv(t *testing.T) {
	argvFile := fakePodman(t)
	for _, c := range []struct {
		name string
		d    hcl.Duplicati
		want []string
	}{
		{"default user", execDuplicati("duplicati", "duplicati-server-util", ""),
			[]string{"exec", "duplicati", "duplicati-server-util", "status"}},
		{"exec_user", execDuplicati("duplicati", "/app/duplicati/duplicati-server-util", "abc"),
			[]string{"exec", "-u", "abc", "duplicati", "/app/duplicati/duplicati-server-util", "status"}},
		{"uid:gid and a path with a space", execDuplicati("dup-1", "/opt/my tools/duplicati-server-util", "1000:1000"),
			[]string{"exec", "-u", "1000:1000", "dup-1", "/opt/my tools/duplicati-server-util", "status"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(argvFile)
			b, err := backend(c.d, time.Minute, 0, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.State(context.Background()); err == nil {
				t.Error("the fake podman fails, State did not")
			}
			out, err := os.ReadFile(argvFile)
			if err != nil {
				t.Fatalf("podman was not run: %v", err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			// The util may get global options after its name; the prefix is ours.
			if len(got) < len(c.want)-1 || !reflect.DeepEqual(got[:len(c.want)-1], c.want[:len(c.want)-1]) || !contains(got, "status") {
				t.Errorf("podman %q, want %q", got, c.want)
			}
		})
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestExecCommand(t *testing.T) {
	for _, c := range []struct {
		name string
		d    hcl.Duplicati
		want []string
		err  string
	}{
		{"without exec_user", execDuplicati("duplicati", "duplicati-server-util", ""),
			[]string{"podman", "exec", "duplicati", "duplicati-server-util"}, ""},
		{"with exec_user", execDuplicati("duplicati", "duplicati-server-util", "abc"),
			[]string{"podman", "exec", "-u", "abc", "duplicati", "duplicati-server-util"}, ""},
		{"uid", execDuplicati("duplicati", "/opt/duplicati/duplicati-server-util", "1000"),
			[]string{"podman", "exec", "-u", "1000", "duplicati", "/opt/duplicati/duplicati-server-util"}, ""},
		// DUPLICATI_CONTAINER bypasses the decoder.
		{"container is an option", execDuplicati("--privileged", "duplicati-server-util", ""), nil, "starts with '-'"},
		{"bad exec_user", execDuplicati("duplicati", "duplicati-server-util", "-u"), nil, "exec_user"},
		{"relative util", execDuplicati("duplicati", "bin/util", ""), nil, "relative path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := execCommand(c.d)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				if _, err := backend(c.d, time.Minute, 0, slog.New(slog.DiscardHandler)); codeOf(err) != exitcode.Usage {
					t.Errorf("backend: %v (code %d), want a usage error", err, codeOf(err))
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("%q %v, want %q", got, err, c.want)
			}
		})
	}
}

// secretFile writes content to a new file with mode perm and returns its path.
func secretFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return p
}

const goodToken = "Tok_en-0123456789abcdef"

func TestReadSecret(t *testing.T) {
	const secret = "s3cret pa55word"
	for _, c := range []struct {
		name    string
		attr    string
		content string
		perm    os.FileMode
		want    string
		err     string // "" = accepted; %s is the path
	}{
		{"password", "password_file", secret + "\n", 0o600, secret, ""},
		{"CRLF", "password_file", secret + "\r\n\r\n", 0o600, secret, ""},
		{"no newline", "password_file", secret, 0o400, secret, ""},
		{"owner-only execute bit", "password_file", secret, 0o700, secret, ""},
		{"token", "token_file", goodToken + "\n", 0o600, goodToken, ""},
		{"readable by others", "password_file", secret, 0o644, "", "password_file %s can be read or written by group or others (mode 0644): make it private (chmod 600 %s)"},
		{"readable by group", "token_file", goodToken, 0o640, "", "(chmod 600 %s)"},
		{"writable by others", "password_file", secret, 0o602, "", "(mode 0602)"},
		{"empty password", "password_file", "", 0o600, "", "password_file %s is empty: Duplicati refuses an empty password"},
		{"only a newline", "password_file", "\n", 0o600, "", "password_file %s is empty: Duplicati refuses an empty password"},
		{"only white space", "password_file", "  \n", 0o600, "", "password_file %s holds only white space: Duplicati refuses an empty password"},
		{"empty token", "token_file", "\r\n", 0o600, "", "token_file %s is empty"},
		{"two lines", "password_file", "user\n" + secret + "\n", 0o600, "", "holds more than one line"},
		{"5 KiB", "password_file", strings.Repeat("x", 5<<10), 0o600, "", "password_file %s is larger than 4 KiB"},
		{"4 KiB and a newline", "password_file", strings.Repeat("x", 4<<10) + "\n", 0o600, "", "larger than 4 KiB"},
		{"exactly 4 KiB", "password_file", strings.Repeat("x", 4<<10), 0o600, strings.Repeat("x", 4<<10), ""},
		{"short token", "token_file", "abc123456", 0o600, "", "token_file %s does not hold a pre-authenticated token: Duplicati takes one of at least 10 characters from A-Z a-z 0-9 _ -"},
		{"token with a space", "token_file", "abcdef 123456", 0o600, "", "does not hold a pre-authenticated token"},
		{"token with a dot", "token_file", "abcdef.123456", 0o600, "", "does not hold a pre-authenticated token"},
		{"token of ten", "token_file", "0123456789", 0o600, "0123456789", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := secretFile(t, c.content, c.perm)
			got, err := readFor(c.attr, p)
			checkSecret(t, got, err, c.want, c.err, p, c.content)
		})
	}
}

// readFor reads a secret the way backend does for attr.
func readFor(attr, path string) (string, error) {
	if attr == "token_file" {
		return readToken(path)
	}
	return readPassword(path)
}

func checkSecret(t *testing.T, got string, err error, want, wantErr, path, content string) {
	t.Helper()
	if wantErr == "" {
		if err != nil || got != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted %q", got)
	}
	if w := strings.ReplaceAll(wantErr, "%s", path); !strings.Contains(err.Error(), w) {
		t.Errorf("error %q does not say %q", err, w)
	}
	if s := strings.TrimSpace(content); len(s) >= 4 && strings.Contains(err.Error(), s) {
		t.Errorf("the secret is in the error: %q", err)
	}
}

func TestReadSecretOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	p := secretFile(t, goodToken, 0o600)
	if err := os.Chown(p, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"password_file", "token_file"} {
		_, err := readFor(attr, p)
		want := attr + " " + p + " is owned by uid 1234, not by the user running backup-stack (uid 0): make it yours and private (sudo chown 0 " + p + " && chmod 600 " + p + ")"
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v\nwant %s", attr, err, want)
		}
		if err != nil && strings.Contains(err.Error(), goodToken) {
			t.Errorf("the token is in the error")
		}
	}
}

func TestReadSecretSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		// /dev/zero never ends and a FIFO without a writer blocks: both are
		// refused at once, without reading.
		{"/dev/zero", "password_file /dev/zero is a character device, not a regular file"},
		{fifo, "password_file " + fifo + " is a named pipe, not a regular file"},
		{dir, "password_file " + dir + " is a directory, not a regular file"},
		{filepath.Join(dir, "missing"), "password_file: open " + filepath.Join(dir, "missing") + ": no such file or directory"},
	} {
		done := make(chan error, 1)
		go func() { _, err := readPassword(c.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want %q", c.path, err, c.want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: readSecret blocked", c.path)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/u/.config/backup-stack/pw": "/home/u/.config/backup-stack/pw",
		"/tmp/my pw":                      "'/tmp/my pw'",
		"/tmp/it's":                       `'/tmp/it'\''s'`,
		"/tmp/$HOME":                      "'/tmp/$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// backend reads the secret file of the REST route and hands it to the
// client: a token as Authorization: PreAuth, a password to auth/login.
func TestBackendCredentials(t *testing.T) {
	var mu sync.Mutex
	var auth, password []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/api/v1/auth/login" {
			var in struct{ Password string }
			_ = json.NewDecoder(r.Body).Decode(&in)
			password = append(password, in.Password)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"AccessToken":"eyJhbGciOiJIUzI1NiJ9.e30.x","RefreshNonce":"n"}`))
			return
		}
		auth = append(auth, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ProgramState":"Running","ActiveTask":null,"SchedulerQueueIds":[]}`))
	}))
	t.Cleanup(srv.Close)
	rest := hcl.Duplicati{URL: srv.URL, RunTimeout: 5 * time.Second, WaitTimeout: time.Minute}

	tokFile := secretFile(t, goodToken+"\n", 0o600)
	d := rest
	d.TokenFile = tokFile
	b, err := backend(d, time.Minute, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.State(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(auth) == 0 || auth[0] != "PreAuth "+goodToken || len(password) != 0 {
		t.Errorf("token route: Authorization %q, logins %d", auth, len(password))
	}
	auth, password = nil, nil
	mu.Unlock()

	d = rest
	d.PasswordFile = secretFile(t, "pa55word\n", 0o600)
	if b, err = backend(d, time.Minute, 0, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.State(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(password) != 1 || password[0] != "pa55word" {
		t.Errorf("password route: logins %q", password)
	}
	mu.Unlock()

	// What the decoder refuses, backend refuses too (a plan frozen by an
	// older version), and a bad file is a configuration error.
	both := rest
	both.PasswordFile, both.TokenFile = d.PasswordFile, tokFile
	open := rest
	open.PasswordFile = secretFile(t, "pa55word\n", 0o644)
	for name, c := range map[string]struct {
		d    hcl.Duplicati
		want string
	}{
		"no credentials": {rest, "neither password_file nor token_file"},
		"both":           {both, "both set"},
		"mode 0644":      {open, "chmod 600"},
	} {
		_, err := backend(c.d, time.Minute, 0, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) || codeOf(err) != exitcode.Usage {
			t.Errorf("%s: %v (code %d), want a usage error saying %q", name, err, codeOf(err), c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pa55word") {
			t.Errorf("%s: the password is in the error", name)
		}
	}
}

// codeOf is the exit code Main would give err (-1 for none).
func codeOf(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return -1
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }

// validate shows the duplicati block's warnings without failing, and
// refuses a url without credentials, pointing at the url line.
func TestValidateCredentials(t *testing.T) {
	stacks := map[string]string{"a": `stack "a" { jobs = ["job-a"] }`}
	c := newCLI(t, "duplicati {\n  password_file = \"/run/secrets/pw\"\n}\n", stacks)
	code, out, errs := c.run("validate")
	if code != 0 || !strings.Contains(out, "config.hcl:2:3: warning: Unused password_file: password_file is only used by the REST route") {
		t.Errorf("warning only: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	c = newCLI(t, "duplicati {\n  url = \"http://127.0.0.1:8200\"\n}\n", stacks)
	code, out, errs = c.run("validate")
	if code != exitcode.Usage || !strings.Contains(out, "config.hcl:2:3: error: Missing credentials: url needs password_file or token_file") {
		t.Errorf("no credentials: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// And the helper does not talk to Duplicati with such a config.hcl.
	if code, _, errs := c.run("status"); code != exitcode.Usage || !strings.Contains(errs, "Missing credentials") {
		t.Errorf("status: code %d\n%s", code, errs)
	}
}
