package e2e

// TestInstallAsRootlessUser: install.sh as the people it is for, then a real backup through
// the installed units, in a rootless user's own systemd --user manager with rootless podman.
//
//   - rootless: the env's unprivileged user runs `install.sh --rootless` (default prefix
//     ~/.local/bin, as the README says) against their own manager, with no generator in
//     any generator directory. The render path unit renders the units when the user writes
//     config.hcl and a stack file; `systemctl --user start backup@<stack>` then runs the
//     helper in their prefix.
//   - sudo: a non-root user with sudo installs root mode (--libexec and the generator
//     directory in a root-owned directory of the test's under /opt, never /usr/local); a
//     third user, who installed nothing, gets the installed generator link in their
//     manager's generator directory. The generator runs as that user, and their units run
//     the root-owned helper.
//
// Both check the same things about a REST-route backup of a two-container compose stack
// against the Duplicati simulator: the stack is down while the job runs, it is back
// afterwards, the unit succeeds, the simulator saw a successful Backup task, and the
// containers are the user's rootless ones.

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of this file's waits.
const (
	rluInstallTimeout = 10 * time.Minute // install.sh builds with an empty build cache
	rluBackupTimeout  = 2 * time.Minute  // one `systemctl --user start backup@<stack>`
	rluEventTimeout   = 45 * time.Second // the simulator shows the job started / finished
	rluRenderTimeout  = 60 * time.Second // the render path unit renders a stack file's units
)

func TestInstallAsRootlessUser(t *testing.T) {
	t.Parallel()
	installPrereqs(t)
	binary(t, "duplicati-sim")
	t.Run("rootless", func(t *testing.T) {
		t.Parallel()
		testInstallRootlessByUser(t)
	})
	t.Run("sudo", func(t *testing.T) {
		t.Parallel()
		sudoPrereqs(t)
		testInstallSudoForRootlessUser(t)
	})
}

