package duplicatisim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// quirksWire is the JSON form of Quirks for /sim/quirks and --quirks: Go field names,
// durations as Go duration strings. Absent fields are left unchanged by a merge.
type quirksWire struct {
	Version               *string   `json:",omitempty"`
	RunHangs              *bool     `json:",omitempty"`
	RunHangsBeforeEnqueue *bool     `json:",omitempty"`
	QueuedDelay           *string   `json:",omitempty"`
	Paused                *bool     `json:",omitempty"`
	TokenTTL              *string   `json:",omitempty"`
	RestartAtJobEnd       *bool     `json:",omitempty"`
	AllowedHosts          *[]string `json:",omitempty"`
	Password              *string   `json:",omitempty"`
	StatusGarbage         *bool     `json:",omitempty"`
	RaceGap               *bool     `json:",omitempty"`
	NoControllerFor       *string   `json:",omitempty"`
	AbortDelay            *string   `json:",omitempty"`
	AbortIgnored          *bool     `json:",omitempty"`
	PreAuthTokens         *[]string `json:",omitempty"`
	LogLocked             *int      `json:",omitempty"`
	DataFolderMessage     *bool     `json:",omitempty"`
}

// MarshalQuirks returns the JSON form of q (as GET /sim/quirks serves it).
func MarshalQuirks(q Quirks) ([]byte, error) {
	d := func(v time.Duration) *string { s := v.String(); return &s }
	hosts := append([]string{}, q.AllowedHosts...)
	pre := append([]string{}, q.PreAuthTokens...)
	return json.Marshal(quirksWire{
		Version:  &q.Version,
		RunHangs: &q.RunHangs, RunHangsBeforeEnqueue: &q.RunHangsBeforeEnqueue,
		QueuedDelay: d(q.QueuedDelay), Paused: &q.Paused, TokenTTL: d(q.TokenTTL),
		RestartAtJobEnd: &q.RestartAtJobEnd, AllowedHosts: &hosts, Password: &q.Password,
		StatusGarbage: &q.StatusGarbage, RaceGap: &q.RaceGap,
		NoControllerFor: d(q.NoControllerFor), AbortDelay: d(q.AbortDelay), AbortIgnored: &q.AbortIgnored,
		PreAuthTokens: &pre, LogLocked: &q.LogLocked, DataFolderMessage: &q.DataFolderMessage,
	})
}

// MergeQuirksJSON merges a JSON object (fields named as in Quirks, durations as Go
// duration strings such as "1.5s") into q. Unknown fields are an error; so is a result
// that does not pass Validate (without backups).
func MergeQuirksJSON(q *Quirks, data []byte) error {
	var w quirksWire
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("quirks: %w", err)
	}
	n := cloneQuirks(*q)
	setB := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	setD := func(dst *time.Duration, src *string, name string) error {
		if src == nil {
			return nil
		}
		v, err := time.ParseDuration(*src)
		if err != nil {
			return fmt.Errorf("quirks: %s: %w", name, err)
		}
		*dst = v
		return nil
	}
	setB(&n.RunHangs, w.RunHangs)
	setB(&n.RunHangsBeforeEnqueue, w.RunHangsBeforeEnqueue)
	setB(&n.Paused, w.Paused)
	setB(&n.RestartAtJobEnd, w.RestartAtJobEnd)
	setB(&n.StatusGarbage, w.StatusGarbage)
	setB(&n.RaceGap, w.RaceGap)
	setB(&n.AbortIgnored, w.AbortIgnored)
	setB(&n.DataFolderMessage, w.DataFolderMessage)
	for _, d := range []struct {
		dst  *time.Duration
		src  *string
		name string
	}{{&n.QueuedDelay, w.QueuedDelay, "QueuedDelay"}, {&n.TokenTTL, w.TokenTTL, "TokenTTL"},
		{&n.NoControllerFor, w.NoControllerFor, "NoControllerFor"}, {&n.AbortDelay, w.AbortDelay, "AbortDelay"}} {
		if err := setD(d.dst, d.src, d.name); err != nil {
			return err
		}
	}
	if w.AllowedHosts != nil {
		n.AllowedHosts = append([]string(nil), (*w.AllowedHosts)...)
	}
	if w.PreAuthTokens != nil {
		n.PreAuthTokens = append([]string(nil), (*w.PreAuthTokens)...)
	}
	if w.Password != nil {
		n.Password = *w.Password
	}
	if w.Version != nil {
		n.Version = *w.Version
	}
	if w.LogLocked != nil {
		n.LogLocked = *w.LogLocked
	}
	if err := Validate(nil, n); err != nil {
		return fmt.Errorf("quirks: %w", err)
	}
	*q = n
	return nil
}

// backupWire is the JSON form of Backup for POST /sim/backups.
type backupWire struct {
	ID, Name, Duration, Result string
	Sync                       bool
	Sources                    []string // absolute paths a run reads
}

