// Command backup-generator is a systemd user generator: it turns the stack
// files in ~/.config/backup-stack/stacks/*.hcl into backup@<stack>.service
// instances, their hold units and timers.
//
// systemd runs it with one or three output directories (normal, early,
// late) at manager start and on every daemon-reload; it writes only into
// the first, and nowhere else: no cache, no state, no program run, no
// D-Bus, no network (systemd.generator(7)). One bad stack file is reported
// on stderr (the journal) and skipped; the others are generated.
// `--dry-run [STACK...]` prints what it would write, from the same code.
// Rendering into a unit directory that a person also uses (the rootless
// install) is `backup-stack render`, which shares the rendering code.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/systemd"
	"github.com/backup-stack/backup-stack/units"
)

func main() {
	// Nearly all the generator allocates is garbage by the time the next
	// stack renders; only the decoded stacks stay. At the default GOGC=100
	// the first collection waits for a 4 MiB heap; at 75 it comes at 3 MiB,
	// which brought the peak RSS of 1,000 minimal stacks within 1 MiB of
	// quadlet's (9.0 -> 8.3 MiB; quadlet 8.0), the time ratio at 1,000
	// stacks from 0.41x/0.45x to 0.42x/0.49x, while a run of 100 stacks
	// still ends before any collection (README, Performance). GOGC set by
	// the user wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(75)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("backup-generator", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dryRun := fl.Bool("dry-run", false, "print the units to stdout instead of writing them; with stack names, only those stacks' files (and the templates)")
	configDir := fl.String("config", "", "configuration directory (default $XDG_CONFIG_HOME/backup-stack)")
	helper := fl.String("helper", "", "absolute path of backup-stack (default: next to this program)")
	showVersion := fl.Bool("version", false, "print the version and the commit it was built from, and exit")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: backup-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n       backup-generator --dry-run [STACK...]\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildVersion())
		return 0
	}
	rest := fl.Args()
	if !*dryRun && len(rest) != 1 && len(rest) != 3 {
		fl.Usage()
		return 2
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "backup-generator: "+format+"\n", a...) }

	dir := *configDir
	if dir == "" {
		d, err := hcl.Dir()
		if err != nil {
			logf("%v", err)
			return 1
		}
		dir = d
	}
	h := *helper
	if h == "" {
		exe, err := os.Executable()
		if err != nil {
			logf("cannot find my own path to locate backup-stack: %v", err)
			return 1
		}
		h = filepath.Join(filepath.Dir(exe), "backup-stack")
	}
	if _, err := os.Stat(h); err != nil && *helper == "" {
		// Still generate: the units say where they expect the helper, and
		// installing it there is enough to make them work.
		logf("warning: the helper %s is missing (%v); backups will fail until it is installed there", h, err)
	}

	opt := units.Options{Helper: h}
	if !*dryRun {
		return generate(dir, rest[0], opt, stderr, logf)
	}
	g := units.Generate(dir, opt)
	report(g, stderr, logf)
	if g.Err != nil {
		logf("%v", g.Err)
		return 1
	}
	files := g.Files
	if len(rest) > 0 {
		files = only(files, rest)
		for _, s := range rest {
			if !slices.ContainsFunc(files, func(f units.File) bool { return ownedBy(f.Path, s) }) {
				logf("no stack %q was generated (see the messages above, or backup-stack list)", s)
				g.Skipped = append(g.Skipped, fmt.Errorf("no stack %q", s))
			}
		}
	}
	if err := units.DryRun(stdout, files); err != nil {
		logf("%v", err)
		return 1
	}
	if g.Problems() > 0 {
		return 1
	}
	return 0
}

// report prints the diagnostics and the stacks left out.
func report(g units.Generated, stderr io.Writer, logf func(string, ...any)) {
	for _, d := range g.Diags {
		fmt.Fprintln(stderr, hcl.FormatDiag(d))
	}
	for _, e := range g.Skipped {
		logf("skipped: %v", e)
	}
}

// generate renders into out, writing each stack's files while the next
// stack renders, so that the units are never all in memory at once. What
// an earlier run left in out is removed first, once rendering is known to
// produce something (as before: not when the helper path is refused).
func generate(dir, out string, opt units.Options, stderr io.Writer, logf func(string, ...any)) int {
	var w *units.Writer
	start := func() {
		if err := units.RemoveOwn(out); err != nil {
			logf("removing what an earlier run left in %s: %v", out, err)
		}
		w = units.NewWriter(out)
	}
	g := units.GenerateEach(dir, opt, func(files []units.File) {
		if w == nil {
			start()
		}
		w.Add(files)
	})
	report(g, stderr, logf)
	if g.Err != nil {
		logf("%v", g.Err)
		return 1
	}
	if w == nil {
		start() // no configuration: no units, and none left from earlier
	}
	if err := w.Close(); err != nil {
		logf("%v", err)
		return 1
	}
	// Broken stack files were reported above and skipped; the others are
	// generated, and a non-zero exit would only add noise to the journal.
	return 0
}

// only keeps the templates (and the recovery unit's link) and the files of
// the named stacks.
func only(files []units.File, stacks []string) []units.File {
	recoverLink, _ := systemd.RecoverWantsLink()
	var out []units.File
	for _, f := range files {
		if !strings.Contains(f.Path, "/") || f.Path == recoverLink || slices.ContainsFunc(stacks, func(s string) bool { return ownedBy(f.Path, s) }) {
			out = append(out, f)
		}
	}
	return out
}

// ownedBy reports whether a generated path belongs to stack s.
func ownedBy(p, s string) bool {
	for _, u := range []string{systemd.BackupService(s), systemd.HoldService(s), systemd.BackupTimer(s)} {
		if strings.HasPrefix(p, u+".d/") {
			return true
		}
	}
	link, _ := systemd.WantsLink(s)
	return p == link
}
