package shimport

import (
	"reflect"
	"strings"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/backup-stack/backup-stack/hcl"
)

// value evaluates NAME's last value after parsing src.
func value(t *testing.T, src, name string) (string, []string, error) {
	t.Helper()
	f, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	ev := evaluate(f)
	return ev.scalar[name], ev.array[name], ev.errs[name]
}

func TestParseValues(t *testing.T) {
	cases := []struct {
		name, src string
		want      string
		wantArr   []string
		wantErr   string
	}{
		{"plain", "X=abc", "abc", nil, ""},
		{"double quotes", `X="a b"`, "a b", nil, ""},
		{"single quotes", `X='a "b" $c \d'`, `a "b" $c \d`, nil, ""},
		{"escapes in double quotes", `X="a\"b\\c\$d\e"`, `a"b\c$d\e`, nil, ""},
		{"unquoted backslash", `X=a\ b\\c`, `a b\c`, nil, ""},
		{"concatenation", `X="a"'b'c`, "abc", nil, ""},
		{"empty", `X=`, "", nil, ""},
		{"empty quotes", `X=""`, "", nil, ""},
		{"comment after", `X=a # comment`, "a", nil, ""},
		{"hash inside word", `X=a#b`, "a#b", nil, ""},
		{"variable", "A=x\nX=\"${A}-stack.service\"", "x-stack.service", nil, ""},
		{"bare variable", "A=x\nX=$A.y", "x.y", nil, ""},
		{"default unset", `X="${A:-120}"`, "120", nil, ""},
		{"default set", "A=5\nX=${A:-120}", "5", nil, ""},
		{"export", `export X="v"`, "v", nil, ""},
		{"declare array", `declare -a X=(a b)`, "a", []string{"a", "b"}, ""},
		{"ansi-c", `X=$'a\tb'`, "a\tb", nil, ""},
		{"array", `X=(a b "c d")`, "a", []string{"a", "b", "c d"}, ""},
		{"array multiline with comments", "X=(\n  'a' # first\n  \"b c\"\n)", "a", []string{"a", "b c"}, ""},
		{"array append", "X=(a)\nX+=(b)", "a", []string{"a", "b"}, ""},
		{"empty array", "X=()", "", []string{}, ""},
		{"several on a line", "A=1 X=2", "2", nil, ""},
		{"semicolons", "A=1; X=2;", "2", nil, ""},
		{"line continuation", "X=\"a\\\nb\"", "ab", nil, ""},
		{"command substitution", `X="$(hostname)"`, "", nil, "command substitution"},
		{"backquotes", "X=`hostname`", "", nil, "command substitution"},
		{"arithmetic", `X=$((60*2))`, "", nil, "arithmetic"},
		{"unknown variable", `X="$NOPE"`, "", nil, "$NOPE, which this file does not set"},
		{"positional", `X=$1`, "", nil, "special parameter"},
		{"tilde", `X=~/backup`, "", nil, "~"},
		{"other expansion", "A=x\nX=${A%x}", "", nil, "expansion"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, arr, err := value(t, c.src, "X")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("value %q, want %q", got, c.want)
			}
			if c.wantArr != nil && !reflect.DeepEqual(arr, c.wantArr) {
				t.Errorf("array %q, want %q", arr, c.wantArr)
			}
		})
	}
}

