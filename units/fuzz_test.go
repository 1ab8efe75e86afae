package units

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// fuzzSeeds are the strings every fuzz target starts from; `go test` runs
// them as ordinary test cases.
func fuzzSeeds() []string {
	return []string{
		"", "plain", "%", "%%", "%i", "%n", "100%", "a%b", "$", "$$", "$HOME", "${HOME}", "$$HOME", "a$b", "${",
		`"`, `'`, `\`, `\\`, `\n`, "\n", "\r\n", ";", " ; ", "a;b", "\\;", "\t", "a\tb", "\x01", "\x1b[31m", "\x7f",
		"trailing\\", "-", "-x", "@", "@x", ":x", "+x", "!x", "!!x", "|x", " leading", "trailing ", "  ", "#", "[x]", "=",
		"ünïcödé", "日本語", "emoji 🎉", "\u2028", "\ufeff", "a\x00b", "\xff\xfe", "é\xc3",
		"\ufffe", "\uffff", "\ufdd0", "\ufdef", "\ufdcf", "\ufdf0", "\ufffd", "a\U0010ffff", "\U0001fffe", "\U0010fffd",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\u0085",
		strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("/x", 2100),
		strings.Repeat("long %$\"\\' ", 500), strings.Repeat("b", 70000), strings.Repeat("c", 600<<10),
	}
}

func FuzzExecWord(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := systemd.ExecWord(s)
		if err != nil {
			// Exactly what systemd's own UTF-8 check refuses (NUL too,
			// which no program can receive).
			if sdUTF8IsValid(s) {
				t.Fatalf("ExecWord(%q) refused an argument systemd takes: %v", s, err)
			}
			return
		}
		if !sdUTF8IsValid(s) {
			t.Fatalf("ExecWord(%q) wrote what systemd refuses: %s", s, w)
		}
		checkExecRoundTrip(t, `"/bin/true" `+w, "/bin/true", []string{"/bin/true", s})

		// As the program itself.
		line, err := systemd.ExecLine("-", []string{s, s})
		if err != nil {
			return
		}
		checkExecRoundTrip(t, line, s, []string{s, s})
	})
}

// checkExecRoundTrip writes line as an ExecStart= into a unit file, reads it
// back with go-systemd and the systemd emulation and checks that systemd
// would execute path with exactly argv.
func checkExecRoundTrip(t *testing.T, line, path string, argv []string) {
	t.Helper()
	content, err := serialize([]*unit.UnitOption{unit.NewUnitOption("Service", "ExecStart", line)})
	if err != nil {
		t.Fatal(err)
	}
	opts := checkUnitFile(t, "x.service", content)
	if len(opts) != 1 || opts[0].Value != line {
		t.Fatalf("read back %v, want %q", opts, line)
	}
	cmds, err := sdParseExec(opts[0].Value, "")
	if err != nil {
		t.Fatalf("systemd would not read %q: %v", line, err)
	}
	if len(cmds) != 1 || cmds[0].Path != path || !reflect.DeepEqual(cmds[0].Argv, argv) {
		t.Fatalf("%q runs %q %q, want %q %q", line, cmds[0].Path, cmds[0].Argv, path, argv)
	}
}

// checkUnitFile parses content with the emulation and, where its line
// limit allows, with go-systemd, and requires both to agree.
func checkUnitFile(t *testing.T, name string, content []byte) []sdOption {
	t.Helper()
	sd, err := sdParseUnit(content)
	if err != nil {
		t.Fatalf("%s: systemd would not read it: %v\n%s", name, err, content)
	}
	opts, err := unit.DeserializeOptions(bytes.NewReader(content))
	if errors.Is(err, unit.ErrLineTooLong) {
		// go-systemd stops at 2048 bytes (an old LINE_MAX); systemd 252
		// reads lines up to 1 MiB, which the emulation checked.
		return sd
	}
	if err != nil {
		t.Fatalf("%s: go-systemd: %v", name, err)
	}
	if len(opts) != len(sd) {
		t.Fatalf("%s: go-systemd %d options, emulation %d", name, len(opts), len(sd))
	}
	for i, o := range opts {
		if (sdOption{o.Section, o.Name, o.Value}) != sd[i] {
			t.Fatalf("%s: go-systemd %v, emulation %v", name, *o, sd[i])
		}
	}
	return sd
}

func FuzzRender(f *testing.F) {
	const (
		prog   = "/usr/bin/hook"
		arg    = "arg"
		sched  = "*-*-* 03:30:00"
		file   = "/home/u/.config/backup-stack/stacks/fz.hcl"
		helper = "/usr/local/bin/backup-stack"
	)
	f.Add(prog, arg, sched, file, helper)
	for _, s := range fuzzSeeds() {
		f.Add(s, arg, sched, file, helper)
		f.Add(prog, s, sched, file, helper)
		f.Add(prog, arg, s, file, helper)
		f.Add(prog, arg, sched, s, helper)
		f.Add(prog, arg, sched, "/home/"+s+"/fz.hcl", helper)
		f.Add(prog, arg, sched, file, s)
		f.Add(prog, arg, sched, file, "/opt/"+s+"/backup-stack")
	}
	f.Fuzz(func(t *testing.T, prog, arg, schedule, file, helper string) {
		cfg, _ := hcl.ParseConfig("", nil)
		st := &hcl.Stack{
			Name: "fz", Unit: "fz-stack.service", ProjectLabel: "fz", Jobs: []string{"j"},
			Schedule: schedule, RestorePolicy: hcl.RestorePrevious,
			StopTimeout: hcl.DefaultStopTimeout, StartTimeout: hcl.DefaultStartTimeout, WaitTimeout: hcl.DefaultWaitTimeout,
			File: file,
			Hooks: []hcl.Hook{
				{Kind: "pre_stop", Command: []string{prog, arg}},
				{Kind: "post_backup", Command: []string{prog, arg, arg}, IgnoreFailure: true},
				{Kind: "verify", Command: []string{prog}},
			},
		}
		set := &hcl.Set{Config: cfg, Stacks: []*hcl.Stack{st}}
		files, err := Render(set, Options{Helper: helper})
		got := map[string][]sdOption{}
		for _, fl := range files {
			if fl.Link != "" {
				got[fl.Path] = nil
				continue
			}
			got[fl.Path] = checkUnitFile(t, fl.Path, fl.Content)
		}
		if err != nil {
			// Refused: nothing of the stack may have been written.
			for p := range got {
				if strings.Contains(p, "fz") {
					t.Fatalf("stack refused (%v) but %s was rendered", err, p)
				}
			}
			return
		}
		for _, tpl := range []struct{ path, key, verb string }{
			{"backup@.service", "ExecStart", "run"}, {"backup@.service", "ExecStopPost", "finish"},
			{"backup-hold@.service", "ExecStart", "held"},
		} {
			v := sdValues(got[tpl.path], "Service", tpl.key)
			if len(v) != 1 {
				t.Fatalf("%s %s %q", tpl.path, tpl.key, v)
			}
			checkCommand(t, v[0], "fz", "", helper, []string{helper, tpl.verb, "--", "fz"})
		}

		svc := got["backup@fz.service.d/50-stack.conf"]
		checkPlain(t, sdValues(svc, "Unit", "SourcePath"), file)
		h := func(args ...string) []string { return append([]string{helper}, args...) }
		type want struct {
			prefix, path string
			argv         []string
		}
		pre := []want{
			{"", helper, h("gate", "--", "fz")},
			{"", helper, h("hook", "--", "fz", "pre_stop", "1", "--", prog, arg)},
			{"", helper, h("hold", "--", "fz")},
			{"", helper, h("wait-stopped", "--", "fz")},
		}
		// The drop-in has no ExecStopPost=: finish (in the template) runs
		// post_backup and verify from the plan.
		for key, ws := range map[string][]want{"ExecStartPre": pre, "ExecStopPost": nil} {
			vals := sdValues(svc, "Service", key)
			if len(vals) != len(ws) {
				t.Fatalf("%s: %d lines, want %d: %q", key, len(vals), len(ws), vals)
			}
			for i, w := range ws {
				checkCommand(t, vals[i], "", w.prefix, w.path, w.argv)
			}
		}

		timer, hasTimer := got["backup@fz.timer.d/50-schedule.conf"]
		_, linked := got["timers.target.wants/backup@fz.timer"]
		if s := strings.TrimSpace(schedule); s == "" {
			if hasTimer || linked {
				t.Fatal("timer without a schedule")
			}
		} else {
			if !hasTimer || !linked {
				t.Fatal("schedule without a timer")
			}
			checkPlain(t, sdValues(timer, "Timer", "OnCalendar"), s)
			checkPlain(t, sdValues(timer, "Unit", "SourcePath"), file)
		}
		checkPlain(t, sdValues(got["backup-hold@fz.service.d/50-stack.conf"], "Unit", "SourcePath"), file)
	})
}

func sdValues(opts []sdOption, section, name string) []string {
	var out []string
	for _, o := range opts {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

func checkPlain(t *testing.T, vals []string, want string) {
	t.Helper()
	if len(vals) != 1 {
		t.Fatalf("%d values %q, want one", len(vals), vals)
	}
	got, err := sdPlain(vals[0])
	if err != nil || got != want {
		t.Fatalf("%q reads as %q (%v), want %q", vals[0], got, err, want)
	}
}

func checkCommand(t *testing.T, value, instance, prefix, path string, argv []string) {
	t.Helper()
	cmds, err := sdParseExec(value, instance)
	if err != nil {
		t.Fatalf("systemd would not read %q: %v", value, err)
	}
	if len(cmds) != 1 || cmds[0].Prefix != prefix || cmds[0].Path != path || !reflect.DeepEqual(cmds[0].Argv, argv) {
		t.Fatalf("%q runs %+v, want prefix %q path %q argv %q", value, cmds, prefix, path, argv)
	}
}

// TestTrickyArgv checks testdata/tricky-argv.json, the argument lists the
// end-to-end suite hands to a real systemd manager: each must render and
// read back exactly, here first.
func TestTrickyArgv(t *testing.T) {
	var doc struct {
		Comment string     `json:"comment"`
		Args    [][]string `json:"args"`
	}
	b, err := os.ReadFile("testdata/tricky-argv.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Args) < 20 {
		t.Fatalf("only %d cases", len(doc.Args))
	}
	for _, args := range doc.Args {
		argv := append([]string{"/usr/bin/printf"}, args...)
		line, err := systemd.ExecLine("", argv)
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		checkExecRoundTrip(t, line, argv[0], argv)
	}
}
