package units

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// hostileValues are the values the corpus test puts into every place of a
// stack file that reaches a unit file.
func hostileValues() []string {
	var v []string
	for plane := rune(0); plane <= 0x10; plane++ {
		v = append(v, "a"+string(plane<<16|0xFFFE), string(plane<<16|0xFFFF)+"z")
	}
	v = append(v,
		"\uFDD0", "x\uFDEF", "\uFDCF", "\uFDF0", "\uFFFD", "\U0010FFFD", "\U0001FFFD", "\u2028", "\ufeff", "\u0085", "ünï 日本",
		"%", "%%", "%i", "%n", "100%", "$", "$$", "$HOME", "${HOME}", "a$b", `\`, `\\`, `\;`, `\n`, `"`, `'`, `"'"`,
		";", " ; ", "a;b", "\n", "a\nb", "\r\n", "\t", "a\tb", "\x01", "\x1b[31m", "\x7f", "#", "[x]", "=", " lead", "trail ",
		"-", "--", "-h", "--help", "--version", "@x", "+x", "|x", "x y", "X-stack", "a_b-9", "Z",
		strings.Repeat("w", systemd.MaxArgLen), strings.Repeat("w", systemd.MaxArgLen+1),
		strings.Repeat(`\`, 70000), strings.Repeat("%", 1000)+strings.Repeat(`"`, 40000),
	)
	return v
}

// hclString writes s as an HCL string literal.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		case (r == '$' || r == '%') && strings.HasPrefix(s[i+1:], "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// hostileSlot is one place of a stack file that reaches a unit file.
type hostileSlot struct {
	name string
	// stack is the stack file with v in this place, and its path.
	stack func(v string) (file, src string)
	// check verifies, in the rendered files of stack st, that v arrived.
	check func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption)
	// rendererChecks: the renderer checks this place itself (every place but
	// the stack name, which it takes from the decoder).
	rendererChecks bool
	// stricter says where the decoder refuses more than the renderer, on
	// purpose: no string attribute may hold a NUL or a line break, even a
	// schedule that the renderer would take as blank.
	stricter func(v string) bool
}

const hostileDir = "/home/u/.config/backup-stack/stacks/"

func plainStack(extra string) string {
	return "stack \"s\" {\n  jobs = [\"j\"]\n" + extra + "}\n"
}

func hookStack(kind string, cmd ...string) string {
	q := make([]string, len(cmd))
	for i, c := range cmd {
		q[i] = hclString(c)
	}
	return plainStack(fmt.Sprintf("  hook %q {\n    command = [%s]\n  }\n", kind, strings.Join(q, ", ")))
}

