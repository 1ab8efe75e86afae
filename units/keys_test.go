package units

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/templates"
)

// TestEmulatorKnownLines pins the systemd emulation to examples from
// systemd.service(5) and systemd.syntax(7), so the tests below rest on it.
func TestEmulatorKnownLines(t *testing.T) {
	for _, c := range []struct {
		line string
		want [][]string // argv of each command; nil: must fail
		pfx  string
	}{
		{`/bin/echo "one" 'two' three\sfour`, [][]string{{"/bin/echo", "one", "two", "three four"}}, ""},
		{`-/bin/true`, [][]string{{"/bin/true"}}, "-"},
		{`-"/bin/true"`, [][]string{{"/bin/true"}}, "-"},
		{`"-/bin/true"`, [][]string{{"/bin/true"}}, "-"}, // prefixes come off the unquoted word
		{`/bin/echo a ; /bin/echo b`, [][]string{{"/bin/echo", "a"}, {"/bin/echo", "b"}}, ""},
		{`/bin/echo a \; b`, [][]string{{"/bin/echo", "a", ";", "b"}}, ""},
		{`/bin/echo ";"`, [][]string{{"/bin/echo", ";"}}, ""},
		{`/bin/echo "a\x41\101\u00e9\n"`, [][]string{{"/bin/echo", "aAAé\n"}}, ""},
		{`/bin/echo a"b c"d`, [][]string{{"/bin/echo", "ab cd"}}, ""},
		{`/bin/echo 100%%`, [][]string{{"/bin/echo", "100%"}}, ""},
		{`/bin/echo $$HOME`, [][]string{{"/bin/echo", "$HOME"}}, ""},
		{`/bin/echo a$b`, [][]string{{"/bin/echo", "a$b"}}, ""},
		{`/bin/echo %n`, nil, ""},
		{`/bin/echo $HOME`, nil, ""},
		{`/bin/echo ${HOME}`, nil, ""},
		{`/bin/echo "$"`, nil, ""},
		{`/bin/echo "unbalanced`, nil, ""},
		{`/bin/echo trailing\`, nil, ""},
		{`/bin/echo \q`, nil, ""},
		{`/bin/echo \x00`, nil, ""},
		{`bin/echo`, nil, ""},
		{`@/bin/echo`, nil, ""},
	} {
		cmds, err := sdParseExec(c.line, "")
		if c.want == nil {
			if err == nil {
				t.Errorf("%s: parsed as %q, want an error", c.line, cmds)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		var got [][]string
		for _, cmd := range cmds {
			got = append(got, cmd.Argv)
		}
		if !reflect.DeepEqual(got, c.want) || cmds[0].Prefix != c.pfx {
			t.Errorf("%s: got %q prefix %q, want %q prefix %q", c.line, got, cmds[0].Prefix, c.want, c.pfx)
		}
	}
}

func renderCase(t *testing.T, name string) (*hcl.Set, map[string]File) {
	t.Helper()
	set := loadCase(t, name)
	files, err := Render(set, Options{Helper: goldenHelper})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]File{}
	for _, f := range files {
		if _, dup := byPath[f.Path]; dup {
			t.Errorf("%s rendered twice", f.Path)
		}
		byPath[f.Path] = f
	}
	return set, byPath
}

// options parses a generated file both with go-systemd and with the
// systemd emulation and checks they agree.
func options(t *testing.T, f File) []*unit.UnitOption {
	t.Helper()
	opts, err := unit.DeserializeOptions(bytes.NewReader(f.Content))
	if err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	sd, err := sdParseUnit(f.Content)
	if err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	if len(sd) != len(opts) {
		t.Fatalf("%s: go-systemd read %d options, the emulation %d", f.Path, len(opts), len(sd))
	}
	for i, o := range opts {
		if (sdOption{o.Section, o.Name, o.Value}) != sd[i] {
			t.Errorf("%s: go-systemd %v, emulation %v", f.Path, *o, sd[i])
		}
	}
	return opts
}

func values(opts []*unit.UnitOption, section, name string) []string {
	var out []string
	for _, o := range opts {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

func one(t *testing.T, opts []*unit.UnitOption, section, name string) string {
	t.Helper()
	v := values(opts, section, name)
	if len(v) != 1 {
		t.Fatalf("%s.%s= appears %d times: %q", section, name, len(v), v)
	}
	return v[0]
}

func TestHoldConflicts(t *testing.T) {
	_, files := renderCase(t, "ondemand")
	for stack, want := range map[string]string{
		"with-service": "with-service-stack.service zoopa-ondemand@with-service.socket zoopa-ondemand@with-service.service",
		"socket-only":  "socket-only.service socket-only.socket",
	} {
		f, ok := files["backup-hold@"+stack+".service.d/50-stack.conf"]
		if !ok {
			t.Fatalf("no hold drop-in for %s", stack)
		}
		opts := options(t, f)
		if got := one(t, opts, "Unit", "Conflicts"); got != want {
			t.Errorf("backup-hold@%s.service.d/50-stack.conf has Conflicts=%q, want %q", stack, got, want)
		}
		if got := one(t, opts, "Unit", "After"); got != want {
			t.Errorf("backup-hold@%s.service.d/50-stack.conf has After=%q, want %q", stack, got, want)
		}
	}
}

// step names one Exec line: a helper verb or the program of a hook.
func step(t *testing.T, value string) (prefix, name string) {
	t.Helper()
	cmds, err := sdParseExec(value, "")
	if err != nil || len(cmds) != 1 {
		t.Fatalf("%s: %v", value, err)
	}
	c := cmds[0]
	if c.Path != goldenHelper {
		return c.Prefix, "hook:" + c.Argv[0]
	}
	// Every helper line passes "--" before the stack name.
	if len(c.Argv) < 4 || c.Argv[2] != "--" {
		t.Fatalf("%s: no -- before the stack name: %q", value, c.Argv)
	}
	if c.Argv[1] == "hook" {
		if len(c.Argv) < 8 || c.Argv[6] != "--" {
			t.Fatalf("%s: no -- before the hook command: %q", value, c.Argv)
		}
		return c.Prefix, "hook:" + c.Argv[4] + ":" + c.Argv[5] + ":" + c.Argv[7]
	}
	return c.Prefix, c.Argv[1]
}

func TestExecSequence(t *testing.T) {
	set, files := renderCase(t, "hooks")
	st := set.Stacks[0]
	opts := options(t, files["backup@app.service.d/50-stack.conf"])

	type line struct{ prefix, name string }
	var pre []line
	for _, v := range values(opts, "Service", "ExecStartPre") {
		p, n := step(t, v)
		pre = append(pre, line{p, n})
	}
	// gate, pre_stop hooks, hold, wait-stopped, post_stop, pre_backup: each
	// hook through the helper (H hook S KIND N -- argv), which runs the
	// plan's hook with its timeout and honours ignore_failure itself, so no
	// line carries "-".
	wantPre := []line{
		{"", "gate"},
		{"", "hook:pre_stop:1:podman"},
		{"", "hook:pre_stop:2:/usr/local/bin/flush"},
		{"", "hold"},
		{"", "wait-stopped"},
		{"", "hook:post_stop:1:/usr/bin/logger"},
		{"", "hook:pre_backup:1:/usr/bin/sync"},
	}
	if !reflect.DeepEqual(pre, wantPre) {
		t.Errorf("ExecStartPre sequence\n got %v\nwant %v", pre, wantPre)
	}
	// ExecStart= and ExecStopPost= are the template's alone (run, finish):
	// a drop-in lost at a daemon-reload cannot take the restore with it.
	for _, k := range []string{"ExecStart", "ExecStopPost"} {
		if v := values(opts, "Service", k); len(v) != 0 {
			t.Errorf("the drop-in must not set %s= (the template has it): %q", k, v)
		}
	}
	// The hooks finish runs are listed for people, in order, as X- keys.
	shown := values(opts, "Service", "X-FinishHook")
	wantShown := []string{"post_backup", "post_backup", "pre_start", "post_start", "verify"}
	if len(shown) != len(wantShown) {
		t.Fatalf("X-FinishHook %q", shown)
	}
	for i, k := range wantShown {
		if !strings.HasPrefix(shown[i], k+" ") {
			t.Errorf("X-FinishHook[%d] = %q, want the %s hook", i, shown[i], k)
		}
	}

	// The hook arguments arrive byte for byte, after "--".
	flush := st.HooksOf("pre_stop")[1].Command
	cmds, err := sdParseExec(values(opts, "Service", "ExecStartPre")[2], "")
	want := append([]string{goldenHelper, "hook", "--", "app", "pre_stop", "2", "--"}, flush...)
	if err != nil || !reflect.DeepEqual(cmds[0].Argv, want) {
		t.Errorf("flush hook argv %q, want %q (%v)", cmds[0].Argv, want, err)
	}

	// Timeouts come from units.Timeouts.
	start, stop := Timeouts(set.Config, st)
	if got := one(t, opts, "Service", "TimeoutStartSec"); got != seconds(start) {
		t.Errorf("TimeoutStartSec=%s, want %s", got, seconds(start))
	}
	if got := one(t, opts, "Service", "TimeoutStopSec"); got != seconds(stop) {
		t.Errorf("TimeoutStopSec=%s, want %s", got, seconds(stop))
	}
	// Start: gate waits 6h, hold and container wait 2×90s, 2 jobs of 25s
	// run + 2h wait, margin 5m, four ExecStartPre hooks of 5m.
	// Stop: 90s hold release, 3×3m restore (start, settling, containers),
	// margin 5m, five finish hooks of 5m.
	if seconds(start) != "37730" || seconds(stop) != "2430" {
		t.Errorf("Timeouts = %s, %s", seconds(start), seconds(stop))
	}
}

func TestTimeouts(t *testing.T) {
	cfg, _ := hcl.ParseConfig("", nil)
	st := &hcl.Stack{Jobs: []string{"a", "b", "c"}, StopTimeout: hcl.DefaultStopTimeout,
		StartTimeout: hcl.DefaultStartTimeout, WaitTimeout: cfg.Duplicati.WaitTimeout}
	start, stop := Timeouts(cfg, st)
	// gate 6h + hold and container wait 2×2m + 3×(25s+6h) + margin 5m
	if want := 6*3600 + 240 + 3*(25+6*3600) + 300; seconds(start) != strconv.Itoa(want) {
		t.Errorf("start %s, want %d", seconds(start), want)
	}
	if want := 120 + 3*300 + 300; seconds(stop) != strconv.Itoa(want) {
		t.Errorf("stop %s, want %d", seconds(stop), want)
	}
}

func TestOrderingAndTimers(t *testing.T) {
	set, files := renderCase(t, "ordering")
	prev := ""
	var names []string
	for _, st := range set.Stacks {
		opts := options(t, files["backup@"+st.Name+".service.d/50-stack.conf"])
		after := values(opts, "Unit", "After")
		// A chain: After= names only the stack sorted just before.
		switch {
		case prev == "" && len(after) != 0:
			t.Errorf("%s: After=%q, want none", st.Name, after)
		case prev != "" && (len(after) != 1 || after[0] != "backup@"+prev+".service"):
			t.Errorf("%s: After=%q, want %q", st.Name, after, "backup@"+prev+".service")
		}
		prev = st.Name
		names = append(names, st.Name)

		if got := one(t, opts, "Unit", "SourcePath"); got != st.File {
			t.Errorf("%s: SourcePath=%q, want %q", st.Name, got, st.File)
		}
		link, linked := files["timers.target.wants/backup@"+st.Name+".timer"]
		timer, hasTimer := files["backup@"+st.Name+".timer.d/50-schedule.conf"]
		if scheduled := st.Schedule != ""; linked != scheduled || hasTimer != scheduled {
			t.Errorf("%s: schedule %q but wants link %v, timer drop-in %v", st.Name, st.Schedule, linked, hasTimer)
		}
		if linked {
			if link.Link != "../backup@.timer" || link.Content != nil {
				t.Errorf("%s: link %+v", st.Name, link)
			}
			topts := options(t, timer)
			if got := one(t, topts, "Timer", "OnCalendar"); got != st.Schedule {
				t.Errorf("%s: OnCalendar=%q, want %q", st.Name, got, st.Schedule)
			}
			if got := one(t, topts, "Unit", "SourcePath"); got != st.File {
				t.Errorf("%s: timer SourcePath=%q", st.Name, got)
			}
		}
	}
	if got := strings.Join(names, " "); got != "alpha bravo charlie delta echo" {
		t.Errorf("stacks %s", got)
	}
	if _, ok := files["timers.target.wants/backup@charlie.timer"]; ok {
		t.Error(`charlie has schedule = "" and must have no timer`)
	}
}

func TestEveryFileHasHeaderAndParses(t *testing.T) {
	for _, name := range []string{"hooks", "ondemand", "ordering"} {
		_, files := renderCase(t, name)
		for p, f := range files {
			if f.Link != "" {
				if !strings.HasPrefix(p, "timers.target.wants/") && p != "default.target.wants/backup-recover.service" {
					t.Errorf("unexpected link %s", p)
				}
				continue
			}
			if !bytes.HasPrefix(f.Content, []byte("# Automatically generated by backup-generator")) {
				t.Errorf("%s does not start with the header", p)
			}
			opts := options(t, f)
			for _, o := range opts {
				if strings.ContainsAny(o.Value, "\n\r") {
					t.Errorf("%s: %s= holds a newline", p, o.Name)
				}
			}
			if strings.HasSuffix(p, ".conf") {
				if len(values(opts, "Unit", "SourcePath")) != 1 {
					t.Errorf("%s has no SourcePath=", p)
				}
			}
		}
		// The templates' ExecStart= run the helper with the instance.
		for tpl, verb := range map[string]string{"backup@.service": "run", "backup-hold@.service": "held"} {
			opts := options(t, files[tpl])
			cmds, err := sdParseExec(one(t, opts, "Service", "ExecStart"), "inst")
			if err != nil || !reflect.DeepEqual(cmds[0].Argv, []string{goldenHelper, verb, "--", "inst"}) {
				t.Errorf("%s ExecStart= %v %v", tpl, cmds, err)
			}
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	for _, name := range []string{"hooks", "ondemand", "ordering"} {
		a, err := Render(loadCase(t, name), Options{Helper: goldenHelper})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Render(loadCase(t, name), Options{Helper: goldenHelper})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) || !bytes.Equal(dryRun(t, a), dryRun(t, b)) {
			t.Errorf("%s: two renders differ", name)
		}
	}
}

// TestRenderNoStacks: without a valid stack the templates and the recovery
// unit are still written (a backup whose last stack file is deleted while
// it runs keeps its run and finish, and recovery still runs at the next
// start), and nothing else.
func TestRenderNoStacks(t *testing.T) {
	files, err := Render(loadCase(t, "empty"), Options{Helper: goldenHelper})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	want := append(append([]string{}, templates.Names...), "default.target.wants/backup-recover.service")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("no stacks: %v, want %v", got, want)
	}
}

// TestGenerateWithoutConfigDir: a user without any configuration gets no
// units at all (the generator runs in every user's manager).
func TestGenerateWithoutConfigDir(t *testing.T) {
	g := Generate(filepath.Join(t.TempDir(), "none"), Options{Helper: goldenHelper})
	if len(g.Files) != 0 || len(g.Diags) != 0 || g.Err != nil {
		t.Errorf("no config dir: %+v", g)
	}
}

func TestRenderRefusesBadHelper(t *testing.T) {
	set := loadCase(t, "ondemand")
	for _, h := range []string{"", "backup-stack", "relative/backup-stack", "/opt/$X/backup-stack", "/opt/x\n/backup-stack", "/usr/bin/"} {
		if _, err := Render(set, Options{Helper: h}); err == nil {
			t.Errorf("helper %q accepted", h)
		}
	}
	// A helper path with blanks and a percent sign is fine when escaped.
	files, err := Render(set, Options{Helper: "/opt/my tools/100%/backup-stack"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == "backup@.service" {
			cmds, err := sdParseExec(one(t, options(t, f), "Service", "ExecStart"), "x")
			if err != nil || cmds[0].Path != "/opt/my tools/100%/backup-stack" {
				t.Errorf("ExecStart %v %v", cmds, err)
			}
		}
	}
}

// TestRenderSkipsBadStack: a stack that cannot be rendered is reported as a
// *StackError and the others are still rendered.
func TestRenderSkipsBadStack(t *testing.T) {
	set := loadCase(t, "ordering")
	set.Stacks[1].Schedule = `daily\` // cannot be written
	files, err := Render(set, Options{Helper: goldenHelper})
	var se *StackError
	if err == nil || !errors.As(err, &se) || se.Stack != "bravo" {
		t.Fatalf("err %v", err)
	}
	var got []string
	for _, f := range files {
		if strings.HasSuffix(f.Path, ".service.d/50-stack.conf") && strings.HasPrefix(f.Path, "backup@") {
			got = append(got, f.Path)
		}
	}
	if len(got) != 4 {
		t.Errorf("rendered %v", got)
	}
	for _, f := range files {
		if strings.Contains(string(f.Content), "backup@bravo.service") || strings.Contains(f.Path, "bravo") {
			t.Errorf("%s mentions the skipped stack", f.Path)
		}
		// The chain skips the missing unit instead of breaking at it.
		if f.Path == "backup@charlie.service.d/50-stack.conf" {
			if got := one(t, options(t, f), "Unit", "After"); got != "backup@alpha.service" {
				t.Errorf("charlie After=%q, want backup@alpha.service", got)
			}
		}
	}
}

func TestNotifyUnits(t *testing.T) {
	_, files := renderCase(t, "notify")
	if _, ok := files["backup-notify@.service"]; !ok {
		t.Fatal("backup-notify@.service template not written")
	}
	for stack, want := range map[string][2][]string{
		"inherits": {{"backup-notify@inherits.service"}, nil},
		"own":      {{"backup-notify@own.service"}, {"backup-notify@own.service"}},
	} {
		opts := options(t, files["backup@"+stack+".service.d/50-stack.conf"])
		if got := values(opts, "Unit", "OnFailure"); !reflect.DeepEqual(got, want[0]) {
			t.Errorf("%s: OnFailure=%q, want %q", stack, got, want[0])
		}
		if got := values(opts, "Unit", "OnSuccess"); !reflect.DeepEqual(got, want[1]) {
			t.Errorf("%s: OnSuccess=%q, want %q", stack, got, want[1])
		}
	}
	// Neither the commands nor the ping URL may reach a unit file.
	for p, f := range files {
		for _, secret := range []string{"hc.example", "ntfy", "me@example.org"} {
			if bytes.Contains(f.Content, []byte(secret)) {
				t.Errorf("%s contains %q", p, secret)
			}
		}
	}
	// A stack without notify gets no OnFailure=.
	_, plain := renderCase(t, "hooks")
	for p, f := range plain {
		if !strings.Contains(p, ".d/") {
			continue
		}
		if bytes.Contains(f.Content, []byte("OnFailure=")) || bytes.Contains(f.Content, []byte("OnSuccess=")) {
			t.Errorf("%s has a notification without notify configured", p)
		}
	}
}

// Snapshot mode: the snapshot step right after wait-stopped, resume after
// post_stop (before pre_backup), the start hooks shown as resume's, and no
// PartOf= (the hold ends before the jobs); every other stack keeps PartOf=.
func TestSnapshotSequence(t *testing.T) {
	set, files := renderCase(t, "snapshot")
	st := set.Stacks[0]
	opts := options(t, files["backup@cloud.service.d/50-stack.conf"])
	var pre []string
	for _, v := range values(opts, "Service", "ExecStartPre") {
		_, n := step(t, v)
		pre = append(pre, n)
	}
	want := []string{"gate", "hold", "wait-stopped", "snapshot", "hook:post_stop:1:/usr/bin/logger", "resume", "hook:pre_backup:1:/usr/bin/sync"}
	if !reflect.DeepEqual(pre, want) {
		t.Errorf("ExecStartPre sequence\n got %q\nwant %q", pre, want)
	}
	if v := values(opts, "Unit", "PartOf"); len(v) != 0 {
		t.Errorf("PartOf=%q in snapshot mode: stopping the hold before the jobs would stop the backup", v)
	}
	resume := values(opts, "Service", "X-ResumeHook")
	if len(resume) != 2 || !strings.HasPrefix(resume[0], "pre_start ") || !strings.HasPrefix(resume[1], "post_start ") {
		t.Errorf("X-ResumeHook %q", resume)
	}
	if fin := values(opts, "Service", "X-FinishHook"); len(fin) != 1 || !strings.HasPrefix(fin[0], "post_backup ") {
		t.Errorf("X-FinishHook %q, want post_backup alone", fin)
	}
	// The snapshot's timeout and resume's restore on the start side, the removal on the stop side.
	start, stop := Timeouts(set.Config, st)
	plain := *st
	plain.Snapshot = nil
	pstart, pstop := Timeouts(set.Config, &plain)
	if d := start - pstart; d != st.Snapshot.Timeout+st.StopTimeout+3*st.StartTimeout+2*hcl.DefaultHookTimeout {
		t.Errorf("TimeoutStartSec grows by %s in snapshot mode", d)
	}
	if d := stop - pstop; d != hcl.SnapshotRemoveTimeout {
		t.Errorf("TimeoutStopSec grows by %s in snapshot mode", d)
	}

	for _, c := range []string{"hooks", "ondemand", "ordering", "notify"} {
		set, files := renderCase(t, c)
		for _, st := range set.Stacks {
			opts := options(t, files["backup@"+st.Name+".service.d/50-stack.conf"])
			if got := one(t, opts, "Unit", "PartOf"); got != "backup-hold@"+st.Name+".service" {
				t.Errorf("%s: backup@%s has PartOf=%q", c, st.Name, got)
			}
		}
	}
}
