// Package notify tells people and monitors how a backup went: it runs the
// configured notification commands and pings a healthchecks.io-style URL.
// Neither may ever fail a backup, and the ping URL never reaches a log.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Event is what happened to a backup.
type Event struct {
	Stack string
	// Kind is "failure", "success" or "test".
	Kind string
	// Result is systemd's Result= of backup@<stack>.service ("success",
	// "exit-code", "signal", "timeout" ...), or "test".
	Result     string
	ExitStatus string
	// Log is the last lines of the backup's log.
	Log string
	// Reason says in words why a backup failed ("" when it did not).
	Reason string
}

// Env returns the environment variables a notification command gets.
func (e Event) Env() []string {
	host, _ := os.Hostname()
	return []string{
		"BACKUP_STACK=" + e.Stack,
		"BACKUP_EVENT=" + e.Kind,
		"BACKUP_RESULT=" + e.Result,
		"BACKUP_EXIT_STATUS=" + e.ExitStatus,
		"BACKUP_UNIT=backup@" + e.Stack + ".service",
		"BACKUP_HOST=" + host,
		"BACKUP_LOG=" + e.Log,
		"BACKUP_REASON=" + e.Reason,
	}
}

// Command runs argv with the event in its environment, bounded by timeout.
// Its output goes to w (the journal).
func Command(ctx context.Context, argv []string, e Event, timeout time.Duration, w io.Writer) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), e.Env()...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		if cctx.Err() != nil {
			return fmt.Errorf("%s: no answer within %s", argv[0], timeout)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}

// Ping kinds of a healthchecks.io-style check.
const (
	PingStart   = "start"
	PingSuccess = "success"
	PingFail    = "fail"
	PingLog     = "log"
)

// PingURL returns the URL for a ping kind: base/start, base, base/fail,
// base/log (the healthchecks.io convention).
func PingURL(base, kind string) string {
	base = strings.TrimRight(base, "/")
	if kind == PingSuccess {
		return base
	}
	return base + "/" + kind
}

// Ping sends one ping with body (a short log excerpt) and retries once.
// Its error never contains the URL, which is as good as a password.
// Redirects are never followed, whatever client is given: the next request
// would carry the ping URL's path (the check's secret) and the log excerpt
// to whatever host the Location names. A 3xx answer is an error naming the
// Location's host only.
func Ping(ctx context.Context, client *http.Client, base, kind, body string) error {
	c := http.Client{Timeout: 10 * time.Second}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if len(body) > 10000 {
		body = body[len(body)-10000:]
	}
	var last error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, PingURL(base, kind), bytes.NewBufferString(body))
		if err != nil {
			return errors.New("invalid healthcheck url")
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := c.Do(req)
		if err != nil {
			last = redact(err)
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		if resp.StatusCode/100 == 3 {
			// Asking again would be redirected again.
			return fmt.Errorf("healthcheck answered %s, a redirect %s; redirects are not followed (the ping URL would go along): set the healthcheck url to the final address", resp.Status, redirectTarget(req.URL, resp.Header.Get("Location")))
		}
		last = fmt.Errorf("healthcheck answered %s", resp.Status)
	}
	return last
}

// redact drops the URL from an HTTP client error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("healthcheck %s: %w", ue.Op, ue.Err)
	}
	return errors.New("healthcheck request failed")
}

// redirectTarget names where a Location points: its host only, since its
// path may hold a check's secret like the ping URL's.
func redirectTarget(from *url.URL, location string) string {
	if location == "" {
		return "without a Location"
	}
	to, err := from.Parse(location)
	switch {
	case err != nil:
		return "to an unreadable Location"
	case to.Host == "":
		return "to a Location without a host"
	case strings.EqualFold(to.Host, from.Host) && to.Scheme != from.Scheme:
		return "to " + to.Scheme + "://" + to.Host
	}
	return "to host " + to.Host
}
