package e2e

// The two modes of the harness. modeRoot: root's systemd --user and root podman, as the
// suite began. modeRootless: what the product is for. A new unprivileged user (uid ≥ 1000,
// with the subuid/subgid ranges useradd gives it) per test, its own systemd --user dropped
// to that user in a cgroup delegated to it, its own XDG_RUNTIME_DIR, rootless podman storage
// in its home, the images imported into that storage, the stacks and the exec route's
// Duplicati container as that user's rootless containers.
//
// Networking: the stacks use podman-compose's default bridge network, which rootless podman
// builds with slirp4netns, and slirp4netns needs /dev/net/tun, mode 0600 root here. The
// test's mount namespace gets a tun node of its own (mode 0666, bind-mounted over
// /dev/net/tun; the host's node is never changed) and every podman call of the user runs in
// that namespace (nsenter), because podman's pause process, whose namespaces later calls
// join, takes its mounts from the first call. `network_mode: none|host` was the other way;
// podman-compose 1.0.3 ignores `none` (it still adds its network and `podman run` fails),
// and a host network is not what users run. The Duplicati container uses --network host (it
// talks to the simulator on loopback, as a real one would to its own web server).
//
// Everything of the user goes at cleanup: the manager, the containers, every process of the
// user (podman's pause process and slirp4netns outlive the manager), the cgroups, then the
// user and its home (userdel --remove also drops its subuid/subgid ranges).

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mode says who runs the test's manager and podman.
type mode string

const (
	modeRoot     mode = "root"
	modeRootless mode = "rootless"
)

// modes are both modes, in the order their subtests are named.
var modes = []mode{modeRoot, modeRootless}

// forModes runs f once per mode, as the parallel subtests root and rootless (their managers,
// cgroups and, rootless, container storage are their own; stack names carry the test id).
func forModes(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			f(t, m)
		})
	}
}

// rootlessPrereqs: what rootless mode needs besides checkPrereqs.
func rootlessPrereqs(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"useradd", "userdel", "setpriv", "nsenter", "newuidmap", "newgidmap", "slirp4netns", "mknod"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, "no "+tool)
		}
	}
	if fi, err := os.Stat("/dev/net/tun"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		missing = append(missing, "no /dev/net/tun character device (the rootless stacks' slirp4netns needs one to bind a node of its own over)")
	}
	missingPrereqs(t, "rootless e2e", missing, " (scripts/test-deps.sh installs them)")
}

// userName is the name of the user the manager runs as.
func (e *env) userName() string {
	if e.user != nil {
		return e.user.name
	}
	return "root"
}

// uid and gid of the test's user.
func (e *env) uid() int {
	if e.user != nil {
		return e.user.uid
	}
	return 0
}

func (e *env) gid() int {
	if e.user != nil {
		return e.user.gid
	}
	return 0
}

// own gives p to the test's user (a no-op in root mode).
func (e *env) own(p string) {
	e.t.Helper()
	if e.user == nil {
		return
	}
	if err := os.Lchown(p, e.user.uid, e.user.gid); err != nil {
		e.t.Fatal(err)
	}
}

// mkdirAll makes d and its missing parents, as the test's user's.
func (e *env) mkdirAll(d string) {
	e.t.Helper()
	var missing []string
	for p := d; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !os.IsExist(err) {
			e.t.Fatal(err)
		}
		e.own(missing[i])
	}
}

// writeFile writes a file of the test's user's (its missing parents too).
func (e *env) writeFile(p, content string, perm fs.FileMode) {
	e.t.Helper()
	e.mkdirAll(filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		e.t.Fatal(err)
	}
	e.own(p)
}

