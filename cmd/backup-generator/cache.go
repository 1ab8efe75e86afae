package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/backup-stack/backup-stack/hcl"
)

// defaultCacheFile is $XDG_RUNTIME_DIR/backup-stack/generator-cache: on
// the user's tmpfs, so it never outlives a boot and costs no disk write.
// Without $XDG_RUNTIME_DIR there is no cache.
func defaultCacheFile() string {
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(rt) {
		return ""
	}
	return filepath.Join(rt, "backup-stack", "generator-cache")
}

// loadOptions enables the decode cache in file, keyed by this build.
func loadOptions(file string) hcl.LoadOptions {
	if file == "" {
		return hcl.LoadOptions{}
	}
	return hcl.LoadOptions{CacheFile: file, CacheKey: buildKey()}
}

// buildKey identifies this program: its build information and its
// executable file, so that a cache written by another build (an update,
// or a rebuild from a modified tree with the same VCS revision) is not
// used. "" (no cache) when the executable cannot be found.
func buildKey() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	var st syscall.Stat_t
	if err := syscall.Stat(exe, &st); err != nil {
		return ""
	}
	var b strings.Builder
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(&b, "%s %s %s;", bi.GoVersion, bi.Main.Path, bi.Main.Version)
		for _, s := range bi.Settings {
			if strings.HasPrefix(s.Key, "vcs.") {
				fmt.Fprintf(&b, "%s=%s;", s.Key, s.Value)
			}
		}
	}
	fmt.Fprintf(&b, "exe=%s size=%d mtime=%d ctime=%d ino=%d", exe, st.Size, st.Mtim.Nano(), st.Ctim.Nano(), st.Ino)
	return b.String()
}
