// Package livestatus is the one line a running backup shows as `Status:` in
// `systemctl --user status backup@S` (systemd's StatusText): the sd_notify
// STATUS= sender, throttled, and every text it sends, formatted here and
// nowhere else, because `list` reads StatusText back (a text starting with
// "waiting" means waiting).
package livestatus

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/backup-stack/backup-stack/internal/duplicati"
)

// Every is the least gap between two STATUS= messages of one process: the
// manager handles every message in its main loop, and a progress line a
// second is all a person can read anyway.
const Every = 2 * time.Second

// Notifier sends STATUS= to the service manager, at most once per interval;
// the last text set within an interval is sent when the interval ends, so
// the line never stays behind the step. A nil Notifier does nothing: outside
// a unit (NOTIFY_SOCKET unset) New returns nil. Send errors are dropped: a
// status line must never fail a backup.
type Notifier struct {
	send  func(string) error
	every time.Duration

	mu      sync.Mutex
	last    time.Time // when the last message went out
	sent    string
	pending string // set within the interval, not sent yet
	timer   *time.Timer
}

// New returns the Notifier of this process, or nil when it does not run in a
// unit that takes notifications (NOTIFY_SOCKET unset).
func New() *Notifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	return NewWith(func(text string) error {
		_, err := daemon.SdNotify(false, "STATUS="+text)
		return err
	}, Every)
}

// NewWith returns a Notifier that sends with send, at most once per every
// (for tests, and for a sender other than sd_notify).
func NewWith(send func(string) error, every time.Duration) *Notifier {
	return &Notifier{send: send, every: every}
}

// Set makes text the status: now if the last message is an interval old,
// else at the end of the interval (unless another Set replaces it first).
func (n *Notifier) Set(text string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if text == n.sent && n.pending == "" {
		return
	}
	if wait := n.every - time.Since(n.last); wait > 0 {
		n.pending = text
		if n.timer == nil {
			n.timer = time.AfterFunc(wait, n.flushDue)
		}
		return
	}
	n.sendLocked(text)
}

func (n *Notifier) flushDue() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.timer = nil
	if n.pending != "" {
		n.sendLocked(n.pending)
	}
}

// Flush sends a pending text now (a step about to exit must not take its
// last text with it) and stops the timer.
func (n *Notifier) Flush() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
	if n.pending != "" {
		n.sendLocked(n.pending)
	}
}

func (n *Notifier) sendLocked(text string) {
	n.pending = ""
	n.sent, n.last = text, time.Now()
	_ = n.send(text) // never fails a run: a lost status line is only a lost status line
}

// The texts. Keep their shape: `list` shows them, and takes one that starts
// with "waiting" for a backup waiting at its gate.

// WaitingSlot: the gate waits for the single backup slot.
func WaitingSlot(holder string) string {
	return fmt.Sprintf("waiting for the backup slot (held by %s)", holder)
}

// WaitingIdle: the gate waits for Duplicati to be idle.
func WaitingIdle(st duplicati.ServerState) string {
	var why []string
	switch {
	case st.Active != nil && st.Active.BackupID != "":
		why = append(why, fmt.Sprintf("task %d of backup %s running", st.Active.ID, st.Active.BackupID))
	case st.Active != nil:
		why = append(why, fmt.Sprintf("task %d running", st.Active.ID))
	}
	if len(st.Queued) > 0 {
		why = append(why, fmt.Sprintf("%d task(s) queued", len(st.Queued)))
	}
	if st.Paused {
		why = append(why, "Duplicati is paused")
	}
	if len(why) == 0 {
		return "waiting for Duplicati to be idle"
	}
	return "waiting for Duplicati to be idle (" + strings.Join(why, ", ") + ")"
}

// Stopping: the hold and the wait for the containers.
const Stopping = "stopping the stack"

// Snapshotting: snapshot mode, freezing the stack's data while it is down.
const Snapshotting = "freezing the stack's data (snapshot)"

// Resuming: snapshot mode, starting the stack again before the jobs.
const Resuming = "starting the stack again (its data is frozen)"

// Restoring: finish, from the hooks after the job to the containers back.
const Restoring = "restoring the stack"

// Finished is the last text of a run, so that `systemctl status` of the ended
// unit does not go on saying "restoring the stack".
func Finished(outcome string) string { return "finished: " + outcome }

// Job is a running job: with Duplicati's progress when it gave one (the REST
// route), else how long it has run (the exec route cannot know more).
func Job(i, n int, name string, p *duplicati.Progress, running time.Duration) string {
	head := fmt.Sprintf("job %d of %d %q: ", i, n, name)
	if p == nil {
		return head + "running for " + Duration(running)
	}
	parts := []string{fmt.Sprintf("%d %%", int(min(max(p.Fraction, 0), 1)*100))}
	if p.TotalBytes > 0 {
		parts = append(parts, Bytes(p.ProcessedBytes)+" of "+Bytes(p.TotalBytes))
	}
	if p.ProcessedFiles > 0 || p.TotalFiles > 0 {
		parts = append(parts, Thousands(p.ProcessedFiles)+" files")
	}
	if p.Remaining > 0 && !p.StillCounting {
		parts = append(parts, "about "+Duration(p.Remaining)+" left")
	}
	return head + strings.Join(parts, ", ")
}

// Bytes formats a size with binary units and one decimal: "512 B", "1.2 GiB".
func Bytes(b int64) string {
	if b < 1024 {
		return strconv.FormatInt(b, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(b) / 1024
	u := 0
	// Round first, so that 1023.96 KiB reads as 1.0 MiB and not 1024.0 KiB.
	for u < len(units)-1 && v >= 1024-0.05 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

// Thousands formats n with commas between groups of three digits: "1,234".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Duration says a duration the way a person would, to the minute once it is
// one: "40 s", "3 min", "2 h 5 min".
func Duration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(max(d, 0)/time.Second))
	}
	m := int((d + 30*time.Second) / time.Minute)
	switch {
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m%60 == 0:
		return fmt.Sprintf("%d h", m/60)
	}
	return fmt.Sprintf("%d h %d min", m/60, m%60)
}
