package duplicatisim

import (
	"crypto/rand"
	"encoding/base64"
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
	api.HandleFunc("POST /api/v1/task/{id}/stop", s.cancelTask("stop"))
	api.HandleFunc("POST /api/v1/task/{id}/abort", s.cancelTask("abort"))
	api.HandleFunc("GET /api/v1/serverstate", s.getServerState)
	api.HandleFunc("POST /api/v1/serverstate/pause", s.postPause)
	api.HandleFunc("POST /api/v1/serverstate/resume", s.postResume)
	api.HandleFunc("GET /api/v1/progressstate", s.getProgress)

	mux := http.NewServeMux()
	mux.Handle("/api/v1/", s.hostFilter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/auth/login" {
			s.postLogin(w, r)
			return
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
func query(r *http.Request, name string) string {
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
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

func (s *Sim) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	if !ok {
		return false
	}
	if !time.Now().Before(exp) {
		delete(s.tokens, tok)
		return false
	}
	return true
}

func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Sim) postLogin(w http.ResponseWriter, r *http.Request) {
	var in loginInput
	_ = json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.q.Password != "" && in.Password != s.q.Password {
		writeErr(w, http.StatusUnauthorized, "Failed to log in")
		return
	}
	ttl := s.q.TokenTTL
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	// Shaped like a JWT so clients that peek at it see three segments.
	tok := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + randToken(24) + "." + randToken(32)
	s.tokens[tok] = time.Now().Add(ttl)
	writeJSON(w, http.StatusOK, accessTokenDTO{AccessToken: tok, RefreshNonce: randToken(16)})
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
	skip, _ := strconv.ParseBool(query(r, "skipQueue"))
	s.mu.Lock()
	b, ok := s.backupLocked(r.PathValue("id"))
	var id int64
	if ok {
		id = s.runBackupLocked(b, skip)
	}
	s.mu.Unlock()
	if !ok {
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

func (s *Sim) getLog(w http.ResponseWriter, r *http.Request) {
	size := 100
	if v := query(r, "pagesize"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			size = n
		}
	}
	size = min(max(size, 10), 500)
	var offset int64
	if v := query(r, "offset"); v != "" {
		offset, _ = strconv.ParseInt(v, 10, 64)
	}
	s.mu.Lock()
	_, ok := s.backupLocked(r.PathValue("id"))
	rows := s.logs[r.PathValue("id")]
	out := make([]logRow, 0, min(size, len(rows)))
	for i := len(rows) - 1; i >= 0 && len(out) < size; i-- {
		if offset > 0 && rows[i].ID >= offset {
			continue
		}
		out = append(out, rows[i])
	}
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "Backup not found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// taskStateLocked is TaskQueueService.GetTaskInfo.
func (s *Sim) taskStateLocked(id int64) (taskStateDTO, bool) {
	if s.active != nil && s.active.id == id {
		return taskState("Running", id, &taskResult{started: s.active.started}), true
	}
	for _, t := range s.queue {
		if t.id == id {
			return taskState("Waiting", id, nil), true
		}
	}
	res, ok := s.cache[id]
	if !ok {
		return taskStateDTO{}, false
	}
	status := "Completed"
	if res.errMsg != "" {
		status = "Failed"
	}
	return taskState(status, id, &res), true
}

func (s *Sim) getTask(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "Invalid task ID")
		return
	}
	s.mu.Lock()
	dto, ok := s.taskStateLocked(id)
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "No such task found")
		return
	}
	writeJSON(w, http.StatusOK, dto)
}

func (s *Sim) getTasks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := []taskStateDTO{}
	if s.active != nil {
		d, _ := s.taskStateLocked(s.active.id)
		out = append(out, d)
	}
	for _, t := range s.queue {
		out = append(out, taskState("Waiting", t.id, nil))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) cancelTask(how string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "Invalid task ID")
			return
		}
		s.mu.Lock()
		ok := s.cancelLocked(id, how)
		s.mu.Unlock()
		if !ok {
			writeErr(w, http.StatusNotFound, "No such task found")
			return
		}
		writeJSON(w, http.StatusOK, struct{ Status string }{"OK"})
	}
}

// parseTimespan accepts Duplicati-style durations: Go durations ("10s", "5m", "1h30m"),
// plain seconds ("30"), and day suffixes ("1D").
func parseTimespan(v string) (time.Duration, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if d, err := time.ParseDuration(strings.ToLower(v)); err == nil {
		return d, true
	}
	if n, ok := strings.CutSuffix(strings.ToUpper(v), "D"); ok {
		if k, err := strconv.ParseInt(n, 10, 64); err == nil {
			return time.Duration(k) * 24 * time.Hour, true
		}
	}
	return 0, false
}

func (s *Sim) getServerState(w http.ResponseWriter, r *http.Request) {
	if lp, _ := strconv.ParseBool(query(r, "longpoll")); lp {
		last, err := strconv.ParseInt(query(r, "lastEventId"), 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "When activating long poll, the request must include the last event id")
			return
		}
		d, ok := parseTimespan(query(r, "duration"))
		if !ok || d < 10*time.Second || d > time.Hour {
			writeErr(w, http.StatusBadRequest, "Invalid duration, must be between 10 seconds and 1 hour")
			return
		}
		s.mu.Lock()
		ch, same := s.changed, s.lastEventID == last
		s.mu.Unlock()
		if same {
			t := time.NewTimer(d)
			select {
			case <-ch:
			case <-t.C:
			case <-r.Context().Done():
			case <-s.stop:
			}
			t.Stop()
		}
	}
	s.mu.Lock()
	st := s.serverStateLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) postPause(w http.ResponseWriter, r *http.Request) {
	var end time.Time
	if v := query(r, "duration"); v != "" {
		d, ok := parseTimespan(v)
		if !ok || d < 0 {
			writeErr(w, http.StatusBadRequest, "Invalid duration")
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
	writeJSON(w, http.StatusOK, struct{ Status string }{"OK"})
}

func (s *Sim) postResume(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.q.Paused, s.pauseEnd = false, time.Time{}
	s.bumpLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct{ Status string }{"OK"})
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
