package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Root mode as systemd sees it: the generator runs in EVERY user's manager, root's included,
// so what the generator directory links to must be a root-owned file no user can replace,
// and --uninstall, which runs root commands, must never take paths from the manifest (a
// file its user can write). These tests install as a dedicated non-root user through sudo,
// plant lines in that user's manifest, and run the installed generator in the manager of
// another user who has no configuration at all.
//
// Everything they create outside t.TempDir() is named with a random suffix and removed by
// that name: the users bsinst<hex> and bsoth<hex> (userdel --remove, homes in /tmp), the
// sudoers file /etc/sudoers.d/bsinst<hex>, the root-owned /opt/backup-stack-e2e-*
// directories, the canaries /etc/backup-stack-e2e-canary-<hex>*, and the cgroups
// backup-stack-e2e-<user> of the user manager. The real /usr/local is never written: the
// programs go to --libexec in /opt, the link to BACKUP_STACK_GENERATOR_DIR in /opt, and
// the user manager sees its generator directory through a tmpfs over /usr/local/lib in its
// own mount namespace.

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// systemDir makes a root-owned 0755 directory /opt/backup-stack-e2e-<what>-<random> (a
// place root mode accepts, unlike /tmp), removed at cleanup.
func systemDir(t *testing.T, what string) string {
	t.Helper()
	if fi, err := os.Stat("/opt"); err != nil || !fi.IsDir() {
		t.Fatalf("no /opt for the test's root-owned directories: %v", err)
	}
	d, err := os.MkdirTemp("/opt", "backup-stack-e2e-"+what+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(d); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// assertRootOwnedChain: path is a regular file root:root with mode perm, and every
// directory from it up to / is owned by root and writable by nobody else.
func assertRootOwnedChain(t *testing.T, path string, perm fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || st.Uid != 0 || st.Gid != 0 || fi.Mode().Perm() != perm {
		t.Errorf("%s: %v uid %d gid %d, want a regular file root:root %o", path, fi.Mode(), st.Uid, st.Gid, perm)
	}
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		if err != nil {
			t.Errorf("%v", err)
			return
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s (above %s): %v uid %d, want a directory owned by root, writable only by root", d, path, fi.Mode(), st.Uid)
		}
		if d == "/" {
			return
		}
	}
}

func isUnder(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// osUser is a throwaway account made by newTestUser.
type osUser struct {
	name, home string
	uid, gid   int
}

// newTestUser creates the user <prefix><random> with a home in /tmp (and, with sudo,
// passwordless sudo through /etc/sudoers.d/<name>); both go at cleanup.
func newTestUser(t *testing.T, prefix string, sudo bool) *osUser {
	t.Helper()
	name := prefix + randHex(t, 4)
	home := filepath.Join("/tmp", name)
	if out, err := exec.Command("useradd", "--create-home", "--home-dir", home, "--shell", "/bin/bash", "--user-group", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		out, err := exec.Command("userdel", "--remove", name).CombinedOutput()
		if err != nil {
			t.Errorf("cleanup: userdel --remove %s: %v: %s", name, err, out)
		}
		if _, err := os.Lstat(home); err == nil {
			os.RemoveAll(home)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	ou := &osUser{name: name, home: home}
	ou.uid, _ = strconv.Atoi(u.Uid)
	ou.gid, _ = strconv.Atoi(u.Gid)
	if sudo {
		f := filepath.Join("/etc/sudoers.d", name)
		if err := os.WriteFile(f, []byte(name+" ALL=(root) NOPASSWD: ALL\n"), 0o440); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := os.Remove(f); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		if out, err := exec.Command("visudo", "-c", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("visudo -c -f %s: %v: %s", f, err, out)
		}
	}
	// Go telemetry off (the go command would write its counters into the home).
	ou.writeFile(t, filepath.Join(home, ".config", "go", "telemetry", "mode"), "off\n", 0o644)
	return ou
}

// writeFile writes a file of the user's (creating its missing parents as theirs).
func (u *osUser) writeFile(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	u.mkdirAll(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
}

func (u *osUser) mkdirAll(t *testing.T, d string) {
	t.Helper()
	var missing []string
	for p := d; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(missing[i], u.uid, u.gid); err != nil {
			t.Fatal(err)
		}
	}
}

// chownTree gives everything below (and at) root to the user.
func (u *osUser) chownTree(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.uid, u.gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// run runs argv as the user (runuser, environment exactly env), returning stdout, stderr.
func (u *osUser) run(t *testing.T, timeout time.Duration, env []string, argv ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"-u", u.name, "--", "env", "-i"}, env...)
	cmd := exec.CommandContext(ctx, "runuser", append(args, argv...)...)
	cmd.Dir = u.home
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s as %s: timed out after %s", strings.Join(argv, " "), u.name, timeout)
	}
	return stdout.String(), stderr.String(), err
}

// basicEnv is what a login of the user would have, without any backup-stack setting.
func (u *osUser) basicEnv(path string) []string {
	return []string{"HOME=" + u.home, "USER=" + u.name, "LOGNAME=" + u.name, "LANG=C.UTF-8", "PATH=" + path}
}

// userSource copies the source into dst (in u's home) and gives it to u, with what its
// build needs offline: root's module download cache, copied next to it as a file
// GOPROXY (the user has neither network nor access to root's cache; `go mod vendor`
// would need modules that building does not, such as hcl's tools-tagged
// golang.org/x/tools, which a cache filled by builds lacks). It returns the go binary's
// path.
func userSource(t *testing.T, u *osUser, dst string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	goBin, _ = filepath.EvalSymlinks(goBin)
	copySource(t, dst)
	u.chownTree(t, dst)
	out, err := exec.Command(goBin, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	from := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
	to := userGoProxyDir(u)
	err = filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		// Lock files and unfinished downloads are the cache's own, not the proxy's.
		if !d.Type().IsRegular() || strings.HasSuffix(rel, ".lock") || strings.Contains(filepath.Base(rel), ".tmp") {
			return nil
		}
		return copyFile(p, filepath.Join(to, rel), 0o644)
	})
	if err != nil {
		t.Fatalf("copying the module download cache %s: %v", from, err)
	}
	u.chownTree(t, to)
	return goBin
}

func userGoProxyDir(u *osUser) string { return filepath.Join(u.home, "goproxy") }

// userGoEnv: the user's own build and module caches, modules from the file proxy of
// userSource, no network.
func userGoEnv(u *osUser) []string {
	return []string{
		"GOCACHE=" + filepath.Join(u.home, ".cache", "go-build"),
		"GOPATH=" + filepath.Join(u.home, "go"),
		"GOPROXY=file://" + userGoProxyDir(u),
		"GOSUMDB=off", // go.sum still verifies every module
		"GOFLAGS=-mod=readonly",
		"GOTOOLCHAIN=local",
	}
}

func sudoPrereqs(t *testing.T) {
	t.Helper()
	installPrereqs(t)
	var missing []string
	for _, tool := range []string{"sudo", "runuser", "useradd", "userdel", "visudo", "setpriv", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, "no "+tool)
		}
	}
	missingPrereqs(t, "install.sh sudo test", missing, " (scripts/test-deps.sh installs sudo)")
}

