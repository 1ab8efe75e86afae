package hcl

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	hhcl "github.com/hashicorp/hcl/v2"
)

// writeTree creates files (relative path -> content) below a new temporary
// directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func errorsOf(diags hhcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		if d.Severity == hhcl.DiagError {
			out = append(out, FormatDiag(d))
		}
	}
	return out
}

func names(set *Set) []string {
	var out []string
	for _, s := range set.Stacks {
		out = append(out, s.Name)
	}
	return out
}

func TestLoadDefaults(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"config.hcl": `
duplicati {
  wait_timeout = "3h"
  run_timeout  = "40s"
}
defaults {
  schedule       = "*-*-* 02:00:00"
  restore_policy = "always"
}
`,
		"stacks/plain.hcl": `stack "plain" {
  jobs = ["plain"]
}`,
		"stacks/custom.hcl": `stack "custom" {
  unit           = "custom.service"
  project_label  = "cust"
  jobs           = ["c1", "2"]
  schedule       = "weekly"
  restore_policy = "previous"
  stop_timeout   = "30s"
  start_timeout  = "1m"
  wait_timeout   = "1h"
  require_paths  = ["/mnt/backup"]
  on_demand {
    socket = "custom.socket"
  }
  hook "pre_stop" {
    command = ["a"]
  }
  hook "post_start" {
    command        = ["b", "x"]
    ignore_failure = true
  }
  hook "pre_stop" {
    command = ["c"]
  }
}`,
		"stacks/off.hcl": `stack "off" {
  jobs     = ["off"]
  schedule = ""
}`,
	})
	set, diags := Load(dir)
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if got, want := names(set), []string{"custom", "off", "plain"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("stacks %v, want %v (sorted)", got, want)
	}
	if set.Config.Duplicati.WaitTimeout != 3*time.Hour || set.Config.Duplicati.RunTimeout != 40*time.Second {
		t.Errorf("duplicati %+v", set.Config.Duplicati)
	}
	if set.Config.Duplicati.Container != DefaultContainer || set.Config.Duplicati.ServerUtil != DefaultServerUtil {
		t.Errorf("duplicati defaults lost: %+v", set.Config.Duplicati)
	}

	plain, _ := set.Stack("plain")
	want := &Stack{
		Name: "plain", Unit: "plain-stack.service", ProjectLabel: "plain", Jobs: []string{"plain"},
		Schedule: "*-*-* 02:00:00", RestorePolicy: RestoreAlways,
		StopTimeout: DefaultStopTimeout, StartTimeout: DefaultStartTimeout, WaitTimeout: 3 * time.Hour,
		File: filepath.Join(dir, "stacks", "plain.hcl"), Range: plain.Range,
	}
	if !reflect.DeepEqual(plain, want) {
		t.Errorf("plain stack\n got %+v\nwant %+v", plain, want)
	}
	if plain.Range.Start.Line != 1 || plain.Range.Filename != want.File {
		t.Errorf("range %v", plain.Range)
	}

	custom, _ := set.Stack("custom")
	if custom.Unit != "custom.service" || custom.ProjectLabel != "cust" || custom.Schedule != "weekly" ||
		custom.RestorePolicy != RestorePrevious || custom.StopTimeout != 30*time.Second ||
		custom.StartTimeout != time.Minute || custom.WaitTimeout != time.Hour ||
		!reflect.DeepEqual(custom.Jobs, []string{"c1", "2"}) ||
		!reflect.DeepEqual(custom.RequirePaths, []string{"/mnt/backup"}) {
		t.Errorf("custom stack %+v", custom)
	}
	if custom.OnDemand == nil || custom.OnDemand.Socket != "custom.socket" || custom.OnDemand.Service != "" {
		t.Errorf("on_demand %+v", custom.OnDemand)
	}
	var got []string
	for _, h := range custom.HooksOf("pre_stop") {
		got = append(got, h.Command[0])
	}
	if !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("pre_stop hooks in file order: %v", got)
	}
	if ps := custom.HooksOf("post_start"); len(ps) != 1 || !ps[0].IgnoreFailure || ps[0].Range.Start.Line != 17 {
		t.Errorf("post_start %+v", ps)
	}

	off, _ := set.Stack("off")
	if off.Schedule != "" {
		t.Errorf(`schedule = "" must turn the default schedule off, got %q`, off.Schedule)
	}
	if _, ok := set.Stack("nope"); ok {
		t.Error("Stack found a stack that does not exist")
	}
}

func TestLoadBuiltinDefaults(t *testing.T) {
	dir := writeTree(t, map[string]string{"stacks/a.hcl": `stack "a" { jobs = ["a"] }`})
	set, diags := Load(dir)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	if set.Config.File != "" {
		t.Errorf("config file %q without config.hcl", set.Config.File)
	}
	a := set.Stacks[0]
	if a.Schedule != "" || a.RestorePolicy != RestorePrevious || a.WaitTimeout != DefaultWaitTimeout {
		t.Errorf("built-in defaults not applied: %+v", a)
	}
}

func TestLoadIgnoresTemplatesAndOtherFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"stacks/_template.hcl":   `this is not even HCL {`,
		"stacks/.hidden.hcl":     `stack "hidden" { jobs = ["x"] }`,
		"stacks/notes.txt":       `stack "txt" { jobs = ["x"] }`,
		"stacks/a.hcl.bak":       `stack "bak" { jobs = ["x"] }`,
		"stacks/dir.hcl/x.hcl":   `stack "dir" { jobs = ["x"] }`,
		"stacks/real.hcl":        `stack "real" { jobs = ["x"] }`,
		"stacks/_disabled.hcl":   `stack "disabled" { jobs = ["x"] }`,
		"stacks/sub/ignored.hcl": `stack "sub" { jobs = ["x"] }`,
	})
	set, diags := Load(dir)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	if got := names(set); !reflect.DeepEqual(got, []string{"real"}) {
		t.Errorf("stacks %v, want [real]", got)
	}
	if len(set.Broken) != 0 {
		t.Errorf("broken %v", set.Broken)
	}
}

func TestLoadNoConfigDir(t *testing.T) {
	set, diags := Load(filepath.Join(t.TempDir(), "missing"))
	if len(diags) > 0 || len(set.Stacks) != 0 || len(set.Broken) != 0 || set.Config == nil {
		t.Errorf("missing dir: %+v %v", set, diags)
	}
}

func TestLoadRelativeDirGivesAbsoluteFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{"stacks/a.hcl": `stack "a" { jobs = ["a"] }`})
	t.Chdir(dir)
	set, diags := Load(".")
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	if f := set.Stacks[0].File; !filepath.IsAbs(f) {
		t.Errorf("File %q is not absolute; SourcePath= would be ignored by systemd", f)
	}
}

func TestLoadSameStackTwice(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"stacks/a-first.hcl":  "stack \"x\" {\n  jobs = [\"first\"]\n}\n",
		"stacks/b-second.hcl": "# again\nstack \"x\" {\n  jobs = [\"second\"]\n}\n",
		"stacks/y.hcl":        `stack "y" { jobs = ["y"] }`,
	})
	set, diags := Load(dir)
	second := filepath.Join(dir, "stacks", "b-second.hcl")
	checkDiag(t, diags, second, diagCase{line: 2, col: 1, summary: "Stack defined twice",
		hint: "a-first.hcl:1,1-10; rename one of them (this file is skipped)"})
	if got := names(set); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Fatalf("stacks %v", got)
	}
	if x, _ := set.Stack("x"); x.Jobs[0] != "first" {
		t.Errorf("the first definition must be kept, got %v", x.Jobs)
	}
	if !reflect.DeepEqual(set.Broken, []string{second}) {
		t.Errorf("broken %v", set.Broken)
	}
	// A file named differently from its stack only warns.
	var warned bool
	for _, d := range diags {
		if d.Severity == hhcl.DiagWarning && d.Summary == "File name differs from stack name" &&
			d.Subject.Filename == filepath.Join(dir, "stacks", "a-first.hcl") {
			warned = true
			if !strings.Contains(d.Detail, "name the file x.hcl") {
				t.Errorf("warning %q", d.Detail)
			}
		}
	}
	if !warned {
		t.Error("no warning for a-first.hcl defining stack x")
	}
}

func TestLoadBrokenStackKeepsOthers(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"stacks/a.hcl":   `stack "a" { jobs = ["a"] }`,
		"stacks/bad.hcl": "stack \"bad\" {\n  jobs = []\n}\n",
		"stacks/c.hcl":   `stack "c" { jobs = ["c"] }`,
	})
	set, diags := Load(dir)
	bad := filepath.Join(dir, "stacks", "bad.hcl")
	checkDiag(t, diags, bad, diagCase{line: 2, col: 10, summary: "No jobs", hint: "at least one"})
	if got := names(set); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("stacks %v", got)
	}
	if !reflect.DeepEqual(set.Broken, []string{bad}) {
		t.Errorf("broken %v", set.Broken)
	}
}

func TestLoadBrokenConfigUsesDefaults(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"config.hcl":   "duplicati {\n  wait_timeout = \"1h\"\n  container = 5m\n}\ndefaults {\n  schedule = \"daily\"\n}\n",
		"stacks/a.hcl": `stack "a" { jobs = ["a"] }`,
	})
	set, diags := Load(dir)
	cfgPath := filepath.Join(dir, "config.hcl")
	if errs := errorsOf(diags); len(errs) == 0 || !strings.HasPrefix(errs[0], cfgPath+":3:") {
		t.Errorf("errors %v", errs)
	}
	if !reflect.DeepEqual(set.Broken, []string{cfgPath}) {
		t.Errorf("broken %v", set.Broken)
	}
	if set.Config.Duplicati.WaitTimeout != DefaultWaitTimeout || set.Config.Defaults.Schedule != "" {
		t.Errorf("a broken config.hcl must leave the built-in defaults, got %+v", set.Config)
	}
	if got := names(set); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("stacks %v", got)
	}
	if set.Stacks[0].WaitTimeout != DefaultWaitTimeout || set.Stacks[0].Schedule != "" {
		t.Errorf("stack did not get the built-in defaults: %+v", set.Stacks[0])
	}
}

