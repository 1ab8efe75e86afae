package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
// abortWait bounds how long a stopped job is followed until Duplicati shows it ended
// (0: the client's default).
func backend(d hcl.Duplicati, wait, abortWait time.Duration, log *slog.Logger) (duplicati.Backend, error) {
	o := duplicati.Options{
		RunTimeout:  d.RunTimeout,
		WaitTimeout: wait,
		AbortWait:   abortWait,
		Logf:        func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	}
	if d.PollInterval > 0 {
		o.PollInterval = d.PollInterval
	}
	if d.URL != "" {
		o.URL = d.URL
		o.PollInterval = 0 // the API route polls fast by default
		// The decoder enforces exactly one of the two; a plan frozen by an
		// older version may still lack both.
		switch {
		case d.PasswordFile != "" && d.TokenFile != "":
			return nil, withCode(exitcode.Usage, errors.New("duplicati: password_file and token_file are both set; keep one of them in config.hcl"))
		case d.TokenFile != "":
			tok, err := readToken(d.TokenFile)
			if err != nil {
				return nil, withCode(exitcode.Usage, err)
			}
			o.Token = tok
		case d.PasswordFile != "":
			pw, err := readPassword(d.PasswordFile)
			if err != nil {
				return nil, withCode(exitcode.Usage, err)
			}
			o.Password = pw
		default:
			return nil, withCode(exitcode.Usage, errors.New("duplicati: url is set but neither password_file nor token_file: Duplicati 2.1 and later refuse a login without a password; set one of them in config.hcl"))
		}
		if host, clear := hcl.CleartextHost(d.URL); clear {
			log.Warn(fmt.Sprintf("duplicati: url is plain http:// to %s, which is not a loopback address: the password or token crosses the network in clear; use https:// (with ca_file for a private CA) or a loopback address such as http://127.0.0.1:8200", host))
		}
	} else {
		argv, err := execCommand(d)
		if err != nil {
			return nil, withCode(exitcode.Usage, err)
		}
		o.Command = argv
	}
	b, err := duplicati.New(o)
	if err != nil {
		return nil, withCode(exitcode.Usage, err)
	}
	if d.CAFile != "" && d.URL != "" { // the exec route ignores ca_file (validate warns)
		if err := duplicati.TrustCAFile(b, d.CAFile); err != nil {
			return nil, withCode(exitcode.Usage, fmt.Errorf("duplicati: %w", err))
		}
	}
	return b, nil
}

// execCommand is the exec route's argv prefix:
// podman exec [-u <exec_user>] <container> <server_util>. The values are
// checked again here: DUPLICATI_CONTAINER bypasses the decoder, and an argv
// element starting with '-' would be read by podman as an option.
func execCommand(d hcl.Duplicati) ([]string, error) {
	if err := hcl.CheckContainer(d.Container); err != nil {
		return nil, fmt.Errorf("duplicati: %w", err)
	}
	if err := hcl.CheckServerUtil(d.ServerUtil); err != nil {
		return nil, fmt.Errorf("duplicati: %w", err)
	}
	argv := []string{"podman", "exec"}
	if d.ExecUser != "" {
		if err := hcl.CheckExecUser(d.ExecUser); err != nil {
			return nil, fmt.Errorf("duplicati: %w", err)
		}
		argv = append(argv, "-u", d.ExecUser)
	}
	return append(argv, d.Container, d.ServerUtil), nil
}

// maxSecret bounds a password or token file: it holds one line, and a
// path that points at something else (a log, /dev/zero) must not be read
// whole into memory or sent to Duplicati.
const maxSecret = 4 << 10

// readPassword reads password_file: the web UI password.
func readPassword(path string) (string, error) {
	pw, err := readSecret("password_file", path)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(pw) == "" {
		return "", fmt.Errorf("password_file %s holds only white space: Duplicati refuses an empty password", path)
	}
	return pw, nil
}

// readToken reads token_file: a pre-authenticated token as the server's
// --webservice-pre-auth-tokens takes it, at least 10 of [A-Za-z0-9_-].
func readToken(path string) (string, error) {
	tok, err := readSecret("token_file", path)
	if err != nil {
		return "", err
	}
	if !validToken(tok) {
		return "", fmt.Errorf("token_file %s does not hold a pre-authenticated token: Duplicati takes one of at least 10 characters from A-Z a-z 0-9 _ - (the value of --webservice-pre-auth-tokens), on one line", path)
	}
	return tok, nil
}

