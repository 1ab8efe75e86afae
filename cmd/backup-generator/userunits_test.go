package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/backup-stack/backup-stack/units"
)

// --user-units writes what the generator writes, plus the manifest, and removes the units of
// a stack whose file went; the user's own files in the directory are left alone.
func TestUserUnits(t *testing.T) {
	cfg := goodConfig(t)
	gen := t.TempDir()
	if code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, gen); code != 0 {
		t.Fatalf("generator: %d %s", code, stderr)
	}
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine.service")
	if err := os.WriteFile(mine, []byte("[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runGen(t, "--config", cfg, "--helper", testHelper, "--user-units", dir)
	if code != 0 {
		t.Fatalf("--user-units: %d %s", code, stderr)
	}
	if want := fmt.Sprintf("%d written, 0 unchanged, 0 removed", len(tree(t, gen))); !strings.Contains(stdout, want) {
		t.Errorf("stdout %q", stdout)
	}
	got := tree(t, dir)
	if _, ok := got[units.ManifestName]; !ok {
		t.Fatal("no manifest")
	}
	delete(got, units.ManifestName)
	delete(got, "mine.service")
	if want := tree(t, gen); !reflect.DeepEqual(got, want) {
		t.Errorf("--user-units wrote %v\nthe generator writes %v", keys(got), keys(want))
	}

	if err := os.Remove(filepath.Join(cfg, "stacks", "good.hcl")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runGen(t, "--config", cfg, "--helper", testHelper, "--user-units", dir)
	if code != 0 {
		t.Fatalf("--user-units after removing good.hcl: %d %s", code, stderr)
	}
	for _, p := range []string{"backup@good.service.d/50-stack.conf", "backup@good.timer.d/50-schedule.conf", "timers.target.wants/backup@good.timer"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v); stdout %s", p, err, stdout)
		}
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the user's unit was removed: %v", err)
	}

	code, _, stderr = runGen(t, "--user-units", dir, "--clean")
	if code != 0 {
		t.Fatalf("--clean: %d %s", code, stderr)
	}
	if left := keys(tree(t, dir)); !reflect.DeepEqual(left, []string{"mine.service"}) {
		t.Errorf("after --clean: %v", left)
	}
}

// An unreadable stacks directory must not look like "no stacks" (which would remove every unit).
func TestUserUnitsUnreadableStacks(t *testing.T) {
	cfg := goodConfig(t)
	dir := t.TempDir()
	if code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, "--user-units", dir); code != 0 {
		t.Fatalf("%d %s", code, stderr)
	}
	before := tree(t, dir)
	if err := os.RemoveAll(filepath.Join(cfg, "stacks")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "stacks"), nil, 0o644); err != nil { // ReadDir fails
		t.Fatal(err)
	}
	code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, "--user-units", dir)
	if code != 1 || !strings.Contains(stderr, "nothing changed") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if after := tree(t, dir); !reflect.DeepEqual(before, after) {
		t.Errorf("directory changed: %v", keys(after))
	}
}

func TestUserUnitsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--user-units", "/x", "outdir"},
		{"--user-units", "/x", "--dry-run"},
		{"--clean", "outdir"},
		{"--reload", "outdir"},
	} {
		if code, _, _ := runGen(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, _ := runGen(t, "--user-units", "relative/dir", "--helper", testHelper, "--config", t.TempDir()); code != 2 {
		t.Errorf("relative --user-units: exit %d, want 2", code)
	}
}

func TestTimerChanges(t *testing.T) {
	restart, stop := timerChanges(units.ManagedResult{
		Written: []string{"backup@.service", "timers.target.wants/backup@a.timer", "backup@a.timer.d/50-schedule.conf",
			"backup@b.timer.d/50-schedule.conf", "backup@c.service.d/50-stack.conf"},
		Removed: []string{"timers.target.wants/backup@d.timer", "backup@d.timer.d/50-schedule.conf", "backup@d.timer.d/"},
	})
	if !reflect.DeepEqual(restart, []string{"backup@a.timer", "backup@b.timer"}) {
		t.Errorf("restart %v", restart)
	}
	if !reflect.DeepEqual(stop, []string{"backup@d.timer"}) {
		t.Errorf("stop %v", stop)
	}
}
