package units

// Managed output: the rootless install (`backup-stack render DIR`)
// writes the same files the generator would, but into a directory the user
// shares with their own units (~/.config/systemd/user). A manifest in that
// directory lists what backup-generator wrote, so that
//
//   - files of stacks that are gone are removed on the next run,
//   - a file backup-generator did not write is never touched, and never
//     overwritten: a run that would overwrite one changes nothing and fails,
//   - everything can be removed again (RemoveManaged, used by uninstall).
//
// Every file, and the manifest itself, is written to a temporary name,
// fsynced, renamed into place and its directory fsynced. The manifest is
// written first as the union of the old and the new list (an intent log),
// so a crash at any point leaves nothing on disk that the manifest does not
// list; the final manifest then lists exactly what is there.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/backup-stack/backup-stack/internal/atomicfile"
)

// ManifestName is the file, in a managed directory, that lists what
// backup-generator wrote there.
const ManifestName = ".backup-generator-manifest"

const manifestHeader = "# Files written by `backup-stack render` into this directory, one per line:\n" +
	"# f = regular file, l = symlink, d = directory it created. Files not listed are never touched.\n"

// ManagedResult says what WriteManaged or RemoveManaged did; paths are
// relative to the managed directory, sorted.
type ManagedResult struct {
	Written   []string // created or changed
	Unchanged []string // already had the wanted content
	Removed   []string // stale files and directories removed
}

// ForeignFileError is returned when a file that would be written exists
// but is not in the manifest: it belongs to someone else.
type ForeignFileError struct {
	Dir   string
	Paths []string // relative to Dir
}

func (e *ForeignFileError) Error() string {
	return fmt.Sprintf("refusing to overwrite %s in %s: not written by backup-generator (not listed in %s); "+
		"move it away (or merge it into your stack file) and run again; nothing was changed",
		strings.Join(e.Paths, ", "), e.Dir, ManifestName)
}

type manifest struct {
	kind map[string]byte // path -> 'f', 'l' or 'd'
}

func (m *manifest) add(p string, k byte) { m.kind[p] = k }

