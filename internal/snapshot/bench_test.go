package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchTake (BENCH_SNAPSHOT=1) times Take and Remove of 1,000, 10,000 and 100,000 small
// files per method: btrfs (subvolume snapshot), reflink on XFS, copy on ext4. It reports a
// table and asserts nothing about the figures.
func TestBenchTake(t *testing.T) {
	if os.Getenv("BENCH_SNAPSHOT") != "1" {
		t.Skip("set BENCH_SNAPSHOT=1 to time Take (1,000 / 10,000 / 100,000 files per method)")
	}
	sizes := []int{1000, 10000, 100000}
	type row struct {
		method       Method
		fs           fsKind
		files        int
		create, take time.Duration
		sync, remove time.Duration
	}
	var rows []row
	for _, c := range []struct {
		fs   fsKind
		m    Method
		mkfs []string
	}{
		{kBtrfs, Btrfs, nil},
		{kXFS, Reflink, nil},
		{kExt4, Copy, []string{"-i", "8192"}}, // enough inodes for 2 x 100,000 files
	} {
		mnt := newFS(t, c.fs, "2G", c.mkfs...)
		for _, n := range sizes {
			src := filepath.Join(mnt, fmt.Sprintf("data%d", n))
			if c.fs == kBtrfs {
				run(t, "btrfs", "subvolume", "create", src)
			}
			start := time.Now()
			payload := []byte(strings.Repeat("x", 100))
			for i := 0; i < n; i++ {
				p := filepath.Join(src, fmt.Sprintf("d%03d", i/1000), fmt.Sprintf("f%04d", i%1000))
				if i%1000 == 0 {
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(p, payload, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			syscall.Sync()
			r := row{method: c.m, fs: c.fs, files: n, create: time.Since(start)}
			items, err := Plan([]string{src}, filepath.Join(mnt, "snapshots"), "bench", c.m)
			if err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			if err := Take(context.Background(), items); err != nil {
				t.Fatal(err)
			}
			r.take = time.Since(start)
			start = time.Now()
			syscall.Sync()
			r.sync = time.Since(start)
			start = time.Now()
			if err := Remove(context.Background(), items); err != nil {
				t.Fatal(err)
			}
			syscall.Sync()
			r.remove = time.Since(start)
			rows = append(rows, r)
			if err := New(nil).removeTree(context.Background(), src); err != nil {
				t.Fatal(err)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-8s %-6s %8s %10s %10s %10s %10s\n", "method", "fs", "files", "create", "Take", "sync", "Remove+sync")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-8s %-6s %8d %10s %10s %10s %10s\n", r.method, r.fs, r.files,
			r.create.Round(time.Millisecond), r.take.Round(time.Millisecond), r.sync.Round(time.Millisecond), r.remove.Round(time.Millisecond))
	}
	t.Log(b.String())
}
