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
	fh, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	_, err = fh.Write(f.Content)
	if cerr := fh.Close(); err == nil {
		err = cerr
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
