package duplicati

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiBackend is the API route (Duplicati's /api/v1 controllers; the algorithm is in the comment below):
//
//	POST auth/login -> bearer token (again on a 401 and proactively after 10 minutes; tokens
//	live 15), GET backups (name -> ID), t0 = now - 2s, POST backup/{id}/run -> task ID (which
//	may be an existing task), poll GET task/{id} every PollInterval until Completed/Failed,
//	then the newest "Result" row of GET backup/{id}/log with MainOperation "Backup" and
//	Timestamp >= t0 gives ParsedResult.
//
// Task polling is used rather than the serverstate long poll: it names our task directly
// (no backup-ID ambiguity, no non-atomic read race) and at 500ms notices completion well
// within a second. HTTP proxies from the environment are not used: Duplicati is local.
type apiBackend struct {
	o     Options
	base  string // ".../api/v1/"
	shown string // base with any password in the URL redacted, for messages
	hc    *http.Client

	mu      sync.Mutex
	token   string
	tokenAt time.Time
}

const (
	requestTimeout  = 10 * time.Second // one HTTP attempt
	requestAttempts = 3                // transport errors and 5xx
	tokenMaxAge     = 10 * time.Minute // proactive re-login (tokens live 15 minutes)
	notFoundRetries = 3                // transient 404s of task/{id} before it counts as gone
	abortTimeout    = 3 * time.Second  // POST task/{id}/abort on cancellation
	logRetries      = 3                // result row not (yet) there / DatabaseLocked
)

func newAPI(o Options, u *url.URL) *apiBackend {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	base := strings.TrimRight(u.String(), "/") + "/api/v1/"
	return &apiBackend{o: o, base: base, shown: strings.TrimRight(u.Redacted(), "/") + "/api/v1/", hc: &http.Client{Transport: tr}}
}

// httpError is a non-2xx answer the caller may want to handle (400, 404, ...).
type httpError struct {
	Method, Path string
	Status       int
	Msg          string // the {"Error": ...} text, or the body
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Msg)
}

func isStatus(err error, code int) bool {
	var he *httpError
	return errors.As(err, &he) && he.Status == code
}

func errorText(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		return shorten(s, 200)
	}
	return "(empty body)"
}

func (a *apiBackend) hostnameErr(method, path, msg string) error {
	u, _ := url.Parse(a.base)
	return fmt.Errorf("%s %s: 403 %s: Duplicati only accepts IPs and localhost in the Host header; "+
		"use http://127.0.0.1:<port> or set DUPLICATI__WEBSERVICE_ALLOWED_HOSTNAMES=%s on the server: %w",
		method, path, msg, u.Hostname(), ErrUnreachable)
}

// send performs one request with bounded retries of transport errors and 5xx answers.
// bearer "" sends no Authorization header. It returns the status and body of the answer.
func (a *apiBackend) send(ctx context.Context, method, path, bearer string, in any) (int, []byte, error) {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return 0, nil, err
		}
	}
	var last error
	for attempt := 0; attempt < requestAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 250 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, nil, fmt.Errorf("%s %s: %w", method, path, ErrInterrupted)
			case <-t.C:
			}
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		req, err := http.NewRequestWithContext(rctx, method, a.base+path, bytes.NewReader(payload))
		if err != nil {
			cancel()
			return 0, nil, err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return 0, nil, fmt.Errorf("%s %s: %w", method, path, ErrInterrupted)
			}
			last = err
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, fmt.Errorf("%s %s: %w", method, path, ErrInterrupted)
			}
			last = err
			continue
		}
		if resp.StatusCode >= 500 {
			last = fmt.Errorf("%d %s", resp.StatusCode, errorText(body))
			continue
		}
		return resp.StatusCode, body, nil
	}
	msg := strings.ReplaceAll(last.Error(), a.base, a.shown)
	return 0, nil, fmt.Errorf("%s %s%s: %d attempts: %s: %w", method, a.shown, path, requestAttempts, msg, ErrUnreachable)
}

