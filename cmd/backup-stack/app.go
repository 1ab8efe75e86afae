package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
)

const exitUsage = 2

// load reads the configuration. A broken config.hcl is an error here (the
// generator can fall back to defaults, but the helper would then talk to
// the wrong Duplicati); broken stack files only matter for their stack.
func (a *App) load() (*hcl.Set, hhcl.Diagnostics, error) {
	dir := a.ConfigDir
	if dir == "" {
		d, err := hcl.Dir()
		if err != nil {
			return nil, nil, withCode(exitUsage, err)
		}
		dir = d
	}
	set, diags := hcl.Load(dir)
	cfgPath := filepath.Join(dir, "config.hcl")
	for _, b := range set.Broken {
		if b == cfgPath {
			a.printDiags(diags, cfgPath)
			return nil, diags, withCode(exitUsage, fmt.Errorf("%s has errors; fix them (backup-stack validate)", cfgPath))
		}
	}
	if err := applyEnv(&set.Config.Duplicati); err != nil {
		return nil, diags, withCode(exitUsage, err)
	}
	return set, diags, nil
}

// stack loads the configuration and finds one stack by name (or unit name).
func (a *App) stack(arg string) (*hcl.Set, *hcl.Stack, error) {
	set, diags, err := a.load()
	if err != nil {
		return nil, nil, err
	}
	name := hcl.StackFromArg(arg)
	st, ok := set.Stack(name)
	if !ok {
		for _, b := range set.Broken {
			if strings.TrimSuffix(filepath.Base(b), ".hcl") == name {
				a.printDiags(diags, b)
				return nil, nil, withCode(exitUsage, fmt.Errorf("stack %q: %s has errors; fix them (backup-stack validate)", name, b))
			}
		}
		return nil, nil, withCode(exitUsage, fmt.Errorf("no stack %q in %s/stacks (have: %s)", name, set.Dir, stackNames(set)))
	}
	return set, st, nil
}

func stackNames(set *hcl.Set) string {
	if len(set.Stacks) == 0 {
		return "none"
	}
	var n []string
	for _, s := range set.Stacks {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

func (a *App) printDiags(diags hhcl.Diagnostics, file string) {
	for _, d := range diags {
		if file == "" || (d.Subject != nil && d.Subject.Filename == file) {
			fmt.Fprintln(a.Stderr, hcl.FormatDiag(d))
		}
	}
}

// applyEnv honours the seed's environment variables, which still override
// config.hcl for the helper.
func applyEnv(d *hcl.Duplicati) error {
	if v := os.Getenv("DUPLICATI_CONTAINER"); v != "" {
		d.Container = v
	}
	for _, e := range []struct {
		name string
		dst  *time.Duration
	}{{"DUPLICATI_RUN_TIMEOUT", &d.RunTimeout}, {"DUPLICATI_WAIT_TIMEOUT", &d.WaitTimeout}} {
		if v := os.Getenv(e.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("%s=%q: want a whole number of seconds", e.name, v)
			}
			*e.dst = time.Duration(n) * time.Second
		}
	}
	return nil
}

// backend builds the Duplicati route that config.hcl selects.
func backend(d hcl.Duplicati, wait time.Duration, logf func(string, ...any)) (duplicati.Backend, error) {
	o := duplicati.Options{
		RunTimeout:  d.RunTimeout,
		WaitTimeout: wait,
		Logf:        logf,
	}
	if d.PollInterval > 0 {
		o.PollInterval = d.PollInterval
	}
	if d.URL != "" {
		o.URL = d.URL
		o.PollInterval = 0 // the API route polls fast by default
		if d.PasswordFile != "" {
			pw, err := readSecret(d.PasswordFile)
			if err != nil {
				return nil, withCode(exitUsage, err)
			}
			o.Password = pw
		}
	} else {
		o.Command = []string{"podman", "exec", d.Container, d.ServerUtil}
	}
	b, err := duplicati.New(o)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return b, nil
}

// readSecret reads a password file. The content is never logged.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// logger writes to stderr (the journal) and, when log_dir is set, appends
// the same line with a timestamp to <log_dir>/backup-<stack>-YYYY-MM-DD.log.
type logger struct {
	mu     sync.Mutex
	stderr io.Writer
	prefix string
	dir    string
	stack  string
	warned bool
}

func (a *App) logger(set *hcl.Set, stack, step string) *logger {
	l := &logger{stderr: a.Stderr, stack: stack, prefix: step + ": "}
	if set != nil && set.Config.LogDir != "" && stack != "" {
		l.dir = set.Config.LogDir
	}
	return l
}

func (l *logger) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := l.prefix + fmt.Sprintf(format, args...)
	fmt.Fprintln(l.stderr, line)
	if l.dir == "" {
		return
	}
	now := time.Now()
	path := filepath.Join(l.dir, fmt.Sprintf("backup-%s-%s.log", l.stack, now.Format("2006-01-02")))
	err := os.MkdirAll(l.dir, 0o755)
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	}
	if err != nil {
		if !l.warned {
			l.warned = true
			fmt.Fprintf(l.stderr, "%scannot write the log file: %v\n", l.prefix, err)
		}
		return
	}
	fmt.Fprintf(f, "%s %s\n", now.Format(time.RFC3339), line)
	f.Close()
}

// env builds the environment of the unit steps.
func (a *App) env(l *logger, poll time.Duration) (*orchestrate.Env, error) {
	dir, err := orchestrate.RuntimeDir()
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	if poll <= 0 || poll > time.Second {
		poll = time.Second
	}
	return &orchestrate.Env{
		Dir:          dir,
		InvocationID: os.Getenv("INVOCATION_ID"),
		Logf:         l.Logf,
		Poll:         poll,
	}, nil
}
