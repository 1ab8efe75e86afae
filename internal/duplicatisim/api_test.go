package duplicatisim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var testBackups = []Backup{
	{ID: "1", Name: "cryptpad", Duration: 200 * time.Millisecond},
	{ID: "2", Name: "nextcloud", Duration: 200 * time.Millisecond, Result: "Error"},
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const failed = `{"Error":"Failed to log in","Code":401}`
	cases := []struct {
		name      string
		password  string // server password
		login     string
		wantLogin int
	}{
		{"no server password: random, empty login refused", "", "", 401},
		{"no server password: random, any login refused", "", "whatever", 401},
		{"no server password: whitespace refused", "", "   ", 401},
		{"right password", "s3cret", "s3cret", 200},
		{"wrong password", "s3cret", "nope", 401},
		{"empty password against a set one", "s3cret", "", 401},
		{"whitespace server password never logs in", "  ", "  ", 401},
	}
	for _, v := range Versions {
		for _, tc := range cases {
			t.Run(v+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s, c := newTestSim(t, testBackups, Quirks{Version: v})
				if err := s.SetQuirks(func(q *Quirks) { q.Password = tc.password }); err != nil {
					t.Fatal(err)
				}
				c.tok = ""
				code, body := c.login(tc.login)
				if code != tc.wantLogin {
					t.Fatalf("login %d %s", code, body)
				}
				if code == 401 && strings.TrimSpace(string(body)) != failed {
					t.Fatalf("body %s, want %s", body, failed)
				}
				code, body = c.do("GET", "/api/v1/backups", nil)
				if want := map[bool]int{true: 200, false: 401}[tc.wantLogin == 200]; code != want {
					t.Fatalf("backups: %d, want %d", code, want)
				}
				if code == 401 && len(body) != 0 {
					t.Fatalf("401 body must be empty, got %q", body)
				}
			})
		}
	}
	t.Run("malformed body", func(t *testing.T) {
		t.Parallel()
		_, c := newTestSim(t, testBackups, Quirks{})
		if code, body := c.do("POST", "/api/v1/auth/login", json.RawMessage(`{"Password":`)); code != 400 || len(body) != 0 {
			t.Fatalf("malformed login: %d %q", code, body)
		}
	})
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	_, c := newTestSim(t, testBackups, Quirks{TokenTTL: 150 * time.Millisecond})
	c.getJSON("GET", "/api/v1/serverstate", 200, nil)
	time.Sleep(200 * time.Millisecond)
	code, body := c.do("GET", "/api/v1/serverstate", nil)
	if code != 401 || len(body) != 0 {
		t.Fatalf("expired token: %d %q, want 401 and empty body", code, body)
	}
	c.login(c.pw)
	c.getJSON("GET", "/api/v1/serverstate", 200, nil)
	c.tok = "garbage"
	if code, _ := c.do("GET", "/api/v1/backups", nil); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
}

func TestHostHeader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		host    string
		allowed []string
		want    int
	}{
		{"duplicati:8200", nil, 403},
		{"duplicati", []string{"other"}, 403},
		{"localhost:8200", nil, 200},
		{"LOCALHOST", nil, 200},
		{"localhost.localdomain:8200", nil, 200},
		{"10.1.2.3:8200", nil, 200},
		{"[::1]:8200", nil, 200},
		{"[fe80::1]", nil, 200},
		{"duplicati:8200", []string{"duplicati"}, 200},
		{"Duplicati:8200", []string{"duplicati"}, 200},
		{"anything.example", []string{"*"}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			s, c := newTestSim(t, testBackups, Quirks{AllowedHosts: tc.allowed})
			_ = s
			c.host = tc.host
			code, body := c.do("GET", "/api/v1/backups", nil)
			if code != tc.want {
				t.Fatalf("status %d (%s), want %d", code, body, tc.want)
			}
			if tc.want == 403 {
				h, _, _ := strings.Cut(tc.host, ":")
				want := `{"Error":"Invalid hostname: ` + h + `","Code":403}`
				if strings.TrimSpace(string(body)) != want {
					t.Fatalf("body %s, want %s", body, want)
				}
				// login is filtered too
				if code, _ := c.login(c.pw); code != 403 {
					t.Fatalf("login through bad host: %d", code)
				}
			}
		})
	}
}

