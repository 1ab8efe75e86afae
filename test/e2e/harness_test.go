package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
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

	user      *osUser   // rootless mode: the unprivileged user everything runs as; nil: root mode
	holder    *exec.Cmd // keeps the test's mount namespace; the manager and the user's commands enter it
	holderPID int
	cgroups   []string // the manager's own cgroups (one per hierarchy systemd uses)

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

// newEnv is newEnvMode(t, modeRoot): root's manager and root podman.
func newEnv(t *testing.T) *env { return newEnvMode(t, modeRoot) }

// newEnvMode checks the prerequisites (skip, or fail under BACKUP_STACK_E2E=require), then
// starts a systemd --user manager for this test, in its own mount namespace and cgroups: as
// root (modeRoot), or as a new unprivileged user with rootless podman (modeRootless; see
// harness_rootless_test.go). Everything is undone at t.Cleanup.
func newEnvMode(t *testing.T, m mode) *env {
	t.Helper()
	checkPrereqs(t)
	if m == modeRootless {
		rootlessPrereqs(t)
	}
	suite.netnsOnce.Do(func() { suite.netnsErr = sharedNetns() })
	if suite.netnsErr != nil {
		t.Fatalf("making /run/netns a shared mount: %v", suite.netnsErr)
	}
	if err := ensureMiniImage(); err != nil {
		t.Fatalf("base image: %v", err)
	}
	e := &env{t: t, id: nextTestID()}
	if m == modeRootless {
		// The user goes last (its cleanup is registered first): after the manager and every
		// process of the user are gone.
		e.user = newTestUser(t, "bsrl", false)
		e.dir = filepath.Join(e.user.home, "e2e")
		e.home = e.user.home
	} else {
		e.dir = t.TempDir()
		e.home = filepath.Join(e.dir, "home")
	}
	// Registered after TempDir, so it runs before the dir is removed.
	t.Cleanup(e.cleanup)
	e.config = filepath.Join(e.home, ".config")
	e.run = filepath.Join(e.dir, "run")
	e.genDir = filepath.Join(t.TempDir(), "generators") // root's: the user's manager only reads it
	if err := os.MkdirAll(e.genDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{e.dir, e.home, e.config,
		filepath.Join(e.config, "systemd", "user"), filepath.Join(e.config, "backup-stack", "stacks")} {
		e.mkdirAll(d)
	}
	e.mkdirAll(e.run)
	if err := os.Chmod(e.run, 0o700); err != nil {
		t.Fatal(err)
	}
	if gen, ok := suite.built["backup-generator"]; ok {
		if err := os.Symlink(gen, filepath.Join(e.genDir, "backup-generator")); err != nil {
			t.Fatal(err)
		}
	}
	e.path = suite.bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	e.cgroups = e.makeCgroups()
	e.startNamespace()
	if e.user != nil {
		e.importUserImages()
	}
	e.writeLogDropIns()
	e.startManager()
	return e
}

// nextTestID returns a new test id (tests run in parallel).
func nextTestID() string {
	suite.seqMu.Lock()
	defer suite.seqMu.Unlock()
	suite.testSeq++
	return fmt.Sprintf("%st%d", suite.runID, suite.testSeq)
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
	missingPrereqs(t, "e2e", missing, "")
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

// holderScript runs inside `unshare --mount --propagation unchanged` and keeps the test's
// mount namespace: its own /run/systemd (no system manager), the generator directory
// bind-mounted over /usr/local/lib/systemd/user-generators and, for a rootless user, a tun
// node of its own over /dev/net/tun (the host's is 0600 root; slirp4netns needs one it can
// open, and the host's node is never changed). $1 = generator dir, $2 = "tun" or "".
const holderScript = `set -e
mount --make-private /
mkdir -p /run/systemd
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system
mkdir -p /usr/local/lib/systemd/user-generators
mount --bind "$1" /usr/local/lib/systemd/user-generators
if [ "$2" = tun ]; then
	mknod -m 0666 /run/systemd/e2e-tun c 10 200
	mount --bind /run/systemd/e2e-tun /dev/net/tun
fi
echo ready
exec sleep infinity
`

// managerScript runs in the holder's namespace (nsenter): it moves itself into the test's
// cgroups, as systemd does for user@UID.service, then becomes the manager, dropped to the
// user first in rootless mode. $1 = uid or "", $2 = gid, the rest = cgroup directories.
const managerScript = `set -e
uid=$1 gid=$2
shift 2
for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
if [ -n "$uid" ]; then
	exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- /lib/systemd/systemd --user --log-target=console
fi
exec /lib/systemd/systemd --user --log-target=console
`

// startNamespace starts the holder process and waits until its mounts are made.
func (e *env) startNamespace() {
	t := e.t
	t.Helper()
	tun := ""
	if e.user != nil {
		tun = "tun"
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "unchanged", "bash", "-c", holderScript, "e2e-namespace", e.genDir, tun)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the namespace holder: %v", err)
	}
	e.holder = cmd
	e.holderPID = cmd.Process.Pid
	ready := make(chan string, 1)
	go func() {
		b := make([]byte, 6)
		n, _ := io.ReadFull(out, b)
		ready <- string(b[:n])
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("namespace holder: %q; stderr: %s", line, oneLine(stderr.String()))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("namespace holder not ready after 30s; stderr: %s", oneLine(stderr.String()))
	}
}

// managerEnv is the whole environment of the manager; units inherit it.
func (e *env) managerEnv() []string {
	return []string{
		"PATH=" + e.path,
		"HOME=" + e.home,
		"USER=" + e.userName(),
		"LOGNAME=" + e.userName(),
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
	uid, gid := "", ""
	if e.user != nil {
		uid, gid = strconv.Itoa(e.user.uid), strconv.Itoa(e.user.gid)
	}
	args := append([]string{"-t", strconv.Itoa(e.holderPID), "-m", "--", "bash", "-c", managerScript, "e2e-manager", uid, gid}, e.cgroups...)
	cmd := exec.Command("nsenter", args...)
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
	// nsenter execs bash execs (setpriv execs) systemd: this PID is the manager's.
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

// cleanup runs at t.Cleanup: manager, simulators, containers, networks; in rootless mode
// every process of the user; then the namespace holder and the cgroups.
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
	if out, err := e.podman("ps", "-aq", "--filter", "label="+labelTestKey+"="+e.id); err == nil {
		ids = append(ids, strings.Fields(out)...)
	}
	for _, p := range e.projects {
		if out, err := e.podman("ps", "-aq", "--filter", "label=io.podman.compose.project="+p); err == nil {
			ids = append(ids, strings.Fields(out)...)
		}
	}
	ids = append(ids, e.containers...)
	if len(ids) > 0 {
		// A stop first: `podman rm -f` of a container left "stopping" (a stop cut short, as
		// the manager's own stop of a stack unit with a short TimeoutStopSec= leaves it)
		// drops podman's record and leaves its process running, measured with podman 4.3;
		// `podman stop -t 0` kills it. Errors here are rm's to report.
		ids = dedupe(ids)
		procs := e.containerProcs(ids)
		e.podman(append([]string{"stop", "-i", "-t", "0"}, ids...)...)
		args := append([]string{"rm", "-f", "-i", "-t", "0"}, ids...)
		if _, err := e.podman(args...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		// What podman says is gone must be gone: a main process still in its container's
		// cgroup is reported (and killed).
		for pid, id := range procs {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil && strings.Contains(string(b), "libpod-"+id) {
				t.Errorf("cleanup: container %.12s was removed, its main process %d still ran; killed it", id, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, p := range e.projects {
		e.podman("network", "rm", "-f", p+"_default")
	}
	if out, err := e.podman("network", "ls", "-q", "--filter", "label="+labelTestKey+"="+e.id); err == nil {
		for _, n := range strings.Fields(out) {
			e.podman("network", "rm", "-f", n)
		}
	}
	if e.user != nil {
		// Podman's pause process, slirp4netns, conmon: all the user's, all started here.
		if err := killUserProcesses(e.user); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	killCgroups(e.cgroups)
	if e.holder != nil {
		_ = e.holder.Process.Kill()
		_ = e.holder.Wait()
	}
	for _, cg := range e.cgroups {
		removeCgroup(t, cg)
	}
	if t.Failed() {
		for _, f := range []string{"manager.log", "units.log"} {
			if b, err := os.ReadFile(filepath.Join(e.dir, f)); err == nil && len(b) > 0 {
				t.Logf("---- %s ----\n%s", f, lastBytes(b, 8000))
			}
		}
	}
}

// containerProcs maps the host pid of each running container's main process to the
// container's full ID (those podman can still inspect).
func (e *env) containerProcs(ids []string) map[int]string {
	out, _ := e.podman(append([]string{"inspect", "--format", "{{.State.Pid}} {{.Id}}"}, ids...)...)
	procs := map[int]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil && pid > 0 {
			procs[pid] = f[1]
		}
	}
	return procs
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
	// The end is what tells: keep it (oneLine keeps the start of what it is given).
	s := strings.ReplaceAll(strings.TrimSpace(lastBytes(b, 1500)), "\n", " | ")
	if len(s) > 900 {
		s = "..." + s[len(s)-900:]
	}
	return s
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
	e.writeFile(filepath.Join(e.config, "systemd", "user", name), content, 0o644)
}

// unitLog returns what backup@ and backup-hold@ units wrote so far.
func (e *env) unitLog() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "units.log"))
	return string(b)
}

// writeStack writes $XDG_CONFIG_HOME/backup-stack/stacks/<name>.hcl.
func (e *env) writeStack(name, hcl string) {
	e.t.Helper()
	e.writeFile(filepath.Join(e.config, "backup-stack", "stacks", name+".hcl"), hcl, 0o644)
}

// writeConfig writes $XDG_CONFIG_HOME/backup-stack/config.hcl.
func (e *env) writeConfig(hcl string) {
	e.t.Helper()
	e.writeFile(filepath.Join(e.config, "backup-stack", "config.hcl"), hcl, 0o644)
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
	cmd := e.command(ctx, append([]string{"systemctl", "--user", "--no-pager"}, args...)...)
	cmd.Env = []string{"XDG_RUNTIME_DIR=" + e.run, "PATH=" + e.path, "LANG=C.UTF-8", "SYSTEMD_COLORS=0", "HOME=" + e.home}
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

// podman runs podman as the test's user with the suite's containers.conf: root podman from
// the host side, or the user's rootless podman inside the test's namespace.
func (e *env) podman(args ...string) (string, error) { return e.podmanTimeout(podmanTimeout, args...) }

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
	e.mkdirAll(s.Dir)
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
	e.writeFile(filepath.Join(s.Dir, "compose.yaml"), compose, 0o644)
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
	cmd := e.command(ctx, append([]string{bin}, args...)...)
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
