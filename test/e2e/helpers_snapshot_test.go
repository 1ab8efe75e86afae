package e2e

// Helpers of scenario_snapshot_test.go (snapshot mode, issue 15). Every identifier here
// starts with "snap" so that it cannot clash with the helpers of other scenarios.
//
// The file systems (btrfs mounted with user_subvol_rm_allowed, XFS made with reflink=1,
// ext4) are image files on loop devices, mounted as root INSIDE the test's mount namespace:
// the manager, its units and the user's podman live there, and the holder made / private
// before any of them started, so a mount made on the host now would never reach them. The
// test process and the simulator stay in the host namespace and reach those mounts through
// the holder's root, /proc/<holder>/root/... (snapHostPath).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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

// Bounds of the snapshot scenarios.
const (
	snapCmdTimeout    = 2 * time.Minute // one command in the namespace (mkfs, mount, dd)
	snapBackupTimeout = 3 * time.Minute // one `systemctl --user start backup@` (jobs up to 60 s)
	snapEventTimeout  = 2 * time.Minute // the sim shows a task started / finished
)

// The writer container's files (its /data is the stack's data dir).
const (
	snapLive      = "live.log"  // one line appended every 100 ms while the stack runs
	snapOwned     = "owned.txt" // chowned to uid 1234 inside the container
	snapOwnedText = "owned-by-1234\n"
	snapOwnedUID  = 1234
	// A database's kind of directory: 0700, owned by the container's uid 1234, a 0600 file in
	// it. When rootless, the stack's user cannot read it outside its user namespace.
	snapPrivate     = "private"
	snapPrivateKey  = "private/key.txt"
	snapPrivateText = "secret-of-1234\n"
	snapRecordName  = "frozen-record" // "<sha256> <lines>" of the live file, written by post_stop
)

// snapFSSizes are the image sizes: mkfs.xfs refuses below 300 MB, mkfs.btrfs wants some
// 110 MB; ext4 is kept small so that the space tests can fill it quickly. Images are sparse.
var snapFSSizes = map[string]string{"btrfs": "256M", "xfs": "320M", "ext4": "64M"}

// snapFSPrereqs skips (or fails under BACKUP_STACK_E2E=require) when a file system of kind
// cannot be made on a loop device here.
func snapFSPrereqs(t *testing.T, kind string) {
	t.Helper()
	var missing []string
	tools := []string{"losetup", "truncate", "nsenter", "findmnt", "mkfs." + kind}
	if kind == "btrfs" {
		tools = append(tools, "btrfs")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, "no "+tool)
		}
	}
	if fi, err := os.Stat("/dev/loop-control"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		missing = append(missing, "no /dev/loop-control (loop devices)")
	}
	missingPrereqs(t, "snapshot e2e ("+kind+")", missing, " (scripts/test-deps.sh installs btrfs-progs and xfsprogs)")
}

// snapLoopCleanup verifies, at the very end of the test, that no loop device is left on the
// image files in imgDir, and detaches one that is. Register it BEFORE the env exists, so that
// it runs after the env's cleanup has killed the namespace holder: with the namespace gone
// its mounts go, and the autoclear that `mount -o loop` sets detaches the device.
func snapLoopCleanup(t *testing.T, imgDir string) {
	t.Cleanup(func() {
		imgs, _ := filepath.Glob(filepath.Join(imgDir, "*.img"))
		for _, img := range imgs {
			devs := snapLoopsOf(img)
			deadline := time.Now().Add(15 * time.Second)
			for len(devs) > 0 && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				devs = snapLoopsOf(img)
			}
			if len(devs) == 0 {
				continue
			}
			t.Logf("cleanup: %s still on %v 15s after its namespace ended; detaching", img, devs)
			for _, d := range devs {
				if out, err := exec.Command("losetup", "-d", d).CombinedOutput(); err != nil {
					t.Errorf("cleanup: losetup -d %s: %v: %s", d, err, oneLine(string(out)))
				}
			}
			if left := snapLoopsOf(img); len(left) > 0 {
				t.Errorf("cleanup: loop devices %v still back %s", left, img)
			}
		}
	})
}

