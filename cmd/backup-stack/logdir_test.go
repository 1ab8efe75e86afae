package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otherUID owns what "someone else" planted; the tests that need it run as root.
const otherUID = 1234

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files of another uid")
	}
}

// logOnce logs one line through the stack logger with log_dir dir and returns what went
// to the journal (stderr).
func logOnce(t *testing.T, dir string) string {
	t.Helper()
	var stderr bytes.Buffer
	a := &App{Stderr: &stderr}
	log := a.logger(dir, "app", "run app")
	log.Info("first line")
	log.Info("second line")
	return stderr.String()
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestLogDirCreatedPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "backup-stack")
	if out := logOnce(t, dir); strings.Contains(out, "cannot write") {
		t.Fatalf("journal: %s", out)
	}
	if m := mode(t, dir); m.Perm() != 0o700 || !m.IsDir() {
		t.Errorf("log_dir mode %v, want drwx------", m)
	}
	if m := mode(t, filepath.Dir(dir)); m.Perm() != 0o700 {
		t.Errorf("created parent mode %v, want drwx------", m)
	}
	file := logPath(dir, "app", time.Now())
	if m := mode(t, file); m.Perm() != 0o600 || !m.IsRegular() {
		t.Errorf("log file mode %v, want -rw-------", m)
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "first line") || !strings.Contains(string(b), "second line") {
		t.Errorf("log file: %q", b)
	}
	// An existing log_dir of an older version (0755) is still used.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out := logOnce(t, dir); strings.Contains(out, "cannot write") {
		t.Fatalf("0755 log_dir refused: %s", out)
	}
	if excerpt := logExcerpt(context.Background(), dir, "app"); !strings.Contains(excerpt, "second line") {
		t.Errorf("excerpt %q", excerpt)
	}
}

// What another user plants, or a log_dir others can write to, gets nothing appended: a
// warning goes to the journal instead, and the log excerpt (sent to notification commands
// and the health ping) does not read it either.
func TestLogDirRefusesPlantedFiles(t *testing.T) {
	needRoot(t)
	const secret = "owner's private data\n"
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir, file, target string)
		want  string
	}{
		{"another uid's symlink to the owner's 0600 file", func(t *testing.T, dir, file, target string) {
			must(t, os.Symlink(target, file))
			must(t, os.Lchown(file, otherUID, otherUID))
		}, "is a symlink"},
		{"a symlink of the owner's", func(t *testing.T, dir, file, target string) {
			must(t, os.Symlink(target, file))
		}, "is a symlink"},
		{"a hard link to the owner's file", func(t *testing.T, dir, file, target string) {
			must(t, os.Link(target, file))
		}, "hard links"},
		{"another uid's file", func(t *testing.T, dir, file, target string) {
			must(t, os.WriteFile(file, []byte(secret), 0o600))
			must(t, os.Chown(file, otherUID, otherUID))
		}, "owned by uid 1234"},
		{"a named pipe", func(t *testing.T, dir, file, target string) {
			must(t, syscall.Mkfifo(file, 0o600))
		}, "not a regular file"},
		{"log_dir of another uid", func(t *testing.T, dir, file, target string) {
			must(t, os.Chown(dir, otherUID, otherUID))
		}, "log_dir " + "DIR is owned by uid 1234"},
		{"log_dir writable by the group", func(t *testing.T, dir, file, target string) {
			must(t, os.Chmod(dir, 0o770))
		}, "can be written by group or others (mode 0770)"},
		{"log_dir writable by others", func(t *testing.T, dir, file, target string) {
			must(t, os.Chmod(dir, os.ModeSticky|0o777))
		}, "can be written by group or others (mode 1777)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "logs")
			must(t, os.Mkdir(dir, 0o700))
			target := filepath.Join(base, "private")
			must(t, os.WriteFile(target, []byte(secret), 0o600))
			file := logPath(dir, "app", time.Now())
			tc.plant(t, dir, file, target)

			out := logOnce(t, dir)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			if !strings.Contains(out, "cannot write the log file") || !strings.Contains(out, want) {
				t.Errorf("journal %q, want a warning saying %q", out, want)
			}
			if n := strings.Count(out, "cannot write the log file"); n != 1 {
				t.Errorf("%d warnings, want one", n)
			}
			if b, _ := os.ReadFile(target); string(b) != secret {
				t.Errorf("the owner's file was written to: %q", b)
			}
			if fi, err := os.Lstat(file); err == nil && fi.Mode().IsRegular() {
				if b, _ := os.ReadFile(file); strings.Contains(string(b), "line") {
					t.Errorf("the planted file got the log: %q", b)
				}
			}
			if _, err := readLogTail(dir, filepath.Base(file)); err == nil {
				t.Error("the log excerpt reads the planted file")
			}
		})
	}
}

func TestLogDirSymlinkRefused(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	must(t, os.Mkdir(real, 0o700))
	link := filepath.Join(base, "logs")
	must(t, os.Symlink(real, link))
	out := logOnce(t, link)
	if !strings.Contains(out, "log_dir "+link+" is a symlink") {
		t.Errorf("journal %q, want the symlink refused", out)
	}
	if entries, _ := os.ReadDir(real); len(entries) != 0 {
		t.Errorf("written through the symlink: %v", entries)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
