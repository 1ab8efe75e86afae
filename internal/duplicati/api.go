package duplicati

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
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

	mu       sync.Mutex
	token    string
	tokenExp time.Time // zero: unknown, used until a 401
	logins   int       // password logins so far (each adds a TokenFamily row)
}

const (
	requestTimeout   = 10 * time.Second // one HTTP attempt
	requestAttempts  = 3                // transport errors and 5xx
	tokenRenewBefore = time.Minute      // log in again this long before the token expires
	notFoundRetries  = 3                // transient 404s of task/{id} before it counts as gone
	abortTimeout     = 3 * time.Second  // POST task/{id}/abort on cancellation
	logRetries       = 3                // result row not (yet) there / DatabaseLocked
)

func newAPI(o Options, u *url.URL) *apiBackend {
	base := strings.TrimRight(u.String(), "/") + "/api/v1/"
	return &apiBackend{o: o, base: base, shown: strings.TrimRight(u.Redacted(), "/") + "/api/v1/", hc: newAPIClient(nil)}
}

// newAPIClient is the REST route's HTTP client: no proxy, short dial timeout, certificates
// always verified (against roots, or the system roots when nil), and no redirects. A
// redirect is never followed: the request carries the password (auth/login) or the
// bearer / PreAuth token, which must not go to whatever host a Location names. A 3xx
// answer is an error naming the Location's host.
func newAPIClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return &http.Client{
		Transport:     refuseRedirects{tr},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// refuseRedirects turns a 3xx answer into an error naming the host of its Location.
type refuseRedirects struct{ rt http.RoundTripper }

func (r refuseRedirects) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 {
		return resp, err
	}
	resp.Body.Close()
	return nil, redirectError(resp.Status, resp.Header.Get("Location"), req.URL)
}

// redirectError says where a 3xx answer pointed: the Location's host only (its path or
// query may hold a secret), resolved against the request's URL.
func redirectError(status, location string, from *url.URL) error {
	where := "without a Location"
	if location != "" {
		where = "to an unreadable Location"
		if to, err := from.Parse(location); err == nil {
			switch {
			case to.Host == "":
				where = "to a Location without a host"
			case strings.EqualFold(to.Host, from.Host) && to.Scheme != from.Scheme:
				where = fmt.Sprintf("to %s://%s", to.Scheme, to.Host)
			default:
				where = "to host " + to.Host
			}
		}
	}
	return fmt.Errorf("the server answered %s, a redirect %s; redirects are not followed (the password or token would go along): set url to the address Duplicati answers at itself", status, where)
}

// maxCAFile bounds a ca_file: a few PEM certificates.
const maxCAFile = 1 << 20

// TrustCAFile makes the REST route b trust the CA certificate(s) in the PEM file path in
// addition to the system roots (ca_file in config.hcl). It is for an https:// URL only and
// must be called before the first request. The file must hold only CERTIFICATE blocks, at
// least one, each a valid X.509 certificate; anything else is refused with an error that
// says what to fix. Certificate verification is never turned off.
func TrustCAFile(b Backend, path string) error {
	a, ok := b.(*apiBackend)
	if !ok {
		return fmt.Errorf("ca_file %s: only the REST route (url) uses a CA file", path)
	}
	if !strings.HasPrefix(a.base, "https://") {
		return fmt.Errorf("ca_file %s: the url %s is plain http://, where no certificate is checked; use https:// with ca_file, or remove ca_file", path, strings.TrimSuffix(a.shown, "api/v1/"))
	}
	pool, err := loadCAFile(path)
	if err != nil {
		return err
	}
	a.hc = newAPIClient(pool)
	return nil
}

