package units

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// snapshot lists everything below dir: path -> "file:<content>", "link:<target>" or "dir".
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			out[rel] = "link:" + l
			return err
		case d.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			out[rel] = "file:" + string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stackFiles(names ...string) []File {
	files := []File{{Path: "backup@.service", Content: []byte("[Service]\nExecStart=/x run %i\n")}}
	for _, n := range names {
		files = append(files,
			File{Path: "backup@" + n + ".service.d/50-stack.conf", Content: []byte("# " + n + "\n")},
			File{Path: "timers.target.wants/backup@" + n + ".timer", Link: "../backup@.timer"},
		)
	}
	return files
}

func manifestPaths(t *testing.T, dir string) []string {
	t.Helper()
	m, err := readManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m.sorted()
}

func TestWriteManagedStaleRemoval(t *testing.T) {
	dir := t.TempDir()
	// The user's own files in the same directory, one inside a drop-in
	// directory that backup-generator also uses.
	mine := map[string]string{
		"mine.service":                   "[Service]\nExecStart=/bin/true\n",
		"backup@.service.d/90-mine.conf": "[Service]\nNice=5\n",
	}
	for p, c := range mine {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := WriteManaged(dir, stackFiles("a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 5 || len(res.Removed) != 0 {
		t.Fatalf("first run: %+v", res)
	}
	want := []string{"backup@.service", "backup@a.service.d", "backup@a.service.d/50-stack.conf",
		"backup@b.service.d", "backup@b.service.d/50-stack.conf", "timers.target.wants",
		"timers.target.wants/backup@a.timer", "timers.target.wants/backup@b.timer"}
	if got := manifestPaths(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("manifest = %v, want %v", got, want)
	}

	// Stack a goes away.
	res, err = WriteManaged(dir, stackFiles("b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 0 || len(res.Unchanged) != 3 {
		t.Errorf("second run wrote %v, unchanged %v", res.Written, res.Unchanged)
	}
	wantRemoved := []string{"backup@a.service.d/", "backup@a.service.d/50-stack.conf", "timers.target.wants/backup@a.timer"}
	if !reflect.DeepEqual(res.Removed, wantRemoved) {
		t.Errorf("removed %v, want %v", res.Removed, wantRemoved)
	}
	snap := snapshot(t, dir)
	for p, c := range mine {
		if snap[p] != "file:"+c {
			t.Errorf("user file %s = %q, want untouched", p, snap[p])
		}
	}
	if _, ok := snap["backup@a.service.d"]; ok {
		t.Error("backup@a.service.d (created by backup-generator, now empty) still there")
	}
	if snap["timers.target.wants/backup@b.timer"] != "link:../backup@.timer" {
		t.Errorf("b's timer link: %q", snap["timers.target.wants/backup@b.timer"])
	}

	// No stacks: everything of ours goes, the user's files and the
	// directory they share with us stay, and so does the manifest entry
	// for nothing (the manifest itself is gone).
	if _, err := RemoveManaged(dir); err != nil {
		t.Fatal(err)
	}
	snap = snapshot(t, dir)
	wantSnap := map[string]string{
		"mine.service":                   "file:" + mine["mine.service"],
		"backup@.service.d":              "dir",
		"backup@.service.d/90-mine.conf": "file:" + mine["backup@.service.d/90-mine.conf"],
	}
	if !reflect.DeepEqual(snap, wantSnap) {
		t.Errorf("after RemoveManaged: %v, want %v", snap, wantSnap)
	}
}

func TestWriteManagedKeepsDirWithForeignFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteManaged(dir, stackFiles("a")); err != nil {
		t.Fatal(err)
	}
	// The user adds their own drop-in next to ours.
	theirs := filepath.Join(dir, "backup@a.service.d", "90-mine.conf")
	if err := os.WriteFile(theirs, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := RemoveManaged(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(theirs); err != nil || string(b) != "x" {
		t.Fatalf("their drop-in: %q, %v", b, err)
	}
	for _, p := range res.Removed {
		if p == "backup@a.service.d/" {
			t.Error("removed a directory that still holds a foreign file")
		}
	}
	// Still tracked, so that it goes once it is empty.
	if got := manifestPaths(t, dir); !reflect.DeepEqual(got, []string{"backup@a.service.d"}) {
		t.Fatalf("manifest = %v", got)
	}
	if err := os.Remove(theirs); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveManaged(dir); err != nil {
		t.Fatal(err)
	}
	if snap := snapshot(t, dir); len(snap) != 0 {
		t.Fatalf("left behind: %v", snap)
	}
}

func TestWriteManagedRefusesForeignFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(dir string) error
		path  string
	}{
		{"file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "backup@.service"), []byte("mine"), 0o644)
		}, "backup@.service"},
		{"identical content", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "backup@.service"), stackFiles()[0].Content, 0o644)
		}, "backup@.service"},
		{"drop-in", func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "backup@b.service.d"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "backup@b.service.d", "50-stack.conf"), []byte("mine"), 0o644)
		}, "backup@b.service.d/50-stack.conf"},
		{"symlink", func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "timers.target.wants"), 0o755); err != nil {
				return err
			}
			return os.Symlink("/elsewhere", filepath.Join(dir, "timers.target.wants", "backup@b.timer"))
		}, "timers.target.wants/backup@b.timer"},
		{"file where a directory goes", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "timers.target.wants"), nil, 0o644)
		}, "timers.target.wants"},
		{"directory where a file goes", func(dir string) error {
			return os.MkdirAll(filepath.Join(dir, "backup@.service"), 0o755)
		}, "backup@.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// A managed stack a exists already; stack b is new.
			if _, err := WriteManaged(dir, stackFiles("a")); err != nil {
				t.Fatal(err)
			}
			if tc.path == "backup@.service" || tc.path == "timers.target.wants" {
				// Make the path foreign: start from a directory without a manifest.
				dir = t.TempDir()
			}
			if err := tc.setup(dir); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			_, err := WriteManaged(dir, stackFiles("b"))
			var fe *ForeignFileError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a ForeignFileError", err)
			}
			if !reflect.DeepEqual(fe.Paths, []string{tc.path}) {
				t.Errorf("foreign paths %v, want [%s]", fe.Paths, tc.path)
			}
			if msg := err.Error(); !strings.Contains(msg, "refusing to overwrite "+tc.path) || !strings.Contains(msg, "nothing was changed") {
				t.Errorf("message %q", msg)
			}
			if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
				t.Errorf("refused run changed the directory:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestWriteManagedUnchangedKeepsMtime(t *testing.T) {
	dir := t.TempDir()
	files := stackFiles("a")
	if _, err := WriteManaged(dir, files); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, p := range []string{"backup@.service", "backup@a.service.d/50-stack.conf", ManifestName} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	res, err := WriteManaged(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written)+len(res.Removed) != 0 {
		t.Errorf("second identical run: %+v", res)
	}
	for _, p := range []string{"backup@.service", "backup@a.service.d/50-stack.conf", ManifestName} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(old) {
			t.Errorf("%s rewritten by an identical run (mtime %v)", p, fi.ModTime())
		}
	}
	// A changed file is rewritten, the others are not.
	files[1].Content = []byte("# a, changed\n")
	res, err = WriteManaged(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Written, []string{"backup@a.service.d/50-stack.conf"}) {
		t.Errorf("written %v", res.Written)
	}
}

