package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	btrfsSuperMagic        = 0x9123683E
	btrfsFirstFreeObjectID = 256        // the inode of every subvolume's root directory
	ficlone                = 0x40049409 // FICLONE = _IOW(0x94, 9, int)
)

// magicNames names file systems by statfs magic, when mountinfo does not say.
var magicNames = map[int64]string{
	btrfsSuperMagic: "btrfs",
	0x58465342:      "xfs",
	0xEF53:          "ext2/3/4",
	0x01021994:      "tmpfs",
	0x794C7630:      "overlay",
	0x2FC12FC1:      "zfs",
	0xCA451A4E:      "bcachefs",
	0xF2F52010:      "f2fs",
	0x6969:          "nfs",
	0x65735546:      "fuse",
}

// Plan decides, for each of paths, the method and the destination <into>/<stack>/<name>
// (<name> the path's base name, made unique with -2, -3 ... in the order of paths). It
// changes nothing (apart from a probe file it creates and removes in the destination's file
// system when a reflink is considered), so a caller can refuse before the stack stops.
//
//   - Auto: a btrfs subvolume (inode 256 on btrfs) that can be snapshotted into <into> and
//     removed later gets Btrfs; else Reflink when source and destination are on the same file
//     system and it clones (FICLONE probe); else Plan refuses, naming the path, its file
//     system type and what to do.
//   - Btrfs: refused for a path that is not a subvolume, holds nested subvolumes (a snapshot
//     would leave them out), is on another file system than <into>, or whose snapshot this
//     process could not delete later (not root and no user_subvol_rm_allowed mount option).
//   - Reflink: refused unless it would work, as for Auto.
//   - Copy: refused when the destination's free space is below the data size + 10 %
//     (summed over every copied path on that file system; hard links count once).
//
// A data path holding what this user cannot read (a container user's 0700 directory) is
// walked in `podman unshare` when the Snapshotter works there (see walk).
func (s *Snapshotter) Plan(ctx context.Context, paths []string, into, stack string, m Method) ([]Item, error) {
	if !m.Valid() {
		return nil, fmt.Errorf("snapshot: method %q: want one of auto, btrfs, reflink, copy", m)
	}
	dir, err := stackDir(into, stack)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("snapshot: no paths to snapshot")
	}
	// The destination's file system: the nearest existing ancestor of <into>/<stack>.
	dstAnc, err := existingAncestor(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: the snapshot directory %s: %w", dir, err)
	}
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	dstMount := mounts.find(dstAnc)
	var dstStat syscall.Statfs_t
	if err := syscall.Statfs(dstAnc, &dstStat); err != nil {
		return nil, fmt.Errorf("snapshot: statfs %s: %w", dstAnc, err)
	}
	dstType := fsType(dstMount, dstStat.Type)

	p := &planner{s: s, mounts: mounts, dir: dir, dstAnc: dstAnc, dstMount: dstMount, dstType: dstType, dstIsBtrfs: int64(dstStat.Type) == btrfsSuperMagic}
	used := map[string]bool{}
	seen := map[string]string{}
	var items []Item
	for _, raw := range paths {
		if raw == "" || !filepath.IsAbs(raw) {
			return nil, fmt.Errorf("snapshot: path %q: must be an absolute path", raw)
		}
		src, err := filepath.EvalSymlinks(filepath.Clean(raw))
		if err != nil {
			return nil, fmt.Errorf("snapshot: path %s: %w", raw, err)
		}
		if prev, ok := seen[src]; ok {
			return nil, fmt.Errorf("snapshot: paths %s and %s are the same (%s)", prev, raw, src)
		}
		seen[src] = raw
		realDir := dir
		if r, err := filepath.EvalSymlinks(dstAnc); err == nil {
			realDir = filepath.Join(r, strings.TrimPrefix(dir, dstAnc))
		}
		if within(realDir, src) || within(src, realDir) {
			return nil, fmt.Errorf("snapshot: path %s and the snapshot directory %s overlap: put the snapshots outside the data", raw, dir)
		}
		base := filepath.Base(filepath.Clean(raw))
		if base == "/" || base == "." || base == ".." {
			return nil, fmt.Errorf("snapshot: path %s has no base name to name its snapshot", raw)
		}
		name := base
		for n := 2; used[name]; n++ {
			name = base + "-" + strconv.Itoa(n)
		}
		used[name] = true
		it, err := p.decide(ctx, src, raw, filepath.Join(dir, name), m)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if err := p.checkSpace(ctx, items); err != nil {
		return nil, err
	}
	return items, nil
}

