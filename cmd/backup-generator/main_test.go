package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const testHelper = "/usr/local/bin/backup-stack"

func runGen(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// tree reads every file and symlink below dir: path -> content, or
// "-> target" for a link.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parseDryRun splits --dry-run output back into files.
func parseDryRun(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var cur string
	var b strings.Builder
	flush := func() {
		if cur != "" {
			out[cur] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		if line == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "---- "); ok {
			flush()
			rest = strings.TrimSuffix(rest, "\n")
			if path, target, isLink := strings.Cut(rest, " -> "); isLink {
				out[path] = "-> " + target
				cur = ""
				continue
			}
			cur = rest
			continue
		}
		b.WriteString(line)
	}
	flush()
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func goodConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "stacks"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"good.hcl", "other.hcl"} {
		b, err := os.ReadFile(filepath.Join("testdata", "config", "stacks", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stacks", n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOneDir(t *testing.T) {
	cfg := goodConfig(t)
	out := t.TempDir()
	code, stdout, stderr := runGen(t, "--config", cfg, "--helper", testHelper, out)
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	got := tree(t, out)
	want := []string{
		"backup-hold@.service", "backup-hold@good.service.d/50-stack.conf", "backup-hold@other.service.d/50-stack.conf", "backup-notify@.service",
		"backup-recover.service", "backup@.service", "backup@.timer", "backup@good.service.d/50-stack.conf", "backup@good.timer.d/50-schedule.conf",
		"backup@other.service.d/50-stack.conf", "default.target.wants/backup-recover.service", "timers.target.wants/backup@good.timer",
	}
	if !reflect.DeepEqual(keys(got), want) {
		t.Errorf("files %v\nwant %v", keys(got), want)
	}
	if got["timers.target.wants/backup@good.timer"] != "-> ../backup@.timer" {
		t.Errorf("link %q", got["timers.target.wants/backup@good.timer"])
	}
	// Regenerating (every daemon-reload, into a directory the manager
	// emptied) gives the same tree.
	again := t.TempDir()
	if code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, again); code != 0 || stderr != "" {
		t.Fatalf("second run: %d %s", code, stderr)
	}
	if tr := tree(t, again); !reflect.DeepEqual(tr, got) {
		t.Errorf("second run gave other output: %v", keys(tr))
	}
	// Into a directory the manager did not empty (it does not after a
	// SIGKILL of the manager), this generator's own files are replaced, a
	// stack that is gone loses its files, and other generators' files stay.
	if err := os.WriteFile(filepath.Join(out, "other-generator.service"), []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg, "stacks", "other.hcl")); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, out); code != 0 || stderr != "" {
		t.Errorf("run into a full directory: exit %d, stderr %q", code, stderr)
	}
	tr := tree(t, out)
	if _, ok := tr["other-generator.service"]; !ok {
		t.Error("another generator's file was removed")
	}
	if _, ok := tr["backup@other.service.d/50-stack.conf"]; ok {
		t.Error("the removed stack's drop-in is still there")
	}
	if _, ok := tr["backup@good.service.d/50-stack.conf"]; !ok {
		t.Error("the remaining stack's drop-in is missing")
	}
}

func TestThreeDirsWritesOnlyFirst(t *testing.T) {
	cfg := goodConfig(t)
	normal, early, late := t.TempDir(), t.TempDir(), t.TempDir()
	code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, normal, early, late)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if len(tree(t, normal)) == 0 {
		t.Error("nothing written to the normal dir")
	}
	for _, d := range []string{early, late} {
		if got := tree(t, d); len(got) != 0 {
			t.Errorf("%s got files: %v", d, keys(got))
		}
	}
}

func TestWrongNumberOfDirs(t *testing.T) {
	cfg := goodConfig(t)
	for _, n := range []int{0, 2, 4} {
		var dirs []string
		for i := 0; i < n; i++ {
			dirs = append(dirs, t.TempDir())
		}
		code, _, stderr := runGen(t, append([]string{"--config", cfg, "--helper", testHelper}, dirs...)...)
		if code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("%d dirs: exit %d, stderr %q", n, code, stderr)
		}
		for _, d := range dirs {
			if got := tree(t, d); len(got) != 0 {
				t.Errorf("%d dirs: %s got files %v", n, d, keys(got))
			}
		}
	}
}

