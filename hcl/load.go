package hcl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Set is everything found in a configuration directory.
type Set struct {
	Dir    string
	Config *Config
	// Stacks are the stacks whose files decoded without error, sorted by
	// name. A broken file never removes the others.
	Stacks []*Stack
	// Broken lists the files skipped because of errors.
	Broken []string
}

// Stack finds a stack by name.
func (s *Set) Stack(name string) (*Stack, bool) {
	i := sort.Search(len(s.Stacks), func(i int) bool { return s.Stacks[i].Name >= name })
	if i < len(s.Stacks) && s.Stacks[i].Name == name {
		return s.Stacks[i], true
	}
	return nil, false
}

// StackFiles lists dir/stacks/*.hcl, sorted, without templates (files whose
// name starts with '_') and hidden files.
func StackFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "stacks"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading stack files: %w", err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "_") || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".hcl") {
			continue
		}
		if e.Type().IsDir() {
			continue
		}
		files = append(files, filepath.Join(dir, "stacks", n))
	}
	sort.Strings(files)
	return files, nil
}

// Load reads config.hcl and every stack file of dir. Problems come back as
// diagnostics; a file with errors is skipped and listed in Set.Broken, and
// a broken config.hcl leaves the built-in defaults in place.
func Load(dir string) (*Set, hhcl.Diagnostics) {
	set, diags := loadConfig(dir)
	files, err := StackFiles(set.Dir)
	if err != nil {
		diags = append(diags, &hhcl.Diagnostic{Severity: hhcl.DiagError, Summary: "Cannot read stacks", Detail: err.Error()})
	}
	results := loadStackFiles(files, set.Config)
	byName := make(map[string]int, len(files)) // stack name -> index in set.Stacks
	for i, f := range files {
		st, d := results[i].stack, results[i].diags
		diags = append(diags, d...)
		if st == nil {
			set.Broken = append(set.Broken, f)
			continue
		}
		j, dup := byName[st.Name]
		if !dup {
			byName[st.Name] = len(set.Stacks)
			set.Stacks = append(set.Stacks, st)
			continue
		}
		// Two files define one stack: stacks/<name>.hcl wins, so that a
		// step, which reads only that file (LoadStack), sees the same stack
		// as the generator; otherwise the first file in name order wins.
		keep, drop := set.Stacks[j], st
		if stemOf(st.File) == st.Name && stemOf(keep.File) != st.Name {
			keep, drop = st, keep
			set.Stacks[j] = keep
		}
		r := drop.Range
		diags = append(diags, &hhcl.Diagnostic{
			Severity: hhcl.DiagError,
			Summary:  "Stack defined twice",
			Detail: fmt.Sprintf("stack %q is already defined at %s; rename one of them (this file is skipped).",
				st.Name, keep.Range),
			Subject: &r,
		})
		set.Broken = append(set.Broken, drop.File)
	}
	sort.Strings(set.Broken)
	sort.Slice(set.Stacks, func(i, j int) bool { return set.Stacks[i].Name < set.Stacks[j].Name })
	return set, diags
}

// LoadStack reads config.hcl and the file of one stack: stacks/<name>.hcl
// when that file defines it (a file of another name that defines the same
// stack loses to it in Load too), else every stack file, as Load does. It is
// what a step of a running backup reads: its own stack, not all of them.
// The Set holds at most that one stack; Broken lists the files with errors
// among those read.
func LoadStack(dir, name string) (*Set, hhcl.Diagnostics) {
	set, diags := loadConfig(dir)
	if systemd.ValidStackName(name) {
		path := filepath.Join(set.Dir, "stacks", name+".hcl")
		if _, err := os.Stat(path); err == nil {
			st, d := LoadStackFile(path, set.Config)
			switch {
			case st == nil:
				set.Broken = append(set.Broken, path)
				return set, append(diags, d...)
			case st.Name == name:
				set.Stacks = []*Stack{st}
				return set, append(diags, d...)
			}
		}
	}
	all, d := Load(dir)
	if st, ok := all.Stack(name); ok {
		all.Stacks = []*Stack{st}
	} else {
		all.Stacks = nil
	}
	return all, d
}