var hostileSlots = []hostileSlot{
	{name: "pre_stop argument (ExecStartPre=)", rendererChecks: true,
		stack: func(v string) (string, string) {
			return hostileDir + "s.hcl", hookStack("pre_stop", "/usr/bin/printf", v)
		},
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			pre := sdValues(got["backup@s.service.d/50-stack.conf"], "Service", "ExecStartPre")
			checkCommand(t, pre[1], "", "", goldenHelper, []string{goldenHelper, "hook", "--", "s", "pre_stop", "1", "--", "/usr/bin/printf", v})
		}},
	{name: "pre_start argument (X-FinishHook=)", rendererChecks: true,
		stack: func(v string) (string, string) {
			return hostileDir + "s.hcl", hookStack("pre_start", "/usr/bin/printf", v)
		},
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			shown := sdValues(got["backup@s.service.d/50-stack.conf"], "Service", "X-FinishHook")
			line, ok := strings.CutPrefix(shown[0], "pre_start ")
			if !ok {
				t.Fatalf("X-FinishHook=%q", shown[0])
			}
			checkCommand(t, line, "", "", "/usr/bin/printf", []string{"/usr/bin/printf", v})
		}},
	{name: "hook program", rendererChecks: true,
		stack: func(v string) (string, string) {
			return hostileDir + "s.hcl", hookStack("verify", "/opt/"+v+"/run", "x")
		},
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			shown := sdValues(got["backup@s.service.d/50-stack.conf"], "Service", "X-FinishHook")
			checkCommand(t, strings.TrimPrefix(shown[0], "verify "), "", "", "/opt/"+v+"/run", []string{"/opt/" + v + "/run", "x"})
		}},
	{name: "schedule", rendererChecks: true, stricter: func(v string) bool { return strings.ContainsAny(v, "\x00\n\r") },
		stack: func(v string) (string, string) {
			return hostileDir + "s.hcl", plainStack("  schedule = " + hclString(v) + "\n")
		},
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			timer, ok := got["backup@s.timer.d/50-schedule.conf"]
			if strings.TrimSpace(v) == "" {
				if ok {
					t.Fatal("a timer for a blank schedule")
				}
				return
			}
			checkPlain(t, sdValues(timer, "Timer", "OnCalendar"), strings.TrimSpace(v))
		}},
	{name: "unit", rendererChecks: true,
		stack: func(v string) (string, string) {
			return hostileDir + "s.hcl", plainStack("  unit = " + hclString(v+".service") + "\n")
		},
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			checkPlain(t, sdValues(got["backup-hold@s.service.d/50-stack.conf"], "Unit", "Conflicts"), v+".service")
		}},
	{name: "on_demand socket", rendererChecks: true,
		stack: func(v string) (string, string) {
			return hostileDir + "s.hcl", plainStack("  on_demand {\n    socket = " + hclString(v+".socket") + "\n  }\n")
		},
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			checkPlain(t, sdValues(got["backup-hold@s.service.d/50-stack.conf"], "Unit", "Conflicts"), "s-stack.service "+v+".socket")
		}},
	{name: "stack name",
		stack: func(v string) (string, string) {
			return hostileDir + "s.hcl", "stack " + hclString(v) + " {\n  jobs = [\"j\"]\n}\n"
		},
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			pre := sdValues(got["backup@"+v+".service.d/50-stack.conf"], "Service", "ExecStartPre")
			checkCommand(t, pre[0], "", "", goldenHelper, []string{goldenHelper, "gate", "--", v})
		}},
	{name: "file name (SourcePath=)", rendererChecks: true,
		stack: func(v string) (string, string) { return hostileDir + v + ".hcl", plainStack("") },
		check: func(t *testing.T, v string, st *hcl.Stack, got map[string][]sdOption) {
			checkPlain(t, sdValues(got["backup@s.service.d/50-stack.conf"], "Unit", "SourcePath"), hostileDir+v+".hcl")
		}},
}

// TestHostileValues puts every hostile value into every place of a stack
// file that reaches a unit file. A value the decoder accepts must render
// and arrive byte for byte as systemd reads it (the emulation in
// systemd_test.go, with systemd's own UTF-8 check); a value it refuses must
// be refused with a position; and whatever the renderer refuses (fed the
// same value without the decoder) the decoder must have refused, so that
// `backup-stack validate` never passes a file the generator skips.
func TestHostileValues(t *testing.T) {
	cfg, _ := hcl.ParseConfig("", nil)
	for _, slot := range hostileSlots {
		t.Run(slot.name, func(t *testing.T) {
			accepted, refused := 0, 0
			for _, v := range hostileValues() {
				file, src := slot.stack(v)
				st, diags := hcl.ParseStack(file, []byte(src), cfg)
				rendered, rerr := renderOne(t, st, slot, v, file, cfg)
				if diags.HasErrors() {
					refused++
					for _, d := range diags {
						if d.Severity == hhcl.DiagError && (d.Subject == nil || d.Subject.Filename != file || d.Subject.Start.Line < 1 || d.Subject.Start.Column < 1) {
							t.Errorf("%.40q: refused without a position: %s", v, hcl.FormatDiag(d))
						}
					}
					continue
				}
				accepted++
				if st == nil {
					t.Fatalf("%.40q: no stack and no error", v)
				}
				if rerr != nil {
					t.Errorf("%.40q: the decoder accepted it, the renderer refused it: %v", v, rerr)
					continue
				}
				slot.check(t, v, st, rendered)
			}
			t.Logf("%d accepted, %d refused", accepted, refused)
			if accepted == 0 || refused == 0 {
				t.Errorf("%d accepted, %d refused: the corpus does not test this place", accepted, refused)
			}
		})
	}
}

