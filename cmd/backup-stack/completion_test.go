package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionGolden: each script is what the CLI model gives (rewrite
// with -update after changing a command), leaves out the hidden steps, and
// passes the shell's own syntax check where that shell is installed.
func TestCompletionGolden(t *testing.T) {
	c := newCLI(t, "", nil)
	// step and flag are how each script names a command and the --color flag.
	for _, sh := range []struct{ name, check, step, flag string }{
		{"bash", "bash", " %s ", "--color"}, {"zsh", "zsh", "'%s:", "--color="}, {"fish", "fish", "-a %s ", "-l color"},
	} {
		t.Run(sh.name, func(t *testing.T) {
			out, _ := c.must(0, "completion", sh.name)
			golden(t, "completion."+sh.name, []byte(out))
			for _, step := range stepCommands {
				if strings.Contains(out, fmt.Sprintf(sh.step, step)) {
					t.Errorf("the %s completion offers the hidden step %s", sh.name, step)
				}
			}
			for _, w := range []string{fmt.Sprintf(sh.step, "recover"), fmt.Sprintf(sh.step, "notify-test"), sh.flag, stackNamesCmd} {
				if !strings.Contains(out, w) {
					t.Errorf("the %s completion lacks %q", sh.name, w)
				}
			}
			if _, err := exec.LookPath(sh.check); err != nil {
				t.Skipf("%s is not installed: no syntax check", sh.check)
			}
			f := filepath.Join(t.TempDir(), "completion")
			if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(sh.check, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh.check, err, b)
			}
		})
	}
}

// TestBashCompletionCompletes runs the bash function on typed command lines,
// with a stand-in backup-stack that knows two stacks.
func TestBashCompletionCompletes(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	c := newCLI(t, "", nil)
	script, _ := c.must(0, "completion", "bash")
	cases := []struct {
		words []string // the last is the word being completed
		want  string
	}{
		{[]string{"r"}, "recover reload render run"},
		{[]string{"run", ""}, "alpha beta"},
		{[]string{"run", "alpha", ""}, ""},
		{[]string{"--config", "/x", "run", "b"}, "beta"},
		{[]string{"notify-test", "--", ""}, "alpha beta"},
		{[]string{"list", "--color", ""}, "always auto never"},
		{[]string{"list", "--j"}, "--json"},
		{[]string{"completion", ""}, "bash fish zsh"},
		{[]string{"gate", ""}, ""},
		{[]string{"wai"}, ""},
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "completion.bash")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		words := append([]string{"backup-stack"}, tc.words...)
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, shQuote(w))
		}
		prog := `source "$1"
backup-stack() { [[ "$*" == "list --names" ]] && printf 'alpha\nbeta\n'; }
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_backup_stack
printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' '`
		out, err := exec.Command("bash", "-c", prog, "bash", f).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.words, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("completing %q: %q, want %q", strings.Join(tc.words, " "), got, tc.want)
		}
	}
}
