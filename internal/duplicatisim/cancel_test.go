package duplicatisim

import (
	"strings"
	"testing"
	"time"
)

// cancelRoute is the stop route of a release: /stop, or /stopaftercurrentfile before 2.1.2.0.
func cancelRoute(v, how string) string {
	if how == "stop" {
		if p, _ := ProfileFor(v); !p.StopRoute {
			return "stopaftercurrentfile"
		}
	}
	return how
}

func (c *tclient) cancel(id int64, route string) {
	c.t.Helper()
	code, body := c.do("POST", "/api/v1/task/"+itoa(id)+"/"+route, nil)
	if code != 200 || len(body) != 0 {
		c.t.Fatalf("POST task/%d/%s: %d %q, want 200 and an empty body", id, route, code, body)
	}
}

func waitEnded(t *testing.T, s *Sim, i int) Event {
	t.Helper()
	waitFor(t, 5*time.Second, "task end", func() bool { return s.Events()[i].Result != "" })
	return s.Events()[i]
}

// TestCancelQueuedIsNoop: stop/abort of a queued task changes nothing; it runs later.
func TestCancelQueuedIsNoop(t *testing.T) {
	t.Parallel()
	for _, v := range Versions {
		for _, how := range []string{"stop", "abort"} {
			t.Run(v+"/"+how, func(t *testing.T) {
				t.Parallel()
				s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 100 * time.Millisecond}}, Quirks{Version: v, Paused: true})
				id := c.run("1")
				c.cancel(id, cancelRoute(v, how))
				time.Sleep(50 * time.Millisecond)
				if _, st := c.task(id); st.Status != "Waiting" {
					t.Fatalf("after %s: %+v", how, st)
				}
				if st := c.state(); len(st.SchedulerQueueIds) != 1 || st.SchedulerQueueIds[0].Item1 != id {
					t.Fatalf("queue %+v", st.SchedulerQueueIds)
				}
				c.getJSON("POST", "/api/v1/serverstate/resume", 200, nil)
				ev := waitEnded(t, s, 0)
				if ev.Result != "Success" || ev.Started.IsZero() {
					t.Fatalf("event %+v", ev)
				}
				if rows := logRows(t, c, "1", ""); len(rows) != 1 || rows[0].Msg.Interrupted || rows[0].Msg.ParsedResult != "Success" {
					t.Fatalf("rows %+v", rows)
				}
			})
		}
	}
}

// TestCancelEarlyIsLost: before the task's Controller exists the request is lost.
func TestCancelEarlyIsLost(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stop", "abort"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 700 * time.Millisecond}},
				Quirks{NoControllerFor: 400 * time.Millisecond, AbortDelay: 50 * time.Millisecond})
			id := c.run("1")
			waitFor(t, 2*time.Second, "running", func() bool { _, st := c.task(id); return st.Status == "Running" })
			c.cancel(id, how)
			ev := waitEnded(t, s, 0)
			if ev.Result != "Success" || ev.Finished.Sub(ev.Started) < 700*time.Millisecond {
				t.Fatalf("lost %s must not end the run: %+v", how, ev)
			}
		})
	}
	// the default window is 200ms
	s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 600 * time.Millisecond}}, Quirks{AbortDelay: 10 * time.Millisecond})
	id := c.run("1")
	waitFor(t, 2*time.Second, "running", func() bool { _, st := c.task(id); return st.Status == "Running" })
	c.cancel(id, "abort")
	if ev := waitEnded(t, s, 0); ev.Result != "Success" {
		t.Fatalf("abort right after the start landed: %+v", ev)
	}
}

