package duplicatisim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sum(b string) string { h := sha256.Sum256([]byte(b)); return hex.EncodeToString(h[:]) }

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func (c *tclient) reads(id int64) Reads {
	c.t.Helper()
	var r Reads
	c.getJSON("GET", "/sim/reads?task="+itoa(id), 200, &r)
	return r
}

// TestSourcesRead: every walked path is recorded in walk order; files with the sha256 of
// their content, symlinks with their target (not followed), directories and modes; reading
// is spread over the run, which ends as configured.
func TestSourcesRead(t *testing.T) {
	t.Parallel()
	type want struct {
		rel, kind, mode, content, target string
	}
	cases := []struct {
		name   string
		setup  func(t *testing.T, root string) []string // returns the sources
		want   []want                                   // rel to root
		result string
	}{
		{
			name: "dir of files",
			setup: func(t *testing.T, root string) []string {
				writeFile(t, filepath.Join(root, "src/a.txt"), "alpha", 0o644)
				writeFile(t, filepath.Join(root, "src/b.bin"), strings.Repeat("\x00\xffbeta", 50000), 0o600)
				writeFile(t, filepath.Join(root, "src/sub/c"), "", 0o640)
				if err := os.Symlink("../elsewhere/secret", filepath.Join(root, "src/sub/link")); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(root, "src/sub"), 0o750); err != nil {
					t.Fatal(err)
				}
				return []string{filepath.Join(root, "src")}
			},
			want: []want{
				{"src", "dir", "0755", "", ""},
				{"src/a.txt", "file", "0644", "alpha", ""},
				{"src/b.bin", "file", "0600", strings.Repeat("\x00\xffbeta", 50000), ""},
				{"src/sub", "dir", "0750", "", ""},
				{"src/sub/c", "file", "0640", "", ""},
				{"src/sub/link", "symlink", "0777", "", "../elsewhere/secret"},
			},
			result: "Success",
		},
		{
			name: "two sources, a file and a symlink to a dir",
			setup: func(t *testing.T, root string) []string {
				writeFile(t, filepath.Join(root, "one"), "1", 0o644)
				writeFile(t, filepath.Join(root, "d/inside"), "not followed", 0o644)
				if err := os.Symlink(filepath.Join(root, "d"), filepath.Join(root, "ln")); err != nil {
					t.Fatal(err)
				}
				return []string{filepath.Join(root, "one"), filepath.Join(root, "ln")}
			},
			want: []want{
				{"one", "file", "0644", "1", ""},
				{"ln", "symlink", "0777", "", "@d"},
			},
			result: "Success",
		},
		{
			name: "configured Warning stays",
			setup: func(t *testing.T, root string) []string {
				writeFile(t, filepath.Join(root, "x"), "x", 0o644)
				return []string{filepath.Join(root, "x")}
			},
			want:   []want{{"x", "file", "0644", "x", ""}},
			result: "Warning",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			srcs := tc.setup(t, root)
			d := 600 * time.Millisecond
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: d, Sources: srcs, Result: tc.result}}, Quirks{})
			id := c.run("1")
			ev := waitEnded(t, s, 0)
			if ev.Result != tc.result {
				t.Fatalf("result %q, want %q", ev.Result, tc.result)
			}
			r := c.reads(id)
			if !r.Finished || r.TaskID != id || r.BackupID != "1" || len(r.Warnings) != 0 || len(r.Errors) != 0 {
				t.Fatalf("reads %+v", r)
			}
			if len(r.Entries) != len(tc.want) {
				t.Fatalf("entries %+v, want %d", r.Entries, len(tc.want))
			}
			n := len(tc.want)
			for i, w := range tc.want {
				e := r.Entries[i]
				if e.Path != filepath.Join(root, w.rel) || e.Kind != w.kind || e.Mode != w.mode {
					t.Fatalf("entry %d %+v, want %+v", i, e, w)
				}
				switch w.kind {
				case "file":
					if e.SHA256 != sum(w.content) || e.Size != int64(len(w.content)) || e.Target != "" {
						t.Fatalf("entry %d %+v: want sha256 %s size %d", i, e, sum(w.content), len(w.content))
					}
				case "symlink":
					tgt := w.target
					if strings.HasPrefix(tgt, "@") {
						tgt = filepath.Join(root, tgt[1:])
					}
					if e.Target != tgt || e.SHA256 != "" {
						t.Fatalf("entry %d %+v: want target %s", i, e, tgt)
					}
				}
				// paced: path i of n no earlier than Started + d*(i+1)/(n+1), all before the end
				earliest := ev.Started.Add(d * time.Duration(i+1) / time.Duration(n+1))
				if e.ReadAt.Before(earliest) || e.ReadAt.After(ev.Finished) {
					t.Fatalf("entry %d read at %v, want in [%v, %v]", i, e.ReadAt, earliest, ev.Finished)
				}
			}
			rows := logRows(t, c, "1", "")
			if len(rows) != 1 || rows[0].Msg.ParsedResult != tc.result {
				t.Fatalf("rows %+v", rows)
			}
		})
	}
}

