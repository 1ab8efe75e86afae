package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backup-stack/backup-stack/hcl"
)

func init() {
	// go test ./cmd/backup-stack -run ImportSh -update rewrites the golden files.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func importShUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// importShExamples are the seed's example stack files (as its README shows
// them, completed with the variables it says are required).
func importShExamples(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "import-sh", "*.sh"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	return files
}

func TestImportShGolden(t *testing.T) {
	c := newCLI(t, "", nil)
	for _, f := range importShExamples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errs := c.run("import-sh", f)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			base := strings.TrimSuffix(f, ".sh")
			for _, g := range []struct{ file, got string }{{base + ".hcl.golden", out}, {base + ".stderr.golden", errs}} {
				if importShUpdate() {
					if err := os.WriteFile(g.file, []byte(g.got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(g.file)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if string(want) != g.got {
					t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", g.file, g.got, want)
				}
			}
		})
	}
}

func TestImportShWriteValidates(t *testing.T) {
	c := newCLI(t, "", nil)
	stacks := filepath.Join(c.dir, "config", "backup-stack", "stacks")
	args := append([]string{"import-sh", "--write", stacks}, importShExamples(t)...)
	code, out, errs := c.run(args...)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	for _, n := range []string{"cryptpad", "nextcloud", "example"} {
		if !strings.Contains(out, "wrote "+filepath.Join(stacks, n+".hcl")) {
			t.Errorf("no %s.hcl written: %s", n, out)
		}
	}
	// What backup-stack validate says, on the whole directory and per file.
	code, out, errs = c.run("validate")
	if code != 0 || !strings.Contains(out, "3 stack(s) valid, 0 file(s) with errors") || strings.Contains(out, "warning") {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = c.run("validate", filepath.Join(stacks, "nextcloud.hcl"), filepath.Join(stacks, "cryptpad.hcl"))
	if code != 0 || out != "" {
		t.Fatalf("validate files: exit %d\n%s%s", code, out, errs)
	}
	set, diags := hcl.Load(filepath.Join(c.dir, "config", "backup-stack"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	nc, _ := set.Stack("nextcloud")
	if nc == nil || len(nc.Hooks) != 2 || nc.Hooks[0].Kind != "pre_stop" || nc.Hooks[1].Kind != "post_start" {
		t.Fatalf("nextcloud hooks: %+v", nc)
	}
	wantPre := "NC_APP_CONTAINER=\"nextcloud-app\"\npodman exec -u www-data \"${NC_APP_CONTAINER}\" php occ maintenance:mode --on >/dev/null 2>&1 || true"
	if cmd := nc.Hooks[0].Command; len(cmd) != 3 || cmd[0] != "/bin/sh" || cmd[1] != "-c" || cmd[2] != wantPre {
		t.Errorf("pre_stop command %q", cmd)
	}
	if nc.StopTimeout.String() != "2m0s" || strings.Join(nc.Jobs, ",") != "nextcloud,nextcloud-db" {
		t.Errorf("nextcloud: %+v", nc)
	}
	cp, _ := set.Stack("cryptpad")
	if cp == nil || cp.OnDemand == nil || cp.OnDemand.Socket != "zoopa-ondemand@cryptpad.socket" ||
		cp.OnDemand.Service != "zoopa-ondemand@cryptpad.service" || cp.RestorePolicy != "previous" || len(cp.Hooks) != 0 {
		t.Errorf("cryptpad: %+v", cp)
	}
	ex, _ := set.Stack("example")
	if ex == nil || len(ex.Hooks) != 4 || ex.RestorePolicy != "always" {
		t.Errorf("example: %+v", ex)
	}

	// A second run never overwrites.
	before, _ := os.ReadFile(filepath.Join(stacks, "nextcloud.hcl"))
	if err := os.WriteFile(filepath.Join(stacks, "nextcloud.hcl"), append(before, "# mine\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = c.run("import-sh", "--write", stacks, filepath.Join("testdata", "import-sh", "nextcloud.sh"))
	if code == 0 || !strings.Contains(errs, "exists and is never overwritten") {
		t.Errorf("second write: exit %d: %s", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(stacks, "nextcloud.hcl")); !strings.HasSuffix(string(after), "# mine\n") {
		t.Errorf("overwritten:\n%s", after)
	}
}

func TestImportShFailures(t *testing.T) {
	c := newCLI(t, "", nil)
	bad := filepath.Join(t.TempDir(), "bad.sh")
	if err := os.WriteFile(bad, []byte("DUPLICATI_JOBS=(a)\nstack_pre_stop() {\n  echo \"oops\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join("testdata", "import-sh", "cryptpad.sh")
	code, out, errs := c.run("import-sh", filepath.Join(t.TempDir(), "missing.sh"), bad, good)
	if code == 0 {
		t.Fatalf("exit 0: %s", errs)
	}
	for _, w := range []string{"missing.sh: cannot read", "bad.sh: cannot parse: line 3: unterminated double quote", "2 of 3 file(s) not converted"} {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
	if !strings.Contains(out, `stack "cryptpad"`) {
		t.Errorf("the readable file was not converted:\n%s", out)
	}
	// Not converted constructs are listed with file:line, and the exit code stays 0.
	odd := filepath.Join(t.TempDir(), "odd.sh")
	if err := os.WriteFile(odd, []byte("DUPLICATI_JOBS=(a)\n. ./common.sh\nHOST=$(hostname)\nstack_verify() { curl \"http://$HOST/\"; }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = c.run("import-sh", odd)
	if code != 0 || !strings.Contains(errs, odd+":2: not converted: a shell command at the top of the file") {
		t.Errorf("exit %d:\n%s", code, errs)
	}
	if !strings.Contains(out, `HOST=$(hostname)\ncurl \"http://$HOST/\"`) {
		t.Errorf("the hook does not carry its variable:\n%s", out)
	}
}
