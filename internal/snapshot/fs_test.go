package snapshot

// Tests on real file systems: images made by the test, on loop devices, as root. They skip
// (saying why) when not root or a tool is missing, and fail instead when
// BACKUP_STACK_E2E=require.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const imagePrefix = "snapshot-test-"

func TestMain(m *testing.M) {
	code := m.Run()
	// Nothing of ours may be left attached.
	if out, err := exec.Command("losetup", "-a").CombinedOutput(); err == nil {
		mine := fmt.Sprintf("%s%d-", imagePrefix, os.Getpid())
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, mine) {
				fmt.Fprintf(os.Stderr, "loop device left attached: %s\n", l)
				code = 1
			}
		}
	}
	os.Exit(code)
}

func requireFS(t testing.TB, tools ...string) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root: the file system tests make and mount loop devices"
	}
	for _, tool := range append([]string{"losetup", "mount", "umount", "truncate"}, tools...) {
		if why == "" {
			if _, err := exec.LookPath(tool); err != nil {
				why = tool + " missing (apt-get install btrfs-progs xfsprogs, or scripts/test-deps.sh)"
			}
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("BACKUP_STACK_E2E") == "require" {
		t.Fatalf("BACKUP_STACK_E2E=require: %s", why)
	}
	t.Skip(why)
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var out, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, stderr.String())
	}
	return strings.TrimSpace(out.String())
}

type fsKind string

const (
	kBtrfs fsKind = "btrfs"
	kXFS   fsKind = "xfs"
	kExt4  fsKind = "ext4"
)

var mkfsTool = map[fsKind]string{kBtrfs: "mkfs.btrfs", kXFS: "mkfs.xfs", kExt4: "mkfs.ext4"}

// newFS makes a file system of kind on a loop device of size ("300M") in the test's own temp
// dir and returns its mount point; cleanup unmounts it and detaches the device it got.
func newFS(t testing.TB, kind fsKind, size string, mkfsArgs ...string) string {
	t.Helper()
	var opts []string
	if kind == kBtrfs {
		opts = []string{"-o", "user_subvol_rm_allowed"}
	}
	return newFSMount(t, kind, size, opts, mkfsArgs...)
}

