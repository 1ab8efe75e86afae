// Package duplicatisim simulates the subset of a Duplicati 2.3.x server that backup-stack uses:
// the /api/v1 REST endpoints, /health, and switches for the real server's quirks. The
// duplicati-server-util stand-in (cmd/duplicati-sim) talks to it over HTTP.
//
// Choices where the reference leaves room (documented here once):
//   - POST task/{id}/abort on the active task: the run ends at once, Interrupted=true,
//     ParsedResult "Fatal", and the cached task result carries an OperationCanceledException,
//     so task/{id} says "Failed" (the real abort throws out of the operation).
//   - POST task/{id}/stop on the active task ("stop after current file"): the run ends at once
//     gracefully, Interrupted=true, ParsedResult "Warning", task/{id} says "Completed".
//   - stop or abort of a queued task removes it from the queue; no log row is written and
//     task/{id} says "Failed" with "The operation was canceled.".
//   - In all three cases Event.Result is "Aborted".
//   - Every operation on a backup writes a log row, as the real Controller does: a Verify task
//     (HoldQueue) writes MainOperation "Test", ParsedResult "Success" (reference 3.1(7), 4.7).
//   - Restart (and RestartAtJobEnd) keeps task/log/event IDs increasing; tasks dropped by a
//     restart get Event.Result "Dropped" and a zero Finished time.
package duplicatisim

import (
	"sync"
	"time"
)

// Backup is one configured backup job of the simulated server.
type Backup struct {
	ID, Name string
	Duration time.Duration // how long a run takes (default 1s)
	Result   string        // "Success" (default) | "Warning" | "Error" | "Fatal"
}

// Quirks switches on behaviour of the real server and util that clients must cope with.
type Quirks struct {
	RunHangs              bool          // stand-in `run`: enqueues, then hangs forever
	RunHangsBeforeEnqueue bool          // stand-in `run`: hangs without enqueueing
	QueuedDelay           time.Duration // a new task stays queued this long even when the queue is free
	Paused                bool          // ProgramState "Paused": queue does not start tasks
	TokenTTL              time.Duration // access token lifetime (default 15m)
	RestartAtJobEnd       bool          // server restart right when a job ends (log row written, result cache cleared)
	AllowedHosts          []string      // extra allowed Host names besides IPs and localhost names; "*" = any
	Password              string        // server password; "" = login with any password succeeds
	StatusGarbage         bool          // stand-in `status` prints unparseable output
	RaceGap               bool          // one serverstate response shows a starting task in neither queue nor active
}

// Event records one task's life, for test assertions.
type Event struct {
	TaskID    int64
	BackupID  string
	Operation string // "Backup" or "Verify"
	Queued    time.Time
	Started   time.Time
	Finished  time.Time // zero when not reached
	Result    string    // ParsedResult, "" until finished; "Aborted" if stopped/aborted; "Dropped" on restart
}

const (
	defaultDuration = time.Second
	defaultTokenTTL = 15 * time.Minute
	tickInterval    = 10 * time.Millisecond
	maxCachedTasks  = 100 // MAX_TASK_RESULT_CACHE_SIZE
)

type task struct {
	id       int64
	backupID string
	op       string // "Backup" | "Verify"
	duration time.Duration
	result   string // configured outcome, fixed when the task starts
	queued   time.Time
	started  time.Time
	ev       int // index into Sim.events
}

