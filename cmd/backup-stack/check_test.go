package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/manager/managertest"
)

// checkRig is a configuration directory and a fake world for the checks.
type checkRig struct {
	t     *testing.T
	dir   string
	mgr   *managertest.Fake
	pods  *fakePods
	probe *fakeProbe
	cal   map[string]error // schedules the fake systemd-analyze refuses
	lin   func() (bool, error)
}

func newCheckRig(t *testing.T, config string, stacks map[string]string) *checkRig {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "stacks"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "config.hcl"), config)
	for name, src := range stacks {
		write(filepath.Join(dir, "stacks", name+".hcl"), src)
	}
	return &checkRig{t: t, dir: dir, mgr: managertest.New(), pods: &fakePods{running: map[string][]string{}},
		probe: &fakeProbe{version: "2.1.0.5"}, cal: map[string]error{}, lin: func() (bool, error) { return true, nil }}
}

func (r *checkRig) world() *checkWorld {
	return &checkWorld{
		Manager:    r.mgr,
		Containers: r.pods,
		Duplicati:  r.probe,
		Route:      "REST route, http://127.0.0.1:8200",
		Calendar:   func(_ context.Context, s string) error { return r.cal[s] },
		Linger:     func(context.Context) (bool, error) { return r.lin() },
		Secret:     readSecretOnly,
	}
}

// input loads the configuration as check does.
func (r *checkRig) input(names ...string) (*checkInput, []problem) {
	set, diags := hcl.Load(r.dir)
	return selectStacks(set, diags, names)
}

// lines runs every check and returns the problems as check prints them.
func (r *checkRig) lines(names ...string) []string {
	in, probs := r.input(names...)
	res := runChecks(context.Background(), r.world(), in)
	var out []string
	for _, p := range append(probs, res.problems...) {
		out = append(out, p.String())
	}
	return out
}

// file is the path of a stack file of the rig.
func (r *checkRig) file(stack string) string { return filepath.Join(r.dir, "stacks", stack+".hcl") }

// healthy loads and starts everything a stack needs in the fake world.
func (r *checkRig) healthy(name string, extra ...string) {
	r.mgr.Set("active", name+"-stack.service")
	r.mgr.Set("inactive", "backup@"+name+".service", "backup-hold@"+name+".service", "backup@"+name+".timer")
	r.mgr.Set("active", extra...)
	r.mgr.SetEnvironment("PATH=/usr/bin:/bin", "HOME=/root")
	r.pods.running[name] = []string{name + "-app-1"}
	r.probe.backups = append(r.probe.backups, duplicati.BackupInfo{ID: "1", Name: name})
}

type fakeProbe struct {
	stateErr, backupsErr, versionErr error
	version                          string
	backups                          []duplicati.BackupInfo
}

func (p *fakeProbe) State(context.Context) (duplicati.ServerState, error) {
	return duplicati.ServerState{}, p.stateErr
}
func (p *fakeProbe) Backups(context.Context) ([]duplicati.BackupInfo, error) {
	return p.backups, p.backupsErr
}
func (p *fakeProbe) Version(context.Context) (string, error) { return p.version, p.versionErr }

// wantLines: every line of got that holds a want and no other line;
// each want is held by exactly one line (so a check that fires twice, or
// in the wrong place, fails).
func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range want {
		n := 0
		for i, g := range got {
			if strings.Contains(g, w) {
				n++
				used[i] = true
			}
		}
		if n != 1 {
			t.Errorf("%d lines hold %q, want 1; lines:\n%s", n, w, strings.Join(got, "\n"))
		}
	}
	for i, g := range got {
		if !used[i] {
			t.Errorf("unexpected line: %s", g)
		}
	}
}

const goodStack = `stack "web" {
  jobs = ["web"]
}
`

func TestCheckHealthy(t *testing.T) {
	r := newCheckRig(t, "", map[string]string{"web": goodStack})
	r.healthy("web")
	wantLines(t, r.lines())
}