func TestBackupsShape(t *testing.T) {
	t.Parallel()
	_, c := newTestSim(t, testBackups, Quirks{})
	var list []map[string]json.RawMessage
	c.getJSON("GET", "/api/v1/backups", 200, &list)
	if len(list) != 2 || string(list[0]["Schedule"]) != "null" {
		t.Fatalf("backups: %+v", list)
	}
	var b struct{ ID, Name string }
	_ = json.Unmarshal(list[1]["Backup"], &b)
	if b.ID != "2" || b.Name != "nextcloud" {
		t.Fatalf("second backup %+v", b)
	}
	var one struct {
		Backup struct {
			ID       string
			Metadata map[string]string
		}
	}
	c.getJSON("GET", "/api/v1/backup/1", 200, &one)
	if one.Backup.ID != "1" {
		t.Fatalf("backup/1: %+v", one)
	}
	code, body := c.do("GET", "/api/v1/backup/99", nil)
	if code != 404 || strings.TrimSpace(string(body)) != `{"Error":"Backup not found","Code":404}` {
		t.Fatalf("backup/99: %d %s", code, body)
	}
	code, body = c.do("POST", "/api/v1/backup/99/run", nil)
	if code != 404 || strings.TrimSpace(string(body)) != `{"Error":"Backup not found","Code":404}` {
		t.Fatalf("run 99: %d %s", code, body)
	}
	code, body = c.do("GET", "/api/v1/task/999", nil)
	if code != 404 || strings.TrimSpace(string(body)) != `{"Error":"No such task found","Code":404}` {
		t.Fatalf("task 999: %d %s", code, body)
	}
}

func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	cases := []struct {
		result     string
		wantStatus string
	}{
		{"Success", "Completed"},
		{"Warning", "Completed"},
		{"Error", "Completed"},
		{"Fatal", "Failed"},
	}
	for _, tc := range cases {
		t.Run(tc.result, func(t *testing.T) {
			t.Parallel()
			s, c := newTestSim(t, []Backup{{ID: "7", Name: "b", Duration: 250 * time.Millisecond, Result: tc.result}},
				Quirks{QueuedDelay: 150 * time.Millisecond})
			t0 := time.Now()
			id := c.run("7")
			if _, st := c.task(id); st.Status != "Waiting" || st.TaskStarted != nil {
				t.Fatalf("fresh task: %+v", st)
			}
			waitFor(t, 2*time.Second, "Running", func() bool { _, st := c.task(id); return st.Status == "Running" })
			if _, st := c.task(id); st.TaskStarted == nil || st.TaskFinished != nil {
				t.Fatalf("running task: %+v", st)
			}
			if time.Since(t0) < 150*time.Millisecond {
				t.Fatalf("started before QueuedDelay")
			}
			waitFor(t, 2*time.Second, "end", func() bool { _, st := c.task(id); return st.Status != "Running" })
			_, st := c.task(id)
			if st.Status != tc.wantStatus || st.TaskFinished == nil {
				t.Fatalf("ended task: %+v", st)
			}
			if (st.ErrorMessage != nil) != (tc.wantStatus == "Failed") {
				t.Fatalf("ErrorMessage %v for %s", st.ErrorMessage, tc.result)
			}
			rows := logRows(t, c, "7", "")
			if len(rows) != 1 || rows[0].Type != "Result" || rows[0].Msg.ParsedResult != tc.result ||
				rows[0].Msg.MainOperation != "Backup" || rows[0].Msg.Interrupted {
				t.Fatalf("log rows %+v", rows)
			}
			ev := s.Events()
			if len(ev) != 1 || ev[0].TaskID != id || ev[0].Result != tc.result || ev[0].Operation != "Backup" ||
				ev[0].Started.IsZero() || ev[0].Finished.Before(ev[0].Started) {
				t.Fatalf("events %+v", ev)
			}
			var one struct {
				Backup struct{ Metadata map[string]string }
			}
			c.getJSON("GET", "/api/v1/backup/7", 200, &one)
			md := one.Backup.Metadata
			if tc.result == "Fatal" && (md["LastErrorDate"] == "" || md["LastBackupFinished"] != "") {
				t.Fatalf("fatal metadata %v", md)
			}
			if tc.result != "Fatal" && (md["LastBackupFinished"] == "" || md["LastErrorDate"] != "") {
				t.Fatalf("metadata %v", md)
			}
		})
	}
}

