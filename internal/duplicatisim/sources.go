package duplicatisim

// Source reading (Backup.Sources). While a Backup task runs, the simulator reads its sources
// the way a backup does, so tests can see what a job read and when:
//   - At the start every source is checked, as Controller.Backup does before anything else: a
//     source that does not exist (Lstat) ends the job at once as a thrown IOException
//     ("Backup aborted since the source path <p> does not exist. ..."; when its parent
//     cannot be searched: "Unauthorized to access source folder <p>, aborting backup");
//     allow-missing-source is not simulated. ParsedResult "Fatal", task "Failed" (2.1.0.x
//     "Completed"), LastErrorMessage, Event.Result "Fatal". Nothing is read.
//   - Then each source is walked (lexical order, symlinks not followed; a source that is a
//     symlink is recorded as one) and the walked paths are read one by one, paced over the
//     job's Duration: path i of n no earlier than Started + Duration*(i+1)/(n+1). A read that
//     needs longer than Duration makes the job longer; the job ends only when the read is
//     done (the real server ends when its work ends).
//   - A regular file is opened when its turn comes and read to EOF: SHA256 is the hash of
//     the bytes read then, Size their count (so a file appended to before its turn shows the
//     new content, one appended to after its turn the old; a write while it is being read
//     shows whatever the read met). Directories record Mode, symlinks Target (Readlink),
//     other types (fifo, socket, device) are recorded as "other" and never opened.
//   - A path that is gone at its turn (walked, then removed): a Warning "[Warning-...
//     FileEnumerationProcess-FileAccessError]: Error reported while accessing file: <p>";
//     so is a directory that cannot be listed. A file that cannot be opened or read: an Error
//     "[Error-...FileBlockProcessor.FileEntry-PathProcessingFailed]: Failed to process path:
//     <p>". Both raise the ParsedResult (Success < Warning < Error) and are not in Entries.
//   - The log row's ExaminedFiles/OpenedFiles and their sizes, and the SourceFiles*
//     metadata, count the files read (instead of the made-up 10 files of 10240 bytes).
//   - A stop or abort that lands, a restart, or Close ends the reading: nothing is read or
//     recorded after it, Finished stays false. A stopped run is "Warning" or worse.
//
// GET /sim/reads?task=N[&boot=B] serves Reads as JSON (the task of the newest server life
// with that ID unless boot is given).

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ReadEntry is one path a task read.
type ReadEntry struct {
	Path   string
	Kind   string // "file" | "dir" | "symlink" | "other"
	Size   int64  // file: bytes read; else Lstat size
	Mode   string // permission bits with setuid/setgid/sticky, octal "0644"
	SHA256 string `json:",omitempty"` // file: hex sha256 of the bytes read
	Target string `json:",omitempty"` // symlink: its target, not followed
	ReadAt time.Time
}

// Reads is what one task read from its backup's sources, in the order read.
type Reads struct {
	TaskID   int64
	BackupID string
	Boot     int
	Sources  []string
	Entries  []ReadEntry
	Warnings []string // log lines (without the time stamp) the read produced
	Errors   []string
	Finished bool // every walked path was read (a task without sources: once it started)
}

type readRecord struct {
	Reads
	stopped bool          // the task ended: nothing more is recorded
	stop    chan struct{} // closed when the task ends
	fatal   string        // a source check failed: the exception message
	done    bool          // the reader has finished (or failed the check)
}

const (
	warnAccessPrefix = "[Warning-Duplicati.Library.Main.Operation.Backup.FileEnumerationProcess-FileAccessError]: Error reported while accessing file: "
	errPathPrefix    = "[Error-Duplicati.Library.Main.Operation.Backup.FileBlockProcessor.FileEntry-PathProcessingFailed]: Failed to process path: "
	ioExceptionStack = "\n   at Duplicati.Library.Main.Controller.ExpandInputSources(String[] inputsources, IFilter filter)\n   at Duplicati.Library.Main.Controller.Backup(String[] inputsources, IFilter filter)\n   at Duplicati.Server.Runner.RunInternalAsync(Connection databaseConnection, IQueueRunnerService queueRunnerService, IRunnerData data, Boolean fromQueue)"
)

func sourceMissingMsg(p string) string {
	return "Backup aborted since the source path " + p + " does not exist. Please verify that the source path exists, or remove the source path from the backup configuration, or set the allow-missing-source option."
}

func sourceUnauthorizedMsg(p string) string {
	return "Unauthorized to access source folder " + p + ", aborting backup"
}

// openFunc opens a file for reading; tests replace it (Sim.openFile) to simulate read errors.
type openFunc func(string) (io.ReadCloser, error)

func osOpen(p string) (io.ReadCloser, error) { return os.Open(p) }

func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// startReadLocked sets up the read record of a starting Backup task and starts its reader.
func (s *Sim) startReadLocked(t *task, sources []string) {
	r := &readRecord{stop: make(chan struct{})}
	r.TaskID, r.BackupID, r.Boot = t.id, t.backupID, s.boot
	r.Sources = append([]string{}, sources...)
	r.Entries, r.Warnings, r.Errors = []ReadEntry{}, []string{}, []string{}
	t.rd = r
	s.reads[t.ev] = r
	if len(sources) == 0 {
		r.done, r.Finished = true, true
		return
	}
	open := s.openFile
	if open == nil {
		open = osOpen
	}
	s.wg.Add(1)
	go s.readSources(t, r, open)
}

