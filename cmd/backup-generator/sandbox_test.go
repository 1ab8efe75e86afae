package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWritesOnlyIntoItsDirAndRunsNothing runs the built generator the way
// a user manager does (HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR set), with
// HOME and XDG_RUNTIME_DIR read-only (a read-only bind mount in a private
// mount namespace as root, where file modes do not stop writes; mode 0555
// otherwise), under strace. It asserts that the units were generated, that
// every file system change the process asked for (open for writing or
// create, mkdir, symlink, rename, unlink, link) named a path inside the
// output directory, and that it executed no program but itself.
func TestWritesOnlyIntoItsDirAndRunsNothing(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed (scripts/test-deps.sh installs it): cannot watch the generator's system calls")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin", "backup-generator")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(root, "home")
	runtime := filepath.Join(root, "run")
	out := filepath.Join(root, "out", "generator")
	cfg := filepath.Join(home, ".config", "backup-stack")
	for _, d := range []string{filepath.Join(cfg, "stacks"), runtime, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stack := "stack \"a\" {\n  jobs = [\"a\"]\n  schedule = \"daily\"\n  on_demand {\n    socket = \"a.socket\"\n  }\n" +
		"  hook \"pre_stop\" {\n    command = [\"true\"]\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(cfg, "stacks", "a.hcl"), []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "backup-stack"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(root, "trace")
	argv := []string{strace, "-f", "-qq", "-o", trace, "-e",
		"trace=execve,execveat,open,openat,openat2,creat,mkdir,mkdirat,symlink,symlinkat,rename,renameat,renameat2,unlink,unlinkat,link,linkat,truncate",
		bin, out, filepath.Join(root, "out", "early"), filepath.Join(root, "out", "late")}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		script := `set -e; mount --make-rprivate /; mount --bind -o ro "$H" "$H"; mount -o remount,bind,ro "$H"; ` +
			`mount --bind -o ro "$R" "$R"; mount -o remount,bind,ro "$R"; ` +
			`if touch "$H/probe" 2>/dev/null || touch "$R/probe" 2>/dev/null; then echo "not read-only" >&2; exit 99; fi; exec "$@"`
		cmd = exec.Command("unshare", append([]string{"--mount", "sh", "-c", script, "sh"}, argv...)...)
	} else {
		for _, d := range []string{home, runtime} {
			if err := os.Chmod(d, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(d, 0o755) })
		}
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_RUNTIME_DIR=" + runtime,
		"SYSTEMD_SCOPE=user", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "H=" + home, "R=" + runtime}
	if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(out, "backup@a.service.d", "50-stack.conf")); err != nil {
		t.Fatalf("nothing generated: %v", err)
	}
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var execs, writes int
	quoted := regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
	for _, line := range strings.Split(string(raw), "\n") {
		call, _, ok := strings.Cut(line, "(")
		if !ok {
			continue
		}
		call = call[strings.LastIndexByte(call, ' ')+1:]
		paths := quoted.FindAllStringSubmatch(line, -1)
		switch call {
		case "execve", "execveat":
			execs++
			if len(paths) == 0 || paths[0][1] != bin {
				t.Errorf("the generator ran a program: %s", line)
			}
			continue
		case "open", "openat", "openat2":
			if !strings.Contains(line, "O_WRONLY") && !strings.Contains(line, "O_RDWR") && !strings.Contains(line, "O_CREAT") {
				continue
			}
		}
		writes++
		for _, p := range paths {
			if s := p[1]; strings.HasPrefix(s, "/") && !strings.HasPrefix(s, out+"/") && s != out {
				// The symlink target "../backup@.timer" is relative; every absolute
				// path a changing call names must be inside the output directory.
				t.Errorf("write outside the output directory: %s", line)
			}
			if s := p[1]; !strings.HasPrefix(s, "/") && call != "symlink" && call != "symlinkat" {
				t.Errorf("write to a relative path: %s", line)
			}
		}
	}
	if execs != 1 {
		t.Errorf("%d execve calls, want 1 (the generator itself)", execs)
	}
	if writes == 0 {
		t.Error("strace saw no writes at all: the trace is not watching the generator")
	}
	t.Logf("%d file system changes, all inside %s; %d execve", writes, out, execs)
}
