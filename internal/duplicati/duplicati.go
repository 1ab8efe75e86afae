// Package duplicati is the only code in backup-stack that talks to Duplicati.
//
// Two routes sit behind one Backend interface:
//
//   - the exec route runs duplicati-server-util (usually through `podman exec <ctr> ...`) and
//     parses its plain-text output by line prefix;
//   - the API route talks to the server's /api/v1 REST endpoints with a bearer token.
//
// New picks the API route when Options.URL is set, the exec route otherwise.
//
// Guarantees of Run on both routes:
//
//   - it never reports a job as finished while Duplicati still shows it queued or active;
//   - it never reports Result "Success" unless Duplicati said so (the exec route cannot know
//     the result and says "Unknown", see Outcome.UnknownIsSuccess);
//   - it never waits forever: every util invocation is bounded by RunTimeout, every HTTP
//     request by a per-request timeout, the whole wait by WaitTimeout (ErrTimeout), and
//     context cancellation returns ErrInterrupted (after aborting the task on the API route).
//
// Decisions where the brief or the reference left room:
//
//   - Job names resolve like ServerUtil's `run`: the first backup whose name equals the job
//     case-insensitively or whose ID equals it exactly, in the server's list order.
//   - Outcome.Started is when we first saw the task active (else when we asked for the run);
//     Outcome.Finished is when we saw it finished, so it is never before the server's end.
//   - Outcome.Existing / a log line report that Duplicati already had a task for the backup
//     (ServerUtil and the API then enqueue nothing); we wait for that task. On the API route
//     such a task that was not a backup (verify, compact) yields Result Unknown.
//   - While waiting, a failing status poll (util exit != 0, connection refused) is retried
//     for up to 30s (a restarting server); before the wait starts it fails at once. An
//     unparseable answer always fails at once.
//   - On WaitTimeout the task is not aborted (the log says so); on cancellation the API route
//     aborts it (POST task/{id}/abort), the exec route cannot and says so.
//   - An exec-route Unknown is not a failure by default (Outcome.UnknownIsSuccess); an API-route
//     Unknown (no result row after a restart, an existing non-backup task) always is.
//
// Error convention: Run returns a nil error whenever the job really finished and its result
// is in Outcome.Result — including Error, Fatal and Unknown. A non-nil error means the job's
// end could not be established (unreachable server, unparseable output, unknown job, wait
// timeout, interruption); the error wraps one of the sentinel errors below and the returned
// Outcome holds what was known so far (Result "Unknown").
package duplicati

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Sentinel errors. Errors returned by this package wrap them with context; test with errors.Is.
var (
	// ErrUnreachable: the server or the util could not be reached or refused us (connection
	// refused, util exited non-zero, login rejected, 403 "Invalid hostname", hung util).
	ErrUnreachable = errors.New("duplicati unreachable")
	// ErrTimeout: the job did not finish within WaitTimeout.
	ErrTimeout = errors.New("duplicati wait timeout")
	// ErrUnparseable: Duplicati answered, but the answer cannot be understood.
	ErrUnparseable = errors.New("duplicati output unparseable")
	// ErrNoSuchJob: no backup with that name (case-insensitive) or ID (exact).
	ErrNoSuchJob = errors.New("no such duplicati backup")
	// ErrInterrupted: the context was cancelled while waiting (SIGTERM/SIGINT).
	ErrInterrupted = errors.New("interrupted")
	// ErrStillHeld: we stopped waiting (interrupted or wait timeout) and Duplicati still holds
	// the task, queued or running, after AbortWait: once the stack is restored it may back up
	// the live stack. It is wrapped together with ErrInterrupted or ErrTimeout.
	ErrStillHeld = errors.New("duplicati still holds the task")
	// ErrAuth is wrapped together with ErrUnreachable when the login is rejected, so callers
	// that only know ErrUnreachable still map it; the message names the cause.
	ErrAuth = errors.New("duplicati login rejected")
)

// Task is one entry of Duplicati's task queue. BackupID is "" for tasks without a backup.
type Task struct {
	ID       int64
	BackupID string
}

func (t Task) String() string {
	if t.BackupID == "" {
		return fmt.Sprintf("task %d (no backup)", t.ID)
	}
	return fmt.Sprintf("task %d (backup %s)", t.ID, t.BackupID)
}

