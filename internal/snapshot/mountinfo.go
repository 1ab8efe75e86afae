package snapshot

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// mount is one line of /proc/self/mountinfo.
type mount struct {
	id           int
	devID        string // major:minor
	root         string // the mount's root within its file system
	point        string
	options      string
	fsType       string
	source       string
	superOptions string
}

type mountTable []mount

func readMountinfo() (mountTable, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	var t mountTable
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if m, ok := parseMountinfoLine(sc.Text()); ok {
			t = append(t, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: reading /proc/self/mountinfo: %w", err)
	}
	return t, nil
}

// parseMountinfoLine parses
// "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
func parseMountinfoLine(line string) (mount, bool) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+3 {
		return mount{}, false
	}
	id, err := strconv.Atoi(f[0])
	if err != nil {
		return mount{}, false
	}
	m := mount{id: id, devID: f[2], root: unescape(f[3]), point: unescape(f[4]), options: f[5],
		fsType: f[sep+1], source: unescape(f[sep+2])}
	if len(f) > sep+3 {
		m.superOptions = f[sep+3]
	}
	return m, true
}

// unescape undoes mountinfo's octal escapes (\040 for a space ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// find returns the mount holding path (resolved): the longest mount point that contains it,
// the later of equal ones (mounted on top). nil when none does.
func (t mountTable) find(path string) *mount {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		path = r
	}
	var best *mount
	for i := range t {
		m := &t[i]
		if !within(path, m.point) {
			continue
		}
		if best == nil || len(m.point) >= len(best.point) {
			best = m
		}
	}
	return best
}

// sameFileSystem: the same mount, or two mounts of the same device and file system type
// (bind mounts, or two subvolumes of one btrfs). Unknown mounts are not the same.
func sameFileSystem(a, b *mount) bool {
	if a == nil || b == nil {
		return false
	}
	if a.id == b.id || a.devID == b.devID {
		return true
	}
	return a.fsType == b.fsType && a.source == b.source && strings.HasPrefix(a.source, "/dev/")
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

func mountPoint(m *mount) string {
	if m == nil {
		return "an unknown mount point"
	}
	return m.point
}
