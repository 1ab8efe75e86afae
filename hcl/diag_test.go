package hcl

import (
	"fmt"
	"strings"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
)

// diagCase is one invalid stack file and the diagnostic it must produce.
type diagCase struct {
	name string
	src  string
	// line and col of the diagnostic's subject (1-based, as editors count).
	line, col int
	// summary is the diagnostic's summary; hint a part of its message that
	// tells the user what to change.
	summary, hint string
}

func defaultConfig(t *testing.T) *Config {
	t.Helper()
	cfg, diags := ParseConfig("config.hcl", nil)
	if len(diags) > 0 {
		t.Fatalf("default config: %v", diags)
	}
	return cfg
}

// findDiag returns the first error diagnostic with summary, or fails.
func findDiag(t *testing.T, diags hhcl.Diagnostics, summary string) *hhcl.Diagnostic {
	t.Helper()
	for _, d := range diags {
		if d.Severity == hhcl.DiagError && d.Summary == summary {
			return d
		}
	}
	var got []string
	for _, d := range diags {
		got = append(got, FormatDiag(d))
	}
	t.Fatalf("no error %q among:\n%s", summary, strings.Join(got, "\n"))
	return nil
}

func checkDiag(t *testing.T, diags hhcl.Diagnostics, file string, c diagCase) {
	t.Helper()
	d := findDiag(t, diags, c.summary)
	if d.Subject == nil {
		t.Fatalf("%q has no position", c.summary)
	}
	if d.Subject.Filename != file || d.Subject.Start.Line != c.line || d.Subject.Start.Column != c.col {
		t.Errorf("%q at %s:%d:%d, want %s:%d:%d", c.summary, d.Subject.Filename,
			d.Subject.Start.Line, d.Subject.Start.Column, file, c.line, c.col)
	}
	msg := FormatDiag(d)
	prefix := fmt.Sprintf("%s:%d:%d: error: %s", shownPath(file), c.line, c.col, c.summary)
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("message %q does not start with %q", msg, prefix)
	}
	if !strings.Contains(msg, c.hint) {
		t.Errorf("message %q does not say %q", msg, c.hint)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message %q spans lines", msg)
	}
}

