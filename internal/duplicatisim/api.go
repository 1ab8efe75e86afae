package duplicatisim

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves /api/v1/..., /health and the /sim/... control endpoints.
func (s *Sim) Handler() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/backups", s.getBackups)
	api.HandleFunc("GET /api/v1/backup/{id}", s.getBackup)
	api.HandleFunc("POST /api/v1/backup/{id}/run", s.postRun)
	api.HandleFunc("POST /api/v1/backup/{id}/start", s.postRun)
	api.HandleFunc("GET /api/v1/backup/{id}/log", s.getLog)
	api.HandleFunc("GET /api/v1/backup/{id}/isactive", s.getIsActive)
	api.HandleFunc("GET /api/v1/task/{id}", s.getTask)
	api.HandleFunc("GET /api/v1/tasks", s.getTasks)
	api.HandleFunc("POST /api/v1/task/{id}/stop", s.cancelTask("stop", func(p Profile) bool { return p.StopRoute }))
	api.HandleFunc("POST /api/v1/task/{id}/stopaftercurrentfile", s.cancelTask("stop", func(p Profile) bool { return !p.StopRoute }))
	api.HandleFunc("POST /api/v1/task/{id}/stopnow", s.cancelTask("stop", func(p Profile) bool { return !p.StopRoute }))
	api.HandleFunc("POST /api/v1/task/{id}/abort", s.cancelTask("abort", func(Profile) bool { return true }))
	api.HandleFunc("GET /api/v1/serverstate", s.getServerState)
	api.HandleFunc("POST /api/v1/serverstate/pause", s.postPause)
	api.HandleFunc("POST /api/v1/serverstate/resume", s.postResume)
	api.HandleFunc("GET /api/v1/progressstate", s.getProgress)
	api.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })

	mux := http.NewServeMux()
	mux.Handle("/api/v1/", s.hostFilter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			switch r.URL.Path {
			case "/api/v1/auth/login":
				s.postLogin(w, r)
				return
			case "/api/v1/auth/signin":
				s.postSignin(w, r)
				return
			case "/api/v1/auth/refresh":
				s.postRefresh(w, r)
				return
			case "/api/v1/auth/refresh/logout":
				s.postLogout(w, r)
				return
			}
		}
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		api.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("Healthy"))
	})
	s.controlRoutes(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorDTO{Error: msg, Code: code})
}

// query reads a query parameter case-insensitively, as ASP.NET binds them.
func query(r *http.Request, name string) (string, bool) {
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// queryBool binds a bool? query parameter (bool.TryParse); ok is false on a binding failure.
func queryBool(r *http.Request, name string) (v, present, ok bool) {
	s, present := query(r, name)
	if !present {
		return false, false, true
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true, true
	case "false":
		return false, true, true
	}
	return false, true, false
}

// dotnetInt parses like long.TryParse with NumberStyles.Integer.
func dotnetInt(s string, bits int) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
	return n, err == nil
}

// hostFilter is HostnameFilter: the Host must be an IP, a loopback name, or allowed.
func (s *Sim) hostFilter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !s.hostAllowed(host) {
			writeErr(w, http.StatusForbidden, "Invalid hostname: "+host)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Sim) hostAllowed(host string) bool {
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return true
	}
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "[::1]", "localhost.localdomain":
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.q.AllowedHosts {
		if a == "*" || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

func (s *Sim) getBackups(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := make([]backupListEntry, 0, len(s.backups))
	for _, b := range s.backups {
		out = append(out, backupListEntry{Backup: s.backupDTOLocked(b)})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) getBackup(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b, ok := s.backupLocked(r.PathValue("id"))
	var dto backupGetDTO
	if ok {
		dto = backupGetDTO{Backup: s.backupDTOLocked(b), DisplayNames: map[string]string{}}
	}
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "Backup not found")
		return
	}
	writeJSON(w, http.StatusOK, dto)
}

func (s *Sim) postRun(w http.ResponseWriter, r *http.Request) {
	skip, _, ok := queryBool(r, "skipQueue")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	b, found := s.backupLocked(r.PathValue("id"))
	var id int64
	if found {
		id = s.runBackupLocked(b, skip)
	}
	s.mu.Unlock()
	if !found {
		writeErr(w, http.StatusNotFound, "Backup not found")
		return
	}
	writeJSON(w, http.StatusOK, taskStartedDTO{Status: "OK", ID: id})
}

func (s *Sim) getIsActive(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	_, ok := s.backupLocked(id)
	active := s.active != nil && s.active.backupID == id
	for _, t := range s.queue {
		if t.backupID == id || t.backupID == "" {
			active = true
		}
	}
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "Backup not found")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status string
		Active bool
	}{"OK", active})
}

const databaseLockedMsg = "The backup database is currently in use by another operation and cannot be accessed concurrently. Please wait for the running operation to finish and try again."