// renderOne renders st (decoded) with Render and reads every file back with
// the emulation. When the decoder refused the value (st is nil), it builds
// the stack by hand, as the decoder would have without its checks, and
// returns the renderer's verdict on it.
func renderOne(t *testing.T, st *hcl.Stack, slot hostileSlot, v, file string, cfg *hcl.Config) (map[string][]sdOption, error) {
	t.Helper()
	if st == nil {
		if !slot.rendererChecks {
			return nil, nil
		}
		st = handBuilt(slot, v, file)
		files, err := Render(&hcl.Set{Config: cfg, Stacks: []*hcl.Stack{st}}, Options{Helper: goldenHelper})
		if err == nil && (slot.stricter == nil || !slot.stricter(v)) {
			t.Errorf("%.40q in %s: the renderer takes it (%d files), the decoder refuses it", v, slot.name, len(files))
		}
		return nil, err
	}
	files, err := Render(&hcl.Set{Config: cfg, Stacks: []*hcl.Stack{st}}, Options{Helper: goldenHelper})
	if err != nil {
		return nil, err
	}
	got := map[string][]sdOption{}
	for _, f := range files {
		if f.Link == "" {
			got[f.Path] = checkUnitFile(t, f.Path, f.Content)
		}
	}
	return got, nil
}

// handBuilt is the stack of slot with v, without the decoder.
func handBuilt(slot hostileSlot, v, file string) *hcl.Stack {
	st := &hcl.Stack{
		Name: "s", Unit: "s-stack.service", ProjectLabel: "s", Jobs: []string{"j"}, RestorePolicy: hcl.RestorePrevious,
		StopTimeout: hcl.DefaultStopTimeout, StartTimeout: hcl.DefaultStartTimeout, WaitTimeout: hcl.DefaultWaitTimeout,
		File: file,
	}
	switch slot.name {
	case "pre_stop argument (ExecStartPre=)":
		st.Hooks = []hcl.Hook{{Kind: "pre_stop", Command: []string{"/usr/bin/printf", v}}}
	case "pre_start argument (X-FinishHook=)":
		st.Hooks = []hcl.Hook{{Kind: "pre_start", Command: []string{"/usr/bin/printf", v}}}
	case "hook program":
		st.Hooks = []hcl.Hook{{Kind: "verify", Command: []string{"/opt/" + v + "/run", "x"}}}
	case "schedule":
		st.Schedule = v
	case "unit":
		st.Unit = v + ".service"
	case "on_demand socket":
		st.OnDemand = &hcl.OnDemand{Socket: v + ".socket"}
	}
	return st
}

// The decoder refuses what systemd refuses in an argument, and nothing
// else: its verdict on every hostile argument is the emulation's (systemd's
// utf8_is_valid() transcribed) plus the kernel's limit per argument.
func TestHostileArgumentsRefusedExactly(t *testing.T) {
	cfg, _ := hcl.ParseConfig("", nil)
	for _, v := range hostileValues() {
		_, diags := hcl.ParseStack(hostileDir+"s.hcl", []byte(hookStack("pre_stop", "/usr/bin/printf", v)), cfg)
		want := !sdUTF8IsValid(v) || len(v) > systemd.MaxArgLen
		if diags.HasErrors() != want {
			t.Errorf("%.40q: refused %v, want %v: %v", v, diags.HasErrors(), want, diags)
		}
	}
}