type planner struct {
	s          *Snapshotter
	mounts     mountTable
	dir        string
	dstAnc     string
	dstMount   *mount
	dstType    string
	dstIsBtrfs bool
	reflink    *probeResult // the FICLONE probe, made once
}

type probeResult struct {
	ok  bool
	err error // why not
}

func (p *planner) decide(ctx context.Context, src, raw, dest string, m Method) (Item, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return Item{}, fmt.Errorf("snapshot: path %s: %w", raw, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(src, &st); err != nil {
		return Item{}, fmt.Errorf("snapshot: statfs %s: %w", raw, err)
	}
	srcMount := p.mounts.find(src)
	it := Item{Source: src, Dest: dest, FSType: fsType(srcMount, st.Type)}
	sameFS := sameFileSystem(srcMount, p.dstMount)

	var btrfsWhyNot error
	if int64(st.Type) != btrfsSuperMagic || !isSubvolumeRoot(fi) {
		btrfsWhyNot = fmt.Errorf("%s is not a btrfs subvolume (file system %s%s); a btrfs snapshot needs one: `btrfs subvolume create` it and move the data in, or use method = \"reflink\" or \"copy\"",
			raw, it.FSType, map[bool]string{true: ", a plain directory", false: ""}[int64(st.Type) == btrfsSuperMagic && fi.IsDir()])
	} else if !p.dstIsBtrfs || !sameFS {
		btrfsWhyNot = fmt.Errorf("the snapshot directory %s is not on the btrfs file system of %s (it is on %s at %s); a btrfs snapshot must be on the same file system: put the snapshots there, or use method = \"copy\"",
			p.dir, raw, p.dstType, mountPoint(p.dstMount))
	} else if err := p.canRemoveSubvolume(); err != nil {
		btrfsWhyNot = err
	} else if uid, ok := ownerOf(fi); ok && os.Geteuid() != 0 && uid != os.Geteuid() {
		// btrfs lets only the owner of a subvolume's top directory snapshot it, and make the
		// snapshot writable again to delete it (a container's user's sub-UID is not this user).
		btrfsWhyNot = fmt.Errorf("%s belongs to uid %d, not to this user (uid %d), so this user can neither snapshot it nor delete the snapshot; use method = \"reflink\" (run in podman unshare, it keeps every owner)",
			raw, uid, os.Geteuid())
	} else if nested, err := p.s.nestedSubvolume(ctx, src); err != nil {
		btrfsWhyNot = fmt.Errorf("looking for nested subvolumes in %s: %w", raw, err)
	} else if nested != "" {
		btrfsWhyNot = fmt.Errorf("%s holds the nested subvolume %s, which a snapshot of %s leaves out (empty): list it as a path of its own or use method = \"reflink\"", raw, nested, raw)
	}

	reflinkWhyNot := func() error {
		if !sameFS {
			return fmt.Errorf("%s (%s at %s) and the snapshot directory %s (%s at %s) are on different file systems; a reflink copy needs both on the same one: put the snapshots on the file system of the data, or use method = \"copy\"",
				raw, it.FSType, mountPoint(srcMount), p.dir, p.dstType, mountPoint(p.dstMount))
		}
		r := p.probeReflink()
		if r.ok {
			return nil
		}
		if r.err != nil {
			return fmt.Errorf("%s: cannot test whether %s can make reflinks: %w", raw, it.FSType, r.err)
		}
		return fmt.Errorf("the file system of %s (%s) cannot make reflink copies; use a btrfs subvolume, XFS made with reflink=1 (or btrfs) for the data, or set method = \"copy\" (a full copy, needs the space)",
			raw, it.FSType)
	}

	switch m {
	case Btrfs:
		if btrfsWhyNot != nil {
			return Item{}, fmt.Errorf("snapshot: method btrfs: %w", btrfsWhyNot)
		}
		it.Method = Btrfs
	case Reflink:
		if err := reflinkWhyNot(); err != nil {
			return Item{}, fmt.Errorf("snapshot: method reflink: %w", err)
		}
		it.Method = Reflink
	case Auto:
		if btrfsWhyNot == nil {
			it.Method = Btrfs
		} else if err := reflinkWhyNot(); err == nil {
			it.Method = Reflink
		} else {
			return Item{}, fmt.Errorf("snapshot: method auto: no snapshot possible without a full copy: %w", err)
		}
	case Copy:
		size, err := p.s.treeSize(ctx, src)
		if err != nil {
			return Item{}, fmt.Errorf("snapshot: method copy: measuring %s: %w", raw, err)
		}
		it.Method, it.Size = Copy, size
	}
	return it, nil
}

func ownerOf(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// canRemoveSubvolume: an unprivileged user can delete a subvolume only on a file system
// mounted with user_subvol_rm_allowed.
func (p *planner) canRemoveSubvolume() error {
	if os.Geteuid() == 0 {
		return nil
	}
	if p.dstMount != nil && (hasOption(p.dstMount.options, "user_subvol_rm_allowed") || hasOption(p.dstMount.superOptions, "user_subvol_rm_allowed")) {
		return nil
	}
	return fmt.Errorf("the btrfs file system at %s is not mounted with user_subvol_rm_allowed, so this user (uid %d) could not delete the snapshot afterwards: add the option to its mount (fstab), or use method = \"reflink\"",
		mountPoint(p.dstMount), os.Geteuid())
}

// probeReflink clones a small temp file into another in the destination's file system.
func (p *planner) probeReflink() probeResult {
	if p.reflink != nil {
		return *p.reflink
	}
	r := probeFICLONE(p.dstAnc)
	p.reflink = &r
	return r
}

func probeFICLONE(dir string) (res probeResult) {
	src, err := os.CreateTemp(dir, ".snapshot-probe-*")
	if err != nil {
		return probeResult{err: err}
	}
	defer func() { src.Close(); os.Remove(src.Name()) }()
	if _, err := src.Write(make([]byte, 4096)); err != nil {
		return probeResult{err: err}
	}
	if err := src.Sync(); err != nil {
		return probeResult{err: err}
	}
	dst, err := os.CreateTemp(dir, ".snapshot-probe-*")
	if err != nil {
		return probeResult{err: err}
	}
	defer func() { dst.Close(); os.Remove(dst.Name()) }()
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, dst.Fd(), ficlone, src.Fd())
	switch errno {
	case 0:
		return probeResult{ok: true}
	case syscall.EOPNOTSUPP, syscall.ENOTTY, syscall.EINVAL, syscall.EXDEV, syscall.ENOSYS:
		return probeResult{}
	default:
		return probeResult{err: fmt.Errorf("FICLONE: %w", errno)}
	}
}

// checkSpace: for every destination file system, free space ≥ the copied data + 10 %. A stale
// snapshot at a copy's destination is removed before the copy, so its size counts as free.
func (p *planner) checkSpace(ctx context.Context, items []Item) error {
	var need, stale int64
	var names []string
	for _, it := range items {
		if it.Method != Copy {
			continue
		}
		need += it.Size
		names = append(names, it.Source)
		if _, err := os.Lstat(it.Dest); err == nil {
			if n, err := p.s.treeSize(ctx, it.Dest); err == nil {
				stale += n
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p.dstAnc, &st); err != nil {
		return fmt.Errorf("snapshot: statfs %s: %w", p.dstAnc, err)
	}
	free := int64(st.Bavail)*int64(st.Bsize) + stale
	want := need + int64(float64(need)*CopyMargin)
	if free < want {
		return fmt.Errorf("snapshot: method copy: %s needs %s free for copying %s (%s + 10 %%), but %s has %s free: free space there, put the snapshots on a larger file system, or use a file system with reflinks (XFS, btrfs) and method = \"auto\"",
			p.dstType+" at "+mountPoint(p.dstMount), human(want), strings.Join(names, ", "), human(need), p.dir, human(free))
	}
	return nil
}

func existingAncestor(p string) (string, error) {
	for {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		p = parent
	}
}

func isBtrfs(p string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(p, &st) == nil && int64(st.Type) == btrfsSuperMagic
}

func fsType(m *mount, magic int64) string {
	if m != nil && m.fsType != "" {
		return m.fsType
	}
	if n, ok := magicNames[magic]; ok {
		return n
	}
	return fmt.Sprintf("unknown (statfs magic %#x)", magic)
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