// TestWriteManagedAtomic rewrites files while readers look at them: a
// reader sees the old or the new content, never a part, and no temporary
// file is left behind.
func TestWriteManagedAtomic(t *testing.T) {
	dir := t.TempDir()
	big := func(c byte) []byte { return []byte(strings.Repeat(string(c), 256<<10)) }
	v1 := []File{{Path: "backup@.service", Content: big('1')}, {Path: "backup@a.service.d/50-stack.conf", Content: big('1')}}
	v2 := []File{{Path: "backup@.service", Content: big('2')}, {Path: "backup@a.service.d/50-stack.conf", Content: big('2')}}
	if _, err := WriteManaged(dir, v1); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var bad atomic.Value
	var wg sync.WaitGroup
	for _, p := range []string{"backup@.service", "backup@a.service.d/50-stack.conf"} {
		wg.Add(1)
		go func(p string) {
			defer wg.Done()
			for !stop.Load() {
				b, err := os.ReadFile(filepath.Join(dir, p))
				if err != nil {
					bad.Store(p + ": " + err.Error())
					return
				}
				if !(string(b) == string(v1[0].Content) || string(b) == string(v2[0].Content)) {
					bad.Store(p + ": partial content")
					return
				}
			}
		}(p)
	}
	for i := 0; i < 40; i++ {
		v := v1
		if i%2 == 0 {
			v = v2
		}
		if _, err := WriteManaged(dir, v); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
	var names []string
	for p := range snapshot(t, dir) {
		names = append(names, p)
	}
	sort.Strings(names)
	want := []string{ManifestName, "backup@.service", "backup@a.service.d", "backup@a.service.d/50-stack.conf"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("files %v, want %v (temporary files left?)", names, want)
	}
}

// TestWriteManagedAfterCrash: a run that died after writing its intent
// manifest and part of the files leaves a state the next run completes
// without calling its own files foreign.
func TestWriteManagedAfterCrash(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteManaged(dir, stackFiles("a")); err != nil {
		t.Fatal(err)
	}
	// What a run for stacks b (instead of a) had done when it was killed:
	// intent = old ∪ new written, one new file written, nothing removed.
	intent, err := readManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stackFiles("b") {
		intent.add(f.Path, kindOf(f))
	}
	intent.add("backup@b.service.d", 'd')
	if err := writeManifest(dir, intent); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "backup@b.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backup@b.service.d/50-stack.conf"), []byte("# b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteManaged(dir, stackFiles("b")); err != nil {
		t.Fatalf("run after a crash: %v", err)
	}
	fresh := t.TempDir()
	if _, err := WriteManaged(fresh, stackFiles("b")); err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, dir), snapshot(t, fresh); !reflect.DeepEqual(got, want) {
		t.Errorf("after recovery:\n%v\nwant (fresh run)\n%v", got, want)
	}
}

func TestRemoveManagedMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := RemoveManaged(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveManaged created %s", dir)
	}
}

func TestWriteManagedBadManifest(t *testing.T) {
	for _, content := range []string{
		"f /etc/passwd\n",
		"f ../outside\n",
		"x backup@.service\n",
		"f a/../../b\n",
		"fbackup@.service\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, dir)
		if _, err := WriteManaged(dir, stackFiles("a")); err == nil {
			t.Errorf("manifest %q accepted", content)
		}
		if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
			t.Errorf("manifest %q: directory changed", content)
		}
	}
}

func TestWriteManagedBadPath(t *testing.T) {
	for _, p := range []string{"/abs", "../up", "a/../b", ManifestName, "", "a//b"} {
		if _, err := WriteManaged(t.TempDir(), []File{{Path: p, Content: []byte("x")}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
}