// TestCancelLands: after the Controller exists a stop/abort lands AbortDelay later.
func TestCancelLands(t *testing.T) {
	t.Parallel()
	const dur = 3 * time.Second
	for _, v := range Versions {
		for _, how := range []string{"stop", "abort"} {
			t.Run(v+"/"+how, func(t *testing.T) {
				t.Parallel()
				p, _ := ProfileFor(v)
				s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: dur}}, Quirks{Version: v, NoControllerFor: -1})
				id := c.run("1")
				waitFor(t, 2*time.Second, "running", func() bool { _, st := c.task(id); return st.Status == "Running" })
				asked := time.Now()
				c.cancel(id, cancelRoute(v, how))
				time.Sleep(250 * time.Millisecond)
				if _, st := c.task(id); st.Status != "Running" {
					t.Fatalf("%s landed before AbortDelay: %+v", how, st)
				}
				ev := waitEnded(t, s, 0)
				took := ev.Finished.Sub(asked)
				if took < 480*time.Millisecond || took > 1500*time.Millisecond || ev.Finished.Sub(ev.Started) >= dur {
					t.Fatalf("%s landed after %v: %+v", how, took, ev)
				}
				code, st := c.task(id)
				if p.FinishGap && code == 404 {
					code, st = c.task(id)
				}
				rows := logRows(t, c, "1", "")
				if len(rows) != 1 || !rows[0].Msg.Interrupted {
					t.Fatalf("rows %+v", rows)
				}
				var one struct {
					Backup struct{ Metadata map[string]string }
				}
				c.getJSON("GET", "/api/v1/backup/1", 200, &one)
				md := one.Backup.Metadata
				if md["LastBackupFinished"] != "" || md["LastBackupStarted"] != "" {
					t.Fatalf("an interrupted run wrote LastBackup*: %v", md)
				}
				switch how {
				case "abort":
					wantStatus := "Failed"
					if !p.ThrowFails {
						wantStatus = "Completed"
					}
					if code != 200 || st.Status != wantStatus || ev.Result != "Aborted" || rows[0].Msg.ParsedResult != "Fatal" ||
						md["LastErrorMessage"] != "The operation was canceled." || !metaDateRE.MatchString(md["LastErrorDate"]) {
						t.Fatalf("abort: task %d %+v event %+v row %+v meta %v", code, st, ev, rows[0].Msg, md)
					}
					if p.ThrowFails && (st.ErrorMessage == nil || *st.ErrorMessage != "The operation was canceled.") {
						t.Fatalf("abort ErrorMessage %+v", st)
					}
				case "stop":
					if code != 200 || st.Status != "Completed" || st.ErrorMessage != nil || ev.Result != "Stopped" ||
						rows[0].Msg.ParsedResult != "Warning" || md["LastErrorDate"] != "" ||
						len(rows[0].Msg.Warnings) != 1 || !strings.HasSuffix(rows[0].Msg.Warnings[0], "-CancellationRequested]: Cancellation was requested by user.") ||
						!strings.Contains(rows[0].Message, `"PartialBackup":true`) {
						t.Fatalf("stop: task %d %+v event %+v row %s meta %v", code, st, ev, rows[0].Message, md)
					}
				}
			})
		}
	}
}

func TestCancelPendingAndIgnored(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		q     Quirks
		seq   []string // requests, 100ms apart
		want  string   // Event.Result
		early bool     // must end before its natural end
	}{
		{"stop then abort: the stop is pending", Quirks{}, []string{"stop", "abort"}, "Stopped", true},
		{"abort then stop: the abort is pending", Quirks{}, []string{"abort", "stop"}, "Aborted", true},
		{"abort ignored (#7105)", Quirks{AbortIgnored: true}, []string{"abort", "abort"}, "Success", false},
		{"abort ignored, stop lands", Quirks{AbortIgnored: true}, []string{"abort", "stop"}, "Stopped", true},
		{"natural end comes first", Quirks{AbortDelay: 5 * time.Second}, []string{"abort"}, "Success", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := tc.q
			q.NoControllerFor = -1
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 1500 * time.Millisecond}}, q)
			id := c.run("1")
			waitFor(t, 2*time.Second, "running", func() bool { _, st := c.task(id); return st.Status == "Running" })
			first := time.Now()
			for _, how := range tc.seq {
				c.cancel(id, how)
				time.Sleep(100 * time.Millisecond)
			}
			ev := waitEnded(t, s, 0)
			ran := ev.Finished.Sub(ev.Started)
			if ev.Result != tc.want || tc.early != (ran < 1500*time.Millisecond) {
				t.Fatalf("event %+v (ran %v)", ev, ran)
			}
			if tc.early {
				if landed := ev.Finished.Sub(first); landed > 900*time.Millisecond {
					t.Fatalf("a second request moved the landing: %v", landed)
				}
			}
		})
	}
}

func TestCancelRoutes(t *testing.T) {
	t.Parallel()
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			p, _ := ProfileFor(v)
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 2 * time.Second}}, Quirks{Version: v, NoControllerFor: -1, AbortDelay: -1})
			if code, body := c.do("POST", "/api/v1/task/42/abort", nil); code != 404 || strings.TrimSpace(string(body)) != `{"Error":"No such task found","Code":404}` {
				t.Fatalf("abort unknown: %d %s", code, body)
			}
			id := c.run("1")
			waitFor(t, 2*time.Second, "running", func() bool { _, st := c.task(id); return st.Status == "Running" })
			routes := map[string]bool{"stop": p.StopRoute, "stopaftercurrentfile": !p.StopRoute, "stopnow": !p.StopRoute}
			for route, exists := range routes {
				if exists {
					continue
				}
				if code, body := c.do("POST", "/api/v1/task/"+itoa(id)+"/"+route, nil); code != 404 || len(body) != 0 {
					t.Fatalf("%s %s: %d %q, want 404 and an empty body", v, route, code, body)
				}
			}
			if _, st := c.task(id); st.Status != "Running" {
				t.Fatalf("a missing route did something: %+v", st)
			}
			route := "stop"
			if !p.StopRoute {
				route = "stopnow"
			}
			c.cancel(id, route) // AbortDelay < 0: lands at once
			if ev := s.Events()[0]; ev.Result != "Stopped" {
				t.Fatalf("%s: event %+v", route, ev)
			}
		})
	}
}