// snapLoopsOf lists the loop devices backed by img (`losetup -j`).
func snapLoopsOf(img string) []string {
	out, err := exec.Command("losetup", "-n", "-O", "NAME", "-j", img).Output()
	if err != nil {
		return nil
	}
	return strings.Fields(string(out))
}

// snapNSCmd runs argv inside the test's mount namespace: as root, or (asUser) as the test's
// user. e.command cannot do both: in root mode it runs on the host, where these mounts are
// not.
func (e *env) snapNSCmd(ctx context.Context, asUser bool, argv ...string) *exec.Cmd {
	args := []string{"-t", strconv.Itoa(e.holderPID), "-m", "--"}
	if asUser && e.user != nil {
		args = append(args, "setpriv", "--reuid="+strconv.Itoa(e.user.uid), "--regid="+strconv.Itoa(e.user.gid), "--init-groups", "--")
	}
	cmd := exec.CommandContext(ctx, "nsenter", append(args, argv...)...)
	cmd.Env = e.userEnv()
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// snapRun runs argv in the namespace and returns its combined output.
func (e *env) snapRun(asUser bool, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), snapCmdTimeout)
	defer cancel()
	out, err := e.snapNSCmd(ctx, asUser, argv...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: timed out after %s", strings.Join(argv, " "), snapCmdTimeout)
	} else if err != nil {
		err = fmt.Errorf("%s (as %s): %w: %s", strings.Join(argv, " "), map[bool]string{true: e.userName(), false: "root"}[asUser], err, oneLine(string(out)))
	}
	return string(out), err
}

