package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// CheckCmd is `validate` plus the live system: what a backup of each stack
// will meet when its timer fires, found now rather than at 03:30.
type CheckCmd struct {
	Stacks []string `arg:"" optional:"" help:"Stacks to check (default: every stack)."`
}

// problem is one line of check's output:
// FILE:LINE:COL: stack S: what is wrong; what to do.
type problem struct {
	pos   *hhcl.Range // nil: a live problem with no place in a file
	stack string      // "" for config.hcl and the system as a whole
	what  string
	fix   string
	warn  bool // reported, but does not make check fail
}

func (p problem) String() string {
	var b strings.Builder
	if p.pos != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", p.pos.Filename, p.pos.Start.Line, p.pos.Start.Column)
	}
	if p.warn {
		b.WriteString("warning: ")
	}
	if p.stack != "" {
		fmt.Fprintf(&b, "stack %s: ", p.stack)
	}
	b.WriteString(p.what)
	if p.fix != "" {
		b.WriteString("; ")
		b.WriteString(p.fix)
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// checkInput is the configuration one run of check looks at, and where in
// the files each attribute is written.
type checkInput struct {
	set    *hcl.Set
	stacks []*hcl.Stack          // the selected stacks that decoded
	files  []string              // config.hcl and the selected stacks' files, broken ones too
	attrs  map[string][]hcl.Attr // by file: hcl.Positions

	// What the global checks learnt, for the stacks' checks.
	backups     []duplicati.BackupInfo // Duplicati's backups (haveBackups)
	haveBackups bool
	unitPath    string // the units' PATH (havePath)
	havePath    bool
}

// at is the position of attribute path in file, else fallback.
func (in *checkInput) at(file, path string, fallback hhcl.Range) *hhcl.Range {
	if a, ok := hcl.Find(in.attrs[file], path); ok {
		r := a.Range
		return &r
	}
	return &fallback
}

// configFile is config.hcl's path.
func (in *checkInput) configFile() string { return filepath.Join(in.set.Dir, "config.hcl") }

func (c *CheckCmd) Run(ctx context.Context, app *App) error {
	dir, err := app.configDir()
	if err != nil {
		return err
	}
	set, diags := hcl.Load(dir)
	if err := applyEnv(&set.Config.Duplicati); err != nil {
		return withCode(exitcode.Usage, err)
	}
	in, probs := selectStacks(set, diags, c.Stacks)
	res := runChecks(ctx, app.checkWorld(set.Config.Duplicati), in)
	return printCheck(app.Stdout, in, append(probs, res.problems...), res.info)
}

// printCheck prints what check found and returns its verdict: an error
// (exit 2, a configuration error) when a problem is not a mere warning.
func printCheck(out io.Writer, in *checkInput, probs []problem, info []string) error {
	for _, l := range info {
		fmt.Fprintln(out, l)
	}
	errs := 0
	for _, p := range probs {
		fmt.Fprintln(out, p)
		if !p.warn {
			errs++
		}
	}
	if errs > 0 {
		return withCode(exitcode.Usage, fmt.Errorf("check found %d problem(s); fix them and run it again", errs))
	}
	names := make([]string, len(in.stacks))
	for i, st := range in.stacks {
		names[i] = st.Name
	}
	fmt.Fprintf(out, "OK: %d stack(s) ready for backup: %s\n", len(names), strings.Join(names, ", "))
	return nil
}

// selectStacks picks the stacks named (default: all) and turns the
// decoder's diagnostics about their files and config.hcl into problems.
func selectStacks(set *hcl.Set, diags hhcl.Diagnostics, names []string) (*checkInput, []problem) {
	in := &checkInput{set: set, attrs: map[string][]hcl.Attr{}}
	var probs []problem
	cfgFile := in.configFile()
	want := map[string]bool{cfgFile: true}
	in.files = []string{cfgFile}
	if len(names) == 0 {
		in.stacks = set.Stacks
		files, _ := hcl.StackFiles(set.Dir)
		in.files = append(in.files, files...)
	}
	for _, arg := range names {
		name := systemd.StackFromArg(arg)
		if st, ok := set.Stack(name); ok {
			in.stacks = append(in.stacks, st)
			in.files = append(in.files, st.File)
			continue
		}
		broken := ""
		for _, b := range set.Broken {
			if checkStem(b) == name {
				broken = b
			}
		}
		if broken != "" {
			in.files = append(in.files, broken)
			continue // its diagnostics say what is wrong
		}
		probs = append(probs, problem{stack: name, what: fmt.Sprintf("no such stack in %s/stacks", set.Dir),
			fix: "check the name (backup-stack list shows the stacks)"})
	}
	for _, f := range in.files {
		want[f] = true
		if src, err := os.ReadFile(f); err == nil {
			in.attrs[f] = hcl.Positions(f, src)
		}
	}
	for _, d := range diags {
		if d.Subject != nil && !want[d.Subject.Filename] {
			continue
		}
		probs = append(probs, diagProblem(set.Dir, d))
	}
	return in, probs
}

// diagProblem is a decoder diagnostic as a line of check.
func diagProblem(dir string, d *hhcl.Diagnostic) problem {
	p := problem{what: d.Summary, fix: d.Detail, warn: d.Severity != hhcl.DiagError}
	if d.Subject != nil {
		r := *d.Subject
		p.pos = &r
		if filepath.Dir(r.Filename) == filepath.Join(dir, "stacks") {
			p.stack = checkStem(r.Filename)
		}
	}
	return p
}

func checkStem(path string) string { return strings.TrimSuffix(filepath.Base(path), ".hcl") }

// checkResult is what the checks found: problems, and lines that say what
// was seen (Duplicati's version).
type checkResult struct {
	problems []problem
	info     []string
}

// A globalCheck looks at config.hcl and the system once; a stackCheck at
// one stack. Each is a small function over checkWorld, so that a test can
// give it a fake world.
type (
	globalCheck func(ctx context.Context, w *checkWorld, in *checkInput, res *checkResult)
	stackCheck  func(ctx context.Context, w *checkWorld, in *checkInput, st *hcl.Stack) []problem
)

// checks are every check, in the order of their output.
func checks() ([]globalCheck, []stackCheck) {
	return []globalCheck{checkSchedules, checkEnvironment, checkDuplicati, checkLinger},
		[]stackCheck{checkUnits, checkContainers, checkJobs, checkHooks, checkRequirePaths, checkSnapshot}
}

func runChecks(ctx context.Context, w *checkWorld, in *checkInput) checkResult {
	var res checkResult
	globals, perStack := checks()
	for _, g := range globals {
		g(ctx, w, in, &res)
	}
	for _, st := range in.stacks {
		for _, c := range perStack {
			res.problems = append(res.problems, c(ctx, w, in, st)...)
		}
	}
	return res
}

// discardLogger swallows the backend's log lines: check prints problems.
func checkDiscardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
