// Package snapshot freezes a stack's data paths into <into>/<stack>/<name> while the stack is
// stopped, so that the stack can restart at once and Duplicati backs up the frozen copy.
//
// Plan decides, per path, how (a read-only btrfs subvolume snapshot, a reflink copy or, only
// when asked, a full copy) and where, and refuses before anything changes; Take makes the
// snapshots; Remove takes them away again. Commands run through a Runner, so
// the argument vectors can be checked without root.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Method is how a path is frozen.
type Method string

const (
	// Auto picks Btrfs for a btrfs subvolume, else Reflink when the file system can, else refuses.
	Auto Method = "auto"
	// Btrfs is a read-only btrfs subvolume snapshot (`btrfs subvolume snapshot -r`).
	Btrfs Method = "btrfs"
	// Reflink is a copy sharing the data blocks (`cp -a --reflink=always`): XFS, btrfs, bcachefs ...
	Reflink Method = "reflink"
	// Copy is a full copy (`cp -a`), used only when asked, after a free-space check.
	Copy Method = "copy"
)

// Methods lists the valid methods, Auto first.
var Methods = []Method{Auto, Btrfs, Reflink, Copy}

// Valid reports whether m is one of Methods.
func (m Method) Valid() bool {
	for _, v := range Methods {
		if m == v {
			return true
		}
	}
	return false
}

// Item is one planned snapshot.
type Item struct {
	Source string // the data path, absolute and clean
	Dest   string // <into>/<stack>/<name>
	Method Method // Btrfs, Reflink or Copy (never Auto)
	FSType string // the source's file system type (from /proc/self/mountinfo), for messages
	Size   int64  // bytes of data counted for Copy (hard links once); 0 for the other methods
}

// CopyMargin is the free space Copy asks for beyond the data size: 10 %.
const CopyMargin = 0.10

// cleanupTimeout bounds the removal Take does after a failure or cancellation (it runs with a
// context that is no longer cancelled, so that a cancelled Take still leaves nothing behind).
const cleanupTimeout = 2 * time.Minute

// Snapshotter runs the commands of Plan, Take and Remove through Runner.
type Snapshotter struct {
	Runner Runner
	// Unshare runs the copies (reflink and copy) and the removal of copied trees inside
	// `podman unshare`, the user namespace of the user's rootless containers: there the files
	// of a container's non-root user (owned by a sub-UID on the host) can be read, keep their
	// owner in the copy (cp -a cannot chown outside it) and can be removed again. Btrfs
	// snapshots need none of that: they keep every owner by themselves.
	Unshare bool
	// localWalk replaces walkLocal in tests (as root nothing is unreadable).
	localWalk func(root string, dirs bool, visit func(entry) error) error
}

// ForUser returns the Snapshotter for this process: real commands, with Unshare for a user
// other than root who has podman (a rootless Podman user).
func ForUser() *Snapshotter {
	s := New(ExecRunner{})
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("podman"); err == nil {
			s.Unshare = true
		}
	}
	return s
}

// copyCmd runs a command that copies or removes a copied tree: inside `podman unshare` when
// s.Unshare is set.
func (s *Snapshotter) copyCmd(ctx context.Context, name string, args ...string) error {
	if s.Unshare {
		return s.Runner.Run(ctx, "podman", append([]string{"unshare", name}, args...)...)
	}
	return s.Runner.Run(ctx, name, args...)
}

// New returns a Snapshotter over r (ExecRunner when r is nil).
func New(r Runner) *Snapshotter {
	if r == nil {
		r = ExecRunner{}
	}
	return &Snapshotter{Runner: r}
}

// Default is the Snapshotter of the package-level functions: real commands.
var Default = New(ExecRunner{})

// Plan plans the snapshots of paths with Default; see Snapshotter.Plan.
func Plan(paths []string, into, stack string, m Method) ([]Item, error) {
	return Default.Plan(context.Background(), paths, into, stack, m)
}

