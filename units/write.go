package units

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Write writes files below dir the way a generator should (systemd.generator(7)):
// the manager empties its generator directories before it runs the
// generators and reads them only after they have all exited, so nobody can
// see a half-written file and a crash leaves nothing that outlives the next
// run. Each file is therefore created exclusively and written plainly: no
// temporary name, no rename, no fsync. A file that exists already is an
// error (two files of one name, or a directory that was not emptied).
// Regular files get mode 0644 minus the umask. The files are written on
// GOMAXPROCS goroutines; a file that cannot be written does not stop the
// others, and the joined error lists the failures in the order of files.
func Write(dir string, files []File) error {
	dsts := make([]string, len(files))
	dirSet := map[string]bool{}
	var dirs []string
	for i, f := range files {
		dsts[i] = filepath.Join(dir, filepath.FromSlash(f.Path))
		if d := filepath.Dir(dsts[i]); !dirSet[d] {
			dirSet[d] = true
			dirs = append(dirs, d)
		}
	}
	dirErrs := make(map[string]error, len(dirs))
	var mu sync.Mutex
	parallel(len(dirs), func(i int) {
		err := mkdir(dirs[i])
		mu.Lock()
		dirErrs[dirs[i]] = err
		mu.Unlock()
	})
	errs := make([]error, len(files))
	parallel(len(files), func(i int) {
		if err := dirErrs[filepath.Dir(dsts[i])]; err != nil {
			errs[i] = fmt.Errorf("writing %s: %w", dsts[i], err)
			return
		}
		errs[i] = writeOne(dsts[i], files[i])
	})
	return errors.Join(errs...)
}

// Writer writes batches of files below dir as Write does (exclusive
// creates, plain writes, missing directories made), while the caller renders
// the next ones: Add queues a batch for one of GOMAXPROCS goroutines and
// returns, so that no more than a few batches are held in memory. Close
// waits for them and returns the failures joined, in the order the files
// were added. A Writer is for one goroutine (the one calling Add and Close).
type Writer struct {
	dir   string
	queue chan writeBatch
	wg    sync.WaitGroup
	mu    sync.Mutex
	errs  map[int][]error // by batch number
	made  sync.Map        // directory -> error of its mkdir (nil: made or there)
	n     int
}

type writeBatch struct {
	n     int
	files []File
}

// NewWriter starts a Writer into dir.
func NewWriter(dir string) *Writer {
	w := &Writer{dir: dir, queue: make(chan writeBatch, 8), errs: map[int][]error{}}
	for range max(runtime.GOMAXPROCS(0), 1) {
		w.wg.Go(func() {
			for b := range w.queue {
				w.write(b)
			}
		})
	}
	return w
}

// Add queues files for writing.
func (w *Writer) Add(files []File) {
	w.queue <- writeBatch{n: w.n, files: files}
	w.n++
}

// Close waits until every queued file is written.
func (w *Writer) Close() error {
	close(w.queue)
	w.wg.Wait()
	var errs []error
	for i := range w.n {
		errs = append(errs, w.errs[i]...)
	}
	return errors.Join(errs...)
}

func (w *Writer) write(b writeBatch) {
	var errs []error
	for _, f := range b.files {
		dst := filepath.Join(w.dir, filepath.FromSlash(f.Path))
		if err := w.mkdir(filepath.Dir(dst)); err != nil {
			errs = append(errs, fmt.Errorf("writing %s: %w", dst, err))
			continue
		}
		if err := writeOne(dst, f); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		w.mu.Lock()
		w.errs[b.n] = errs
		w.mu.Unlock()
	}
}

// mkdir makes d once per Writer. Two goroutines may race to make the same
// directory (timers.target.wants): mkdir takes finding it made as success.
func (w *Writer) mkdir(d string) error {
	if err, ok := w.made.Load(d); ok {
		if err == nil {
			return nil
		}
		return err.(error)
	}
	err := mkdir(d)
	if err != nil {
		w.made.Store(d, err)
	} else {
		w.made.Store(d, nil)
	}
	return err
}

// RemoveOwn removes from a generator directory what an earlier run of this
// generator left there, and nothing else: the manager empties its generator
// directories before it runs the generators, but measured on systemd 252, not
// at the start that follows a SIGKILL of the manager (every exclusive create
// then failed, and a deleted stack kept its drop-in). Only this project's
// names are touched (the backup@, backup-hold@, backup-notify@ units and
// their drop-in directories, backup-recover.service, and this project's links
// in timers.target.wants and default.target.wants): other generators write
// into the same directory, at the same time.
func RemoveOwn(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case ownName(name):
			errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
		case name == "timers.target.wants" || name == "default.target.wants":
			links, err := os.ReadDir(filepath.Join(dir, name))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, l := range links {
				if ownName(l.Name()) {
					errs = append(errs, os.Remove(filepath.Join(dir, name, l.Name())))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func ownName(n string) bool {
	base := strings.TrimSuffix(n, ".d")
	return strings.HasPrefix(base, "backup@") || strings.HasPrefix(base, "backup-hold@") ||
		strings.HasPrefix(base, "backup-notify@") || base == systemd.RecoverService
}

// parallel calls f(0) ... f(n-1) on at most GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

// mkdir creates d, and its parents when they are missing.
func mkdir(d string) error {
	// The output directory exists and the tree is one level deep, so a
	// single mkdir is the common case.
	err := os.Mkdir(d, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(d, 0o755)
	}
	return err
}

func writeOne(dst string, f File) error {
	if f.Link != "" {
		if err := os.Symlink(f.Link, dst); err != nil {
			return fmt.Errorf("linking %s: %w", dst, err)
		}
		return nil
	}
	// Plain system calls: os.OpenFile offers the file to the runtime's
	// poller (two fcntl and an epoll_ctl that a regular file always
	// refuses), which costs more than the write of a small unit file.
	var fd int
	var err error
	for {
		fd, err = syscall.Open(dst, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o644)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", dst, &fs.PathError{Op: "open", Path: dst, Err: err})
	}
	for b := f.Content; len(b) > 0 && err == nil; {
		var n int
		n, err = syscall.Write(fd, b)
		switch {
		case err == syscall.EINTR:
			err = nil
		case err == nil && n == 0:
			err = io.ErrShortWrite
		case err == nil:
			b = b[n:]
		}
	}
	if err != nil {
		err = &fs.PathError{Op: "write", Path: dst, Err: err}
	}
	if cerr := syscall.Close(fd); err == nil && cerr != nil {
		err = &fs.PathError{Op: "close", Path: dst, Err: cerr}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// DryRun prints every file the way the generator would write it.
func DryRun(w io.Writer, files []File) error {
	for _, f := range files {
		var err error
		if f.Link != "" {
			_, err = fmt.Fprintf(w, "---- %s -> %s\n", f.Path, f.Link)
		} else {
			_, err = fmt.Fprintf(w, "---- %s\n%s", f.Path, f.Content)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
