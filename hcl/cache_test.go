package hcl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	hhcl "github.com/hashicorp/hcl/v2"
)

// cacheTree is a configuration with good stacks, a broken file, a warning
// and a duplicate, so that stacks, Broken and diagnostics all matter.
func cacheTree(t *testing.T) string {
	return writeTree(t, map[string]string{
		"config.hcl":        "defaults {\n  schedule = \"daily\"\n}\n",
		"stacks/a.hcl":      "stack \"a\" {\n  jobs = [\"a\"]\n  hook \"pre_stop\" {\n    command = [\"/bin/true\", \"x\"]\n  }\n  on_demand {\n    socket = \"a.socket\"\n  }\n}\n",
		"stacks/b.hcl":      "stack \"b\" {\n  jobs = [\"b1\", \"b2\"]\n  require_paths = []\n  schedule = \"\"\n}\n",
		"stacks/broken.hcl": "stack \"broken\" {\n  jobs = []\n}\n",
		"stacks/c.hcl":      "stack \"c-other\" {\n  jobs = [\"c\"]\n}\n",
		"stacks/d.hcl":      "stack \"a\" {\n  jobs = [\"dup\"]\n}\n",
	})
}

func cacheOpts(dir string) LoadOptions {
	return LoadOptions{CacheFile: filepath.Join(dir, "cache", "generator-cache"), CacheKey: "build-1", settle: time.Nanosecond}
}

type loadResult struct {
	Stacks []*Stack
	Broken []string
	Diags  []string
}

func load(t *testing.T, dir string, opt LoadOptions) loadResult {
	t.Helper()
	set, diags := LoadWith(dir, opt)
	var ds []string
	for _, d := range diags {
		ds = append(ds, FormatDiag(d))
	}
	return loadResult{set.Stacks, set.Broken, ds}
}

func sameResult(t *testing.T, what string, got, want loadResult) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("%s:\n%s\nwant (no cache)\n%s", what, g, w)
	}
}

