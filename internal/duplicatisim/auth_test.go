package duplicatisim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func (c *tclient) rows() int {
	c.t.Helper()
	var out struct{ Rows int }
	c.getJSON("GET", "/sim/tokenfamily", 200, &out)
	return out.Rows
}

// refresh posts auth/refresh with the cookie and nonce of the last auth response.
func (c *tclient) refresh(cookie, nonce string) (int, []byte, string, string) {
	c.t.Helper()
	c.header = map[string]string{"Cookie": cookie}
	defer func() { c.header = nil }()
	var body any
	if nonce != "" {
		body = map[string]string{"Nonce": nonce}
	}
	code, b := c.do("POST", "/api/v1/auth/refresh", body)
	return code, b, cookieOf(c), nonceOf(b)
}

func cookieOf(c *tclient) string {
	ck, _, _ := strings.Cut(c.resp.Header.Get("Set-Cookie"), ";")
	return ck
}

func nonceOf(b []byte) string {
	var out struct{ AccessToken, RefreshNonce string }
	_ = json.Unmarshal(b, &out)
	return out.RefreshNonce
}

func TestTokenFamily(t *testing.T) {
	t.Parallel()
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			s, c := newTestSim(t, testBackups, Quirks{Version: v})
			step := func(what string, want int) {
				t.Helper()
				if got, viaHTTP := s.TokenFamilyRows(), c.rows(); got != want || viaHTTP != want {
					t.Fatalf("%s: TokenFamilyRows %d, /sim/tokenfamily %d, want %d", what, got, viaHTTP, want)
				}
			}
			step("after the first login", 1)
			_, body := c.login(c.pw)
			ck, nonce := cookieOf(c), nonceOf(body)
			step("second login", 2)
			c.login("wrong")
			c.login("")
			step("failed logins", 2)
			for range 3 {
				c.getJSON("GET", "/api/v1/serverstate", 200, nil)
			}
			step("requests with a token", 2)

			// sign-in (what the util does from the DB): one row each
			var st struct{ SigninToken string }
			c.getJSON("POST", "/sim/signintoken", 200, &st)
			code, b := c.do("POST", "/api/v1/auth/signin", map[string]any{"SigninToken": st.SigninToken, "RememberMe": false})
			if code != 200 || !strings.Contains(string(b), "AccessToken") {
				t.Fatalf("signin %d %s", code, b)
			}
			step("sign-in", 3)
			if code, b := c.do("POST", "/api/v1/auth/signin", map[string]any{"SigninToken": "forged"}); code != 401 ||
				strings.TrimSpace(string(b)) != `{"Error":"Failed to sign in","Code":401}` {
				t.Fatalf("forged signin %d %s", code, b)
			}
			step("failed sign-in", 3)

			// refresh rotates the token and adds no row
			code, b, ck2, nonce2 := c.refresh(ck, nonce)
			if code != 200 || !strings.HasPrefix(ck2, "RefreshToken_") || ck2 == ck {
				t.Fatalf("refresh %d %s cookie %q", code, b, ck2)
			}
			step("refresh", 3)
			if p := s.Profile(); p.RefreshNonce {
				if code, b, _, _ := c.refresh(ck2, "wrong-nonce"); code != 401 || strings.TrimSpace(string(b)) != `{"Error":"Failed to refresh token","Code":401}` {
					t.Fatalf("refresh with a wrong nonce: %d %s", code, b)
				}
				step("refresh with a wrong nonce", 3)
			}
			var tok struct{ AccessToken string }
			_ = json.Unmarshal(b, &tok)
			code, b, ck3, nonce3 := c.refresh(ck2, nonce2)
			if code != 200 {
				t.Fatalf("second refresh %d %s", code, b)
			}
			// re-using an old token beyond the drift of 1: the family is gone, its tokens too
			if code, b, _, _ := c.refresh(ck, nonce); code != 401 || !strings.Contains(string(b), "Failed to refresh token") {
				t.Fatalf("re-used refresh token: %d %s", code, b)
			}
			step("token re-use detected", 2)
			c.tok = tok.AccessToken
			if code, _ := c.do("GET", "/api/v1/serverstate", nil); code != 401 {
				t.Fatalf("access token of an invalidated family: %d", code)
			}
			if code, _, _, _ := c.refresh(ck3, nonce3); code != 401 {
				t.Fatalf("newest token of an invalidated family: %d", code)
			}
			c.header = nil
			if code, b := c.do("POST", "/api/v1/auth/refresh", nil); code != 401 ||
				strings.TrimSpace(string(b)) != `{"Error":"Authorization failed due to missing cookie.","Code":401}` {
				t.Fatalf("refresh without cookie %d %s", code, b)
			}

			// logout removes the family
			c.login(c.pw)
			logoutCookie := cookieOf(c)
			step("login", 3)
			c.header = map[string]string{"Cookie": logoutCookie}
			code, b = c.do("POST", "/api/v1/auth/refresh/logout", nil)
			c.header = nil
			if code != 200 || strings.TrimSpace(string(b)) != `{"success":true}` {
				t.Fatalf("logout %d %s", code, b)
			}
			step("logout", 2)
		})
	}
}