// TestSourcesAppendDuringJob: a file's record is the bytes read at its turn. A file appended
// to before its turn shows the new content; one appended to after its turn the old.
func TestSourcesAppendDuringJob(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	first, last := filepath.Join(root, "src/1-first"), filepath.Join(root, "src/9-last")
	writeFile(t, first, "first v1", 0o644)
	writeFile(t, filepath.Join(root, "src/5-mid"), "mid", 0o644)
	writeFile(t, last, "last v1", 0o644)
	// 4 paths (src, 1-first, 5-mid, 9-last): read at 1/5 .. 4/5 of 1.5s, 300ms apart.
	s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 1500 * time.Millisecond, Sources: []string{filepath.Join(root, "src")}}}, Quirks{})
	id := c.run("1")
	waitFor(t, 3*time.Second, "the first file read", func() bool {
		r := c.reads(id)
		return len(r.Entries) >= 2
	})
	r := c.reads(id)
	if r.Finished || len(r.Entries) > 3 {
		t.Fatalf("read all at once: %+v", r)
	}
	for _, p := range []string{first, last} {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(" +appended"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	ev := waitEnded(t, s, 0)
	r = c.reads(id)
	if ev.Result != "Success" || !r.Finished || len(r.Entries) != 4 {
		t.Fatalf("%+v %+v", ev, r)
	}
	if e := r.Entries[1]; e.Path != first || e.SHA256 != sum("first v1") || e.Size != 8 {
		t.Fatalf("first (read before the append): %+v", e)
	}
	if e := r.Entries[3]; e.Path != last || e.SHA256 != sum("last v1 +appended") || e.Size != int64(len("last v1 +appended")) {
		t.Fatalf("last (appended before its turn): %+v", e)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		return 0, errors.New("Input/output error")
	}
	f.n++
	return copy(p, "partial"), nil
}
func (f *failingReader) Close() error { return nil }

// TestSourcesProblems: a missing source fails the run at once; a path gone before its turn
// is a Warning naming it; a file that cannot be read an Error naming it. Never a success.
func TestSourcesProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		setup     func(t *testing.T, root string) []string
		during    func(t *testing.T, root string) // right after the run starts
		openFail  string                          // rel path whose open/read fails
		result    string                          // Event.Result and ParsedResult
		status    string                          // task/{id} Status (newest release)
		logLine   string                          // a Warnings or Errors line must end with this (root replaced)
		errorLine bool
		entries   int
	}{
		{
			name:   "missing source",
			setup:  func(t *testing.T, root string) []string { return []string{filepath.Join(root, "nope")} },
			result: "Fatal", status: "Failed", errorLine: true,
			logLine: "The operation Backup has failed with error: Backup aborted since the source path @/nope does not exist. Please verify that the source path exists, or remove the source path from the backup configuration, or set the allow-missing-source option.",
		},
		{
			name: "one of two sources missing",
			setup: func(t *testing.T, root string) []string {
				writeFile(t, filepath.Join(root, "ok"), "ok", 0o644)
				return []string{filepath.Join(root, "ok"), filepath.Join(root, "gone")}
			},
			result: "Fatal", status: "Failed", errorLine: true,
			logLine: "Backup aborted since the source path @/gone does not exist. Please verify that the source path exists, or remove the source path from the backup configuration, or set the allow-missing-source option.",
		},
		{
			name: "file removed before its turn",
			setup: func(t *testing.T, root string) []string {
				writeFile(t, filepath.Join(root, "src/a"), "a", 0o644)
				writeFile(t, filepath.Join(root, "src/z"), "z", 0o644)
				return []string{filepath.Join(root, "src")}
			},
			during: func(t *testing.T, root string) {
				if err := os.Remove(filepath.Join(root, "src/z")); err != nil {
					t.Fatal(err)
				}
			},
			result: "Warning", status: "Completed", entries: 2,
			logLine: "[Warning-Duplicati.Library.Main.Operation.Backup.FileEnumerationProcess-FileAccessError]: Error reported while accessing file: @/src/z",
		},
		{
			name: "unreadable file",
			setup: func(t *testing.T, root string) []string {
				writeFile(t, filepath.Join(root, "src/a"), "a", 0o644)
				writeFile(t, filepath.Join(root, "src/bad"), "bad", 0o644)
				return []string{filepath.Join(root, "src")}
			},
			openFail: "src/bad",
			result:   "Error", status: "Completed", errorLine: true, entries: 2,
			logLine: "[Error-Duplicati.Library.Main.Operation.Backup.FileBlockProcessor.FileEntry-PathProcessingFailed]: Failed to process path: @/src/bad",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			srcs := tc.setup(t, root)
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 400 * time.Millisecond, Sources: srcs}}, Quirks{})
			if tc.openFail != "" {
				bad := filepath.Join(root, tc.openFail)
				s.mu.Lock()
				s.openFile = func(p string) (io.ReadCloser, error) {
					if p == bad {
						return &failingReader{}, nil
					}
					return osOpen(p)
				}
				s.mu.Unlock()
			}
			id := c.run("1")
			if tc.during != nil {
				waitFor(t, 2*time.Second, "start", func() bool { return !s.Events()[0].Started.IsZero() })
				tc.during(t, root)
			}
			ev := waitEnded(t, s, 0)
			if ev.Result != tc.result {
				t.Fatalf("result %q, want %q", ev.Result, tc.result)
			}
			if tc.result == "Fatal" && ev.Finished.Sub(ev.Started) > 200*time.Millisecond {
				t.Fatalf("a missing source must fail at once, took %v", ev.Finished.Sub(ev.Started))
			}
			if _, st := c.task(id); st.Status != tc.status {
				t.Fatalf("task %+v, want %s", st, tc.status)
			}
			want := strings.ReplaceAll(tc.logLine, "@", root)
			rows := logRows(t, c, "1", "")
			if len(rows) != 1 || rows[0].Msg.ParsedResult != tc.result {
				t.Fatalf("rows %+v", rows)
			}
			lines := rows[0].Msg.Warnings
			if tc.errorLine {
				lines = rows[0].Msg.Errors
			}
			found := false
			for _, l := range lines {
				found = found || strings.HasSuffix(l, want)
			}
			if !found {
				t.Fatalf("log lines %q: none ends with %q", lines, want)
			}
			r := c.reads(id)
			if len(r.Entries) != tc.entries || r.Finished != (tc.result != "Fatal") {
				t.Fatalf("reads %+v", r)
			}
			if tc.result == "Fatal" {
				var b struct{ Backup backupDTO }
				c.getJSON("GET", "/api/v1/backup/1", 200, &b)
				if !strings.Contains(b.Backup.Metadata["LastErrorMessage"], "does not exist") {
					t.Fatalf("metadata %+v", b.Backup.Metadata)
				}
			}
		})
	}
}