// tamper rewrites the cache with a valid checksum after edit changed it.
func tamper(t *testing.T, path string, edit func(*cacheData)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c cacheData
	if err := json.Unmarshal(b[len(cacheMagic)+9:], &c); err != nil {
		t.Fatal(err)
	}
	edit(&c)
	payload, _ := json.Marshal(c)
	sum := fmt.Sprintf("%08x\n", crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(path, append([]byte(cacheMagic+sum), payload...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCacheWarmEqualsCold(t *testing.T) {
	dir := cacheTree(t)
	opt := cacheOpts(dir)
	cold := load(t, dir, LoadOptions{})
	if len(cold.Stacks) != 3 || len(cold.Broken) != 2 || len(cold.Diags) != 4 {
		t.Fatalf("reference load: %+v", cold)
	}
	sameResult(t, "first load with cache", load(t, dir, opt), cold)
	entries := readCache(opt.CacheFile, opt.CacheKey, configDigest([]byte("defaults {\n  schedule = \"daily\"\n}\n"), true))
	if len(entries) != 5 {
		t.Fatalf("cache holds %d entries, want 5", len(entries))
	}
	st, _ := os.Stat(opt.CacheFile)
	sameResult(t, "warm load", load(t, dir, opt), cold)
	if st2, _ := os.Stat(opt.CacheFile); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("an up-to-date cache was rewritten")
	}

	// Prove the warm load takes the stack from the cache: a change made
	// in the cache shows up.
	tamper(t, opt.CacheFile, func(c *cacheData) {
		c.Entries[filepath.Join(dir, "stacks", "b.hcl")].Stack.Jobs = []string{"from-cache"}
	})
	if got := load(t, dir, opt); got.Stacks[1].Name != "b" || !reflect.DeepEqual(got.Stacks[1].Jobs, []string{"from-cache"}) {
		t.Fatalf("warm load did not use the cache: %+v", got.Stacks[1])
	}
	// Under another build key the same cache is ignored.
	other := opt
	other.CacheKey = "build-2"
	sameResult(t, "other build", load(t, dir, other), cold)
}

// TestCacheSeesEdits: an edited file is parsed again, even when the edit
// keeps its size and its mtime; so are new files, and removed ones go.
func TestCacheSeesEdits(t *testing.T) {
	dir := cacheTree(t)
	opt := cacheOpts(dir)
	load(t, dir, opt)

	b := filepath.Join(dir, "stacks", "b.hcl")
	fi, _ := os.Stat(b)
	src, _ := os.ReadFile(b)
	edited := bytes.Replace(src, []byte(`"b1"`), []byte(`"x1"`), 1)
	if err := os.WriteFile(b, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(b, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "stacks", "c.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stacks", "e.hcl"), []byte(`stack "e" { jobs = ["e"] }`), 0o644); err != nil {
		t.Fatal(err)
	}
	got := load(t, dir, opt)
	sameResult(t, "after edits", got, load(t, dir, LoadOptions{}))
	if got.Stacks[1].Jobs[0] != "x1" || len(got.Stacks) != 3 || got.Stacks[2].Name != "e" {
		t.Fatalf("edits not seen: %+v", got.Stacks)
	}
	sameResult(t, "warm after edits", load(t, dir, opt), got)

	// A changed config.hcl (the defaults every stack inherits) invalidates all.
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte("defaults {\n  schedule = \"weekly\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got = load(t, dir, opt)
	if got.Stacks[0].Schedule != "weekly" {
		t.Fatalf("config change not seen: %+v", got.Stacks[0])
	}
	sameResult(t, "after config change", got, load(t, dir, LoadOptions{}))
}

// otherHexDigit replaces the hex digit at i with a different one. (Flipping
// the case bit would turn 'a' into 'A', which a hex parser reads the same.)
func otherHexDigit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	if c[i] == '0' {
		c[i] = '1'
	} else {
		c[i] = '0'
	}
	return c
}

// TestCacheCorrupt: a cache that is damaged in any way is ignored, the
// files are parsed, and a good cache is written again.
func TestCacheCorrupt(t *testing.T) {
	dir := cacheTree(t)
	opt := cacheOpts(dir)
	cold := load(t, dir, LoadOptions{})
	load(t, dir, opt)
	good, err := os.ReadFile(opt.CacheFile)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x20
		return b
	}
	validSum := func(payload string) []byte {
		return []byte(cacheMagic + fmt.Sprintf("%08x\n", crc32.Checksum([]byte(payload), crc32.MakeTable(crc32.Castagnoli))) + payload)
	}
	for name, content := range map[string][]byte{
		"empty":           {},
		"garbage":         []byte("\x00\x01garbage"),
		"magic only":      []byte(cacheMagic),
		"truncated":       good[:len(good)/2],
		"one byte short":  good[:len(good)-1],
		"flipped payload": flip(len(good) - 10),
		"flipped sum":     otherHexDigit(good, len(cacheMagic)+2),
		"other format":    append([]byte("backup-stack generator-cache v0\n"), good[len(cacheMagic):]...),
		"bad json":        validSum(`{"key": "build-1", "entries": {`),
		"wrong types":     validSum(`{"key": "build-1", "config": 5, "entries": []}`),
		"no entries":      validSum(`{"key": "build-1"}`),
		"null entry":      validSum(`{"key": "build-1", "config": "", "entries": {"x": null}}`),
	} {
		if err := os.WriteFile(opt.CacheFile, content, 0o600); err != nil {
			t.Fatal(err)
		}
		sameResult(t, name, load(t, dir, opt), cold)
		if b, _ := os.ReadFile(opt.CacheFile); !bytes.Equal(b, good) {
			t.Errorf("%s: the cache was not rewritten", name)
		}
	}
	// A directory where the cache should be: nothing to read or write.
	if err := os.Remove(opt.CacheFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(opt.CacheFile, 0o700); err != nil {
		t.Fatal(err)
	}
	sameResult(t, "directory", load(t, dir, opt), cold)
	// No cache directory can be made: still loads.
	blocked := opt
	blocked.CacheFile = filepath.Join(dir, "config.hcl", "cache")
	sameResult(t, "unwritable", load(t, dir, blocked), cold)
}

// TestCacheSkipsRacyFiles: a file changed just before the cache is written
// is left out of it, since a second change within the same timestamp tick
// would not show.
func TestCacheSkipsRacyFiles(t *testing.T) {
	dir := cacheTree(t)
	opt := cacheOpts(dir)
	opt.settle = time.Hour // every file of the test is "recent"
	load(t, dir, opt)
	if _, err := os.Stat(opt.CacheFile); err == nil {
		b, _ := os.ReadFile(opt.CacheFile)
		if strings.Contains(string(b), "a.hcl") {
			t.Fatalf("recent files were cached: %s", b)
		}
	}
}

// TestCacheRoundTripsEveryField: every field of a Stack survives the cache,
// so that a field added later cannot be lost silently.
func TestCacheRoundTripsEveryField(t *testing.T) {
	var st Stack
	fill(reflect.ValueOf(&st).Elem(), 1)
	r := hhcl.Range{Filename: "/f.hcl", Start: hhcl.Pos{Line: 1, Column: 2, Byte: 3}, End: hhcl.Pos{Line: 4, Column: 5, Byte: 6}}
	in := map[string]*cacheEntry{"/f.hcl": {
		Key:   fileKey{Size: 1, Mtime: 2, Ctime: 3, Ino: 4, Dev: 5},
		Stack: &st,
		Diags: toCached(hhcl.Diagnostics{{Severity: hhcl.DiagWarning, Summary: "s", Detail: "d", Subject: &r, Context: &r}}),
	}}
	path := filepath.Join(t.TempDir(), "c")
	writeCache(path, "k", "cfg", in)
	out := readCache(path, "k", "cfg")
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", out["/f.hcl"].Stack, in["/f.hcl"].Stack)
	}
	if readCache(path, "k", "other config") != nil || readCache(path, "other key", "cfg") != nil {
		t.Error("a cache for another config or build was used")
	}
}

// fill sets every field reachable from v to a non-zero value.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("v" + strconv.Itoa(n))
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(n))
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(uint64(n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n+i+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n+i+1)
			}
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}