// endReadLocked stops t's reader (the task finished, was stopped, aborted or dropped).
func endReadLocked(t *task) {
	if r := t.rd; r != nil && !r.stopped {
		r.stopped = true
		close(r.stop)
	}
}

// readDoneLocked reports whether t's reading no longer holds up the task's natural end.
func readDoneLocked(t *task) bool { return t.rd == nil || t.rd.done }

type walkItem struct{ path string }

func (s *Sim) readSources(t *task, r *readRecord, open openFunc) {
	defer s.wg.Done()
	// Controller.ExpandInputSources: every source must exist before anything is read.
	for _, src := range r.Sources {
		if _, err := os.Lstat(src); err != nil {
			msg := sourceMissingMsg(src)
			if errors.Is(err, fs.ErrPermission) {
				msg = sourceUnauthorizedMsg(src)
			}
			s.mu.Lock()
			if !r.stopped {
				r.fatal, r.done = msg, true
			}
			s.mu.Unlock()
			return
		}
	}
	var items []walkItem
	var walkWarn []string
	for _, src := range r.Sources {
		_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				walkWarn = append(walkWarn, warnAccessPrefix+p)
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			items = append(items, walkItem{p})
			return nil
		})
	}
	s.mu.Lock()
	if r.stopped {
		s.mu.Unlock()
		return
	}
	r.Warnings = append(r.Warnings, walkWarn...)
	started, dur := t.started, t.duration
	s.mu.Unlock()

	n := len(items)
	for i, it := range items {
		at := started.Add(time.Duration(float64(dur) * float64(i+1) / float64(n+1)))
		if wait := time.Until(at); wait > 0 {
			tm := time.NewTimer(wait)
			select {
			case <-tm.C:
			case <-r.stop:
				tm.Stop()
				return
			case <-s.stop:
				tm.Stop()
				return
			}
		}
		e, warn, errLine := readOne(it.path, open, r.stop)
		s.mu.Lock()
		if r.stopped {
			s.mu.Unlock()
			return
		}
		switch {
		case warn != "":
			r.Warnings = append(r.Warnings, warn)
		case errLine != "":
			r.Errors = append(r.Errors, errLine)
		default:
			e.ReadAt = time.Now()
			r.Entries = append(r.Entries, e)
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	if !r.stopped {
		r.done, r.Finished = true, true
	}
	s.mu.Unlock()
}

// readOne reads one walked path: an entry, or a warning or error log line.
func readOne(p string, open openFunc, stop <-chan struct{}) (ReadEntry, string, string) {
	fi, err := os.Lstat(p)
	if err != nil {
		return ReadEntry{}, warnAccessPrefix + p, ""
	}
	e := ReadEntry{Path: p, Size: fi.Size(), Mode: modeString(fi.Mode())}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Kind = "symlink"
		tgt, err := os.Readlink(p)
		if err != nil {
			return ReadEntry{}, warnAccessPrefix + p, ""
		}
		e.Target = tgt
	case fi.IsDir():
		e.Kind = "dir"
	case fi.Mode().IsRegular():
		e.Kind = "file"
		f, err := open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return ReadEntry{}, warnAccessPrefix + p, ""
			}
			return ReadEntry{}, "", errPathPrefix + p
		}
		defer f.Close()
		h := sha256.New()
		buf := make([]byte, 64<<10)
		var size int64
		for {
			select {
			case <-stop:
				return ReadEntry{}, "", "" // the task ended mid-file: discarded by the caller
			default:
			}
			nr, rerr := f.Read(buf)
			h.Write(buf[:nr])
			size += int64(nr)
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return ReadEntry{}, "", errPathPrefix + p
			}
		}
		e.Size, e.SHA256 = size, hex.EncodeToString(h.Sum(nil))
	default:
		e.Kind = "other"
	}
	return e, "", ""
}

// Reads returns what task taskID of server life boot read (boot < 0: the newest life that
// has a task with that ID). ok is false when there is no such task.
func (s *Sim) Reads(taskID int64, boot int) (Reads, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.events) - 1; i >= 0; i-- {
		ev := s.events[i]
		if ev.TaskID != taskID || (boot >= 0 && ev.Boot != boot) {
			continue
		}
		if r, ok := s.reads[i]; ok {
			out := r.Reads
			out.Sources = append([]string{}, r.Sources...)
			out.Entries = append([]ReadEntry{}, r.Entries...)
			out.Warnings = append([]string{}, r.Warnings...)
			out.Errors = append([]string{}, r.Errors...)
			return out, true
		}
		// Not started (queued or dropped before it started), or not a backup.
		out := Reads{TaskID: ev.TaskID, BackupID: ev.BackupID, Boot: ev.Boot,
			Sources: []string{}, Entries: []ReadEntry{}, Warnings: []string{}, Errors: []string{}}
		out.Finished = !ev.Started.IsZero() // a started task without a record reads nothing
		if b, ok := s.backupLocked(ev.BackupID); ok && ev.Operation == "Backup" && ev.Started.IsZero() {
			out.Sources = append(out.Sources, b.Sources...)
		}
		return out, true
	}
	return Reads{}, false
}