// command is argv run as the test's user: directly in root mode; in rootless mode inside
// the test's mount namespace (where the user's podman finds its tun node) with the user's
// uid, gid and groups. The caller sets Env.
func (e *env) command(ctx context.Context, argv ...string) *exec.Cmd {
	if e.user == nil {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = e.home
		return cmd
	}
	args := append([]string{"-t", strconv.Itoa(e.holderPID), "-m", "--",
		"setpriv", "--reuid=" + strconv.Itoa(e.user.uid), "--regid=" + strconv.Itoa(e.user.gid), "--init-groups", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Dir = e.home
	return cmd
}

// podmanEnv is the environment of the user's podman.
func (e *env) podmanEnv() []string {
	return []string{"PATH=" + e.path, "HOME=" + e.home, "USER=" + e.userName(), "LOGNAME=" + e.userName(), "LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + e.run, "XDG_CONFIG_HOME=" + e.config, "CONTAINERS_CONF=" + suite.containersConf}
}

// podmanTimeout is e.podman with its own bound.
func (e *env) podmanTimeout(timeout time.Duration, args ...string) (string, error) {
	if e.user == nil {
		return podmanCmd(timeout, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := e.command(ctx, append([]string{"podman"}, args...)...)
	cmd.Env = e.podmanEnv()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("podman %s (as %s): timed out after %s", strings.Join(args, " "), e.user.name, timeout)
	} else if err != nil {
		err = fmt.Errorf("podman %s (as %s): %v: %s", strings.Join(args, " "), e.user.name, err, oneLine(string(out)))
	}
	return string(out), err
}

// importUserImages imports the base image into the rootless user's storage.
func (e *env) importUserImages() {
	e.t.Helper()
	start := time.Now()
	tarPath, err := miniRootfsTar()
	if err != nil {
		e.t.Fatalf("base image: %v", err)
	}
	if _, err := e.podmanTimeout(2*time.Minute, importArgs(tarPath, miniImage)...); err != nil {
		e.t.Fatalf("base image for %s: %v", e.user.name, err)
	}
	e.t.Logf("timing: rootless user %s (uid %d): base image imported in %s", e.user.name, e.user.uid, time.Since(start).Round(time.Millisecond))
}

// simImage returns the simulator's image in the storage of the test's podman.
func (e *env) simImage() string {
	e.t.Helper()
	simBin := binary(e.t, "duplicati-sim")
	if e.user == nil {
		img, err := ensureSimImage(simBin)
		if err != nil {
			e.t.Fatalf("sim image: %v", err)
		}
		return img
	}
	img := simImageRepo + ":" + suite.runID
	if _, err := e.podman("image", "exists", img); err == nil {
		return img
	}
	tarPath, err := simRootfsTar(simBin)
	if err != nil {
		e.t.Fatalf("sim image: %v", err)
	}
	if _, err := e.podmanTimeout(2*time.Minute, importArgs(tarPath, img)...); err != nil {
		e.t.Fatalf("sim image for %s: %v", e.user.name, err)
	}
	return img
}

// makeCgroups creates the manager's cgroups backup-stack-e2e-<test id>, delegated to the
// user in rootless mode; e.cleanup removes them. With its own cgroup, a manager's units do
// not share cgroup paths with the units of other tests' managers (DESIGN fact 15), so tests
// may run in parallel.
func (e *env) makeCgroups() []string {
	e.t.Helper()
	cgs, err := newCgroups("backup-stack-e2e-"+e.id, e.uid(), e.gid())
	e.cgroups = cgs
	if err != nil {
		e.t.Fatal(err)
	}
	return cgs
}

// cgroupAppSlices are the directories of the manager's app.slice in each hierarchy.
func (e *env) cgroupAppSlices() []string {
	var out []string
	for _, cg := range e.cgroups {
		out = append(out, filepath.Join(cg, "app.slice"))
	}
	return out
}

// killUserProcesses SIGKILLs every process whose real or effective uid is the user's or in
// its subuid range (the user's containers), until none is left.
func killUserProcesses(u *osUser) error {
	lo, n := subIDRange("/etc/subuid", u.name)
	mine := func(uid int) bool { return uid == u.uid || n > 0 && uid >= lo && uid < lo+n }
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []string
		ents, _ := os.ReadDir("/proc")
		for _, ent := range ents {
			pid, err := strconv.Atoi(ent.Name())
			if err != nil || pid <= 1 {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "status"))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) >= 3 && f[0] == "Uid:" {
					r, _ := strconv.Atoi(f[1])
					eu, _ := strconv.Atoi(f[2])
					if (mine(r) || mine(eu)) && faultAlive(pid) {
						left = append(left, ent.Name())
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
					break
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of %s still alive after 20s: %v", u.name, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// subIDRange reads the first range of name in /etc/subuid or /etc/subgid.
func subIDRange(file, name string) (start, count int) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) == 3 && p[0] == name {
			start, _ = strconv.Atoi(p[1])
			count, _ = strconv.Atoi(p[2])
			return start, count
		}
	}
	return 0, 0
}

// expectRootless checks, from podman's and the kernel's view, that the container runs
// under the test's unprivileged user: podman says rootless, the container's main process
// belongs to the user on the host, and root's podman does not know the container.
func (e *env) expectRootless(container string) {
	e.t.Helper()
	if out, err := e.podman("info", "--format", "{{.Host.Security.Rootless}}"); err != nil || strings.TrimSpace(out) != "true" {
		e.t.Fatalf("podman info as %s: rootless %q (%v), want true", e.userName(), strings.TrimSpace(out), err)
	}
	out, err := e.podman("inspect", "--format", "{{.Id}} {{.State.Pid}}", container)
	if err != nil {
		e.t.Fatal(err)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		e.t.Fatalf("podman inspect %s: %q", container, out)
	}
	var fi os.FileInfo
	if fi, err = os.Stat("/proc/" + f[1]); err != nil {
		e.t.Fatalf("container %s main process %s: %v", container, f[1], err)
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != e.user.uid {
		e.t.Fatalf("container %s main process %s belongs to uid %d on the host, want %d (%s)", container, f[1], uid, e.user.uid, e.user.name)
	}
	if _, err := podmanCmd(30*time.Second, "container", "exists", f[0]); err == nil {
		e.t.Fatalf("root's podman knows the rootless container %s (%s)", container, f[0])
	}
	e.t.Logf("%s: rootless, main process %s runs as uid %d on the host, unknown to root's podman", container, f[1], e.user.uid)
}
