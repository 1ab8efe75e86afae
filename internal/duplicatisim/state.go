// Package duplicatisim simulates the subset of a Duplicati server that backup-stack uses: the
// /api/v1 REST endpoints, /health, and switches for the real server's quirks, in the release
// profiles of Versions (Quirks.Version; "" = NewestVersion). The duplicati-server-util
// stand-in (cmd/duplicati-sim) talks to it over HTTP. Rule: the simulator is never friendlier
// than the real server.
//
// Behaviour, and the choices made where the Duplicati reference (its §10) leaves room:
//   - Task IDs come from an in-memory counter: a fresh server's first task is 2, and after a
//     Restart (or RestartAtJobEnd) they start at 2 again. Event.Boot tells the lives apart.
//   - POST task/{id}/stop and /abort (2.1.0.x: /stopaftercurrentfile, /stopnow, /abort) answer
//     200 with an empty body, and often do nothing: for a queued task, and for a running task
//     during its first NoControllerFor (default 200ms, before its Controller exists), the
//     request is lost; the task runs on. Otherwise the request lands AbortDelay (default
//     500ms) later; until then the task keeps running and further requests change nothing.
//     AbortIgnored makes an abort never land (#7105); a stop still does. A run whose natural
//     end comes first ends normally.
//   - An abort that lands: log row ParsedResult "Fatal", Interrupted true, metadata
//     LastErrorDate/LastErrorMessage "The operation was canceled.", task "Failed" with that
//     ErrorMessage (2.1.0.x: "Completed", the exception is swallowed). Event.Result "Aborted".
//   - A stop that lands: a partial backup, task "Completed", log row ParsedResult "Warning",
//     Interrupted true, PartialBackup true, warning "Cancellation was requested by user.", no
//     LastBackup* metadata (interrupted runs write none). A stopped Verify: "Success",
//     Interrupted true. Event.Result "Stopped".
//   - A Fatal backup throws: task "Failed" (2.1.0.x: "Completed" with the Fatal log row),
//     LastErrorDate/LastErrorMessage, no LastBackup*. Warning/Error runs are "Completed" and
//     write LastBackup* metadata.
//   - 2.1.0.x: the first task/{id} request within a second after the task finished answers
//     404 (WorkerThread clears the current task before the result is cached); task/{id} has no
//     TaskStarted/TaskFinished; run ignores skipQueue and queues at the front.
//   - Every operation on a backup writes a log row, as the real Controller does: a Verify task
//     (HoldQueue) writes MainOperation "Test", ParsedResult "Success" (reference 3.1(7), 4.7).
//     A Sync job (Backup.Sync, 2.3.1.0 only) writes no Result row, only LastSync* metadata.
//   - Passwords: an empty or whitespace password never logs in; with Quirks.Password "" the
//     server has a random password, so no password login works (2.1+ always has one).
//   - Token families: every password login and every sign-in (the util's DB sign-in) adds a
//     row (TokenFamilyRows); a refresh adds none, a logout or a detected token re-use removes
//     the family and invalidates its access tokens. PreAuth requests add none.
//   - Restart: queue, active task, result cache and progress are gone (dropped tasks get
//     Event.Result "Dropped" and a zero Finished), in-flight long polls lose their connection,
//     LastEventID and the other in-memory counters restart, the server is unpaused. Access
//     tokens, token families, log rows and backup metadata (in the server DB) survive.
//   - GET tasks labels queued tasks "Running" (10.7); 2.1.0.x uses the same DTO (simplified).
//   - Serverstate long poll (lastEventId, longpoll, duration; names case-insensitive as ASP.NET
//     binds them; durations in Duplicati's Timeparser syntax, "5M" is five months) returns as
//     soon as an event happens: enqueue, start, end, pause, resume, backup change.
//   - 2.3.1.0: LogLocked makes backup/{id}/log answer 400 DatabaseLocked.
//   - Backup.Sources: a run reads them (walk, then sha256 of each file spread over the run;
//     a missing source throws, a vanished path warns, an unreadable file is an error); GET
//     /sim/reads?task=N shows what it read. Details in sources.go.
//
// Control endpoints for tests in other processes (no auth, no Host check): GET /sim/events,
// GET /sim/reads?task=N[&boot=B] (what a Backup task read of Backup.Sources: see sources.go),
// GET and POST /sim/quirks (JSON as MarshalQuirks), POST /sim/hold?backup=&duration=,
// POST /sim/restart, POST /sim/backups, GET /sim/tokenfamily ({"Rows":N}) and
// POST /sim/signintoken (stands for the util reading the server DB: {"SigninToken":...}).
package duplicatisim

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Backup is one configured backup job of the simulated server.
type Backup struct {
	ID, Name string
	Duration time.Duration // how long a run takes (default 1s)
	Result   string        // "Success" (default) | "Warning" | "Error" | "Fatal"
	Sync     bool          // a Sync-type job (2.3.1.0 only): writes no Result log row
	Sources  []string      // absolute paths a run reads (see sources.go and GET /sim/reads)
}