func TestParseFunctions(t *testing.T) {
	cases := []struct {
		name, src, fn, body string
		line                int
	}{
		{"one line", "f() { echo hi; }", "f", " echo hi; ", 1},
		{"brace on next line", "\n\nf()\n{\n  echo hi\n}", "f", "\n  echo hi\n", 3},
		{"function keyword", "function f {\n  x\n}", "f", "\n  x\n", 1},
		{"function keyword with parens", "function f() { x; }", "f", " x; ", 1},
		{"space before parens", "f () { x; }", "f", " x; ", 1},
		{"nested braces", "f() {\n  if true; then { a; }; fi\n  g() { b; }\n}", "f", "\n  if true; then { a; }; fi\n  g() { b; }\n", 1},
		{"braces in quotes and expansions", "f() {\n  echo '}' \"}\" ${X} ${Y:-}} \\}\n}", "f", "\n  echo '}' \"}\" ${X} ${Y:-}} \\}\n", 1},
		{"brace as argument", "f() {\n  echo } {\n}", "f", "\n  echo } {\n", 1},
		{"comment with brace", "f() {\n  x # }\n}", "f", "\n  x # }\n", 1},
		{"command substitution", "f() {\n  x=$(echo }; echo \")\")\n}", "f", "\n  x=$(echo }; echo \")\")\n", 1},
		{"case", "f() {\n  case $1 in a) { x; } ;; *) y ;; esac\n}", "f", "\n  case $1 in a) { x; } ;; *) y ;; esac\n", 1},
		{"here-document", "f() {\n  cat <<EOF\n}\nEOF\n}", "f", "\n  cat <<EOF\n}\nEOF\n", 1},
		{"here-document, quoted, tabs", "f() {\n\tcat <<-'E'\n\t}\n\tE\n}", "f", "\n\tcat <<-'E'\n\t}\n\tE\n", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.src)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Funcs) != 1 || len(f.Unsupported) != 0 {
				t.Fatalf("funcs %+v, unsupported %+v", f.Funcs, f.Unsupported)
			}
			fn := f.Funcs[0]
			if fn.Name != c.fn || fn.Body != c.body || fn.Line != c.line {
				t.Errorf("got %s %q at %d, want %s %q at %d", fn.Name, fn.Body, fn.Line, c.fn, c.body, c.line)
			}
		})
	}
}