// Take makes the snapshots of items with Default; see Snapshotter.Take.
func Take(ctx context.Context, items []Item) error { return Default.Take(ctx, items) }

// Remove removes the snapshots of items with Default; see Snapshotter.Remove.
func Remove(ctx context.Context, items []Item) error { return Default.Remove(ctx, items) }

// Take makes the snapshots: a snapshot at a destination left by an earlier crash is removed
// first (replaced). Btrfs snapshots are read-only. When one fails (or ctx is cancelled), the
// ones already made and the partial one are removed again and the error returned; so Take
// either makes all of items or leaves none of them.
func (s *Snapshotter) Take(ctx context.Context, items []Item) error {
	for i, it := range items {
		if err := checkItem(it); err != nil {
			return err
		}
		for _, o := range items[:i] {
			if o.Dest == it.Dest {
				return fmt.Errorf("snapshot: two items share the destination %s", it.Dest)
			}
		}
	}
	for i, it := range items {
		err := ctx.Err()
		if err == nil {
			err = s.take(ctx, it)
		}
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if rerr := s.Remove(cctx, items[:i+1]); rerr != nil {
				err = errors.Join(err, fmt.Errorf("snapshot: cleaning up after the failure: %w", rerr))
			}
			return err
		}
	}
	return nil
}

func (s *Snapshotter) take(ctx context.Context, it Item) error {
	parent := filepath.Dir(it.Dest)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("snapshot %s: %w", it.Source, err)
	}
	// A snapshot left by an earlier crash: replace it.
	if err := s.removeTree(ctx, it.Dest); err != nil {
		return fmt.Errorf("snapshot %s: removing the stale %s: %w", it.Source, it.Dest, err)
	}
	var err error
	switch it.Method {
	case Btrfs:
		err = s.Runner.Run(ctx, "btrfs", "subvolume", "snapshot", "-r", it.Source, it.Dest)
	case Reflink:
		err = s.copyCmd(ctx, "cp", "-a", "--reflink=always", "-T", "--", it.Source, it.Dest)
	case Copy:
		err = s.copyCmd(ctx, "cp", "-a", "-T", "--", it.Source, it.Dest)
	}
	if err != nil {
		return fmt.Errorf("snapshot %s (%s): %w", it.Source, it.Method, err)
	}
	return nil
}

// Remove removes the snapshots of items: a btrfs snapshot with `btrfs property set DST ro
// false` and `btrfs subvolume delete DST`, the others as a tree, then <into>/<stack> when it is
// empty. A destination that does not exist is not an error. Every failure is reported, joined with errors.Join.
func (s *Snapshotter) Remove(ctx context.Context, items []Item) error {
	var errs []error
	for _, it := range items {
		if it.Dest == "" || !filepath.IsAbs(it.Dest) {
			errs = append(errs, fmt.Errorf("snapshot: remove: destination %q is not an absolute path", it.Dest))
			continue
		}
		if err := s.removeTree(ctx, it.Dest); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: removing %s: %w", it.Dest, err))
		}
	}
	// <into>/<stack> too, once empty (Take made it); a directory still holding something stays.
	for _, it := range items {
		if it.Dest != "" && filepath.IsAbs(it.Dest) {
			_ = syscall.Rmdir(filepath.Dir(it.Dest))
		}
	}
	return errors.Join(errs...)
}

