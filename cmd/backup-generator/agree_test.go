package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// agreeCorpus is a configuration directory of stack files, good and bad;
// ok says whether the file is meant to become units. Every bad file would
// have passed `backup-stack validate` or become a unit file that systemd
// does not read whole before the decoder learnt systemd's rules.
var agreeCorpus = []struct {
	file, src string
	ok        bool
}{
	{"good.hcl", `stack "good" { jobs = ["g"] }`, true},
	{"x-stack.hcl", `stack "x-stack" { jobs = ["x"] }`, true},
	{"space name.hcl", `stack "spacename" { jobs = ["s"] }`, true},
	{"100%.hcl", `stack "percent" { jobs = ["p"] }`, true},
	{"tricky.hcl", `stack "tricky" {
  jobs     = ["t"]
  schedule = "daily"
  hook "pre_stop" {
    command = ["/bin/sh", "-c", "echo \"$HOME\" 100% ; \\ 'q' \n x", "--help", ";", "\u2028\ufffd\U0010FFFD"]
  }
}`, true},
	{"prestart-nonchar.hcl", `stack "prestartnc" {
  jobs = ["a"]
  hook "pre_start" {
    command = ["/bin/echo", "restore\U0010FFFF"]
  }
}`, false},
	{"prestop-fdd0.hcl", "stack \"prestopnc\" {\n  jobs = [\"a\"]\n  hook \"pre_stop\" {\n    command = [\"/bin/echo\", \"\uFDD0\"]\n  }\n}\n", false},
	{"program-nonchar.hcl", `stack "prognc" {
  jobs = ["a"]
  hook "verify" {
    command = ["/opt/x\uFFFE/run"]
  }
}`, false},
	{"long-line.hcl", `stack "longline" {
  jobs = ["a"]
  hook "post_stop" {
    command = ["/bin/echo"` + strings.Repeat(`, "`+strings.Repeat("b", 120000)+`"`, 5) + `]
  }
}`, false},
	{"long-arg.hcl", `stack "longarg" {
  jobs = ["a"]
  hook "verify" {
    command = ["/bin/echo", "` + strings.Repeat("c", 140000) + `"]
  }
}`, false},
	{"tab\tname.hcl", `stack "tabname" { jobs = ["a"] }`, false},
	{"nonchar\uFFFF.hcl", `stack "ncname" { jobs = ["a"] }`, false},
	{"ctrl\x01name.hcl", `stack "ctrlname" { jobs = ["a"] }`, false},
	{"dash-h.hcl", `stack "-h" { jobs = ["a"] }`, false},
	{"help.hcl", `stack "--help" { jobs = ["a"] }`, false},
	{"version.hcl", `stack "--version" { jobs = ["a"] }`, false},
	{"underscore.hcl", `stack "_x" { jobs = ["a"] }`, false},
	{"unit-own.hcl", `stack "unitown" {
  jobs = ["a"]
  unit = "backup@good.service"
}`, false},
	{"unit-mount.hcl", `stack "unitmount" {
  jobs = ["a"]
  unit = "-.mount"
}`, false},
	{"unit-target.hcl", `stack "unittarget" {
  jobs = ["a"]
  unit = "multi-user.target"
}`, false},
	{"unit-dash.hcl", `stack "unitdash" {
  jobs = ["a"]
  unit = "-x.service"
}`, false},
	{"socket-dbus.hcl", `stack "sockdbus" {
  jobs = ["a"]
  on_demand {
    socket = "dbus.socket"
  }
}`, false},
	{"schedule-backslash.hcl", `stack "schedbs" {
  jobs     = ["a"]
  schedule = "daily\\"
}`, false},
	{"schedule-nonchar.hcl", `stack "schednc" {
  jobs     = ["a"]
  schedule = "daily\U0001FFFE"
}`, false},
	{"syntax.hcl", `stack "syntax" { jobs = ["a" }`, false},
	{"dup-a.hcl", `stack "good" { jobs = ["dup"] }`, false},
}

// TestValidateAndGeneratorAgree runs the real `backup-stack validate` and
// the generator over the same corpus and requires them to agree file by
// file: validate reports an error in a file exactly when the generator
// writes no units from it. (validate also asks systemd-analyze about
// schedules, which the generator cannot; the corpus has no schedule that
// only systemd-analyze refuses.)
func TestValidateAndGeneratorAgree(t *testing.T) {
	root := t.TempDir()
	helper := filepath.Join(root, "bin", "backup-stack")
	build := exec.Command("go", "build", "-o", helper, "github.com/backup-stack/backup-stack/cmd/backup-stack")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(root, "config")
	if err := os.MkdirAll(filepath.Join(cfg, "stacks"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range agreeCorpus {
		if err := os.WriteFile(filepath.Join(cfg, "stacks", c.file), []byte(c.src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	out := filepath.Join(root, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, genErr := runGen(t, "--config", cfg, "--helper", helper, out)
	if code != 0 {
		t.Fatalf("generator: exit %d: %s", code, genErr)
	}
	// Which files became units: the SourcePath= of each backup@ drop-in.
	generated := map[string]bool{}
	for p, content := range tree(t, out) {
		if !strings.HasPrefix(p, "backup@") || !strings.HasSuffix(p, ".service.d/50-stack.conf") {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(content))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "SourcePath="); ok {
				generated[strings.ReplaceAll(v, "%%", "%")] = true
			}
		}
	}

	val := exec.Command(helper, "--config", cfg, "validate")
	val.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(root, "state"), "XDG_RUNTIME_DIR="+filepath.Join(root, "run"))
	valOut, err := val.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("validate: %v (want exit 2)\n%s", err, valOut)
	}

	for _, c := range agreeCorpus {
		path := filepath.Join(cfg, "stacks", c.file)
		prefix := shown(path) + ":"
		valBad := hasLine(string(valOut), prefix, ": error: ")
		genBad := !generated[path]
		genSaid := hasLine(genErr, prefix, ": error: ")
		switch {
		case valBad != genBad:
			t.Errorf("%q: validate says error %v, the generator skipped it %v\nvalidate:\n%s\ngenerator:\n%s", c.file, valBad, genBad, valOut, genErr)
		case genBad != !c.ok:
			t.Errorf("%q: skipped %v, want %v", c.file, genBad, !c.ok)
		case genBad && !genSaid:
			t.Errorf("%q: skipped without a file:line:col error on the generator's stderr:\n%s", c.file, genErr)
		}
	}
	if t.Failed() {
		t.Logf("validate:\n%s\ngenerator stderr:\n%s", valOut, genErr)
	}
}

// shown is a path as hcl.FormatDiag shows it: quoted when it holds what a
// line cannot.
func shown(p string) string {
	if systemd.CheckUTF8(p) != nil || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return strconv.Quote(p)
	}
	return p
}

func hasLine(out, prefix, contains string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, contains) {
			return true
		}
	}
	return false
}