func (s *Sim) getLog(w http.ResponseWriter, r *http.Request) {
	size := 100
	if v, ok := query(r, "pagesize"); ok {
		n, ok := dotnetInt(v, 64)
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		size = int(n)
	}
	size = min(max(size, 10), 500)
	var offset int64
	if v, ok := query(r, "offset"); ok {
		n, ok := dotnetInt(v, 64)
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		offset = n
	}
	s.mu.Lock()
	_, ok := s.backupLocked(r.PathValue("id"))
	locked := ok && s.prof.DatabaseLocked && s.q.LogLocked > 0
	if locked {
		s.q.LogLocked--
	}
	rows := s.logs[r.PathValue("id")]
	out := make([]logRow, 0, min(size, len(rows)))
	for i := len(rows) - 1; i >= 0 && len(out) < size; i-- {
		if offset > 0 && rows[i].ID >= offset {
			continue
		}
		out = append(out, rows[i])
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeErr(w, http.StatusNotFound, "Backup not found")
	case locked:
		writeJSON(w, http.StatusBadRequest, struct {
			Error  string
			Code   int
			HelpId string
		}{databaseLockedMsg, http.StatusBadRequest, "DatabaseLocked"})
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// taskStateLocked is TaskQueueService.GetTaskInfo.
func (s *Sim) taskStateLocked(id int64) (any, bool) {
	if s.active != nil && s.active.id == id {
		return s.taskDTOLocked("Running", id, &taskResult{started: s.active.started}), true
	}
	for _, t := range s.queue {
		if t.id == id {
			return s.taskDTOLocked("Waiting", id, nil), true
		}
	}
	res, ok := s.cache[id]
	if !ok {
		return nil, false
	}
	status := "Completed"
	if res.errMsg != "" {
		status = "Failed"
	}
	return s.taskDTOLocked(status, id, &res), true
}

func (s *Sim) getTask(w http.ResponseWriter, r *http.Request) {
	id, ok := dotnetInt(r.PathValue("id"), 64)
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	var dto any
	if s.gapTask == id && s.gapTask != 0 {
		// 2.1.0.x: the worker cleared the current task before the result was registered.
		s.gapTask = 0
		if time.Now().Before(s.gapUntil) {
			ok = false
		} else {
			dto, ok = s.taskStateLocked(id)
		}
	} else {
		dto, ok = s.taskStateLocked(id)
	}
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "No such task found")
		return
	}
	writeJSON(w, http.StatusOK, dto)
}

// getTasks is GetTaskQueue: the current task, then the queue, all labelled "Running".
func (s *Sim) getTasks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := []any{}
	if s.active != nil {
		out = append(out, s.taskDTOLocked("Running", s.active.id, &taskResult{started: s.active.started}))
	}
	for _, t := range s.queue {
		out = append(out, s.taskDTOLocked("Running", t.id, nil))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// cancelTask serves task/{id}/<route>; the route exists only where exists(profile).
func (s *Sim) cancelTask(how string, exists func(Profile) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !exists(s.prof) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		id, ok := dotnetInt(r.PathValue("id"), 64)
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if !s.cancelLocked(id, how, time.Now()) {
			writeErr(w, http.StatusNotFound, "No such task found")
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// parseTimespan is Duplicati's Timeparser.ParseTimeSpan: "" is zero, a plain integer is
// seconds, else <int><unit> parts with units s m h D W M Y (case-sensitive: "M" is 30 days).
func parseTimespan(v string) (time.Duration, bool) {
	if v == "" {
		return 0, true
	}
	if n, ok := dotnetInt(v, 64); ok {
		return time.Duration(n) * time.Second, true
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour,
		'D': 24 * time.Hour, 'W': 7 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'Y': 365 * 24 * time.Hour}
	var total time.Duration
	prev := 0
	for {
		idx := strings.IndexAny(v[prev:], "smhDWMY")
		if idx < 0 || prev+idx == 0 {
			break
		}
		idx += prev
		n, ok := dotnetInt(v[prev:idx], 32)
		if !ok {
			return 0, false
		}
		total += time.Duration(n) * units[v[idx]]
		prev = idx + 1
	}
	if strings.TrimSpace(v[prev:]) != "" {
		return 0, false
	}
	return total, true
}

func (s *Sim) getServerState(w http.ResponseWriter, r *http.Request) {
	lp, _, ok := queryBool(r, "longpoll")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	lastStr, hasLast := query(r, "lastEventId")
	var last int64
	if hasLast {
		if last, ok = dotnetInt(lastStr, 64); !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	if lp {
		dur, hasDur := query(r, "duration")
		if !hasLast {
			writeErr(w, http.StatusBadRequest, "When activating long poll, the request must include the last event id")
			return
		}
		if !hasDur {
			writeErr(w, http.StatusBadRequest, "When activating long poll, the request must include the duration")
			return
		}
		d, ok := parseTimespan(dur)
		if !ok {
			writeErr(w, http.StatusBadRequest, "When activating long poll, the request must include the duration and it must be a valid time span")
			return
		}
		if d < 10*time.Second || d > time.Hour {
			writeErr(w, http.StatusBadRequest, "The duration must be between 10 seconds and 1 hour")
			return
		}
		s.mu.Lock()
		ch, restarted, same := s.changed, s.restarted, s.lastEventID == last
		if same {
			s.parkedPolls++
		}
		s.mu.Unlock()
		if same {
			t := time.NewTimer(d)
			select {
			case <-ch:
			case <-t.C:
			case <-r.Context().Done():
			case <-s.stop:
			case <-restarted:
			}
			t.Stop()
			s.mu.Lock()
			s.parkedPolls--
			s.mu.Unlock()
			select {
			case <-restarted:
				panic(http.ErrAbortHandler) // the server went away: the connection drops
			default:
			}
		}
	}
	s.mu.Lock()
	st := s.serverStateLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) postPause(w http.ResponseWriter, r *http.Request) {
	var end time.Time
	if v, ok := query(r, "duration"); ok {
		d, ok := parseTimespan(v)
		if !ok {
			writeErr(w, http.StatusBadRequest, "The duration must be a valid time span")
			return
		}
		if d > 0 {
			end = time.Now().Add(d)
		}
	}
	s.mu.Lock()
	s.q.Paused, s.pauseEnd = true, end
	s.bumpLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Sim) postResume(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.q.Paused, s.pauseEnd = false, time.Time{}
	s.bumpLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Sim) getProgress(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d, ok := s.progressLocked(time.Now())
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "No active backup")
		return
	}
	writeJSON(w, http.StatusOK, d)
}