func TestCheckUnits(t *testing.T) {
	src := `stack "web" {
  jobs = ["web"]
  unit = "web-stak.service"
  on_demand {
    socket  = "web.socket"
    service = "web-od.service"
  }
}
`
	for _, tc := range []struct {
		name  string
		setup func(r *checkRig)
		want  []string
	}{
		{"all loaded", func(r *checkRig) {}, nil},
		{"unit typo", func(r *checkRig) { r.mgr.SetProp("web-stak.service", "LoadState", "not-found") },
			[]string{":3:3: stack web: the user manager has no unit web-stak.service (unit); correct unit"}},
		{"missing socket", func(r *checkRig) { r.mgr.SetProp("web.socket", "LoadState", "not-found") },
			[]string{":5:5: stack web: the user manager has no unit web.socket (on_demand.socket)"}},
		{"missing on-demand service", func(r *checkRig) { r.mgr.SetProp("web-od.service", "LoadState", "not-found") },
			[]string{":6:5: stack web: the user manager has no unit web-od.service (on_demand.service)"}},
		{"generated unit missing", func(r *checkRig) { r.mgr.SetProp("backup-hold@web.service", "LoadState", "not-found") },
			[]string{":1:1: stack web: the generated unit backup-hold@web.service is not loaded; run backup-stack reload"}},
		{"masked", func(r *checkRig) { r.mgr.SetProp("web.socket", "LoadState", "masked") },
			[]string{"web.socket is masked; systemctl --user unmask web.socket"}},
		{"manager down", func(r *checkRig) {
			r.mgr.Fail("show web-stak.service web.socket web-od.service backup@web.service backup-hold@web.service", errors.New("no bus"))
		},
			[]string{"cannot ask the user manager about its units: no bus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCheckRig(t, "", map[string]string{"web": src})
			r.healthy("web", "web-stak.service", "web.socket", "web-od.service")
			tc.setup(r)
			in, _ := r.input()
			var got []string
			for _, p := range checkUnits(context.Background(), r.world(), in, in.stacks[0]) {
				got = append(got, p.String())
			}
			wantLines(t, got, tc.want...)
			for _, g := range got {
				if !strings.HasPrefix(g, r.file("web")+":") && !strings.Contains(g, "cannot ask") {
					t.Errorf("not at the stack file: %s", g)
				}
			}
		})
	}
}

func TestCheckContainers(t *testing.T) {
	src := "stack \"web\" {\n  jobs = [\"web\"]\n  project_label = \"webproj\"\n}\n"
	for _, tc := range []struct {
		name     string
		running  bool // containers labelled webproj
		unitUp   bool
		listErr  error
		want     string
		wantWarn bool
	}{
		{"containers found", true, true, nil, "", false},
		{"none while the stack is up", false, true, nil, ":3:3: stack web: no container is labelled io.podman.compose.project=webproj although web-stack.service is up; set project_label", false},
		{"none while the stack is down", false, false, nil, "warning: stack web: no container is labelled io.podman.compose.project=webproj, and web-stack.service is down", true},
		{"podman fails", false, true, errors.New("podman is not installed"), "cannot list the containers of project \"webproj\": podman is not installed", false},
		{"manager down", false, true, nil, "the manager cannot say whether web-stack.service is up", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCheckRig(t, "", map[string]string{"web": src})
			r.healthy("web")
			delete(r.pods.running, "web")
			if tc.running {
				r.pods.running["webproj"] = []string{"a"}
			}
			if !tc.unitUp {
				r.mgr.Set("inactive", "web-stack.service")
			}
			r.pods.err = tc.listErr
			if tc.name == "manager down" {
				r.mgr.Fail("show web-stack.service", errors.New("no bus"))
			}
			in, _ := r.input()
			ps := checkContainers(context.Background(), r.world(), in, in.stacks[0])
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
				if p.warn != tc.wantWarn {
					t.Errorf("warn = %v, want %v: %s", p.warn, tc.wantWarn, p)
				}
			}
			if tc.want == "" {
				wantLines(t, got)
			} else {
				wantLines(t, got, tc.want)
			}
		})
	}
}