// testInstallRootlessByUser: the env's user runs install.sh --rootless in their own
// manager and backs up a stack through the units it rendered.
func testInstallRootlessByUser(t *testing.T) {
	e := newEnvMode(t, modeRootless)
	// The rootless install uses no generator: the suite's goes.
	if err := os.Remove(filepath.Join(e.genDir, "backup-generator")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	e.daemonReload()
	name := "rlu-" + e.id
	if p := e.show("backup@"+name+".service", "LoadState"); p["LoadState"] != "not-found" {
		t.Fatalf("before install: backup@%s.service LoadState = %q, want not-found (the suite's generator is gone)", name, p["LoadState"])
	}

	src := filepath.Join(e.home, "src")
	goBin := userSource(t, e.user, src)
	prefix := filepath.Join(e.home, ".local", "bin") // install.sh's default
	helper := filepath.Join(prefix, "backup-stack")
	env := append(e.user.basicEnv(filepath.Dir(goBin)+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
		userGoEnv(e.user)...)
	env = append(env, "XDG_RUNTIME_DIR="+e.run, "XDG_CONFIG_HOME="+e.config)
	begin := time.Now()
	out, err := rluRun(e, rluInstallTimeout, env, "bash", filepath.Join(src, "install.sh"), "--rootless")
	installTook := time.Since(begin)
	if err != nil {
		t.Fatalf("install.sh --rootless as %s: %v\n%s", e.user.name, err, out)
	}
	t.Logf("install.sh --rootless as %s (%s):\n%s", e.user.name, installTook.Round(time.Millisecond), out)
	if !strings.Contains(out, "ran       systemctl --user daemon-reload") || !strings.Contains(out, "started   backup-generator-render.path") {
		t.Errorf("install.sh did not reach the user's manager (XDG_RUNTIME_DIR=%s):\n%s", e.run, out)
	}
	for _, name := range []string{"backup-generator", "backup-stack"} {
		p := filepath.Join(prefix, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatalf("after install: %v", err)
		}
		if st := fi.Sys().(*syscall.Stat_t); !fi.Mode().IsRegular() || int(st.Uid) != e.user.uid || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v uid %d, want a regular file of %s (uid %d), mode 0755", p, fi.Mode(), st.Uid, e.user.name, e.user.uid)
		}
	}
	if ents, err := os.ReadDir(e.genDir); err != nil || len(ents) != 0 {
		t.Errorf("install.sh --rootless wrote into the generator directory %s: %v %v", e.genDir, ents, err)
	}
	if p := e.show("backup-generator-render.path", "ActiveState"); p["ActiveState"] != "active" {
		t.Fatalf("backup-generator-render.path: %v", p)
	}

	// The user configures the REST route and a stack; the path unit renders its units.
	job := name + "-job"
	s := e.startSim("1=" + job + ":4s:Success")
	e.writeConfig(restConfig(s))
	st := e.composeStack(name)
	e.writeStack(name, rluStackFile(name, job))
	unitDir := filepath.Join(e.config, "systemd", "user")
	dropIn := filepath.Join(unitDir, "backup@"+name+".service.d", "50-stack.conf")
	renderStart := time.Now()
	e.waitFor("the render path unit to render "+name+"'s units", rluRenderTimeout, 100*time.Millisecond, func() bool {
		if _, err := os.Stat(dropIn); err != nil {
			return false
		}
		p := e.show("backup-generator-render.service", "ActiveState")
		return p["ActiveState"] == "inactive" || p["ActiveState"] == "failed"
	})
	t.Logf("timing: stack file written -> units rendered %s", time.Since(renderStart).Round(time.Millisecond))
	if fi, err := os.Stat(dropIn); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != e.user.uid {
		t.Errorf("%s: %v, want a file of %s's", dropIn, err, e.user.name)
	}
	e.daemonReload() // the stack unit composeStack wrote, whatever render reloaded already
	rluExpectHelper(t, e, name, helper)

	rluBackup(t, e, st, s, "rootless install", fmt.Sprintf("install %s", rluMs(installTook)))
}

// testInstallSudoForRootlessUser: a user with sudo installs root mode; another user's
// manager runs the installed generator, as that user, and its units back up a stack of
// that user's with the root-owned helper.
func testInstallSudoForRootlessUser(t *testing.T) {
	sys := systemDir(t, "rlu")
	libexec := filepath.Join(sys, "libexec", "backup-stack")
	genDir := filepath.Join(sys, "generators")
	link := filepath.Join(genDir, "backup-generator")
	u := newTestUser(t, "bsinst", true)
	src := filepath.Join(u.home, "src")
	goBin := userSource(t, u, src)
	env := append(u.basicEnv(filepath.Dir(goBin)+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), userGoEnv(u)...)
	env = append(env,
		"XDG_RUNTIME_DIR="+filepath.Join(u.home, "no-manager"),
		"BACKUP_STACK_GENERATOR_DIR="+genDir,
	)
	begin := time.Now()
	stdout, stderr, err := u.run(t, rluInstallTimeout, env, "bash", filepath.Join(src, "install.sh"), "--yes", "--libexec", libexec)
	installTook := time.Since(begin)
	if err != nil {
		t.Fatalf("install.sh --yes as %s: %v\n%s%s", u.name, err, stdout, stderr)
	}
	t.Logf("install.sh --yes --libexec %s as %s (%s):\n%s%s", libexec, u.name, installTook.Round(time.Millisecond), stdout, stderr)
	if target, err := os.Readlink(link); err != nil || target != filepath.Join(libexec, "backup-generator") {
		t.Fatalf("%s -> %q (%v), want -> %s", link, target, err, filepath.Join(libexec, "backup-generator"))
	}
	helper := filepath.Join(libexec, "backup-stack")

	// A third user, who installed nothing, with the installed generator in their manager's
	// generator directory (the namespace's /usr/local/lib/systemd/user-generators).
	e := newEnvMode(t, modeRootless)
	for _, f := range []string{filepath.Join(libexec, "backup-generator"), helper} {
		assertRootOwnedChain(t, f, 0o755)
		for _, home := range []string{"/home", "/root", u.home, e.home, os.Getenv("HOME")} {
			if home != "" && isUnder(f, home) {
				t.Errorf("%s is inside the home %s", f, home)
			}
		}
	}
	genLink := filepath.Join(e.genDir, "backup-generator")
	if err := os.Remove(genLink); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Symlink(link, genLink); err != nil {
		t.Fatal(err)
	}
	name := "rlus-" + e.id
	job := name + "-job"
	s := e.startSim("1=" + job + ":4s:Success")
	e.writeConfig(restConfig(s))
	st := e.composeStack(name)
	e.writeStack(name, rluStackFile(name, job))
	e.daemonReload()

	// What the generator wrote is the user's: it ran as them.
	genOut := filepath.Join(e.run, "systemd", "generator")
	var files []string
	err = filepath.WalkDir(genOut, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != e.user.uid {
			t.Errorf("generated %s belongs to uid %d, want %d (%s: the generator runs as the manager's user)", p, uid, e.user.uid, e.user.name)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(genOut, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the generator's output %s: %v", genOut, err)
	}
	want := filepath.Join("backup@"+name+".service.d", "50-stack.conf")
	found := false
	for _, f := range files {
		found = found || f == want
	}
	if !found {
		t.Fatalf("the generator's output %s lacks %s: %v; manager.log: %s", genOut, want, files, e.tail("manager.log"))
	}
	t.Logf("the installed generator wrote %d files into %s, all owned by %s (uid %d)", len(files), genOut, e.user.name, e.user.uid)
	rluExpectHelper(t, e, name, helper)

	rluBackup(t, e, st, s, "root-mode install by another user", fmt.Sprintf("install (as %s, through sudo) %s", u.name, rluMs(installTook)))
}

// rluRun runs argv as the env's user inside the test's namespace (e.command) with exactly
// env and no terminal, returning its combined output.
func rluRun(e *env, timeout time.Duration, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := e.command(ctx, argv...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s as %s: timed out after %s", strings.Join(argv, " "), e.userName(), timeout)
	}
	return out.String(), err
}

func rluStackFile(name, job string) string {
	return fmt.Sprintf(`stack %q {
  jobs          = [%q]
  stop_timeout  = "30s"
  start_timeout = "60s"
  wait_timeout  = "2m"
}
`, name, job)
}

var rluExecPath = regexp.MustCompile(`path=([^ ;]+)`)

// rluExpectHelper: the backup and hold units of the stack are loaded with the stack's
// drop-in, and every command they run (ExecStart, ExecStartPre, ExecStopPost) is helper.
func rluExpectHelper(t *testing.T, e *env, name, helper string) {
	t.Helper()
	for _, unit := range []string{"backup@" + name + ".service", "backup-hold@" + name + ".service"} {
		p := e.show(unit, "LoadState", "DropInPaths", "ExecStart", "ExecStartPre", "ExecStopPost")
		if p["LoadState"] != "loaded" || !strings.Contains(p["DropInPaths"], "50-stack.conf") {
			out, _ := e.systemctl("cat", unit)
			t.Fatalf("%s: %v; cat:\n%s\nmanager.log: %s", unit, p, out, e.tail("manager.log"))
		}
		n := 0
		for _, prop := range []string{"ExecStart", "ExecStartPre", "ExecStopPost"} {
			for _, m := range rluExecPath.FindAllStringSubmatch(p[prop], -1) {
				n++
				if m[1] != helper {
					t.Errorf("%s %s runs %s, want the installed helper %s: %s", unit, prop, m[1], helper, p[prop])
				}
			}
		}
		if unit == "backup@"+name+".service" && (!strings.Contains(p["ExecStart"], "path="+helper) || !strings.Contains(p["ExecStartPre"], "path="+helper)) {
			t.Errorf("%s: ExecStart %q, ExecStartPre %q, want both to run %s", unit, p["ExecStart"], p["ExecStartPre"], helper)
		}
		if n == 0 {
			t.Errorf("%s runs no command: %v", unit, p)
		}
		t.Logf("%s: its %d commands all run %s", unit, n, helper)
	}
	if out, err := e.systemctl("cat", "backup@"+name+".service"); err != nil || !strings.Contains(out, fmt.Sprintf("ExecStartPre=%q \"gate\" \"--\" %q", helper, name)) {
		t.Errorf("systemctl --user cat backup@%s.service (%v) lacks the gate of %s:\n%s", name, err, helper, out)
	}
}

// rluBackup starts the stack, runs `systemctl --user start backup@<stack>` and checks the
// truth: rootless containers, the stack down while the job runs, back after it, the unit
// succeeded, the simulator's task Success. It logs the figures.
func rluBackup(t *testing.T, e *env, st *stack, s *sim, what, installFigure string) {
	t.Helper()
	unit := "backup@" + st.Name + ".service"
	hold := "backup-hold@" + st.Name + ".service"
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s; units.log: %s", fmt.Sprintf(format, args...), oneLine(lastBytes([]byte(e.unitLog()), 3000)))
	}
	expectUp := func(when string) {
		t.Helper()
		if a := e.show(st.Unit, "ActiveState")["ActiveState"]; a != "active" {
			fail("%s: %s ActiveState = %q, want active", when, st.Unit, a)
		}
		if c := e.runningContainers(st.Project); len(c) != 2 {
			fail("%s: running containers of %s = %v, want 2", when, st.Project, c)
		}
		e.expectRootless(st.Project + "_app_1")
		e.expectRootless(st.Project + "_db_1")
	}
	e.basicAnchor(unit)
	if out, err := e.systemctl("start", st.Unit); err != nil {
		t.Fatalf("start %s: %v: %s; stack log: %s", st.Unit, err, oneLine(out), e.tail("stack-"+st.Name+".log"))
	}
	expectUp("after starting the stack")

	before := s.maxTask()
	type result struct {
		out        string
		err        error
		start, end time.Time
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), rluBackupTimeout)
		defer cancel()
		r := result{start: time.Now()}
		r.out, r.err = e.systemctlCtx(ctx, "start", unit)
		r.end = time.Now()
		done <- r
	}()
	event := func(what string, cond func(simEvent) bool) simEvent {
		t.Helper()
		var got simEvent
		e.waitFor(what, rluEventTimeout, 50*time.Millisecond, func() bool {
			for _, ev := range s.events() {
				if ev.TaskID > before && ev.BackupID == "1" && ev.Operation == "Backup" && cond(ev) {
					got = ev
					return true
				}
			}
			return false
		})
		return got
	}
	started := event("the sim job to start", func(ev simEvent) bool { return !ev.Started.IsZero() })
	// The job runs: the stack must be down right now.
	if a := e.show(st.Unit, "ActiveState")["ActiveState"]; a != "inactive" {
		fail("while the job runs (task %d), %s ActiveState = %q, want inactive", started.TaskID, st.Unit, a)
	}
	if c := e.runningContainers(st.Project); len(c) != 0 {
		fail("while the job runs (task %d), containers of %s still run: %v", started.TaskID, st.Project, c)
	}
	if a := e.show(hold, "ActiveState")["ActiveState"]; a != "active" {
		fail("while the job runs, %s ActiveState = %q, want active", hold, a)
	}
	finished := event("the sim job to finish", func(ev simEvent) bool {
		return ev.TaskID == started.TaskID && !ev.Finished.IsZero() && ev.Result != ""
	})
	var r result
	select {
	case r = <-done:
	case <-time.After(rluBackupTimeout + 10*time.Second):
		fail("systemctl --user start %s did not return within %s", unit, rluBackupTimeout+10*time.Second)
	}
	if r.err != nil {
		fail("systemctl --user start %s: %v: %s", unit, r.err, oneLine(r.out))
	}
	expectUp("after the backup")
	p := e.show(unit, "LoadState", "ActiveState", "InvocationID", "Result", "ExecMainCode", "ExecMainStatus")
	if p["LoadState"] != "loaded" || p["InvocationID"] == "" || p["ActiveState"] != "inactive" ||
		p["Result"] != "success" || p["ExecMainCode"] != "1" || p["ExecMainStatus"] != "0" {
		fail("after the backup: %s %v, want a finished run with Result=success, ExecMainCode=1 (exited), ExecMainStatus=0", unit, p)
	}
	if a := e.show(hold, "ActiveState")["ActiveState"]; a != "inactive" {
		fail("after the backup: %s ActiveState = %q, want inactive", hold, a)
	}
	if finished.Result != "Success" {
		t.Errorf("sim task %d result %q, want Success", finished.TaskID, finished.Result)
	}

	ts := e.showTimes(st.Unit, "ActiveExitTimestamp", "ActiveEnterTimestamp")
	stopAt, upAt := ts["ActiveExitTimestamp"], ts["ActiveEnterTimestamp"]
	if stopAt.IsZero() || upAt.IsZero() || !stopAt.Before(finished.Started) || !finished.Finished.Before(upAt) {
		fail("order wrong: stack stop %s, job %s–%s, stack up %s", stopAt.Format(time.StampMicro),
			finished.Started.Format(time.StampMicro), finished.Finished.Format(time.StampMicro), upAt.Format(time.StampMicro))
	}
	t.Logf("figures (%s, %s, REST route): %s, backup (systemctl --user start backup@) %s, downtime %s (stack stop began → active again), job %s (sim), overhead %s",
		what, e.user.name, installFigure, rluMs(r.end.Sub(r.start)), rluMs(upAt.Sub(stopAt)),
		rluMs(finished.Finished.Sub(finished.Started)), rluMs(upAt.Sub(stopAt)-finished.Finished.Sub(finished.Started)))
}

func rluMs(d time.Duration) string { return d.Round(time.Millisecond).String() }
