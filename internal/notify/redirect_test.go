package notify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// A ping answered with a redirect must not be followed: the second server would get the
// ping URL's path (the check's secret) and the log excerpt. The error names the Location's
// host, never a path.
func TestPingDoesNotFollowRedirects(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		leaked = append(leaked, r.Method+" "+r.URL.String()+" "+string(b))
		mu.Unlock()
	}))
	defer other.Close()
	otherURL, _ := url.Parse(other.URL)
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var asked int
		first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked++
			mu.Unlock()
			http.Redirect(w, r, other.URL+r.URL.Path, code)
		}))
		for _, client := range []*http.Client{nil, {Timeout: 5 * time.Second}} {
			err := Ping(context.Background(), client, first.URL+"/ping/secret-check-uuid", PingFail, "log excerpt")
			if err == nil {
				t.Fatalf("%d: a redirect counted as a ping", code)
			}
			msg := err.Error()
			if !strings.Contains(msg, "redirect to host "+otherURL.Host) || !strings.Contains(msg, "not followed") {
				t.Errorf("%d: error %q does not name the Location's host %s", code, msg, otherURL.Host)
			}
			if strings.Contains(msg, "secret-check-uuid") {
				t.Errorf("%d: error leaks the ping URL: %q", code, msg)
			}
		}
		first.Close()
		if asked != 2 {
			t.Errorf("%d: the first server was asked %d times, want once per ping (a redirect is not retried)", code, asked)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Fatalf("the redirect target received %q", leaked)
	}
}