func TestNoInput(t *testing.T) {
	// As systemd runs it: no --config, the config dir from the environment.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "nothing-here"))
	out := t.TempDir()
	code, stdout, stderr := runGen(t, "--helper", testHelper, out)
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := tree(t, out); len(got) != 0 {
		t.Errorf("files without input: %v", keys(got))
	}
	// A configuration without a valid stack (empty stacks/) gets the
	// templates and the recovery unit: a backup whose last stack file goes
	// while it runs keeps run and finish, and recovery runs at the next start.
	if err := os.MkdirAll(filepath.Join(home, "nothing-here", "backup-stack", "stacks"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runGen(t, "--helper", testHelper, out)
	want := []string{"backup-hold@.service", "backup-notify@.service", "backup-recover.service", "backup@.service", "backup@.timer",
		"default.target.wants/backup-recover.service"}
	if got := keys(tree(t, out)); code != 0 || stderr != "" || !reflect.DeepEqual(got, want) {
		t.Errorf("empty stacks/: exit %d, stderr %q, files %v, want %v", code, stderr, got, want)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	xdg := t.TempDir()
	if err := os.Rename(goodConfig(t), filepath.Join(xdg, "backup-stack")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CONFIG_HOME", xdg)
	code, stdout, _ := runGen(t, "--dry-run", "--helper", testHelper)
	if code != 0 || !strings.Contains(stdout, "SourcePath="+filepath.Join(xdg, "backup-stack", "stacks", "good.hcl")+"\n") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
}

func TestBadStackFileReportedOthersGenerated(t *testing.T) {
	cfg, err := filepath.Abs(filepath.Join("testdata", "config"))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, out)
	if code != 0 {
		t.Errorf("exit %d: one bad file must not fail the generator", code)
	}
	bad := filepath.Join(cfg, "stacks", "bad.hcl")
	want := bad + ":3:20: error: Unknown restore policy: "
	if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, `use "previous"`) {
		t.Errorf("stderr %q, want it to start with %q", stderr, want)
	}
	got := tree(t, out)
	for _, f := range []string{"backup@good.service.d/50-stack.conf", "backup@other.service.d/50-stack.conf"} {
		if _, ok := got[f]; !ok {
			t.Errorf("%s not generated", f)
		}
	}
	for f := range got {
		if strings.Contains(f, "bad") {
			t.Errorf("%s generated for the bad stack", f)
		}
	}
	// --dry-run shows the same and says by its exit status that something is wrong.
	code, stdout, stderr2 := runGen(t, "--dry-run", "--config", cfg, "--helper", testHelper)
	if code != 1 || stderr2 != stderr || !reflect.DeepEqual(parseDryRun(t, stdout), got) {
		t.Errorf("dry run: exit %d, stderr %q", code, stderr2)
	}
}

func TestDryRunMatchesWritten(t *testing.T) {
	for _, cfgDir := range []string{goodConfig(t), "../../units/testdata/golden/hooks/config", "../../units/testdata/golden/ordering/config"} {
		out := t.TempDir()
		if code, _, _ := runGen(t, "--config", cfgDir, "--helper", testHelper, out); code != 0 {
			t.Fatalf("%s: exit %d", cfgDir, code)
		}
		_, stdout, _ := runGen(t, "--dry-run", "--config", cfgDir, "--helper", testHelper)
		written, printed := tree(t, out), parseDryRun(t, stdout)
		if len(written) == 0 || !reflect.DeepEqual(written, printed) {
			t.Errorf("%s: dry run shows %v, written %v", cfgDir, keys(printed), keys(written))
			for k, v := range written {
				if printed[k] != v {
					t.Errorf("%s differs:\nwritten %q\nprinted %q", k, v, printed[k])
				}
			}
		}
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	// --dry-run needs no output dir; its arguments are stack names, so a
	// directory given by mistake is an unknown stack, and nothing is written.
	out := t.TempDir()
	code, stdout, _ := runGen(t, "--dry-run", "--config", goodConfig(t), "--helper", testHelper)
	if code != 0 || !strings.HasPrefix(stdout, "---- backup@.service\n") {
		t.Errorf("exit %d, stdout %.80q", code, stdout)
	}
	code, _, stderr := runGen(t, "--dry-run", "--config", goodConfig(t), "--helper", testHelper, out)
	if code != 1 || !strings.Contains(stderr, "no stack") {
		t.Errorf("dry run with a directory: exit %d, stderr %q", code, stderr)
	}
	if len(tree(t, out)) != 0 {
		t.Error("--dry-run wrote files")
	}
}

func TestBadFlag(t *testing.T) {
	if code, _, stderr := runGen(t, "--no-such-flag"); code != 2 || !strings.Contains(stderr, "usage:") {
		t.Errorf("exit %d %q", code, stderr)
	}
}

func TestDryRunOfSomeStacks(t *testing.T) {
	cfg := goodConfig(t)
	code, stdout, stderr := runGen(t, "--config", cfg, "--helper", testHelper, "--dry-run", "other")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	got := keys(parseDryRun(t, stdout))
	want := []string{"backup-hold@.service", "backup-hold@other.service.d/50-stack.conf", "backup-notify@.service",
		"backup-recover.service", "backup@.service", "backup@.timer", "backup@other.service.d/50-stack.conf",
		"default.target.wants/backup-recover.service"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files %v\nwant %v", got, want)
	}
	code, _, stderr = runGen(t, "--config", cfg, "--helper", testHelper, "--dry-run", "good", "nosuch")
	if code != 1 || !strings.Contains(stderr, `no stack "nosuch"`) {
		t.Errorf("unknown stack: exit %d, stderr %q", code, stderr)
	}
}
