package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// conn is ServerUtil's Connection: bearer token against <hosturl>api/v1/.
type conn struct {
	o        *output
	host     string // hosturl as .NET Uri.ToString() prints it (trailing slash)
	password string
	hc       *http.Client
	token    string
}

// normalizeHostURL returns the URL as Uri.ToString() prints it.
func normalizeHostURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("Cannot parse argument '%s' for option '--hosturl' as expected type 'System.Uri'.", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}

// connect prints the connecting line and logs in (Connection.ConnectAsync).
func connect(o *output, host, password string) (*conn, error) {
	c := &conn{o: o, host: host, password: password, hc: &http.Client{Timeout: 100 * time.Second}}
	return c, c.login()
}

func (c *conn) login() error {
	c.o.msg("Connecting to %s...", c.host)
	body, _ := json.Marshal(map[string]any{"Password": c.password, "RememberMe": false})
	resp, err := c.hc.Post(c.host+"api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return userError{"Failed to connect to server: " + netMessage(err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return userError{"Failed to connect to server: " + statusMessage(resp)}
	}
	var tok struct{ AccessToken string }
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		return userError{"Failed to connect to server: invalid login response"}
	}
	c.token = tok.AccessToken
	return nil
}

// call does one authenticated API request; failures are HttpRequestExceptions (exit 1).
func (c *conn) call(method, path string, out any) error {
	req, err := http.NewRequest(method, c.host+"api/v1/"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return dotnetError{"System.Net.Http.HttpRequestException", netMessage(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return dotnetError{"System.Net.Http.HttpRequestException", err.Error()}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return dotnetError{"System.Net.Http.HttpRequestException", statusMessage(resp)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return dotnetError{"System.Text.Json.JsonException", err.Error()}
	}
	return nil
}

func statusMessage(resp *http.Response) string {
	return fmt.Sprintf("Response status code does not indicate success: %d (%s).", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// netMessage words a transport error like .NET's SocketException/HttpRequestException.
func netMessage(err error) string {
	var ue *url.Error
	hostport := ""
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			hostport = u.Host
		}
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("Connection refused (%s)", hostport)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("Name or service not known (%s)", hostport)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("Connection reset by peer (%s)", hostport)
	}
	if ue != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

type wireTuple struct {
	Item1 int64
	Item2 *string
}

type wireServerState struct {
	ActiveTask        *wireTuple
	ProgramState      string
	SchedulerQueueIds []wireTuple
}

type wireBackup struct {
	ID, Name, Description string
	Metadata              map[string]string
}

type wireBackupEntry struct {
	Backup   wireBackup
	Schedule json.RawMessage
}

func (c *conn) serverState() (wireServerState, error) {
	var st wireServerState
	return st, c.call("GET", "serverstate", &st)
}

func (c *conn) listBackups() ([]wireBackupEntry, error) {
	var l []wireBackupEntry
	return l, c.call("GET", "backups", &l)
}

// simQuirks reads the simulator's control endpoint; the real util has no such thing.
// Any failure means "no quirks".
type simQuirks struct {
	RunHangs, RunHangsBeforeEnqueue, StatusGarbage bool
}

func (c *conn) quirks() simQuirks {
	var q simQuirks
	resp, err := c.hc.Get(c.host + "sim/quirks")
	if err != nil {
		return q
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_ = json.NewDecoder(resp.Body).Decode(&q)
	}
	return q
}
