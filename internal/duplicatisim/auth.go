package duplicatisim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Lifetimes from JWTConfig (JWTProvider.cs).
const (
	refreshLongLived       = 30 * 24 * time.Hour
	refreshShortLived      = 2 * time.Hour
	signinTokenTTL         = 5 * time.Minute
	maxRefreshDrift        = 1
	maxRefreshDriftSeconds = 30 * time.Second
)

// authState is what the real server keeps in its DB: token families (one row per login or
// sign-in), and the tokens signed with its key. All of it survives a restart.
type authState struct {
	access   map[string]accessTok
	families map[string]*family
	refresh  map[string]refreshTok
	signins  map[string]time.Time // sign-in token -> expiry
	famSeq   int
}

type accessTok struct {
	exp    time.Time
	family string
}

type family struct {
	counter int
	updated time.Time
}

type refreshTok struct {
	family     string
	counter    int
	nonce      string
	exp        time.Time
	shortLived bool
}

func newAuthState() authState {
	return authState{
		access:   map[string]accessTok{},
		families: map[string]*family{},
		refresh:  map[string]refreshTok{},
		signins:  map[string]time.Time{},
	}
}

func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwtLike is shaped like a JWT so clients that peek at it see three segments.
func jwtLike() string {
	return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + randToken(24) + "." + randToken(32)
}

// TokenFamilyRows is the number of rows in the server DB's TokenFamily table: one per
// password login and per sign-in (the util's DB sign-in); refreshes add none, a logout or a
// detected re-use removes one.
func (s *Sim) TokenFamilyRows() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auth.families)
}

// SigninToken mints a sign-in token as ServerUtil does from the JWT key in the server DB
// (valid 5 minutes; POST auth/signin trades it for an access token and a token family).
func (s *Sim) SigninToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := jwtLike()
	s.auth.signins[tok] = time.Now().Add(signinTokenTTL)
	return tok
}

func (s *Sim) tokenTTLLocked() time.Duration {
	if s.q.TokenTTL > 0 {
		return s.q.TokenTTL
	}
	return defaultTokenTTL
}

// newFamilyLocked creates a token family and returns its access and refresh tokens.
func (s *Sim) newFamilyLocked(shortLived bool, now time.Time) (access, refresh string, rt refreshTok) {
	s.auth.famSeq++
	id := strconv.Itoa(s.auth.famSeq)
	s.auth.families[id] = &family{counter: 1, updated: now}
	return s.issueLocked(id, 1, shortLived, now)
}

func (s *Sim) issueLocked(fam string, counter int, shortLived bool, now time.Time) (string, string, refreshTok) {
	access := jwtLike()
	s.auth.access[access] = accessTok{exp: now.Add(s.tokenTTLLocked()), family: fam}
	life := refreshLongLived
	if shortLived {
		life = refreshShortLived
	}
	rt := refreshTok{family: fam, counter: counter, nonce: randToken(16), exp: now.Add(life), shortLived: shortLived}
	refresh := jwtLike()
	s.auth.refresh[refresh] = rt
	return access, refresh, rt
}

func (s *Sim) dropFamilyLocked(fam string) {
	delete(s.auth.families, fam)
	for k, a := range s.auth.access {
		if a.family == fam {
			delete(s.auth.access, k)
		}
	}
}

// authorized is the CombinedScheme: "PreAuth <tok>" (2.1.2.0+) or a JWT bearer token whose
// token family still exists.
func (s *Sim) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prof.PreAuth && strings.HasPrefix(h, "PreAuth ") {
		tok := strings.TrimSpace(h[len("PreAuth "):])
		for _, p := range s.q.PreAuthTokens {
			if tok != "" && tok == p {
				return true
			}
		}
		return false
	}
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return false
	}
	tok := strings.TrimSpace(h[7:])
	a, ok := s.auth.access[tok]
	if !ok {
		return false
	}
	if !time.Now().Before(a.exp) {
		delete(s.auth.access, tok)
		return false
	}
	_, ok = s.auth.families[a.family]
	return ok
}

