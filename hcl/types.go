// Package hcl holds the configuration schema of backup-stack: the global
// config.hcl and one stacks/<name>.hcl per stack. It decodes with
// hashicorp/hcl/v2 and reports every problem as a diagnostic carrying the
// file, line and column, so that `backup-stack validate` and the generator
// speak the same language.
package hcl

import (
	"time"

	hhcl "github.com/hashicorp/hcl/v2"
)

// Restore policies: what to start again after the backup.
const (
	// RestorePrevious starts again only what was active when the gate ran.
	RestorePrevious = "previous"
	// RestoreAlways starts the stack unit (and its on-demand socket) whatever
	// its state was before.
	RestoreAlways = "always"
)

// HookKinds lists the hook kinds in the order they run during a backup.
var HookKinds = []string{"pre_stop", "post_stop", "pre_backup", "post_backup", "pre_start", "post_start", "verify"}

// Built-in defaults, used when neither the stack nor config.hcl says otherwise.
const (
	DefaultStopTimeout  = 2 * time.Minute
	DefaultStartTimeout = 5 * time.Minute
	DefaultRunTimeout   = 25 * time.Second
	DefaultWaitTimeout  = 6 * time.Hour
	DefaultPollInterval = 2 * time.Second
	DefaultHookTimeout  = 5 * time.Minute
	DefaultContainer    = "duplicati"
	DefaultServerUtil   = "duplicati-server-util"
)

// Config is config.hcl after defaults were applied.
type Config struct {
	// File is the path of config.hcl, "" when there is none.
	File      string
	Duplicati Duplicati
	Defaults  Defaults
	// LogDir, when set, receives backup-<stack>-YYYY-MM-DD.log files in
	// addition to the journal. "~/" is expanded.
	LogDir string
	// MetricsFile, when set, is rewritten after every run in the
	// node_exporter textfile-collector format. "~/" is expanded.
	MetricsFile string
	// Notify and Healthcheck apply to every stack that has none of its own.
	Notify      *Notify
	Healthcheck *Healthcheck
}

// Notify holds the commands run when a backup fails or succeeds, each an
// argv list; the stack name, result and last log lines are passed in the
// environment (BACKUP_STACK, BACKUP_RESULT, BACKUP_LOG ...).
type Notify struct {
	OnFailure []string
	OnSuccess []string
}

// Healthcheck is a healthchecks.io-style dead man's switch: URL/start when
// a backup begins, URL on success, URL/fail on failure. The URL is a
// secret of sorts (anyone with it can ping) and is never logged.
type Healthcheck struct {
	URL string
}

// Duplicati says how to reach Duplicati.
type Duplicati struct {
	// Container and ServerUtil make the exec route's argv:
	// podman exec [-u ExecUser] <Container> <ServerUtil> ... ServerUtil is
	// a name on the container's PATH or an absolute path inside it.
	Container  string
	ServerUtil string
	// ExecUser, when set, is given to podman exec -u (user, uid, user:group
	// or uid:gid), so that the util runs as the owner of Duplicati's data
	// folder; "" runs it as the container's default user (usually root).
	ExecUser   string
	RunTimeout time.Duration
	// WaitTimeout bounds the wait for each job and the gate's wait for an
	// idle Duplicati and a free backup slot.
	WaitTimeout  time.Duration
	PollInterval time.Duration
	// URL selects the REST API route when set.
	URL string
	// PasswordFile holds the web UI password for the REST route. Only its
	// path is ever passed around; the secret is read by the helper.
	PasswordFile string
	// TokenFile holds a pre-authenticated token (the server's
	// --webservice-pre-auth-tokens, Duplicati 2.1.2.0 and later) for the
	// REST route, instead of PasswordFile. Like it, only the path is passed
	// around. The decoder allows at most one of the two, and requires one
	// of them when URL is set.
	TokenFile string
	// CAFile is the PEM file of a private CA that the REST route trusts in
	// addition to the system roots (https:// only). Certificate checks are
	// never turned off.
	CAFile string
	// WarningIsFailure makes a job that ends with Warning fail the unit.
	WarningIsFailure bool
}

// Defaults apply to every stack that does not set the value itself.
type Defaults struct {
	Schedule      string
	RestorePolicy string
}

// OnDemand is a socket-activated entry point that must be frozen during the
// backup, so that a request cannot start the stack mid-backup.
type OnDemand struct {
	Socket  string
	Service string
}

// Snapshot is the snapshot block of a stack: the data paths frozen into
// <Into>/<stack>/<name> while the stack is stopped, so that the stack can
// start again at once and Duplicati backs up the frozen copy.
type Snapshot struct {
	// Paths are absolute ("~/" expanded), at least one.
	Paths []string
	// Method is "auto", "btrfs", "reflink" or "copy" (see internal/snapshot).
	Method string
	// Into is the snapshot directory, absolute.
	Into string
	// Timeout bounds taking the snapshots (the stack is down meanwhile).
	Timeout time.Duration
	Range   hhcl.Range
}

// DefaultSnapshotTimeout bounds taking a stack's snapshots.
const DefaultSnapshotTimeout = 30 * time.Minute

// SnapshotRemoveTimeout bounds the removal of a run's snapshots in finish
// (a full copy of many files takes a while to delete); the backup unit's
// TimeoutStopSec= includes it for a stack in snapshot mode.
const SnapshotRemoveTimeout = 30 * time.Minute

// SnapshotMethods are the values of a snapshot block's method, the default first.
var SnapshotMethods = []string{"auto", "btrfs", "reflink", "copy"}

// Hook is one command run at a point of the sequence.
type Hook struct {
	Kind          string
	Command       []string
	IgnoreFailure bool
	// Timeout bounds the hook (default DefaultHookTimeout): a hook that
	// hangs must not hold the slot, or the stack down, for hours.
	Timeout time.Duration
	Range   hhcl.Range
}

// Stack is one stacks/<name>.hcl after defaults were applied.
type Stack struct {
	Name          string
	Unit          string
	ProjectLabel  string
	Jobs          []string
	Schedule      string
	RestorePolicy string
	StopTimeout   time.Duration
	StartTimeout  time.Duration
	WaitTimeout   time.Duration
	RequirePaths  []string
	OnDemand      *OnDemand
	// Snapshot, when set, freezes the stack's data so that the stack is
	// down only while its data is frozen (snapshot mode).
	Snapshot *Snapshot
	Hooks    []Hook
	// Notify and Healthcheck are the stack's own, else config.hcl's.
	Notify      *Notify
	Healthcheck *Healthcheck

	// File is the absolute path of the file that defines the stack and
	// Range the position of its block, for SourcePath= and messages.
	File  string
	Range hhcl.Range
}

// HooksOf returns the stack's hooks of one kind, in file order.
func (s *Stack) HooksOf(kind string) []Hook {
	var out []Hook
	for _, h := range s.Hooks {
		if h.Kind == kind {
			out = append(out, h)
		}
	}
	return out
}
