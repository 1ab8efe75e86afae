package main

import (
	"fmt"
	"strings"
	"testing"
)

const explainStack = `stack "app" {
  jobs          = ["app-files", "app-db"]
  schedule      = "*-*-* 03:30:00"
  require_paths = ["/mnt/backup"]
  stop_timeout  = "45s"
  on_demand {
    socket  = "app-ondemand.socket"
    service = "app-ondemand.service"
  }
  hook "pre_stop" {
    command        = ["/usr/bin/echo", "maintenance on"]
    ignore_failure = true
  }
  hook "post_start" {
    command = ["/usr/bin/echo", "maintenance off"]
    timeout = "30s"
  }
  notify { on_failure = ["/usr/bin/logger", "backup failed"] }
}
`

func TestExplain(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		code  int
		want  []string // in this order in stdout
		avoid []string
	}{{
		name: "the whole sequence in order",
		args: []string{"explain", "app"},
		want: []string{
			"Stack app", "app-stack.service", "io.podman.compose.project=app",
			"gate", "require_paths: /mnt/backup", "backup slot and an idle Duplicati",
			`hook pre_stop 1: "/usr/bin/echo" "maintenance on"`, "ignore_failure",
			"hold: start backup-hold@app.service", "app-stack.service, app-ondemand.socket, app-ondemand.service", "45s",
			"no container labelled io.podman.compose.project=app runs",
			"job 1 of 2: Duplicati backup \"app-files\"", "job 2 of 2: Duplicati backup \"app-db\"", "wait_timeout",
			"ExecStopPost=", "restore (restore_policy = \"previous\")",
			`hook post_start 1: "/usr/bin/echo" "maintenance off"`, "at most 30s",
			"free the backup slot",
			`notify on failure (OnFailure=backup-notify@app.service): "/usr/bin/logger" "backup failed"`,
			"TimeoutStartSec=", "OnCalendar=*-*-* 03:30:00",
			"Units:", "backup@app.service", "generated: backup@.service backup@app.service.d/50-stack.conf",
			"backup-hold@app.service", "backup-notify@app.service", "backup@app.timer",
		},
		avoid: []string{"---- "},
	}, {
		name: "a unit name is taken for its stack, and --unit-files prints the generator's files",
		args: []string{"explain", "--unit-files", "app-stack.service"},
		want: []string{"Stack app", "Unit files", "---- backup@.service", "---- backup@app.service.d/50-stack.conf",
			"ExecStartPre=", `"gate" "--" "app"`, "---- backup-hold@app.service.d/50-stack.conf", "Conflicts=app-stack.service app-ondemand.socket app-ondemand.service"},
	}, {
		name: "an unknown stack is a usage error",
		args: []string{"explain", "nope"}, code: 2,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newCLI(t, "", map[string]string{"app": explainStack, "other": `stack "other" { jobs = ["o"] }`})
			code, out, errs := cl.run(c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, c.code, errs)
			}
			rest := out
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stdout lacks %q after the earlier items (or at all):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, a := range c.avoid {
				if strings.Contains(out, a) {
					t.Errorf("stdout has %q", a)
				}
			}
			if ch := cl.mgr.Changes(); len(ch) != 0 {
				t.Errorf("explain changed the manager: %q", ch)
			}
		})
	}
}

func TestExplainRestoreAlways(t *testing.T) {
	cl := newCLI(t, "", map[string]string{"app": `stack "app" {
  jobs = ["j"]
  restore_policy = "always"
}`})
	code, out, errs := cl.run("explain", "app")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{`restore (restore_policy = "always"): start app-stack.service, whatever was active before`, "Schedule: none", "notify: nothing configured"} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
}

// In snapshot mode the stack starts again before the jobs: explain says so, in order.
func TestExplainSnapshot(t *testing.T) {
	data, into := t.TempDir(), t.TempDir()
	cl := newCLI(t, "", map[string]string{"app": fmt.Sprintf(`stack "app" {
  jobs = ["j"]
  snapshot {
    paths = [%q]
    into  = %q
  }
  hook "pre_start" { command = ["/usr/bin/true"] }
  hook "post_backup" { command = ["/usr/bin/true"] }
}`, data, into)})
	code, out, errs := cl.run("explain", "app")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rest := out
	for _, w := range []string{"hold:", "no container labelled", "snapshot (auto): freeze " + data + " into " + into + "/app/<name>",
		"planned at the gate", "resume: the stack starts again", "hook pre_start 1", "restore (restore_policy", "the jobs read the snapshot",
		"job 1 of 1", "ExecStopPost=", "hook post_backup 1", "restore, if the backup failed before resume", "remove the snapshot " + into + "/app", "free the backup slot"} {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("stdout lacks %q after the earlier items (or at all):\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}
