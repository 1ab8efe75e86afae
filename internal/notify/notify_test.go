package notify

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPingKindsAndBody(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	base := srv.URL + "/ping/abc-uuid"
	for _, k := range []string{PingStart, PingSuccess, PingFail, PingLog} {
		if err := Ping(context.Background(), nil, base, k, "body-"+k); err != nil {
			t.Fatal(k, err)
		}
	}
	want := []string{
		"POST /ping/abc-uuid/start body-start",
		"POST /ping/abc-uuid body-success",
		"POST /ping/abc-uuid/fail body-fail",
		"POST /ping/abc-uuid/log body-log",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPingErrorsHideTheURL(t *testing.T) {
	// A closed port: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://" + addr + "/ping/very-secret-uuid"
	err = Ping(context.Background(), &http.Client{Timeout: time.Second}, base, PingStart, "")
	if err == nil {
		t.Fatal("want an error from a closed port")
	}
	if strings.Contains(err.Error(), "very-secret-uuid") {
		t.Fatalf("error leaks the URL: %v", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	defer srv.Close()
	err = Ping(context.Background(), nil, srv.URL+"/very-secret-uuid", PingFail, "")
	if err == nil || strings.Contains(err.Error(), "very-secret-uuid") {
		t.Fatalf("want a redacted status error, got %v", err)
	}
}

func TestCommandGetsTheEvent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	var log bytes.Buffer
	e := Event{Stack: "cryptpad", Kind: "failure", Result: "exit-code", ExitStatus: "5", Log: "line one\nline two"}
	argv := []string{"/bin/sh", "-c", `printf '%s|%s|%s|%s|%s' "$BACKUP_STACK" "$BACKUP_EVENT" "$BACKUP_RESULT" "$BACKUP_EXIT_STATUS" "$BACKUP_LOG" > "$0"`, out}
	if err := Command(context.Background(), argv, e, 5*time.Second, &log); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "cryptpad|failure|exit-code|5|line one\nline two"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

func TestCommandTimeoutAndFailure(t *testing.T) {
	var log bytes.Buffer
	start := time.Now()
	err := Command(context.Background(), []string{"/bin/sleep", "10"}, Event{}, 200*time.Millisecond, &log)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("want a bounded timeout error, got %v after %s", err, time.Since(start))
	}
	if err := Command(context.Background(), []string{"/bin/false"}, Event{}, time.Second, &log); err == nil {
		t.Fatal("a failing command must report its failure")
	}
}