// cookieName is RefreshToken_<port of the Host header> (0 without a port).
func cookieName(r *http.Request) string {
	port := "0"
	if _, p, err := net.SplitHostPort(r.Host); err == nil && p != "" {
		port = p
	}
	return "RefreshToken_" + port
}

func setRefreshCookie(w http.ResponseWriter, r *http.Request, tok string, exp time.Time) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r), Value: tok, Path: "/api/v1/auth/refresh", Domain: host,
		Expires: exp, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// decodeBody decodes a JSON body; a malformed one is a binding failure (400, empty body).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return false
	}
	return true
}

func (s *Sim) writeTokens(w http.ResponseWriter, r *http.Request, access, refresh string, rt refreshTok) {
	setRefreshCookie(w, r, refresh, rt.exp)
	out := accessTokenDTO{AccessToken: access}
	if s.prof.RefreshNonce {
		out.RefreshNonce = &rt.nonce
	}
	writeJSON(w, http.StatusOK, out)
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func (s *Sim) postLogin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password   string
		RememberMe *bool
	}
	if !decodeBody(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// VerifyWebserverPassword: never an empty or whitespace password; a server without a
	// configured one has a random password nobody knows.
	if blank(in.Password) || s.q.Password == "" || in.Password != s.q.Password {
		writeErr(w, http.StatusUnauthorized, "Failed to log in")
		return
	}
	access, refresh, rt := s.newFamilyLocked(in.RememberMe == nil || !*in.RememberMe, time.Now())
	s.writeTokens(w, r, access, refresh, rt)
}

func (s *Sim) postSignin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		SigninToken string
		RememberMe  *bool
	}
	if !decodeBody(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	exp, ok := s.auth.signins[in.SigninToken]
	if !ok {
		writeErr(w, http.StatusUnauthorized, "Failed to sign in")
		return
	}
	if !now.Before(exp) {
		writeErr(w, http.StatusUnauthorized, "Signin token expired")
		return
	}
	access, refresh, rt := s.newFamilyLocked(in.RememberMe == nil || !*in.RememberMe, now)
	s.writeTokens(w, r, access, refresh, rt)
}

// postRefresh is LoginProvider.PerformLoginWithRefreshTokenAsync: the refresh token rotates;
// presenting an old one (beyond a drift of 1 within 30s) invalidates the whole family.
func (s *Sim) postRefresh(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieName(r))
	if err != nil {
		writeErr(w, http.StatusUnauthorized, "Authorization failed due to missing cookie.")
		return
	}
	var in struct{ Nonce string }
	if r.ContentLength != 0 {
		if !decodeBody(w, r, &in) {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	rt, ok := s.auth.refresh[c.Value]
	fail := func() { writeErr(w, http.StatusUnauthorized, "Failed to refresh token") }
	if !ok || !now.Before(rt.exp) || (s.prof.RefreshNonce && in.Nonce != rt.nonce) {
		fail()
		return
	}
	fam, ok := s.auth.families[rt.family]
	if !ok {
		fail()
		return
	}
	drift := 0
	if now.Sub(fam.updated) <= maxRefreshDriftSeconds {
		drift = maxRefreshDrift
	}
	if diff := fam.counter - rt.counter; diff < 0 || diff > drift {
		s.dropFamilyLocked(rt.family) // "Token family re-use detected"
		fail()
		return
	}
	fam.counter++
	fam.updated = now
	access, refresh, nrt := s.issueLocked(rt.family, fam.counter, rt.shortLived, now)
	s.writeTokens(w, r, access, refresh, nrt)
}

func (s *Sim) postLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName(r)); err == nil {
		s.mu.Lock()
		if rt, ok := s.auth.refresh[c.Value]; ok {
			s.dropFamilyLocked(rt.family)
		}
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: "", Path: "/", Expires: time.Unix(0, 0)})
	writeJSON(w, http.StatusOK, struct {
		Success bool `json:"success"`
	}{true})
}