// loadConfig reads dir/config.hcl into a Set without stacks.
func loadConfig(dir string) (*Set, hhcl.Diagnostics) {
	// SourcePath= needs an absolute path: systemd ignores a relative one.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	set := &Set{Dir: dir}
	var diags hhcl.Diagnostics
	cfgPath := filepath.Join(dir, "config.hcl")
	src, err := readFile(cfgPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		set.Config, _ = ParseConfig(cfgPath, nil)
	case err != nil:
		diags = append(diags, fileDiag(cfgPath, err))
		set.Config, _ = ParseConfig(cfgPath, nil)
		set.Broken = append(set.Broken, cfgPath)
	default:
		cfg, d := ParseConfig(cfgPath, src)
		diags = append(diags, d...)
		if d.HasErrors() {
			set.Broken = append(set.Broken, cfgPath)
			cfg, _ = ParseConfig(cfgPath, nil)
		}
		set.Config = cfg
	}
	return set, diags
}

// loaded is the outcome of LoadStackFile for one file.
type loaded struct {
	stack *Stack
	diags hhcl.Diagnostics
}

// loadStackFiles runs LoadStackFile on every file with at most GOMAXPROCS
// files in flight and returns the results in the order of files, so that
// what callers see does not depend on scheduling. Parsing dominates the
// generator's run time and the files are independent; cfg is only read.
// Each worker parses into one arena of syntax nodes, file after file,
// until a file gives a diagnostic, which may point into its tree: the
// worker then leaves that arena to it and takes a new one.
func loadStackFiles(files []string, cfg *Config) []loaded {
	out := make([]loaded, len(files))
	var next atomic.Int64
	work := func() {
		arena := &nodeArena{}
		for i := int(next.Add(1)) - 1; i < len(files); i = int(next.Add(1)) - 1 {
			out[i].stack, out[i].diags = loadStackFile(files[i], cfg, arena)
			if len(out[i].diags) > 0 {
				arena = &nodeArena{}
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(files))
	if workers <= 1 {
		work()
		return out
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
	return out
}

// LoadStackFile reads and decodes one stack file.
func LoadStackFile(path string, cfg *Config) (*Stack, hhcl.Diagnostics) {
	return loadStackFile(path, cfg, nil)
}

func loadStackFile(path string, cfg *Config, arena *nodeArena) (*Stack, hhcl.Diagnostics) {
	src, err := readFile(path)
	if err != nil {
		return nil, hhcl.Diagnostics{fileDiag(path, err)}
	}
	st, diags := parseStack(path, src, cfg, arena)
	if st != nil && stemOf(path) != st.Name {
		r := st.Range
		diags = append(diags, &hhcl.Diagnostic{
			Severity: hhcl.DiagWarning,
			Summary:  "File name differs from stack name",
			Detail:   fmt.Sprintf("stack %q lives in %s; name the file %s.hcl so it is easy to find.", st.Name, filepath.Base(path), st.Name),
			Subject:  &r,
		})
	}
	return st, diags
}

func fileDiag(path string, err error) *hhcl.Diagnostic {
	return &hhcl.Diagnostic{
		Severity: hhcl.DiagError,
		Summary:  "Cannot read file",
		Detail:   err.Error(),
		Subject:  &hhcl.Range{Filename: path, Start: hhcl.InitialPos, End: hhcl.InitialPos},
	}
}

// FormatDiag renders one diagnostic as "file:line:col: severity: summary; detail",
// the form compilers use, so editors and the journal show it well.
func FormatDiag(d *hhcl.Diagnostic) string {
	sev := "error"
	if d.Severity == hhcl.DiagWarning {
		sev = "warning"
	}
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	if d.Subject == nil {
		return fmt.Sprintf("%s: %s", sev, msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", shownPath(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column, sev, msg)
}

// shownPath is a file name as a diagnostic shows it: quoted (Go syntax)
// when it holds a control character or anything else systemd would not
// take in a line (systemd.CheckUTF8), so that one diagnostic stays one line
// in a terminal and in the journal; the message then says what is wrong.
func shownPath(p string) string {
	if systemd.CheckUTF8(p) != nil || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return strconv.Quote(p)
	}
	return p
}
