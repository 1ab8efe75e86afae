package duplicatisim

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{})
	c.tok = ""
	code, body := c.do("POST", "/sim/quirks", json.RawMessage(`{"RunHangs":true,"QueuedDelay":"250ms","AllowedHosts":["duplicati"],"Password":"pw"}`))
	if code != 200 {
		t.Fatalf("post quirks %d %s", code, body)
	}
	q := s.Quirks()
	if !q.RunHangs || q.QueuedDelay != 250*time.Millisecond || len(q.AllowedHosts) != 1 || q.Password != "pw" || q.Paused {
		t.Fatalf("quirks %+v", q)
	}
	for _, bad := range []string{`{"QueuedDelay":"soon"}`, `{"Nope":true}`} {
		if code, _ := c.do("POST", "/sim/quirks", json.RawMessage(bad)); code != 400 {
			t.Fatalf("bad quirks %s: %d", bad, code)
		}
	}
	var got map[string]any
	c.getJSON("GET", "/sim/quirks", 200, &got)
	if got["QueuedDelay"] != "250ms" || got["RunHangs"] != true || got["TokenTTL"] != "0s" || got["Password"] != "pw" {
		t.Fatalf("get quirks %v", got)
	}
	c.do("POST", "/sim/quirks", json.RawMessage(`{"QueuedDelay":"0s"}`))

	var hold struct {
		Status string
		ID     int64
	}
	c.getJSON("POST", "/sim/hold?backup=2&duration=50ms", 200, &hold)
	if code, _ := c.do("POST", "/sim/hold?duration=x", nil); code != 400 {
		t.Fatalf("bad hold duration: %d", code)
	}
	code, body = c.do("POST", "/sim/backups", map[string]string{"ID": "9", "Name": "new", "Duration": "20ms", "Result": "Warning"})
	if code != 200 {
		t.Fatalf("post backup %d %s", code, body)
	}
	if code, _ := c.do("POST", "/sim/backups", map[string]string{"ID": "9", "Result": "Meh"}); code != 400 {
		t.Fatalf("bad result accepted: %d", code)
	}
	waitFor(t, 2*time.Second, "hold done", func() bool { ev := s.Events(); return len(ev) == 1 && ev[0].Result != "" })
	var evs []Event
	c.getJSON("GET", "/sim/events", 200, &evs)
	if len(evs) != 1 || evs[0].TaskID != hold.ID || evs[0].Operation != "Verify" || evs[0].BackupID != "2" || evs[0].Result != "Success" {
		t.Fatalf("events %+v", evs)
	}
	c.login("pw")
	c.run("9")
	c.tok = ""
	c.getJSON("POST", "/sim/restart", 200, nil)
	c.getJSON("GET", "/sim/events", 200, &evs)
	if len(evs) != 2 || evs[1].Result != "Dropped" {
		t.Fatalf("events after restart %+v", evs)
	}
}

func TestMergeQuirksJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		wantErr bool
		check   func(Quirks) bool
	}{
		{`{}`, false, func(q Quirks) bool { return q.TokenTTL == time.Minute && q.Paused }},
		{`{"Paused":false,"TokenTTL":"2s"}`, false, func(q Quirks) bool { return !q.Paused && q.TokenTTL == 2*time.Second }},
		{`{"AllowedHosts":[]}`, false, func(q Quirks) bool { return len(q.AllowedHosts) == 0 }},
		{`{"RaceGap":true,"StatusGarbage":true,"RestartAtJobEnd":true,"RunHangsBeforeEnqueue":true}`, false,
			func(q Quirks) bool {
				return q.RaceGap && q.StatusGarbage && q.RestartAtJobEnd && q.RunHangsBeforeEnqueue
			}},
		{`{"TokenTTL":"forever"}`, true, nil},
		{`{"Unknown":1}`, true, nil},
		{`[`, true, nil},
	}
	for _, tc := range cases {
		q := Quirks{TokenTTL: time.Minute, Paused: true, AllowedHosts: []string{"x"}}
		err := MergeQuirksJSON(&q, []byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: err %v", tc.in, err)
		}
		if err != nil {
			if q.TokenTTL != time.Minute {
				t.Fatalf("%s: failed merge changed quirks", tc.in)
			}
			continue
		}
		if !tc.check(q) {
			t.Fatalf("%s: %+v", tc.in, q)
		}
	}
}

