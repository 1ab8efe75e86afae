package e2e

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// updateShow rewrites testdata/show/*.golden from the current code.
var updateShow = flag.Bool("update-show", false, "rewrite test/e2e/testdata/show/*.golden from the current generator")

// showVolatile are the properties left out of the comparison: each one differed between two
// runs of the same code on the same machine (found by running the test twice against the same
// golden files), so it says nothing about the generator. Host-dependent values (Limit*,
// TasksMax, MemoryAvailable: see showHostDependent) are left out too. Everything else is compared.
//
// Nothing here is started but timers.target (active since manager start) and the test's own
// anchor; the backup@<stack>.timer units stay inactive (the stacks appear only at the
// daemon-reload, which starts nothing), so no timer can fire during the test and their
// NextElapse*/LastTrigger* are constant.
var showVolatile = map[string]string{
	// Wall and monotonic clock of the last state change: every unit loaded through a
	// daemon-reload has one, timers.target all of them (it is started at manager start).
	"StateChangeTimestamp":           "clock",
	"StateChangeTimestampMonotonic":  "clock",
	"ActiveEnterTimestamp":           "clock",
	"ActiveEnterTimestampMonotonic":  "clock",
	"InactiveExitTimestamp":          "clock",
	"InactiveExitTimestampMonotonic": "clock",
	"ConditionTimestamp":             "clock",
	"ConditionTimestampMonotonic":    "clock",
	"AssertTimestamp":                "clock",
	"AssertTimestampMonotonic":       "clock",
	// A random 128-bit ID per activation (timers.target, backup-recover.service).
	"InvocationID": "random",
	// backup-recover.service runs once at every manager start: when and as which process.
	"ExecMainStartTimestamp":          "clock",
	"ExecMainStartTimestampMonotonic": "clock",
	"ExecMainExitTimestamp":           "clock",
	"ExecMainExitTimestampMonotonic":  "clock",
	"InactiveEnterTimestamp":          "clock",
	"InactiveEnterTimestampMonotonic": "clock",
	"ExecMainPID":                     "pid",
}

// showHostDependent says which properties come from the machine and the process that
// started the manager (resource limits inherited from its rlimits, the kernel's task and
// memory ceilings), not from any unit file: CI's shell may have other ulimits than a
// developer's.
func showHostDependent(k string) bool {
	return strings.HasPrefix(k, "Limit") || k == "TasksMax" || k == "MemoryAvailable"
}

// showSetProps hold unit names (or paths) that systemd keeps in hash maps with a random key
// per process: their order changes from one manager to the next, so their words are sorted.
var showSetProps = map[string]bool{
	"Requires": true, "Requisite": true, "Wants": true, "BindsTo": true, "PartOf": true,
	"Upholds": true, "RequiredBy": true, "RequisiteOf": true, "WantedBy": true, "BoundBy": true,
	"UpheldBy": true, "ConsistsOf": true, "Conflicts": true, "ConflictedBy": true,
	"Before": true, "After": true, "OnSuccess": true, "OnSuccessOf": true, "OnFailure": true,
	"OnFailureOf": true, "Triggers": true, "TriggeredBy": true, "PropagatesReloadTo": true,
	"ReloadPropagatedFrom": true, "PropagatesStopTo": true, "StopPropagatedFrom": true,
	"JoinsNamespaceOf": true, "SliceOf": true, "References": true, "ReferencedBy": true,
	"Names": true, "RequiresMountsFor": true,
}

// showCase is one configuration: files relative to $XDG_CONFIG_HOME/backup-stack, plus user
// units (stack units, sockets) the stacks refer to. "@T@" and "@ID@" in any of them are
// replaced with the env's temp dir and id.
type showCase struct {
	name      string
	files     map[string]string
	userUnits map[string]string
}

// TestGeneratedUnitsAsSystemdReadsThem captures `systemctl --user show --all` of every unit
// the generator emits (templates as instances per stack, and timers.target), under a real
// manager with the real generator, and compares it with testdata/show/<case>.golden. It pins
// what systemd makes of the generator's output, not the bytes of the files, so that a
// rewrite of the generator can be checked against the code that came before it.
//
// Rewrite the golden files (review the diff!) with
//
//	BACKUP_STACK_E2E=require go test -count=1 -run TestGeneratedUnitsAsSystemdReadsThem ./test/e2e/ -update-show
func TestGeneratedUnitsAsSystemdReadsThem(t *testing.T) {
	t.Parallel()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	cases := showGoldenCases(t)
	cases = append(cases, showE2ECases()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runShowCase(t, c) })
	}
}

