package logread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// dayLayout is the date in a log_dir file name (backup-<stack>-<day>.log).
const dayLayout = "2006-01-02"

// Files reads one stack's log_dir files, which the helper writes with one
// RFC 3339 timestamp at the start of each line.
type Files struct {
	Dir, Stack string
	// Open opens a file of Dir for reading. The helper's own opener refuses
	// files another user could have planted; nil is os.Open.
	Open func(dir, name string) (*os.File, error)
	// Poll is how often Follow looks for new lines (0 = 500ms).
	Poll time.Duration
}

// FileQuery selects lines of the files.
type FileQuery struct {
	// Since drops lines stamped before it (zero: none), and the files of
	// days before its day.
	Since time.Time
	// Last > 0 shows only the last Last lines of what is there now.
	Last int
	// Follow keeps reading what is appended, also to the files of later
	// days, until the context ends.
	Follow bool
}

// Lines calls emit with every line q selects, oldest file first, as it is
// in the file (timestamp first). With q.Follow it returns nil when ctx ends.
func (f Files) Lines(ctx context.Context, q FileQuery, emit func(string)) error {
	t := &tail{f: f, q: q, offsets: map[string]int64{}}
	var first []string
	if err := t.poll(func(l string) { first = append(first, l) }); err != nil {
		return err
	}
	if q.Last > 0 && len(first) > q.Last {
		first = first[len(first)-q.Last:]
	}
	for _, l := range first {
		emit(l)
	}
	if !q.Follow {
		return nil
	}
	every := f.Poll
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := t.poll(emit); err != nil {
				return err
			}
		}
	}
}

// tail remembers how far each file was read.
type tail struct {
	f       Files
	q       FileQuery
	offsets map[string]int64
	// keep says whether the last stamped line passed Since: an unstamped
	// line (none is written so, but a file may be edited) goes with it.
	keep bool
}

// poll emits the complete lines added to the files since the last poll.
func (t *tail) poll(emit func(string)) error {
	names, err := t.f.names(t.q.Since)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := t.read(name, emit); err != nil {
			return err
		}
	}
	return nil
}

func (t *tail) read(name string, emit func(string)) error {
	open := t.f.Open
	if open == nil {
		open = func(dir, name string) (*os.File, error) { return os.Open(filepath.Join(dir, name)) }
	}
	fh, err := open(t.f.Dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed between the listing and now
	}
	if err != nil {
		return fmt.Errorf("log_dir: %w", err)
	}
	defer fh.Close()
	off := t.offsets[name]
	if _, err := fh.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("log_dir %s: %w", name, err)
	}
	b, err := io.ReadAll(io.LimitReader(fh, 64<<20))
	if err != nil {
		return fmt.Errorf("log_dir %s: %w", name, err)
	}
	// Only whole lines: the helper may be writing the rest of one now.
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return nil
	}
	t.offsets[name] = off + int64(end) + 1
	for _, line := range strings.Split(string(b[:end]), "\n") {
		if t.pass(line) {
			emit(line)
		}
	}
	return nil
}

// pass applies Since to a line.
func (t *tail) pass(line string) bool {
	if t.q.Since.IsZero() {
		return true
	}
	if ts, ok := Stamp(line); ok {
		t.keep = !ts.Before(t.q.Since)
	}
	return t.keep
}

// Stamp is the time a log_dir line starts with.
func Stamp(line string) (time.Time, bool) {
	word, _, _ := strings.Cut(line, " ")
	ts, err := time.Parse(time.RFC3339, word)
	return ts, err == nil
}

// StripStamp is the line without its timestamp, as the journal shows it
// with -o cat.
func StripStamp(line string) string {
	if _, ok := Stamp(line); ok {
		_, rest, _ := strings.Cut(line, " ")
		return rest
	}
	return line
}

// names lists the stack's files of Since's day and later, oldest first.
// The name must be exactly backup-<stack>-<day>.log: a glob would also
// match the files of a stack whose name starts with "<stack>-".
func (f Files) names(since time.Time) ([]string, error) {
	ents, err := os.ReadDir(f.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log_dir: %w", err)
	}
	from := ""
	if !since.IsZero() {
		from = since.Local().Format(dayLayout)
	}
	prefix := "backup-" + f.Stack + "-"
	var out []string
	for _, e := range ents {
		day, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		day, ok = strings.CutSuffix(day, ".log")
		if !ok || len(day) != len(dayLayout) {
			continue
		}
		if _, err := time.Parse(dayLayout, day); err != nil || day < from {
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out) // the same prefix, then the day: oldest first
	return out, nil
}
