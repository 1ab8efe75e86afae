package hcl

import (
	"strings"
	"testing"
)

// hookSrc is a stack file with one hook whose command is the HCL list cmd,
// written on line 4 as `    command = [...]` (the list starts at column 15).
func hookSrc(kind, cmd string) string {
	return "stack \"a\" {\n  jobs = [\"a\"]\n  hook \"" + kind + "\" {\n    command = [" + cmd + "]\n  }\n}\n"
}

// What reaches a unit file: each case would have passed the decoder before
// (and been written into a drop-in that systemd stops reading, or skipped
// by the generator only), and is now refused with its position.
var unitTextCases = []diagCase{
	{name: "stack name -h", src: `stack "-h" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "must start with a letter or a digit"},
	{name: "stack name --help", src: `stack "--help" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "--help would be read as an option"},
	{name: "stack name --version", src: `stack "--version" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "starts with '-'"},
	{name: "stack name _x", src: `stack "_x" {
  jobs = ["a"]
}`, line: 1, col: 7, summary: "Invalid stack name", hint: "starts with '_'"},
	{name: "pre_start argument ending in U+10FFFF", src: hookSrc("pre_start", `"/bin/echo", "restore\U0010FFFF"`),
		line: 4, col: 29, summary: "Character systemd refuses", hint: "command[1]: U+10FFFF (character 8) is a Unicode noncharacter"},
	{name: "pre_stop argument U+FDD0", src: hookSrc("pre_stop", `"/bin/echo", "a", "\uFDD0"`),
		line: 4, col: 34, summary: "Character systemd refuses", hint: `"String is not UTF-8 clean"`},
	{name: "verify argument U+1FFFE written raw", src: hookSrc("verify", "\"/bin/echo\", \"x\U0001FFFE\""),
		line: 4, col: 29, summary: "Character systemd refuses", hint: "U+1FFFE"},
	{name: "post_backup program with U+FFFF", src: hookSrc("post_backup", `"/opt/x\uFFFF/run"`),
		line: 4, col: 16, summary: "Character systemd refuses", hint: "command[0]: U+FFFF"},
	{name: "heredoc argument with U+FFFE", src: "stack \"a\" {\n  jobs = [\"a\"]\n  hook \"verify\" {\n    command = [\"/bin/echo\", <<EOT\nx\uFFFE\nEOT\n    ]\n  }\n}\n",
		line: 4, col: 29, summary: "Character systemd refuses", hint: "U+FFFE (character 2)"},
	{name: "argument over MAX_ARG_STRLEN", src: hookSrc("post_stop", `"/bin/echo", "`+strings.Repeat("a", 131072)+`"`),
		line: 4, col: 29, summary: "Argument too long", hint: "command[1]: it is 131072 bytes long; the kernel passes at most 131071"},
	{name: "600 KB hook line", src: hookSrc("pre_stop", `"/bin/echo"`+strings.Repeat(`, "`+strings.Repeat("b", 120000)+`"`, 5)),
		line: 4, col: 15, summary: "Command too long", hint: "at most 507904 fit"},
	// 300 KB of backslashes, each written as two in the unit file.
	{name: "hook line of 300 KB of backslashes", src: hookSrc("verify", `"/bin/echo"`+strings.Repeat(`, "`+strings.Repeat(`\\`, 100000)+`"`, 3)),
		line: 4, col: 15, summary: "Command too long", hint: "put the long part into a script"},
	{name: "unit of another type", src: `stack "a" {
  jobs = ["a"]
  unit = "a.target"
}`, line: 3, col: 10, summary: "Wrong unit type", hint: `"a.target" must name a .service unit`},
	{name: "unit is the root mount", src: `stack "a" {
  jobs = ["a"]
  unit = "-.mount"
}`, line: 3, col: 10, summary: "Special unit", hint: "the root file system"},
	{name: "unit is dbus", src: `stack "a" {
  jobs = ["a"]
  unit = "dbus.service"
}`, line: 3, col: 10, summary: "Special unit", hint: "must never stop it"},
	{name: "unit is a backup unit", src: `stack "a" {
  jobs = ["a"]
  unit = "backup@b.service"
}`, line: 3, col: 10, summary: "Reserved unit name", hint: "would stop the backup itself"},
	{name: "unit is a hold unit", src: `stack "a" {
  jobs = ["a"]
  unit = "backup-hold@a.service"
}`, line: 3, col: 10, summary: "Reserved unit name", hint: "backup-stack's own units"},
	{name: "unit is the recovery", src: `stack "a" {
  jobs = ["a"]
  unit = "backup-recover.service"
}`, line: 3, col: 10, summary: "Reserved unit name", hint: "own units"},
	{name: "unit starts with a dash", src: `stack "a" {
  jobs = ["a"]
  unit = "-a.service"
}`, line: 3, col: 10, summary: "Invalid unit name", hint: "read as an option"},
	{name: "socket is the render path unit", src: `stack "a" {
  jobs = ["a"]
  on_demand {
    socket = "backup-generator-render.path"
  }
}`, line: 4, col: 14, summary: "Reserved unit name", hint: "own units"},
	{name: "socket is dbus", src: `stack "a" {
  jobs = ["a"]
  on_demand {
    socket = "dbus.socket"
  }
}`, line: 4, col: 14, summary: "Special unit", hint: "D-Bus"},
	{name: "on_demand service is the notifier", src: `stack "a" {
  jobs = ["a"]
  on_demand {
    socket  = "a.socket"
    service = "backup-notify@a.service"
  }
}`, line: 5, col: 15, summary: "Reserved unit name", hint: "own units"},
	{name: "schedule with a backslash", src: `stack "a" {
  jobs     = ["a"]
  schedule = "daily\\"
}`, line: 3, col: 14, summary: "Invalid schedule", hint: "backslash"},
	{name: "schedule with a noncharacter", src: `stack "a" {
  jobs     = ["a"]
  schedule = "daily\uFFFF"
}`, line: 3, col: 14, summary: "Invalid schedule", hint: "noncharacter"},
}

func TestUnitTextDiagnostics(t *testing.T) {
	cfg := defaultConfig(t)
	for _, c := range unitTextCases {
		t.Run(c.name, func(t *testing.T) {
			const file = "/cfg/stacks/x.hcl"
			st, diags := ParseStack(file, []byte(c.src), cfg)
			if st != nil {
				t.Errorf("a stack with errors was returned")
			}
			checkDiag(t, diags, file, c)
		})
	}
}

func TestUnitTextConfigDiagnostics(t *testing.T) {
	for _, c := range []diagCase{
		{name: "default schedule with a noncharacter", src: "defaults {\n  schedule = \"daily\\U0010FFFF\"\n}",
			line: 2, col: 14, summary: "Invalid schedule", hint: "U+10FFFF"},
		{name: "default schedule with a backslash", src: "defaults {\n  schedule = \"da\\\\ily\"\n}",
			line: 2, col: 14, summary: "Invalid schedule", hint: "backslash"},
		{name: "notify argument over MAX_ARG_STRLEN", src: "notify {\n  on_failure = [\"ntfy\", \"" + strings.Repeat("x", 131072) + "\"]\n}",
			line: 2, col: 25, summary: "Argument too long", hint: "on_failure[1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			const file = "/cfg/config.hcl"
			_, diags := ParseConfig(file, []byte(c.src))
			checkDiag(t, diags, file, c)
		})
	}
}

// The path of a stack file becomes SourcePath= of its units: a path that no
// unit file line can hold is refused at the file's first line.
func TestUnusableFileNames(t *testing.T) {
	cfg := defaultConfig(t)
	src := []byte("stack \"a\" {\n  jobs = [\"a\"]\n}\n")
	for _, c := range []struct{ file, hint string }{
		{"/cfg/stacks/a\tb.hcl", "U+0009 (tab, character 14)"},
		{"/cfg/stacks/a\nb.hcl", "newline"},
		{"/cfg/stacks/a\x01.hcl", "control character"},
		{"/cfg/stacks/\U0010FFFF.hcl", "noncharacter"},
		{"/cfg/stacks/a\xff.hcl", "not UTF-8"},
		{"/c\uFDD0fg/stacks/a.hcl", "noncharacter"},
		{"/" + strings.Repeat("d/", 2100) + "a.hcl", "PATH_MAX"},
	} {
		st, diags := ParseStack(c.file, src, cfg)
		if st != nil {
			t.Errorf("%q: a stack was returned", c.file)
		}
		checkDiag(t, diags, c.file, diagCase{line: 1, col: 1, summary: "Unusable file name", hint: c.hint})
	}
	for _, ok := range []string{"/cfg/stacks/a.hcl", "/cfg/st acks/a b.hcl", "/cfg/100%/ünï.hcl"} {
		if st, diags := ParseStack(ok, src, cfg); st == nil {
			t.Errorf("%q refused: %v", ok, diags)
		}
	}
}