// TestSourcesCancelStopsReading: a stop or abort that lands ends the reading; nothing is
// read after it and Finished stays false. A restart does the same.
func TestSourcesCancelStopsReading(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stop", "abort", "restart"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
				writeFile(t, filepath.Join(root, "src", n), n, 0o644)
			}
			// 10 paths over 2s: one every ~180ms.
			s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 2 * time.Second, Sources: []string{filepath.Join(root, "src")}}},
				Quirks{NoControllerFor: -1, AbortDelay: -1})
			id := c.run("1")
			waitFor(t, 3*time.Second, "two paths read", func() bool { return len(c.reads(id).Entries) >= 2 })
			if how == "restart" {
				s.Restart()
			} else {
				c.cancel(id, how)
			}
			var r Reads
			if how == "restart" {
				var ok bool
				if r, ok = s.Reads(id, 0); !ok {
					t.Fatal("no reads of the dropped task")
				}
			} else {
				ev := waitEnded(t, s, 0)
				want := map[string]string{"stop": "Stopped", "abort": "Aborted"}[how]
				if ev.Result != want {
					t.Fatalf("result %q", ev.Result)
				}
				r = c.reads(id)
			}
			n := len(r.Entries)
			if r.Finished || n < 2 || n > 4 {
				t.Fatalf("after %s: %+v", how, r)
			}
			time.Sleep(500 * time.Millisecond)
			if r2, _ := s.Reads(id, 0); len(r2.Entries) != n || r2.Finished {
				t.Fatalf("read on after %s: %d then %d entries", how, n, len(r2.Entries))
			}
		})
	}
}