func (m *manifest) sorted() []string {
	out := make([]string, 0, len(m.kind))
	for p := range m.kind {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (m *manifest) encode() []byte {
	var b bytes.Buffer
	b.WriteString(manifestHeader)
	for _, p := range m.sorted() {
		fmt.Fprintf(&b, "%c %s\n", m.kind[p], p)
	}
	return b.Bytes()
}

// checkRel accepts a clean, relative, '/'-separated path inside the dir.
func checkRel(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." ||
		strings.HasPrefix(p, "../") || strings.ContainsAny(p, "\n\r\x00\\") {
		return fmt.Errorf("%q is not a clean relative path", p)
	}
	if p == ManifestName {
		return fmt.Errorf("%q is the manifest", p)
	}
	return nil
}

func readManifest(dir string) (*manifest, error) {
	m := &manifest{kind: map[string]byte{}}
	name := filepath.Join(dir, ManifestName)
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 3 || line[1] != ' ' || !strings.ContainsRune("fld", rune(line[0])) {
			return nil, fmt.Errorf("%s:%d: not \"f|l|d PATH\": %q", name, n, line)
		}
		p := line[2:]
		if err := checkRel(p); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		m.add(p, line[0])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// writeManifest writes the manifest atomically; an empty one is removed.
func writeManifest(dir string, m *manifest) error {
	name := filepath.Join(dir, ManifestName)
	if len(m.kind) == 0 {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return syncDir(dir)
	}
	return writeFileSync(name, m.encode(), 0o644)
}

// writeFileSync writes name atomically and durably.
func writeFileSync(name string, content []byte, mode os.FileMode) error {
	return atomicfile.Write(name, content, mode)
}

func symlinkSync(target, name string) error {
	d := filepath.Dir(name)
	tmp := filepath.Join(d, ".tmp-"+filepath.Base(name))
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(d)
}

func syncDir(d string) error { return atomicfile.SyncDir(d) }

// parents returns the directories above p inside the managed dir, outermost first.
func parents(p string) []string {
	var out []string
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// WriteManaged makes dir hold exactly files, as far as backup-generator's
// own files go: it writes what is new or changed, leaves identical files
// alone (their mtime too), removes files listed in the old manifest that
// are no longer wanted (and directories it created that are now empty),
// and records the result in the manifest. A wanted file that exists but is
// not in the old manifest makes it return a *ForeignFileError before
// anything is changed.
func WriteManaged(dir string, files []File) (ManagedResult, error) {
	var res ManagedResult
	if len(files) > 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, err
		}
	} else if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	old, err := readManifest(dir)
	if err != nil {
		return res, err
	}
	want := map[string]File{}
	wantDirs := map[string]bool{}
	for _, f := range files {
		if err := checkRel(f.Path); err != nil {
			return res, fmt.Errorf("file to write: %v", err)
		}
		if _, dup := want[f.Path]; dup {
			return res, fmt.Errorf("file to write: %s twice", f.Path)
		}
		want[f.Path] = f
		for _, d := range parents(f.Path) {
			wantDirs[d] = true
		}
	}

	// Refuse before changing anything.
	var foreign []string
	var newDirs []string
	for p := range wantDirs {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			newDirs = append(newDirs, p)
		case err != nil:
			return res, err
		case !fi.IsDir():
			foreign = append(foreign, p)
		}
	}
	for p := range want {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR): // ENOTDIR: a parent is foreign, reported above
		case err != nil:
			return res, err
		case fi.IsDir():
			foreign = append(foreign, p)
		default:
			if k := old.kind[p]; k != 'f' && k != 'l' {
				foreign = append(foreign, p)
			}
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return res, &ForeignFileError{Dir: dir, Paths: foreign}
	}
	sort.Strings(newDirs)

	// Intent: everything old and everything about to be written.
	intent := &manifest{kind: map[string]byte{}}
	for p, k := range old.kind {
		intent.add(p, k)
	}
	for p, f := range want {
		intent.add(p, kindOf(f))
	}
	for _, d := range newDirs {
		intent.add(d, 'd')
	}
	if !bytes.Equal(intent.encode(), old.encode()) {
		if err := writeManifest(dir, intent); err != nil {
			return res, fmt.Errorf("writing manifest: %w", err)
		}
	}

	var errs []error
	for _, d := range newDirs {
		if err := os.Mkdir(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			errs = append(errs, err)
		}
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := want[p]
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if same(dst, f) {
			res.Unchanged = append(res.Unchanged, p)
			continue
		}
		var err error
		if f.Link != "" {
			err = symlinkSync(f.Link, dst)
		} else {
			err = writeFileSync(dst, f.Content, 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("writing %s: %w", dst, err))
			continue
		}
		res.Written = append(res.Written, p)
	}

	final := &manifest{kind: map[string]byte{}}
	for p, f := range want {
		final.add(p, kindOf(f))
	}
	// Stale files first, then the directories that held them, deepest first.
	var staleDirs []string
	for _, p := range old.sorted() {
		if _, ok := want[p]; ok {
			continue
		}
		if old.kind[p] == 'd' {
			if !wantDirs[p] {
				staleDirs = append(staleDirs, p)
			}
			continue
		}
		err := os.Remove(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case err == nil:
			res.Removed = append(res.Removed, p)
		case errors.Is(err, fs.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("removing stale %s: %w", p, err))
			final.add(p, old.kind[p])
		}
	}
	sort.Slice(staleDirs, func(i, j int) bool { return strings.Count(staleDirs[i], "/") > strings.Count(staleDirs[j], "/") })
	for _, d := range staleDirs {
		if removeDirIfEmpty(filepath.Join(dir, filepath.FromSlash(d))) {
			res.Removed = append(res.Removed, d+"/")
		} else {
			// Someone else put files in it: keep tracking it so that a
			// later run can remove it once it is empty.
			final.add(d, 'd')
		}
	}
	for p, k := range old.kind {
		if k == 'd' && wantDirs[p] {
			final.add(p, 'd')
		}
	}
	for _, d := range newDirs {
		final.add(d, 'd')
	}
	if len(res.Removed) > 0 {
		_ = syncDir(dir)
	}
	// On disk now: intent (written above, or equal to the old manifest).
	if !bytes.Equal(final.encode(), intent.encode()) {
		if err := writeManifest(dir, final); err != nil {
			errs = append(errs, fmt.Errorf("writing manifest: %w", err))
		}
	}
	sort.Strings(res.Removed)
	return res, errors.Join(errs...)
}

// RemoveManaged removes every file listed in dir's manifest, the
// directories it created (when empty) and the manifest itself.
func RemoveManaged(dir string) (ManagedResult, error) {
	return WriteManaged(dir, nil)
}

func kindOf(f File) byte {
	if f.Link != "" {
		return 'l'
	}
	return 'f'
}

// same reports whether dst already is f (same symlink target, or a regular
// file with the same content and mode 0644).
func same(dst string, f File) bool {
	fi, err := os.Lstat(dst)
	if err != nil {
		return false
	}
	if f.Link != "" {
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false
		}
		t, err := os.Readlink(dst)
		return err == nil && t == f.Link
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || fi.Size() != int64(len(f.Content)) {
		return false
	}
	b, err := os.ReadFile(dst)
	return err == nil && bytes.Equal(b, f.Content)
}

// removeDirIfEmpty removes d only if it is an empty directory (rmdir never
// removes a file, whatever now stands at that path).
func removeDirIfEmpty(d string) bool {
	err := syscall.Rmdir(d)
	return err == nil || errors.Is(err, syscall.ENOENT)
}