// snapMust is snapRun that fails the test.
func (e *env) snapMust(asUser bool, argv ...string) string {
	e.t.Helper()
	out, err := e.snapRun(asUser, argv...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// snapHostPath is p as the test process and the simulator see it from the host namespace:
// through the namespace holder's root.
func (e *env) snapHostPath(p string) string {
	return filepath.Join("/proc", strconv.Itoa(e.holderPID), "root", p)
}

// snapMountFS makes a file system of kind on a sparse image in imgDir and mounts it (loop)
// at $T/fs-<kind> inside the namespace; btrfs with user_subvol_rm_allowed, so that an
// unprivileged user may delete the snapshots it made. The mount's root belongs to the test's
// user. It returns the mount point.
func (e *env) snapMountFS(kind, imgDir string) string {
	t := e.t
	t.Helper()
	img := filepath.Join(imgDir, kind+".img")
	if out, err := exec.Command("truncate", "-s", snapFSSizes[kind], img).CombinedOutput(); err != nil {
		t.Fatalf("truncate %s: %v: %s", img, err, out)
	}
	var mkfs []string
	opts := "loop"
	switch kind {
	case "btrfs":
		mkfs = []string{"mkfs.btrfs", "-q", img}
		opts += ",user_subvol_rm_allowed"
	case "xfs":
		mkfs = []string{"mkfs.xfs", "-q", "-m", "reflink=1", img}
	case "ext4":
		mkfs = []string{"mkfs.ext4", "-q", "-F", img}
	default:
		t.Fatalf("snapMountFS: unknown file system %q", kind)
	}
	start := time.Now()
	if out, err := exec.Command(mkfs[0], mkfs[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(mkfs, " "), err, out)
	}
	mnt := filepath.Join(e.dir, "fs-"+kind)
	e.mkdirAll(mnt) // the directory is shared by both namespaces; the mount is not
	e.snapMust(false, "mount", "-o", opts, img, mnt)
	e.snapMust(false, "chown", fmt.Sprintf("%d:%d", e.uid(), e.gid()), mnt)
	e.snapMust(false, "chmod", "0755", mnt)
	info := strings.TrimSpace(e.snapMust(false, "findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", mnt))
	if e.user != nil {
		// The user's rootless podman keeps its namespaces in its pause process, whose mount
		// namespace is a copy of the holder's made at the user's first podman call (the image
		// import) and gets no later mount: the holder made / private. `podman system migrate`
		// ends the pause process (no container of the user runs yet); the next podman call
		// makes a new one that sees the mount, as the stack's containers and the product's
		// `podman unshare cp` must. On a real host / is shared and the mount propagates.
		if _, err := e.podman("system", "migrate"); err != nil {
			t.Fatal(err)
		}
		out, err := e.podman("unshare", "findmnt", "-n", "-o", "FSTYPE", mnt)
		lines := strings.Split(strings.TrimSpace(out), "\n") // podman warns first: "/" is not a shared mount
		if err != nil || lines[len(lines)-1] != kind {
			t.Fatalf("inside podman unshare, %s is %q (%v), want the %s mount", mnt, oneLine(out), err, kind)
		}
	}
	t.Logf("file system: %s on %s (%s), made and mounted in %s", kind, mnt, info, time.Since(start).Round(time.Millisecond))
	return mnt
}

// snapOpts describe one snapshot scenario's stack.
type snapOpts struct {
	base   string        // stack name prefix (the test id is appended)
	fs     string        // "btrfs", "xfs", "ext4"; "" for no loop file system (data in $T)
	subvol bool          // btrfs: the data dir is a subvolume, created by the stack's user
	method string        // the snapshot block's method; "" for no snapshot block
	jobDur time.Duration // the sim job's duration
	result string        // the sim job's result ("" = Success)
	// hooks is more HCL inside the stack block, written once the rig's paths are known.
	hooks func(r *snapRig) string
	// setup runs after the data dir exists, before the stack file is written.
	setup func(r *snapRig)
}

// snapRig is a basic rig whose stack's "db" container is a writer: it appends a line to
// <data>/live.log every 100 ms, <data> being bind-mounted from the loop file system.
type snapRig struct {
	*basicRig
	o       snapOpts
	mnt     string // the file system's mount point (or a plain dir in $T)
	data    string // <mnt>/data: the stack's data, the snapshot block's path
	into    string // <mnt>/snapshots: the snapshot block's into
	snapDir string // <into>/<stack>
	frozen  string // <into>/<stack>/data: the snapshot of data
	record  string // what the post_stop hook wrote: the live file when the stack stopped
}

// newSnapRig builds the scenario: a manager, the sim (REST route), the writer stack on its
// file system, the stack file with the snapshot block and a post_stop hook that records the
// live file's sha256 and line count (it runs after the snapshot, while the stack is still
// down: that is the data as it was when the stack stopped). The stack is not started.
func newSnapRig(t *testing.T, m mode, o snapOpts) *snapRig {
	t.Helper()
	imgDir := ""
	if o.fs != "" {
		snapFSPrereqs(t, o.fs)
		imgDir = t.TempDir()
		snapLoopCleanup(t, imgDir) // before the env: runs after its cleanup
	}
	if o.result == "" {
		o.result = "Success"
	}
	br := newBasicRigMode(t, m, "api", o.base, o.jobDur, o.result, "")
	e := br.e
	e.faultLogDropIns() // backup-recover.service's output to units.log too
	r := &snapRig{basicRig: br, o: o}
	if o.fs != "" {
		r.mnt = e.snapMountFS(o.fs, imgDir)
	} else {
		r.mnt = filepath.Join(e.dir, "plain-fs")
		e.mkdirAll(r.mnt)
	}
	r.data = filepath.Join(r.mnt, "data")
	r.into = filepath.Join(r.mnt, "snapshots")
	r.snapDir = filepath.Join(r.into, r.st.Name)
	r.frozen = filepath.Join(r.snapDir, "data")
	r.record = filepath.Join(e.dir, snapRecordName)
	if o.subvol {
		// As the user: btrfs lets only a subvolume's owner snapshot it (and the product
		// refuses a subvolume another uid owns).
		e.snapMust(true, "btrfs", "subvolume", "create", r.data)
	} else {
		e.snapMust(true, "mkdir", r.data)
	}
	if o.setup != nil {
		o.setup(r)
	}
	r.writerCompose()
	r.writeStackFile()
	e.daemonReload()
	// In snapshot mode nothing refers to the hold unit once it is over (no PartOf=), so the
	// manager unloads it, and with it the last reference to the inactive stack unit: the
	// stack unit restarted by resume is a fresh object without the stop's timestamps. An
	// anchor keeps it loaded so that `systemctl show` still tells when the stop began.
	e.basicAnchor(r.st.Unit)
	if o.method != "" {
		// The sim runs on the host and reads the snapshot through the holder's root; a real
		// Duplicati container would see <into> through a volume mount, and its job's source
		// would be the snapshot dir as the container sees it.
		r.setJob(o.jobDur, o.result, e.snapHostPath(r.frozen))
	}
	return r
}

// setJob (re)configures the sim's backup: duration, result and source paths.
func (r *snapRig) setJob(d time.Duration, result string, sources ...string) {
	r.t.Helper()
	body, _ := json.Marshal(map[string]any{"ID": r.backupID, "Name": r.job, "Duration": d.String(), "Result": result, "Sources": sources})
	if _, err := r.s.do("POST", "/sim/backups", body); err != nil {
		r.t.Fatal(err)
	}
}

// snapWriterScript is the writer container's shell: once, a file chowned to a non-root uid
// (on the host a sub-UID when rootless) and a private directory of that uid, then a line
// every 100 ms. `$$` is compose's `$`.
const snapWriterScript = "[ -e /data/owned.txt ] || { echo owned-by-1234 > /data/owned.txt; chown 1234:1234 /data/owned.txt; chmod 0640 /data/owned.txt; }; " +
	"[ -e /data/private ] || { mkdir /data/private; echo secret-of-1234 > /data/private/key.txt; chmod 0600 /data/private/key.txt; chmod 0700 /data/private; chown -R 1234:1234 /data/private; }; " +
	"touch /data/live.log; i=$$(wc -l < /data/live.log); " +
	"while :; do i=$$((i+1)); echo \"line $$i $$(date -u +%T)\" >> /data/live.log; usleep 100000; done"

// writerCompose turns the harness's "db" container (sleep) into the writer.
func (r *snapRig) writerCompose() {
	r.t.Helper()
	p := filepath.Join(r.st.Dir, "compose.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	old := "    command: [\"sleep\", \"86400\"]\n"
	if !strings.Contains(string(b), old) {
		r.t.Fatalf("compose.yaml has no %q: %s", old, b)
	}
	repl := fmt.Sprintf("    command: [\"sh\", \"-c\", %q]\n    volumes:\n      - %s:/data\n", snapWriterScript, r.data)
	r.e.writeFile(p, strings.Replace(string(b), old, repl, 1), 0o644)
}

// writeStackFile writes the stack file: jobs, timeouts, the snapshot block (unless the
// method is ""), the recording post_stop hook, then o.hooks.
func (r *snapRig) writeStackFile() {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "stack %q {\n  jobs          = [%q]\n  stop_timeout  = \"30s\"\n  start_timeout = \"60s\"\n  wait_timeout  = \"3m\"\n", r.st.Name, r.job)
	if r.o.method != "" {
		fmt.Fprintf(&b, "  snapshot {\n    paths   = [%q]\n    method  = %q\n    into    = %q\n    timeout = \"2m\"\n  }\n", r.data, r.o.method, r.into)
	}
	live := filepath.Join(r.data, snapLive)
	script := fmt.Sprintf(`set -e; h=$(sha256sum < %[1]s | cut -d' ' -f1); n=$(wc -l < %[1]s); printf '%%s %%s\n' "$h" "$n" > %[2]s.tmp; mv %[2]s.tmp %[2]s`, live, r.record)
	fmt.Fprintf(&b, "  hook \"post_stop\" {\n    command = [\"/bin/sh\", \"-c\", %s]\n  }\n", basicHCLString(script))
	if r.o.hooks != nil {
		b.WriteString(r.o.hooks(r))
	}
	b.WriteString("}\n")
	r.e.writeStack(r.st.Name, b.String())
}

// snapRecord is what the post_stop hook recorded.
type snapRecord struct {
	SHA256 string
	Lines  int
}

// readRecord reads the post_stop hook's record (ok false when it is not there yet).
func (r *snapRig) readRecord() (snapRecord, bool) {
	b, err := os.ReadFile(r.record)
	if err != nil {
		return snapRecord{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || len(f[0]) != 64 {
		r.t.Fatalf("post_stop record %q is not \"<sha256> <lines>\"", b)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		r.t.Fatalf("post_stop record %q: %v", b, err)
	}
	return snapRecord{f[0], n}, true
}

// fileSum returns the sha256 and line count of a file on the loop file system.
func (r *snapRig) fileSum(p string) (string, int) {
	r.t.Helper()
	b, err := os.ReadFile(r.e.snapHostPath(p))
	if err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), bytes.Count(b, []byte("\n"))
}

// liveLines is the line count of the live data file now.
func (r *snapRig) liveLines() int {
	r.t.Helper()
	_, n := r.fileSum(filepath.Join(r.data, snapLive))
	return n
}

// waitWriting waits until the writer has written more than n lines and returns the count.
func (r *snapRig) waitWriting(n int) int {
	r.t.Helper()
	var got int
	r.e.waitFor(fmt.Sprintf("the writer to pass %d lines", n), 30*time.Second, 100*time.Millisecond, func() bool {
		if _, err := os.Stat(r.e.snapHostPath(filepath.Join(r.data, snapLive))); err != nil {
			return false
		}
		got = r.liveLines()
		return got > n
	})
	return got
}

// snapStat is the owner, mode and mtime of a file.
type snapStat struct {
	UID, GID int
	Mode     os.FileMode
	MTime    time.Time
}

func (r *snapRig) stat(p string) snapStat {
	r.t.Helper()
	fi, err := os.Lstat(r.e.snapHostPath(p))
	if err != nil {
		r.t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return snapStat{int(st.Uid), int(st.Gid), fi.Mode(), fi.ModTime()}
}

// hostUID is the host uid of a uid inside the stack's containers: itself as root; in a
// rootless user's containers 0 is the user and n ≥ 1 is the n-th of its sub-UIDs.
func (r *snapRig) hostUID(inContainer int) int {
	if r.e.user == nil {
		return inContainer
	}
	if inContainer == 0 {
		return r.e.user.uid
	}
	lo, n := subIDRange("/etc/subuid", r.e.user.name)
	if n < inContainer {
		r.t.Fatalf("%s has %d sub-UIDs, fewer than %d", r.e.user.name, n, inContainer)
	}
	return lo + inContainer - 1
}

// snapDirEntries lists what is under <into>/<stack>; nil when it does not exist.
func (r *snapRig) snapDirEntries() []string {
	r.t.Helper()
	ents, err := os.ReadDir(r.e.snapHostPath(r.snapDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	names := []string{}
	for _, ent := range ents {
		names = append(names, ent.Name())
	}
	return names
}

// expectNoSnapshot: nothing is left of this stack's snapshot: <into>/<stack> is gone (the
// product removes it once empty).
func (r *snapRig) expectNoSnapshot(when string) {
	r.t.Helper()
	if ents := r.snapDirEntries(); ents != nil {
		r.fail("%s: %s still exists, holding %v", when, r.snapDir, ents)
	}
}

// waitNoSnapshot waits until <into>/<stack> is gone.
func (r *snapRig) waitNoSnapshot(when string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for r.snapDirEntries() != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	r.expectNoSnapshot(when)
}

// snapReads mirrors duplicatisim.Reads (GET /sim/reads?task=N).
type snapReads struct {
	TaskID   int64
	BackupID string
	Sources  []string
	Entries  []struct {
		Path, Kind   string
		Size         int64
		Mode, SHA256 string
		ReadAt       time.Time
	}
	Warnings, Errors []string
	Finished         bool
}

// reads returns what the sim's task read.
func (r *snapRig) reads(task int64) snapReads {
	r.t.Helper()
	b, err := r.s.do("GET", "/sim/reads?"+url.Values{"task": {strconv.FormatInt(task, 10)}}.Encode(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	var rd snapReads
	if err := json.Unmarshal(b, &rd); err != nil {
		r.t.Fatalf("GET /sim/reads: %v: %s", err, oneLine(string(b)))
	}
	return rd
}

// readOf returns the entry the task read for the snapshot's file rel ("live.log").
func (r *snapRig) readOf(rd snapReads, rel string) (sha string, size int64, at time.Time, ok bool) {
	want := filepath.Join(r.e.snapHostPath(r.frozen), rel)
	for _, en := range rd.Entries {
		if en.Path == want && en.Kind == "file" {
			return en.SHA256, en.Size, en.ReadAt, true
		}
	}
	return "", 0, time.Time{}, false
}

// snapMark is the stack as it was before a backup that must not touch it.
type snapMark struct {
	Invocation  string
	ActiveEnter time.Time
	ActiveExit  time.Time
	Started     map[string]string // container -> State.StartedAt
}

func (r *snapRig) mark() snapMark {
	r.t.Helper()
	p := r.e.show(r.st.Unit, "InvocationID")
	ts := r.e.showTimes(r.st.Unit, "ActiveEnterTimestamp", "ActiveExitTimestamp")
	return snapMark{p["InvocationID"], ts["ActiveEnterTimestamp"], ts["ActiveExitTimestamp"], r.containerStarts()}
}

// containerStarts maps each container of the stack (any state) to when it last started.
func (r *snapRig) containerStarts() map[string]string {
	r.t.Helper()
	out, err := r.e.podman("ps", "-a", "--filter", "label=io.podman.compose.project="+r.st.Project, "--format", "{{.Names}}")
	if err != nil {
		r.t.Fatal(err)
	}
	names := strings.Fields(out)
	sort.Strings(names)
	m := map[string]string{}
	if len(names) == 0 {
		return m
	}
	out, err = r.e.podman(append([]string{"inspect", "--format", "{{.Name}} {{.State.Status}} {{.State.StartedAt}}"}, names...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n, rest, ok := strings.Cut(strings.TrimSpace(l), " "); ok {
			m[strings.TrimPrefix(n, "/")] = rest
		}
	}
	return m
}

// expectUntouched: the stack was neither stopped nor restarted since mk: the same
// invocation of its unit, the same activation time, no stop since, and every container
// running since the same moment; the hold unit never ran.
func (r *snapRig) expectUntouched(when string, mk snapMark) {
	r.t.Helper()
	now := r.mark()
	if now.Invocation != mk.Invocation || !now.ActiveEnter.Equal(mk.ActiveEnter) || !now.ActiveExit.Equal(mk.ActiveExit) {
		r.fail("%s: %s was stopped or restarted: before invocation %s active since %s (last stop %s), now %s active since %s (last stop %s)",
			when, r.st.Unit, mk.Invocation, mk.ActiveEnter.Format(time.StampMicro), mk.ActiveExit.Format(time.StampMicro),
			now.Invocation, now.ActiveEnter.Format(time.StampMicro), now.ActiveExit.Format(time.StampMicro))
	}
	if fmt.Sprint(now.Started) != fmt.Sprint(mk.Started) {
		r.fail("%s: the containers changed: before %v, now %v", when, mk.Started, now.Started)
	}
	if inv := r.e.show(r.holdUnit(), "InvocationID")["InvocationID"]; inv != "" {
		r.fail("%s: %s ran (invocation %s): the stack was held down", when, r.holdUnit(), inv)
	}
	r.expectUp(when)
}

// expectNoTask: the sim was asked for nothing since task after (no queued, no run).
func (r *snapRig) expectNoTask(when string, after int64) {
	r.t.Helper()
	for _, ev := range r.s.events() {
		if ev.TaskID > after {
			r.fail("%s: the sim got task %d (%s of backup %s), want none", when, ev.TaskID, ev.Operation, ev.BackupID)
		}
	}
}

// expectReason: the reason of the last run (`backup-stack list --json`, and the history)
// names every one of words (case-insensitive). It returns the reason.
func (r *snapRig) expectReason(when string, words ...string) string {
	r.t.Helper()
	reason := listReason(r.t, r.e, r.st.Name)
	h := r.e.faultReadHistory(r.st.Name)
	hist := ""
	if h != nil {
		hist = h.Reason + " | " + strings.Join(h.Failures, " | ")
	}
	for _, w := range words {
		if !strings.Contains(strings.ToLower(reason), strings.ToLower(w)) {
			r.fail("%s: list --json reason %q does not name %q (history: %q)", when, reason, w, hist)
		}
		if !strings.Contains(strings.ToLower(hist), strings.ToLower(w)) {
			r.fail("%s: history %q does not name %q", when, hist, w)
		}
	}
	return reason
}

// startBackupFor is startBackup with a longer bound (60 s jobs).
func (r *snapRig) startBackupFor(timeout time.Duration) *basicBgRun {
	b := &basicBgRun{done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(b.done)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		b.out, b.err = r.e.systemctlCtx(ctx, "start", r.backupUnit())
		b.end = time.Now()
	}()
	return b
}

// snapWaitRun waits for a background start to return.
func snapWaitRun(t *testing.T, b *basicBgRun, timeout time.Duration) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("systemctl --user start did not return within %s", timeout+10*time.Second)
	}
}

// waitTask waits for the first Backup task of our backup above after satisfying cond.
func (r *snapRig) waitTask(what string, after int64, timeout time.Duration, cond func(simEvent) bool) simEvent {
	r.t.Helper()
	return r.e.waitBackupEvent(r.s, r.backupID, what, after, timeout, cond)
}

// taskEnded waits until task id has a result.
func (r *snapRig) taskEnded(id int64, timeout time.Duration) simEvent {
	r.t.Helper()
	return r.waitTask(fmt.Sprintf("task %d to end", id), id-1, timeout, func(ev simEvent) bool {
		return ev.TaskID == id && !ev.Finished.IsZero() && ev.Result != ""
	})
}

// snapFigures are the stack's last stop and start by its own unit's timestamps.
type snapFigures struct {
	StopAt, DownAt, StartAt, UpAt time.Time // ActiveExit, InactiveEnter, InactiveExit, ActiveEnter
}

func (f snapFigures) downtime() time.Duration { return f.UpAt.Sub(f.StopAt) }
func (f snapFigures) stop() time.Duration     { return f.DownAt.Sub(f.StopAt) }
func (f snapFigures) start() time.Duration    { return f.UpAt.Sub(f.StartAt) }

func (r *snapRig) figures() snapFigures {
	r.t.Helper()
	ts := r.e.showTimes(r.st.Unit, "ActiveExitTimestamp", "InactiveEnterTimestamp", "InactiveExitTimestamp", "ActiveEnterTimestamp")
	f := snapFigures{ts["ActiveExitTimestamp"], ts["InactiveEnterTimestamp"], ts["InactiveExitTimestamp"], ts["ActiveEnterTimestamp"]}
	if f.StopAt.IsZero() || f.DownAt.IsZero() || f.StartAt.IsZero() || f.UpAt.IsZero() ||
		f.DownAt.Before(f.StopAt) || f.StartAt.Before(f.DownAt) || f.UpAt.Before(f.StartAt) {
		r.fail("%s: timestamps do not make one stop and start: %v", r.st.Unit, ts)
	}
	return f
}

// stepTime is how long the backup unit's ExecStartPre= step word (e.g. "snapshot") ran.
func (r *snapRig) stepTime(word string) time.Duration {
	r.t.Helper()
	start, stop, _, rec := r.e.faultExec(r.backupUnit(), "ExecStartPre", word)
	if start.IsZero() || stop.IsZero() {
		r.fail("%s: no finished ExecStartPre= %s step: %s", r.backupUnit(), word, oneLine(rec))
	}
	return stop.Sub(start)
}

// gapSteps says where the time between the stack's stop and its start went in snapshot
// mode: each ExecStartPre= step from the hold to the resume, as start+duration relative to
// the moment the stack unit was inactive (negative: it began before). A failure message
// with it names the slow step instead of only the sum.
func (r *snapRig) gapSteps(f snapFigures) string {
	r.t.Helper()
	var parts []string
	for _, w := range []string{"hold", "wait-stopped", "snapshot", "post_stop", "resume"} {
		start, stop, _, _ := r.e.faultExec(r.backupUnit(), "ExecStartPre", w)
		if start.IsZero() || stop.IsZero() {
			parts = append(parts, w+" -")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %+dms+%dms", w, start.Sub(f.DownAt).Milliseconds(), stop.Sub(start).Milliseconds()))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf("; stack start began %+dms", f.StartAt.Sub(f.DownAt).Milliseconds())
}

// stepRan reports whether the backup unit's ExecStartPre= step word started in its last run.
func (r *snapRig) stepRan(word string) bool {
	r.t.Helper()
	start, _, _, _ := r.e.faultExec(r.backupUnit(), "ExecStartPre", word)
	return !start.IsZero()
}

// enableStack makes the stack unit start with the manager, as a user's real stacks do
// (a default.target.wants/ link, what `systemctl --user enable` makes from WantedBy=).
func (r *snapRig) enableStack() {
	r.t.Helper()
	dir := filepath.Join(r.e.config, "systemd", "user", "default.target.wants")
	r.e.mkdirAll(dir)
	link := filepath.Join(dir, r.st.Unit)
	if err := os.Symlink(filepath.Join("..", r.st.Unit), link); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Lchown(link, r.e.uid(), r.e.gid()); err != nil {
		r.t.Fatal(err)
	}
	r.e.daemonReload()
}

// snapHook is a hook block of kind running /bin/sh -c script.
func snapHook(kind, script string) string {
	return fmt.Sprintf("  hook %q {\n    command = [\"/bin/sh\", \"-c\", %s]\n  }\n", kind, basicHCLString(script))
}

// snapSHA is the hex sha256 of s.
func snapSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// jobRunning brings the stack up, starts a backup in the background and waits until its
// job runs against the live stack (resumed after the snapshot). It returns the backup, the
// job's event and the stack's invocation while the job runs.
func (r *snapRig) jobRunning() (*basicBgRun, simEvent, string) {
	r.t.Helper()
	r.up()
	r.waitWriting(3)
	before := r.maxTask()
	b := r.startBackup()
	ev := r.waitStarted(before)
	r.expectUp("while the job runs")
	return b, ev, r.e.show(r.st.Unit, "InvocationID")["InvocationID"]
}

// up starts the stack; when its two containers do not both run, the failure shows what
// podman says about them.
func (r *snapRig) up() {
	r.t.Helper()
	if out, err := r.e.systemctl("start", r.st.Unit); err != nil {
		r.t.Fatalf("start %s: %v: %s; stack log: %s", r.st.Unit, err, oneLine(out), r.e.tail("stack-"+r.st.Name+".log"))
	}
	if c := r.e.runningContainers(r.st.Project); len(c) != 2 {
		ps, _ := r.e.podman("ps", "-a", "--filter", "label=io.podman.compose.project="+r.st.Project, "--format", "{{.Names}} {{.State}} {{.Status}}")
		logs, _ := r.e.podman("logs", r.st.Project+"_db_1")
		var errs []string
		for _, l := range strings.Split(r.e.unitLogFile("stack-"+r.st.Name+".log"), "\n") {
			if strings.Contains(strings.ToLower(l), "error") {
				errs = append(errs, strings.TrimSpace(l))
			}
		}
		r.t.Fatalf("after starting %s: running containers %v, want 2; podman ps -a: %s; db logs: %s; errors in the stack log: %q",
			r.st.Unit, c, oneLine(ps), oneLine(logs), errs)
	}
}

// df is the file system's size and free space (for the log).
func (r *snapRig) df() string {
	r.t.Helper()
	out, err := r.e.snapRun(false, "df", "-B1", "--output=size,avail,used", r.mnt)
	if err != nil {
		return err.Error()
	}
	return r.o.fs + " " + oneLine(out)
}