// TestSourcesReadsShape: GET /sim/reads answers the documented JSON; bad and unknown tasks;
// a queued task lists its sources and nothing read; POST /sim/backups takes Sources.
func TestSourcesReadsShape(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), "data", 0o644)
	s, c := newTestSim(t, testBackups, Quirks{Paused: true})
	code, body := c.do("POST", "/sim/backups", map[string]any{"ID": "7", "Name": "x", "Duration": "100ms", "Sources": []string{filepath.Join(root, "f")}})
	if code != 200 {
		t.Fatalf("POST /sim/backups: %d %s", code, body)
	}
	if code, body := c.do("POST", "/sim/backups", map[string]any{"ID": "8", "Name": "x", "Sources": []string{"relative/path"}}); code != 400 {
		t.Fatalf("relative source: %d %s", code, body)
	}
	var b struct{ Backup backupDTO }
	c.getJSON("GET", "/api/v1/backup/7", 200, &b)
	if len(b.Backup.Sources) != 1 || b.Backup.Sources[0] != filepath.Join(root, "f") {
		t.Fatalf("backup sources %q", b.Backup.Sources)
	}
	id := c.run("7")
	var queued Reads
	c.getJSON("GET", "/sim/reads?task="+itoa(id), 200, &queued)
	if queued.Finished || len(queued.Entries) != 0 || len(queued.Sources) != 1 {
		t.Fatalf("queued %+v", queued)
	}
	c.getJSON("POST", "/api/v1/serverstate/resume", 200, nil)
	waitEnded(t, s, 0)
	code, body = c.do("GET", "/sim/reads?task="+itoa(id), nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"TaskID", "BackupID", "Boot", "Sources", "Entries", "Warnings", "Errors", "Finished"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("no %s in %s", k, body)
		}
	}
	var entries []map[string]any
	if err := json.Unmarshal(raw["Entries"], &entries); err != nil || len(entries) != 1 {
		t.Fatalf("entries %s: %v", raw["Entries"], err)
	}
	e := entries[0]
	if e["Path"] != filepath.Join(root, "f") || e["Kind"] != "file" || e["Size"] != 4.0 || e["Mode"] != "0644" || e["SHA256"] != sum("data") {
		t.Fatalf("entry %v", e)
	}
	if _, err := time.Parse(time.RFC3339Nano, e["ReadAt"].(string)); err != nil {
		t.Fatalf("ReadAt %v", e["ReadAt"])
	}
	if _, ok := e["Target"]; ok {
		t.Fatalf("a file has no Target: %v", e)
	}
	// a task of a backup without sources: nothing to read
	id2 := c.run("1")
	waitFor(t, 3*time.Second, "task end", func() bool { return s.Events()[1].Result != "" })
	if r := c.reads(id2); !r.Finished || len(r.Entries) != 0 || r.Entries == nil {
		t.Fatalf("no sources: %+v", r)
	}
	for q, want := range map[string]int{"": 400, "x": 400, "999": 404, itoa(id) + "&boot=5": 404, itoa(id) + "&boot=-1": 400} {
		if code, body := c.do("GET", "/sim/reads?task="+q, nil); code != want {
			t.Fatalf("task=%s: %d %s, want %d", q, code, body, want)
		}
	}
}

type slowReader struct {
	io.Reader
	d time.Duration
}

func (r slowReader) Read(p []byte) (int, error) { time.Sleep(r.d); return r.Reader.Read(p) }
func (slowReader) Close() error                 { return nil }

// TestSourcesReadLongerThanDuration: a run whose reading needs longer than its Duration
// lasts as long as the reading.
func TestSourcesReadLongerThanDuration(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "src/a"), "a", 0o644)
	writeFile(t, filepath.Join(root, "src/b"), "b", 0o644)
	s, c := newTestSim(t, []Backup{{ID: "1", Name: "a", Duration: 100 * time.Millisecond, Sources: []string{filepath.Join(root, "src")}}}, Quirks{})
	s.mu.Lock()
	s.openFile = func(p string) (io.ReadCloser, error) {
		b, err := os.ReadFile(p)
		return slowReader{strings.NewReader(string(b)), 150 * time.Millisecond}, err
	}
	s.mu.Unlock()
	id := c.run("1")
	ev := waitEnded(t, s, 0)
	r := c.reads(id)
	// two files, two reads each (data, EOF) of 150ms
	if ev.Result != "Success" || !r.Finished || len(r.Entries) != 3 || ev.Finished.Sub(ev.Started) < 600*time.Millisecond {
		t.Fatalf("%+v after %v: %+v", ev, ev.Finished.Sub(ev.Started), r)
	}
	if last := r.Entries[2].ReadAt; ev.Finished.Before(last) {
		t.Fatalf("ended %v before the last read %v", ev.Finished, last)
	}
}