var stackDiagCases = []diagCase{
	{name: "unknown attribute", src: `stack "a" {
  jobs   = ["a"]
  colour = "red"
}`, line: 3, col: 3, summary: "Unsupported argument", hint: `"colour" is not expected`},
	{name: "unknown block", src: `stack "a" {
  jobs = ["a"]
  hooks "pre_stop" {
    command = ["true"]
  }
}`, line: 3, col: 3, summary: "Unsupported block type", hint: `"hooks"`},
	{name: "unknown top-level block", src: `stack "a" {
  jobs = ["a"]
}
defaults {
}`, line: 4, col: 1, summary: "Unsupported block type", hint: `"defaults"`},
	{name: "jobs not a list", src: `stack "a" {
  jobs = {a = 1}
}`, line: 2, col: 10, summary: "Unsuitable value type", hint: "list of string required"},
	{name: "ignore_failure not a bool", src: `stack "a" {
  jobs = ["a"]
  hook "pre_stop" {
    command        = ["true"]
    ignore_failure = "maybe"
  }
}`, line: 5, col: 23, summary: "Unsuitable value type", hint: "a bool is required"},
	{name: "unit not a string", src: `stack "a" {
  jobs = ["a"]
  unit = ["a.service"]
}`, line: 3, col: 10, summary: "Unsuitable value type", hint: "string required"},
	{name: "missing jobs", src: `stack "a" {
  unit = "a-stack.service"
}`, line: 1, col: 11, summary: "Missing required argument", hint: `"jobs" is required`},
	{name: "empty jobs", src: `stack "a" {
  jobs = []
}`, line: 2, col: 10, summary: "No jobs", hint: `jobs = ["a"]`},
	{name: "blank job", src: `stack "a" {
  jobs = ["a", " "]
}`, line: 2, col: 10, summary: "Invalid job", hint: "jobs[1]"},
	{name: "stack name with a space", src: `stack "a b" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "may only contain letters, digits, '-' and '_'"},
	{name: "stack name with a dot", src: `stack "a.b" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "may only contain"},
	{name: "stack name with a percent", src: `stack "a%i" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "may only contain"},
	{name: "empty stack name", src: `stack "" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "may only contain"},
	{name: "duration without unit", src: `stack "a" {
  jobs         = ["a"]
  stop_timeout = 5
}`, line: 3, col: 18, summary: "Invalid duration", hint: `write it like "90s"`},
	{name: "duration in words", src: `stack "a" {
  jobs         = ["a"]
  wait_timeout = "6 hours"
}`, line: 3, col: 18, summary: "Invalid duration", hint: `"6h"`},
	{name: "negative duration", src: `stack "a" {
  jobs          = ["a"]
  start_timeout = "-5m"
}`, line: 3, col: 19, summary: "Invalid duration", hint: "positive duration"},
	{name: "unknown restore policy", src: `stack "a" {
  jobs           = ["a"]
  restore_policy = "never"
}`, line: 3, col: 20, summary: "Unknown restore policy", hint: `use "previous"`},
	{name: "unknown hook kind", src: `stack "a" {
  jobs = ["a"]
  hook "pre_sotp" {
    command = ["true"]
  }
}`, line: 3, col: 8, summary: "Unknown hook kind", hint: "use one of pre_stop, post_stop, pre_backup, post_backup, pre_start, post_start, verify"},
	{name: "unit without suffix", src: `stack "a" {
  jobs = ["a"]
  unit = "a-stack"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: "no unit type suffix such as .service"},
	{name: "unit with unknown suffix", src: `stack "a" {
  jobs = ["a"]
  unit = "a-stack.srvice"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: `".srvice" is not a unit type`},
	{name: "unit with a space", src: `stack "a" {
  jobs = ["a"]
  unit = "a stack.service"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: `contains ' '; systemd unit names allow only letters, digits and : - _ . \ @`},
	{name: "unit with a slash", src: `stack "a" {
  jobs = ["a"]
  unit = "a/stack.service"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: `contains '/'`},
	{name: "unit is a template", src: `stack "a" {
  jobs = ["a"]
  unit = "foo@.service"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: `name an instance such as "foo@NAME.service"`},
	{name: "unit with two @", src: `stack "a" {
  jobs = ["a"]
  unit = "foo@a@b.service"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: "more than one '@'"},
	{name: "unit with empty prefix", src: `stack "a" {
  jobs = ["a"]
  unit = "@a.service"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: "empty name before '@'"},
	{name: "unit too long", src: `stack "a" {
  jobs = ["a"]
  unit = "` + strings.Repeat("x", 248) + `.service"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: "longer than the 255 characters"},
	{name: "empty unit", src: `stack "a" {
  jobs = ["a"]
  unit = ""
}`, line: 3, col: 10, summary: "Empty value", hint: "remove the line to use the default"},
	{name: "socket is a service", src: `stack "a" {
  jobs = ["a"]
  on_demand {
    socket = "a.service"
  }
}`, line: 4, col: 14, summary: "Wrong unit type", hint: "must name a .socket unit"},
	{name: "on_demand service is a socket", src: `stack "a" {
  jobs = ["a"]
  on_demand {
    socket  = "a.socket"
    service = "b.socket"
  }
}`, line: 5, col: 15, summary: "Wrong unit type", hint: "must name a .service unit"},
	{name: "on_demand socket template", src: `stack "a" {
  jobs = ["a"]
  on_demand {
    socket = "ondemand@.socket"
  }
}`, line: 4, col: 14, summary: "Invalid unit name", hint: "is a template"},
	{name: "on_demand without socket", src: `stack "a" {
  jobs = ["a"]
  on_demand {
  }
}`, line: 3, col: 13, summary: "Missing required argument", hint: `"socket" is required`},
	{name: "two on_demand blocks", src: `stack "a" {
  jobs = ["a"]
  on_demand {
    socket = "a.socket"
  }
  on_demand {
    socket = "b.socket"
  }
}`, line: 6, col: 3, summary: "Duplicate block", hint: "only one on_demand block"},
	{name: "empty hook command", src: `stack "a" {
  jobs = ["a"]
  hook "pre_stop" {
    command = []
  }
}`, line: 4, col: 15, summary: "Empty hook command", hint: "the program first"},
	{name: "hook command empty program", src: `stack "a" {
  jobs = ["a"]
  hook "verify" {
    command = ["", "x"]
  }
}`, line: 4, col: 15, summary: "Empty hook command", hint: "the program first"},
	{name: "hook without command", src: `stack "a" {
  jobs = ["a"]
  hook "verify" {
  }
}`, line: 3, col: 17, summary: "Missing required argument", hint: `"command" is required`},
	{name: "hook program with prefix", src: `stack "a" {
  jobs = ["a"]
  hook "verify" {
    command = ["-true"]
  }
}`, line: 4, col: 16, summary: "Invalid hook program", hint: "systemd reads those as prefixes"},
	{name: "hook program relative path", src: `stack "a" {
  jobs = ["a"]
  hook "verify" {
    command = ["bin/check", "x"]
  }
}`, line: 4, col: 16, summary: "Invalid hook program", hint: "neither an absolute path nor a plain name"},
	{name: "hook program with quote", src: `stack "a" {
  jobs = ["a"]
  hook "verify" {
    command = ["/bin/it's"]
  }
}`, line: 4, col: 16, summary: "Invalid hook program", hint: "quote, backslash or control character"},
	{name: "hook program is a directory", src: `stack "a" {
  jobs = ["a"]
  hook "verify" {
    command = ["/usr/bin/"]
  }
}`, line: 4, col: 16, summary: "Invalid hook program", hint: "names a directory"},
	{name: "hook argument with NUL", src: `stack "a" {
  jobs = ["a"]
  hook "verify" {
    command = ["true", "a\u0000b"]
  }
}`, line: 4, col: 24, summary: "Invalid characters", hint: "command[1] must not contain a NUL"},
	{name: "two stacks in a file", src: `stack "a" {
  jobs = ["a"]
}

stack "b" {
  jobs = ["b"]
}`, line: 5, col: 1, summary: "More than one stack in a file", hint: "move stack \"b\" to stacks/b.hcl"},
	{name: "no stack block", src: `# nothing here
`, line: 1, col: 1, summary: "No stack block", hint: `stack "x" { jobs = ["..."] }`},
	{name: "schedule with a tab", src: `stack "a" {
  jobs     = ["a"]
  schedule = "daily\tnow"
}`, line: 3, col: 14, summary: "Invalid schedule", hint: "one line of systemd calendar syntax"},
	{name: "schedule with a newline", src: `stack "a" {
  jobs     = ["a"]
  schedule = "daily\n"
}`, line: 3, col: 14, summary: "Invalid characters", hint: "must not contain a newline"},
	{name: "relative require_paths", src: `stack "a" {
  jobs          = ["a"]
  require_paths = ["/mnt/backup", "mnt/other"]
}`, line: 3, col: 19, summary: "Invalid path", hint: `require_paths[1] = "mnt/other" must be an absolute path`},
	{name: "syntax error", src: `stack "a" {
  jobs = ["a"
}`, line: 3, col: 1, summary: "Missing item separator", hint: "Expected a comma"},
	{name: "unclosed block", src: `stack "a" {
  jobs = ["a"]
`, line: 1, col: 11, summary: "Unclosed configuration block", hint: "no closing brace"},
}

func TestParseStackDiagnostics(t *testing.T) {
	cfg := defaultConfig(t)
	for _, c := range stackDiagCases {
		t.Run(c.name, func(t *testing.T) {
			const file = "/cfg/stacks/x.hcl"
			st, diags := ParseStack(file, []byte(c.src), cfg)
			if st != nil {
				t.Errorf("a stack with errors was returned: %+v", st)
			}
			checkDiag(t, diags, file, c)
		})
	}
}

var configDiagCases = []diagCase{
	{name: "unknown attribute", src: `logdir = "/x"`, line: 1, col: 1, summary: "Unsupported argument", hint: `"logdir" is not expected`},
	{name: "unknown block", src: `notifications {
}`, line: 1, col: 1, summary: "Unsupported block type", hint: `"notifications"`},
	{name: "empty notify command", src: `notify {
  on_failure = []
}`, line: 2, col: 16, summary: "Empty command", hint: `"ntfy"`},
	{name: "relative notify program", src: `notify {
  on_success = ["bin/ntfy"]
}`, line: 2, col: 17, summary: "Invalid program", hint: "on_success"},
	{name: "healthcheck without url", src: `healthcheck {
}`, line: 1, col: 13, summary: "Missing required argument", hint: `"url"`},
	{name: "healthcheck bad url", src: `healthcheck {
  url = "hc-ping.com/secret-uuid"
}`, line: 2, col: 9, summary: "Invalid URL", hint: "https://"},
	{name: "relative metrics_file", src: `metrics_file = "metrics.prom"`, line: 1, col: 16, summary: "Invalid path", hint: "absolute"},
	{name: "unknown duplicati attribute", src: `duplicati {
  containr = "duplicati"
}`, line: 2, col: 3, summary: "Unsupported argument", hint: `"containr"`},
	{name: "bad wait_timeout", src: `duplicati {
  wait_timeout = "forever"
}`, line: 2, col: 18, summary: "Invalid duration", hint: `"6h"`},
	{name: "bad url", src: `duplicati {
  url = "127.0.0.1:8200"
  password_file = "/pw"
}`, line: 2, col: 9, summary: "Invalid URL", hint: "must start with http:// or https://"},
	{name: "warning_is_failure not bool", src: `duplicati {
  warning_is_failure = "sometimes"
}`, line: 2, col: 25, summary: "Unsuitable value type", hint: "a bool is required"},
	{name: "two duplicati blocks", src: `duplicati {
}
duplicati {
}`, line: 3, col: 1, summary: "Duplicate block", hint: "only one duplicati block"},
	{name: "unknown default policy", src: `defaults {
  restore_policy = "sometimes"
}`, line: 2, col: 20, summary: "Unknown restore policy", hint: `"always"`},
	{name: "default schedule with control char", src: `defaults {
  schedule = "daily\u0001"
}`, line: 2, col: 14, summary: "Invalid schedule", hint: "one line"},
	{name: "syntax error", src: `duplicati {`, line: 1, col: 11, summary: "Unclosed configuration block", hint: "no closing brace"},
}

func TestParseConfigDiagnostics(t *testing.T) {
	for _, c := range configDiagCases {
		t.Run(c.name, func(t *testing.T) {
			const file = "/cfg/config.hcl"
			_, diags := ParseConfig(file, []byte(c.src))
			checkDiag(t, diags, file, c)
		})
	}
}