// loadCAFile returns the system roots plus the certificates of the PEM file path.
func loadCAFile(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ca_file %s is not a regular file; point ca_file at the PEM file of the CA certificate", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	if len(data) > maxCAFile {
		return nil, fmt.Errorf("ca_file %s is larger than 1 MiB; it must hold only the PEM certificate(s) of the CA", path)
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if bytes.Contains(rest, []byte("-----BEGIN")) {
				return nil, fmt.Errorf("ca_file %s holds a broken PEM block (truncated, or its BEGIN and END lines do not match); give the CA certificate in PEM form", path)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ca_file %s holds a %q PEM block; it must hold only the CA's certificate(s) (\"-----BEGIN CERTIFICATE-----\" blocks), never a key", path, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca_file %s: certificate %d is not a valid X.509 certificate: %v", path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"); give the CA certificate in PEM form (openssl x509 -in ca.der -inform der -out ca.pem)", path)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
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
func (a *apiBackend) send(ctx context.Context, method, path, bearer string, in any, timeout time.Duration) (int, []byte, error) {
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
		rctx, cancel := context.WithTimeout(ctx, timeout)
		req, err := http.NewRequestWithContext(rctx, method, a.base+path, bytes.NewReader(payload))
		if err != nil {
			cancel()
			return 0, nil, err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		switch {
		case a.o.Token != "":
			req.Header.Set("Authorization", "PreAuth "+a.o.Token)
		case bearer != "":
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
	code, body, err := a.send(ctx, http.MethodPost, "auth/login", "", map[string]any{"Password": a.o.Password, "RememberMe": false}, requestTimeout)
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
	a.token, a.tokenExp = out.AccessToken, jwtExpiry(out.AccessToken)
	a.logins++
	a.mu.Unlock()
	return out.AccessToken, nil
}

// currentToken returns the access token, logging in only when there is none or it is about
// to expire: every password login adds a row to the server's TokenFamily table, which nothing
// removes. The expiry is read from the token (a JWT) where it can be; a token that is not
// a readable JWT is used until the server rejects it (a 401 logs in again).
func (a *apiBackend) currentToken(ctx context.Context) (string, error) {
	if a.o.Token != "" {
		return "", nil // PreAuth: send adds the header, no login
	}
	a.mu.Lock()
	tok, exp := a.token, a.tokenExp
	a.mu.Unlock()
	if tok != "" && (exp.IsZero() || time.Until(exp) > tokenRenewBefore) {
		return tok, nil
	}
	return a.login(ctx)
}

// jwtExpiry reads the "exp" claim of a JWT without checking its signature (the server does
// that); the zero time when tok is not a JWT with an expiry.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return time.Time{}
	}
	n, err := claims.Exp.Float64()
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(n), 0)
}

// do sends an authenticated request and decodes a 2xx answer into out (if not nil).
// A 401 triggers one re-login; non-2xx answers other than 401/403/5xx are *httpError.
func (a *apiBackend) do(ctx context.Context, method, path string, out any) error {
	return a.doTimeout(ctx, method, path, out, requestTimeout)
}

// doTimeout is do with another bound for each attempt (the long poll waits on the server).
func (a *apiBackend) doTimeout(ctx context.Context, method, path string, out any, timeout time.Duration) error {
	relogged := false
	for {
		tok, err := a.currentToken(ctx)
		if err != nil {
			return err
		}
		code, body, err := a.send(ctx, method, path, tok, nil, timeout)
		if err != nil {
			return err
		}
		switch {
		case code == http.StatusUnauthorized && a.o.Token != "":
			return fmt.Errorf("%s %s: 401 %s: the server refuses the token of token_file (is it in the server's --webservice-pre-auth-tokens? Duplicati 2.1.2.0 and later): %w: %w",
				method, path, errorText(body), ErrAuth, ErrUnreachable)
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
	st, err := a.events(ctx, -1, 0)
	return st.ServerState, err
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
	TaskStarted  *string // 2.1.2.0 and later; local time with offset
	ErrorMessage *string
}

func (ts taskState) started() (time.Time, bool) {
	if ts.TaskStarted == nil || *ts.TaskStarted == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, *ts.TaskStarted)
	return t, err == nil
}

// eventState is the part of GET serverstate the wait follows.
type eventState struct {
	ServerState
	EventID int64
}

// events returns the server state; with last >= 0 it is the long poll, which answers as
// soon as LastEventID differs from last (a task starts, ends, is queued ...) or after wait.
func (a *apiBackend) events(ctx context.Context, last int64, wait time.Duration) (eventState, error) {
	var dto struct {
		ActiveTask        *apiTuple
		ProgramState      string
		SchedulerQueueIds []apiTuple
		LastEventID       int64
	}
	path := "serverstate"
	if last >= 0 {
		path = fmt.Sprintf("serverstate?lasteventid=%d&longpoll=true&duration=%ds", last, int(wait/time.Second))
	}
	if err := a.doTimeout(ctx, http.MethodGet, path, &dto, wait+requestTimeout); err != nil {
		return eventState{}, wrapOther(err)
	}
	st := eventState{EventID: dto.LastEventID}
	switch dto.ProgramState {
	case "Running":
	case "Paused":
		st.Paused = true
	default:
		return eventState{}, fmt.Errorf("serverstate: ProgramState %q: %w", dto.ProgramState, ErrUnparseable)
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

// holder returns the task the server state shows under id, if any.
func (s ServerState) holder(id int64) (Task, bool) {
	if s.Active != nil && s.Active.ID == id {
		return *s.Active, true
	}
	for _, q := range s.Queued {
		if q.ID == id {
			return q, true
		}
	}
	return Task{}, false
}

const (
	longPollWait   = 10 * time.Second       // the server accepts 10s to 1h
	abortResend    = 500 * time.Millisecond // re-send the abort of a task still running after this
	abortPollEvery = 250 * time.Millisecond
)

// Run enqueues the job and follows its task. The end of the task is noticed through the
// serverstate long poll (it answers when a task starts or ends), so the result is read
// within milliseconds; GET task/{id} every PollInterval is the fallback where the long poll
// fails. Task IDs restart at 2 when Duplicati restarts, so after a poll error, a 404, a
// LastEventID that went backwards or a server state showing the ID under another backup, the
// task's backup and start time are checked before its status is believed.
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

	pre, err := a.events(ctx, -1, 0)
	if err != nil {
		return oc, err
	}
	preTask, preActive, preHeld := pre.Holds(bid)
	if pre.Paused {
		logf("%s: the Duplicati server is paused: queued tasks do not start until it is resumed", label)
	}

	t0 := time.Now().Add(-t0Slack)
	enqueued := time.Now()
	oc.Started = enqueued
	var started struct {
		Status string
		ID     int64
	}
	err = a.do(ctx, http.MethodPost, "backup/"+url.PathEscape(bid)+"/run", &started)
	switch {
	case err != nil && ctx.Err() != nil:
		return a.abortIfNew(oc, bid, preHeld, label)
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

	w := &apiWait{a: a, oc: oc, bid: bid, id: id, label: label, t0: t0, enqueued: enqueued, began: began,
		lastEvent: pre.EventID, longPoll: true, deadline: began.Add(o.WaitTimeout)}
	if preHeld && preTask.ID == id {
		w.seen = true
	}
	return w.loop(ctx, deadline.C)
}

// apiWait is the state of one wait for a task.
type apiWait struct {
	a         *apiBackend
	oc        Outcome
	bid       string
	id        int64
	label     string
	t0        time.Time // results written before this are not ours
	enqueued  time.Time
	began     time.Time
	deadline  time.Time // began + WaitTimeout
	lastEvent int64
	longPoll  bool // false once the server refused the long poll

	seen       bool      // the task was seen Waiting or Running
	ranAt      time.Time // its TaskStarted (or when we saw it Running)
	lastStatus string
	lastLog    time.Time
	// lastProgress: when Options.Progress was last given the task's progress.
	lastProgress time.Time
	notFound     int
	failSince    time.Time
	suspect      string // why the task ID may now belong to another task ("" = trusted)
}

func (w *apiWait) loop(ctx context.Context, deadline <-chan time.Time) (Outcome, error) {
	a, logf := w.a, w.a.o.Logf
	taskPath := "task/" + strconv.FormatInt(w.id, 10)
	for {
		select {
		case <-ctx.Done():
			return w.stop(ErrInterrupted, "interrupted")
		case <-deadline:
			return w.stop(ErrTimeout, fmt.Sprintf("not finished after %s (wait timeout)", fmtDur(a.o.WaitTimeout)))
		default:
		}
		var ts taskState
		err := a.do(ctx, http.MethodGet, taskPath, &ts)
		if ctx.Err() != nil {
			return w.stop(ErrInterrupted, "interrupted")
		}
		switch {
		case isStatus(err, http.StatusNotFound):
			w.notFound++
			if w.notFound <= notFoundRetries {
				w.sleep(ctx, min(a.o.PollInterval, 500*time.Millisecond))
				continue
			}
			why := "after it was seen"
			if !w.seen {
				why = "right after it was enqueued"
			}
			logf("%s: task %d is gone (404 %d times %s): the server restarted or forgot it; reading the backup log", w.label, w.id, w.notFound, why)
			return a.finishFromLog(ctx, w.oc, w.t0, w.label, fmt.Sprintf("task %d vanished (Duplicati restarted?)", w.id))
		case err != nil:
			if errors.Is(err, ErrUnparseable) || errors.Is(err, ErrAuth) || !errors.Is(err, ErrUnreachable) {
				return w.oc, fmt.Errorf("%s: %w", w.label, wrapOther(err))
			}
			if w.failSince.IsZero() {
				w.failSince = time.Now()
			}
			if time.Since(w.failSince) >= unreachableGraceInWait {
				return w.oc, fmt.Errorf("%s: waiting for task %d: %w", w.label, w.id, err)
			}
			w.suspect = "Duplicati could not be reached for a while (a restart?)"
			logf("%s: polling task %d failed, retrying: %v", w.label, w.id, err)
			w.sleep(ctx, a.o.PollInterval)
			continue
		}
		w.notFound, w.failSince = 0, time.Time{}
		if w.suspect != "" {
			if foreign, why := w.foreign(ctx, ts); foreign {
				if why != w.suspect {
					why = w.suspect + "; " + why
				}
				logf("%s: task %d is no longer ours: %s; reading the backup log", w.label, w.id, why)
				return a.finishFromLog(ctx, w.oc, w.t0, w.label, "Duplicati restarted during the job: "+why)
			}
			w.suspect = ""
		} else if t, ok := ts.started(); ok && !w.ranAt.IsZero() && !t.Equal(w.ranAt) {
			return a.finishFromLog(ctx, w.oc, w.t0, w.label, fmt.Sprintf("Duplicati restarted during the job: task %d now started at %s, ours at %s", w.id, t.Format(time.TimeOnly), w.ranAt.Format(time.TimeOnly)))
		}

		switch ts.Status {
		case "Waiting":
			w.seen = true
			if w.lastStatus != ts.Status || time.Since(w.lastLog) >= progressEvery {
				what := "queued"
				if w.lastStatus == ts.Status {
					what = "still queued after " + fmtDur(time.Since(w.began))
				}
				if st, err := a.State(ctx); err == nil {
					logf("%s: task %d %s (%s)", w.label, w.id, what, st)
				} else {
					logf("%s: task %d %s", w.label, w.id, what)
				}
				w.lastLog = time.Now()
			}
		case "Running":
			w.seen = true
			if w.lastStatus != ts.Status {
				w.oc.Started = time.Now()
				w.ranAt = w.oc.Started
				if t, ok := ts.started(); ok {
					w.ranAt = t
				}
				logf("%s: task %d running", w.label, w.id)
				w.lastLog = time.Now()
			} else if time.Since(w.lastLog) >= progressEvery {
				w.lastLog = time.Now()
				a.logProgress(ctx, w.id, w.label, w.began)
			}
			w.reportProgress(ctx)
		case "Completed":
			w.oc.Finished = time.Now()
			return a.finishFromLog(ctx, w.oc, w.t0, w.label, "")
		case "Failed":
			w.oc.Finished = time.Now()
			w.oc.Result = ResultFatal
			w.oc.Message = "the task failed"
			if ts.ErrorMessage != nil && *ts.ErrorMessage != "" {
				w.oc.Message = *ts.ErrorMessage
			}
			logf("%s: task %d failed after %s: %s", w.label, w.id, fmtDur(time.Since(w.began)), shorten(w.oc.Message, 300))
			return w.oc, nil
		default:
			return w.oc, fmt.Errorf("%s: GET %s: unknown Status %q: %w", w.label, taskPath, ts.Status, ErrUnparseable)
		}
		w.lastStatus = ts.Status
		w.next(ctx)
	}
}

// next waits for the next server event (long poll), or PollInterval where the long poll
// does not work. It marks the task suspect when the server state says it was restarted.
func (w *apiWait) next(ctx context.Context) {
	if !w.longPoll {
		w.sleep(ctx, w.a.o.PollInterval)
		return
	}
	// The server holds a long poll for at least 10s; cut it short on our side for the next
	// progress line and the wait timeout.
	cut := min(longPollWait, progressEvery)
	if w.a.o.Progress != nil && w.lastStatus == "Running" {
		cut = min(cut, progressStatusEvery)
	}
	if left := time.Until(w.deadline); left < cut {
		cut = max(left, 10*time.Millisecond)
	}
	lctx, cancel := context.WithTimeout(ctx, cut)
	defer cancel()
	st, err := w.a.events(lctx, w.lastEvent, longPollWait)
	switch {
	case ctx.Err() != nil, lctx.Err() != nil:
		return
	case isStatus(err, http.StatusBadRequest) || errors.Is(err, ErrUnparseable):
		w.longPoll = false
		w.a.o.Logf("%s: the server refused the serverstate long poll (%v); polling task %d every %s", w.label, err, w.id, fmtDur(w.a.o.PollInterval))
		w.sleep(ctx, w.a.o.PollInterval)
		return
	case err != nil:
		w.suspect = "Duplicati could not be reached for a while (a restart?)"
		w.sleep(ctx, w.a.o.PollInterval)
		return
	}
	if st.EventID < w.lastEvent {
		w.suspect = fmt.Sprintf("the server's event counter went back from %d to %d", w.lastEvent, st.EventID)
	}
	if t, ok := st.holder(w.id); ok && t.BackupID != w.bid {
		w.suspect = fmt.Sprintf("task %d now belongs to backup %q", w.id, t.BackupID)
	}
	w.lastEvent = st.EventID
}

// foreign decides, after a reason for suspicion, whether task/{id} still describes our task.
func (w *apiWait) foreign(ctx context.Context, ts taskState) (bool, string) {
	st, err := w.a.events(ctx, -1, 0)
	if err == nil {
		if t, ok := st.holder(w.id); ok {
			if t.BackupID != w.bid {
				return true, fmt.Sprintf("task %d now belongs to backup %q", w.id, t.BackupID)
			}
			if ts.Status == "Waiting" && w.ranAt.IsZero() {
				return false, ""
			}
		}
	}
	if t, ok := ts.started(); ok {
		switch {
		case !w.ranAt.IsZero() && !t.Equal(w.ranAt):
			return true, fmt.Sprintf("task %d started at %s, ours at %s", w.id, t.Format(time.TimeOnly), w.ranAt.Format(time.TimeOnly))
		case w.ranAt.IsZero() && t.Before(w.enqueued.Add(-t0Slack)):
			return true, fmt.Sprintf("task %d started at %s, before ours was enqueued", w.id, t.Format(time.TimeOnly))
		}
	}
	if ts.Status == "Failed" || (ts.Status == "Running" && w.ranAt.IsZero() && !w.seen) {
		// Without a start time to compare, a failure counts as ours only if our backup's
		// metadata shows an error since we asked for the run.
		if r, _, ok := w.a.fromMetadata(ctx, w.bid, w.t0); ts.Status == "Failed" && (!ok || r != ResultError) {
			return true, fmt.Sprintf("task %d failed, but backup %s shows no error since the run was requested", w.id, w.bid)
		}
	}
	return false, ""
}

func (w *apiWait) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// stop aborts the task and follows it until Duplicati shows it ended, for at most
// AbortWait. Duplicati ignores an abort of a queued task (and of a task in its first
// moments), so the abort is sent again while the task is still queued or running. Only an
// ended task is called aborted; one still held is ErrStillHeld.
func (w *apiWait) stop(cause error, what string) (Outcome, error) {
	a, logf := w.a, w.a.o.Logf
	w.oc.Finished = time.Now()
	abortStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), a.o.AbortWait)
	defer cancel()
	taskPath := "task/" + strconv.FormatInt(w.id, 10)
	abort := func() error {
		return a.do(ctx, http.MethodPost, taskPath+"/abort", nil)
	}
	var (
		sentAt     time.Time
		sentStatus string
		status     = w.lastStatus
		lastErr    error
		said       bool
	)
	if err := abort(); err != nil {
		lastErr = err
	} else {
		sentAt, sentStatus = time.Now(), status
	}
	logf("%s: %s; asked Duplicati to abort task %d, waiting up to %s until it has ended", w.label, what, w.id, fmtDur(a.o.AbortWait))
	for {
		var ts taskState
		err := a.do(ctx, http.MethodGet, taskPath, &ts)
		switch {
		case err == nil:
			lastErr = nil
			status = ts.Status
			switch ts.Status {
			case "Completed", "Failed":
				msg := ts.Status
				if ts.ErrorMessage != nil && *ts.ErrorMessage != "" {
					msg += ": " + *ts.ErrorMessage
				}
				w.oc.Finished = time.Now()
				w.oc.Message = "task ended after the abort (" + msg + ")"
				logf("%s: task %d has ended (%s) %s after the abort", w.label, w.id, msg, fmtDur(time.Since(abortStart)))
				return w.oc, fmt.Errorf("%s: %s; task %d ended after the abort (%s): %w", w.label, what, w.id, msg, cause)
			case "Waiting":
				if !said {
					said = true
					logf("%s: task %d is still queued: Duplicati ignores an abort of a queued task; the abort is sent again as soon as it starts", w.label, w.id)
				}
			case "Running":
				if sentStatus != "Running" || time.Since(sentAt) >= abortResend {
					if err := abort(); err == nil {
						if sentStatus == "Waiting" || sentStatus == "" {
							logf("%s: task %d started; sent the abort again", w.label, w.id)
						}
						sentAt, sentStatus = time.Now(), "Running"
					}
				}
			}
		case isStatus(err, http.StatusNotFound):
			if w.seen || status != "" {
				w.oc.Message = "task gone after the abort"
				logf("%s: task %d is gone after the abort (Duplicati no longer knows it)", w.label, w.id)
				return w.oc, fmt.Errorf("%s: %s; task %d is gone after the abort: %w", w.label, what, w.id, cause)
			}
			lastErr = err
		default:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			phase := map[string]string{"Waiting": "queued", "Running": "running"}[status]
			if phase == "" {
				phase = "state unknown"
			}
			msg := stillHeld(w.label, w.id, phase, a.o.AbortWait, true)
			if lastErr != nil {
				msg += fmt.Sprintf(" (last answer: %v)", lastErr)
			}
			logf("%s", msg)
			return w.oc, fmt.Errorf("%s: %w: %w", msg, cause, ErrStillHeld)
		case <-time.After(abortPollEvery):
		}
	}
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *apiBackend) logProgress(ctx context.Context, id int64, label string, began time.Time) {
	p, ok := a.progress(ctx, id)
	if !ok {
		a.o.Logf("%s: task %d still running after %s", label, id, fmtDur(time.Since(began)))
		return
	}
	a.o.Logf("%s: task %d still running after %s: %s, %.0f%%", label, id, fmtDur(time.Since(began)), p.Phase, p.Fraction*100)
}

// abortIfNew handles a cancellation during POST run, when the task ID is not known: if the
// backup now has a task and had none before, that task is ours, and it is aborted and
// followed like any other.
func (a *apiBackend) abortIfNew(oc Outcome, bid string, preHeld bool, label string) (Outcome, error) {
	if preHeld {
		a.o.Logf("%s: interrupted while asking Duplicati to run it; the task that was already there keeps running", label)
		return oc, fmt.Errorf("%s: while asking Duplicati to run it: %w", label, ErrInterrupted)
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	st, err := a.State(ctx)
	if err != nil {
		msg := fmt.Sprintf("%s: interrupted while asking Duplicati to run it; cannot tell whether a task was queued (%v): Duplicati may back up the live stack; look at its web UI", label, err)
		a.o.Logf("%s", msg)
		return oc, fmt.Errorf("%s: %w: %w", msg, ErrInterrupted, ErrStillHeld)
	}
	t, _, ok := st.Holds(bid)
	if !ok {
		a.o.Logf("%s: interrupted before a task was queued", label)
		return oc, fmt.Errorf("%s: while asking Duplicati to run it: %w", label, ErrInterrupted)
	}
	oc.TaskID = t.ID
	w := &apiWait{a: a, oc: oc, bid: bid, id: t.ID, label: label, seen: true}
	return w.stop(ErrInterrupted, "interrupted while asking Duplicati to run it")
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
