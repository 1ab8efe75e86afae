// Command backup-generator is a systemd user generator: it turns the stack
// files in ~/.config/backup-stack/stacks/*.hcl into backup@<stack>.service
// instances, their hold units and timers.
//
// systemd runs it with one or three output directories (normal, early,
// late) on every daemon-reload; it writes only into the first. With
// --dry-run it prints what it would write. It never talks to D-Bus, runs no
// systemctl and touches no network: generators run early and in parallel.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/units"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("backup-generator", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dryRun := fl.Bool("dry-run", false, "print the units to stdout instead of writing them")
	configDir := fl.String("config", "", "configuration directory (default $XDG_CONFIG_HOME/backup-stack)")
	helper := fl.String("helper", "", "absolute path of backup-stack (default: next to this program)")
	userUnits := fl.String("user-units", "", "rootless mode: render into this unit directory (e.g. ~/.config/systemd/user), tracked by a manifest there")
	clean := fl.Bool("clean", false, "with --user-units: remove every file the manifest lists, and the manifest")
	reload := fl.Bool("reload", false, "with --user-units: when something changed, run systemctl --user daemon-reload and (re)start or stop the timers whose schedule changed")
	syncFiles := fl.Bool("sync", false, "fsync each file before renaming it into place (for an output directory on a real disk; systemd's generator directories are on tmpfs and need no fsync)")
	cacheFile := fl.String("cache", defaultCacheFile(), "decode cache of the stack files (empty: none)")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: backup-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n       backup-generator --dry-run\n       backup-generator --user-units DIR [--clean] [--reload]\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	dirs := fl.Args()
	if *userUnits != "" {
		if len(dirs) != 0 || *dryRun {
			fl.Usage()
			return 2
		}
	} else if *clean || *reload {
		fl.Usage()
		return 2
	} else if !*dryRun && len(dirs) != 1 && len(dirs) != 3 {
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

	if *userUnits != "" && *clean {
		return cleanUserUnits(*userUnits, *reload, stdout, logf)
	}
	if *userUnits != "" {
		// Rootless mode removes the units of stacks it no longer sees: an
		// unreadable stacks directory must not look like "no stacks".
		if _, err := hcl.StackFiles(dir); err != nil {
			logf("%v; nothing changed in %s", err, *userUnits)
			return 1
		}
	}
	set, diags := hcl.LoadWith(dir, loadOptions(*cacheFile))
	for _, d := range diags {
		fmt.Fprintln(stderr, hcl.FormatDiag(d))
	}
	files, err := units.Render(set, units.Options{Helper: h})
	problems := len(set.Broken)
	if err != nil {
		var se *units.StackError
		for _, e := range unwrapAll(err) {
			if errors.As(e, &se) {
				problems++
			}
			logf("skipped: %v", e)
		}
	}
	if *userUnits != "" {
		return writeUserUnits(*userUnits, files, err, *reload, stdout, logf)
	}
	if *dryRun {
		if err := units.DryRun(stdout, files); err != nil {
			logf("%v", err)
			return 1
		}
		if problems > 0 {
			return 1
		}
		return 0
	}
	if err := units.WriteAllWith(dirs[0], files, units.WriteOptions{Sync: *syncFiles}); err != nil {
		logf("%v", err)
		return 1
	}
	// Broken stack files were reported above and skipped; the others are
	// generated, and a non-zero exit would only add noise to the journal.
	return 0
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