// Quirks switches on behaviour of the real server and util that clients must cope with.
// Zero values are the defaults noted.
type Quirks struct {
	Version               string        // one of Versions; "" = NewestVersion
	RunHangs              bool          // stand-in `run`: enqueues, then hangs forever
	RunHangsBeforeEnqueue bool          // stand-in `run`: hangs without enqueueing
	QueuedDelay           time.Duration // a new task stays queued this long even when the queue is free
	Paused                bool          // ProgramState "Paused": queue does not start tasks
	TokenTTL              time.Duration // access token lifetime (default 15m)
	RestartAtJobEnd       bool          // server restart right when a job ends (log row written, result cache cleared)
	AllowedHosts          []string      // extra allowed Host names besides IPs and localhost names; "*" = any
	Password              string        // server password; "" = a random one: no password login works
	StatusGarbage         bool          // stand-in `status` prints unparseable output
	RaceGap               bool          // one serverstate response shows a starting task in neither queue nor active
	NoControllerFor       time.Duration // stop/abort of a task started less than this ago is lost (default 200ms; <0: none)
	AbortDelay            time.Duration // a stop/abort lands this long after the request (default 500ms; <0: at once)
	AbortIgnored          bool          // abort of a running task never lands (#7105); stop still does
	PreAuthTokens         []string      // 2.1.2.0+: tokens for "Authorization: PreAuth <tok>" (>= 10 of [A-Za-z0-9_-])
	LogLocked             int           // 2.3.1.0: the next N reads of backup/{id}/log answer 400 DatabaseLocked
	DataFolderMessage     bool          // stand-in: a failed data-folder check prints the exception text (the real prints nothing)
}

// Event records one task's life, for test assertions.
type Event struct {
	TaskID    int64
	BackupID  string
	Operation string // "Backup" or "Verify"
	Boot      int    // server life the task belongs to: 0, then +1 per restart
	Queued    time.Time
	Started   time.Time // zero until it really started
	Finished  time.Time // zero until it really ended (and for dropped tasks)
	Result    string    // ParsedResult once finished; "Aborted" or "Stopped" when a cancel landed; "Dropped" on restart
}

const (
	defaultDuration        = time.Second
	defaultTokenTTL        = 15 * time.Minute
	defaultNoControllerFor = 200 * time.Millisecond
	defaultAbortDelay      = 500 * time.Millisecond
	finishGapWindow        = time.Second
	tickInterval           = 10 * time.Millisecond
	maxCachedTasks         = 99 // the cache evicts at >= MAX_TASK_RESULT_CACHE_SIZE (100)
	firstTaskID            = 2  // RunnerTaskID = 1, incremented before use
)

type task struct {
	id       int64
	backupID string
	op       string // "Backup" | "Verify"
	sync     bool
	duration time.Duration
	result   string // configured outcome, fixed when the task starts
	queued   time.Time
	started  time.Time
	ev       int    // index into Sim.events
	cancel   string // pending "stop" | "abort"
	cancelAt time.Time
	rd       *readRecord // a started Backup task's source reading
}

type taskResult struct {
	started, finished time.Time
	errMsg, exception string // errMsg != "" means task/{id} says "Failed"
}

