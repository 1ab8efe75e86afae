package hcl

// The decode cache: parsing stack files with hcl/v2 is most of what the
// generator does, and on a daemon-reload the files rarely changed. The
// cache is one file (LoadOptions.CacheFile, normally on the tmpfs below
// $XDG_RUNTIME_DIR) holding, per stack file, what LoadStackFile returned:
// the stack (or nil) and the diagnostics, so a cached file's warnings and
// errors are still reported.
//
// An entry is used only when all of these match: the cache format, the
// caller's key (the program build), the bytes of config.hcl (a stack
// inherits its defaults) and the stack file's absolute path, size, mtime
// and ctime in nanoseconds, inode and device. ctime cannot be set by a
// user, so even a `touch -r` after an edit shows. Files changed in the
// last second before the cache is written are not stored (a second write
// within the same timestamp tick would otherwise go unseen). A cache that
// is missing, unreadable, truncated, fails its checksum or does not decode
// is ignored: everything is parsed as without a cache. The cache is
// rewritten (atomically: temporary file and rename) only when it was
// missing, stale or incomplete.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	hhcl "github.com/hashicorp/hcl/v2"
)

// cacheMagic starts every cache file; change it when the format changes.
const cacheMagic = "backup-stack generator-cache v1\n"

// racyWindow: files whose mtime or ctime is this close to the time the
// cache is written are not stored.
const racyWindow = time.Second

// LoadOptions tune LoadWith.
type LoadOptions struct {
	// CacheFile enables the decode cache in this file; empty: no cache.
	CacheFile string
	// CacheKey identifies the program that writes the cache (its build);
	// a cache written under another key is ignored. Without a key the
	// cache is not used.
	CacheKey string

	// settle replaces racyWindow in tests.
	settle time.Duration
}

// fileKey identifies the version of a stack file that an entry was made from.
type fileKey struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
	Ino   uint64 `json:"ino"`
	Dev   uint64 `json:"dev"`
}

func statKey(path string) (fileKey, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileKey{}, false
	}
	return fileKey{
		Size:  st.Size,
		Mtime: st.Mtim.Nano(),
		Ctime: st.Ctim.Nano(),
		Ino:   st.Ino,
		Dev:   uint64(st.Dev), //nolint:unconvert // int32 or uint64 by platform
	}, true
}

// cachedDiag is the part of a diagnostic that is reported (FormatDiag).
type cachedDiag struct {
	Severity hhcl.DiagnosticSeverity `json:"severity"`
	Summary  string                  `json:"summary"`
	Detail   string                  `json:"detail,omitempty"`
	Subject  *hhcl.Range             `json:"subject,omitempty"`
	Context  *hhcl.Range             `json:"context,omitempty"`
}

type cacheEntry struct {
	Key   fileKey      `json:"key"`
	Stack *Stack       `json:"stack"`
	Diags []cachedDiag `json:"diags,omitempty"`
}

type cacheData struct {
	Key     string                 `json:"key"`
	Config  string                 `json:"config"` // sha256 of config.hcl, "" when absent
	Entries map[string]*cacheEntry `json:"entries"`
}

func configDigest(src []byte, present bool) string {
	if !present {
		return ""
	}
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])
}

// readCache returns the entries of the cache file when it is intact and
// was written under key for this config.hcl; nil otherwise.
func readCache(path, key, config string) map[string]*cacheEntry {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	body, ok := bytes.CutPrefix(b, []byte(cacheMagic))
	if !ok || len(body) < 9 || body[8] != '\n' {
		return nil
	}
	sum, err := strconv.ParseUint(string(body[:8]), 16, 32)
	if err != nil || uint32(sum) != crc32.Checksum(body[9:], crc32.MakeTable(crc32.Castagnoli)) {
		return nil
	}
	var c cacheData
	if err := json.Unmarshal(body[9:], &c); err != nil || c.Key != key || c.Config != config || c.Entries == nil {
		return nil
	}
	return c.Entries
}

// writeCache replaces the cache file; failures are ignored (it is a cache).
func writeCache(path, key, config string, entries map[string]*cacheEntry) {
	payload, err := json.Marshal(cacheData{Key: key, Config: config, Entries: entries})
	if err != nil {
		return
	}
	var b bytes.Buffer
	b.Grow(len(cacheMagic) + 9 + len(payload))
	b.WriteString(cacheMagic)
	sum := strconv.FormatUint(uint64(crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli))), 16)
	b.WriteString("00000000"[len(sum):] + sum + "\n")
	b.Write(payload)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
	}
}

func toCached(diags hhcl.Diagnostics) []cachedDiag {
	out := make([]cachedDiag, 0, len(diags))
	for _, d := range diags {
		out = append(out, cachedDiag{Severity: d.Severity, Summary: d.Summary, Detail: d.Detail, Subject: d.Subject, Context: d.Context})
	}
	return out
}

func fromCached(cds []cachedDiag) hhcl.Diagnostics {
	if len(cds) == 0 {
		return nil
	}
	out := make(hhcl.Diagnostics, 0, len(cds))
	for _, c := range cds {
		out = append(out, &hhcl.Diagnostic{Severity: c.Severity, Summary: c.Summary, Detail: c.Detail, Subject: c.Subject, Context: c.Context})
	}
	return out
}

// loadStackFilesCached is loadStackFiles with the cache of opt: entries
// that match are taken from it, the rest is parsed, and the cache is
// rewritten when anything was missing or stale.
func loadStackFilesCached(files []string, cfg *Config, opt LoadOptions, config string) []loaded {
	old := readCache(opt.CacheFile, opt.CacheKey, config)
	out := make([]loaded, len(files))
	keys := make([]fileKey, len(files))
	stated := make([]bool, len(files))
	var todo []string
	var todoIdx []int
	for i, f := range files {
		// Stat before the file is read: a change after the stat makes the
		// stored key older than the content, which only costs a re-parse.
		keys[i], stated[i] = statKey(f)
		if e := old[f]; e != nil && stated[i] && e.Key == keys[i] {
			out[i] = loaded{stack: e.Stack, diags: fromCached(e.Diags)}
			continue
		}
		todo = append(todo, f)
		todoIdx = append(todoIdx, i)
	}
	for j, r := range loadStackFiles(todo, cfg) {
		out[todoIdx[j]] = r
	}
	if len(todo) == 0 && len(old) == len(files) {
		return out // the cache is exactly up to date
	}
	// Entries made now hold the values just parsed; they are encoded
	// before anyone can change them.
	settle := racyWindow
	if opt.settle != 0 {
		settle = opt.settle
	}
	now := time.Now().Add(-settle).UnixNano()
	entries := make(map[string]*cacheEntry, len(files))
	for i, f := range files {
		k := keys[i]
		if !stated[i] || k.Mtime >= now || k.Ctime >= now {
			continue
		}
		entries[f] = &cacheEntry{Key: k, Stack: out[i].stack, Diags: toCached(out[i].diags)}
	}
	if len(entries) > 0 || old != nil {
		writeCache(opt.CacheFile, opt.CacheKey, config, entries)
	}
	return out
}