// TestInstallSudoNonRoot: a non-root user with sudo runs ./install.sh --yes. The generator
// link's target, and the helper its units run, are root-owned in a root-owned directory
// chain outside every home, and the user cannot replace them. In the manager of another
// user without configuration, the installed generator writes and says nothing. Lines
// planted in the user's manifest (a system file, another user's file, paths with ..,
// old root entries, a libexec hint) survive --uninstall, which removes the real install.
func TestInstallSudoNonRoot(t *testing.T) {
	t.Parallel()
	sudoPrereqs(t)
	start := time.Now()
	sys := systemDir(t, "sudo")
	libexec := filepath.Join(sys, "libexec", "backup-stack")
	genDir := filepath.Join(sys, "generators")
	link := filepath.Join(genDir, "backup-generator")
	u := newTestUser(t, "bsinst", true)
	other := newTestUser(t, "bsoth", false)
	t.Logf("users %s (uid %d, sudo) and %s (uid %d), root-owned dir %s", u.name, u.uid, other.name, other.uid, sys)

	// The source, readable by the user, who builds it offline (userSource).
	src := filepath.Join(u.home, "src")
	goBin := userSource(t, u, src)
	path := filepath.Dir(goBin) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	env := append(append(u.basicEnv(path), userGoEnv(u)...),
		"XDG_RUNTIME_DIR="+filepath.Join(u.home, "no-manager"),
		"BACKUP_STACK_GENERATOR_DIR="+genDir,
	)
	install := func(args ...string) (string, error) {
		t.Helper()
		begin := time.Now()
		stdout, stderr, err := u.run(t, 10*time.Minute, env, append([]string{"bash", filepath.Join(src, "install.sh")}, args...)...)
		t.Logf("timing: install.sh %s as %s: %s", strings.Join(args, " "), u.name, time.Since(begin).Round(time.Millisecond))
		return stdout + stderr, err
	}

	out, err := install("--yes", "--libexec", libexec)
	if err != nil {
		t.Fatalf("install.sh --yes as %s: %v\n%s", u.name, err, out)
	}
	t.Logf("install.sh output:\n%s", out)

	// The link points at the root-owned generator; both programs are root:root 0755 in a
	// root-owned chain, outside every home.
	target, err := os.Readlink(link)
	if err != nil || target != filepath.Join(libexec, "backup-generator") {
		t.Fatalf("%s -> %q (%v), want -> %s", link, target, err, filepath.Join(libexec, "backup-generator"))
	}
	resolved, err := filepath.EvalSymlinks(link)
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(filepath.Dir(resolved), "backup-stack")
	for _, f := range []string{resolved, helper} {
		assertRootOwnedChain(t, f, 0o755)
		for _, home := range []string{"/home", "/root", u.home, other.home, os.Getenv("HOME")} {
			if home != "" && isUnder(f, home) {
				t.Errorf("%s is inside the home %s", f, home)
			}
		}
	}
	assertRootOwnedChain(t, filepath.Join(libexec, ".backup-stack-install"), 0o644)
	if fi, err := os.Lstat(genDir); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("generator directory %s: %v %v, want root-owned, writable only by root", genDir, fi.Mode(), err)
	}
	// The user's convenience links, and a manifest without any root entry.
	for _, name := range []string{"backup-generator", "backup-stack"} {
		p := filepath.Join(u.home, ".local", "bin", name)
		if tgt, err := os.Readlink(p); err != nil || tgt != filepath.Join(libexec, name) {
			t.Errorf("%s -> %q (%v), want a symlink to %s", p, tgt, err, filepath.Join(libexec, name))
		}
	}
	manifest := filepath.Join(u.home, ".local", "share", "backup-stack", "install-manifest")
	mb, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mb), "rootfile ") || strings.Contains(string(mb), "rootdir ") {
		t.Errorf("the manifest (the user's to write) lists root entries:\n%s", mb)
	}

	// The user cannot replace the programs or the link.
	sum := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%x", b[:64])
	}
	genSum, helperSum := sum(resolved), sum(helper)
	for _, try := range []string{
		"echo 'echo pwned' > " + resolved,
		"echo 'echo pwned' > " + helper,
		"rm -f " + resolved,
		"mv " + helper + " " + helper + ".old",
		"ln -sfn /bin/sh " + link,
		"rm -f " + link,
		"cp /bin/sh " + filepath.Dir(resolved) + "/evil",
	} {
		if _, stderr, err := u.run(t, 30*time.Second, u.basicEnv("/usr/bin:/bin"), "sh", "-c", try); err == nil {
			t.Errorf("as %s, `%s` succeeded; it must fail", u.name, try)
		} else {
			t.Logf("as %s, `%s` fails as it must: %s", u.name, try, strings.TrimSpace(stderr))
		}
	}
	if sum(resolved) != genSum || sum(helper) != helperSum {
		t.Error("the root-owned programs changed")
	}
	if tgt, _ := os.Readlink(link); tgt != target {
		t.Errorf("the link changed: -> %q", tgt)
	}

	// Units name the root-owned helper: the generator run as the user (through the link,
	// as systemd runs it) on a stack file of theirs.
	u.writeFile(t, filepath.Join(u.home, ".config", "backup-stack", "stacks", "mine.hcl"), "stack \"mine\" {\n  jobs = [\"mine\"]\n}\n", 0o644)
	gen, stderr, err := u.run(t, 30*time.Second, u.basicEnv("/usr/bin:/bin"), link, "--dry-run")
	if err != nil {
		t.Fatalf("%s --dry-run as %s: %v\n%s%s", link, u.name, err, gen, stderr)
	}
	if want := fmt.Sprintf("ExecStartPre=%q \"gate\" ", helper); !strings.Contains(gen, want) {
		t.Errorf("generator output lacks %q:\n%s", want, gen)
	}

	// A user without configuration: the generator is a silent no-op, run directly ...
	outDirs := []string{filepath.Join(other.home, "gen-out", "normal"), filepath.Join(other.home, "gen-out", "early"), filepath.Join(other.home, "gen-out", "late")}
	for _, d := range outDirs {
		other.mkdirAll(t, d)
	}
	stdout, stderr, err := other.run(t, 30*time.Second, other.basicEnv("/usr/bin:/bin"), append([]string{link}, outDirs...)...)
	if err != nil || stdout != "" || stderr != "" {
		t.Errorf("%s as %s (no ~/.config/backup-stack): %v, stdout %q, stderr %q; want exit 0 and no output", link, other.name, err, stdout, stderr)
	}
	for _, d := range outDirs {
		if ents, err := os.ReadDir(d); err != nil || len(ents) != 0 {
			t.Errorf("%s after the generator: %v %v, want empty", d, ents, err)
		}
	}
	// ... and by that user's own systemd --user manager, at its start and on daemon-reload.
	userManagerNoop(t, other, sys, link)

	// Uninstall without --yes and without a terminal: sudo is not used, so the root-owned
	// install stays (and the user is told how to finish); the user's own files go.
	out, err = install("--uninstall")
	if err == nil || !strings.Contains(out, "The root-owned install needs root to remove") {
		t.Errorf("uninstall without --yes (no terminal, so no sudo): %v, want a failure that says root is needed\n%s", err, out)
	}
	if tgt, _ := os.Readlink(link); tgt != target {
		t.Errorf("uninstall without sudo changed the link: -> %q", tgt)
	}
	if _, err := os.Lstat(filepath.Join(u.home, ".local", "bin", "backup-stack")); err == nil {
		t.Error("uninstall without sudo left the user's own link")
	}
	if mb, err = os.ReadFile(manifest); err != nil || !strings.Contains(string(mb), "mode root\nlibexec "+libexec+"\n") || strings.Contains(string(mb), "link ") {
		t.Fatalf("after uninstall without sudo the manifest is %q (%v), want mode root and the libexec directory", mb, err)
	}

	// Plant lines in the user's manifest, then uninstall as the user.
	canary := "/etc/backup-stack-e2e-canary-" + randHex(t, 4)
	canaryLink, canaryDir := canary+"-link", canary+"-dir"
	t.Cleanup(func() {
		for _, p := range []string{canary, canaryLink, canaryDir} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	if err := os.WriteFile(canary, []byte("canary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/zoneinfo/Etc/UTC", canaryLink); err != nil { // like /etc/localtime
		t.Fatal(err)
	}
	if err := os.Mkdir(canaryDir, 0o755); err != nil {
		t.Fatal(err)
	}
	othersFile := filepath.Join(other.home, "precious")
	other.writeFile(t, othersFile, "theirs\n", 0o644)
	othersDir := filepath.Join(other.home, "empty-dir")
	other.mkdirAll(t, othersDir)
	mineOutside := filepath.Join(sys, "users-own", "file") // the user's, but not below their home or prefix
	u.writeFile(t, mineOutside, "mine\n", 0o644)
	rootInHome := filepath.Join(u.home, "root-owned") // below the home, but root's
	if err := os.WriteFile(rootInHome, []byte("root's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	planted := []string{
		"file " + canary,
		"link " + canaryLink,
		"rootfile " + canaryLink,
		"rootdir " + canaryDir,
		"dir " + canaryDir,
		"file " + othersFile,
		"dir " + othersDir,
		"file " + u.home + "/../.." + canary,
		"file " + u.home + "/.local/../../" + filepath.Base(other.home) + "/precious",
		"template 0000 " + u.home + "/../" + filepath.Base(other.home) + "/precious",
		"file " + mineOutside,
		"file " + rootInHome,
		"units /etc",
		"prefix /",
	}
	keep := []string{canary, canaryLink, canaryDir, othersFile, othersDir, mineOutside, rootInHome}
	// A libexec hint first (uninstall checks it like any other place and finds no root
	// record there), then the real manifest, then the rest.
	if err := os.WriteFile(manifest, []byte("libexec /etc\n"+string(mb)+strings.Join(planted, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = install("--uninstall", "--yes")
	if err != nil {
		t.Fatalf("install.sh --uninstall --yes as %s: %v\n%s", u.name, err, out)
	}
	t.Logf("uninstall output:\n%s", out)
	for _, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("planted %s is gone: %v", p, err)
		}
	}
	if tgt, err := os.Readlink(canaryLink); err != nil || tgt != "/usr/share/zoneinfo/Etc/UTC" {
		t.Errorf("canary link changed: %q %v", tgt, err)
	}
	for _, l := range planted {
		if !strings.Contains(out, "ignoring manifest line '"+l+"'") {
			t.Errorf("uninstall does not say it ignores %q", l)
		}
	}
	// The real install is gone: link, programs, record, the directories install.sh made.
	for _, p := range []string{link, genDir, libexec, filepath.Dir(libexec),
		filepath.Join(u.home, ".local", "bin", "backup-stack"), filepath.Join(u.home, ".local", "bin", "backup-generator"),
		manifest, filepath.Dir(manifest), filepath.Join(u.home, ".config", "backup-stack", "stacks", "_template.hcl")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("after uninstall %s is still there", p)
		}
	}
	if _, err := os.Stat(filepath.Join(u.home, ".config", "backup-stack", "stacks", "mine.hcl")); err != nil {
		t.Errorf("the user's stack file is gone: %v", err)
	}
	if ents, err := os.ReadDir(sys); err != nil || len(ents) != 1 || ents[0].Name() != "users-own" {
		t.Errorf("%s after uninstall: %v %v, want only users-own", sys, ents, err)
	}
	t.Logf("timing: TestInstallSudoNonRoot body %s", time.Since(start).Round(time.Millisecond))
}

// userManagerNoop runs the systemd --user manager of u (who has no backup-stack
// configuration) with the installed generator in its user-generators directory, and checks
// that the generator ran (at the start and on daemon-reload) as that user, exited 0, wrote
// no file and printed nothing. The manager's stdout and stderr, where the generators'
// output goes (the journal, on a real system), are captured; a witness generator next to
// it proves that capture works.
func userManagerNoop(t *testing.T, u *osUser, sys, link string) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		if requireMode() {
			t.Fatal("no strace (scripts/test-deps.sh installs it)")
		}
		t.Log("no strace: skipping the user manager part")
		return
	}
	if fi, err := os.Stat("/lib/systemd/systemd"); err != nil || fi.IsDir() {
		if requireMode() {
			t.Fatal("no /lib/systemd/systemd")
		}
		t.Log("no /lib/systemd/systemd: skipping the user manager part")
		return
	}
	start := time.Now()
	// The manager's generator directory: the installed link and a witness.
	gens := filepath.Join(sys, "manager-generators")
	if err := os.Mkdir(gens, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(gens) })
	if err := os.Symlink(link, filepath.Join(gens, "backup-generator")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gens, "zz-e2e-witness"), []byte("#!/bin/sh\necho \"e2e-witness uid=$(id -u)\" >&2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	runtime := filepath.Join(u.home, "run")
	u.mkdirAll(t, runtime)
	if err := os.Chmod(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "manager.log")
	stracePath := filepath.Join(t.TempDir(), "manager.strace")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	if err := os.Chown(logPath, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	cgroups := delegateCgroups(t, u)

	// As root in a new mount namespace: the generator directory over a tmpfs on
	// /usr/local/lib (nothing real is written), /dev/console onto the log, the cgroups;
	// then the manager as the user, under strace (which records each generator's exit).
	script := `set -e
mount --make-private /
mkdir -p /run/systemd
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system
mount -t tmpfs -o mode=0755 tmpfs /usr/local/lib
mkdir -p /usr/local/lib/systemd/user-generators
mount --bind "$1" /usr/local/lib/systemd/user-generators
if [ -e /dev/console ]; then mount --bind "$2" /dev/console; fi
user=$3
shift 3
for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
exec strace -f -e trace=execve -o "$STRACE_OUT" setpriv --reuid="$user" --regid="$user" --init-groups -- /lib/systemd/systemd --user --log-target=console
`
	args := append([]string{"--mount", "--propagation", "unchanged", "bash", "-c", script, "e2e-user-manager", gens, logPath, u.name}, cgroups...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(u.basicEnv("/usr/bin:/bin"), "XDG_RUNTIME_DIR="+runtime, "STRACE_OUT="+stracePath)
	cmd.Dir = u.home
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the user manager: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		u.run(t, 30*time.Second, []string{"XDG_RUNTIME_DIR=" + runtime, "PATH=/usr/bin:/bin"}, "systemctl", "--user", "exit")
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("the user manager did not exit within 30s of systemctl --user exit; killing its processes")
			killCgroups(cgroups)
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop) // before delegateCgroups' cleanup (registered earlier, runs later)

	sysctl := func(args ...string) (string, error) {
		stdout, stderr, err := u.run(t, 60*time.Second, []string{"XDG_RUNTIME_DIR=" + runtime, "PATH=/usr/bin:/bin", "SYSTEMD_COLORS=0"}, append([]string{"systemctl", "--user", "--no-pager"}, args...)...)
		return stdout + stderr, err
	}
	deadline := time.Now().Add(managerStartTimeout)
	for {
		out, err := sysctl("show", "-p", "SystemState", "--value")
		state := strings.TrimSpace(out)
		if err == nil && (state == "running" || state == "degraded") {
			break
		}
		select {
		case err := <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s's systemd --user exited during start (%v); log: %s", u.name, err, lastBytes(b, 3000))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s's systemd --user not running after %s (state %q); log: %s", u.name, managerStartTimeout, state, lastBytes(b, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("timing: %s's user manager running after %s", u.name, time.Since(start).Round(time.Millisecond))
	if out, err := sysctl("daemon-reload"); err != nil {
		t.Fatalf("daemon-reload as %s: %v: %s", u.name, err, out)
	}
	// No generated file (systemd removes the generator directories it finds empty).
	for _, d := range []string{"generator", "generator.early", "generator.late"} {
		root := filepath.Join(runtime, "systemd", d)
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				t.Errorf("the manager of %s (no configuration) has a generated %s", u.name, p)
			}
			return nil
		})
	}
	stop()
	if err := os.RemoveAll(gens); err != nil {
		t.Error(err)
	}
	t.Logf("timing: %s's user manager start, daemon-reload, exit: %s", u.name, time.Since(start).Round(time.Millisecond))

	logb, _ := os.ReadFile(logPath)
	log := string(logb)
	witness := fmt.Sprintf("e2e-witness uid=%d", u.uid)
	if n := strings.Count(log, witness); n < 2 {
		t.Errorf("the witness generator's stderr (%q) appears %d times in the manager's output, want 2 (start, daemon-reload): the capture does not work; output:\n%s", witness, n, log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(strings.ToLower(line), "backup") {
			t.Errorf("the manager of %s (no configuration) logged: %s", u.name, line)
		}
	}
	// The generator ran twice and exited 0 each time.
	st, err := os.ReadFile(stracePath)
	if err != nil {
		t.Fatal(err)
	}
	runs, exits := generatorRuns(string(st), "/usr/local/lib/systemd/user-generators/backup-generator")
	if len(runs) < 2 {
		t.Errorf("backup-generator ran %d times in %s's manager, want 2 (start, daemon-reload)", len(runs), u.name)
	}
	for _, pid := range runs {
		if code, ok := exits[pid]; !ok || code != 0 {
			var lines []string
			for _, l := range strings.Split(string(st), "\n") {
				if strings.HasPrefix(l, pid+" ") {
					lines = append(lines, l)
				}
			}
			t.Errorf("backup-generator (pid %s) in %s's manager: exit %d (seen %v), want 0; its trace:\n%s", pid, u.name, code, ok, strings.Join(lines, "\n"))
		}
	}
	t.Logf("backup-generator ran %d times in %s's manager (uid %d), exit 0, no file, no output", len(runs), u.name, u.uid)
}

// generatorRuns parses `strace -f -e trace=execve` output: the PIDs that executed path,
// and each PID's exit status.
func generatorRuns(trace, path string) ([]string, map[string]int) {
	var runs []string
	exits := map[string]int{}
	exitRe := regexp.MustCompile(`^(\d+)\s+\+\+\+ exited with (\d+) \+\+\+`) // strace pads short PIDs
	sc := bufio.NewScanner(strings.NewReader(trace))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := exitRe.FindStringSubmatch(line); m != nil {
			exits[m[1]], _ = strconv.Atoi(m[2])
			continue
		}
		if pid, rest, ok := strings.Cut(line, " "); ok && strings.HasPrefix(strings.TrimSpace(rest), `execve("`+path+`"`) {
			runs = append(runs, pid)
		}
	}
	return runs, exits
}

// delegateCgroups creates the cgroups backup-stack-e2e-<user> owned by the user (see
// newCgroups), removed (with what the manager made below them) at cleanup.
func delegateCgroups(t *testing.T, u *osUser) []string {
	t.Helper()
	cgs, err := newCgroups("backup-stack-e2e-"+u.name, u.uid, u.gid)
	for _, cg := range cgs {
		t.Cleanup(func() { removeCgroup(t, cg) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return cgs
}

// newCgroups creates, in each cgroup hierarchy systemd uses (the cgroup2 one, and a v1
// name=systemd one when mounted), a cgroup called name, owned by uid:gid (with its control
// files) when uid is not 0, as systemd delegates a user's manager its cgroup. It returns
// the cgroups it made, also on error; the caller removes them.
func newCgroups(name string, uid, gid int) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		if qf[0] == "cgroup2" || qf[0] == "cgroup" && strings.Contains(","+qf[2]+",", ",name=systemd,") {
			mounts = append(mounts, pf[4])
		}
	}
	if len(mounts) == 0 {
		return nil, errors.New("no cgroup2 or name=systemd cgroup hierarchy mounted")
	}
	var out []string
	for _, m := range mounts {
		cg := filepath.Join(m, name)
		if err := os.Mkdir(cg, 0o755); err != nil {
			return out, fmt.Errorf("creating the cgroup %s: %w", cg, err)
		}
		out = append(out, cg)
		if uid == 0 {
			continue
		}
		ents, err := os.ReadDir(cg)
		if err != nil {
			return out, err
		}
		if err := os.Chown(cg, uid, gid); err != nil {
			return out, err
		}
		for _, e := range ents {
			if err := os.Chown(filepath.Join(cg, e.Name()), uid, gid); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// killCgroups sends SIGKILL to the processes in the cgroups (and below): only this test's
// user manager and what it started.
func killCgroups(cgs []string) {
	for _, cg := range cgs {
		filepath.WalkDir(cg, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}

// removeCgroup removes cg and the cgroups below it, deepest first.
func removeCgroup(t *testing.T, cg string) {
	var dirs []string
	filepath.WalkDir(cg, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for try := 0; try < 50; try++ {
		var left []string
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && err != syscall.ENOENT {
				left = append(left, d)
			}
		}
		if len(left) == 0 {
			return
		}
		killCgroups([]string{cg})
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("cleanup: cannot remove the cgroup %s", cg)
}

// TestInstallRefusesUnsafeLibexec: root mode refuses, with the reason, a --libexec (or
// generator directory) that a user could write, that is in a home, or that other users
// cannot reach; before building or writing anything.
func TestInstallRefusesUnsafeLibexec(t *testing.T) {
	t.Parallel()
	installPrereqs(t)
	src := installSource(t)
	s := t.TempDir()
	sys := systemDir(t, "refuse")
	home := filepath.Join(s, "home")
	sandboxHome(t, home, filepath.Join(home, ".config"))
	mk := func(p string, mode fs.FileMode, uid, gid int) string {
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nobodys := mk(filepath.Join(sys, "nobodys"), 0o755, 65534, 65534)
	groupW := mk(filepath.Join(sys, "group-writable"), 0o775, 0, 65534)
	private := mk(filepath.Join(sys, "private"), 0o700, 0, 0)
	intoHome := filepath.Join(sys, "into-home")
	if err := os.Symlink(home, intoHome); err != nil {
		t.Fatal(err)
	}
	genDir := filepath.Join(sys, "gen")
	env := append(goEnv(t), "PATH="+os.Getenv("PATH"), "HOME="+home, "USER=tester",
		"XDG_RUNTIME_DIR="+filepath.Join(s, "run"), "BACKUP_STACK_GENERATOR_DIR="+genDir)
	const why = "systemd runs user generators in every user's manager on this machine, root's included"
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"relative", nil, []string{"--libexec", "lib/backup-stack"}, []string{"--libexec must be an absolute path (got: lib/backup-stack)"}},
		{"home", nil, []string{"--libexec", filepath.Join(home, "libexec")}, []string{"refusing --libexec " + filepath.Join(home, "libexec") + ": it is inside the home directory " + home, why}},
		{"root's home", nil, []string{"--libexec", "/root/libexec"}, []string{"refusing --libexec /root/libexec: it is inside the home directory /root", why}},
		{"tmp", nil, []string{"--libexec", "/tmp/backup-stack-e2e-never"}, []string{"refusing --libexec /tmp/backup-stack-e2e-never: /tmp is writable by others (mode 1777)", why}},
		{"user-owned", nil, []string{"--libexec", filepath.Join(nobodys, "lib")}, []string{"refusing --libexec " + filepath.Join(nobodys, "lib") + ": " + nobodys + " is owned by nobody, not root", why}},
		{"group-writable", nil, []string{"--libexec", filepath.Join(groupW, "lib")}, []string{"refusing --libexec " + filepath.Join(groupW, "lib") + ": " + groupW + " is writable by the group", why}},
		{"private", nil, []string{"--libexec", filepath.Join(private, "lib")}, []string{private + " is not readable and searchable by other users (mode 700)", why}},
		{"symlink into a home", nil, []string{"--libexec", filepath.Join(intoHome, "lib")}, []string{"refusing --libexec " + filepath.Join(intoHome, "lib") + " (that is, " + filepath.Join(home, "lib") + "): it is inside the home directory " + home}},
		{"dotdot into a home", nil, []string{"--libexec", sys + "/../.." + home + "/lib"}, []string{"(that is, " + filepath.Join(home, "lib") + "): it is inside the home directory " + home}},
		{"generator dir in a home", []string{"BACKUP_STACK_GENERATOR_DIR=" + filepath.Join(home, "gen")}, []string{"--libexec", filepath.Join(sys, "lib")}, []string{"refusing the generator directory (BACKUP_STACK_GENERATOR_DIR) " + filepath.Join(home, "gen") + ": it is inside the home directory " + home, why}},
		{"generator dir in /tmp", []string{"BACKUP_STACK_GENERATOR_DIR=/tmp"}, []string{"--libexec", filepath.Join(sys, "lib")}, []string{"refusing the generator directory (BACKUP_STACK_GENERATOR_DIR) /tmp: /tmp is writable by others", why}},
		{"rootless with libexec", nil, []string{"--rootless", "--libexec", filepath.Join(sys, "lib")}, []string{"--libexec is for root mode"}},
	} {
		before := listing(t, false, s, sys)
		out, err := runInstall(t, src, append(append([]string{}, env...), c.env...), c.args...)
		if err == nil {
			t.Errorf("%s: install.sh %v succeeded:\n%s", c.name, c.args, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: install.sh %v output lacks %q:\n%s", c.name, c.args, w, out)
			}
		}
		if strings.Contains(out, "Building") {
			t.Errorf("%s: install.sh built before refusing:\n%s", c.name, out)
		}
		if d := diffListing(before, listing(t, false, s, sys)); d != "" {
			t.Errorf("%s: a refused install changed files:\n%s", c.name, d)
		}
		t.Logf("%s: %s", c.name, installLastLine(out))
	}
}

func installLastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestInstallReplacesOldLink: an install made by an older install.sh (the generator link
// pointing into the user's home, the programs there, "rootfile" in the manifest) is
// upgraded in place: the link now points at the root-owned program, the old programs
// become links; --uninstall (ignoring the old root entries) leaves nothing.
func TestInstallReplacesOldLink(t *testing.T) {
	t.Parallel()
	installPrereqs(t)
	src := installSource(t)
	s := t.TempDir()
	sys := systemDir(t, "old")
	home := filepath.Join(s, "home")
	sandboxHome(t, home, filepath.Join(home, ".config"))
	prefix := filepath.Join(home, ".local", "bin")
	libexec := filepath.Join(sys, "libexec")
	genDir := filepath.Join(sys, "gen")
	state := filepath.Join(home, ".local", "share", "backup-stack")
	for _, d := range []string{prefix, state, genDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"backup-generator", "backup-stack"} {
		if err := os.WriteFile(filepath.Join(prefix, f), []byte("#!/bin/sh\n# old "+f+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(genDir, "backup-generator")
	if err := os.Symlink(filepath.Join(prefix, "backup-generator"), link); err != nil {
		t.Fatal(err)
	}
	old := strings.Join([]string{"# old install.sh", "dir " + filepath.Join(home, ".local"), "dir " + filepath.Join(home, ".local", "share"),
		"dir " + state, "mode root", "dir " + prefix, "file " + filepath.Join(prefix, "backup-generator"), "file " + filepath.Join(prefix, "backup-stack"),
		"rootfile " + link}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(state, "install-manifest"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(goEnv(t), "PATH="+os.Getenv("PATH"), "HOME="+home, "USER=tester",
		"XDG_RUNTIME_DIR="+filepath.Join(s, "run"), "BACKUP_STACK_GENERATOR_DIR="+genDir)
	out, err := runInstall(t, src, env, "--libexec", libexec)
	if err != nil {
		t.Fatalf("install over an old install: %v\n%s", err, out)
	}
	if !strings.Contains(out, "replacing "+link) {
		t.Errorf("install does not say it replaces the old link:\n%s", out)
	}
	if target, _ := os.Readlink(link); target != filepath.Join(libexec, "backup-generator") {
		t.Errorf("%s -> %q, want -> %s", link, target, filepath.Join(libexec, "backup-generator"))
	}
	for _, f := range []string{"backup-generator", "backup-stack"} {
		assertRootOwnedChain(t, filepath.Join(libexec, f), 0o755)
		if target, _ := os.Readlink(filepath.Join(prefix, f)); target != filepath.Join(libexec, f) {
			t.Errorf("%s -> %q, want a link to %s", filepath.Join(prefix, f), target, filepath.Join(libexec, f))
		}
	}
	out, err = runInstall(t, src, env, "--uninstall")
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ignoring manifest line 'rootfile "+link+"'") {
		t.Errorf("uninstall does not say it ignores the old root entry:\n%s", out)
	}
	for _, p := range []string{link, libexec, filepath.Join(prefix, "backup-stack"), state} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("after uninstall %s is still there", p)
		}
	}
	// genDir existed before (the old install's): install.sh did not create it, but it is
	// empty and not in root's record either, so it stays.
}