// controlRoutes registers the /sim/... endpoints used by tests in other processes.
// They need no auth and no Host check.
func (s *Sim) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sim/events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Events())
	})
	mux.HandleFunc("GET /sim/reads", func(w http.ResponseWriter, r *http.Request) {
		id, ok := dotnetInt(r.URL.Query().Get("task"), 64)
		if !ok {
			writeErr(w, http.StatusBadRequest, "task must be a task ID")
			return
		}
		boot := -1
		if v := r.URL.Query().Get("boot"); v != "" {
			n, ok := dotnetInt(v, 32)
			if !ok || n < 0 {
				writeErr(w, http.StatusBadRequest, "boot must be a server life (0, 1, ...)")
				return
			}
			boot = int(n)
		}
		rd, found := s.Reads(id, boot)
		if !found {
			writeErr(w, http.StatusNotFound, "No such task found")
			return
		}
		writeJSON(w, http.StatusOK, rd)
	})
	mux.HandleFunc("GET /sim/quirks", func(w http.ResponseWriter, r *http.Request) {
		b, _ := MarshalQuirks(s.Quirks())
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(append(b, '\n'))
	})
	mux.HandleFunc("POST /sim/quirks", func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		var merr error
		err = s.SetQuirks(func(q *Quirks) {
			n := *q
			if merr = MergeQuirksJSON(&n, body); merr == nil {
				*q = n
			}
		})
		if merr == nil && err != nil {
			merr = fmt.Errorf("quirks: %w", err)
		}
		if merr != nil {
			writeErr(w, http.StatusBadRequest, merr.Error())
			return
		}
		b, _ := MarshalQuirks(s.Quirks())
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(append(b, '\n'))
	})
	mux.HandleFunc("POST /sim/hold", func(w http.ResponseWriter, r *http.Request) {
		d := defaultDuration
		if v := r.URL.Query().Get("duration"); v != "" {
			var err error
			if d, err = time.ParseDuration(v); err != nil || d <= 0 {
				writeErr(w, http.StatusBadRequest, "bad duration")
				return
			}
		}
		id := s.HoldQueue(r.URL.Query().Get("backup"), d)
		writeJSON(w, http.StatusOK, taskStartedDTO{Status: "OK", ID: id})
	})
	mux.HandleFunc("GET /sim/tokenfamily", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, struct{ Rows int }{s.TokenFamilyRows()})
	})
	// Stands for ServerUtil reading the JWT key from the server DB and minting a sign-in token.
	mux.HandleFunc("POST /sim/signintoken", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, struct{ SigninToken string }{s.SigninToken()})
	})
	mux.HandleFunc("POST /sim/restart", func(w http.ResponseWriter, r *http.Request) {
		s.Restart()
		writeJSON(w, http.StatusOK, struct{ Status string }{"OK"})
	})
	mux.HandleFunc("POST /sim/backups", func(w http.ResponseWriter, r *http.Request) {
		var b backupWire
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.ID == "" {
			writeErr(w, http.StatusBadRequest, "body must be {\"ID\",\"Name\",\"Duration\",\"Result\",\"Sync\",\"Sources\"}")
			return
		}
		nb := Backup{ID: b.ID, Name: b.Name, Result: b.Result, Sync: b.Sync, Sources: b.Sources}
		if b.Duration != "" {
			d, err := time.ParseDuration(b.Duration)
			if err != nil {
				writeErr(w, http.StatusBadRequest, err.Error())
				return
			}
			nb.Duration = d
		}
		if err := s.SetBackup(nb); err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, struct{ Status string }{"OK"})
	})
}

func validResult(r string) error {
	switch r {
	case "", "Success", "Warning", "Error", "Fatal":
		return nil
	}
	return fmt.Errorf("result %q: want Success, Warning, Error or Fatal", r)
}

// ParseBackupSpec parses "ID=Name[:Duration][:Result][:Sync]", e.g. "1=cryptpad:3s:Success"
// or "2=mirror:1s:Sync" (a Sync-type job, 2.3.1.0 only).
func ParseBackupSpec(spec string) (Backup, error) {
	id, rest, ok := strings.Cut(spec, "=")
	if !ok || id == "" || rest == "" {
		return Backup{}, fmt.Errorf("backup %q: want ID=Name[:Duration][:Result][:Sync]", spec)
	}
	b := Backup{ID: id}
	parts := strings.Split(rest, ":")
	if n := len(parts); n > 1 && parts[n-1] == "Sync" {
		b.Sync, parts = true, parts[:n-1]
	}
	if n := len(parts); n > 1 && parts[n-1] != "" && validResult(parts[n-1]) == nil {
		b.Result, parts = parts[n-1], parts[:n-1]
	}
	if n := len(parts); n > 1 {
		if d, err := time.ParseDuration(parts[n-1]); err == nil && d > 0 {
			b.Duration, parts = d, parts[:n-1]
		}
	}
	b.Name = strings.Join(parts, ":")
	if b.Name == "" {
		return Backup{}, fmt.Errorf("backup %q: empty name", spec)
	}
	return b, nil
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 1<<20))
}

// ListenAndServe listens on addr and serves s.Handler() until ctx is done; it returns
// the bound address at once. On ctx done the server is closed (long polls end too).
func ListenAndServe(ctx context.Context, addr string, s *Sim) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	return ln.Addr(), nil
}