type logRow struct {
	ID          int64
	OperationID int64
	Timestamp   int64
	Type        string
	Message     string
	Exception   *string
}

// progress is the last task's progress (GET progressstate).
type progress struct {
	t        *task
	finished bool
	phase    string
}

// Sim is one simulated Duplicati server. All state is guarded by mu.
type Sim struct {
	mu      sync.Mutex
	backups []Backup
	q       Quirks
	prof    Profile

	boot      int
	nextTask  int64 // last task ID handed out
	nextLog   int64
	nextOp    int64
	queue     []*task
	active    *task
	cache     map[int64]taskResult
	cacheIDs  []int64
	gapTask   int64 // 2.1.0.x: task whose next task/{id} answers 404 ...
	gapUntil  time.Time
	logs      map[string][]logRow // oldest first
	meta      map[string]map[string]string
	versions  map[string]int // completed backup versions per backup
	pauseEnd  time.Time
	prog      *progress
	raceGapID int64 // task that must be hidden from the next serverstate response

	auth authState

	lastEventID, lastDataID, lastNotifID int64
	hasWarning, hasError                 bool
	changed                              chan struct{} // closed and replaced on every event
	restarted                            chan struct{} // closed and replaced on every restart
	parkedPolls                          int           // serverstate long polls waiting for an event now

	events []Event
	reads  map[int]*readRecord // by index into events: what each started Backup task read

	openFile openFunc // nil: os.Open; tests replace it before the first task starts

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var preAuthRE = regexp.MustCompile(`^[A-Za-z0-9_-]{10,}$`)

// Validate reports whether New accepts backups and q: a known Version, features only in the
// profiles that have them (PreAuthTokens from 2.1.2.0, LogLocked and Sync jobs in 2.3.1.0),
// well-formed pre-auth tokens.
func Validate(backups []Backup, q Quirks) error {
	p, err := ProfileFor(q.Version)
	if err != nil {
		return err
	}
	if len(q.PreAuthTokens) > 0 && !p.PreAuth {
		return fmt.Errorf("PreAuthTokens: Duplicati %s has no pre-authenticated tokens (2.1.2.0+)", p.Version)
	}
	for _, tok := range q.PreAuthTokens {
		if !preAuthRE.MatchString(tok) {
			return fmt.Errorf("PreAuthTokens: %q: a token must be at least 10 characters of [A-Za-z0-9_-]", tok)
		}
	}
	if q.LogLocked < 0 {
		return errors.New("LogLocked: must not be negative")
	}
	if q.LogLocked > 0 && !p.DatabaseLocked {
		return fmt.Errorf("LogLocked: Duplicati %s never answers DatabaseLocked (2.3.0.107+)", p.Version)
	}
	for _, b := range backups {
		if err := validBackup(b, p); err != nil {
			return err
		}
	}
	return nil
}

func validBackup(b Backup, p Profile) error {
	if b.ID == "" {
		return errors.New("backup: empty ID")
	}
	if err := validResult(b.Result); err != nil {
		return fmt.Errorf("backup %s: %w", b.ID, err)
	}
	if b.Sync && !p.SyncJobs {
		return fmt.Errorf("backup %s: Duplicati %s has no Sync jobs (2.3.1.0)", b.ID, p.Version)
	}
	if b.Sync && len(b.Sources) > 0 {
		return fmt.Errorf("backup %s: a Sync job has no sources", b.ID)
	}
	for _, src := range b.Sources {
		if !filepath.IsAbs(src) {
			return fmt.Errorf("backup %s: source %q: want an absolute path", b.ID, src)
		}
	}
	return nil
}

// New starts a simulator with the given backups and quirks. Call Close to stop it. It panics
// when Validate(backups, q) fails.
func New(backups []Backup, q Quirks) *Sim {
	if err := Validate(backups, q); err != nil {
		panic("duplicatisim.New: " + err.Error())
	}
	q = cloneQuirks(q)
	prof, _ := ProfileFor(q.Version)
	s := &Sim{
		q:         q,
		prof:      prof,
		nextTask:  firstTaskID - 1,
		cache:     map[int64]taskResult{},
		logs:      map[string][]logRow{},
		meta:      map[string]map[string]string{},
		versions:  map[string]int{},
		reads:     map[int]*readRecord{},
		auth:      newAuthState(),
		changed:   make(chan struct{}),
		restarted: make(chan struct{}),
		stop:      make(chan struct{}),
		// IDs in the style of a server that has just started.
		lastEventID: 1,
	}
	for _, b := range backups {
		s.setBackupLocked(b)
	}
	s.wg.Add(1)
	go s.worker()
	return s
}

func cloneQuirks(q Quirks) Quirks {
	q.AllowedHosts = slices.Clone(q.AllowedHosts)
	q.PreAuthTokens = slices.Clone(q.PreAuthTokens)
	return q
}

// Close stops the worker and releases long polls. The handler keeps answering.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// SetQuirks changes quirks under the lock. When the result does not pass Validate nothing
// changes and the error is returned.
func (s *Sim) SetQuirks(f func(*Quirks)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := cloneQuirks(s.q)
	f(&n)
	if err := Validate(s.backups, n); err != nil {
		return err
	}
	was := s.q.Paused
	s.q = cloneQuirks(n)
	s.prof, _ = ProfileFor(s.q.Version)
	if was != s.q.Paused {
		s.pauseEnd = time.Time{}
		s.bumpLocked()
	}
	return nil
}

// Quirks returns a copy of the current quirks (LogLocked counts down as reads are refused).
func (s *Sim) Quirks() Quirks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneQuirks(s.q)
}