// login gets a fresh access token.
func (a *apiBackend) login(ctx context.Context) (string, error) {
	code, body, err := a.send(ctx, http.MethodPost, "auth/login", "", map[string]any{"Password": a.o.Password, "RememberMe": false})
	if err != nil {
		return "", err
	}
	switch {
	case code == http.StatusUnauthorized:
		return "", fmt.Errorf("login to %s rejected (401 %s): check the password: %w: %w", a.shown, errorText(body), ErrAuth, ErrUnreachable)
	case code == http.StatusForbidden && strings.HasPrefix(errorText(body), "Invalid hostname"):
		return "", a.hostnameErr("POST", "auth/login", errorText(body))
	case code < 200 || code > 299:
		return "", fmt.Errorf("login to %s: %d %s: %w", a.shown, code, errorText(body), ErrUnreachable)
	}
	var out struct{ AccessToken string }
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("login to %s: no AccessToken in the answer: %w", a.shown, ErrUnparseable)
	}
	a.mu.Lock()
	a.token, a.tokenAt = out.AccessToken, time.Now()
	a.mu.Unlock()
	return out.AccessToken, nil
}

func (a *apiBackend) currentToken(ctx context.Context) (string, error) {
	a.mu.Lock()
	tok, at := a.token, a.tokenAt
	a.mu.Unlock()
	if tok != "" && time.Since(at) < tokenMaxAge {
		return tok, nil
	}
	return a.login(ctx)
}

// do sends an authenticated request and decodes a 2xx answer into out (if not nil).
// A 401 triggers one re-login; non-2xx answers other than 401/403/5xx are *httpError.
func (a *apiBackend) do(ctx context.Context, method, path string, out any) error {
	relogged := false
	for {
		tok, err := a.currentToken(ctx)
		if err != nil {
			return err
		}
		code, body, err := a.send(ctx, method, path, tok, nil)
		if err != nil {
			return err
		}
		switch {
		case code == http.StatusUnauthorized:
			a.mu.Lock()
			if a.token == tok {
				a.token = ""
			}
			a.mu.Unlock()
			if relogged {
				return fmt.Errorf("%s %s: 401 right after a fresh login: %w: %w", method, path, ErrAuth, ErrUnreachable)
			}
			relogged = true
			a.o.Logf("duplicati: access token rejected (expired or server restarted); logging in again")
			continue
		case code == http.StatusForbidden && strings.HasPrefix(errorText(body), "Invalid hostname"):
			return a.hostnameErr(method, path, errorText(body))
		case code == http.StatusForbidden:
			return fmt.Errorf("%s %s: 403 %s: %w", method, path, errorText(body), ErrUnreachable)
		case code < 200 || code > 299:
			return &httpError{Method: method, Path: path, Status: code, Msg: errorText(body)}
		}
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("%s %s: %v: %w", method, path, err, ErrUnparseable)
			}
		}
		return nil
	}
}

type apiTuple struct {
	Item1 int64
	Item2 *string
}

func (t apiTuple) task() Task {
	var b string
	if t.Item2 != nil {
		b = *t.Item2
	}
	return Task{ID: t.Item1, BackupID: b}
}

func (a *apiBackend) State(ctx context.Context) (ServerState, error) {
	var dto struct {
		ActiveTask        *apiTuple
		ProgramState      string
		SchedulerQueueIds []apiTuple
	}
	if err := a.do(ctx, http.MethodGet, "serverstate", &dto); err != nil {
		return ServerState{}, wrapOther(err)
	}
	var st ServerState
	switch dto.ProgramState {
	case "Running":
	case "Paused":
		st.Paused = true
	default:
		return ServerState{}, fmt.Errorf("serverstate: ProgramState %q: %w", dto.ProgramState, ErrUnparseable)
	}
	if dto.ActiveTask != nil {
		t := dto.ActiveTask.task()
		st.Active = &t
	}
	for _, q := range dto.SchedulerQueueIds {
		st.Queued = append(st.Queued, q.task())
	}
	return st, nil
}

// wrapOther turns an unexpected *httpError into ErrUnreachable (the server answers, but not
// in a way we can use); sentinel-wrapped errors pass through.
func wrapOther(err error) error {
	var he *httpError
	if errors.As(err, &he) {
		return fmt.Errorf("%w: %w", err, ErrUnreachable)
	}
	return err
}

func (a *apiBackend) resolve(ctx context.Context, job string) (backupEntry, error) {
	var dto []struct{ Backup struct{ ID, Name string } }
	if err := a.do(ctx, http.MethodGet, "backups", &dto); err != nil {
		return backupEntry{}, wrapOther(err)
	}
	list := make([]backupEntry, len(dto))
	for i, d := range dto {
		list[i] = backupEntry{ID: d.Backup.ID, Name: d.Backup.Name}
	}
	b, ok := matchBackup(list, job)
	if !ok {
		return backupEntry{}, fmt.Errorf("job %q: %w (known: %s)", job, ErrNoSuchJob, describeBackups(list))
	}
	return b, nil
}