type taskResult struct {
	started, finished time.Time
	errMsg, exception string // errMsg != "" means the task threw
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

	nextTask  int64
	nextLog   int64
	nextOp    int64
	queue     []*task
	active    *task
	cache     map[int64]taskResult
	cacheIDs  []int64
	logs      map[string][]logRow // oldest first
	meta      map[string]map[string]string
	tokens    map[string]time.Time
	pauseEnd  time.Time
	prog      *progress
	raceGapID int64 // task that must be hidden from the next serverstate response

	lastEventID, lastDataID, lastNotifID int64
	hasWarning, hasError                 bool
	changed                              chan struct{} // closed and replaced on every event

	events []Event

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New starts a simulator with the given backups and quirks. Call Close to stop it.
func New(backups []Backup, q Quirks) *Sim {
	s := &Sim{
		q:       q,
		cache:   map[int64]taskResult{},
		logs:    map[string][]logRow{},
		meta:    map[string]map[string]string{},
		tokens:  map[string]time.Time{},
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
		// IDs in the style of a server with some history.
		lastEventID: 1,
	}
	for _, b := range backups {
		s.setBackupLocked(b)
	}
	s.wg.Add(1)
	go s.worker()
	return s
}

// Close stops the worker and releases long polls. The handler keeps answering.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// SetQuirks changes quirks under the lock.
func (s *Sim) SetQuirks(f func(*Quirks)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.q.Paused
	f(&s.q)
	if was != s.q.Paused {
		s.pauseEnd = time.Time{}
		s.bumpLocked()
	}
}

// Quirks returns a copy of the current quirks.
func (s *Sim) Quirks() Quirks {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.q
	q.AllowedHosts = append([]string(nil), s.q.AllowedHosts...)
	return q
}

// SetBackup adds a backup or replaces the one with the same ID.
func (s *Sim) SetBackup(b Backup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setBackupLocked(b)
	s.lastDataID++
	s.bumpLocked()
}

func (s *Sim) setBackupLocked(b Backup) {
	if b.Duration <= 0 {
		b.Duration = defaultDuration
	}
	if b.Result == "" {
		b.Result = "Success"
	}
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

// Restart behaves like a server restart: the active task is dropped, the queue and the
// task result cache are cleared, access tokens become invalid, the server is unpaused.
// Log rows and backup metadata (on disk in the real server) are kept.
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
	}
	s.queue, s.active = nil, nil
	s.cache, s.cacheIDs = map[int64]taskResult{}, nil
	s.tokens = map[string]time.Time{}
	s.q.Paused, s.pauseEnd = false, time.Time{}
	s.prog, s.raceGapID = nil, 0
	s.bumpLocked()
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
	s.events = append(s.events, Event{TaskID: t.id, BackupID: backupID, Operation: op, Queued: now})
	if front {
		s.queue = append([]*task{t}, s.queue...)
	} else {
		s.queue = append(s.queue, t)
	}
	s.bumpLocked()
	return t
}

// runBackupLocked is BackupPost.ExecuteRunBackup: an active or queued task for the same
// backup (of any operation) is returned instead of queueing a new one.
func (s *Sim) runBackupLocked(b Backup, skipQueue bool) int64 {
	if s.active != nil && s.active.backupID == b.ID {
		return s.active.id
	}
	for _, t := range s.queue {
		if t.backupID == b.ID {
			return t.id
		}
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
	if s.active != nil && !now.Before(s.active.started.Add(s.active.duration)) {
		s.finishLocked(s.active, "done", now)
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
			t.duration, t.result = b.Duration, b.Result
		} else {
			t.duration = defaultDuration
		}
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
	parsed, interrupted := t.result, false
	switch how {
	case "stop":
		parsed, interrupted = "Warning", true
	case "abort":
		parsed, interrupted = "Fatal", true
	}
	res := taskResult{started: t.started, finished: now}
	switch {
	case how == "abort":
		res.errMsg, res.exception = canceledMsg, canceledException
	case parsed == "Fatal":
		res.errMsg, res.exception = fatalMsg, fatalException
	}
	if t.backupID != "" {
		if _, ok := s.backupLocked(t.backupID); ok {
			s.writeLogLocked(t, parsed, interrupted, now)
			if t.op == "Backup" {
				s.writeMetaLocked(t, res, interrupted, now)
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
	ev := &s.events[t.ev]
	ev.Finished = now
	ev.Result = parsed
	if how != "done" {
		ev.Result = "Aborted"
	}
	if s.prog != nil && s.prog.t == t {
		s.prog.finished = true
		s.prog.phase = finalPhase(t.op, parsed, res.errMsg != "")
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

// cancelLocked handles task/{id}/stop and /abort. It reports false for unknown tasks.
func (s *Sim) cancelLocked(id int64, how string) bool {
	now := time.Now()
	if s.active != nil && s.active.id == id {
		s.finishLocked(s.active, how, now)
		return true
	}
	for i, t := range s.queue {
		if t.id == id {
			s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
			s.cacheLocked(id, taskResult{finished: now, errMsg: canceledMsg, exception: canceledException})
			s.events[t.ev].Finished = now
			s.events[t.ev].Result = "Aborted"
			s.bumpLocked()
			return true
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