// Profile returns the profile of the simulated version.
func (s *Sim) Profile() Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prof
}

// SetBackup adds a backup or replaces the one with the same ID. A backup the profile cannot
// have (a Sync job before 2.3.1.0, a bad Result) is refused.
func (s *Sim) SetBackup(b Backup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := validBackup(b, s.prof); err != nil {
		return err
	}
	s.setBackupLocked(b)
	s.lastDataID++
	s.bumpLocked()
	return nil
}

func (s *Sim) setBackupLocked(b Backup) {
	if b.Duration <= 0 {
		b.Duration = defaultDuration
	}
	if b.Result == "" {
		b.Result = "Success"
	}
	b.Sources = slices.Clone(b.Sources)
	for i := range s.backups {
		if s.backups[i].ID == b.ID {
			s.backups[i] = b
			return
		}
	}
	s.backups = append(s.backups, b)
}

func (s *Sim) backupLocked(id string) (Backup, bool) {
	for _, b := range s.backups {
		if b.ID == id {
			return b, true
		}
	}
	return Backup{}, false
}

// Events returns a copy of all task events in task order.
func (s *Sim) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// HoldQueue enqueues a non-backup task (Operation "Verify") for backupID ("" allowed)
// lasting d, at the end of the queue, and returns its task ID.
func (s *Sim) HoldQueue(backupID string, d time.Duration) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		d = defaultDuration
	}
	return s.enqueueLocked(backupID, "Verify", d, false).id
}

// Restart behaves like a server restart: the active task is dropped, the queue and the task
// result cache are cleared, task IDs start again at 2, in-flight long polls lose their
// connection, LastEventID restarts, the server is unpaused. Log rows, backup metadata, token
// families and access tokens (in the server DB, signed with its key) are kept.
func (s *Sim) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restartLocked()
}

func (s *Sim) restartLocked() {
	drop := append([]*task(nil), s.queue...)
	if s.active != nil {
		drop = append(drop, s.active)
	}
	for _, t := range drop {
		s.events[t.ev].Result = "Dropped"
		endReadLocked(t)
	}
	s.queue, s.active = nil, nil
	s.cache, s.cacheIDs = map[int64]taskResult{}, nil
	s.gapTask = 0
	s.nextTask = firstTaskID - 1
	s.q.Paused, s.pauseEnd = false, time.Time{}
	s.prog, s.raceGapID = nil, 0
	s.boot++
	s.lastEventID, s.lastDataID, s.lastNotifID = 1, 0, 0
	close(s.changed)
	s.changed = make(chan struct{})
	close(s.restarted)
	s.restarted = make(chan struct{})
}

