package snapshot

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// deniedAfter is a local walk that visits n made-up entries and then meets a directory it
// may not read, as an unprivileged user meets a container user's 0700 directory.
func deniedAfter(n int) func(string, bool, func(entry) error) error {
	return func(root string, _ bool, visit func(entry) error) error {
		for i := range n {
			if err := visit(entry{path: filepath.Join(root, "seen", string(rune('a'+i))), dev: 9, ino: uint64(100 + i), nlink: 1, size: 1000, plain: true}); err != nil {
				return err
			}
		}
		return &fs.PathError{Op: "open", Path: filepath.Join(root, "private"), Err: fs.ErrPermission}
	}
}

// findOut is what `find root -printf unshareFindFormat` prints for records.
func findOut(records ...string) string { return strings.Join(records, "\x00") + "\x00" }

// A tree with a directory this user cannot read is measured again in podman unshare, from
// find's records of everything but directories (read in pieces), with nothing of the first
// walk counted: each inode once, symlinks by their size, and any byte but NUL in a name.
func TestTreeSizeInUnshare(t *testing.T) {
	root := "/data/db"
	var argv []string
	f := &fakeRunner{out: func(a []string) string {
		argv = a
		return findOut(
			"2049 300 1 10 f /data/db/a file",
			"2049 301 2 5 f /data/db/hard-1",
			"2049 301 2 5 f /data/db/hard-2",
			"2049 302 1 3 l /data/db/link",
			"2049 304 1 7 f /data/db/private/key",
			"2049 305 1 11 f /data/db/new\nline",
		)
	}}
	s := New(f)
	s.Unshare = true
	s.localWalk = deniedAfter(3)
	n, err := s.treeSize(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if n != 10+5+3+7+11 {
		t.Errorf("size %d, want %d", n, 10+5+3+7+11)
	}
	if want := []string{"podman", "unshare", "find", root, "!", "-type", "d", "-printf", unshareFindFormat}; !reflect.DeepEqual(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
}

// Without Unshare (root, or no podman), and for any error but a permission one, the local
// walk's error is the answer and no command runs.
func TestTreeSizeLocalErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		unshare bool
		walk    func(string, bool, func(entry) error) error
		want    error
	}{
		{"denied, no unshare", false, deniedAfter(1), fs.ErrPermission},
		{"gone, unshare", true, func(string, bool, func(entry) error) error { return fs.ErrNotExist }, fs.ErrNotExist},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeRunner{}
			s := New(f)
			s.Unshare, s.localWalk = c.unshare, c.walk
			if _, err := s.treeSize(context.Background(), "/data"); !errors.Is(err, c.want) {
				t.Errorf("err %v, want %v", err, c.want)
			}
			if len(f.calls) != 0 {
				t.Errorf("ran %q", f.calls)
			}
		})
	}
}

// A failed find, a record find did not write and output cut short are errors that name
// both walks; nothing is guessed.
func TestTreeSizeUnshareFails(t *testing.T) {
	for _, c := range []struct {
		name, out string
		fail      error
		want      string
	}{
		{name: "find fails", fail: errors.New("exit status 1: find: '/data/x': Permission denied"), want: "Permission denied"},
		{name: "bad record", out: findOut("2049 299 1 5 f /data/z", "2049 x 1 5 f /data/a"), want: `bad record "2049 x 1 5 f /data/a"`},
		{name: "no type", out: findOut("2049 300 1 5"), want: "bad record"},
		{name: "cut short", out: "2049 299 1 5 f /data/z\x002049 300 1 5 f /data/a", want: "without a NUL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeRunner{out: func([]string) string { return c.out }}
			if c.fail != nil {
				f.fail = func([]string) error { return c.fail }
			}
			s := New(f)
			s.Unshare, s.localWalk = true, deniedAfter(0)
			_, err := s.treeSize(context.Background(), "/data")
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "podman unshare") {
				t.Errorf("err %v, want one with %q, the local permission error and podman unshare", err, c.want)
			}
		})
	}
}

// The look for nested subvolumes reads the same records: the root's own inode 256 is not
// one; a directory with inode 256 or on another device below it is.
func TestNestedSubvolumeInUnshare(t *testing.T) {
	for _, c := range []struct {
		name, want string
		records    []string
	}{
		{"none", "", []string{"40 256 1 0 d /v", "40 257 1 0 d /v/private", "40 258 1 9 f /v/private/256"}},
		{"inode 256", "/v/private/sub", []string{"40 256 1 0 d /v", "40 257 1 0 d /v/private", "41 256 1 0 d /v/private/sub", "41 257 1 0 d /v/private/sub/x"}},
		{"other device", "/v/mnt", []string{"40 256 1 0 d /v", "77 2 1 0 d /v/mnt"}},
		{"a file is not one", "", []string{"40 256 1 0 d /v", "40 256 2 9 f /v/hard"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var argv []string
			f := &fakeRunner{out: func(a []string) string { argv = a; return findOut(c.records...) }}
			s := New(f)
			s.Unshare, s.localWalk = true, deniedAfter(2)
			got, err := s.nestedSubvolume(context.Background(), "/v")
			if err != nil || got != c.want {
				t.Errorf("nested %q, %v; want %q", got, err, c.want)
			}
			if want := []string{"podman", "unshare", "find", "/v", "-type", "d", "-printf", unshareFindFormat}; !reflect.DeepEqual(argv, want) {
				t.Errorf("argv %q, want %q", argv, want)
			}
		})
	}
}

// The local walk, as used for a path this user can read, agrees with find's records of the
// same tree, for both kinds (when GNU find is there).
func TestWalkLocalAgreesWithFind(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a b", "f"), []byte("12345"))
	writeFile(t, filepath.Join(dir, "g"), []byte("1"))
	if err := os.Link(filepath.Join(dir, "g"), filepath.Join(dir, "g2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a b/f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	for _, dirs := range []bool{true, false} {
		var local []entry
		if err := walkLocal(dir, dirs, func(e entry) error { local = append(local, e); return nil }); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("find", append([]string{dir}, findArgs(dirs)...)...).Output()
		if err != nil {
			t.Skipf("no GNU find here: %v", err)
		}
		var found []entry
		w := &recordWriter{visit: func(e entry) error { found = append(found, e); return nil }}
		if _, err := w.Write(out); err != nil || w.err != nil || len(w.buf) != 0 {
			t.Fatalf("records: %v %v %q", err, w.err, w.buf)
		}
		// find gives the directory's order, WalkDir the lexical one.
		byPath := func(a, b entry) int { return strings.Compare(a.path, b.path) }
		slices.SortFunc(local, byPath)
		slices.SortFunc(found, byPath)
		if want := map[bool]int{true: 2, false: 4}[dirs]; len(local) != want || !reflect.DeepEqual(local, found) {
			t.Errorf("dirs %v: local walk %+v\nfind %+v\nwant %d entries, the same", dirs, local, found, want)
		}
	}
	if n, err := New(nil).treeSize(context.Background(), dir); err != nil || n != 5+1+int64(len("a b/f")) {
		t.Errorf("treeSize %d %v, want %d", n, err, 5+1+len("a b/f"))
	}
}
