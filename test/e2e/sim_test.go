package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// sim is a running `duplicati-sim serve` on loopback.
type sim struct {
	e        *env
	Addr     string // host:port
	URL      string // http://host:port
	Password string // the server password (a server without one accepts no password login)
	cmd      *exec.Cmd
	done     chan struct{}
}

// simPassword is the password every test simulator is started with.
const simPassword = "e2e-sim-pw"

var addrRE = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):[0-9]+`)

// startSim starts the Duplicati simulator on 127.0.0.1:0 with the given backups, each
// "ID=NAME:DURATION:RESULT" (e.g. "1=cryptpad:2s:Success"). It is stopped at cleanup.
func (e *env) startSim(backups ...string) *sim {
	e.t.Helper()
	bin := binary(e.t, "duplicati-sim")
	args := []string{"serve", "--listen", "127.0.0.1:0", "--password", simPassword}
	for _, b := range backups {
		args = append(args, "--backup", b)
	}
	logf, err := os.OpenFile(filepath.Join(e.dir, "sim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = e.userEnv()
	cmd.Stdout = pw
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		logf.Close()
		e.t.Fatalf("starting duplicati-sim: %v", err)
	}
	pw.Close()
	s := &sim{e: e, Password: simPassword, cmd: cmd, done: make(chan struct{})}
	e.sims = append(e.sims, s)
	go func() {
		cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	first := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pr)
		line, _ := br.ReadString('\n')
		first <- line
		logf.WriteString(line)
		io.Copy(logf, br) // keeps the pipe drained until the sim exits
		pr.Close()
	}()
	select {
	case line := <-first:
		addr := addrRE.FindString(line)
		if addr == "" {
			e.t.Fatalf("duplicati-sim printed %q, not a listening address; sim.log: %s", line, e.tail("sim.log"))
		}
		s.Addr = addr
		s.URL = "http://" + addr
	case <-time.After(15 * time.Second):
		e.t.Fatalf("duplicati-sim printed no address within 15s; sim.log: %s", e.tail("sim.log"))
	}
	e.sim = s
	return s
}

func (s *sim) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
	}
}

func (s *sim) do(method, path string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return b, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, oneLine(string(b)))
	}
	return b, nil
}

// simEvent mirrors duplicatisim.Event (decoded loosely, so the suite does not import the
// package under development).
type simEvent struct {
	TaskID    int64
	BackupID  string
	Operation string
	Boot      int // 0, then +1 per simulator restart (task IDs repeat after one)
	Queued    time.Time
	Started   time.Time
	Finished  time.Time
	Result    string
}

// events returns GET /sim/events.
// maxTask is the highest task ID the simulator has reported so far (the events of later runs
// have higher IDs).
func (s *sim) maxTask() int64 {
	var m int64
	for _, ev := range s.events() {
		if ev.TaskID > m {
			m = ev.TaskID
		}
	}
	return m
}

func (s *sim) events() []simEvent {
	s.e.t.Helper()
	b, err := s.do("GET", "/sim/events", nil)
	if err != nil {
		s.e.t.Fatal(err)
	}
	var ev []simEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		s.e.t.Fatalf("GET /sim/events: %v: %s", err, oneLine(string(b)))
	}
	return ev
}

// setQuirks POSTs /sim/quirks with q marshalled as JSON (e.g. map[string]any{"RunHangs": true}).
func (s *sim) setQuirks(q any) {
	s.e.t.Helper()
	b, err := json.Marshal(q)
	if err != nil {
		s.e.t.Fatal(err)
	}
	if _, err := s.do("POST", "/sim/quirks", b); err != nil {
		s.e.t.Fatal(err)
	}
}

// hold POSTs /sim/hold?backup=ID&duration=D.
func (s *sim) hold(backupID string, d time.Duration) {
	s.e.t.Helper()
	q := url.Values{"backup": {backupID}, "duration": {d.String()}}
	if _, err := s.do("POST", "/sim/hold?"+q.Encode(), nil); err != nil {
		s.e.t.Fatal(err)
	}
}

// simContainer runs a real podman container (named duplicati-<testid>, --network host,
// --init, command sleep) whose /usr/bin/duplicati-server-util is the simulator's stand-in
// talking to the last startSim. Use the returned name as `container =` in config.hcl.
func (e *env) simContainer() string {
	e.t.Helper()
	if e.sim == nil {
		e.t.Fatal("simContainer: call startSim first")
	}
	img := e.simImage()
	// Rootless: the user's own container namespace, so the name users give it. Root: the
	// name is shared by every test's root podman.
	name := "duplicati"
	if e.user == nil {
		name = "duplicati-" + e.id
	}
	e.containers = append(e.containers, name)
	args := []string{"run", "-d", "--name", name, "--init", "--network", "host"}
	for _, l := range suiteLabels(e.id) {
		args = append(args, "--label", l)
	}
	args = append(args, "-e", "DUPLICATI_SIM_HOSTURL="+e.sim.URL, img, "sleep", "86400")
	if _, err := e.podman(args...); err != nil {
		e.t.Fatal(err)
	}
	return name
}

// execConfig returns a config.hcl for the exec route to the given container.
func execConfig(container string) string {
	return fmt.Sprintf("duplicati {\n  container   = %q\n  server_util = \"duplicati-server-util\"\n  run_timeout = \"25s\"\n  wait_timeout = \"5m\"\n}\n", container)
}

// restConfig returns a config.hcl for the REST route to the simulator. The password goes to
// a file in the test's directory (mode 0600, owned by the test user), named by password_file.
func restConfig(s *sim) string {
	s.e.t.Helper()
	pwFile := filepath.Join(s.e.dir, "duplicati-password-"+strings.NewReplacer(":", "_", ".", "_", "[", "", "]", "").Replace(s.Addr))
	s.e.writeFile(pwFile, s.Password+"\n", 0o600)
	return fmt.Sprintf("duplicati {\n  url = %q\n  password_file = %q\n  wait_timeout = \"5m\"\n}\n", s.URL, pwFile)
}

// closedRESTConfig is a config.hcl for the REST route to a URL nobody serves, with a
// password file (url needs one).
func (e *env) closedRESTConfig(url string) string {
	e.t.Helper()
	pwFile := filepath.Join(e.dir, "duplicati-password-closed")
	e.writeFile(pwFile, simPassword+"\n", 0o600)
	return fmt.Sprintf("duplicati {\n  url = %q\n  password_file = %q\n  wait_timeout = \"5m\"\n}\n", url, pwFile)
}