type wireLog struct {
	ID, OperationID, Timestamp int64
	Type, Message              string
	Exception                  *string
	Msg                        struct {
		MainOperation, ParsedResult, BeginTime, EndTime, Duration string
		Interrupted                                               bool
		Warnings, Errors                                          []string
	} `json:"-"`
}

func logRows(t *testing.T, c *tclient, id, q string) []wireLog {
	t.Helper()
	var rows []wireLog
	c.getJSON("GET", "/api/v1/backup/"+id+"/log"+q, 200, &rows)
	for i := range rows {
		if err := json.Unmarshal([]byte(rows[i].Message), &rows[i].Msg); err != nil {
			t.Fatalf("message %q: %v", rows[i].Message, err)
		}
		m := rows[i].Msg
		if m.BeginTime == "" || m.EndTime == "" || m.Duration == "" || m.Warnings == nil || m.Errors == nil {
			t.Fatalf("incomplete message %s", rows[i].Message)
		}
	}
	return rows
}

func TestRunReturnsExistingTask(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{Paused: true})
	a := c.run("1")
	if b := c.run("1"); b != a {
		t.Fatalf("second run of queued backup: %d, want %d", b, a)
	}
	b := c.run("2")
	if b == a {
		t.Fatal("other backup got the same task")
	}
	// skipQueue goes to the front
	s.SetBackup(Backup{ID: "3", Name: "third", Duration: 100 * time.Millisecond})
	var out struct{ ID int64 }
	c.getJSON("POST", "/api/v1/backup/3/run?skipqueue=True", 200, &out)
	st := c.state()
	if st.ProgramState != "Paused" || st.SuggestedStatusIcon != "Paused" || len(st.SchedulerQueueIds) != 3 ||
		st.SchedulerQueueIds[0].Item1 != out.ID || st.SchedulerQueueIds[1].Item1 != a {
		t.Fatalf("queue %+v", st)
	}
	c.getJSON("POST", "/api/v1/serverstate/resume", 200, nil)
	waitFor(t, 2*time.Second, "3 active", func() bool { st := c.state(); return st.ActiveTask != nil && st.ActiveTask.Item1 == out.ID })
	waitFor(t, 2*time.Second, "1 active", func() bool { st := c.state(); return st.ActiveTask != nil && st.ActiveTask.Item1 == a })
	if again := c.run("1"); again != a {
		t.Fatalf("run of active backup: %d, want %d", again, a)
	}
	// a Verify for backup 2 queued ahead: running 2 returns the Verify's task
	hold := s.HoldQueue("2", 50*time.Millisecond)
	if got := c.run("2"); got != b {
		t.Fatalf("backup 2 still queued: got %d want %d (hold %d)", got, b, hold)
	}
}

func TestHoldQueueAndNullBackupID(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{})
	hold := s.HoldQueue("", 400*time.Millisecond)
	waitFor(t, 2*time.Second, "hold active", func() bool { return c.state().ActiveTask != nil })
	id := c.run("1")
	code, body := c.do("GET", "/api/v1/serverstate", nil)
	if code != 200 || !strings.Contains(string(body), `"ActiveTask":{"Item1":`+itoa(hold)+`,"Item2":null}`) {
		t.Fatalf("state %s", body)
	}
	if _, st := c.task(id); st.Status != "Waiting" {
		t.Fatalf("backup behind hold: %+v", st)
	}
	// a queued task without backup ID is not listed
	s.HoldQueue("", time.Millisecond)
	if st := c.state(); len(st.SchedulerQueueIds) != 1 || st.SchedulerQueueIds[0].Item1 != id {
		t.Fatalf("queue %+v", st.SchedulerQueueIds)
	}
	waitFor(t, 3*time.Second, "all done", func() bool {
		ev := s.Events()
		return len(ev) == 3 && ev[1].Result == "Success" && ev[2].Result == "Success"
	})
	ev := s.Events()
	if ev[0].Operation != "Verify" || ev[1].Operation != "Backup" || !ev[1].Started.After(ev[0].Finished.Add(-time.Millisecond)) {
		t.Fatalf("events %+v", ev)
	}
}