func TestParseBackupSpec(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    Backup
		wantErr bool
	}{
		{"1=cryptpad:3s:Success", Backup{ID: "1", Name: "cryptpad", Duration: 3 * time.Second, Result: "Success"}, false},
		{"2=nextcloud:2s:Error", Backup{ID: "2", Name: "nextcloud", Duration: 2 * time.Second, Result: "Error"}, false},
		{"3=plain", Backup{ID: "3", Name: "plain"}, false},
		{"4=w:Warning", Backup{ID: "4", Name: "w", Result: "Warning"}, false},
		{"5=a:b:500ms", Backup{ID: "5", Name: "a:b", Duration: 500 * time.Millisecond}, false},
		{"noequals", Backup{}, true},
		{"6=", Backup{}, true},
	}
	for _, tc := range cases {
		got, err := ParseBackupSpec(tc.in)
		if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s: %+v %v", tc.in, got, err)
		}
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	spans := map[time.Duration]string{
		0:                                       "00:00:00",
		13*time.Second + 300*time.Millisecond:   "00:00:13.3000000",
		26*time.Hour + 3*time.Minute:            "1.02:03:00",
		time.Second + 123456789*time.Nanosecond: "00:00:01.1234567",
	}
	for d, want := range spans {
		if got := timeSpan(d); got != want {
			t.Errorf("timeSpan(%v) = %q, want %q", d, got, want)
		}
	}
	ts := time.Date(2026, 8, 22, 10, 15, 44, 900_000_000, time.UTC)
	if got := netUTC(ts); got != "2026-08-22T10:15:44.9Z" {
		t.Errorf("netUTC %q", got)
	}
	if got := netLocal(ts); got != "2026-08-22T10:15:44.9+00:00" {
		t.Errorf("netLocal %q", got)
	}
	if got := metaDate(ts); got != "20260822T101544Z" {
		t.Errorf("metaDate %q", got)
	}
}

// TestWireShapes pins the exact JSON of the main DTOs.
func TestWireShapes(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{Paused: true})
	id := c.run("1")
	_, body := c.do("GET", "/api/v1/task/"+itoa(id), nil)
	want := `{"Status":"Waiting","ID":` + itoa(id) + `,"TaskStarted":null,"TaskFinished":null,"ErrorMessage":null,"Exception":null}`
	if strings.TrimSpace(string(body)) != want {
		t.Fatalf("task %s\nwant %s", body, want)
	}
	_, body = c.do("GET", "/api/v1/serverstate", nil)
	var st map[string]json.RawMessage
	_ = json.Unmarshal(body, &st)
	keys := []string{"ActiveTask", "ProgramState", "SchedulerQueueIds", "ProposedSchedule", "HasWarning", "HasError",
		"SuggestedStatusIcon", "EstimatedPauseEnd", "LastEventID", "LastDataUpdateID", "LastNotificationUpdateID",
		"UpdatedVersion", "UpdaterState", "UpdateDownloadLink", "UpdateDownloadProgress", "Type"}
	pos := -1
	for _, k := range keys {
		i := strings.Index(string(body), `"`+k+`":`)
		if i <= pos {
			t.Fatalf("key %s missing or out of order in %s", k, body)
		}
		pos = i
	}
	if string(st["ActiveTask"]) != "null" || string(st["SchedulerQueueIds"]) != `[{"Item1":`+itoa(id)+`,"Item2":"1"}]` ||
		string(st["EstimatedPauseEnd"]) != `"0001-01-01T00:00:00Z"` || string(st["SuggestedStatusIcon"]) != `"Paused"` {
		t.Fatalf("state %s", body)
	}
	_ = s
}