type taskState struct {
	Status       string
	ID           int64
	ErrorMessage *string
}

func (a *apiBackend) Run(ctx context.Context, job string) (Outcome, error) {
	o := a.o
	logf := o.Logf
	oc := Outcome{Job: job, Result: ResultUnknown}
	began := time.Now()
	deadline := time.NewTimer(o.WaitTimeout)
	defer deadline.Stop()

	b, err := a.resolve(ctx, job)
	if err != nil {
		return oc, err
	}
	bid := b.ID
	oc.BackupID = bid
	label := fmt.Sprintf("job %q (backup %s)", job, bid)

	pre, err := a.State(ctx)
	if err != nil {
		return oc, err
	}
	preTask, preActive, preHeld := pre.Holds(bid)
	if pre.Paused {
		logf("%s: the Duplicati server is paused: queued tasks do not start until it is resumed", label)
	}

	t0 := time.Now().Add(-t0Slack)
	oc.Started = time.Now()
	var started struct {
		Status string
		ID     int64
	}
	err = a.do(ctx, http.MethodPost, "backup/"+url.PathEscape(bid)+"/run", &started)
	switch {
	case err != nil && ctx.Err() != nil:
		a.abortIfNew(bid, preHeld, label)
		return oc, fmt.Errorf("%s: while asking Duplicati to run it: %w", label, ErrInterrupted)
	case isStatus(err, http.StatusNotFound):
		return oc, fmt.Errorf("job %q: POST backup/%s/run: %v: %w", job, bid, err, ErrNoSuchJob)
	case err != nil:
		return oc, fmt.Errorf("%s: %w", label, wrapOther(err))
	case started.ID <= 0:
		return oc, fmt.Errorf("%s: POST backup/%s/run answered without a task ID (Duplicati 2.0.x is not supported): %w", label, bid, ErrUnparseable)
	}
	id := started.ID
	oc.TaskID = id
	if preHeld && preTask.ID == id {
		oc.Existing = true
		logf("%s: Duplicati already had task %d %s for this backup; nothing new was enqueued, waiting for that task",
			label, id, map[bool]string{true: "running", false: "queued"}[preActive])
	} else {
		logf("%s: task %d enqueued", label, id)
	}

	var (
		lastStatus string
		lastLog    time.Time // last progress / still-queued line
		notFound   int
		seen       bool
		failSince  time.Time
		retryDelay = min(o.PollInterval, 500*time.Millisecond)
		poll       = time.NewTimer(0)
		taskPath   = "task/" + strconv.FormatInt(id, 10)
	)
	defer poll.Stop()
	interrupted := func() (Outcome, error) {
		oc.Finished = time.Now()
		a.abort(id, label)
		return oc, fmt.Errorf("%s: waiting for task %d: %w", label, id, ErrInterrupted)
	}

	for {
		select {
		case <-ctx.Done():
			return interrupted()
		case <-deadline.C:
			logf("%s: gave up after %s (wait timeout); task %d stays %s in Duplicati, it was not aborted",
				label, fmtDur(o.WaitTimeout), id, strings.ToLower(orStr(lastStatus, "unknown")))
			st := ""
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if s, err := a.State(sctx); err == nil {
				st = "; server: " + s.String()
			}
			cancel()
			return oc, fmt.Errorf("%s: task %d not finished after %s (status %s%s): %w",
				label, id, fmtDur(time.Since(began)), orStr(lastStatus, "unknown"), st, ErrTimeout)
		case <-poll.C:
		}

		var ts taskState
		err := a.do(ctx, http.MethodGet, taskPath, &ts)
		if ctx.Err() != nil {
			return interrupted()
		}
		if isStatus(err, http.StatusNotFound) {
			notFound++
			if notFound <= notFoundRetries {
				poll.Reset(retryDelay)
				continue
			}
			why := "after it was seen"
			if !seen {
				why = "right after it was enqueued"
			}
			logf("%s: task %d is gone (404 %d times %s): the server restarted or forgot it; reading the backup log", label, id, notFound, why)
			return a.finishFromLog(ctx, oc, t0, label, fmt.Sprintf("task %d vanished (server restart?)", id))
		}
		if err != nil {
			if errors.Is(err, ErrUnparseable) || errors.Is(err, ErrAuth) || !errors.Is(err, ErrUnreachable) {
				return oc, fmt.Errorf("%s: %w", label, wrapOther(err))
			}
			if failSince.IsZero() {
				failSince = time.Now()
			}
			if time.Since(failSince) >= unreachableGraceInWait {
				return oc, fmt.Errorf("%s: waiting for task %d: %w", label, id, err)
			}
			logf("%s: polling task %d failed, retrying: %v", label, id, err)
			poll.Reset(o.PollInterval)
			continue
		}
		notFound, failSince = 0, time.Time{}

		switch ts.Status {
		case "Waiting":
			seen = true
			if lastStatus != ts.Status || time.Since(lastLog) >= progressEvery {
				what := "queued"
				if lastStatus == ts.Status {
					what = "still queued after " + fmtDur(time.Since(began))
				}
				if st, err := a.State(ctx); err == nil {
					logf("%s: task %d %s (%s)", label, id, what, st)
				} else {
					logf("%s: task %d %s", label, id, what)
				}
				lastLog = time.Now()
			}
		case "Running":
			seen = true
			if lastStatus != ts.Status {
				oc.Started = time.Now()
				logf("%s: task %d running", label, id)
				lastLog = time.Now()
			} else if time.Since(lastLog) >= progressEvery {
				lastLog = time.Now()
				a.logProgress(ctx, id, label, began)
			}
		case "Completed":
			oc.Finished = time.Now()
			return a.finishFromLog(ctx, oc, t0, label, "")
		case "Failed":
			oc.Finished = time.Now()
			oc.Result = ResultFatal
			oc.Message = "the task failed"
			if ts.ErrorMessage != nil && *ts.ErrorMessage != "" {
				oc.Message = *ts.ErrorMessage
			}
			logf("%s: task %d failed after %s: %s", label, id, fmtDur(time.Since(began)), shorten(oc.Message, 300))
			return oc, nil
		default:
			return oc, fmt.Errorf("%s: GET %s: unknown Status %q: %w", label, taskPath, ts.Status, ErrUnparseable)
		}
		lastStatus = ts.Status
		poll.Reset(o.PollInterval)
	}
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *apiBackend) logProgress(ctx context.Context, id int64, label string, began time.Time) {
	var p struct {
		TaskID          int64
		Phase           string
		OverallProgress float64
	}
	if err := a.do(ctx, http.MethodGet, "progressstate", &p); err != nil || p.TaskID != id {
		a.o.Logf("%s: task %d still running after %s", label, id, fmtDur(time.Since(began)))
		return
	}
	a.o.Logf("%s: task %d still running after %s: %s, %.0f%%", label, id, fmtDur(time.Since(began)), p.Phase, p.OverallProgress*100)
}

