package e2e

// Issue 14, items 1 and 2 under the real user manager: the live status line a running
// backup shows in systemd (StatusText, sd_notify STATUS= from the helper's steps, which
// NotifyAccess=all lets every step send), and the reason in words of a failed run, in
// `backup-stack list --json` and in the notification's BACKUP_REASON.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStatusTextAndReason(t *testing.T) {
	forModes(t, func(t *testing.T, m mode) {
		// A REST-route job that runs long enough to be seen, and ends Error.
		r := newBasicRigMode(t, m, "api", "stx", 8*time.Second, "Error", "")
		e := r.e
		reasonFile := filepath.Join(e.dir, "reasons")
		e.writeFile(reasonFile, "", 0o600)
		notifyBlock := fmt.Sprintf("  notify {\n    on_failure = [\"/bin/sh\", \"-c\", %q]\n  }\n",
			`printf '%s\n' "$BACKUP_REASON" >> `+reasonFile)
		writeStack := func(hooks string) {
			e.writeStack(r.st.Name, fmt.Sprintf("stack %q {\n  jobs          = [%q]\n  stop_timeout  = \"30s\"\n  start_timeout = \"60s\"\n  wait_timeout  = \"2m\"\n%s%s}\n",
				r.st.Name, r.job, notifyBlock, hooks))
			e.daemonReload()
		}
		writeStack("")
		r.startStack()
		unit := r.backupUnit()

		// 1. While the job runs, StatusText names the job and a percent.
		b := r.startBackup()
		want := regexp.MustCompile(`^job 1 of 1 "` + regexp.QuoteMeta(r.job) + `": [0-9]+ %`)
		var seen []string
		e.waitFor("StatusText naming the job and a percent", 60*time.Second, 200*time.Millisecond, func() bool {
			st := e.show(unit, "StatusText")["StatusText"]
			if st != "" && (len(seen) == 0 || seen[len(seen)-1] != st) {
				seen = append(seen, st)
			}
			return want.MatchString(st)
		})
		b.wait(t)
		t.Logf("StatusText seen: %q", seen)
		r.expectFailed("after a job that ended Error")

		// 2. The reason names the job and Duplicati's result, in list --json and BACKUP_REASON.
		reason := listReason(t, e, r.st.Name)
		if !strings.Contains(reason, fmt.Sprintf("job %q: ", r.job)) || !strings.Contains(reason, "(Error") {
			t.Fatalf("list --json reason %q, want the job and its Error", reason)
		}
		got := waitReasonLines(t, e, reasonFile, 1)
		if got[0] != reason {
			t.Fatalf("BACKUP_REASON %q, list --json reason %q", got[0], reason)
		}
		if st := e.show(unit, "StatusText")["StatusText"]; !strings.HasPrefix(st, "finished: ") {
			t.Errorf("StatusText after the run %q, want the run's end", st)
		}
		t.Logf("reason of the Error run: %q", reason)

		// 3. A pre_stop hook whose program does not exist: the reason names the hook and the program.
		prog := "backup-stack-e2e-no-such-program"
		writeStack(fmt.Sprintf("  hook \"pre_stop\" {\n    command = [%q, \"--on\"]\n  }\n", prog))
		r.backup()
		r.expectFailed("after a pre_stop hook whose program does not exist")
		wantReason := "hook pre_stop: " + prog + ": not found (exit 127)"
		if reason := listReason(t, e, r.st.Name); reason != wantReason {
			t.Fatalf("list --json reason %q, want %q", reason, wantReason)
		}
		if got := waitReasonLines(t, e, reasonFile, 2); got[1] != wantReason {
			t.Fatalf("BACKUP_REASON %q, want %q", got[1], wantReason)
		}
		r.expectUp("after the failed hook: the stack was never stopped, or restored")
	})
}

// listReason is the reason of stack's last run in `backup-stack list --json`.
func listReason(t *testing.T, e *env, stack string) string {
	t.Helper()
	out, code, err := e.runHelper(30*time.Second, "list", "--json")
	if err != nil || code != 0 {
		t.Fatalf("list --json: code %d err %v: %s", code, err, out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("list --json: %v: %s", err, out)
	}
	for _, row := range rows {
		if row["stack"] == stack {
			s, _ := row["reason"].(string)
			return s
		}
	}
	t.Fatalf("list --json has no stack %s: %s", stack, out)
	return ""
}

// waitReasonLines waits until the notification command wrote n lines of BACKUP_REASON.
func waitReasonLines(t *testing.T, e *env, file string, n int) []string {
	t.Helper()
	var lines []string
	e.waitFor(fmt.Sprintf("%d failure notification(s)", n), 30*time.Second, 100*time.Millisecond, func() bool {
		b, _ := os.ReadFile(file)
		lines = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		return len(b) > 0 && len(lines) >= n
	})
	return lines
}
