package duplicatisim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

type tclient struct {
	t      *testing.T
	base   string
	tok    string
	host   string
	pw     string            // the server password newTestSim configured
	auth   string            // Authorization header instead of "Bearer <tok>"
	header map[string]string // extra request headers
	nonce  bool              // logins must answer RefreshNonce
	resp   *http.Response    // last response (body already read)
	// hc is the test server's own client: httptest.Server.Close closes the idle
	// connections of http.DefaultTransport, which broke requests of tests running
	// in parallel ("CloseIdleConnections called").
	hc *http.Client
}

const testPassword = "s3cret-pw"

// newTestSim starts a sim (with testPassword unless q sets one) and logs in.
func newTestSim(t *testing.T, backups []Backup, q Quirks) (*Sim, *tclient) {
	t.Helper()
	if q.Password == "" {
		q.Password = testPassword
	}
	s := New(backups, q)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	c := &tclient{t: t, base: srv.URL, pw: q.Password, nonce: s.Profile().RefreshNonce, hc: srv.Client()}
	if code, body := c.login(c.pw); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	return s, c
}

func (c *tclient) login(pw string) (int, []byte) {
	c.t.Helper()
	code, body := c.do("POST", "/api/v1/auth/login", map[string]any{"Password": pw, "RememberMe": false})
	if code == 200 {
		var out struct{ AccessToken, RefreshNonce string }
		if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" || (out.RefreshNonce == "") == c.nonce {
			c.t.Fatalf("login body %s: %v", body, err)
		}
		c.tok = out.AccessToken
	}
	return code, body
}

func (c *tclient) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	switch {
	case c.auth != "":
		req.Header.Set("Authorization", c.auth)
	case c.tok != "":
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.host != "" {
		req.Host = c.host
	}
	hc := c.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.resp = resp
	return resp.StatusCode, b
}

// getJSON fails the test unless the status is want, then decodes into out.
func (c *tclient) getJSON(method, path string, want int, out any) {
	c.t.Helper()
	code, b := c.do(method, path, nil)
	if code != want {
		c.t.Fatalf("%s %s: status %d (%s), want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

type wireTask struct {
	Status                    string
	ID                        int64
	TaskStarted, TaskFinished *string
	ErrorMessage, Exception   *string
}

type wireState struct {
	ActiveTask *struct {
		Item1 int64
		Item2 *string
	}
	ProgramState      string
	SchedulerQueueIds []struct {
		Item1 int64
		Item2 *string
	}
	SuggestedStatusIcon string
	LastEventID         int64
	Type                string
}

func (c *tclient) run(id string) int64 {
	c.t.Helper()
	var out struct {
		Status string
		ID     int64
	}
	c.getJSON("POST", "/api/v1/backup/"+id+"/run", 200, &out)
	if out.Status != "OK" || out.ID == 0 {
		c.t.Fatalf("run %s: %+v", id, out)
	}
	return out.ID
}

func (c *tclient) task(id int64) (int, wireTask) {
	c.t.Helper()
	code, b := c.do("GET", "/api/v1/task/"+itoa(id), nil)
	var w wireTask
	if code == 200 {
		if err := json.Unmarshal(b, &w); err != nil {
			c.t.Fatal(err)
		}
	}
	return code, w
}

func (c *tclient) state() wireState {
	c.t.Helper()
	var st wireState
	c.getJSON("GET", "/api/v1/serverstate", 200, &st)
	return st
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(i int64) string { b, _ := json.Marshal(i); return string(b) }