// newFSMount is newFS with mount's options (opts) given.
func newFSMount(t testing.TB, kind fsKind, size string, opts []string, mkfsArgs ...string) string {
	t.Helper()
	tools := []string{mkfsTool[kind]}
	if kind == kBtrfs {
		tools = append(tools, "btrfs")
	}
	requireFS(t, tools...)
	dir := t.TempDir()
	img := filepath.Join(dir, fmt.Sprintf("%s%d-%s.img", imagePrefix, os.Getpid(), kind))
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "truncate", "-s", size, img)
	switch kind {
	case kBtrfs:
		run(t, "mkfs.btrfs", append([]string{"-q"}, append(mkfsArgs, img)...)...)
	case kXFS:
		run(t, "mkfs.xfs", append([]string{"-q", "-m", "reflink=1"}, append(mkfsArgs, img)...)...)
	case kExt4:
		run(t, "mkfs.ext4", append([]string{"-q"}, append(mkfsArgs, img)...)...)
	}
	dev := run(t, "losetup", "--find", "--show", img)
	mounted := false
	t.Cleanup(func() {
		if mounted {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", mnt, err, out)
			}
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
		// detach is asynchronous when busy; wait a moment, then check.
		for i := 0; ; i++ {
			out, _ := exec.Command("losetup", "-a").CombinedOutput()
			if !strings.Contains(string(out), img) {
				break
			}
			if i == 50 {
				t.Errorf("%s still attached after cleanup: %s", img, out)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	run(t, "mount", append(opts, dev, mnt)...)
	mounted = true
	return mnt
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustNotExist(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still exists: %v", p, err)
	}
}

func entries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

func TestBtrfsSubvolumeSnapshot(t *testing.T) {
	mnt := newFS(t, kBtrfs, "300M")
	src := filepath.Join(mnt, "data")
	run(t, "btrfs", "subvolume", "create", src)
	writeFile(t, filepath.Join(src, "db", "file"), []byte("before"))
	into := filepath.Join(mnt, "snapshots")

	items, err := Plan([]string{src}, into, "web", Auto)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Method != Btrfs || items[0].Dest != filepath.Join(into, "web", "data") || items[0].FSType != "btrfs" {
		t.Fatalf("plan %+v", items)
	}
	ctx := context.Background()
	if err := Take(ctx, items); err != nil {
		t.Fatal(err)
	}
	dst := items[0].Dest
	if got := run(t, "btrfs", "property", "get", dst, "ro"); got != "ro=true" {
		t.Fatalf("snapshot not read-only: %q", got)
	}
	if err := os.WriteFile(filepath.Join(dst, "db", "new"), nil, 0o644); err == nil {
		t.Fatal("could write into the read-only snapshot")
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "db", "file")); string(b) != "before" {
		t.Fatalf("snapshot content %q", b)
	}
	writeFile(t, filepath.Join(src, "db", "file"), []byte("after, longer"))
	if b, _ := os.ReadFile(filepath.Join(dst, "db", "file")); string(b) != "before" {
		t.Fatalf("a write to the source changed the snapshot: %q", b)
	}
	// Take again: the existing (read-only) snapshot is replaced.
	if err := Take(ctx, items); err != nil {
		t.Fatalf("Take over a stale snapshot: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "db", "file")); string(b) != "after, longer" {
		t.Fatalf("stale snapshot not replaced: %q", b)
	}
	if err := Remove(ctx, items); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Dir(dst))
	if out := run(t, "btrfs", "subvolume", "list", mnt); strings.Contains(out, "snapshots") {
		t.Fatalf("subvolume left: %s", out)
	}
	if err := Remove(ctx, items); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestBtrfsRefusals(t *testing.T) {
	mnt := newFS(t, kBtrfs, "300M")
	plain := filepath.Join(mnt, "plain")
	writeFile(t, filepath.Join(plain, "f"), []byte("x"))
	into := filepath.Join(mnt, "snapshots")
	_, err := Plan([]string{plain}, into, "web", Btrfs)
	if err == nil || !strings.Contains(err.Error(), "not a btrfs subvolume") || !strings.Contains(err.Error(), plain) {
		t.Fatalf("btrfs on a plain directory: %v", err)
	}
	mustNotExist(t, into)
	// auto on the plain directory: btrfs has reflinks.
	items, err := Plan([]string{plain}, into, "web", Auto)
	if err != nil || items[0].Method != Reflink {
		t.Fatalf("auto on a plain btrfs directory: %+v %v", items, err)
	}
	// a subvolume holding a nested one: btrfs refused (the snapshot would leave it out), auto reflinks.
	outer := filepath.Join(mnt, "outer")
	run(t, "btrfs", "subvolume", "create", outer)
	run(t, "btrfs", "subvolume", "create", filepath.Join(outer, "inner"))
	if _, err := Plan([]string{outer}, into, "web", Btrfs); err == nil || !strings.Contains(err.Error(), "nested subvolume") {
		t.Fatalf("nested subvolume: %v", err)
	}
	if items, err := Plan([]string{outer}, into, "web", Auto); err != nil || items[0].Method != Reflink {
		t.Fatalf("auto, nested: %+v %v", items, err)
	}
	// the snapshot directory on another file system.
	other := t.TempDir()
	sub := filepath.Join(mnt, "sub")
	run(t, "btrfs", "subvolume", "create", sub)
	if _, err := Plan([]string{sub}, other, "web", Btrfs); err == nil || !strings.Contains(err.Error(), "same file system") {
		t.Fatalf("btrfs into another fs: %v", err)
	}
}

// removeTree removes a tree with read-only snapshots and plain directories in it, such as a
// stale destination not made by Take: the nested subvolumes are deleted with btrfs.
func TestRemoveTreeBtrfs(t *testing.T) {
	mnt := newFS(t, kBtrfs, "300M")
	a := filepath.Join(mnt, "a")
	run(t, "btrfs", "subvolume", "create", a)
	writeFile(t, filepath.Join(a, "f"), []byte("x"))
	into := filepath.Join(mnt, "snapshots")
	stackDir := filepath.Join(into, "web")
	os.MkdirAll(filepath.Join(stackDir, "plain", "deep"), 0o755)
	run(t, "btrfs", "subvolume", "snapshot", "-r", a, filepath.Join(stackDir, "a"))
	run(t, "btrfs", "subvolume", "snapshot", "-r", a, filepath.Join(stackDir, "plain", "deep", "nested"))
	if err := New(nil).removeTree(context.Background(), stackDir); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, stackDir)
	if out := run(t, "btrfs", "subvolume", "list", mnt); strings.Contains(out, "snapshots") {
		t.Fatalf("subvolume left: %s", out)
	}
}

func TestXFSReflink(t *testing.T) {
	mnt := newFS(t, kXFS, "300M")
	src := filepath.Join(mnt, "data")
	writeFile(t, filepath.Join(src, "sub", "file"), []byte("hello"))
	owned := filepath.Join(src, "owned")
	writeFile(t, owned, []byte("owned by 1234"))
	if err := os.Chown(owned, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	os.Chmod(owned, 0o640)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(owned, old, old)
	os.Symlink("sub/file", filepath.Join(src, "link"))
	os.Link(filepath.Join(src, "sub", "file"), filepath.Join(src, "hard"))
	os.Chmod(filepath.Join(src, "sub"), 0o750)
	big := filepath.Join(src, "big")
	writeFile(t, big, bytes.Repeat([]byte("0123456789abcdef"), 50<<20/16)) // 50 MiB
	syscall.Sync()

	into := filepath.Join(mnt, "snapshots")
	items, err := Plan([]string{src}, into, "web", Auto)
	if err != nil {
		t.Fatal(err)
	}
	if items[0].Method != Reflink || items[0].FSType != "xfs" {
		t.Fatalf("plan %+v", items)
	}
	before := freeBytes(t, mnt)
	if err := Take(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	syscall.Sync()
	used := before - freeBytes(t, mnt)
	t.Logf("the reflink copy of 50 MiB used %d KiB", used>>10)
	if used > 10<<20 {
		t.Errorf("the reflink copy used %d MiB: data not shared", used>>20)
	}
	dst := items[0].Dest
	for _, rel := range []string{".", "sub", "sub/file", "owned", "link", "hard", "big"} {
		a, err1 := os.Lstat(filepath.Join(src, rel))
		b, err2 := os.Lstat(filepath.Join(dst, rel))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		sa, sb := a.Sys().(*syscall.Stat_t), b.Sys().(*syscall.Stat_t)
		if a.Mode() != b.Mode() || sa.Uid != sb.Uid || sa.Gid != sb.Gid || a.Size() != b.Size() ||
			(!a.IsDir() && !a.ModTime().Equal(b.ModTime())) {
			t.Errorf("%s: source %v %d:%d %v, snapshot %v %d:%d %v", rel, a.Mode(), sa.Uid, sa.Gid, a.ModTime(), b.Mode(), sb.Uid, sb.Gid, b.ModTime())
		}
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "sub/file" {
		t.Errorf("symlink target %q", l)
	}
	h1, _ := os.Lstat(filepath.Join(dst, "hard"))
	h2, _ := os.Lstat(filepath.Join(dst, "sub", "file"))
	if !os.SameFile(h1, h2) {
		t.Error("hard link pair not kept")
	}
	if fi, _ := os.Lstat(filepath.Join(dst, "owned")); fi.Sys().(*syscall.Stat_t).Uid != 1234 {
		t.Error("ownership not kept")
	}
	// the copy is independent of the source
	writeFile(t, filepath.Join(src, "sub", "file"), []byte("changed"))
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "file")); string(b) != "hello" {
		t.Errorf("snapshot changed with the source: %q", b)
	}
	if err := Remove(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Dir(dst))

	// explicit reflink into another file system: refused.
	if _, err := Plan([]string{src}, t.TempDir(), "web", Reflink); err == nil || !strings.Contains(err.Error(), "different file systems") {
		t.Fatalf("reflink across file systems: %v", err)
	}
}

func freeBytes(t testing.TB, p string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func TestExt4(t *testing.T) {
	mnt := newFS(t, kExt4, "300M")
	src := filepath.Join(mnt, "data")
	writeFile(t, filepath.Join(src, "f"), bytes.Repeat([]byte("x"), 1<<20))
	into := filepath.Join(mnt, "snapshots")
	for _, m := range []Method{Auto, Reflink} {
		_, err := Plan([]string{src}, into, "web", m)
		if err == nil || !strings.Contains(err.Error(), "ext4") || !strings.Contains(err.Error(), `method = "copy"`) || !strings.Contains(err.Error(), src) {
			t.Fatalf("%s on ext4: %v", m, err)
		}
		t.Logf("%s on ext4 refused: %v", m, err)
	}
	mustNotExist(t, into)
	items, err := Plan([]string{src}, into, "web", Copy)
	if err != nil {
		t.Fatal(err)
	}
	if items[0].Method != Copy || items[0].Size != 1<<20 {
		t.Fatalf("plan %+v", items)
	}
	if err := Take(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(items[0].Dest, "f")); len(b) != 1<<20 {
		t.Fatalf("copy has %d bytes", len(b))
	}
	if err := Remove(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, items[0].Dest)

	// too full: 150 MiB of data on a 300M file system cannot be copied.
	writeFile(t, filepath.Join(src, "big"), bytes.Repeat([]byte("y"), 150<<20))
	_, err = Plan([]string{src}, into, "web", Copy)
	if err == nil || !strings.Contains(err.Error(), "free") {
		t.Fatalf("copy on a too full file system: %v", err)
	}
	t.Logf("copy refused: %v", err)
	mustNotExist(t, filepath.Join(into, "web"))
}

// A stale plain snapshot (a crash during a copy) is replaced; two paths with one base name.
func TestStaleCopyAndUniqueNames(t *testing.T) {
	mnt := newFS(t, kExt4, "300M")
	a := filepath.Join(mnt, "a", "data")
	b := filepath.Join(mnt, "b", "data")
	writeFile(t, filepath.Join(a, "f"), []byte("a"))
	writeFile(t, filepath.Join(b, "f"), []byte("b"))
	into := filepath.Join(mnt, "snapshots")
	writeFile(t, filepath.Join(into, "web", "data", "leftover"), []byte("stale"))
	items, err := Plan([]string{a, b}, into, "web", Copy)
	if err != nil {
		t.Fatal(err)
	}
	if err := Take(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Join(into, "web")); strings.Join(got, ",") != "data,data-2" {
		t.Fatalf("entries %q", got)
	}
	if got := entries(t, filepath.Join(into, "web", "data")); strings.Join(got, ",") != "f" {
		t.Fatalf("stale snapshot not replaced: %q", got)
	}
	for i, want := range []string{"a", "b"} {
		if c, _ := os.ReadFile(filepath.Join(items[i].Dest, "f")); string(c) != want {
			t.Errorf("%s: %q, want %q", items[i].Dest, c, want)
		}
	}
	if err := Remove(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Join(into, "web"))
}