// bumpLocked records a server event: LastEventID changes and long polls return.
func (s *Sim) bumpLocked() {
	s.lastEventID++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sim) enqueueLocked(backupID, op string, d time.Duration, front bool) *task {
	s.nextTask++
	now := time.Now()
	t := &task{id: s.nextTask, backupID: backupID, op: op, duration: d, queued: now, ev: len(s.events)}
	s.events = append(s.events, Event{TaskID: t.id, BackupID: backupID, Operation: op, Boot: s.boot, Queued: now})
	if front {
		s.queue = append([]*task{t}, s.queue...)
	} else {
		s.queue = append(s.queue, t)
	}
	s.bumpLocked()
	return t
}

// runBackupLocked is BackupPost.ExecuteRunBackup: an active or queued task for the same
// backup (of any operation) is returned instead of queueing a new one. 2.1.0.x ignores
// skipQueue and always queues at the front.
func (s *Sim) runBackupLocked(b Backup, skipQueue bool) int64 {
	if s.active != nil && s.active.backupID == b.ID {
		return s.active.id
	}
	for _, t := range s.queue {
		if t.backupID == b.ID {
			return t.id
		}
	}
	if !s.prof.SkipQueue {
		skipQueue = true
	}
	return s.enqueueLocked(b.ID, "Backup", 0, skipQueue).id
}

func (s *Sim) worker() {
	defer s.wg.Done()
	tk := time.NewTicker(tickInterval)
	defer tk.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tk.C:
			s.tick(now)
		}
	}
}

func (s *Sim) tick(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.q.Paused && !s.pauseEnd.IsZero() && !now.Before(s.pauseEnd) {
		s.q.Paused, s.pauseEnd = false, time.Time{}
		s.bumpLocked()
	}
	if a := s.active; a != nil {
		end := a.started.Add(a.duration)
		readDone := readDoneLocked(a) // a read longer than the duration makes the run longer
		switch {
		case a.rd != nil && a.rd.fatal != "":
			s.finishLocked(a, "done", now) // a source check failed: the run throws at once
		case a.cancel != "" && (a.cancelAt.Before(end) || !readDone) && !now.Before(a.cancelAt):
			s.finishLocked(a, a.cancel, now)
		case !now.Before(end) && readDone:
			s.finishLocked(a, "done", now)
		}
	}
	if s.active == nil && !s.q.Paused && len(s.queue) > 0 && now.Sub(s.queue[0].queued) >= s.q.QueuedDelay {
		s.startLocked(now)
	}
}

func (s *Sim) startLocked(now time.Time) {
	t := s.queue[0]
	s.queue = s.queue[1:]
	t.started = now
	t.result = "Success"
	if t.op == "Backup" {
		b, ok := s.backupLocked(t.backupID)
		if ok {
			t.duration, t.result, t.sync = b.Duration, b.Result, b.Sync
		} else {
			t.duration = defaultDuration
		}
		s.startReadLocked(t, b.Sources)
	}
	s.active = t
	s.events[t.ev].Started = now
	s.prog = &progress{t: t}
	if s.q.RaceGap {
		s.raceGapID = t.id
	}
	s.bumpLocked()
}

