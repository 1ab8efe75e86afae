package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// install.sh tests: (a) install, reinstall and uninstall in a sandbox HOME and prefix, with
// the root-owned programs (--libexec) and the generator directory
// (BACKUP_STACK_GENERATOR_DIR) in a root-owned directory of the test's under /opt,
// comparing full file listings; (b) the rootless mode under a real systemd --user manager:
// the path unit re-renders when stack files come and go, and --uninstall leaves nothing
// behind. install_sudo_test.go: root mode run by a non-root user through sudo, refusals,
// a planted manifest, and the generator in the manager of a user without configuration.

// installSource copies the repository's source (no .git, no test binaries) into a temp dir
// once per test, so that both installs of a test build the same code even while the
// working tree changes.
func installSource(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "src")
	copySource(t, dst)
	return dst
}

// copySource copies the repository's source (as installSource) into dst.
func copySource(t *testing.T, dst string) {
	t.Helper()
	err := filepath.WalkDir(suite.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(suite.root, p)
		if d.IsDir() {
			if rel == ".git" || rel == "demo" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(rel, ".test") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(p, filepath.Join(dst, rel), info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying the source: %v", err)
	}
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// goEnv returns the Go settings install.sh's `go build` needs in a sandbox HOME: the real
// build and module caches (so nothing is downloaded or written into the sandbox).
func goEnv(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GONOSUMDB", "GOPRIVATE"} {
		b, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return append(out, "GOTOOLCHAIN=local")
}

// sandboxHome makes a HOME with a file of the user's and Go telemetry off (the go command
// otherwise writes its counters below $XDG_CONFIG_HOME/go, which is not install.sh's doing).
func sandboxHome(t *testing.T, home, config string) {
	t.Helper()
	for p, c := range map[string]string{
		filepath.Join(home, ".bashrc"):                   "# the user's\n",
		filepath.Join(config, "go", "telemetry", "mode"): "off\n",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runInstall runs src/install.sh with exactly env (plus PATH when missing).
func runInstall(t *testing.T, src string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(src, "install.sh")}, args...)...)
	cmd.Env = env
	cmd.Stdin = nil // not a terminal: install.sh must not ask
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("timing: install.sh %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return string(out), err
}

// listing describes every entry below the roots: path -> "d", "f <sha256> <perm>",
// "l <target>"; with mtimes, files and directories also carry their modification time.
func listing(t *testing.T, mtimes bool, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && p == root {
					return nil
				}
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			var v string
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				v = "l " + target
			case d.IsDir():
				v = "d"
			default:
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				v = fmt.Sprintf("f %s %o", hex.EncodeToString(sum[:8]), info.Mode().Perm())
			}
			if mtimes && d.Type()&fs.ModeSymlink == 0 {
				v += " " + info.ModTime().Format(time.RFC3339Nano)
			}
			out[p] = v
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// diffListing returns the differences of two listings, one per line ("" when equal).
func diffListing(before, after map[string]string) string {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		x, inB := before[k]
		y, inA := after[k]
		switch {
		case !inB:
			fmt.Fprintf(&b, "  + %s (%s)\n", k, y)
		case !inA:
			fmt.Fprintf(&b, "  - %s (%s)\n", k, x)
		case x != y:
			fmt.Fprintf(&b, "  ~ %s (%s -> %s)\n", k, x, y)
		}
	}
	return b.String()
}

func installPrereqs(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "not root (root mode installs root-owned files)")
	}
	for _, tool := range []string{"bash", "go", "sha256sum", "cmp", "realpath"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, "no "+tool)
		}
	}
	missingPrereqs(t, "install.sh test", missing, "")
}

