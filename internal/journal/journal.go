// Package journal is a log/slog handler for programs that systemd runs:
// one line per record, prefixed with the syslog priority ("<3>" error,
// "<4>" warning, "<6>" info, "<7>" debug) that the journal reads from a
// unit's stdout and stderr (SyslogLevelPrefix=yes is systemd's default), so
// that `journalctl -p err` finds the failures.
package journal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options of a Handler.
type Options struct {
	// Priorities writes the "<N>" prefix. Use ToJournal to decide: on a
	// terminal or in a file the prefix is noise.
	Priorities bool
	// Time starts each line with the record's time (RFC 3339), for log
	// files; the journal keeps its own timestamps.
	Time bool
	// Prefix starts each message, e.g. "gate nextcloud: ".
	Prefix string
	// Level is the lowest level written; nil means Info.
	Level slog.Leveler
}

// Handler implements slog.Handler.
type Handler struct {
	mu    *sync.Mutex
	w     io.Writer
	opt   Options
	attrs string // preformatted " k=v" of WithAttrs
	group string // "g." of WithGroup
}

// New returns a handler writing to w.
func New(w io.Writer, opt Options) *Handler {
	return &Handler{mu: &sync.Mutex{}, w: w, opt: opt}
}

// Priority maps a slog level to the syslog priority.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// ToJournal reports whether f is connected to the journal: systemd sets
// $JOURNAL_STREAM to "DEVICE:INODE" of the stream it gave the unit, and
// f is that stream only when its device and inode match (a program that
// redirected its stderr must not get prefixes in a file).
func ToJournal(f *os.File) bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return dev == strconv.FormatUint(uint64(st.Dev), 10) && ino == strconv.FormatUint(st.Ino, 10)
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.opt.Level != nil {
		min = h.opt.Level.Level()
	}
	return l >= min
}

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.opt.Priorities {
		fmt.Fprintf(&b, "<%d>", Priority(r.Level))
	}
	if h.opt.Time {
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		b.WriteString(t.Format(time.RFC3339))
		b.WriteByte(' ')
	}
	b.WriteString(h.opt.Prefix)
	// One record is one journal entry: a newline inside the message would
	// split it and lose the priority of the second half.
	b.WriteString(oneLine(r.Message))
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	h2 := *h
	h2.attrs = b.String()
	return &h2
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group + a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\"=\n\r\\") {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", " / ", "\n", " / ", "\r", " / ").Replace(strings.TrimRight(s, "\r\n"))
}
