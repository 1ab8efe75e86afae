package duplicatisim

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestVersionsAndProfiles(t *testing.T) {
	t.Parallel()
	if strings.Join(Versions, ",") != "2.1.0.5,2.2.0.3,2.3.0.4,2.3.1.0" || NewestVersion != "2.3.1.0" {
		t.Fatalf("Versions %v newest %s", Versions, NewestVersion)
	}
	cases := []struct {
		version                            string
		want                               string
		taskTimes, stopRoute, throwFails   bool
		preAuth, dbLocked, syncJobs, dfChk bool
	}{
		{"", "2.3.1.0", true, true, true, true, true, true, true},
		{"2.1.0.5", "2.1.0.5", false, false, false, false, false, false, false},
		{"2.2.0.3", "2.2.0.3", true, true, true, true, false, false, false},
		{"2.3.0.4", "2.3.0.4", true, true, true, true, false, false, false},
		{"2.3.1.0", "2.3.1.0", true, true, true, true, true, true, true},
	}
	for _, tc := range cases {
		p, err := ProfileFor(tc.version)
		if err != nil || p.Version != tc.want || p.TaskTimes != tc.taskTimes || p.StopRoute != tc.stopRoute ||
			p.ThrowFails != tc.throwFails || p.PreAuth != tc.preAuth || p.DatabaseLocked != tc.dbLocked ||
			p.SyncJobs != tc.syncJobs || p.UtilDataFolderCheck != tc.dfChk || !strings.HasPrefix(p.Build, tc.want+" (") {
			t.Fatalf("%q: %+v %v", tc.version, p, err)
		}
	}
	for _, bad := range []string{"2.3.0.109", "latest", "2.1"} {
		if _, err := ProfileFor(bad); err == nil {
			t.Fatalf("ProfileFor(%q) accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		backups []Backup
		q       Quirks
		wantErr string // "" = valid
	}{
		{"zero", nil, Quirks{}, ""},
		{"unknown version", nil, Quirks{Version: "2.0.8.1"}, `version "2.0.8.1"`},
		{"preauth newest", nil, Quirks{PreAuthTokens: []string{"abcdefghij", "A_b-c_D-e_F"}}, ""},
		{"preauth 2.2.0.3", nil, Quirks{Version: "2.2.0.3", PreAuthTokens: []string{"abcdefghij"}}, ""},
		{"preauth 2.1.0.5", nil, Quirks{Version: "2.1.0.5", PreAuthTokens: []string{"abcdefghij"}}, "no pre-authenticated tokens"},
		{"preauth too short", nil, Quirks{PreAuthTokens: []string{"abcdefghi"}}, "at least 10 characters"},
		{"preauth bad char", nil, Quirks{PreAuthTokens: []string{"abcdefghij!"}}, "at least 10 characters"},
		{"preauth space", nil, Quirks{PreAuthTokens: []string{"abcde fghij"}}, "at least 10 characters"},
		{"loglocked newest", nil, Quirks{LogLocked: 2}, ""},
		{"loglocked 2.3.0.4", nil, Quirks{Version: "2.3.0.4", LogLocked: 1}, "never answers DatabaseLocked"},
		{"loglocked negative", nil, Quirks{LogLocked: -1}, "negative"},
		{"sync newest", []Backup{{ID: "1", Name: "m", Sync: true}}, Quirks{}, ""},
		{"sync 2.3.0.4", []Backup{{ID: "1", Name: "m", Sync: true}}, Quirks{Version: "2.3.0.4"}, "no Sync jobs"},
		{"bad result", []Backup{{ID: "1", Name: "m", Result: "Meh"}}, Quirks{}, "want Success"},
	}
	for _, tc := range cases {
		err := Validate(tc.backups, tc.q)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("New accepted an unknown version")
			}
		}()
		New(nil, Quirks{Version: "9.9"})
	}()
	s, _ := newTestSim(t, testBackups, Quirks{Version: "2.3.0.4"})
	if err := s.SetQuirks(func(q *Quirks) { q.LogLocked = 3 }); err == nil || s.Quirks().LogLocked != 0 {
		t.Fatalf("SetQuirks accepted LogLocked in 2.3.0.4: %v", err)
	}
	if err := s.SetBackup(Backup{ID: "9", Name: "m", Sync: true}); err == nil {
		t.Fatal("SetBackup accepted a Sync job in 2.3.0.4")
	}
	if err := s.SetQuirks(func(q *Quirks) { q.Version = "2.3.1.0"; q.LogLocked = 3 }); err != nil || s.Profile().Version != "2.3.1.0" {
		t.Fatalf("switch to 2.3.1.0: %v", err)
	}
}