func TestSigninTokenExpiry(t *testing.T) {
	t.Parallel()
	s, c := newTestSim(t, testBackups, Quirks{})
	tok := s.SigninToken()
	s.mu.Lock()
	s.auth.signins[tok] = time.Now().Add(-time.Second)
	s.mu.Unlock()
	if code, b := c.do("POST", "/api/v1/auth/signin", map[string]any{"SigninToken": tok}); code != 401 ||
		strings.TrimSpace(string(b)) != `{"Error":"Signin token expired","Code":401}` {
		t.Fatalf("expired signin token %d %s", code, b)
	}
}

func TestPreAuth(t *testing.T) {
	t.Parallel()
	const tok = "pre-auth_Token-0123"
	cases := []struct {
		version string
		auth    string
		want    int
	}{
		{"", "PreAuth " + tok, 200},
		{"2.2.0.3", "PreAuth " + tok, 200},
		{"", "PreAuth  " + tok + " ", 200}, // the handler trims
		{"", "PreAuth wrong-token-123", 401},
		{"", "PreAuth ", 401},
		{"", "preauth " + tok, 401}, // the scheme selector is case-sensitive: this is a JWT
		{"", "Bearer " + tok, 401},
		{"2.1.0.5", "PreAuth " + tok, 401}, // no pre-auth tokens before 2.1.2.0
	}
	for _, tc := range cases {
		t.Run(tc.version+"/"+tc.auth, func(t *testing.T) {
			t.Parallel()
			q := Quirks{Version: tc.version}
			if p, _ := ProfileFor(tc.version); p.PreAuth {
				q.PreAuthTokens = []string{"another-token-x", tok}
			}
			s, c := newTestSim(t, testBackups, q)
			before := s.TokenFamilyRows()
			c.auth = tc.auth
			code, body := c.do("GET", "/api/v1/serverstate", nil)
			if code != tc.want {
				t.Fatalf("%q: %d %s, want %d", tc.auth, code, body, tc.want)
			}
			if code == 401 && len(body) != 0 {
				t.Fatalf("401 body %q", body)
			}
			if got := s.TokenFamilyRows(); got != before {
				t.Fatalf("PreAuth request added token families: %d -> %d", before, got)
			}
		})
	}
	// no PreAuthTokens configured: every PreAuth header fails
	_, c := newTestSim(t, testBackups, Quirks{})
	c.auth = "PreAuth " + tok
	if code, _ := c.do("GET", "/api/v1/backups", nil); code != 401 {
		t.Fatalf("unconfigured pre-auth token: %d", code)
	}
	// the bearer scheme name is case-insensitive
	c.auth = "bearer " + c.tok
	if code, _ := c.do("GET", "/api/v1/backups", nil); code != 200 {
		t.Fatalf("lower-case bearer: %d", code)
	}
}
