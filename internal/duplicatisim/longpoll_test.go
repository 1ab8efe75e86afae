package duplicatisim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLongPollValidation(t *testing.T) {
	t.Parallel()
	_, c := newTestSim(t, testBackups, Quirks{})
	cases := []struct {
		q    string
		code int
		body string // "" = empty body
	}{
		{"longpoll=true&duration=10s", 400, `{"Error":"When activating long poll, the request must include the last event id","Code":400}`},
		{"longpoll=true&lastEventId=1", 400, `{"Error":"When activating long poll, the request must include the duration","Code":400}`},
		{"longpoll=true&lastEventId=1&duration=soon", 400, `{"Error":"When activating long poll, the request must include the duration and it must be a valid time span","Code":400}`},
		{"longpoll=true&lastEventId=1&duration=5s", 400, `{"Error":"The duration must be between 10 seconds and 1 hour","Code":400}`},
		{"longpoll=true&lastEventId=1&duration=2h", 400, `{"Error":"The duration must be between 10 seconds and 1 hour","Code":400}`},
		{"longpoll=true&lastEventId=1&duration=", 400, `{"Error":"The duration must be between 10 seconds and 1 hour","Code":400}`},
		{"longpoll=true&lastEventId=1&duration=5M", 400, `{"Error":"The duration must be between 10 seconds and 1 hour","Code":400}`}, // M is months
		{"longpoll=yes&lastEventId=1&duration=10s", 400, ""},
		{"lastEventId=x", 400, ""},
		{"longpoll=false&duration=bogus", 200, "*"},
	}
	for _, tc := range cases {
		code, body := c.do("GET", "/api/v1/serverstate?"+tc.q, nil)
		got := strings.TrimSpace(string(body))
		if code != tc.code || tc.body != "*" && got != tc.body {
			t.Errorf("%s: %d %s, want %d %s", tc.q, code, got, tc.code, tc.body)
		}
	}
}

// TestLongPollEvents: the long poll returns within a few ms of any event, whatever the case
// of the parameter names.
func TestLongPollEvents(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		params string // %d = last event ID
		setup  func(s *Sim, c *tclient)
		event  func(s *Sim, c *tclient)
	}{
		{"enqueue", "lastEventId=%d&longpoll=true&duration=10s", func(s *Sim, c *tclient) {
			s.SetQuirks(func(q *Quirks) { q.Paused = true })
		}, func(s *Sim, c *tclient) { c.run("1") }},
		{"pause, upper case names", "LASTEVENTID=%d&LongPoll=True&DURATION=1m", nil,
			func(s *Sim, c *tclient) { c.getJSON("POST", "/api/v1/serverstate/pause", 200, nil) }},
		{"resume, mixed case", "lasteventid=%d&LONGPOLL=true&Duration=30", func(s *Sim, c *tclient) {
			c.getJSON("POST", "/api/v1/serverstate/pause", 200, nil)
		}, func(s *Sim, c *tclient) { c.getJSON("POST", "/api/v1/serverstate/resume", 200, nil) }},
		{"task start", "lastEventId=%d&longpoll=true&duration=10s", func(s *Sim, c *tclient) {
			s.SetQuirks(func(q *Quirks) { q.Paused = true })
			c.run("1")
		}, func(s *Sim, c *tclient) { s.SetQuirks(func(q *Quirks) { q.Paused = false }) }},
		{"task end", "lastEventId=%d&longpoll=true&duration=10s", func(s *Sim, c *tclient) {
			c.run("1")
			waitFor(c.t, 2*time.Second, "running", func() bool { return !s.Events()[0].Started.IsZero() })
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 400 * time.Millisecond}}, Quirks{})
			if tc.setup != nil {
				tc.setup(s, c)
			}
			st := c.state()
			var fired time.Time
			if tc.event != nil {
				go func() {
					time.Sleep(200 * time.Millisecond)
					c2 := *c
					fired = time.Now()
					tc.event(s, &c2)
				}()
			}
			start := time.Now()
			var got wireState
			c.getJSON("GET", "/api/v1/serverstate?"+strings.Replace(tc.params, "%d", itoa(st.LastEventID), 1), 200, &got)
			done := time.Now()
			if tc.event == nil {
				ev := s.Events()[0]
				if ev.Finished.IsZero() || done.Sub(ev.Finished) > 30*time.Millisecond {
					t.Fatalf("returned %v after the task ended (%+v)", done.Sub(ev.Finished), ev)
				}
			} else if lag := done.Sub(fired); done.Sub(start) < 150*time.Millisecond || lag > 50*time.Millisecond {
				t.Fatalf("returned after %v, %v after the event", done.Sub(start), lag)
			}
			if got.LastEventID == st.LastEventID {
				t.Fatalf("same LastEventID %d", got.LastEventID)
			}
		})
	}
	t.Run("stale id returns at once", func(t *testing.T) {
		t.Parallel()
		_, c := newTestSim(t, testBackups, Quirks{})
		start := time.Now()
		c.getJSON("GET", "/api/v1/serverstate?lastEventId=0&longpoll=true&duration=10s", 200, nil)
		if time.Since(start) > 100*time.Millisecond {
			t.Fatal("stale lastEventId must not block")
		}
	})
	t.Run("restart drops the connection", func(t *testing.T) {
		t.Parallel()
		s, c := newTestSim(t, testBackups, Quirks{})
		st := c.state()
		// Restart once the long poll is parked: a request that reached the server only
		// after the restart is answered at once (the event IDs started again), which is
		// another case.
		go func() {
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				s.mu.Lock()
				parked := s.parkedPolls > 0
				s.mu.Unlock()
				if parked {
					break
				}
			}
			s.Restart()
		}()
		req, _ := http.NewRequest("GET", c.base+"/api/v1/serverstate?lastEventId="+itoa(st.LastEventID)+"&longpoll=true&duration=10s", nil)
		req.Header.Set("Authorization", "Bearer "+c.tok)
		start := time.Now()
		// a fresh connection: net/http silently retries an idempotent request on a reused one
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("long poll across a restart answered %d", resp.StatusCode)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	})
}