func TestQuirksJSONNewFields(t *testing.T) {
	t.Parallel()
	var q Quirks
	in := `{"Version":"2.2.0.3","NoControllerFor":"50ms","AbortDelay":"-1s","AbortIgnored":true,"PreAuthTokens":["0123456789"],"DataFolderMessage":true}`
	if err := MergeQuirksJSON(&q, []byte(in)); err != nil {
		t.Fatal(err)
	}
	if q.Version != "2.2.0.3" || q.NoControllerFor != 50*time.Millisecond || q.AbortDelay != -time.Second || !q.AbortIgnored ||
		len(q.PreAuthTokens) != 1 || !q.DataFolderMessage {
		t.Fatalf("merged %+v", q)
	}
	for _, bad := range []string{`{"Version":"3.0"}`, `{"LogLocked":1}`, `{"PreAuthTokens":["short"]}`, `{"AbortDelay":"soon"}`} {
		n := q
		if err := MergeQuirksJSON(&n, []byte(bad)); err == nil {
			t.Fatalf("%s accepted", bad)
		}
		if n.Version != "2.2.0.3" {
			t.Fatalf("%s: failed merge changed quirks", bad)
		}
	}
	b, _ := MarshalQuirks(Quirks{Version: "2.1.0.5", LogLocked: 0})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m["Version"] != "2.1.0.5" || m["AbortDelay"] != "0s" || m["LogLocked"] != float64(0) || m["AbortIgnored"] != false {
		t.Fatalf("marshalled %s", b)
	}
	// and over HTTP: an invalid combination is refused with 400 and changes nothing
	s, c := newTestSim(t, testBackups, Quirks{Version: "2.1.0.5"})
	if code, body := c.do("POST", "/sim/quirks", json.RawMessage(`{"PreAuthTokens":["0123456789"]}`)); code != 400 || !strings.Contains(string(body), "pre-authenticated") {
		t.Fatalf("POST /sim/quirks preauth on 2.1.0.5: %d %s", code, body)
	}
	if len(s.Quirks().PreAuthTokens) != 0 {
		t.Fatal("refused quirks were applied")
	}
}

// TestProfileShapes pins what differs per release in the REST DTOs.
func TestProfileShapes(t *testing.T) {
	t.Parallel()
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			p, _ := ProfileFor(v)
			s, c := newTestSim(t, testBackups, Quirks{Version: v, Paused: true})
			_, body := c.login(c.pw)
			if strings.Contains(string(body), "RefreshNonce") != p.RefreshNonce {
				t.Fatalf("login body %s", body)
			}
			if ck := c.resp.Header.Get("Set-Cookie"); !strings.HasPrefix(ck, "RefreshToken_") || !strings.Contains(ck, "Path=/api/v1/auth/refresh") || !strings.Contains(ck, "HttpOnly") {
				t.Fatalf("refresh cookie %q", ck)
			}
			id := c.run("1")
			_, body = c.do("GET", "/api/v1/task/"+itoa(id), nil)
			want := `{"Status":"Waiting","ID":2,"TaskStarted":null,"TaskFinished":null,"ErrorMessage":null,"Exception":null}`
			if !p.TaskTimes {
				want = `{"Status":"Waiting","ID":2,"ErrorMessage":null,"Exception":null}`
			}
			if strings.TrimSpace(string(body)) != want {
				t.Fatalf("task %s, want %s", body, want)
			}
			_, body = c.do("GET", "/api/v1/serverstate", nil)
			if strings.Contains(string(body), `"Type":"legacystatus"`) != p.StateType {
				t.Fatalf("serverstate %s", body)
			}
			// queued tasks are listed as "Running" by GET tasks
			_, body = c.do("GET", "/api/v1/tasks", nil)
			if !strings.Contains(string(body), `"Status":"Running","ID":2`) {
				t.Fatalf("tasks %s", body)
			}
			// skipQueue: 2.1.0.x always queues at the front
			s.HoldQueue("2", time.Second)
			var out struct{ ID int64 }
			c.getJSON("POST", "/api/v1/backup/3/run", 404, nil)
			s.SetBackup(Backup{ID: "3", Name: "third"})
			c.getJSON("POST", "/api/v1/backup/3/run?SkipQueue=false", 200, &out)
			st := c.state()
			first := st.SchedulerQueueIds[0].Item1
			if p.SkipQueue && (first != id || st.SchedulerQueueIds[2].Item1 != out.ID) || !p.SkipQueue && first != out.ID {
				t.Fatalf("queue order %+v (new %d)", st.SchedulerQueueIds, out.ID)
			}
			if code, _ := c.do("POST", "/api/v1/backup/1/run?skipqueue=maybe", nil); code != 400 {
				t.Fatalf("bad skipqueue: %d", code)
			}
		})
	}
}

