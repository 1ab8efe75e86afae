package orchestrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
)

func TestPlanUnitsAndHooks(t *testing.T) {
	for _, tc := range []struct {
		od   *hcl.OnDemand
		want []string
	}{
		{nil, []string{unitA}},
		{odSocket, []string{unitA, sockA}},
		{odService, []string{unitA, sockA, svcA}},
		// A service without a socket is not the stack's to stop.
		{&hcl.OnDemand{Service: svcA}, []string{unitA}},
	} {
		if got := planA(invA, tc.od).Units(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: units %q, want %q", tc.od, got, tc.want)
		}
	}
	p := planA(invA, nil, func(p *Plan) {
		p.Settings.Hooks = []Hook{{Kind: "verify", Command: []string{"a"}}, {Kind: "pre_stop", Command: []string{"b"}}, {Kind: "verify", Command: []string{"c"}}}
	})
	if got := p.HooksOf("verify"); len(got) != 2 || got[0].Command[0] != "a" || got[1].Command[0] != "c" {
		t.Errorf("verify hooks %+v", got)
	}
	if got := p.HooksOf("post_start"); got != nil {
		t.Errorf("post_start hooks %+v", got)
	}
}

func TestNewPlanCopiesHooksAndSources(t *testing.T) {
	dir := t.TempDir()
	stackFile, cfgFile := filepath.Join(dir, "a.hcl"), filepath.Join(dir, "missing-config.hcl")
	if err := os.WriteFile(stackFile, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := stackA(nil)
	st.File = stackFile
	st.Hooks = []hcl.Hook{{Kind: "verify", Command: []string{"true"}, IgnoreFailure: true, Timeout: time.Second}}
	p := NewPlan(&hcl.Config{File: cfgFile}, st, invA)
	if len(p.Sources) != 2 || p.Sources[cfgFile] != "" || len(p.Sources[stackFile]) != 64 {
		t.Fatalf("sources %q", p.Sources)
	}
	if want := []Hook{{Kind: "verify", Command: []string{"true"}, IgnoreFailure: true, Timeout: time.Second}}; !reflect.DeepEqual(p.Settings.Hooks, want) {
		t.Errorf("hooks %+v", p.Settings.Hooks)
	}
	if p.Stack != "a" || p.InvocationID != invA || p.Gate.IsZero() {
		t.Errorf("plan %+v", p)
	}
	if ch := p.Changed(); len(ch) != 0 {
		t.Errorf("changed %q", ch)
	}
	// Edited, then deleted; a file created where there was none.
	if err := os.WriteFile(stackFile, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ch := p.Changed(); !reflect.DeepEqual(ch, []string{stackFile}) {
		t.Errorf("after an edit: %q", ch)
	}
	if err := os.Remove(stackFile); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := p.Changed()
	if len(ch) != 2 {
		t.Errorf("after a delete and a create: %q", ch)
	}
}

func TestPlanStates(t *testing.T) {
	var nilPlan *Plan
	for _, tc := range []struct {
		name     string
		p        *Plan
		leftDown bool
	}{
		{"nil", nilPlan, false},
		{"fresh", planA(invA, nil), false},
		{"held", planA(invA, nil, held(true, false, false)), true},
		{"held, restored", planA(invA, nil, held(true, false, false), func(p *Plan) { p.Restored = true }), false},
		{"held, finished", planA(invA, nil, held(true, false, false), func(p *Plan) { p.Finished = true }), false},
	} {
		if got := tc.p.LeftDown(); got != tc.leftDown {
			t.Errorf("%s: left down %v, want %v", tc.name, got, tc.leftDown)
		}
	}
	p := planA(invA, nil)
	if p.Reason() != "" {
		t.Errorf("reason %q", p.Reason())
	}
	p.Fail("first")
	p.Fail("second")
	if p.Reason() != "first" || !reflect.DeepEqual(p.Failures, []string{"first", "second"}) {
		t.Errorf("reason %q failures %q", p.Reason(), p.Failures)
	}
}

func TestPlanSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if p, err := LoadPlan(dir, "a"); p != nil || err != nil {
		t.Fatalf("no plan yet: %+v %v", p, err)
	}
	want := planA(invA, odService, held(true, true, false, "a-app"), func(p *Plan) {
		p.Settings.Hooks = []Hook{{Kind: "verify", Command: []string{"true"}, Timeout: time.Minute}}
		p.Settings.Notify = &hcl.Notify{OnFailure: []string{"x"}}
		p.Stopped, p.Notified = true, true
		p.Fail("verify")
	})
	if err := want.Save(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(planPath(dir, "a")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("plan file: %v %v", fi, err)
	}
	got, err := LoadPlan(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !bytes.Equal(wb, gb) {
		t.Errorf("round trip\n%s\nwant\n%s", gb, wb)
	}
}

func TestLoadPlanDamaged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		why     string
	}{
		{"not JSON", "{half", "invalid character"},
		{"empty", "", "unexpected end of JSON input"},
		{"another stack's", `{"stack":"b","invocation_id":"x"}`, "names another stack or no invocation"},
		{"no invocation", `{"stack":"a"}`, "names another stack or no invocation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := planPath(dir, "a")
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := LoadPlan(dir, "a")
			if p != nil || !errors.Is(err, ErrDamagedState) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %+v %v", p, err)
			}
			m, _ := filepath.Glob(path + ".corrupt-*")
			if len(m) != 1 || !strings.Contains(err.Error(), m[0]) {
				t.Fatalf("moved aside to %q; error %v", m, err)
			}
			if b, _ := os.ReadFile(m[0]); string(b) != tc.content {
				t.Errorf("content lost: %q", b)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the damaged plan is still in place: %v", err)
			}
			// Next time there is simply no plan.
			if p, err := LoadPlan(dir, "a"); p != nil || err != nil {
				t.Errorf("after moving aside: %+v %v", p, err)
			}
		})
	}
}

