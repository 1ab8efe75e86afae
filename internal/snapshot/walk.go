package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"syscall"
)

// entry is what Plan's checks need of one file under a path: the size check of a copy and
// the look for nested subvolumes.
type entry struct {
	path       string
	dev, ino   uint64
	nlink      uint64
	size       int64
	dir, plain bool // a directory; a regular file
	symlink    bool
}

// errWalkDone ends a walk early, without an error: the visitor has its answer.
var errWalkDone = errors.New("walk done")

// walk calls visit for root and the directories below it (dirs, root first), or for
// everything below root that is not a directory (!dirs), not following symlinks: each
// check needs only one kind, and a directory's stat is not needed to count a file's size.
// A data path of a rootless stack often holds directories of a container's user: owned by
// a sub-UID and 0700, like a database's, which this user cannot read. When the local walk
// meets one and the Snapshotter works in `podman unshare` (where such files are readable and
// keep their owners), the whole walk is made again there. mk gives a fresh visitor for
// each walk, so that nothing the first one counted is counted twice.
func (s *Snapshotter) walk(ctx context.Context, root string, dirs bool, mk func() func(entry) error) error {
	local := s.localWalk
	if local == nil {
		local = walkLocal
	}
	err := local(root, dirs, mk())
	if !s.Unshare || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if uerr := s.walkUnshare(ctx, root, dirs, mk()); uerr != nil {
		return fmt.Errorf("%w; in podman unshare: %w", err, uerr)
	}
	return nil
}

func walkLocal(root string, dirs bool, visit func(entry) error) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() != dirs {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		return visit(entry{path: p, dev: uint64(st.Dev), ino: st.Ino, nlink: uint64(st.Nlink), size: fi.Size(),
			dir: fi.IsDir(), plain: fi.Mode().IsRegular(), symlink: fi.Mode()&fs.ModeSymlink != 0})
	})
	if errors.Is(err, errWalkDone) {
		return nil
	}
	return err
}

// unshareFindFormat is find's record of a file: device, inode, links, size, type, path, NUL
// (a path may hold any byte but NUL).
const unshareFindFormat = `%D %i %n %s %y %p\0`

// walkUnshare walks root with find inside `podman unshare`.
func (s *Snapshotter) walkUnshare(ctx context.Context, root string, dirs bool, visit func(entry) error) error {
	w := &recordWriter{visit: visit}
	// root is absolute (Plan refuses anything else), so find cannot take it for an option.
	err := s.Runner.Stream(ctx, w, "podman", append([]string{"unshare", "find", root}, findArgs(dirs)...)...)
	if w.err != nil && !errors.Is(w.err, errWalkDone) {
		return w.err
	}
	if err != nil {
		return err
	}
	if len(w.buf) > 0 {
		return fmt.Errorf("find: output ends without a NUL: %q", w.buf)
	}
	return nil
}

// findArgs selects what walk visits and prints it as unshareFindFormat.
func findArgs(dirs bool) []string {
	if dirs {
		return []string{"-type", "d", "-printf", unshareFindFormat}
	}
	return []string{"!", "-type", "d", "-printf", unshareFindFormat}
}

// recordWriter parses find's records as they come and hands them to visit. After visit
// has its answer (errWalkDone) or a record is bad, it takes the rest without reading it:
// find must be able to write to its end.
type recordWriter struct {
	visit func(entry) error
	buf   []byte
	err   error
}

func (w *recordWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	rest := w.buf
	for {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			break
		}
		e, err := parseFindRecord(rest[:i])
		if err == nil {
			err = w.visit(e)
		}
		if err != nil {
			w.err, w.buf = err, nil
			return len(p), nil
		}
		rest = rest[i+1:]
	}
	w.buf = append(w.buf[:0], rest...)
	return len(p), nil
}

// parseFindRecord reads "dev ino nlink size type path".
func parseFindRecord(r []byte) (entry, error) {
	var nums [4]uint64
	rest := r
	for i := range nums {
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 {
			return entry{}, fmt.Errorf("find: bad record %q", r)
		}
		n, err := strconv.ParseUint(string(rest[:sp]), 10, 64)
		if err != nil {
			return entry{}, fmt.Errorf("find: bad record %q: %w", r, err)
		}
		nums[i], rest = n, rest[sp+1:]
	}
	if len(rest) < 3 || rest[1] != ' ' {
		return entry{}, fmt.Errorf("find: bad record %q", r)
	}
	kind, path := rest[0], string(rest[2:])
	return entry{path: path, dev: nums[0], ino: nums[1], nlink: nums[2], size: int64(nums[3]),
		dir: kind == 'd', plain: kind == 'f', symlink: kind == 'l'}, nil
}

// treeSize sums the sizes of the regular files (each inode once) and symlinks under root.
func (s *Snapshotter) treeSize(ctx context.Context, root string) (int64, error) {
	var total int64
	err := s.walk(ctx, root, false, func() func(entry) error {
		type key struct{ dev, ino uint64 }
		seen := map[key]bool{}
		total = 0
		return func(e entry) error {
			if e.plain && e.nlink > 1 {
				k := key{e.dev, e.ino}
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			if e.plain || e.symlink {
				total += e.size
			}
			return nil
		}
	})
	return total, err
}

// nestedSubvolume returns the first subvolume (or other file system) below the subvolume
// root, "" when there is none: a directory whose device differs from the root's, or whose
// inode is 256, the root inode of every btrfs subvolume.
func (s *Snapshotter) nestedSubvolume(ctx context.Context, root string) (string, error) {
	found := ""
	err := s.walk(ctx, root, true, func() func(entry) error {
		first, rdev := true, uint64(0)
		found = ""
		return func(e entry) error {
			if first {
				first, rdev = false, e.dev
				return nil
			}
			if e.dir && (e.dev != rdev || e.ino == btrfsFirstFreeObjectID) {
				found = e.path
				return errWalkDone
			}
			return nil
		}
	})
	return found, err
}