// ServerState is the queue state of the server (`status` / GET serverstate).
type ServerState struct {
	Paused bool  // ProgramState "Paused": queued tasks do not start
	Active *Task // nil when nothing runs
	Queued []Task
}

// Idle reports that nothing is active and nothing is queued. Paused is independent: a paused,
// empty server is Idle (and Paused); a paused server with queued tasks is not Idle.
func (s ServerState) Idle() bool { return s.Active == nil && len(s.Queued) == 0 }

// Holds reports whether a task of backupID is active or queued, and which one (the active
// one first).
func (s ServerState) Holds(backupID string) (t Task, active, ok bool) {
	if s.Active != nil && s.Active.BackupID == backupID {
		return *s.Active, true, true
	}
	for _, q := range s.Queued {
		if q.BackupID == backupID {
			return q, false, true
		}
	}
	return Task{}, false, false
}

// String renders the state in words, e.g. "idle", "paused, idle",
// "running task 12 of backup 1; queued: task 13 (backup 3)".
func (s ServerState) String() string {
	var b strings.Builder
	if s.Paused {
		b.WriteString("paused, ")
	}
	switch {
	case s.Active != nil && s.Active.BackupID == "":
		fmt.Fprintf(&b, "running task %d (no backup)", s.Active.ID)
	case s.Active != nil:
		fmt.Fprintf(&b, "running task %d of backup %s", s.Active.ID, s.Active.BackupID)
	case len(s.Queued) > 0:
		b.WriteString("nothing running")
	default:
		b.WriteString("idle")
	}
	if len(s.Queued) > 0 {
		b.WriteString("; queued: ")
		for i, q := range s.Queued {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(q.String())
		}
	}
	return b.String()
}

// Result is Duplicati's ParsedResult of a backup, or Unknown.
type Result string

const (
	ResultSuccess Result = "Success"
	ResultWarning Result = "Warning"
	ResultError   Result = "Error"
	ResultFatal   Result = "Fatal"
	ResultUnknown Result = "Unknown"
)

// Outcome is what Run learnt about one job.
type Outcome struct {
	Job      string // as given to Run
	BackupID string // resolved backup ID ("" if resolution failed)
	// TaskID is Duplicati's task ID. The API route always knows it; the exec route fills it
	// in from `status` lines when it saw the task, and leaves 0 otherwise.
	TaskID  int64
	Result  Result
	Message string // e.g. ErrorMessage of a failed task, first error/warning, or why Unknown
	// Started is when we first saw the task active; if we never saw it active, when we asked
	// Duplicati to run it. Finished is when we saw it finished.
	Started, Finished time.Time
	// Existing is true when Duplicati already had a task for this backup queued or active, so
	// `run` enqueued nothing and we waited for that task (which may be a verify/compact).
	Existing bool
	// UnknownIsSuccess is set by the exec route: a Result of Unknown there is normal (the
	// route cannot see results) and the caller may count it as success, as the seed did. The API route never sets it: Unknown there means something went wrong.
	UnknownIsSuccess bool
}

// Succeeded reports Result Success, or Unknown with UnknownIsSuccess. Warning is left to the
// caller (warning_is_failure).
func (o Outcome) Succeeded() bool {
	return o.Result == ResultSuccess || (o.Result == ResultUnknown && o.UnknownIsSuccess)
}

// Backend is one route to Duplicati.
type Backend interface {
	// State returns the server's queue state.
	State(ctx context.Context) (ServerState, error)
	// Run enqueues job (backup name or ID) and waits until it has really finished.
	Run(ctx context.Context, job string) (Outcome, error)
}

