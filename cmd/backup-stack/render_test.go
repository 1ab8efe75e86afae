package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/backup-stack/backup-stack/units"
)

const renderStacks = `stack "good" {
  jobs     = ["good"]
  schedule = "*-*-* 03:30:00"
}
`

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

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// generated is what the generator's code writes for the cli's configuration.
func (c *cli) generated(helper string) map[string]string {
	dir := c.t.TempDir()
	g := units.Generate(filepath.Join(c.dir, "config", "backup-stack"), units.Options{Helper: helper})
	if g.Err != nil {
		c.t.Fatal(g.Err)
	}
	if err := units.Write(dir, g.Files); err != nil {
		c.t.Fatal(err)
	}
	return tree(c.t, dir)
}

// render writes what the generator writes, plus the manifest; removes the
// units of a stack whose file went; leaves the user's own files alone; and
// applies the change to the manager (daemon-reload, timers) only when
// something changed.
func TestRender(t *testing.T) {
	c := newCLI(t, "", map[string]string{"good": renderStacks, "other": `stack "other" { jobs = ["o"] }`})
	const helper = "/usr/local/bin/backup-stack"
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine.service")
	if err := os.WriteFile(mine, []byte("[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mgr.Set("active", "backup@gone.timer")
	code, stdout, stderr := c.run("render", "--helper", helper, dir)
	if code != 0 {
		t.Fatalf("render: %d %s", code, stderr)
	}
	want := c.generated(helper)
	if !strings.Contains(stdout, "written, 0 unchanged, 0 removed") {
		t.Errorf("stdout %q", stdout)
	}
	got := tree(t, dir)
	if _, ok := got[units.ManifestName]; !ok {
		t.Fatal("no manifest")
	}
	delete(got, units.ManifestName)
	delete(got, "mine.service")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("render wrote %v\nthe generator writes %v", keys(got), keys(want))
	}
	if ch, w := c.mgr.Changes(), []string{"daemon-reload", "stop backup@gone.timer", "restart backup@good.timer"}; !reflect.DeepEqual(ch, w) {
		t.Errorf("manager calls %q, want %q", ch, w)
	}

	// Nothing changed: nothing is written and the manager is left alone.
	before := len(c.mgr.Changes())
	if code, stdout, _ := c.run("render", "--helper", helper, dir); code != 0 || !strings.Contains(stdout, "0 written") {
		t.Fatalf("second render: %d %s", code, stdout)
	}
	if len(c.mgr.Changes()) != before {
		t.Errorf("an unchanged render talked to the manager: %q", c.mgr.Changes()[before:])
	}

	if err := os.Remove(filepath.Join(c.dir, "config", "backup-stack", "stacks", "good.hcl")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = c.run("render", "--helper", helper, "--no-reload", dir)
	if code != 0 {
		t.Fatalf("render after removing good.hcl: %d %s", code, stderr)
	}
	for _, p := range []string{"backup@good.service.d/50-stack.conf", "backup@good.timer.d/50-schedule.conf", "timers.target.wants/backup@good.timer"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v); stdout %s", p, err, stdout)
		}
	}
	if len(c.mgr.Changes()) != before {
		t.Errorf("--no-reload talked to the manager: %q", c.mgr.Changes()[before:])
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the user's unit was removed: %v", err)
	}

	if code, _, stderr = c.run("render", "--clean", dir); code != 0 {
		t.Fatalf("--clean: %d %s", code, stderr)
	}
	if left := keys(tree(t, dir)); !reflect.DeepEqual(left, []string{"mine.service"}) {
		t.Errorf("after --clean: %v", left)
	}
}

// An unreadable stacks directory must not look like "no stacks" (which would remove every unit).
func TestRenderUnreadableStacks(t *testing.T) {
	c := newCLI(t, "", map[string]string{"good": renderStacks})
	dir := t.TempDir()
	if code, _, stderr := c.run("render", "--helper", "/usr/bin/backup-stack", dir); code != 0 {
		t.Fatalf("%d %s", code, stderr)
	}
	before := tree(t, dir)
	stacks := filepath.Join(c.dir, "config", "backup-stack", "stacks")
	if err := os.RemoveAll(stacks); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stacks, nil, 0o644); err != nil { // ReadDir fails
		t.Fatal(err)
	}
	code, _, stderr := c.run("render", "--helper", "/usr/bin/backup-stack", dir)
	if code != 1 || !strings.Contains(stderr, "nothing changed") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if after := tree(t, dir); !reflect.DeepEqual(before, after) {
		t.Errorf("directory changed: %v", keys(after))
	}
}

func TestRenderUsage(t *testing.T) {
	c := newCLI(t, "", map[string]string{"good": renderStacks})
	if code, _, _ := c.run("render", "relative/dir"); code != 2 {
		t.Errorf("relative dir: exit %d, want 2", code)
	}
	if code, _, errs := c.run("render", "--helper", "relative/backup-stack", t.TempDir()); code != 2 || !strings.Contains(errs, "not absolute") {
		t.Errorf("relative helper: exit %d, want 2: %s", code, errs)
	}
	// The default directory is $XDG_CONFIG_HOME/systemd/user.
	var out, errb bytes.Buffer
	if code := c.app(&out, &errb).Main([]string{"render", "--helper", "/usr/bin/backup-stack", "--no-reload"}); code != 0 {
		t.Fatalf("default dir: %d %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(c.dir, "config", "systemd", "user", units.ManifestName)); err != nil {
		t.Errorf("no manifest in $XDG_CONFIG_HOME/systemd/user: %v", err)
	}
}

// TestRenderAgainWhenInputChanges: systemd drops the path unit's events while the render
// service runs, so a stack file removed during a render must be seen by that render's run.
func TestRenderAgainWhenInputChanges(t *testing.T) {
	c := newCLI(t, "", map[string]string{"good": renderStacks, "other": `stack "other" { jobs = ["o"] }`})
	dir := t.TempDir()
	removed := false
	c.mgr.On("daemon-reload", func() {
		if !removed {
			removed = true // during the first render's reload, like a second `rm` a moment later
			if err := os.Remove(filepath.Join(c.dir, "config", "backup-stack", "stacks", "other.hcl")); err != nil {
				t.Error(err)
			}
		}
	})
	code, _, stderr := c.run("render", "--helper", "/usr/local/bin/backup-stack", dir)
	if code != 0 {
		t.Fatalf("render: %d %s", code, stderr)
	}
	if !removed {
		t.Fatal("the render did not reload the manager: the test proves nothing")
	}
	if _, err := os.Lstat(filepath.Join(dir, "backup@other.service.d", "50-stack.conf")); !os.IsNotExist(err) {
		t.Errorf("other's drop-in is still there (%v) although its file went during the render; stderr %s", err, stderr)
	}
	if !strings.Contains(stderr, "rendering again") {
		t.Errorf("stderr does not say it rendered again: %s", stderr)
	}
}
