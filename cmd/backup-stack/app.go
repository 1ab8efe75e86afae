package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	hhcl "github.com/hashicorp/hcl/v2"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/journal"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/orchestrate"
	"github.com/backup-stack/backup-stack/internal/systemd"
)

// App is what every command gets: where to write, where the configuration
// is, and the world outside (the user manager, podman), which tests replace.
type App struct {
	Stdout, Stderr io.Writer
	ConfigDir      string
	Manager        manager.Manager
	Containers     orchestrate.Containers
	// Priorities makes log lines carry the journal's "<N>" prefix (stderr
	// is the journal: see journal.ToJournal).
	Priorities bool
	// RuntimeDir and StateDir override $XDG_RUNTIME_DIR/backup-stack and
	// $XDG_STATE_HOME/backup-stack ("" = those).
	RuntimeDir, StateDir string
	// Poll bounds the interval of the steps' wait loops (0 = 1s).
	Poll time.Duration
}

func (a *App) configDir() (string, error) {
	if a.ConfigDir != "" {
		return a.ConfigDir, nil
	}
	d, err := hcl.Dir()
	if err != nil {
		return "", withCode(exitcode.Usage, err)
	}
	return d, nil
}

// load reads the whole configuration, for the commands about every stack.
// A broken config.hcl is an error here (the generator can fall back to
// defaults, but the helper would then talk to the wrong Duplicati); broken
// stack files only matter for their stack.
func (a *App) load() (*hcl.Set, hhcl.Diagnostics, error) {
	dir, err := a.configDir()
	if err != nil {
		return nil, nil, err
	}
	set, diags := hcl.Load(dir)
	if err := a.checkConfig(set, diags); err != nil {
		return nil, diags, err
	}
	return set, diags, nil
}

func (a *App) checkConfig(set *hcl.Set, diags hhcl.Diagnostics) error {
	cfgPath := filepath.Join(set.Dir, "config.hcl")
	for _, b := range set.Broken {
		if b == cfgPath {
			a.printDiags(diags, cfgPath)
			return withCode(exitcode.Usage, fmt.Errorf("%s has errors; fix them (backup-stack validate)", cfgPath))
		}
	}
	if err := applyEnv(&set.Config.Duplicati); err != nil {
		return withCode(exitcode.Usage, err)
	}
	return nil
}

// stack reads config.hcl and the file of one stack, found by name (or by
// its unit name): a step of a running backup needs only its own stack, and
// another stack's broken file must not matter to it.
func (a *App) stack(arg string) (*hcl.Config, *hcl.Stack, error) {
	dir, err := a.configDir()
	if err != nil {
		return nil, nil, err
	}
	name := systemd.StackFromArg(arg)
	set, diags := hcl.LoadStack(dir, name)
	if err := a.checkConfig(set, diags); err != nil {
		return nil, nil, err
	}
	st, ok := set.Stack(name)
	if !ok {
		for _, b := range set.Broken {
			if strings.TrimSuffix(filepath.Base(b), ".hcl") == name {
				a.printDiags(diags, b)
				return nil, nil, withCode(exitcode.Usage, fmt.Errorf("stack %q: %s has errors; fix them (backup-stack validate)", name, b))
			}
		}
		return nil, nil, withCode(exitcode.Usage, fmt.Errorf("no stack %q in %s/stacks (backup-stack list shows the stacks)", name, set.Dir))
	}
	return set.Config, st, nil
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
func backend(d hcl.Duplicati, wait time.Duration, log *slog.Logger) (duplicati.Backend, error) {
	o := duplicati.Options{
		RunTimeout:  d.RunTimeout,
		WaitTimeout: wait,
		Logf:        func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
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
				return nil, withCode(exitcode.Usage, err)
			}
			o.Password = pw
		}
	} else {
		o.Command = []string{"podman", "exec", d.Container, d.ServerUtil}
	}
	b, err := duplicati.New(o)
	if err != nil {
		return nil, withCode(exitcode.Usage, err)
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

// logger logs one step of one stack: to stderr (the journal, with
// priorities) and, when log_dir is set, also to
// <log_dir>/backup-<stack>-YYYY-MM-DD.log with a timestamp.
func (a *App) logger(logDir, stack, step string) *slog.Logger {
	prefix := step + ": "
	h := slog.Handler(journal.New(a.Stderr, journal.Options{Priorities: a.Priorities, Prefix: prefix}))
	if logDir != "" && stack != "" {
		f := &dailyFile{dir: logDir, stack: stack, warn: func(err error) {
			fmt.Fprintf(a.Stderr, "%s%scannot write the log file: %v\n", a.priority(slog.LevelWarn), prefix, err)
		}}
		h = slog.NewMultiHandler(h, journal.New(f, journal.Options{Time: true, Prefix: prefix}))
	}
	return slog.New(h)
}

func (a *App) priority(l slog.Level) string {
	if !a.Priorities {
		return ""
	}
	return fmt.Sprintf("<%d>", journal.Priority(l))
}

// logPath is the log_dir file of a stack for a day.
func logPath(dir, stack string, day time.Time) string {
	return filepath.Join(dir, fmt.Sprintf("backup-%s-%s.log", stack, day.Format("2006-01-02")))
}

// dailyFile appends each write to the stack's log file of the day. A
// failure is reported once (warn) and the line is dropped: the journal has it.
type dailyFile struct {
	mu     sync.Mutex
	dir    string
	stack  string
	warn   func(error)
	warned bool
}

func (d *dailyFile) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := os.MkdirAll(d.dir, 0o755)
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(logPath(d.dir, d.stack, time.Now()), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	}
	if err == nil {
		_, err = f.Write(p)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && !d.warned {
		d.warned = true
		d.warn(err)
	}
	return len(p), nil
}

// env builds the environment of the unit steps.
func (a *App) env(log *slog.Logger, cfgPoll time.Duration) (*orchestrate.Env, error) {
	dir := a.RuntimeDir
	if dir == "" {
		d, err := orchestrate.RuntimeDir()
		if err != nil {
			return nil, withCode(exitcode.Usage, err)
		}
		dir = d
	}
	stateDir, err := a.stateDir()
	if err != nil {
		return nil, withCode(exitcode.Usage, err)
	}
	poll := a.Poll
	if poll <= 0 {
		poll = cfgPoll
	}
	if poll <= 0 || poll > time.Second {
		poll = time.Second
	}
	return &orchestrate.Env{
		Dir:          dir,
		StateDir:     stateDir,
		InvocationID: os.Getenv("INVOCATION_ID"),
		Manager:      a.Manager,
		Containers:   a.Containers,
		Log:          log,
		Poll:         poll,
	}, nil
}

// stateDir is where the run history lives.
func (a *App) stateDir() (string, error) {
	if a.StateDir != "" {
		return a.StateDir, nil
	}
	return orchestrate.StateDir()
}