func TestCheckJobs(t *testing.T) {
	src := "stack \"web\" {\n  jobs = [\n    \"WEB\",\n    \"7\",\n    \"nosuch\",\n  ]\n}\n"
	r := newCheckRig(t, "", map[string]string{"web": src})
	r.healthy("web")
	r.probe.backups = []duplicati.BackupInfo{{ID: "1", Name: "web"}, {ID: "7", Name: "db"}}
	in, _ := r.input()
	in.backups, in.haveBackups = r.probe.backups, true
	var got []string
	for _, p := range checkJobs(context.Background(), r.world(), in, in.stacks[0]) {
		got = append(got, p.String())
	}
	wantLines(t, got, r.file("web")+`:5:5: stack web: Duplicati has no backup "nosuch" (it has: web (ID 1), db (ID 7)); name a backup`)

	in.haveBackups = false // Duplicati unreachable: reported once, not per job
	if ps := checkJobs(context.Background(), r.world(), in, in.stacks[0]); len(ps) != 0 {
		t.Errorf("jobs checked without a list of backups: %v", ps)
	}
}

func TestCheckHooks(t *testing.T) {
	bin := t.TempDir()
	for name, mode := range map[string]os.FileMode{"good-hook": 0o755, "plain-file": 0o644} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, program string
		want          string
	}{
		{"on PATH", "good-hook", ""},
		{"absolute", filepath.Join(bin, "good-hook"), ""},
		{"not on PATH", "no-such-hook", `:5:16: stack web: hook "post_start": program "no-such-hook" is not on the units' PATH (/nonexistent:` + bin + `); install it`},
		{"not executable on PATH", "plain-file", `program "plain-file" is not on the units' PATH`},
		{"absolute, not executable", filepath.Join(bin, "plain-file"), "is not executable (chmod +x"},
		{"absolute, missing", "/nonexistent/x", "program /nonexistent/x: stat /nonexistent/x: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("stack \"web\" {\n  jobs = [\"web\"]\n  hook \"pre_stop\" { command = [\"good-hook\"] }\n  hook \"post_start\" {\n    command = [%q, \"--flag\"]\n  }\n}\n", tc.program)
			r := newCheckRig(t, "", map[string]string{"web": src})
			r.healthy("web")
			r.mgr.SetEnvironment("HOME=/root", "PATH=/nonexistent:"+bin)
			in, _ := r.input()
			var res checkResult
			checkEnvironment(context.Background(), r.world(), in, &res)
			if len(res.problems) > 0 || in.unitPath != "/nonexistent:"+bin {
				t.Fatalf("environment: %v, PATH %q", res.problems, in.unitPath)
			}
			var got []string
			for _, p := range checkHooks(context.Background(), r.world(), in, in.stacks[0]) {
				got = append(got, p.String())
			}
			if tc.want == "" {
				wantLines(t, got)
			} else {
				wantLines(t, got, tc.want)
			}
		})
	}
}

func TestCheckEnvironment(t *testing.T) {
	r := newCheckRig(t, "", map[string]string{"web": goodStack})
	in, _ := r.input()
	var res checkResult
	r.mgr.SetEnvironment("HOME=/root")
	checkEnvironment(context.Background(), r.world(), in, &res)
	if !in.havePath || in.unitPath != defaultUnitPath {
		t.Errorf("without PATH: %q %v, want systemd's default", in.unitPath, in.havePath)
	}
	in.havePath = false
	r.mgr.Fail("show-environment", errors.New("no bus"))
	checkEnvironment(context.Background(), r.world(), in, &res)
	if in.havePath || len(res.problems) != 1 || !strings.Contains(res.problems[0].String(), "cannot read the user manager's environment: no bus") {
		t.Errorf("manager down: %v %v", in.havePath, res.problems)
	}
}