// A damaged plan never wedges a stack: the next gate moves it aside and
// passes, and the next run's steps work from the new plan.
func TestDamagedPlanThenGate(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Set("active", unitA).Conflicts(holdA, unitA)
	if err := os.MkdirAll(filepath.Join(te.StateDir, "plan"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planPath(te.StateDir, "a"), []byte("\x00\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Gate(context.Background(), te.Env, cfgA, stackA(nil), time.Second, idleNow)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(planPath(te.StateDir, "a") + ".corrupt-*"); len(m) != 1 {
		t.Errorf("moved aside: %q", m)
	}
	own, err := te.OwnPlan(context.Background(), "a")
	if err != nil || own.InvocationID != invA || !own.UnitActive {
		t.Fatalf("own plan %+v %v", own, err)
	}
	if err := Hold(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	if u, _ := Unfinished(te.StateDir); len(u) != 1 || u[0].InvocationID != invA {
		t.Errorf("unfinished %+v", u)
	}
}

func TestOwnPlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, te *testEnv)
		wantErr error // nil = found
		warned  bool
	}{
		{"ours", func(t *testing.T, te *testEnv) { te.savePlan(t, planA(invA, nil)) }, nil, false},
		{"none", func(*testing.T, *testEnv) {}, ErrNoPlan, false},
		{"another invocation's", func(t *testing.T, te *testEnv) { te.savePlan(t, planA("inv-old", nil)) }, ErrNoPlan, false},
		{"damaged", func(t *testing.T, te *testEnv) {
			os.MkdirAll(filepath.Join(te.StateDir, "plan"), 0o700)
			os.WriteFile(planPath(te.StateDir, "a"), []byte("{"), 0o600)
		}, ErrNoPlan, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newEnv(t, invA)
			tc.setup(t, te)
			p, err := te.OwnPlan(context.Background(), "a")
			if tc.wantErr == nil {
				if err != nil || p == nil || p.InvocationID != invA {
					t.Fatalf("%+v %v", p, err)
				}
			} else if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "invocation "+invA) {
				t.Fatalf("got %v", err)
			}
			if got := strings.Contains(te.log.String(), "damaged"); got != tc.warned {
				t.Errorf("warned %v:\n%s", got, te.log)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		te := newEnv(t, invA)
		os.MkdirAll(planPath(te.StateDir, "a"), 0o700)
		if _, err := te.OwnPlan(context.Background(), "a"); err == nil || errors.Is(err, ErrNoPlan) || errors.Is(err, ErrDamagedState) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestUnfinished(t *testing.T) {
	dir := t.TempDir()
	if u, err := Unfinished(dir); u != nil || err != nil {
		t.Fatalf("no plan directory: %v %v", u, err)
	}
	for _, p := range []*Plan{
		{Stack: "c", InvocationID: "inv-c", Held: true},
		{Stack: "a", InvocationID: "inv-a"},
		{Stack: "b", InvocationID: "inv-b", Finished: true},
	} {
		if err := p.Save(dir); err != nil {
			t.Fatal(err)
		}
	}
	pd := filepath.Join(dir, "plan")
	for name, content := range map[string]string{
		"d.json":                  "{",       // damaged
		"notes.txt":               "ignored", // not a plan
		"e.json.corrupt-20250101": "{",       // moved aside earlier
		".tmp-f.json-123":         "{",       // a write that never finished
	} {
		if err := os.WriteFile(filepath.Join(pd, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(pd, "g.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	u, err := Unfinished(dir)
	if !errors.Is(err, ErrDamagedState) || !strings.Contains(err.Error(), "d.json") {
		t.Errorf("error %v", err)
	}
	var stacks []string
	for _, p := range u {
		stacks = append(stacks, p.Stack)
	}
	if !reflect.DeepEqual(stacks, []string{"a", "c"}) {
		t.Errorf("unfinished %q, want [a c]", stacks)
	}
	if _, err := os.Stat(filepath.Join(pd, "d.json")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the damaged plan was not moved aside")
	}

	// The plan directory is a file.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "plan"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Unfinished(bad); err == nil {
		t.Error("want ENOTDIR")
	}
}

// ---------------------------------------------------------------- History

func TestHistory(t *testing.T) {
	dir := t.TempDir()
	if h, err := LoadHistory(dir, "a"); h != nil || err != nil {
		t.Fatalf("no history yet: %v %v", h, err)
	}
	gate := time.Now().Add(-time.Minute).Truncate(time.Second).UTC()
	want := &History{Stack: "a", InvocationID: invA, Result: "success", Gate: gate, HeldAt: gate.Add(time.Second),
		RestoredAt: gate.Add(30 * time.Second), Finished: gate.Add(time.Minute), Downtime: 29, LastSuccess: gate.Add(time.Minute)}
	if err := want.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadHistory(dir, "a")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v", got, err)
	}
	if !got.Succeeded() || got.Duration() != time.Minute {
		t.Errorf("succeeded %v duration %s", got.Succeeded(), got.Duration())
	}
	for _, h := range []History{{Result: "success", Failures: []string{"verify hook"}}, {Result: "exit-code"}, {Result: "interrupted"}, {Result: ""}} {
		if h.Succeeded() {
			t.Errorf("%+v counted as success", h)
		}
	}
	if d := (&History{Finished: time.Now()}).Duration(); d != 0 {
		t.Errorf("duration without a gate: %s", d)
	}
}

func TestLoadHistoryDamaged(t *testing.T) {
	for _, tc := range []struct {
		name, content, why string
	}{
		{"not JSON", "not json", "invalid character"},
		{"another stack's", `{"stack":"b","result":"success"}`, `it is the history of stack "b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := historyPath(dir, "a")
			os.MkdirAll(filepath.Dir(path), 0o700)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			h, err := LoadHistory(dir, "a")
			if h != nil || !errors.Is(err, ErrDamagedState) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %+v %v", h, err)
			}
			if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 1 {
				t.Errorf("moved aside: %q", m)
			}
			// The next run writes a new history over nothing.
			if err := (&History{Stack: "a", Result: "success"}).Save(dir); err != nil {
				t.Fatal(err)
			}
			if h, err := LoadHistory(dir, "a"); err != nil || h == nil || h.Result != "success" {
				t.Errorf("after moving aside: %+v %v", h, err)
			}
		})
	}
	t.Run("unreadable: not moved", func(t *testing.T) {
		dir := t.TempDir()
		path := historyPath(dir, "a")
		os.MkdirAll(path, 0o700) // a directory
		h, err := LoadHistory(dir, "a")
		if h != nil || err == nil || errors.Is(err, ErrDamagedState) {
			t.Fatalf("got %+v %v", h, err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Error("moved")
		}
	})
}

func TestMoveAsideFails(t *testing.T) {
	err := moveAside(filepath.Join(t.TempDir(), "missing.json"), "why")
	if err == nil || errors.Is(err, ErrDamagedState) || !strings.Contains(err.Error(), "could not be moved aside") {
		t.Fatalf("got %v", err)
	}
}

// ---------------------------------------------------------------- small things

func TestCheckPaths(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, nil, 0o600)
	if err := CheckPaths([]string{dir, f}); err != nil {
		t.Fatal(err)
	}
	if err := CheckPaths(nil); err != nil {
		t.Fatal(err)
	}
	err := CheckPaths([]string{filepath.Join(dir, "x"), dir, filepath.Join(dir, "y")})
	if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "required path "+filepath.Join(dir, "x")) ||
		!strings.Contains(err.Error(), filepath.Join(dir, "y")) {
		t.Fatalf("got %v", err)
	}
}

func TestStateDirAndRuntimeDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct{ xdg, want string }{
		{"/srv/state", "/srv/state/backup-stack"},
		{"relative/state", filepath.Join(home, ".local", "state", "backup-stack")},
		{"", filepath.Join(home, ".local", "state", "backup-stack")},
	} {
		t.Setenv("XDG_STATE_HOME", tc.xdg)
		if got, err := StateDir(); err != nil || got != tc.want {
			t.Errorf("XDG_STATE_HOME=%q: %q %v, want %q", tc.xdg, got, err, tc.want)
		}
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	if got, err := StateDir(); err == nil {
		t.Errorf("no HOME: got %q", got)
	}

	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got, err := RuntimeDir(); err != nil || got != "/run/user/1000/backup-stack" {
		t.Errorf("%q %v", got, err)
	}
	for _, x := range []string{"", "run/user/1000"} {
		t.Setenv("XDG_RUNTIME_DIR", x)
		if got, err := RuntimeDir(); err == nil || !strings.Contains(err.Error(), "XDG_RUNTIME_DIR") {
			t.Errorf("XDG_RUNTIME_DIR=%q: %q %v", x, got, err)
		}
	}
}

func TestPollDefault(t *testing.T) {
	if p := (&Env{}).poll(); p != time.Second {
		t.Errorf("default poll %s", p)
	}
	if p := (&Env{Poll: 5 * time.Millisecond}).poll(); p != 5*time.Millisecond {
		t.Errorf("poll %s", p)
	}
}

func TestWriteJSONFailures(t *testing.T) {
	if err := writeJSON(filepath.Join(t.TempDir(), "x.json"), func() {}); err == nil {
		t.Error("writeJSON of a func")
	}
	// A name whose temporary file name is too long for the file system.
	long := filepath.Join(t.TempDir(), strings.Repeat("n", 250))
	if err := writeJSON(long, 1); err == nil || !strings.Contains(err.Error(), "writing") {
		t.Errorf("got %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), []byte("{"), 0o600)
	var v any
	if err := readJSON(filepath.Join(dir, "x"), &v); err == nil || !strings.Contains(err.Error(), "x:") {
		t.Errorf("got %v", err)
	}
}