// finishLocked ends the active task t. how is "done", "stop" or "abort".
func (s *Sim) finishLocked(t *task, how string, now time.Time) {
	endReadLocked(t)
	parsed, interrupted := t.result, false
	threw, errMsg, exception := parsed == "Fatal", fatalMsg, fatalException
	if r := t.rd; r != nil && r.fatal != "" && how == "done" {
		parsed, threw = "Fatal", true
		errMsg, exception = r.fatal, "System.IO.IOException: "+r.fatal+ioExceptionStack
	}
	switch how {
	case "stop":
		parsed, interrupted, threw = "Warning", true, false
		if t.op != "Backup" {
			parsed = "Success"
		}
	case "abort":
		parsed, interrupted, threw = "Fatal", true, true
		errMsg, exception = canceledMsg, canceledException
	}
	if r := t.rd; r != nil && parsed != "Fatal" {
		// What the read met raises the result: never a silent success.
		if len(r.Warnings) > 0 && parsed == "Success" {
			parsed = "Warning"
		}
		if len(r.Errors) > 0 {
			parsed = "Error"
		}
	}
	res := taskResult{started: t.started, finished: now}
	if threw && s.prof.ThrowFails {
		res.errMsg, res.exception = errMsg, exception
	}
	if t.backupID != "" {
		if _, ok := s.backupLocked(t.backupID); ok {
			if !(t.sync && s.prof.SyncJobs) {
				s.writeLogLocked(t, parsed, interrupted, how == "stop", now)
			}
			if t.op == "Backup" {
				s.writeMetaLocked(t, threw, errMsg, interrupted, now)
			}
		}
	}
	switch parsed {
	case "Warning":
		s.hasWarning = true
		s.lastNotifID++
	case "Error", "Fatal":
		s.hasError = true
		s.lastNotifID++
	}
	s.cacheLocked(t.id, res)
	if s.prof.FinishGap {
		s.gapTask, s.gapUntil = t.id, now.Add(finishGapWindow)
	}
	ev := &s.events[t.ev]
	ev.Finished = now
	ev.Result = parsed
	switch how {
	case "stop":
		ev.Result = "Stopped"
	case "abort":
		ev.Result = "Aborted"
	}
	if s.prog != nil && s.prog.t == t {
		s.prog.finished = true
		s.prog.phase = finalPhase(t.op, parsed, threw)
	}
	s.active = nil
	s.bumpLocked()
	if s.q.RestartAtJobEnd {
		s.restartLocked()
	}
}

func (s *Sim) cacheLocked(id int64, r taskResult) {
	s.cache[id] = r
	s.cacheIDs = append(s.cacheIDs, id)
	for len(s.cacheIDs) > maxCachedTasks {
		delete(s.cache, s.cacheIDs[0])
		s.cacheIDs = s.cacheIDs[1:]
	}
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}

// cancelLocked handles task/{id}/stop and /abort (RunnerData.StopAsync/AbortAsync, which is
// Controller?.Stop()). It reports false for unknown tasks; everything else is "OK" even when
// nothing happens.
func (s *Sim) cancelLocked(id int64, how string, now time.Time) bool {
	if a := s.active; a != nil && a.id == id {
		switch {
		case now.Sub(a.started) < orDefault(s.q.NoControllerFor, defaultNoControllerFor):
			// no Controller yet: lost
		case a.cancel != "":
			// already pending: changes nothing
		case how == "abort" && s.q.AbortIgnored:
			// #7105
		default:
			a.cancel, a.cancelAt = how, now.Add(orDefault(s.q.AbortDelay, defaultAbortDelay))
			if !now.Before(a.cancelAt) {
				s.finishLocked(a, how, now)
			}
		}
		return true
	}
	for _, t := range s.queue {
		if t.id == id {
			return true // a queued task has no Controller: a silent no-op
		}
	}
	return false
}

const (
	fatalMsg          = "The backup failed: simulated fatal error"
	fatalException    = "Duplicati.Library.Interface.UserInformationException: The backup failed: simulated fatal error\n   at Duplicati.Library.Main.Controller.RunAction[T](T result, String[]& paths, IFilter& filter, Func`3 method)\n   at Duplicati.Server.Runner.RunInternalAsync(Connection databaseConnection, IQueueRunnerService queueRunnerService, IRunnerData data, Boolean fromQueue)"
	canceledMsg       = "The operation was canceled."
	canceledException = "System.OperationCanceledException: The operation was canceled.\n   at Duplicati.Server.Runner.RunInternalAsync(Connection databaseConnection, IQueueRunnerService queueRunnerService, IRunnerData data, Boolean fromQueue)"
)

func finalPhase(op, parsed string, threw bool) string {
	switch {
	case threw:
		return "Error"
	case op == "Backup":
		return "Backup_Complete"
	default:
		return "Verify_Running"
	}
}