func TestLoadUnreadableConfig(t *testing.T) {
	dir := writeTree(t, map[string]string{"stacks/a.hcl": `stack "a" { jobs = ["a"] }`})
	if err := os.Mkdir(filepath.Join(dir, "config.hcl"), 0o755); err != nil { // a directory cannot be read as a file
		t.Fatal(err)
	}
	set, diags := Load(dir)
	if errs := errorsOf(diags); len(errs) != 1 || !strings.Contains(errs[0], "Cannot read file") {
		t.Errorf("errors %v", errs)
	}
	if len(set.Stacks) != 1 || len(set.Broken) != 1 {
		t.Errorf("set %+v", set)
	}
}

func TestDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	t.Setenv("HOME", "/home/u")
	if d, err := Dir(); err != nil || d != "/xdg/backup-stack" {
		t.Errorf("XDG_CONFIG_HOME: %q %v", d, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	if d, err := Dir(); err != nil || d != "/home/u/.config/backup-stack" {
		t.Errorf("HOME: %q %v", d, err)
	}
	// The XDG base directory spec says relative paths are invalid and must be ignored.
	t.Setenv("XDG_CONFIG_HOME", "relative/dir")
	if d, err := Dir(); err != nil || d != "/home/u/.config/backup-stack" {
		t.Errorf("relative XDG_CONFIG_HOME: %q %v", d, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	if d, err := Dir(); err == nil {
		t.Errorf("no HOME: %q, want an error", d)
	}
}

// TestLoadStackFileOfItsNameWins: when stacks/x.hcl and another file both
// define stack x, stacks/x.hcl wins in Load, as it does in LoadStack.
func TestLoadStackFileOfItsNameWins(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"stacks/0-early.hcl": "stack \"x\" {\n  jobs = [\"early\"]\n}\n",
		"stacks/x.hcl":       "stack \"x\" {\n  jobs = [\"own\"]\n}\n",
	})
	set, diags := Load(dir)
	early := filepath.Join(dir, "stacks", "0-early.hcl")
	checkDiag(t, diags, early, diagCase{line: 1, col: 1, summary: "Stack defined twice", hint: "x.hcl:1,1-10"})
	if x, ok := set.Stack("x"); !ok || x.Jobs[0] != "own" {
		t.Fatalf("Load kept %+v, want the definition in x.hcl", x)
	}
	if !reflect.DeepEqual(set.Broken, []string{early}) {
		t.Errorf("broken %v", set.Broken)
	}
	one, _ := LoadStack(dir, "x")
	if len(one.Stacks) != 1 || one.Stacks[0].Jobs[0] != "own" {
		t.Errorf("LoadStack gave %+v", one.Stacks)
	}
}

func TestLoadStack(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"config.hcl":        "defaults {\n  restore_policy = \"always\"\n}\n",
		"stacks/a.hcl":      `stack "a" { jobs = ["a"] }`,
		"stacks/broken.hcl": `stack "broken" { jobs = 7 }`,
		"stacks/other.hcl":  `stack "misnamed" { jobs = ["m"] }`,
		"stacks/z.hcl":      `stack "z" { jobs = [`,
	})
	for _, tc := range []struct {
		name       string
		wantStack  bool
		wantBroken []string
	}{
		{"a", true, nil},
		{"broken", false, []string{"stacks/broken.hcl"}},
		// Not in a file of its name: every file is read, as Load does.
		{"misnamed", true, []string{"stacks/broken.hcl", "stacks/z.hcl"}},
		{"missing", false, []string{"stacks/broken.hcl", "stacks/z.hcl"}},
		{"../a", false, []string{"stacks/broken.hcl", "stacks/z.hcl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, _ := LoadStack(dir, tc.name)
			if set.Config.Defaults.RestorePolicy != RestoreAlways {
				t.Errorf("config.hcl not read: %+v", set.Config.Defaults)
			}
			st, ok := set.Stack(tc.name)
			if ok != tc.wantStack || len(set.Stacks) > 1 {
				t.Fatalf("stacks %v, want %q: %v", names(set), tc.name, tc.wantStack)
			}
			if ok && st.RestorePolicy != RestoreAlways {
				t.Errorf("defaults not applied: %q", st.RestorePolicy)
			}
			var broken []string
			for _, b := range set.Broken {
				rel, _ := filepath.Rel(dir, b)
				broken = append(broken, filepath.ToSlash(rel))
			}
			if !reflect.DeepEqual(broken, tc.wantBroken) {
				t.Errorf("broken %v, want %v", broken, tc.wantBroken)
			}
		})
	}
}