// showGoldenCases loads units/testdata/golden/<case>/config as they are.
func showGoldenCases(t *testing.T) []showCase {
	t.Helper()
	root := filepath.Join(suite.root, "units", "testdata", "golden")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []showCase
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		cfg := filepath.Join(root, ent.Name(), "config")
		c := showCase{name: "golden-" + ent.Name(), files: map[string]string{}}
		err := filepath.WalkDir(cfg, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(cfg, p)
			c.files[filepath.ToSlash(rel)] = string(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) < 4 {
		t.Fatalf("golden cases in %s: %d", root, len(out))
	}
	return out
}

// showE2ECases are stacks shaped like those of the e2e scenarios. Stack and unit names carry
// the env id (@ID@): nothing here is started, but no two managers on the host should ever
// see the same names (DESIGN fact 15).
func showE2ECases() []showCase {
	stackUnit := "[Unit]\nDescription=e2e stack\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
	return []showCase{{
		// REST route, global notify/healthcheck/metrics/log_dir; a stack with every hook kind
		// (several of a kind, ignore_failure on and off), on_demand socket+service, its own
		// schedule, notify and healthcheck, two jobs, require_paths; and a plain one.
		name: "e2e-rest",
		files: map[string]string{
			"config.hcl": `duplicati {
  url           = "http://127.0.0.1:1"
  password_file = "@T@/duplicati-password"
  wait_timeout  = "5m"
}
defaults {
  restore_policy = "previous"
}
notify {
  on_failure = ["/bin/sh", "-c", "echo failed $BACKUP_STACK >> @T@/notified"]
}
healthcheck { url = "http://127.0.0.1:1/ping" }
metrics_file = "@T@/backup.prom"
log_dir      = "@T@/logs"
`,
			"stacks/full-@ID@.hcl": `stack "full-@ID@" {
  unit           = "full-@ID@-stack.service"
  project_label  = "full-@ID@"
  jobs           = ["full-@ID@-job", "full-@ID@-db"]
  schedule       = "*-*-* 03:30:00"
  restore_policy = "always"
  stop_timeout   = "30s"
  start_timeout  = "60s"
  wait_timeout   = "2m"
  require_paths  = ["@T@/target", "@T@/target two"]
  on_demand {
    socket  = "od-full-@ID@.socket"
    service = "od-full-@ID@.service"
  }
  notify {
    on_failure = ["/bin/sh", "-c", "echo 100%% $BACKUP_RESULT >> @T@/full-notified"]
    on_success = ["/bin/true", "ok"]
  }
  healthcheck { url = "http://127.0.0.1:1/ping/full" }
  hook "verify" { command = ["/bin/true", "verify"] }
  hook "pre_stop" {
    command        = ["/bin/sh", "-c", "echo 100%% $SERVICE_RESULT >> @T@/hooks.log"]
    ignore_failure = true
  }
  hook "pre_stop"    { command = ["/bin/true", "a b", "c\"d", "$${HOME}", "%i"] }
  hook "post_stop"   { command = ["/bin/true"] }
  hook "pre_backup"  { command = ["/bin/true", "pre_backup"] }
  hook "post_backup" { command = ["/bin/sh", "-c", "echo post_backup result=$SERVICE_RESULT"] }
  hook "post_backup" {
    command        = ["/bin/false"]
    ignore_failure = true
  }
  hook "pre_start"   { command = ["/bin/true"] }
  hook "post_start" {
    command        = ["/bin/false"]
    ignore_failure = true
  }
  hook "post_start"  { command = ["/bin/true", "post_start"] }
}
`,
			"stacks/plain-@ID@.hcl": `stack "plain-@ID@" {
  jobs          = ["plain-@ID@-job"]
  stop_timeout  = "30s"
  start_timeout = "60s"
  wait_timeout  = "2m"
}
`,
		},
		userUnits: map[string]string{
			"full-@ID@-stack.service":  stackUnit,
			"plain-@ID@-stack.service": stackUnit,
			"od-full-@ID@.socket":      "[Socket]\nListenStream=%t/od-full-@ID@.sock\nAccept=no\n",
			"od-full-@ID@.service":     "[Service]\nExecStart=/bin/sleep 60\n",
		},
	}, {
		// Exec route with a default schedule: a stack on the default schedule with an
		// on_demand socket only, one that turns the schedule off, one with its own schedule
		// and only an on_success notify.
		name: "e2e-exec",
		files: map[string]string{
			"config.hcl": `duplicati {
  container    = "duplicati-@ID@"
  server_util  = "duplicati-server-util"
  run_timeout  = "25s"
  wait_timeout = "5m"
}
defaults {
  schedule       = "*-*-* 03:30:00"
  restore_policy = "always"
}
`,
			"stacks/ondemand-@ID@.hcl": `stack "ondemand-@ID@" {
  jobs = ["1"]
  on_demand {
    socket = "od-@ID@.socket"
  }
  hook "post_start" {
    command        = ["/bin/true"]
    ignore_failure = true
  }
}
`,
			"stacks/unscheduled-@ID@.hcl": `stack "unscheduled-@ID@" {
  jobs     = ["1", "2"]
  schedule = ""
  require_paths = ["@T@/target"]
}
`,
			"stacks/weekly-@ID@.hcl": `stack "weekly-@ID@" {
  jobs     = ["3"]
  schedule = "weekly"
  notify {
    on_success = ["/bin/true", "done"]
  }
}
`,
		},
		userUnits: map[string]string{
			"ondemand-@ID@-stack.service":    stackUnit,
			"unscheduled-@ID@-stack.service": stackUnit,
			"weekly-@ID@-stack.service":      stackUnit,
			"od-@ID@.socket":                 "[Socket]\nListenStream=%t/od-@ID@.sock\nAccept=no\n",
		},
	}}
}

func runShowCase(t *testing.T, c showCase) {
	start := time.Now()
	e := newEnv(t)
	subst := strings.NewReplacer("@T@", e.dir, "@ID@", e.id)
	for _, d := range []string{"target", "target two"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for rel, content := range c.files {
		p := filepath.Join(e.configDir(), subst.Replace(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(subst.Replace(content)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range c.userUnits {
		e.writeUserUnit(subst.Replace(name), subst.Replace(content))
	}
	e.daemonReload()
	units := e.generatedUnits()
	if len(units) == 0 {
		t.Fatal("no units to show")
	}

	// Reverse dependencies (TriggeredBy=, ConsistsOf=, OnFailureOf=, timers.target's After=
	// ...) list only the neighbours that are loaded when `show` asks, and the manager loads a
	// unit nothing pulls in (e.g. backup@<stack>.timer without a schedule) only when asked
	// and may unload it again whenever it is inactive and unreferenced: without help the
	// output depends on the order of the show calls and on the manager's garbage collection.
	// An active anchor ordered After= every unit keeps them all loaded; its name is taken out
	// of the output again.
	anchor := "show-anchor-" + e.id + ".service"
	e.writeUserUnit(anchor, "[Unit]\nDescription=e2e: keeps the generated units loaded\nDefaultDependencies=no\nAfter="+
		strings.Join(units, " ")+"\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
	e.daemonReload()
	if out, err := e.systemctl("start", anchor); err != nil {
		t.Fatalf("start %s: %v: %s", anchor, err, oneLine(out))
	}

	norm := showNormalizer(e, anchor)
	var b strings.Builder
	props := 0
	for _, u := range units {
		out, err := e.systemctlTimeout(30*time.Second, "show", "--all", u)
		if err != nil {
			t.Fatalf("systemctl --user show --all %s: %v: %s", u, err, oneLine(out))
		}
		lines := norm(out)
		if len(lines) == 0 {
			t.Fatalf("show %s: no properties", u)
		}
		props += len(lines)
		fmt.Fprintf(&b, "### %s\n%s\n\n", norm(u)[0], strings.Join(lines, "\n"))
	}
	got := b.String()
	t.Logf("%d units, %d properties (%s)", len(units), props, time.Since(start).Round(time.Millisecond))

	path := filepath.Join(suite.root, "test", "e2e", "testdata", "show", c.name+".golden")
	if *updateShow {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-show to create it)", err)
	}
	if d := showDiff(string(want), got); d != "" {
		t.Errorf("systemctl show differs from %s (- golden, + now); rerun with -update-show only if the change is meant:\n%s", path, d)
	}
}

// generatedUnits lists, from the generator's normal output dir, every unit systemd can load
// from it: each template instantiated for every stack that has a drop-in or timer link, every
// plain unit file, and each unit with a .wants/.requires dir (timers.target). Sorted.
func (e *env) generatedUnits() []string {
	e.t.Helper()
	dir := filepath.Join(e.run, "systemd", "generator")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) { // systemd removes an empty output dir
		e.t.Fatalf("generator output: %v; manager.log: %s", err, e.tail("manager.log"))
	}
	var templates []string
	stacks := map[string]bool{}
	set := map[string]bool{"timers.target": true}
	addInstance := func(name string) {
		if at := strings.Index(name, "@"); at >= 0 {
			dot := strings.LastIndex(name, ".")
			if dot > at+1 {
				stacks[name[at+1:dot]] = true
			}
		}
	}
	for _, ent := range ents {
		name := ent.Name()
		switch {
		case strings.HasSuffix(name, ".d"):
			addInstance(strings.TrimSuffix(name, ".d"))
		case strings.HasSuffix(name, ".wants") || strings.HasSuffix(name, ".requires"):
			set[name[:strings.LastIndex(name, ".")]] = true
			links, _ := os.ReadDir(filepath.Join(dir, name))
			for _, l := range links {
				addInstance(l.Name())
			}
		case strings.Contains(name, "@."):
			templates = append(templates, name)
		default:
			set[name] = true
		}
	}
	for _, tmpl := range templates {
		at := strings.Index(tmpl, "@.")
		for s := range stacks {
			set[tmpl[:at+1]+s+tmpl[at+1:]] = true
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// showNormalizer turns `systemctl show` output into stable "Key=value" lines: paths of this
// env and of the suite's binaries become placeholders, volatile properties go, unit sets are
// sorted and the anchor unit is taken out of them.
func showNormalizer(e *env, anchor string) func(string) []string {
	// Longest first: run and home are inside the temp dir, bin inside the suite dir.
	paths := strings.NewReplacer(
		e.run, "@RUN@",
		e.home, "@HOME@",
		e.dir, "@T@",
		suite.bin, "@BIN@",
		suite.dir, "@SUITE@",
		e.id, "@ID@",
	)
	return func(out string) []string {
		var lines []string
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				lines = append(lines, paths.Replace(line))
				continue
			}
			if _, drop := showVolatile[k]; drop || showHostDependent(k) {
				continue
			}
			if showSetProps[k] {
				var words []string
				for _, w := range strings.Fields(v) {
					if w != anchor {
						words = append(words, w)
					}
				}
				sort.Strings(words)
				v = strings.Join(words, " ")
			}
			lines = append(lines, k+"="+paths.Replace(v))
		}
		return lines
	}
}

// showDiff compares two golden texts unit by unit and property by property and returns a
// unified-ish diff of the lines that differ ("" when equal).
func showDiff(want, got string) string {
	wu, worder := parseShowGolden(want)
	gu, gorder := parseShowGolden(got)
	var b strings.Builder
	seen := map[string]bool{}
	for _, u := range append(worder, gorder...) {
		if seen[u] {
			continue
		}
		seen[u] = true
		w, inW := wu[u]
		g, inG := gu[u]
		switch {
		case !inG:
			fmt.Fprintf(&b, "--- unit %s is gone (%d properties)\n", u, len(w.lines))
			continue
		case !inW:
			fmt.Fprintf(&b, "+++ unit %s is new (%d properties)\n", u, len(g.lines))
			continue
		}
		var hunk []string
		pseen := map[string]bool{}
		for _, k := range append(append([]string{}, w.keys...), g.keys...) {
			if pseen[k] {
				continue
			}
			pseen[k] = true
			wv, wok := w.props[k]
			gv, gok := g.props[k]
			if wok == gok && wv == gv {
				continue
			}
			if wok {
				hunk = append(hunk, "-"+k+"="+wv)
			}
			if gok {
				hunk = append(hunk, "+"+k+"="+gv)
			}
		}
		if len(hunk) == 0 && strings.Join(w.lines, "\n") != strings.Join(g.lines, "\n") {
			hunk = append(hunk, "(same properties, different order or repeated keys)")
		}
		if len(hunk) > 0 {
			fmt.Fprintf(&b, "@@ %s @@\n%s\n", u, strings.Join(hunk, "\n"))
		}
	}
	return b.String()
}

type showUnit struct {
	lines []string
	keys  []string
	props map[string]string
}

func parseShowGolden(s string) (map[string]*showUnit, []string) {
	units := map[string]*showUnit{}
	var order []string
	var cur *showUnit
	for _, line := range strings.Split(s, "\n") {
		if name, ok := strings.CutPrefix(line, "### "); ok {
			cur = &showUnit{props: map[string]string{}}
			units[name] = cur
			order = append(order, name)
			continue
		}
		if cur == nil || line == "" {
			continue
		}
		cur.lines = append(cur.lines, line)
		k, v, _ := strings.Cut(line, "=")
		if _, dup := cur.props[k]; dup {
			k = fmt.Sprintf("%s#%d", k, len(cur.keys))
		}
		cur.keys = append(cur.keys, k)
		cur.props[k] = v
	}
	return units, order
}
