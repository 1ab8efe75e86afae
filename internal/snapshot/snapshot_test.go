package snapshot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeRunner records argv and fails the commands fail says; out is what a streamed
// command writes to its stdout.
type fakeRunner struct {
	calls [][]string
	fail  func(argv []string) error
	out   func(argv []string) string
}

func (f *fakeRunner) Stream(ctx context.Context, w io.Writer, name string, args ...string) error {
	if err := f.Run(ctx, name, args...); err != nil {
		return err
	}
	if f.out != nil && w != nil {
		out := f.out(append([]string{name}, args...))
		// In pieces, as a pipe delivers it.
		for len(out) > 0 {
			n := min(len(out), 7)
			if _, err := io.WriteString(w, out[:n]); err != nil {
				return err
			}
			out = out[n:]
		}
	}
	return nil
}

func (f *fakeRunner) Run(ctx context.Context, name string, args ...string) error {
	argv := append([]string{name}, args...)
	f.calls = append(f.calls, argv)
	if f.fail != nil {
		return f.fail(argv)
	}
	return nil
}

func TestTakeArgv(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "data")
	into := filepath.Join(dir, "snap", "s")
	items := []Item{
		{Source: src, Dest: filepath.Join(into, "a"), Method: Btrfs},
		{Source: src, Dest: filepath.Join(into, "b"), Method: Reflink},
		{Source: src, Dest: filepath.Join(into, "c"), Method: Copy},
	}
	f := &fakeRunner{}
	if err := New(f).Take(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"btrfs", "subvolume", "snapshot", "-r", src, filepath.Join(into, "a")},
		{"cp", "-a", "--reflink=always", "-T", "--", src, filepath.Join(into, "b")},
		{"cp", "-a", "-T", "--", src, filepath.Join(into, "c")},
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Fatalf("argv:\n got %q\nwant %q", f.calls, want)
	}
	if fi, err := os.Stat(into); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("Take should make %s 0700: %v %v", into, fi, err)
	}
}

func TestTakeRefusesBadItems(t *testing.T) {
	f := &fakeRunner{}
	s := New(f)
	for _, items := range [][]Item{
		{{Source: "/a", Dest: "/b/x", Method: Auto}},
		{{Source: "/a", Dest: "/b/x", Method: "zfs"}},
		{{Source: "a", Dest: "/b/x", Method: Copy}},
		{{Source: "/a", Dest: "/a/x", Method: Copy}},
		{{Source: "/a", Dest: "/b/x", Method: Copy}, {Source: "/c", Dest: "/b/x", Method: Copy}},
	} {
		if err := s.Take(context.Background(), items); err == nil {
			t.Errorf("Take(%v) = nil, want an error", items)
		}
	}
	if len(f.calls) != 0 {
		t.Fatalf("ran %q for refused items", f.calls)
	}
}

// A failing Take removes what it made: the earlier snapshot and the partial one.
func TestTakeFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	into := filepath.Join(dir, "snap", "s")
	items := []Item{
		{Source: "/src/a", Dest: filepath.Join(into, "a"), Method: Copy},
		{Source: "/src/b", Dest: filepath.Join(into, "b"), Method: Copy},
	}
	f := &fakeRunner{fail: func(argv []string) error {
		dst := argv[len(argv)-1]
		if err := os.MkdirAll(filepath.Join(dst, "sub"), 0o755); err != nil {
			return err
		}
		if strings.HasSuffix(dst, "/b") {
			return errors.New("disk full")
		}
		return nil
	}}
	err := New(f).Take(context.Background(), items)
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "/src/b") {
		t.Fatalf("err = %v, want the failure of /src/b", err)
	}
	for _, it := range items {
		if _, err := os.Lstat(it.Dest); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after a failed Take: %v", it.Dest, err)
		}
	}
}

func TestTakeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeRunner{}
	err := New(f).Take(ctx, []Item{{Source: "/a", Dest: filepath.Join(t.TempDir(), "x"), Method: Copy}})
	if !errors.Is(err, context.Canceled) || len(f.calls) != 0 {
		t.Fatalf("err = %v, calls %q; want context.Canceled and nothing run", err, f.calls)
	}
}

// Take replaces a stale (plain) snapshot; Remove of what is missing is no error.
func TestStaleReplacedAndRemoveMissing(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "s", "data")
	if err := os.MkdirAll(filepath.Join(dst, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, "ro", "old"), []byte("x"), 0o644)
	os.Chmod(filepath.Join(dst, "ro"), 0o555) // a copy keeps such modes; removal must cope
	var sawStale bool
	f := &fakeRunner{fail: func(argv []string) error {
		_, err := os.Lstat(dst)
		sawStale = err == nil
		return nil
	}}
	s := New(f)
	it := Item{Source: "/src/data", Dest: dst, Method: Copy}
	if err := s.Take(context.Background(), []Item{it}); err != nil {
		t.Fatal(err)
	}
	if sawStale {
		t.Fatal("the stale snapshot was still there when cp ran")
	}
	if err := s.Remove(context.Background(), []Item{it, it}); err != nil {
		t.Fatalf("Remove of what does not exist: %v", err)
	}
}