func TestPause(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		pause func(s *Sim, c *tclient)
	}{
		{"quirk", func(s *Sim, c *tclient) { s.SetQuirks(func(q *Quirks) { q.Paused = true }) }},
		{"api", func(s *Sim, c *tclient) { c.getJSON("POST", "/api/v1/serverstate/pause", 200, nil) }},
		{"api with duration", func(s *Sim, c *tclient) { c.getJSON("POST", "/api/v1/serverstate/pause?duration=5m", 200, nil) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := newTestSim(t, testBackups, Quirks{})
			tc.pause(s, c)
			id := c.run("1")
			time.Sleep(150 * time.Millisecond)
			if _, st := c.task(id); st.Status != "Waiting" {
				t.Fatalf("paused server started the task: %+v", st)
			}
			if st := c.state(); st.ProgramState != "Paused" {
				t.Fatalf("state %+v", st)
			}
			c.getJSON("POST", "/api/v1/serverstate/resume", 200, nil)
			waitFor(t, 2*time.Second, "completed", func() bool { _, st := c.task(id); return st.Status == "Completed" })
		})
	}
	t.Run("pause expires", func(t *testing.T) {
		t.Parallel()
		_, c := newTestSim(t, testBackups, Quirks{})
		c.getJSON("POST", "/api/v1/serverstate/pause?duration=1", 200, nil)
		if st := c.state(); st.ProgramState != "Paused" {
			t.Fatalf("not paused")
		}
		waitFor(t, 3*time.Second, "unpause", func() bool { return c.state().ProgramState == "Running" })
	})
}

func TestRestartAtJobEnd(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{RestartAtJobEnd: true})
	id := c.run("1")
	waitFor(t, 2*time.Second, "event finished", func() bool { return !s.Events()[0].Finished.IsZero() })
	// access tokens survive the restart; the result cache does not
	if code, _ := c.task(id); code != 404 {
		t.Fatalf("task after restart: %d, want 404", code)
	}
	if rows := logRows(t, c, "1", ""); len(rows) != 1 || rows[0].Msg.ParsedResult != "Success" {
		t.Fatalf("log row must be written: %+v", rows)
	}
	code, body := c.do("GET", "/api/v1/progressstate", nil)
	if code != 404 || strings.TrimSpace(string(body)) != `{"Error":"No active backup","Code":404}` {
		t.Fatalf("progress after restart %d %s", code, body)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{})
	a := c.run("1")
	b := c.run("2")
	if a != 2 || b != 3 {
		t.Fatalf("a fresh server's first tasks: %d, %d, want 2, 3", a, b)
	}
	waitFor(t, 2*time.Second, "active", func() bool { _, st := c.task(a); return st.Status == "Running" })
	rowsBefore := s.TokenFamilyRows()
	s.Restart()
	// no new login: the access token survives
	for _, id := range []int64{a, b} {
		if code, _ := c.task(id); code != 404 {
			t.Fatalf("task %d after restart: %d", id, code)
		}
	}
	st := c.state()
	if st.ActiveTask != nil || len(st.SchedulerQueueIds) != 0 {
		t.Fatalf("state after restart %+v", st)
	}
	if st.LastEventID != 1 {
		t.Fatalf("LastEventID after restart: %d, want 1 (in-memory counter restarts)", st.LastEventID)
	}
	for _, e := range s.Events() {
		if e.Result != "Dropped" || !e.Finished.IsZero() || e.Boot != 0 {
			t.Fatalf("event %+v", e)
		}
	}
	if n := c.run("1"); n != 2 {
		t.Fatalf("first task after restart: %d, want 2", n)
	}
	if ev := s.Events(); len(ev) != 3 || ev[2].TaskID != 2 || ev[2].Boot != 1 || ev[0].TaskID != 2 || ev[0].Boot != 0 {
		t.Fatalf("events %+v", ev)
	}
	if got := s.TokenFamilyRows(); got != rowsBefore {
		t.Fatalf("token families after restart: %d, want %d", got, rowsBefore)
	}
}

func TestRaceGap(t *testing.T) {
	t.Parallel()
	for _, gap := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[gap], func(t *testing.T) {
			t.Parallel()
			_, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 2 * time.Second}},
				Quirks{RaceGap: gap, QueuedDelay: 100 * time.Millisecond})
			id := c.run("1")
			sawGap := false
			waitFor(t, 2*time.Second, "active", func() bool {
				st := c.state()
				if st.ActiveTask != nil && st.ActiveTask.Item1 == id {
					return true
				}
				if len(st.SchedulerQueueIds) == 0 {
					sawGap = true
				}
				return false
			})
			if sawGap != gap {
				t.Fatalf("saw gap = %v, want %v", sawGap, gap)
			}
			if st := c.state(); st.ActiveTask == nil {
				t.Fatal("gap must last for one response only")
			}
		})
	}
}