// TestInstallUninstall: root mode (as root) with --libexec and the generator directory in
// a root-owned directory of the test's. Install, install again (nothing changes, not even
// an mtime), the generator reached through its symlink finds the root-owned backup-stack
// next to its real path, and --uninstall leaves exactly the files that were there before
// plus the user's own stack file.
func TestInstallUninstall(t *testing.T) {
	t.Parallel()
	installPrereqs(t)
	src := installSource(t)
	s := t.TempDir()
	sys := systemDir(t, "uninst")
	home := filepath.Join(s, "home")
	config := filepath.Join(home, ".config")
	prefix := filepath.Join(s, "opt", "bs", "bin")
	libexec := filepath.Join(sys, "libexec", "backup-stack")
	genDir := filepath.Join(sys, "lib", "systemd", "user-generators")
	sandboxHome(t, home, config)
	env := append(goEnv(t),
		"PATH="+os.Getenv("PATH"),
		"HOME="+home,
		"USER=tester",
		"LANG=C.UTF-8",
		"XDG_RUNTIME_DIR="+filepath.Join(s, "run"), // no manager there
		"BACKUP_STACK_GENERATOR_DIR="+genDir,
	)

	before := listing(t, false, s, sys)
	out, err := runInstall(t, src, env, "--prefix", prefix, "--libexec", libexec)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	t.Logf("install.sh output:\n%s", out)
	link := filepath.Join(genDir, "backup-generator")
	if target, err := os.Readlink(link); err != nil || target != filepath.Join(libexec, "backup-generator") {
		t.Fatalf("generator link %s -> %q (%v), want -> %s", link, target, err, filepath.Join(libexec, "backup-generator"))
	}
	for _, name := range []string{"backup-generator", "backup-stack"} {
		assertRootOwnedChain(t, filepath.Join(libexec, name), 0o755)
		// The user's convenience links point at the root-owned programs.
		if target, err := os.Readlink(filepath.Join(prefix, name)); err != nil || target != filepath.Join(libexec, name) {
			t.Errorf("%s -> %q (%v), want a symlink to %s", filepath.Join(prefix, name), target, err, filepath.Join(libexec, name))
		}
	}
	for _, f := range []string{filepath.Join(libexec, ".backup-stack-install"),
		filepath.Join(config, "backup-stack", "stacks", "_template.hcl"),
		filepath.Join(home, ".local", "share", "backup-stack", "install-manifest")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	if !strings.Contains(out, "backup-stack validate") || !strings.Contains(out, "systemctl --user start backup@<stack>") {
		t.Errorf("install.sh does not say what to type next:\n%s", out)
	}

	// Twice: nothing changes.
	first := listing(t, true, s, sys)
	out, err = runInstall(t, src, env, "--prefix", prefix, "--libexec", libexec)
	if err != nil {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	if d := diffListing(first, listing(t, true, s, sys)); d != "" {
		t.Errorf("second install changed files:\n%s\noutput:\n%s", d, out)
	}
	if !strings.Contains(out, "nothing changed") {
		t.Errorf("second install does not say nothing changed:\n%s", out)
	}

	// The generator, run through its symlink as systemd runs it, finds the helper next to
	// its resolved path: the root-owned one.
	stackFile := filepath.Join(config, "backup-stack", "stacks", "mine.hcl")
	if err := os.WriteFile(stackFile, []byte("stack \"mine\" {\n  jobs = [\"mine\"]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "--dry-run")
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	gen, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s --dry-run: %v\n%s", link, err, gen)
	}
	if want := fmt.Sprintf("ExecStartPre=%q \"gate\" \"--\" \"mine\"", filepath.Join(libexec, "backup-stack")); !strings.Contains(string(gen), want) {
		t.Errorf("generator output lacks %q:\n%s", want, gen)
	}

	out, err = runInstall(t, src, env, "--uninstall")
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	t.Logf("uninstall output:\n%s", out)
	after := listing(t, false, s, sys)
	// The user's stack file and the stacks directory holding it stay; nothing else may.
	if b, err := os.ReadFile(stackFile); err != nil || !strings.Contains(string(b), "mine") {
		t.Errorf("the user's stack file is gone or changed: %v", err)
	}
	userOwn := filepath.Join(config, "backup-stack")
	for p := range after {
		if p == userOwn || strings.HasPrefix(p, userOwn+"/") {
			delete(after, p)
		}
	}
	if d := diffListing(before, after); d != "" {
		t.Errorf("uninstall left differences (besides the user's stack file):\n%s", d)
	}
	if _, err := os.Stat(filepath.Join(config, "backup-stack", "stacks", "_template.hcl")); err == nil {
		t.Error("_template.hcl left behind")
	}

	// Without a stack file of the user's: install + uninstall leaves exactly what was there.
	if err := os.RemoveAll(userOwn); err != nil {
		t.Fatal(err)
	}
	before = listing(t, false, s, sys)
	if out, err := runInstall(t, src, env, "--prefix", prefix, "--libexec", libexec); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if out, err := runInstall(t, src, env, "--uninstall"); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if d := diffListing(before, listing(t, false, s, sys)); d != "" {
		t.Errorf("install + uninstall left differences:\n%s", d)
	}
	// Uninstalling again is a no-op (--libexec: root without a manifest would otherwise
	// look at the default /usr/local/libexec/backup-stack, which is not this test's).
	if out, err := runInstall(t, src, env, "--uninstall", "--libexec", libexec); err != nil || !strings.Contains(out, "Nothing to uninstall") {
		t.Errorf("second uninstall: %v\n%s", err, out)
	}
}

// TestInstallRefusesForeignFiles: install.sh never overwrites a file it did not install.
func TestInstallRefusesForeignFiles(t *testing.T) {
	t.Parallel()
	installPrereqs(t)
	src := installSource(t)
	s := t.TempDir()
	sys := systemDir(t, "foreign")
	home := filepath.Join(s, "home")
	prefix := filepath.Join(s, "bin")
	libexec := filepath.Join(sys, "libexec")
	genDir := filepath.Join(sys, "gen")
	sandboxHome(t, home, filepath.Join(home, ".config"))
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(prefix, "backup-stack")
	if err := os.WriteFile(mine, []byte("#!/bin/sh\necho mine\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(goEnv(t), "PATH="+os.Getenv("PATH"), "HOME="+home, "USER=tester",
		"XDG_RUNTIME_DIR="+filepath.Join(s, "run"), "BACKUP_STACK_GENERATOR_DIR="+genDir)
	out, err := runInstall(t, src, env, "--prefix", prefix, "--libexec", libexec)
	if err == nil || !strings.Contains(out, "was not installed by install.sh") {
		t.Fatalf("install over a foreign %s: %v\n%s", mine, err, out)
	}
	if b, _ := os.ReadFile(mine); string(b) != "#!/bin/sh\necho mine\n" {
		t.Errorf("foreign file changed: %q", b)
	}
	// What it did before refusing is in the manifest, and --uninstall removes it.
	if out, err := runInstall(t, src, env, "--uninstall"); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if _, err := os.Lstat(filepath.Join(prefix, "backup-generator")); err == nil {
		t.Error("backup-generator left behind")
	}
	if _, err := os.Lstat(filepath.Join(genDir, "backup-generator")); err == nil {
		t.Error("the generator link was left behind")
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the foreign file was removed: %v", err)
	}

	// Nor a program in the libexec directory that is not in install.sh's root-owned record.
	if err := os.Remove(mine); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(libexec, 0o755); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(libexec, "backup-stack")
	if err := os.WriteFile(theirs, []byte("#!/bin/sh\necho theirs\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := runInstall(t, src, env, "--prefix", prefix, "--libexec", libexec); err == nil || !strings.Contains(out, theirs+" exists and was not installed by install.sh") {
		t.Errorf("install over a foreign %s: %v\n%s", theirs, err, out)
	}
	if b, _ := os.ReadFile(theirs); string(b) != "#!/bin/sh\necho theirs\n" {
		t.Errorf("foreign %s changed: %q", theirs, b)
	}
	if err := os.Remove(theirs); err != nil {
		t.Fatal(err)
	}
	// Nor a generator link that is not its own (here: to another root-owned program).
	other := filepath.Join(sys, "other", "backup-generator")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(genDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(genDir, "backup-generator")); err != nil {
		t.Fatal(err)
	}
	if out, err := runInstall(t, src, env, "--prefix", prefix, "--libexec", libexec); err == nil || !strings.Contains(out, "is not install.sh's link to "+libexec+"/backup-generator") {
		t.Errorf("install with a foreign generator link: %v\n%s", err, out)
	}
	if target, _ := os.Readlink(filepath.Join(genDir, "backup-generator")); target != other {
		t.Errorf("the foreign generator link was changed: -> %q", target)
	}
	// Uninstall (as root, --libexec given) leaves the foreign link alone.
	if out, err := runInstall(t, src, env, "--uninstall", "--libexec", libexec); err != nil {
		t.Errorf("uninstall: %v\n%s", err, out)
	}
	if target, _ := os.Readlink(filepath.Join(genDir, "backup-generator")); target != other {
		t.Errorf("uninstall changed the foreign generator link: -> %q", target)
	}
}

// TestInstallRootless: install.sh --rootless under a real user manager (no generator in any
// generator directory). A stack file appearing makes backup-generator-render.path render
// its units into ~/.config/systemd/user; removing it removes them (manifest); --uninstall
// leaves the home and prefix as they were.
func TestInstallRootless(t *testing.T) {
	t.Parallel()
	installPrereqs(t)
	e := newEnv(t)
	src := installSource(t)
	// This test is about the rootless path: no generator at all.
	if err := os.Remove(filepath.Join(e.genDir, "backup-generator")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	e.daemonReload()
	if p := e.show("backup@alpha.service", "LoadState"); p["LoadState"] != "not-found" {
		t.Fatalf("before install: backup@alpha.service LoadState = %q, want not-found", p["LoadState"])
	}
	sandboxHome(t, e.home, e.config)
	prefix := filepath.Join(e.dir, "prefix", "bin")
	unitDir := filepath.Join(e.config, "systemd", "user")
	stacks := filepath.Join(e.configDir(), "stacks")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	env := append(goEnv(t),
		"PATH="+e.path+":"+filepath.Dir(goBin),
		"HOME="+e.home,
		"USER=root",
		"LANG=C.UTF-8",
		"XDG_CONFIG_HOME="+e.config,
		"XDG_RUNTIME_DIR="+e.run,
		"BACKUP_STACK_GENERATOR_DIR="+filepath.Join(e.dir, "never-used-generators"),
	)
	before := listing(t, false, e.home, filepath.Join(e.dir, "prefix"))

	out, err := runInstall(t, src, env, "--rootless", "--prefix", prefix)
	if err != nil {
		t.Fatalf("install --rootless: %v\n%s", err, out)
	}
	t.Logf("install.sh --rootless output:\n%s", out)
	if p := e.show("backup-generator-render.path", "ActiveState", "LoadState"); p["ActiveState"] != "active" {
		t.Fatalf("backup-generator-render.path: %v\n%s", p, out)
	}
	// Idempotent under a manager too.
	first := listing(t, true, e.home, filepath.Join(e.dir, "prefix"))
	if out, err := runInstall(t, src, env, "--rootless", "--prefix", prefix); err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("second install --rootless: %v\n%s", err, out)
	}
	if d := diffListing(first, listing(t, true, e.home, filepath.Join(e.dir, "prefix"))); d != "" {
		t.Errorf("second install --rootless changed files:\n%s", d)
	}

	// A stack file appears: the path unit renders its units.
	dropIn := func(stack string) string {
		return filepath.Join(unitDir, "backup@"+stack+".service.d", "50-stack.conf")
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	start := time.Now()
	e.writeStack("alpha", "stack \"alpha\" {\n  jobs     = [\"alpha\"]\n  schedule = \"*-*-* 03:30:00\"\n}\n")
	e.writeStack("beta", "stack \"beta\" {\n  jobs = [\"beta\"]\n}\n")
	e.waitFor("the path unit to render alpha and beta", 30*time.Second, 100*time.Millisecond, func() bool {
		return exists(dropIn("alpha")) && exists(dropIn("beta"))
	})
	t.Logf("timing: stack files written -> units rendered %s", time.Since(start).Round(time.Millisecond))
	e.daemonReload()
	for _, st := range []string{"alpha", "beta"} {
		p := e.show("backup@"+st+".service", "LoadState", "DropInPaths")
		if p["LoadState"] != "loaded" || !strings.Contains(p["DropInPaths"], dropIn(st)) {
			t.Errorf("backup@%s.service: %v", st, p)
		}
	}
	e.waitFor("backup@alpha.timer in list-timers", 30*time.Second, 200*time.Millisecond, func() bool {
		out, _ := e.systemctl("list-timers", "backup@*")
		return strings.Contains(out, "backup@alpha.timer")
	})
	if out, _ := e.systemctl("list-timers", "--all", "backup@*"); strings.Contains(out, "backup@beta.timer") {
		t.Errorf("beta has no schedule but list-timers shows its timer:\n%s", out)
	}
	if m, err := os.ReadFile(filepath.Join(unitDir, ".backup-generator-manifest")); err != nil {
		t.Errorf("no manifest in %s: %v", unitDir, err)
	} else {
		t.Logf("manifest:\n%s", m)
	}

	// alpha's stack file goes: its units go (stale removal by manifest), beta's stay.
	if err := os.Remove(filepath.Join(stacks, "alpha.hcl")); err != nil {
		t.Fatal(err)
	}
	e.waitFor("alpha's units to be removed", 30*time.Second, 100*time.Millisecond, func() bool {
		return !exists(dropIn("alpha")) && !exists(filepath.Join(unitDir, "timers.target.wants", "backup@alpha.timer"))
	})
	if !exists(dropIn("beta")) {
		t.Fatal("beta's drop-in was removed with alpha's")
	}
	e.daemonReload()
	if p := e.show("backup@alpha.service", "DropInPaths"); strings.Contains(p["DropInPaths"], "50-stack.conf") {
		t.Errorf("backup@alpha.service still has its drop-in: %v", p)
	}
	e.waitFor("backup@alpha.timer gone from list-timers", 30*time.Second, 200*time.Millisecond, func() bool {
		out, _ := e.systemctl("list-timers", "backup@*")
		return !strings.Contains(out, "backup@alpha.timer")
	})
	// The harness's own drop-ins in the same directory were not touched.
	if !exists(filepath.Join(unitDir, "backup@.service.d", "90-e2e-log.conf")) {
		t.Error("the harness's backup@.service.d/90-e2e-log.conf was removed")
	}

	// The last stack goes: its units go; the templates and the recovery unit
	// stay (a backup running while its last stack file is deleted keeps its
	// run and finish in the template, and recovery runs at the next start).
	if err := os.Remove(filepath.Join(stacks, "beta.hcl")); err != nil {
		t.Fatal(err)
	}
	e.waitFor("beta's units to be removed", 30*time.Second, 100*time.Millisecond, func() bool {
		return !exists(dropIn("beta"))
	})
	e.daemonReload()
	if p := e.show("backup@beta.service", "DropInPaths"); strings.Contains(p["DropInPaths"], "50-stack.conf") {
		t.Errorf("after the last stack file went: backup@beta.service still has its drop-in: %v", p)
	}
	for _, f := range []string{"backup@.service", "backup-recover.service", ".backup-generator-manifest"} {
		if !exists(filepath.Join(unitDir, f)) {
			t.Errorf("after the last stack file went: %s is gone", f)
		}
	}

	// A stack again, then uninstall: everything goes, the stack file stays.
	e.writeStack("gamma", "stack \"gamma\" {\n  jobs = [\"gamma\"]\n}\n")
	e.waitFor("the path unit to render gamma", 30*time.Second, 100*time.Millisecond, func() bool { return exists(dropIn("gamma")) })
	out, err = runInstall(t, src, env, "--uninstall")
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	t.Logf("uninstall output:\n%s", out)
	if p := e.show("backup-generator-render.path", "LoadState"); p["LoadState"] != "not-found" {
		t.Errorf("after uninstall backup-generator-render.path: %v", p)
	}
	if p := e.show("backup@gamma.service", "LoadState"); p["LoadState"] != "not-found" {
		t.Errorf("after uninstall backup@gamma.service: %v", p)
	}
	after := listing(t, false, e.home, filepath.Join(e.dir, "prefix"))
	gamma := filepath.Join(stacks, "gamma.hcl")
	if _, ok := after[gamma]; !ok {
		t.Error("uninstall removed the user's stack file")
	}
	delete(after, gamma)
	// The manager keeps the stamps of Persistent= timers in ~/.local/share/systemd/timers;
	// uninstall removes our timers' stamps, the directories are systemd's.
	systemdData := filepath.Join(e.home, ".local", "share", "systemd")
	for p, v := range after {
		_, wasThere := before[p]
		if wasThere || v != "d" {
			continue
		}
		if p == systemdData || strings.HasPrefix(p, systemdData+"/") || strings.HasPrefix(systemdData, p+"/") {
			delete(after, p)
		}
	}
	if d := diffListing(before, after); d != "" {
		t.Errorf("uninstall --rootless left differences (besides the user's stack file):\n%s", d)
	}
}