// Options configure New. Zero values mean the documented defaults.
type Options struct {
	// Exec route.

	// Command is the argv prefix of duplicati-server-util, e.g.
	// {"podman","exec","duplicati","duplicati-server-util"}. Never use `-t`/`-it`: with a TTY the
	// util may block on a password prompt. The exec route does not pass Password: inside the
	// container the util signs in through the server database; put
	// `--password` into Command yourself if you must (it is then visible in ps).
	Command []string
	// RunTimeout bounds every util invocation (default 25s). A hung `run` is killed (its
	// process group); the first status after that must show the backup queued or active
	// (or a status taken while `run` hung must have shown it), else Run fails. A hung
	// `status` is killed and reported as ErrUnreachable.
	RunTimeout time.Duration
	// API route.

	// URL of the server, e.g. http://127.0.0.1:8200. Non-empty selects the API route.
	// Requests go to this URL as given, so the Host header is its host. Duplicati accepts
	// only IPs and localhost names unless DUPLICATI__WEBSERVICE_ALLOWED_HOSTNAMES lists the
	// name (e.g. "duplicati" for http://duplicati:8200); otherwise it answers 403
	// "Invalid hostname", which Run reports as ErrUnreachable with that hint.
	URL string
	// Password of the web UI (the caller reads it from password_file). Never logged.
	Password string
	// Token is a pre-authenticated token (server option --webservice-pre-auth-tokens,
	// Duplicati 2.1.2.0 and later; the caller reads it from token_file). When set, every
	// request carries `Authorization: PreAuth <token>` and the client never logs in, so it
	// adds no TokenFamily rows to the server database. Never logged.
	Token string

	// Both routes.

	// PollInterval between status polls: default 2s on the exec route (every poll is a
	// process start), 500ms on the API route (completion is noticed within 1s).
	PollInterval time.Duration
	// WaitTimeout bounds the whole Run (default 6h); exceeding it is ErrTimeout. The API route
	// then aborts the task and follows it like an interruption (AbortWait).
	WaitTimeout time.Duration
	// AbortWait bounds how long, after an interruption or a wait timeout, Run follows the
	// task until Duplicati shows it ended (default 60s; the caller sets it from the unit's
	// stop timeout). Duplicati ignores an abort of a queued task and of a task in its first
	// moments, and an abort of a running task lands only when the operation notices it, so
	// the API route re-sends it while the task is queued or running. A task still held when
	// AbortWait ends is ErrStillHeld.
	AbortWait time.Duration
	// Logf gets one line per state change and progress lines at most every 30s. Never
	// secrets. nil discards.
	Logf func(format string, args ...any)
	// Progress gets the progress of the running task, at most every 2s (REST route only:
	// the exec route's util shows none). For the live status line; nil discards.
	Progress func(Progress)
}

const (
	defaultRunTimeout      = 25 * time.Second
	defaultExecPoll        = 2 * time.Second
	defaultAPIPoll         = 500 * time.Millisecond
	defaultWaitTimeout     = 6 * time.Hour
	defaultAbortWait       = time.Minute
	maxConfirmDelay        = 250 * time.Millisecond // second "gone" poll of the exec route
	t0Slack                = 2 * time.Second
	unreachableGraceInWait = 30 * time.Second // tolerated outage while waiting (server restart)
)

// The exec route's slow-down (vars so tests can shorten them): PollInterval for the first
// execSlowPollAfter of a wait, then every execSlowPoll. Every util call is a login that adds
// a row to the server database's TokenFamily table, which nothing removes: 30 calls in the
// first minute plus one every 9.7s keep an hour of waiting under 400 rows, and the end of a
// long job is still noticed within 10s.
var (
	execSlowPollAfter = time.Minute
	execSlowPoll      = 9700 * time.Millisecond
)

// progressEvery is the minimum gap between progress lines (a var so tests can shorten it).
var progressEvery = 30 * time.Second

// New validates o, fills in defaults and returns the route it selects: the API route when
// o.URL is set, the exec route when o.Command is set.
func New(o Options) (Backend, error) {
	if o.RunTimeout <= 0 {
		o.RunTimeout = defaultRunTimeout
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = defaultWaitTimeout
	}
	if o.AbortWait <= 0 {
		o.AbortWait = defaultAbortWait
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	switch {
	case o.URL != "":
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("duplicati url %q: want http(s)://host:port", o.URL)
		}
		if o.PollInterval <= 0 {
			o.PollInterval = defaultAPIPoll
		}
		return newAPI(o, u), nil
	case len(o.Command) > 0:
		if o.PollInterval <= 0 {
			o.PollInterval = defaultExecPoll
		}
		return &execBackend{o: o}, nil
	default:
		return nil, errors.New("duplicati: neither a URL (API route) nor a command (exec route) is configured")
	}
}

// parseResult maps a ParsedResult string; anything else is Unknown.
func parseResult(s string) Result {
	switch r := Result(s); r {
	case ResultSuccess, ResultWarning, ResultError, ResultFatal:
		return r
	}
	return ResultUnknown
}

func shorten(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func fmtDur(d time.Duration) string {
	if d >= time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
