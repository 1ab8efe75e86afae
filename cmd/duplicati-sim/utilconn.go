package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

// conn is ServerUtil's Connection: bearer token against <hosturl>api/v1/.
type conn struct {
	o        *output
	host     string // hosturl as .NET Uri.ToString() prints it (trailing slash)
	password string // "" = none given
	prof     duplicatisim.Profile
	store    *settingsStore // the util's settings file (refresh tokens)
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

func newConn(o *output, host, password string, prof duplicatisim.Profile, store *settingsStore) *conn {
	return &conn{o: o, host: host, password: password, prof: prof, store: store,
		hc: &http.Client{Timeout: 100 * time.Second}}
}

// connect is Connection.ConnectAsync: print the connecting line, then try a stored refresh
// token, then a sign-in token from the server DB (only without --password, except 2.1.0.x),
// then the password (prompting when none was given).
func (c *conn) connect() error {
	c.o.msg("Connecting to %s...", c.host)
	if rt := c.store.refreshToken(c.host); rt != "" {
		err := c.authenticate(c.refreshRequest(rt), true)
		if err == nil {
			return nil
		}
		c.o.msg("Failed to use refresh token: %s", exMessage(err))
	}
	if c.prof.UtilSigninAlways || blank(c.password) {
		err := c.signin()
		if err == nil {
			return nil
		}
		c.o.msg("Failed to obtain a signin token: %s", exMessage(err))
	}
	pw := c.password
	if blank(pw) {
		var err error
		if pw, err = readSecret(c.o, "Enter server password: "); err != nil {
			return userError{"Failed to connect to server: " + exMessage(err)}
		}
	}
	if blank(pw) {
		return userError{"Failed to connect to server: Password is required"}
	}
	body, _ := json.Marshal(map[string]any{"Password": pw, "RememberMe": false})
	req, _ := http.NewRequest("POST", c.host+"api/v1/auth/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if err := c.authenticate(req, c.prof.UtilStoresRefresh); err != nil {
		return userError{"Failed to connect to server: " + exMessage(err)}
	}
	return nil
}

// signin stands for reading the JWT key from the server DB (the sim's /sim/signintoken) and
// POST auth/signin. The real util reads the DB locally; a server that cannot be reached
// fails at auth/signin with the same transport error.
func (c *conn) signin() error {
	resp, err := c.hc.Post(c.host+"sim/signintoken", "application/json", nil)
	if err != nil {
		return dotnetError{"System.Net.Http.HttpRequestException", netMessage(err)}
	}
	var st struct{ SigninToken string }
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.SigninToken == "" {
		return dotnetError{"System.InvalidOperationException", "Failed to deserialize JWTConfig"}
	}
	body, _ := json.Marshal(map[string]any{"SigninToken": st.SigninToken, "RememberMe": false})
	req, _ := http.NewRequest("POST", c.host+"api/v1/auth/signin", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	return c.authenticate(req, c.prof.UtilStoresRefresh)
}

func (c *conn) refreshRequest(tok string) *http.Request {
	req, _ := http.NewRequest("POST", c.host+"api/v1/auth/refresh", nil)
	port := "0"
	if u, err := url.Parse(c.host); err == nil {
		port = u.Port()
		if port == "" {
			port = map[string]string{"https": "443"}[u.Scheme]
			if port == "" {
				port = "80"
			}
		}
	}
	req.Header.Set("Cookie", "RefreshToken_"+port+"="+tok)
	if nonce := c.store.refreshNonce(c.host); nonce != "" {
		body, _ := json.Marshal(map[string]string{"Nonce": nonce})
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	return req
}

// authenticate sends an auth request (ParseAuthResponseAsync) and keeps the access token;
// with save it stores the rotated refresh token in the settings file (Settings.Save).
func (c *conn) authenticate(req *http.Request, save bool) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return dotnetError{"System.Net.Http.HttpRequestException", netMessage(err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := ensureSuccess(resp, b); err != nil {
		return err
	}
	var tok map[string]any
	if err := json.Unmarshal(b, &tok); err != nil || tok == nil {
		return dotnetError{"System.InvalidOperationException", "Failed to parse response"}
	}
	access, _ := tok["AccessToken"].(string)
	if access == "" {
		return dotnetError{"System.InvalidOperationException", "Failed to get access token"}
	}
	nonce, _ := tok["RefreshNonce"].(string)
	refresh := ""
	for _, sc := range resp.Header.Values("Set-Cookie") {
		for _, part := range strings.Split(sc, ";") {
			if strings.HasPrefix(part, "RefreshToken_") && refresh == "" {
				_, refresh, _ = strings.Cut(part, "=")
			}
		}
	}
	isRefresh := strings.HasSuffix(req.URL.Path, "/auth/refresh")
	if isRefresh && refresh == "" {
		return dotnetError{"System.InvalidOperationException", "Failed to get refresh token"}
	}
	if (save || isRefresh) && refresh != "" {
		if err := c.store.save(c.o, c.host, refresh, nonce); err != nil {
			return err
		}
	}
	c.token = access
	return nil
}

// ensureSuccess is EnsureSuccessStatusCodeWithParsingAsync.
func ensureSuccess(resp *http.Response, body []byte) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	content := string(body)
	if strings.TrimSpace(content) == "" {
		return dotnetError{"System.Net.Http.HttpRequestException", statusMessage(resp)}
	}
	var v any
	if err := json.Unmarshal(body, &v); err == nil && v != nil {
		if obj, ok := v.(map[string]any); ok {
			msg, okMsg := obj["Error"].(string)
			if obj["Error"] == nil {
				okMsg = true
			}
			code, okCode := 0.0, true
			if raw, has := obj["Code"]; has && raw != nil {
				code, okCode = raw.(float64)
				okCode = okCode && code == float64(int32(code))
			}
			if okMsg && okCode {
				return userError{fmt.Sprintf("Server error (%d): %s", int(code), msg)}
			}
		}
	}
	return userError{fmt.Sprintf("Failed to parse response (%s): %s", statusCodeName(resp.StatusCode), content)}
}

// statusCodeName is HttpStatusCode.ToString().
func statusCodeName(code int) string {
	names := map[int]string{400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
		405: "MethodNotAllowed", 409: "Conflict", 500: "InternalServerError", 502: "BadGateway",
		503: "ServiceUnavailable", 504: "GatewayTimeout"}
	if n, ok := names[code]; ok {
		return n
	}
	return strconv.Itoa(code)
}

// call does one authenticated API request through ensureSuccess.
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
	if err := ensureSuccess(resp, b); err != nil {
		return err
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
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "An error occurred while sending the request."
	}
	if ue != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

const consoleRedirected = "Cannot read keys when either application does not have a console or when console input has been redirected. Try Console.Read."

// readSecret is ReadSecretFromConsole: the prompt, then Console.ReadKey, which throws when
// stdin is not a terminal. On a terminal it reads one line.
func readSecret(o *output, prompt string) (string, error) {
	o.write(prompt)
	if !stdinIsTerminal() {
		return "", dotnetError{"System.InvalidOperationException", consoleRedirected}
	}
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Fprintln(o.w)
	return strings.TrimRight(line, "\r\n"), nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

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

// simQuirks is what the stand-in reads from the simulator's control endpoint (the real util
// has no such thing): the release to imitate and the util quirks. Any failure means none
// (the newest release).
type simQuirks struct {
	Version                                        string
	RunHangs, RunHangsBeforeEnqueue, StatusGarbage bool
	DataFolderMessage                              bool
}

func fetchQuirks(host string) simQuirks {
	var q simQuirks
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(host + "sim/quirks")
	if err != nil {
		return q
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_ = json.NewDecoder(resp.Body).Decode(&q)
	}
	return q
}