// Test2105QueuedThrowAndFinishGap: 2.1.0.x swallows the exception of a queued task and may
// 404 right after a task finished; later releases say "Failed" and never 404.
func Test2105QueuedThrowAndFinishGap(t *testing.T) {
	t.Parallel()
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			p, _ := ProfileFor(v)
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "f", Duration: 100 * time.Millisecond, Result: "Fatal"}}, Quirks{Version: v})
			id := c.run("1")
			waitFor(t, 2*time.Second, "finished", func() bool { return s.Events()[0].Result != "" })
			code, st := c.task(id)
			wantStatus := "Failed"
			if !p.ThrowFails {
				wantStatus = "Completed"
			}
			if p.FinishGap {
				if code != 404 {
					t.Fatalf("2.1.0.x: first poll after the finish: %d, want 404", code)
				}
				code, st = c.task(id)
			}
			if code != 200 || st.Status != wantStatus || (st.ErrorMessage != nil) != p.ThrowFails {
				t.Fatalf("task %d %+v, want %s", code, st, wantStatus)
			}
			if p.ThrowFails && *st.ErrorMessage != fatalMsg {
				t.Fatalf("ErrorMessage %q", *st.ErrorMessage)
			}
			rows := logRows(t, c, "1", "")
			if len(rows) != 1 || rows[0].Msg.ParsedResult != "Fatal" || rows[0].Msg.Interrupted {
				t.Fatalf("rows %+v", rows)
			}
			var one struct {
				Backup struct{ Metadata map[string]string }
			}
			c.getJSON("GET", "/api/v1/backup/1", 200, &one)
			if md := one.Backup.Metadata; md["LastErrorMessage"] != fatalMsg || md["LastBackupFinished"] != "" {
				t.Fatalf("metadata %v", md)
			}
		})
	}
}

var metaDateRE = regexp.MustCompile(`^\d{8}T\d{6}Z$`)