func TestRemoveJoinsErrors(t *testing.T) {
	s := New(&fakeRunner{})
	err := s.Remove(context.Background(), []Item{{Dest: ""}, {Dest: "relative"}})
	if err == nil || strings.Count(err.Error(), "not an absolute path") != 2 {
		t.Fatalf("err = %v, want both failures", err)
	}
}

func TestExecRunnerError(t *testing.T) {
	err := ExecRunner{}.Run(context.Background(), "sh", "-c", "echo boom >&2; exit 3")
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "boom") ||
		!strings.Contains(err.Error(), `sh -c "echo boom >&2; exit 3"`) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = ExecRunner{}.Run(ctx, "sleep", "10")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled sleep: %v after %v", err, time.Since(start))
	}
}

func TestPlanNamesAndCopy(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, p := range []string{"a/data", "b/data", "c/data", "d/data-2", "e/db"} {
		full := filepath.Join(dir, p)
		os.MkdirAll(full, 0o755)
		os.WriteFile(filepath.Join(full, "f"), make([]byte, 1000), 0o644)
		paths = append(paths, full)
	}
	// a hard link counts once
	os.Link(filepath.Join(dir, "e/db/f"), filepath.Join(dir, "e/db/g"))
	into := filepath.Join(dir, "snap")
	items, err := Plan(paths, into, "web", Copy)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range items {
		names = append(names, filepath.Base(it.Dest))
		if filepath.Dir(it.Dest) != filepath.Join(into, "web") || it.Method != Copy || it.Size != 1000 {
			t.Errorf("item %+v", it)
		}
	}
	if want := []string{"data", "data-2", "data-3", "data-2-2", "db"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	if _, err := os.Lstat(into); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Plan created %s", into)
	}
}

func TestPlanRefusals(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	into := filepath.Join(dir, "snap")
	cases := []struct {
		paths       []string
		into, stack string
		m           Method
		want        string
	}{
		{[]string{data}, into, "s", "zfs", "method"},
		{[]string{data}, "rel", "s", Copy, "absolute"},
		{[]string{data}, into, "", Copy, "stack name"},
		{[]string{data}, into, "a/b", Copy, "stack name"},
		{[]string{data}, into, "..", Copy, "stack name"},
		{nil, into, "s", Copy, "no paths"},
		{[]string{"data"}, into, "s", Copy, "absolute"},
		{[]string{filepath.Join(dir, "missing")}, into, "s", Copy, "no such file"},
		{[]string{data, data + "/"}, into, "s", Copy, "the same"},
		{[]string{data}, filepath.Join(data, "snap"), "s", Copy, "overlap"},
		{[]string{dir}, into, "s", Copy, "overlap"},
		{[]string{"/"}, "/x", "s", Copy, "overlap"},
		{[]string{data}, into, "s", Btrfs, "not a btrfs subvolume"},
	}
	for _, c := range cases {
		_, err := Plan(c.paths, c.into, c.stack, c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Plan(%q, %q, %q, %q) = %v, want an error with %q", c.paths, c.into, c.stack, c.m, err, c.want)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	m, ok := parseMountinfoLine(`36 35 98:0 /mnt1 /mnt/my\040disk rw,noatime master:1 - btrfs /dev/loop3 rw,user_subvol_rm_allowed,subvol=/`)
	if !ok || m.point != "/mnt/my disk" || m.fsType != "btrfs" || m.source != "/dev/loop3" ||
		!hasOption(m.superOptions, "user_subvol_rm_allowed") || m.devID != "98:0" || m.root != "/mnt1" {
		t.Fatalf("%+v %v", m, ok)
	}
	tab := mountTable{{id: 1, point: "/"}, {id: 2, point: "/mnt"}, {id: 3, point: "/mnt/a"}, {id: 4, point: "/mnt"}}
	for p, id := range map[string]int{"/x": 1, "/mnt": 4, "/mnt/ab": 4, "/mnt/a/b": 3} {
		if got := tab.find(p); got == nil || got.id != id {
			t.Errorf("find(%s) = %+v, want id %d", p, got, id)
		}
	}
}

// With Unshare the copies and the removal of a copied tree run in `podman unshare` (a
// rootless user's sub-UID files), btrfs commands do not.
func TestUnshareArgv(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "data")
	into := filepath.Join(dir, "snap", "s")
	items := []Item{
		{Source: src, Dest: filepath.Join(into, "a"), Method: Btrfs},
		{Source: src, Dest: filepath.Join(into, "b"), Method: Reflink},
		{Source: src, Dest: filepath.Join(into, "c"), Method: Copy},
	}
	f := &fakeRunner{}
	s := New(f)
	s.Unshare = true
	if err := s.Take(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	// A stale copied tree, as a crash leaves it: removed through rm in the namespace.
	if err := os.MkdirAll(filepath.Join(into, "c", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(context.Background(), items[2:]); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"btrfs", "subvolume", "snapshot", "-r", src, filepath.Join(into, "a")},
		{"podman", "unshare", "cp", "-a", "--reflink=always", "-T", "--", src, filepath.Join(into, "b")},
		{"podman", "unshare", "cp", "-a", "-T", "--", src, filepath.Join(into, "c")},
		{"podman", "unshare", "rm", "-rf", "--one-file-system", "--", filepath.Join(into, "c")},
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Fatalf("argv:\n got %q\nwant %q", f.calls, want)
	}
}