func TestCheckRequirePaths(t *testing.T) {
	there := t.TempDir()
	src := fmt.Sprintf("stack \"web\" {\n  jobs = [\"web\"]\n  require_paths = [\n    %q,\n    \"/nonexistent/backup-disk\",\n  ]\n}\n", there)
	r := newCheckRig(t, "", map[string]string{"web": src})
	in, _ := r.input()
	var got []string
	for _, p := range checkRequirePaths(context.Background(), r.world(), in, in.stacks[0]) {
		got = append(got, p.String())
	}
	wantLines(t, got, r.file("web")+":5:5: stack web: require_paths[1] /nonexistent/backup-disk does not exist; mount or create it")
}

func TestCheckDuplicati(t *testing.T) {
	secrets := t.TempDir()
	good := filepath.Join(secrets, "good")
	open := filepath.Join(secrets, "open")
	if err := os.WriteFile(good, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(open, []byte("pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rest := func(pw string) string {
		return fmt.Sprintf("duplicati {\n  url = \"http://127.0.0.1:8200\"\n  password_file = %q\n}\n", pw)
	}
	for _, tc := range []struct {
		name   string
		config string
		setup  func(r *checkRig)
		want   []string
		info   string
	}{
		{"reachable", rest(good), func(r *checkRig) {}, nil, "Duplicati 2.1.0.5 reachable (REST route"},
		{"no version", rest(good), func(r *checkRig) { r.probe.version = "" }, nil, "it does not show its version"},
		{"version fails", rest(good), func(r *checkRig) { r.probe.versionErr = errors.New("404") }, nil, "version unknown: 404"},
		{"unreachable", rest(good), func(r *checkRig) { r.probe.stateErr = errors.New("connection refused") },
			[]string{"Duplicati cannot be reached (REST route, http://127.0.0.1:8200): connection refused; start Duplicati"}, ""},
		{"data folder refused", rest(good), func(r *checkRig) {
			r.probe.stateErr = errors.New(`duplicati-server-util status refuses its data folder ...: set exec_user = "1000" in the duplicati block`)
		}, []string{`refuses its data folder ...: set exec_user = "1000" in the duplicati block`}, ""},
		{"backups fail", rest(good), func(r *checkRig) { r.probe.backupsErr = errors.New("500") },
			[]string{"cannot list Duplicati's backups: 500"}, "reachable"},
		{"password file missing", rest(filepath.Join(secrets, "none")), func(r *checkRig) {},
			[]string{"config.hcl:3:3: password_file: open " + filepath.Join(secrets, "none") + ": no such file or directory; write the secret"}, "reachable"},
		{"password file open to others", rest(open), func(r *checkRig) {},
			[]string{"config.hcl:3:3: password_file " + open + " can be read or written by group or others (mode 0644): make it private"}, "reachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCheckRig(t, tc.config, map[string]string{"web": goodStack})
			tc.setup(r)
			in, probs := r.input()
			if len(probs) > 0 {
				t.Fatalf("config: %v", probs)
			}
			var res checkResult
			checkDuplicati(context.Background(), r.world(), in, &res)
			var got []string
			for _, p := range res.problems {
				got = append(got, p.String())
			}
			wantLines(t, got, tc.want...)
			if tc.info != "" && (len(res.info) != 1 || !strings.Contains(res.info[0], tc.info)) {
				t.Errorf("info %q, want one line holding %q", res.info, tc.info)
			}
			if tc.info == "" && len(res.info) > 0 {
				t.Errorf("info %q from an unreachable Duplicati", res.info)
			}
			if wantJobs := len(tc.want) == 0 || tc.name == "password file missing" || tc.name == "password file open to others"; in.haveBackups != wantJobs {
				t.Errorf("haveBackups = %v, want %v", in.haveBackups, wantJobs)
			}
		})
	}
	t.Run("no client", func(t *testing.T) {
		r := newCheckRig(t, "", map[string]string{"web": goodStack})
		in, _ := r.input()
		w := r.world()
		w.Duplicati, w.DuplicatiErr = nil, errors.New("duplicati: container \"-x\" is not a name")
		var res checkResult
		checkDuplicati(context.Background(), w, in, &res)
		if len(res.problems) != 1 || !strings.Contains(res.problems[0].String(), "cannot talk to Duplicati: duplicati: container") {
			t.Errorf("%v", res.problems)
		}
	})
}

func TestCheckLinger(t *testing.T) {
	sched := "stack \"web\" {\n  jobs = [\"web\"]\n  schedule = \"daily\"\n}\n"
	for _, tc := range []struct {
		name, src string
		on        bool
		err       error
		want      string
		warn      bool
	}{
		{"lingering", sched, true, nil, "", false},
		{"no schedule, no question", goodStack, false, errors.New("must not be asked"), "", false},
		{"off", sched, false, nil, "lingering is off: the timers of web fire only while you are logged in; loginctl enable-linger", false},
		{"no logind", sched, false, errors.New("Failed to connect to bus"), "warning: cannot tell whether lingering is on (Failed to connect to bus)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCheckRig(t, "", map[string]string{"web": tc.src})
			r.lin = func() (bool, error) { return tc.on, tc.err }
			in, _ := r.input()
			var res checkResult
			checkLinger(context.Background(), r.world(), in, &res)
			var got []string
			for _, p := range res.problems {
				got = append(got, p.String())
				if p.warn != tc.warn {
					t.Errorf("warn = %v, want %v", p.warn, tc.warn)
				}
			}
			if tc.want == "" {
				wantLines(t, got)
			} else {
				wantLines(t, got, tc.want)
			}
		})
	}
}

