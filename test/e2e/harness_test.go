package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Default bounds; every wait in the harness is bounded.
const (
	managerStartTimeout = 30 * time.Second
	managerStopTimeout  = 30 * time.Second
	systemctlTimeout    = 3 * time.Minute
	podmanTimeout       = 90 * time.Second
)

// env is one test's world: its own temp dir, systemd --user manager, stacks and containers.
type env struct {
	t      *testing.T
	id     string // unique test id, safe in container names: <runid>t<seq>
	dir    string // $T
	home   string // $HOME
	config string // $XDG_CONFIG_HOME
	run    string // $XDG_RUNTIME_DIR
	genDir string // bind-mounted onto /usr/local/lib/systemd/user-generators
	path   string // PATH of the manager (and so of its units)

	manager     *exec.Cmd
	managerPID  int
	managerDone chan struct{}
	managerErr  error // exit status once managerDone is closed
	stopped     bool

	projects   []string // compose projects created (cleanup by project label and network)
	containers []string // containers created by name
	sims       []*sim
	sim        *sim // last started simulator
}

// newEnv checks the prerequisites (skip, or fail under BACKUP_STACK_E2E=require), then
// starts a systemd --user manager for this test. Everything is undone at t.Cleanup.
func newEnv(t *testing.T) *env {
	t.Helper()
	checkPrereqs(t)
	suite.netnsOnce.Do(func() { suite.netnsErr = sharedNetns() })
	if suite.netnsErr != nil {
		t.Fatalf("making /run/netns a shared mount: %v", suite.netnsErr)
	}
	if err := ensureMiniImage(); err != nil {
		t.Fatalf("base image: %v", err)
	}
	suite.testSeq++
	e := &env{t: t, id: fmt.Sprintf("%st%d", suite.runID, suite.testSeq)}
	e.dir = t.TempDir()
	// Registered after TempDir, so it runs before the dir is removed.
	t.Cleanup(e.cleanup)
	e.home = filepath.Join(e.dir, "home")
	e.config = filepath.Join(e.home, ".config")
	e.run = filepath.Join(e.dir, "run")
	e.genDir = filepath.Join(e.dir, "generators")
	for _, d := range []string{e.home, e.config, e.genDir,
		filepath.Join(e.config, "systemd", "user"), filepath.Join(e.config, "backup-stack", "stacks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(e.run, 0o700); err != nil {
		t.Fatal(err)
	}
	if gen, ok := suite.built["backup-generator"]; ok {
		if err := os.Symlink(gen, filepath.Join(e.genDir, "backup-generator")); err != nil {
			t.Fatal(err)
		}
	}
	e.path = suite.bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	e.writeLogDropIns()
	e.startManager()
	return e
}

// checkPrereqs skips (or fails in require mode) with one line naming what is missing.
func checkPrereqs(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "not root")
	}
	for _, tool := range []string{"unshare", "mount", "bash", "systemctl", "podman", "podman-compose", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, "no "+tool)
		}
	}
	if fi, err := os.Stat("/lib/systemd/systemd"); err != nil || fi.IsDir() {
		missing = append(missing, "no /lib/systemd/systemd")
	}
	if _, err := busyboxPath(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) == 0 {
		return
	}
	msg := "e2e prerequisites missing: " + strings.Join(missing, ", ")
	if requireMode() {
		t.Fatal(msg + " (" + envRequire + "=require)")
	}
	t.Skip(msg + " (set " + envRequire + "=require to make this a failure)")
}

// sharedNetns makes /run/netns a shared mount point so that containers started by units in
// the manager's mount namespace are visible to podman on the host.
func sharedNetns() error {
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script := `mountpoint -q /run/netns || mount --bind /run/netns /run/netns; mount --make-shared /run/netns`
	out, err := exec.CommandContext(ctx, "bash", "-c", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, oneLine(string(out)))
	}
	return nil
}

// managerScript runs inside `unshare --mount --propagation unchanged`; $1 = generator dir.
const managerScript = `set -e
mount --make-private /
mkdir -p /run/systemd
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system
mkdir -p /usr/local/lib/systemd/user-generators
mount --bind "$1" /usr/local/lib/systemd/user-generators
exec /lib/systemd/systemd --user --log-target=console
`

