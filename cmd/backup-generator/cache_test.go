package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCacheSameOutput: with the decode cache, a second run writes the same
// files and prints the same diagnostics (of the bad stack file, which is
// then taken from the cache) as a run without it; an edited file is seen.
func TestCacheSameOutput(t *testing.T) {
	cfg := t.TempDir()
	if err := os.CopyFS(cfg, os.DirFS(filepath.Join("testdata", "config"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // files changed within a second are not cached
	cache := filepath.Join(t.TempDir(), "backup-stack", "generator-cache")
	gen := func(cacheFile string) (map[string]string, string) {
		t.Helper()
		out := t.TempDir()
		code, _, stderr := runGen(t, "--config", cfg, "--helper", testHelper, "--cache="+cacheFile, out)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		return tree(t, out), stderr
	}
	wantFiles, wantErr := gen("")
	if !strings.Contains(wantErr, "bad.hcl:3:20: error: Unknown restore policy") {
		t.Fatalf("stderr %q", wantErr)
	}
	for i, what := range []string{"filling the cache", "from the cache"} {
		files, stderr := gen(cache)
		if !reflect.DeepEqual(files, wantFiles) || stderr != wantErr {
			t.Fatalf("%s: stderr %q, files differ: %v", what, stderr, !reflect.DeepEqual(files, wantFiles))
		}
		if _, err := os.Stat(cache); err != nil {
			t.Fatalf("run %d: no cache: %v", i, err)
		}
	}
	// An edit within the same second as the cache is seen.
	p := filepath.Join(cfg, "stacks", "good.hcl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, "\n# edited\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "stacks", "bad.hcl"), []byte(`stack "bad" { jobs = ["fixed"] }`), 0o644); err != nil {
		t.Fatal(err)
	}
	files, stderr := gen(cache)
	if stderr != "" || files["backup@bad.service.d/50-stack.conf"] == "" {
		t.Fatalf("edits not seen: stderr %q", stderr)
	}
	cold, _ := gen("")
	if !reflect.DeepEqual(files, cold) {
		t.Fatal("warm and cold output differ after the edit")
	}
}

func TestDefaultCacheFile(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got := defaultCacheFile(); got != "/run/user/1000/backup-stack/generator-cache" {
		t.Errorf("got %q", got)
	}
	for _, v := range []string{"", "relative/dir"} {
		t.Setenv("XDG_RUNTIME_DIR", v)
		if got := defaultCacheFile(); got != "" {
			t.Errorf("XDG_RUNTIME_DIR=%q: cache %q, want none", v, got)
		}
	}
	if buildKey() == "" {
		t.Error("no build key")
	}
}