// TestCheckSchedules: a schedule systemd-analyze refuses is reported at
// its own line, also in a file with other errors, together with them.
func TestCheckSchedules(t *testing.T) {
	r := newCheckRig(t, "defaults {\n  schedule = \"weekly at 4\"\n}\n", map[string]string{
		"web":    "stack \"web\" {\n  jobs = [\"web\"]\n\n  schedule = \"daily at 3\"\n}\n",
		"broken": "stack \"broken\" {\n  jobs = [\"b\"]\n  stop_timeout = \"soon\"\n  schedule = \"daily at 3\"\n}\n",
		"fine":   "stack \"fine\" {\n  jobs = [\"f\"]\n  schedule = \"daily\"\n}\n",
	})
	r.cal["daily at 3"] = errors.New("Failed to parse calendar specification 'daily at 3': Invalid argument")
	r.cal["weekly at 4"] = errors.New("Failed to parse")
	in, probs := r.input()
	var res checkResult
	checkSchedules(context.Background(), r.world(), in, &res)
	var got []string
	for _, p := range append(probs, res.problems...) {
		got = append(got, p.String())
	}
	wantLines(t, got,
		r.file("web")+`:4:3: stack web: Invalid schedule; schedule "daily at 3" is not systemd calendar syntax (Failed to parse calendar specification 'daily at 3': Invalid argument)`,
		r.file("broken")+`:4:3: stack broken: Invalid schedule`,
		r.file("broken")+`:3:18: stack broken: Invalid duration`,
		filepath.Join(r.dir, "config.hcl")+`:2:3: Invalid schedule; schedule "weekly at 4"`,
	)

	r.cal = map[string]error{}
	w := r.world()
	w.Calendar = nil
	res = checkResult{}
	checkSchedules(context.Background(), w, in, &res)
	if len(res.problems) != 1 || !res.problems[0].warn || !strings.Contains(res.problems[0].what, "systemd-analyze is not installed") {
		t.Errorf("without systemd-analyze: %v", res.problems)
	}
}

