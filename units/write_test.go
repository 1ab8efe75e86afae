package units

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sampleFiles is what Render gives for n stacks, as far as the writer
// cares: templates at the top, three drop-in directories per stack and a
// symlink in timers.target.wants.
func sampleFiles(n int) []File {
	files := []File{
		{Path: "backup@.service", Content: []byte(Header + "[Service]\nType=oneshot\n")},
		{Path: "backup@.timer", Content: []byte(Header + "[Timer]\nPersistent=yes\n")},
	}
	for i := range n {
		s := fmt.Sprintf("stack%04d", i)
		body := []byte(Header + "[Unit]\nSourcePath=/home/u/.config/backup-stack/stacks/" + s + ".hcl\n" + strings.Repeat("ExecStartPre=/usr/local/bin/backup-stack gate "+s+"\n", 10))
		files = append(files,
			File{Path: "backup@" + s + ".service.d/50-stack.conf", Content: body},
			File{Path: "backup-hold@" + s + ".service.d/50-stack.conf", Content: body[:200]},
			File{Path: "backup@" + s + ".timer.d/50-schedule.conf", Content: body[:150]},
			File{Path: "timers.target.wants/backup@" + s + ".timer", Link: "../backup@.timer"},
		)
	}
	return files
}

// checkTree asserts that dir holds exactly files, with no temporary files
// left behind.
func checkTree(t *testing.T, dir string, files []File) {
	t.Helper()
	want := map[string]File{}
	for _, f := range files {
		want[filepath.FromSlash(f.Path)] = f
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, ok := want[rel]
		if !ok {
			t.Errorf("unexpected file %s", rel)
			return nil
		}
		seen++
		if f.Link != "" {
			if got, err := os.Readlink(p); err != nil || got != f.Link {
				t.Errorf("%s -> %q (%v), want -> %q", rel, got, err, f.Link)
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v %v", rel, fi, err)
			return nil
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, f.Content) {
			t.Errorf("%s has %q, want %q", rel, got, f.Content)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("%d files, want %d", seen, len(want))
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	files := sampleFiles(5)
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dir, files)
}

// TestWriteIsExclusive: the manager empties the generator directory before
// each run, so a file that exists means two files of one name (or a
// directory that is not the generator's): it is refused, never replaced,
// and the other files are still written.
func TestWriteIsExclusive(t *testing.T) {
	dir := t.TempDir()
	files := sampleFiles(2)
	if err := os.MkdirAll(filepath.Join(dir, "backup@stack0001.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	taken := filepath.Join(dir, "backup@stack0001.service.d", "50-stack.conf")
	if err := os.WriteFile(taken, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../elsewhere", filepath.Join(dir, "backup@.timer")); err != nil {
		t.Fatal(err)
	}
	err := Write(dir, files)
	if err == nil || !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), taken) {
		t.Fatalf("err %v, want file exists for %s", err, taken)
	}
	if b, _ := os.ReadFile(taken); string(b) != "mine" {
		t.Errorf("an existing file was overwritten: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "backup@.timer")); l != "../elsewhere" {
		t.Errorf("an existing link was replaced: %q", l)
	}
	if _, err := os.Stat(filepath.Join(dir, "backup-hold@stack0001.service.d", "50-stack.conf")); err != nil {
		t.Errorf("the other files were not written: %v", err)
	}
}

func TestWriteModeFollowsUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := Write(dir, sampleFiles(1)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "backup@stack0000.service.d", "50-stack.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}
}

// TestWriteKeepsGoing: a file that cannot be written is reported and the
// others are still written.
func TestWriteKeepsGoing(t *testing.T) {
	dir := t.TempDir()
	files := sampleFiles(2)
	// A regular file where a drop-in directory must go.
	if err := os.WriteFile(filepath.Join(dir, "backup@stack0000.service.d"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(dir, files)
	if err == nil || !strings.Contains(err.Error(), "backup@stack0000.service.d") {
		t.Fatalf("err %v", err)
	}
	var rest []File
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "backup@stack0000.service.d/") {
			rest = append(rest, f)
		}
	}
	if err := os.Remove(filepath.Join(dir, "backup@stack0000.service.d")); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dir, rest)
}

func TestWriteCreatesMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	files := sampleFiles(1)
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dir, files)
}

// BenchmarkWrite100 writes the 401 files of 100 stacks into a new
// directory (on /dev/shm when there is one), as the generator does.
func BenchmarkWrite100(b *testing.B) {
	base := b.TempDir()
	{
		d := "/dev/shm"
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			base, _ = os.MkdirTemp(d, "units-bench-")
			b.Cleanup(func() { os.RemoveAll(base) })
		}
	}
	files := sampleFiles(100)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(base, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := Write(dir, files); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWriteErrorsInFileOrder: files are written concurrently, yet the
// joined error lists the failures in the order of files, every time.
func TestWriteErrorsInFileOrder(t *testing.T) {
	files := sampleFiles(40)
	var want []string
	for i := 0; i < 40; i += 7 {
		want = append(want, fmt.Sprintf("backup@stack%04d.service.d", i))
	}
	for range 10 {
		dir := t.TempDir()
		for _, d := range want {
			if err := os.WriteFile(filepath.Join(dir, d), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		err := Write(dir, files)
		if err == nil {
			t.Fatal("no error")
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(want) {
			t.Fatalf("%d errors, want %d: %v", len(lines), len(want), err)
		}
		for i, l := range lines {
			if !strings.Contains(l, want[i]+"/") {
				t.Fatalf("error %d is %q, want one about %s", i, l, want[i])
			}
		}
	}
}

// TestRemoveOwn: what an earlier run of this generator left (a manager
// that was SIGKILLed does not empty its generator directories) goes; what
// other generators wrote stays.
func TestRemoveOwn(t *testing.T) {
	dir := t.TempDir()
	old := sampleFiles(2)
	old = append(old, File{Path: "default.target.wants/backup-recover.service", Link: "../backup-recover.service"},
		File{Path: "backup-recover.service", Content: []byte("x")})
	others := []File{
		{Path: "xdg-autostart.service", Content: []byte("[Unit]\n")},
		{Path: "default.target.wants/other.service", Link: "../other.service"},
		{Path: "timers.target.wants/other.timer", Link: "../other.timer"},
		{Path: "mybackup@.service", Content: []byte("[Unit]\n")},
	}
	if err := Write(dir, append(old, others...)); err != nil {
		t.Fatal(err)
	}
	if err := RemoveOwn(dir); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dir, others)
	// And the generator can write into it again.
	if err := Write(dir, old); err != nil {
		t.Fatalf("writing after RemoveOwn: %v", err)
	}
	if err := RemoveOwn(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing directory: %v", err)
	}
}

// TestWriterAsWrite: the streaming Writer makes the same tree as Write, from
// batches of one stack, makes a missing output directory, and reports a
// file that exists already with Write's message, in the order of the files.
func TestWriterAsWrite(t *testing.T) {
	files := sampleFiles(50)
	dir := filepath.Join(t.TempDir(), "out") // missing: made, as Write does
	w := NewWriter(dir)
	w.Add(files[:2])
	for i := 2; i < len(files); i += 4 {
		w.Add(files[i : i+4])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dir, files)

	w = NewWriter(dir)
	w.Add(files[2:4])
	w.Add(files[6:7])
	err := w.Close()
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("rewrite: %v, want a file exists error", err)
	}
	want := Write(dir, append(append([]File{}, files[2:4]...), files[6]))
	if err.Error() != want.Error() {
		t.Errorf("Writer: %v\nWrite:  %v", err, want)
	}
}