func TestMetadataAndSync(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, []Backup{
		{ID: "1", Name: "ok", Duration: 50 * time.Millisecond, Result: "Warning"},
		{ID: "2", Name: "mirror", Duration: 50 * time.Millisecond, Sync: true},
		{ID: "3", Name: "bad", Duration: 50 * time.Millisecond, Result: "Fatal"},
	}, Quirks{})
	for _, id := range []string{"1", "2", "3"} {
		c.run(id)
	}
	waitFor(t, 3*time.Second, "all done", func() bool {
		ev := s.Events()
		return len(ev) == 3 && ev[2].Result != ""
	})
	meta := func(id string) map[string]string {
		var one struct {
			Backup struct{ Metadata map[string]string }
		}
		c.getJSON("GET", "/api/v1/backup/"+id, 200, &one)
		return one.Backup.Metadata
	}
	m1 := meta("1")
	for _, k := range []string{"LastBackupStarted", "LastBackupFinished", "LastBackupDate"} {
		if !metaDateRE.MatchString(m1[k]) {
			t.Fatalf("%s = %q", k, m1[k])
		}
	}
	if !regexp.MustCompile(`^00:00:00\.\d{7}$`).MatchString(m1["LastBackupDuration"]) || m1["SourceSizeString"] != "10.00 KiB" ||
		m1["BackupListCount"] != "1" || m1["LastErrorDate"] != "" {
		t.Fatalf("metadata of a warning run %v", m1)
	}
	m2 := meta("2")
	if m2["LastBackupFinished"] != "" || !metaDateRE.MatchString(m2["LastSyncFinished"]) || m2["LastSyncDuration"] == "" {
		t.Fatalf("metadata of a sync run %v", m2)
	}
	if rows := logRows(t, c, "2", ""); len(rows) != 0 {
		t.Fatalf("2.3.1.0 sync job wrote a Result row: %+v", rows)
	}
	m3 := meta("3")
	if !metaDateRE.MatchString(m3["LastErrorDate"]) || m3["LastErrorMessage"] != fatalMsg || m3["LastBackupFinished"] != "" {
		t.Fatalf("metadata of a fatal run %v", m3)
	}
	// the same metadata is in GET backups
	var list []struct {
		Backup struct{ Metadata map[string]string }
	}
	c.getJSON("GET", "/api/v1/backups", 200, &list)
	if list[2].Backup.Metadata["LastErrorDate"] != m3["LastErrorDate"] {
		t.Fatalf("backups list metadata %v", list[2].Backup.Metadata)
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	cases := map[float64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1.00 KiB", 10240: "10.00 KiB",
		1023.5 * 1024: "1,023.50 KiB", 3 << 20: "3.00 MiB", 5 << 30: "5.00 GiB", 2 << 40: "2.00 TiB", 1500 << 40: "1,500.00 TiB"}
	for in, want := range cases {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestLogLocked(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{LogLocked: 2})
	want := `{"Error":"The backup database is currently in use by another operation and cannot be accessed concurrently. Please wait for the running operation to finish and try again.","Code":400,"HelpId":"DatabaseLocked"}`
	if code, _ := c.do("GET", "/api/v1/backup/99/log", nil); code != 404 {
		t.Fatalf("unknown backup: %d (must not use up a lock)", code)
	}
	for i := range 2 {
		code, body := c.do("GET", "/api/v1/backup/1/log", nil)
		if code != 400 || strings.TrimSpace(string(body)) != want {
			t.Fatalf("read %d: %d %s", i, code, body)
		}
		if got := s.Quirks().LogLocked; got != 1-i {
			t.Fatalf("LogLocked after %d reads: %d", i+1, got)
		}
	}
	c.getJSON("GET", "/api/v1/backup/1/log", 200, nil)
}

func TestTimespan(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"30", 30 * time.Second, true}, {" 30 ", 30 * time.Second, true}, {"10s", 10 * time.Second, true},
		{"5m", 5 * time.Minute, true}, {"1h30m", 90 * time.Minute, true}, {"1D", 24 * time.Hour, true},
		{"2W", 14 * 24 * time.Hour, true}, {"1M", 30 * 24 * time.Hour, true}, {"1Y", 365 * 24 * time.Hour, true},
		{"1.5s", 0, false}, {"5ms", 0, false}, {"s", 0, false}, {"10x", 0, false}, {"1d", 0, false}, {"bogus", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseTimespan(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseTimespan(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEmptyBodies(t *testing.T) {
	t.Parallel()
	_, c := newTestSim(t, testBackups, Quirks{})
	for _, path := range []string{"/api/v1/serverstate/pause", "/api/v1/serverstate/pause?duration=5m", "/api/v1/serverstate/resume"} {
		code, body := c.do("POST", path, nil)
		if code != 200 || len(body) != 0 {
			t.Fatalf("%s: %d %q, want 200 and an empty body", path, code, body)
		}
	}
	if code, body := c.do("POST", "/api/v1/serverstate/pause?duration=soon", nil); code != 400 ||
		strings.TrimSpace(string(body)) != `{"Error":"The duration must be a valid time span","Code":400}` {
		t.Fatalf("bad pause duration: %d %s", code, body)
	}
	if code, body := c.do("GET", "/api/v1/nosuchthing", nil); code != 404 || len(body) != 0 {
		t.Fatalf("unknown route: %d %q", code, body)
	}
}
