package units

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// WriteOptions tune WriteAllWith.
type WriteOptions struct {
	// Sync flushes each file to stable storage before it is renamed into
	// place, and each directory after its renames, so that a crash leaves
	// either the old or the new file. Use it when dir is on a real disk
	// (e.g. ~/.config/systemd/user). A generator does not need it: systemd
	// gives generators directories on a tmpfs below /run, which a crash
	// empties anyway, and every fsync there is pure cost.
	Sync bool
}

// WriteAll writes files below dir without fsync; see WriteAllWith. It is
// the generator's write path.
func WriteAll(dir string, files []File) error {
	return WriteAllWith(dir, files, WriteOptions{})
}

// WriteAllWith writes files below dir. Each file appears whole or not at
// all: it is written to a temporary name in the same directory and renamed
// into place, so a reader (the manager, a person) never sees half a unit.
// Regular files get mode 0644 minus the umask, like every other generator's
// output. Each directory is created once. The work is spread over
// GOMAXPROCS goroutines (file system calls are most of a generator's run
// time on tmpfs); errors are collected per file, the remaining files are
// still written, and the joined error lists them in the order of files.
func WriteAllWith(dir string, files []File, opt WriteOptions) error {
	w := writer{suffix: "-" + strconv.Itoa(os.Getpid()), sync: opt.Sync}
	// The directories, in order of first use, and which one each file needs.
	dsts := make([]string, len(files))
	fileDir := make([]int, len(files))
	dirIndex := map[string]int{}
	var dirs []string
	for i, f := range files {
		dsts[i] = filepath.Join(dir, filepath.FromSlash(f.Path))
		parent := filepath.Dir(dsts[i])
		j, ok := dirIndex[parent]
		if !ok {
			j = len(dirs)
			dirIndex[parent] = j
			dirs = append(dirs, parent)
		}
		fileDir[i] = j
	}
	dirErrs := make([]error, len(dirs))
	parallel(len(dirs), func(i int) { dirErrs[i] = mkdir(dirs[i]) })
	errs := make([]error, len(files), len(files)+len(dirs))
	parallel(len(files), func(i int) {
		if err := dirErrs[fileDir[i]]; err != nil {
			errs[i] = fmt.Errorf("writing %s: %w", dsts[i], err)
			return
		}
		errs[i] = w.one(dsts[i], files[i])
	})
	if w.sync {
		syncErrs := make([]error, len(dirs))
		parallel(len(dirs), func(i int) {
			if dirErrs[i] == nil {
				if err := flushDir(dirs[i]); err != nil {
					syncErrs[i] = fmt.Errorf("syncing %s: %w", dirs[i], err)
				}
			}
		})
		errs = append(errs, syncErrs...)
	}
	return errors.Join(errs...)
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

// writer holds the settings of one WriteAllWith call.
type writer struct {
	// suffix makes the temporary names of this process unique, so no
	// random names (and no retry loop) are needed.
	suffix string
	sync   bool
}

// mkdir creates d, and its parents when they are missing.
func mkdir(d string) error {
	// The output directory exists and the tree is one level deep, so a
	// single mkdir is the common case; MkdirAll covers the rest (and copes
	// with another goroutine creating the same parent).
	err := os.Mkdir(d, 0o755)
	if errors.Is(err, fs.ErrExist) {
		err = nil
	} else if errors.Is(err, fs.ErrNotExist) {
		err = os.MkdirAll(d, 0o755)
	}
	return err
}

// one writes f to dst, whose directory exists.
func (w *writer) one(dst string, f File) error {
	tmp := filepath.Join(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+w.suffix)
	if f.Link != "" {
		err := os.Symlink(f.Link, tmp)
		if errors.Is(err, fs.ErrExist) { // left over by a killed run
			_ = os.Remove(tmp)
			err = os.Symlink(f.Link, tmp)
		}
		if err == nil {
			err = rename(tmp, dst)
		}
		if err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("linking %s: %w", dst, err)
		}
		return nil
	}
	if err := w.writeFile(tmp, f.Content); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// writeFile creates tmp exclusively and writes content to it with plain
// system calls: open, write, close (and fsync with Sync). os.OpenFile would
// add about five more per file (fcntl, a failing epoll_ctl for a regular
// file), which is measurable at thousands of files.
func (w *writer) writeFile(tmp string, content []byte) error {
	const flags = syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL | syscall.O_CLOEXEC
	fd, err := openRetry(tmp, flags, 0o644)
	if err == syscall.EEXIST { // left over by a killed run
		_ = os.Remove(tmp)
		fd, err = openRetry(tmp, flags, 0o644)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	for len(content) > 0 && err == nil {
		var n int
		n, err = syscall.Write(fd, content)
		switch {
		case err == syscall.EINTR:
			err = nil
		case err == nil && n == 0:
			err = io.ErrShortWrite
		case err == nil:
			content = content[n:]
		}
	}
	if err == nil && w.sync {
		err = syscall.Fsync(fd)
	}
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: tmp, Err: err}
	}
	return nil
}

func openRetry(name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := syscall.Open(name, flags, mode)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// rename is os.Rename without its extra Lstat of the destination: the
// files written here never replace a directory (rename(2) would refuse).
func rename(from, to string) error {
	for {
		err := syscall.Rename(from, to)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
		return nil
	}
}

func flushDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