func validToken(s string) bool {
	if len(s) < 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// readSecret reads the secret file of attribute attr (password_file or
// token_file): a regular file of at most maxSecret bytes, owned by the
// user running the helper and neither readable nor writable by group or
// others, holding one line (trailing CR/LF is dropped). The content never
// appears in an error or a log.
func readSecret(attr, path string) (string, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; the file is
	// refused below unless it is a regular one, where the flag does nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", fmt.Errorf("%s: %w", attr, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%s: %w", attr, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s %s is %s, not a regular file; point %s at a file that holds only the secret", attr, path, fileKind(fi.Mode()), attr)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); int(st.Uid) != uid {
			return "", fmt.Errorf("%s %s is owned by uid %d, not by the user running backup-stack (uid %d): make it yours and private (sudo chown %d %s && chmod 600 %s)",
				attr, path, st.Uid, uid, uid, shellQuote(path), shellQuote(path))
		}
	}
	if perm := fi.Mode().Perm(); perm&0o066 != 0 {
		return "", fmt.Errorf("%s %s can be read or written by group or others (mode %04o): make it private (chmod 600 %s)", attr, path, perm, shellQuote(path))
	}
	if fi.Size() > maxSecret {
		return "", fmt.Errorf("%s %s is larger than 4 KiB (%d bytes); it must hold only the secret, on one line", attr, path, fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", attr, err)
	}
	if len(b) > maxSecret {
		return "", fmt.Errorf("%s %s is larger than 4 KiB; it must hold only the secret, on one line", attr, path)
	}
	s := strings.TrimRight(string(b), "\r\n")
	switch {
	case s == "" && attr == "password_file":
		return "", fmt.Errorf("password_file %s is empty: Duplicati refuses an empty password", path)
	case s == "" && attr == "token_file":
		return "", fmt.Errorf("token_file %s is empty: write the token given to Duplicati's --webservice-pre-auth-tokens into it", path)
	case s == "":
		return "", fmt.Errorf("%s %s is empty", attr, path)
	case strings.ContainsAny(s, "\r\n"):
		return "", fmt.Errorf("%s %s holds more than one line; it must hold only the secret, on one line", attr, path)
	}
	return s, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

// shellQuote quotes p for the fix an error message suggests, so that it
// can be pasted into a shell as it is.
func shellQuote(p string) string {
	safe := p != ""
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%=", r)) {
			safe = false
			break
		}
	}
	if safe {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
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
	path := logPath(d.dir, d.stack, time.Now())
	f, err := openLogFile(d.dir, filepath.Base(path), true)
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

// openLogFile opens the file name of log_dir dir, to append to it (write,
// creating dir 0700 and the file 0600 when missing) or to read it. It
// refuses what another user could have planted to make the helper write
// into (or read and send on) a file of its user's: dir must be a real
// directory, not a symlink, owned by the user running the helper and not
// writable by group or others; the file must be a regular file, not a
// symlink (O_NOFOLLOW), owned by that user, with no other hard link.
func openLogFile(dir, name string, write bool) (*os.File, error) {
	uid := os.Geteuid()
	if write {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	dfd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if fi, lerr := os.Lstat(dir); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("log_dir %s is a symlink: refusing to write the log through it; make log_dir a directory of its own", dir)
		}
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(dfd)
	var st syscall.Stat_t
	if err := syscall.Fstat(dfd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	switch {
	case int(st.Uid) != uid:
		return nil, fmt.Errorf("log_dir %s is owned by uid %d, not by the user running backup-stack (uid %d): refusing to write the log there; make it yours and private (sudo chown %d %s && chmod 700 %s)",
			dir, st.Uid, uid, uid, shellQuote(dir), shellQuote(dir))
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("log_dir %s can be written by group or others (mode %04o), who could plant a symlink there: refusing to write the log; make it private (chmod 700 %s)",
			dir, st.Mode&0o7777, shellQuote(dir))
	}
	path := filepath.Join(dir, name)
	flags := syscall.O_RDONLY
	if write {
		flags = syscall.O_WRONLY | syscall.O_APPEND | syscall.O_CREAT
	}
	// O_NONBLOCK: a planted FIFO must not block the open; it is refused below.
	fd, err := syscall.Openat(dfd, name, flags|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0o600)
	if err == syscall.ELOOP {
		return nil, fmt.Errorf("log file %s is a symlink (planted by someone?): refusing to follow it; remove it", path)
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("log file %s is %s, not a regular file: refusing to use it; remove it", path, fileKind(fi.Mode()))
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	var refuse error
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		refuse = fmt.Errorf("log file %s is %s, not a regular file: refusing to use it; remove it", path, fileKind(os.FileMode(st.Mode&0o777)|modeType(st.Mode)))
	case int(st.Uid) != uid:
		refuse = fmt.Errorf("log file %s is owned by uid %d, not by the user running backup-stack (uid %d): refusing to use it; remove it", path, st.Uid, uid)
	case st.Nlink > 1:
		refuse = fmt.Errorf("log file %s has %d hard links (one planted to another file?): refusing to use it; remove it", path, st.Nlink)
	}
	if refuse == nil {
		refuse = syscall.SetNonblock(fd, false)
	}
	if refuse != nil {
		syscall.Close(fd)
		return nil, refuse
	}
	return os.NewFile(uintptr(fd), path), nil
}

// modeType maps the file type bits of a stat mode to os.FileMode's.
func modeType(m uint32) os.FileMode {
	switch m & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return os.ModeDir
	case syscall.S_IFCHR:
		return os.ModeDevice | os.ModeCharDevice
	case syscall.S_IFBLK:
		return os.ModeDevice
	case syscall.S_IFIFO:
		return os.ModeNamedPipe
	case syscall.S_IFSOCK:
		return os.ModeSocket
	}
	return os.ModeIrregular
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