func TestLongPoll(t *testing.T) {
	t.Parallel()
	_, c := newTestSim(t, testBackups, Quirks{Paused: true})
	for _, d := range []string{"5s", "2h", "bogus", ""} {
		code, _ := c.do("GET", "/api/v1/serverstate?lastEventId=1&longpoll=true&duration="+d, nil)
		if code != 400 {
			t.Fatalf("duration %q: %d, want 400", d, code)
		}
	}
	st := c.state()
	// stale id: returns at once
	start := time.Now()
	c.getJSON("GET", "/api/v1/serverstate?lastEventId=0&longpoll=true&duration=10s", 200, nil)
	if time.Since(start) > time.Second {
		t.Fatal("stale lastEventId must not block")
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		c2 := *c
		c2.do("POST", "/api/v1/backup/1/run", nil)
	}()
	start = time.Now()
	var got wireState
	c.getJSON("GET", "/api/v1/serverstate?lastEventId="+itoa(st.LastEventID)+"&longpoll=true&duration=10s", 200, &got)
	el := time.Since(start)
	if el < 150*time.Millisecond || el > 2*time.Second {
		t.Fatalf("long poll returned after %v", el)
	}
	if got.LastEventID == st.LastEventID || len(got.SchedulerQueueIds) != 1 || got.Type != "legacystatus" {
		t.Fatalf("long poll state %+v", got)
	}
}

func TestLogNewestFirstAndPageSize(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{})
	for range 12 {
		s.HoldQueue("1", 5*time.Millisecond)
	}
	waitFor(t, 3*time.Second, "12 done", func() bool {
		ev := s.Events()
		return len(ev) == 12 && ev[11].Result != ""
	})
	cases := []struct {
		q    string
		want int
	}{
		{"", 12},
		{"?pagesize=1", 10},
		{"?pagesize=10", 10},
		{"?PageSize=11", 11},
		{"?pagesize=1000", 12},
	}
	for _, tc := range cases {
		rows := logRows(t, c, "1", tc.q)
		if len(rows) != tc.want {
			t.Fatalf("%s: %d rows, want %d", tc.q, len(rows), tc.want)
		}
		for i := 1; i < len(rows); i++ {
			if rows[i].ID >= rows[i-1].ID {
				t.Fatalf("%s: not newest first: %d then %d", tc.q, rows[i-1].ID, rows[i].ID)
			}
		}
		if rows[0].Msg.MainOperation != "Test" {
			t.Fatalf("verify row %+v", rows[0].Msg)
		}
	}
	all := logRows(t, c, "1", "")
	if rows := logRows(t, c, "1", "?offset="+itoa(all[1].ID)); len(rows) != 10 || rows[0].ID != all[2].ID {
		t.Fatalf("offset: %+v", rows)
	}
	if rows := logRows(t, c, "2", ""); len(rows) != 0 {
		t.Fatalf("backup 2 has rows %+v", rows)
	}
}

func TestProgressState(t *testing.T) {
	t.Parallel()
	_, c := newTestSim(t, testBackups, Quirks{})
	code, body := c.do("GET", "/api/v1/progressstate", nil)
	if code != 404 || strings.TrimSpace(string(body)) != `{"Error":"No active backup","Code":404}` {
		t.Fatalf("before any task: %d %s", code, body)
	}
	id := c.run("1")
	type prog struct {
		BackupID        string
		TaskID          int64
		Phase           string
		OverallProgress float64
	}
	waitFor(t, 2*time.Second, "progress", func() bool {
		var p prog
		code, b := c.do("GET", "/api/v1/progressstate", nil)
		_ = json.Unmarshal(b, &p)
		return code == 200 && p.Phase == "Backup_ProcessingFiles" && p.TaskID == id && p.BackupID == "1"
	})
	waitFor(t, 2*time.Second, "complete", func() bool {
		var p prog
		c.getJSON("GET", "/api/v1/progressstate", 200, &p)
		return p.Phase == "Backup_Complete" && p.OverallProgress == 1 && p.TaskID == id
	})
}

func TestHealth(t *testing.T) {
	t.Parallel()
	_, c := newTestSim(t, testBackups, Quirks{})
	c.tok = ""
	c.host = "not-allowed"
	if code, body := c.do("GET", "/health", nil); code != 200 || string(body) != "Healthy" {
		t.Fatalf("health %d %s", code, body)
	}
}
