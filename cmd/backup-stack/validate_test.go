package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backup-stack/backup-stack/internal/exitcode"
)

// TestValidateScheduleSamePass: a schedule systemd-analyze refuses is
// reported at the schedule's line, in the same run as the file's other
// errors and those of other files, and its file counts as one with errors.
func TestValidateScheduleSamePass(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze")
	}
	for _, tc := range []struct {
		name   string
		config string
		stacks map[string]string
		want   []string
		count  string
	}{
		{"alone", "", map[string]string{
			"a":  "stack \"a\" {\n  jobs = [\"a\"]\n  schedule = \"daily at 3\"\n}\n",
			"ok": "stack \"ok\" {\n  jobs = [\"o\"]\n}\n",
		}, []string{"stacks/a.hcl:3:3: error: Invalid schedule"}, "1 stack(s) valid, 1 file(s) with errors"},
		{"with another error in its file", "", map[string]string{
			"a": "stack \"a\" {\n  jobs = [\"a\"]\n  stop_timeout = \"soon\"\n\n  schedule = \"daily at 3\"\n}\n",
		}, []string{"stacks/a.hcl:5:3: error: Invalid schedule", "stacks/a.hcl:3:18: error: Invalid duration"}, "0 stack(s) valid, 1 file(s) with errors"},
		{"with an error in another file", "", map[string]string{
			"a": "stack \"a\" {\n  jobs = [\"a\"]\n  schedule = \"daily at 3\"\n}\n",
			"b": "stack \"b\" {\n  jobs = []\n}\n",
		}, []string{"stacks/a.hcl:3:3: error: Invalid schedule", "stacks/b.hcl:2:10: error: No jobs"}, "0 stack(s) valid, 2 file(s) with errors"},
		{"inherited from config.hcl", "defaults {\n  schedule = \"daily at 3\"\n}\n", map[string]string{
			"a":   "stack \"a\" {\n  jobs = [\"a\"]\n}\n",
			"own": "stack \"own\" {\n  jobs = [\"o\"]\n  schedule = \"daily\"\n}\n",
		}, []string{"config.hcl:2:3: error: Invalid schedule"}, "1 stack(s) valid, 1 file(s) with errors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t, tc.config, tc.stacks)
			out, _ := c.must(exitcode.Usage, "validate")
			for _, w := range tc.want {
				if n := strings.Count(out, w); n != 1 {
					t.Errorf("%q %d times, want once:\n%s", w, n, out)
				}
			}
			if !strings.Contains(out, tc.count) {
				t.Errorf("summary, want %q:\n%s", tc.count, out)
			}
		})
	}
	t.Run("named file", func(t *testing.T) {
		c := newCLI(t, "", map[string]string{"a": "stack \"a\" {\n  jobs = []\n  schedule = \"daily at 3\"\n}\n"})
		out, _ := c.must(exitcode.Usage, "validate", filepath.Join(c.dir, "config", "backup-stack", "stacks", "a.hcl"))
		if !strings.Contains(out, "a.hcl:3:3: error: Invalid schedule") || !strings.Contains(out, "a.hcl:2:10: error: No jobs") {
			t.Errorf("%s", out)
		}
	})
}