// The last guard: whatever reaches Render that systemd would not read
// whole is left out with its stack, and the other stacks are rendered.
func TestRenderRefusesWhatSystemdWouldNotRead(t *testing.T) {
	cfg, _ := hcl.ParseConfig("", nil)
	mk := func(name string) *hcl.Stack {
		return &hcl.Stack{Name: name, Unit: name + "-stack.service", Jobs: []string{"j"}, RestorePolicy: hcl.RestorePrevious,
			StopTimeout: hcl.DefaultStopTimeout, StartTimeout: hcl.DefaultStartTimeout, WaitTimeout: hcl.DefaultWaitTimeout,
			File: hostileDir + name + ".hcl"}
	}
	for name, spoil := range map[string]func(*hcl.Stack){
		"pre_start argument ending in U+10FFFF": func(st *hcl.Stack) {
			st.Hooks = []hcl.Hook{{Kind: "pre_start", Command: []string{"/bin/echo", "x\U0010FFFF"}}}
		},
		"pre_stop argument U+FDD0": func(st *hcl.Stack) {
			st.Hooks = []hcl.Hook{{Kind: "pre_stop", Command: []string{"/bin/echo", "\uFDD0"}}}
		},
		"unit with U+FFFF":      func(st *hcl.Stack) { st.Unit = "b\uFFFF.service" },
		"unit of backup-stack":  func(st *hcl.Stack) { st.Unit = "backup@a.service" },
		"socket with a newline": func(st *hcl.Stack) { st.OnDemand = &hcl.OnDemand{Socket: "b\nExecStart=/x.socket"} },
		"schedule U+1FFFF":      func(st *hcl.Stack) { st.Schedule = "daily\U0001FFFF" },
		"file name with a tab":  func(st *hcl.Stack) { st.File = hostileDir + "b\t.hcl" },
		"600 KB hook line": func(st *hcl.Stack) {
			cmd := []string{"/bin/echo"}
			for range 5 {
				cmd = append(cmd, strings.Repeat("b", 120000))
			}
			st.Hooks = []hcl.Hook{{Kind: "post_stop", Command: cmd}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			a, b, c := mk("a"), mk("b"), mk("c")
			spoil(b)
			files, err := Render(&hcl.Set{Config: cfg, Stacks: []*hcl.Stack{a, b, c}}, Options{Helper: goldenHelper})
			var se *StackError
			if !errors.As(err, &se) || se.Stack != "b" || !strings.Contains(err.Error(), b.File) {
				t.Fatalf("Render: %v, want a StackError of b naming its file", err)
			}
			seen := map[string]bool{}
			for _, f := range files {
				if strings.Contains(f.Path, "@b.") {
					t.Errorf("%s was rendered", f.Path)
				}
				seen[f.Path] = true
				if f.Link == "" {
					checkUnitFile(t, f.Path, f.Content)
				}
			}
			for _, p := range []string{"backup@a.service.d/50-stack.conf", "backup@c.service.d/50-stack.conf"} {
				if !seen[p] {
					t.Errorf("%s missing: one bad stack took another with it", p)
				}
			}
		})
	}
}

// checkFiles, the guard itself, on content no renderer path produces.
func TestCheckFiles(t *testing.T) {
	good := File{Path: "a.conf", Content: []byte(Header + "[Unit]\nDescription=ok\n")}
	link := File{Path: "l", Link: "../x"}
	if err := checkFiles([]File{good, link}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"[Service]\nX-A=\U0010FFFF\nExecStopPost=/bin/restore\n",
		"[Unit]\nDescription=\xff\n",
		"[Unit]\nDescription=a\r\n",
		"[Unit]\nDescription=a\\\n",
		"[Unit]\nDescription=" + strings.Repeat("a", systemd.LongLineMax) + "\n",
	} {
		err := checkFiles([]File{good, {Path: "bad.conf", Content: []byte(bad)}})
		if err == nil || !strings.Contains(err.Error(), "bad.conf line 2") {
			t.Errorf("%.40q: %v", bad, err)
		}
	}
}