// removeTree removes p whatever it is: nothing, a file, a btrfs subvolume (made writable
// first), or a directory tree that may hold btrfs subvolumes (removed with btrfs, for an
// unprivileged user cannot rmdir them otherwise) and directories without write permission.
func (s *Snapshotter) removeTree(ctx context.Context, p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return os.Remove(p)
	}
	onBtrfs := isBtrfs(p)
	if onBtrfs && isSubvolumeRoot(fi) {
		if err := s.Runner.Run(ctx, "btrfs", "property", "set", p, "ro", "false"); err != nil {
			return err
		}
		err := s.Runner.Run(ctx, "btrfs", "subvolume", "delete", p)
		if err == nil {
			return nil
		}
		// It may hold nested subvolumes (a stale tree not made by Take): remove them first.
		if nerr := s.removeNested(ctx, p, fi); nerr != nil {
			return errors.Join(err, nerr)
		}
		return s.Runner.Run(ctx, "btrfs", "subvolume", "delete", p)
	}
	if onBtrfs {
		if err := s.removeNested(ctx, p, fi); err != nil {
			return err
		}
	}
	if s.Unshare {
		// Sub-UID owned directories (0700 of a container's user) cannot be emptied from
		// outside the user namespace; --one-file-system never crosses into a mount.
		return s.copyCmd(ctx, "rm", "-rf", "--one-file-system", "--", p)
	}
	return removeAll(p)
}

// removeNested removes the btrfs subvolumes below the directory root (whose Lstat is rfi).
func (s *Snapshotter) removeNested(ctx context.Context, root string, rfi os.FileInfo) error {
	var errs []error
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrPermission) && d != nil && d.IsDir() && p != root {
				// Unreadable directory: make it readable (ours: we are removing it) and retry.
				if os.Chmod(p, 0o700) == nil {
					errs = append(errs, s.removeNested(ctx, p, nil))
					return filepath.SkipDir
				}
			}
			errs = append(errs, err)
			return nil
		}
		if p == root || !d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if isSubvolumeRoot(fi) {
			errs = append(errs, s.removeTree(ctx, p))
			return filepath.SkipDir
		}
		return nil
	})
	errs = append(errs, err)
	return errors.Join(errs...)
}

// removeAll is os.RemoveAll that also removes directories the owner took write or search
// permission from (a copy keeps modes such as 0555): it adds u+rwx to them and retries.
func removeAll(p string) error {
	err := os.RemoveAll(p)
	if err == nil || !errors.Is(err, os.ErrPermission) {
		return err
	}
	_ = filepath.WalkDir(p, func(q string, d os.DirEntry, werr error) error {
		if d != nil && d.IsDir() {
			if fi, err := d.Info(); err == nil && fi.Mode().Perm()&0o700 != 0o700 {
				_ = os.Chmod(q, fi.Mode().Perm()|0o700)
				if werr != nil { // could not read it before the chmod: walk it again
					_ = removeAll(q)
					return filepath.SkipDir
				}
			}
		}
		return nil
	})
	return os.RemoveAll(p)
}

func checkItem(it Item) error {
	switch it.Method {
	case Btrfs, Reflink, Copy:
	default:
		return fmt.Errorf("snapshot %s: method %q: not one of btrfs, reflink, copy (Plan resolves auto)", it.Source, it.Method)
	}
	if !filepath.IsAbs(it.Source) || !filepath.IsAbs(it.Dest) {
		return fmt.Errorf("snapshot: source %q and destination %q must be absolute paths", it.Source, it.Dest)
	}
	if within(it.Dest, it.Source) || within(it.Source, it.Dest) {
		return fmt.Errorf("snapshot: source %s and destination %s overlap", it.Source, it.Dest)
	}
	return nil
}

// within reports whether p is dir or below it (both clean).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func stackDir(into, stack string) (string, error) {
	if into == "" || !filepath.IsAbs(into) {
		return "", fmt.Errorf("snapshot: the snapshot directory %q must be an absolute path", into)
	}
	if stack == "" || stack == "." || stack == ".." || strings.ContainsAny(stack, "/\x00") {
		return "", fmt.Errorf("snapshot: stack name %q cannot be a directory name", stack)
	}
	return filepath.Join(filepath.Clean(into), stack), nil
}

// isSubvolumeRoot reports whether fi (of a directory on btrfs) is a subvolume's root: inode 256.
func isSubvolumeRoot(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.IsDir() && st.Ino == btrfsFirstFreeObjectID
}