func TestCheckSelect(t *testing.T) {
	r := newCheckRig(t, "", map[string]string{
		"web":    goodStack,
		"db":     "stack \"db\" {\n  jobs = [\"db\"]\n}\n",
		"broken": "stack \"broken\" {\n  jobs = []\n}\n",
	})
	r.healthy("web")
	r.healthy("db")
	for _, tc := range []struct {
		name  string
		args  []string
		want  []string
		names []string
	}{
		{"all", nil, []string{"stack broken: No jobs"}, []string{"db", "web"}},
		{"one good", []string{"web"}, nil, []string{"web"}},
		{"by unit name", []string{"backup@db.service"}, nil, []string{"db"}},
		{"broken one", []string{"broken"}, []string{"stack broken: No jobs"}, nil},
		{"unknown", []string{"nosuch"}, []string{"stack nosuch: no such stack in " + r.dir + "/stacks; check the name"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, _ := r.input(tc.args...)
			var names []string
			for _, st := range in.stacks {
				names = append(names, st.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.names, ",") {
				t.Errorf("stacks %v, want %v", names, tc.names)
			}
			wantLines(t, r.lines(tc.args...), tc.want...)
		})
	}
}

func TestCheckPrint(t *testing.T) {
	r := newCheckRig(t, "", map[string]string{"web": goodStack})
	in, _ := r.input()
	for _, tc := range []struct {
		name  string
		probs []problem
		code  int
		want  string
	}{
		{"nothing wrong", nil, 0, "OK: 1 stack(s) ready for backup: web\n"},
		{"only warnings", []problem{{warn: true, what: "w"}}, 0, "warning: w\nOK: 1 stack(s)"},
		{"a problem", []problem{{stack: "web", what: "bad", fix: "fix it"}}, exitcode.Usage, "stack web: bad; fix it\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := printCheck(&out, in, tc.probs, []string{"Duplicati 2.1 reachable"})
			code := 0
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				code = -1
			}
			if code != tc.code || !strings.Contains(out.String(), tc.want) || !strings.HasPrefix(out.String(), "Duplicati 2.1 reachable\n") {
				t.Errorf("code %d (want %d), output:\n%s", code, tc.code, out.String())
			}
			if tc.code != 0 && strings.Contains(out.String(), "OK") {
				t.Errorf("OK despite a problem:\n%s", out.String())
			}
		})
	}
}

// check reports what the gate would refuse about a snapshot block, at the
// block, before a timer finds it: here btrfs on a plain directory, and a
// missing path; a copy that fits is fine.
func TestCheckSnapshot(t *testing.T) {
	data := t.TempDir()
	snaps := t.TempDir()
	block := func(method, path string) string {
		return fmt.Sprintf("stack %%q {\n  jobs = [\"x\"]\n  snapshot {\n    paths  = [%q]\n    method = %q\n    into   = %q\n  }\n}\n", path, method, snaps)
	}
	r := newCheckRig(t, "", map[string]string{
		"plain":   fmt.Sprintf(block("btrfs", data), "plain"),
		"missing": fmt.Sprintf(block("copy", filepath.Join(data, "gone")), "missing"),
		"fine":    fmt.Sprintf(block("copy", data), "fine"),
	})
	in, _ := r.input()
	var got []string
	for _, st := range in.stacks {
		for _, p := range checkSnapshot(context.Background(), r.world(), in, st) {
			got = append(got, p.String())
		}
	}
	wantLines(t, got,
		r.file("plain")+":3:3: stack plain: method btrfs: "+data+" is not a btrfs subvolume",
		r.file("missing")+":3:3: stack missing: path "+filepath.Join(data, "gone")+": lstat "+filepath.Join(data, "gone")+": no such file or directory; the gate refuses the backup")
}