func TestParseUnsupported(t *testing.T) {
	cases := []struct {
		name, src string
		lines     []int
		why       string
	}{
		{"source", "A=1\nsource ./common.sh\nB=2", []int{2}, "shell command"},
		{"dot", "\n. ./common.sh", []int{2}, "shell command"},
		{"if at top level", "A=1\nif [ -n \"$X\" ]; then\n  A=2\nfi\nB=3\nset -e", []int{2, 6}, "shell command"},
		{"multi-line while", "while read x; do\n  echo }\ndone < f\nB=2", []int{1}, "shell command"},
		{"and-list over lines", "[ -f x ] &&\n  A=2\nB=3", []int{1}, "shell command"},
		{"env prefix", "A=1 cmd arg", []int{1}, "variables set"},
		{"subshell function", "f() ( x )", []int{1}, "body is not"},
		{"case", "case $X in\n a) A=1 ;;\nesac\nB=1", []int{1}, "shell command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.src)
			if err != nil {
				t.Fatal(err)
			}
			var lines []int
			for _, u := range f.Unsupported {
				lines = append(lines, u.Line)
				if !strings.Contains(u.Why, c.why) {
					t.Errorf("line %d: why %q, want %q", u.Line, u.Why, c.why)
				}
			}
			if !reflect.DeepEqual(lines, c.lines) {
				t.Errorf("unsupported at %v, want %v (%+v)", lines, c.lines, f.Unsupported)
			}
			for _, a := range f.Assigns {
				if a.Name == "A" && a.Words[0] == "2" {
					t.Errorf("an assignment inside an unsupported command was taken: %+v", a)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
	}{
		{"unterminated double quote", "A=1\nB=\"abc\n\n", 2},
		{"unterminated single quote", "A='x", 1},
		{"unbalanced function", "A=1\nf() {\n  echo\n", 2},
		{"unterminated here-document", "f() {\n cat <<EOF\n}\n", 2},
		{"unterminated command substitution", "A=$(x", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.src)
			se, ok := err.(*SyntaxError)
			if !ok {
				t.Fatalf("error %v, want a SyntaxError", err)
			}
			if se.Line != c.line {
				t.Errorf("line %d (%v), want %d", se.Line, se, c.line)
			}
		})
	}
}

func TestHCLString(t *testing.T) {
	for _, s := range []string{"", "plain", `a"b\c`, "${X} $${Y} %{if} %%{z} $ % $x", "line\nline\ttab\r", "\x01\x7f\u2028", "ünï ✓", `\${`} {
		q := hclString(s)
		expr, diags := hclsyntax.ParseExpression([]byte(q), "x.hcl", hhcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%q -> %s: %v", s, q, diags)
		}
		var v string
		if diags := gohcl.DecodeExpression(expr, nil, &v); diags.HasErrors() || v != s {
			t.Errorf("%q -> %s -> %q %v", s, q, v, diags)
		}
	}
}

// convertOK converts src and checks that the stack decoder (the code of
// backup-stack validate and the generator) accepts the result.
func convertOK(t *testing.T, name, src string, opt Options) (*Result, *hcl.Stack) {
	t.Helper()
	res, err := Convert(name, []byte(src), opt)
	if err != nil {
		t.Fatal(err)
	}
	st, diags := hcl.ParseStack("/x/"+res.Name+".hcl", []byte(res.HCL), &hcl.Config{})
	if st == nil || diags.HasErrors() {
		t.Fatalf("not valid: %v\n%s", diags, res.HCL)
	}
	return res, st
}

func issuesText(res *Result) string {
	var b strings.Builder
	for _, is := range res.Issues {
		b.WriteString(is.Format("f.sh") + "\n")
	}
	return b.String()
}

func TestConvertHooks(t *testing.T) {
	src := `STACK_NAME=app
UNIT=app-stack
DUPLICATI_JOBS=(app)
C="app-ctr"
D="${C}-db"
LIST=(a b)
helper() {
  podman exec "$D" true
}
stack_pre_backup() {
  local n=1
  helper || return 1
  echo "${C} $HOME $SERVICE_RESULT $MYSTERY %{x} \\ 'q'"
}
stack_post_backup() {
  for j in "${LIST[@]}"; do echo "$j"; done
}
unused() { :; }
stack_verify() { :; }
`
	res, st := convertOK(t, "app.sh", src, Options{})
	if st.Unit != "app-stack.service" {
		t.Errorf("unit %q", st.Unit)
	}
	pre := st.HooksOf("pre_backup")
	if len(pre) != 1 {
		t.Fatalf("hooks %+v", st.Hooks)
	}
	want := "C=\"app-ctr\"\nD=\"${C}-db\"\nhelper() {\n  podman exec \"$D\" true\n}\nstack_pre_backup() {\n  local n=1\n  helper || return 1\n  echo \"${C} $HOME $SERVICE_RESULT $MYSTERY %{x} \\\\ 'q'\"\n}\nstack_pre_backup"
	if got := pre[0].Command; len(got) != 3 || got[0] != "/bin/sh" || got[1] != "-c" || got[2] != want {
		t.Errorf("command %q\nwant %q", got, want)
	}
	if len(st.HooksOf("verify")) != 0 {
		t.Errorf("an empty hook was converted")
	}
	issues := issuesText(res)
	for _, w := range []string{
		"f.sh:10: stack_pre_backup() uses $MYSTERY, which this file does not set",
		"f.sh:15: stack_post_backup() uses the array LIST",
		"f.sh:15: stack_post_backup() looks like bash (arrays)",
		"f.sh:18: function unused() is not a hook and no hook calls it",
	} {
		if !strings.Contains(issues, w) {
			t.Errorf("issues lack %q:\n%s", w, issues)
		}
	}
	if strings.Contains(issues, "$HOME") || strings.Contains(issues, "$n") || strings.Contains(issues, "$j,") {
		t.Errorf("false alarm:\n%s", issues)
	}
	// With bash, the array goes along.
	res, st = convertOK(t, "app.sh", src, Options{Shell: "/bin/bash"})
	post := st.HooksOf("post_backup")[0].Command
	if post[0] != "/bin/bash" || !strings.HasPrefix(post[2], "LIST=(a b)\n") {
		t.Errorf("bash command %q", post)
	}
	if strings.Contains(issuesText(res), "array") {
		t.Errorf("array reported with bash:\n%s", issuesText(res))
	}
}

func TestConvertSettings(t *testing.T) {
	cases := []struct {
		name, src string
		check     func(*hcl.Stack) bool
		issue     string // "" = no issue at all
	}{
		{"defaults", "DUPLICATI_JOBS=(j)", func(s *hcl.Stack) bool {
			return s.Unit == "s-stack.service" && s.ProjectLabel == "s" && s.OnDemand == nil
		}, ""},
		{"scalar jobs", "DUPLICATI_JOBS=j", func(s *hcl.Stack) bool { return reflect.DeepEqual(s.Jobs, []string{"j"}) }, ""},
		{"timeouts", "DUPLICATI_JOBS=(j)\nSTOP_TIMEOUT=45\nSTART_TIMEOUT=3600\nDUPLICATI_WAIT_TIMEOUT=28800",
			func(s *hcl.Stack) bool {
				return s.StopTimeout.String() == "45s" && s.StartTimeout.String() == "1h0m0s" && s.WaitTimeout.String() == "8h0m0s"
			}, ""},
		{"bad timeout", "DUPLICATI_JOBS=(j)\nSTOP_TIMEOUT=2m", func(s *hcl.Stack) bool { return true }, "f.sh:2: STOP_TIMEOUT=\"2m\" is not a positive number of seconds"},
		{"bad policy", "DUPLICATI_JOBS=(j)\nRESTORE_POLICY=never", func(s *hcl.Stack) bool { return s.RestorePolicy == "" }, "f.sh:2: RESTORE_POLICY=\"never\""},
		{"socket without freeze", "DUPLICATI_JOBS=(j)\nONDEMAND_SOCKET=a.socket", func(s *hcl.Stack) bool { return s.OnDemand == nil }, "FREEZE_ONDEMAND is not \"yes\""},
		{"freeze without service", "DUPLICATI_JOBS=(j)\nFREEZE_ONDEMAND=yes\nONDEMAND_SOCKET=a.socket",
			func(s *hcl.Stack) bool {
				return s.OnDemand != nil && s.OnDemand.Socket == "a.socket" && s.OnDemand.Service == ""
			}, ""},
		{"global settings", "DUPLICATI_JOBS=(j)\nDUPLICATI_CONTAINER=dup", func(s *hcl.Stack) bool { return true }, "f.sh:2: DUPLICATI_CONTAINER is not a setting of one stack; set duplicati { container = ... } in config.hcl"},
		{"computed unit", "DUPLICATI_JOBS=(j)\nUNIT=\"$(echo x)\"", func(s *hcl.Stack) bool { return s.Unit == "s-stack.service" }, "f.sh:2: UNIT not converted: its value uses command substitution"},
		{"other name", "DUPLICATI_JOBS=(j)\nSTACK_NAME=Other", func(s *hcl.Stack) bool { return s.Name == "s" }, "STACK_NAME=\"Other\" differs from the file name"},
		{"unused variable", "DUPLICATI_JOBS=(j)\nFOO=1", func(s *hcl.Stack) bool { return true }, "f.sh:2: variable FOO is not a setting and no hook uses it"},
		{"top-level command", "DUPLICATI_JOBS=(j)\nsource /etc/x", func(s *hcl.Stack) bool { return true }, "f.sh:2: not converted: a shell command at the top of the file (it runs when the seed sources the file): source /etc/x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, st := convertOK(t, "s.sh", c.src, Options{})
			if !c.check(st) {
				t.Errorf("stack %+v\n%s", st, res.HCL)
			}
			issues := issuesText(res)
			if c.issue == "" && issues != "" || !strings.Contains(issues, c.issue) {
				t.Errorf("issues:\n%s\nwant %q", issues, c.issue)
			}
			if c.issue != "" && !strings.Contains(res.HCL, "# Not converted") {
				t.Errorf("the issues are not in the file's header:\n%s", res.HCL)
			}
		})
	}
}

func TestConvertNoJobs(t *testing.T) {
	// The seed README's cryptpad example as it shows it: no DUPLICATI_JOBS.
	res, err := Convert("cryptpad.sh", []byte("RESTORE_POLICY=\"previous\"\nFREEZE_ONDEMAND=\"yes\"\nONDEMAND_SOCKET=\"zoopa-ondemand@cryptpad.socket\"\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(issuesText(res), "no DUPLICATI_JOBS") {
		t.Errorf("issues:\n%s", issuesText(res))
	}
	if _, diags := hcl.ParseStack("/x/cryptpad.hcl", []byte(res.HCL), &hcl.Config{}); !diags.HasErrors() {
		t.Errorf("validate accepts a stack without jobs?\n%s", res.HCL)
	}
}

func TestConvertRefusesNonUTF8(t *testing.T) {
	if _, err := Convert("x.sh", []byte("A=\xff"), Options{}); err == nil {
		t.Error("no error")
	}
}