// abort asks Duplicati to abort task id; bounded by abortTimeout, independent of the
// (cancelled) caller context.
func (a *apiBackend) abort(id int64, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	if err := a.do(ctx, http.MethodPost, "task/"+strconv.FormatInt(id, 10)+"/abort", nil); err != nil {
		a.o.Logf("%s: interrupted; aborting task %d failed: %v; it may keep running in Duplicati", label, id, err)
		return
	}
	a.o.Logf("%s: interrupted; asked Duplicati to abort task %d", label, id)
}

// abortIfNew handles a cancellation during POST run, when the task ID is not known: if the
// backup now has a task and had none before, that task is ours and is aborted.
func (a *apiBackend) abortIfNew(bid string, preHeld bool, label string) {
	if preHeld {
		a.o.Logf("%s: interrupted while asking Duplicati to run it; the task that was already there keeps running", label)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	st, err := a.State(ctx)
	if err != nil {
		a.o.Logf("%s: interrupted while asking Duplicati to run it; cannot tell whether a task was queued: %v", label, err)
		return
	}
	t, _, ok := st.Holds(bid)
	if !ok {
		a.o.Logf("%s: interrupted before a task was queued", label)
		return
	}
	a.abort(t.ID, label)
}

type logRow struct {
	ID        int64
	Timestamp int64
	Type      string
	Message   string
}

type resultMsg struct {
	MainOperation string
	ParsedResult  string
	Interrupted   bool
	Warnings      []string
	Errors        []string
}

// backupResult finds the newest "Result" row of a Backup operation written at or after t0.
func (a *apiBackend) backupResult(ctx context.Context, bid string, t0 time.Time) (resultMsg, bool, error) {
	var rows []logRow
	path := "backup/" + url.PathEscape(bid) + "/log?pagesize=20"
	if err := a.do(ctx, http.MethodGet, path, &rows); err != nil {
		return resultMsg{}, false, err
	}
	var (
		best  resultMsg
		bestI int64 = -1
	)
	for _, r := range rows {
		if r.Type != "Result" || r.Timestamp < t0.Unix() || r.ID <= bestI {
			continue
		}
		var m resultMsg
		if json.Unmarshal([]byte(r.Message), &m) != nil || m.MainOperation != "Backup" {
			continue
		}
		best, bestI = m, r.ID
	}
	return best, bestI >= 0, nil
}

// finishFromLog completes oc from the backup log (task Completed, or vanished: why != "").
func (a *apiBackend) finishFromLog(ctx context.Context, oc Outcome, t0 time.Time, label, why string) (Outcome, error) {
	logf := a.o.Logf
	if oc.Finished.IsZero() {
		oc.Finished = time.Now()
	}
	var (
		m     resultMsg
		found bool
		err   error
	)
	for i := 0; i < logRetries; i++ {
		if i > 0 {
			t := time.NewTimer(500 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return oc, fmt.Errorf("%s: reading the result: %w", label, ErrInterrupted)
			case <-t.C:
			}
		}
		m, found, err = a.backupResult(ctx, oc.BackupID, t0)
		if ctx.Err() != nil {
			return oc, fmt.Errorf("%s: reading the result: %w", label, ErrInterrupted)
		}
		if found {
			break
		}
		if err != nil && !isStatus(err, http.StatusBadRequest) { // 400 DatabaseLocked: retry
			break
		}
	}
	if found {
		oc.Result = parseResult(m.ParsedResult)
		switch {
		case len(m.Errors) > 0 && (oc.Result == ResultError || oc.Result == ResultFatal):
			oc.Message = fmt.Sprintf("%d error(s), first: %s", len(m.Errors), shorten(m.Errors[0], 300))
		case len(m.Warnings) > 0 && oc.Result == ResultWarning:
			oc.Message = fmt.Sprintf("%d warning(s), first: %s", len(m.Warnings), shorten(m.Warnings[0], 300))
		case oc.Result == ResultUnknown:
			oc.Message = fmt.Sprintf("log row has ParsedResult %q", m.ParsedResult)
		}
		if m.Interrupted {
			oc.Message = strings.TrimPrefix(oc.Message+"; the backup was interrupted", "; ")
		}
		if why != "" {
			oc.Message = strings.TrimPrefix(why+"; result from the backup log; "+oc.Message, "; ")
			oc.Message = strings.TrimSuffix(oc.Message, "; ")
		}
		logf("%s: task %d finished: %s%s", label, oc.TaskID, oc.Result, suffix(oc.Message))
		return oc, nil
	}
	// No row: cross-check the metadata.
	oc.Result = ResultUnknown
	reason := "no backup result in the log since the run was requested"
	if err != nil {
		reason = "the backup log could not be read: " + err.Error()
	}
	if r, msg, ok := a.fromMetadata(ctx, oc.BackupID, t0); ok {
		oc.Result, reason = r, msg
	} else if oc.Existing {
		reason += " (the existing task was probably not a backup, e.g. a verify or compact)"
	}
	if why != "" {
		reason = why + "; " + reason
	}
	oc.Message = reason
	logf("%s: task %d finished: %s: %s", label, oc.TaskID, oc.Result, reason)
	return oc, nil
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

// fromMetadata: LastErrorDate >= t0 means the run threw (Error with LastErrorMessage);
// LastBackupFinished >= t0 means it finished, result unknown.
func (a *apiBackend) fromMetadata(ctx context.Context, bid string, t0 time.Time) (Result, string, bool) {
	var dto struct {
		Backup struct{ Metadata map[string]string }
	}
	if err := a.do(ctx, http.MethodGet, "backup/"+url.PathEscape(bid), &dto); err != nil {
		return "", "", false
	}
	md := dto.Backup.Metadata
	since := func(k string) bool {
		t, err := time.Parse("20060102T150405Z07:00", md[k])
		return err == nil && !t.Before(t0.Truncate(time.Second))
	}
	switch {
	case since("LastErrorDate"):
		return ResultError, "no result row in the log; metadata LastErrorDate says the run failed: " + shorten(md["LastErrorMessage"], 300), true
	case since("LastBackupFinished"):
		return ResultUnknown, "no result row in the log; metadata LastBackupFinished says the backup finished, result unknown", true
	}
	return "", "", false
}