// managerEnv is the whole environment of the manager; units inherit it.
func (e *env) managerEnv() []string {
	return []string{
		"PATH=" + e.path,
		"HOME=" + e.home,
		"USER=root",
		"LOGNAME=root",
		"LANG=C.UTF-8",
		"XDG_CONFIG_HOME=" + e.config,
		"XDG_RUNTIME_DIR=" + e.run,
		"CONTAINERS_CONF=" + suite.containersConf,
	}
}

func (e *env) startManager() {
	t := e.t
	t.Helper()
	logf, err := os.Create(filepath.Join(e.dir, "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := time.Now()
	cmd := exec.Command("unshare", "--mount", "--propagation", "unchanged", "bash", "-c", managerScript, "e2e-manager", e.genDir)
	cmd.Env = e.managerEnv()
	cmd.Dir = e.home
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own session and process group; SIGTERM if the test process dies without cleanup
	// (kept across unshare's and bash's exec).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting systemd --user: %v", err)
	}
	// unshare execs bash execs systemd: this PID is the manager's.
	e.manager = cmd
	e.managerPID = cmd.Process.Pid
	e.managerDone = make(chan struct{})
	go func() {
		e.managerErr = cmd.Wait()
		close(e.managerDone)
	}()
	sock := filepath.Join(e.run, "systemd", "private")
	deadline := time.Now().Add(managerStartTimeout)
	for {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			break
		}
		select {
		case <-e.managerDone:
			t.Fatalf("systemd --user exited during start (%v); manager.log: %s", e.managerErr, e.tail("manager.log"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd --user: no %s after %s; manager.log: %s", sock, managerStartTimeout, e.tail("manager.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The socket exists before the manager answers; wait until it does.
	for {
		// `is-system-running` says "offline" for a user manager reached this way; ask for
		// the manager's SystemState instead.
		out, err := e.systemctlTimeout(10*time.Second, "show", "-p", "SystemState", "--value")
		state := strings.TrimSpace(out)
		if err == nil && (state == "running" || state == "degraded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd --user not running after %s (state %q); manager.log: %s", managerStartTimeout, state, e.tail("manager.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("timing: manager start %s (pid %d)", time.Since(start).Round(time.Millisecond), e.managerPID)
}

// stopManager stops this test's manager by its PID (SIGTERM; SIGKILL to its process group
// after managerStopTimeout) and waits for it to exit. It returns the manager's exit error.
func (e *env) stopManager() error {
	if e.manager == nil || e.stopped {
		return e.managerErr
	}
	e.stopped = true
	start := time.Now()
	_ = syscall.Kill(e.managerPID, syscall.SIGTERM)
	var err error
	select {
	case <-e.managerDone:
		err = e.managerErr
	case <-time.After(managerStopTimeout):
		_ = syscall.Kill(-e.managerPID, syscall.SIGKILL)
		select {
		case <-e.managerDone:
		case <-time.After(10 * time.Second):
		}
		err = fmt.Errorf("systemd --user (pid %d) did not exit within %s of SIGTERM; killed", e.managerPID, managerStopTimeout)
	}
	// Anything left in the manager's process group goes too (units run in their own sessions
	// and are stopped by the manager itself).
	_ = syscall.Kill(-e.managerPID, syscall.SIGKILL)
	e.t.Logf("timing: manager stop %s", time.Since(start).Round(time.Millisecond))
	return err
}

// cleanup runs at t.Cleanup: manager, simulators, containers, networks.
func (e *env) cleanup() {
	t := e.t
	if err := e.stopManager(); err != nil {
		t.Errorf("manager: %v; manager.log: %s", err, e.tail("manager.log"))
	}
	for _, s := range e.sims {
		s.stop()
	}
	// Containers: this test's label, the names it created, the compose projects it created.
	var ids []string
	if out, err := podmanCmd(podmanTimeout, "ps", "-aq", "--filter", "label="+labelTestKey+"="+e.id); err == nil {
		ids = append(ids, strings.Fields(out)...)
	}
	for _, p := range e.projects {
		if out, err := podmanCmd(podmanTimeout, "ps", "-aq", "--filter", "label=io.podman.compose.project="+p); err == nil {
			ids = append(ids, strings.Fields(out)...)
		}
	}
	ids = append(ids, e.containers...)
	if len(ids) > 0 {
		args := append([]string{"rm", "-f", "-i", "-t", "0"}, dedupe(ids)...)
		if _, err := podmanCmd(podmanTimeout, args...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	for _, p := range e.projects {
		podmanCmd(podmanTimeout, "network", "rm", "-f", p+"_default")
	}
	if out, err := podmanCmd(podmanTimeout, "network", "ls", "-q", "--filter", "label="+labelTestKey+"="+e.id); err == nil {
		for _, n := range strings.Fields(out) {
			podmanCmd(podmanTimeout, "network", "rm", "-f", n)
		}
	}
	if t.Failed() {
		for _, f := range []string{"manager.log", "units.log"} {
			if b, err := os.ReadFile(filepath.Join(e.dir, f)); err == nil && len(b) > 0 {
				t.Logf("---- %s ----\n%s", f, lastBytes(b, 8000))
			}
		}
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// tail returns the end of a file in $T, on one line, for failure messages.
func (e *env) tail(name string) string {
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return oneLine(lastBytes(b, 1500))
}

// writeLogDropIns makes backup@.service and backup-hold@.service append their output to
// $T/units.log (there is no journald).
func (e *env) writeLogDropIns() {
	logPath := filepath.Join(e.dir, "units.log")
	for _, u := range []string{"backup@.service", "backup-hold@.service"} {
		e.writeUserUnit(u+".d/90-e2e-log.conf", fmt.Sprintf("[Service]\nStandardOutput=append:%s\nStandardError=append:%s\n", logPath, logPath))
	}
}

// writeUserUnit writes a file under $XDG_CONFIG_HOME/systemd/user/ (name may hold a drop-in dir).
func (e *env) writeUserUnit(name, content string) {
	e.t.Helper()
	p := filepath.Join(e.config, "systemd", "user", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// unitLog returns what backup@ and backup-hold@ units wrote so far.
func (e *env) unitLog() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "units.log"))
	return string(b)
}

// writeStack writes $XDG_CONFIG_HOME/backup-stack/stacks/<name>.hcl.
func (e *env) writeStack(name, hcl string) {
	e.t.Helper()
	p := filepath.Join(e.config, "backup-stack", "stacks", name+".hcl")
	if err := os.WriteFile(p, []byte(hcl), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// writeConfig writes $XDG_CONFIG_HOME/backup-stack/config.hcl.
func (e *env) writeConfig(hcl string) {
	e.t.Helper()
	p := filepath.Join(e.config, "backup-stack", "config.hcl")
	if err := os.WriteFile(p, []byte(hcl), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// configDir is $XDG_CONFIG_HOME/backup-stack.
func (e *env) configDir() string { return filepath.Join(e.config, "backup-stack") }

// userEnv is the environment for commands the test runs "as the user" (the helper, systemctl).
func (e *env) userEnv() []string { return e.managerEnv() }

// systemctl runs `systemctl --user args...` against this test's manager.
func (e *env) systemctl(args ...string) (string, error) {
	return e.systemctlTimeout(systemctlTimeout, args...)
}

func (e *env) systemctlTimeout(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return e.systemctlCtx(ctx, args...)
}

// systemctlCtx is systemctl with the caller's context (e.g. to start a unit in the background).
func (e *env) systemctlCtx(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--user", "--no-pager"}, args...)...)
	cmd.Env = []string{"XDG_RUNTIME_DIR=" + e.run, "PATH=" + e.path, "LANG=C.UTF-8", "SYSTEMD_COLORS=0"}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("systemctl --user %s: %w", strings.Join(args, " "), ctx.Err())
	}
	return out.String(), err
}

// daemonReload runs `systemctl --user daemon-reload` (which re-runs the generator).
func (e *env) daemonReload() {
	e.t.Helper()
	if out, err := e.systemctl("daemon-reload"); err != nil {
		e.t.Fatalf("daemon-reload: %v: %s; manager.log: %s", err, oneLine(out), e.tail("manager.log"))
	}
}

// show returns unit properties (`systemctl --user show -p A,B unit`).
func (e *env) show(unit string, props ...string) map[string]string {
	e.t.Helper()
	out, err := e.systemctlTimeout(30*time.Second, "show", "-p", strings.Join(props, ","), unit)
	if err != nil {
		e.t.Fatalf("systemctl --user show %s: %v: %s", unit, err, oneLine(out))
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitFor polls cond every interval until it is true or timeout passes (then fails the test).
func (e *env) waitFor(what string, timeout, interval time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// podman runs podman from the host side with the suite's containers.conf.
func (e *env) podman(args ...string) (string, error) { return podmanCmd(podmanTimeout, args...) }

// stack is a compose project run by a user unit.
type stack struct {
	Name    string // stack name
	Project string // io.podman.compose.project label (= Name)
	Unit    string // <name>-stack.service
	Dir     string // project dir holding compose.yaml
}

// composeStack creates a podman-compose project with two containers (app: busybox httpd, db:
// sleep; both init: true) labelled io.podman.compose.project=<name>, and the user unit
// <name>-stack.service that brings it up and stops it. Call daemonReload afterwards.
func (e *env) composeStack(name string) *stack {
	e.t.Helper()
	if out, err := e.podman("ps", "-aq", "--filter", "label=io.podman.compose.project="+name); err != nil {
		e.t.Fatal(err)
	} else if ids := strings.Fields(out); len(ids) > 0 {
		e.t.Fatalf("compose project %q already has containers %v (left over, or another run uses the name); remove them with: podman rm -f %s", name, ids, strings.Join(ids, " "))
	}
	composeBin, err := exec.LookPath("podman-compose")
	if err != nil {
		e.t.Fatal(err)
	}
	s := &stack{Name: name, Project: name, Unit: name + "-stack.service", Dir: filepath.Join(e.dir, "compose", name)}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	labels := ""
	for _, l := range suiteLabels(e.id) {
		labels += "      - " + l + "\n"
	}
	compose := "version: \"3\"\n" +
		"services:\n" +
		"  app:\n" +
		"    image: " + miniImage + "\n" +
		"    init: true\n" +
		"    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n" +
		"    labels:\n" + labels +
		"  db:\n" +
		"    image: " + miniImage + "\n" +
		"    init: true\n" +
		"    command: [\"sleep\", \"86400\"]\n" +
		"    labels:\n" + labels +
		"networks:\n" +
		"  default:\n" +
		"    labels:\n" + labels
	if err := os.WriteFile(filepath.Join(s.Dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.projects = append(e.projects, name)
	e.writeUserUnit(s.Unit, fmt.Sprintf(`[Unit]
Description=e2e compose stack %[1]s

[Service]
Type=oneshot
RemainAfterExit=yes
WorkingDirectory=%[2]s
ExecStart=%[3]s -p %[1]s up -d
ExecStop=%[3]s -p %[1]s stop -t 2
StandardOutput=append:%[4]s
StandardError=append:%[4]s
TimeoutStartSec=120
TimeoutStopSec=60
`, name, s.Dir, composeBin, filepath.Join(e.dir, "stack-"+name+".log")))
	return s
}

// runningContainers lists the names of running containers of a compose project, sorted.
func (e *env) runningContainers(project string) []string {
	e.t.Helper()
	out, err := e.podman("ps", "--filter", "label=io.podman.compose.project="+project, "--format", "{{.Names}}")
	if err != nil {
		e.t.Fatal(err)
	}
	names := strings.Fields(out)
	sort.Strings(names)
	return names
}

// runHelper runs the built backup-stack helper as the test's user (same env as units).
func (e *env) runHelper(timeout time.Duration, args ...string) (string, int, error) {
	e.t.Helper()
	bin := binary(e.t, "backup-stack")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.userEnv()
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	code := -1
	var ee *exec.ExitError
	if err == nil {
		code = 0
	} else if errors.As(err, &ee) {
		code = ee.ExitCode()
		err = nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("backup-stack %s: timed out after %s", strings.Join(args, " "), timeout)
	}
	return out.String(), code, err
}
