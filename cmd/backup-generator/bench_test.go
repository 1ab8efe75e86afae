package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tmpfsDir returns a new directory on a tmpfs (where systemd puts generator
// output), or skips: timings on a disk measure the disk.
func tmpfsDir(tb testing.TB) string {
	tb.Helper()
	const tmpfsMagic = 0x01021994
	for _, base := range []string{os.Getenv("XDG_RUNTIME_DIR"), "/dev/shm"} {
		if base == "" {
			continue
		}
		var st syscall.Statfs_t
		if syscall.Statfs(base, &st) != nil || st.Type != tmpfsMagic {
			continue
		}
		dir, err := os.MkdirTemp(base, "backup-generator-bench-")
		if err != nil {
			continue
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	tb.Skip("no tmpfs ($XDG_RUNTIME_DIR or /dev/shm)")
	return ""
}

// writeStacks creates a config dir with n realistic stacks: two hooks,
// an on-demand socket, a schedule, two jobs.
func writeStacks(tb testing.TB, dir string, n int) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "stacks"), 0o755); err != nil {
		tb.Fatal(err)
	}
	cfg := "duplicati {\n  wait_timeout = \"6h\"\n}\ndefaults {\n  restore_policy = \"previous\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("stack%04d", i)
		src := fmt.Sprintf(`stack %[1]q {
  jobs          = [%[1]q, "%[1]s-db"]
  schedule      = "*-*-* 03:%02[2]d:00"
  require_paths = ["/mnt/backup"]
  on_demand {
    socket  = "zoopa-ondemand@%[1]s.socket"
    service = "zoopa-ondemand@%[1]s.service"
  }
  hook "pre_stop" {
    command        = ["podman", "exec", "-u", "www-data", "%[1]s-app", "php", "occ", "maintenance:mode", "--on"]
    ignore_failure = true
  }
  hook "post_start" {
    command        = ["podman", "exec", "-u", "www-data", "%[1]s-app", "php", "occ", "maintenance:mode", "--off"]
    ignore_failure = true
  }
}
`, name, i%60)
		if err := os.WriteFile(filepath.Join(dir, "stacks", name+".hcl"), []byte(src), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// benchmarkGenerate runs the generator on n stacks into a fresh
// directory each time, as systemd does.
func benchmarkGenerate(b *testing.B, n int) {
	root := tmpfsDir(b)
	cfg := filepath.Join(root, "config")
	writeStacks(b, cfg, n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		out := filepath.Join(root, fmt.Sprint("out-", i))
		i++
		if err := os.Mkdir(out, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if code := run([]string{"--config", cfg, "--helper", testHelper, out}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
		b.StopTimer()
		os.RemoveAll(out)
		b.StartTimer()
	}
}

func BenchmarkGenerate1(b *testing.B)    { benchmarkGenerate(b, 1) }
func BenchmarkGenerate100(b *testing.B)  { benchmarkGenerate(b, 100) }
func BenchmarkGenerate1000(b *testing.B) { benchmarkGenerate(b, 1000) }

// TestProcessTiming runs the real binary the way systemd does, on 1, 100
// and 1000 stacks with input and output on tmpfs, and prints the median
// wall time of 11 runs and the peak RSS. It asserts nothing: timings are reported, not
// enforced. Run with
//
//	BENCH_PROCESS=1 go test ./cmd/backup-generator -run TestProcessTiming -v
func TestProcessTiming(t *testing.T) {
	if os.Getenv("BENCH_PROCESS") != "1" {
		t.Skip("set BENCH_PROCESS=1 to measure the generator process")
	}
	root := tmpfsDir(t)
	bin := filepath.Join(root, "backup-generator")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	ns := []int{1, 100, 1000}
	for _, n := range ns {
		writeStacks(t, filepath.Join(root, fmt.Sprintf("config-%d", n)), n)
	}
	const runs = 11
	t.Logf("%-7s %-12s %-12s %-12s %-10s %s", "stacks", "median", "min", "max", "peak RSS", "files")
	for _, n := range ns {
		cfg := filepath.Join(root, fmt.Sprintf("config-%d", n))
		var walls []time.Duration
		var maxRSS int64
		var files int
		for i := range runs {
			out := filepath.Join(root, fmt.Sprintf("out-%d-%d", n, i))
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			args := []string{"--config", cfg, "--helper", testHelper, out}
			cmd := exec.Command(bin, args...)
			cmd.Stderr = os.Stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			walls = append(walls, time.Since(start))
			if i == 0 {
				files = len(tree(t, out))
			}
			if rss := peakRSS(t, bin, args); rss > maxRSS {
				maxRSS = rss
			}
			os.RemoveAll(out)
		}
		slices.Sort(walls)
		t.Logf("%-7d %-12v %-12v %-12v %-10s %d", n, walls[runs/2].Round(10*time.Microsecond),
			walls[0].Round(10*time.Microsecond), walls[runs-1].Round(10*time.Microsecond),
			fmt.Sprintf("%.1f MiB", float64(maxRSS)/1024), files)
	}
}

// peakRSS runs bin once more to measure its peak RSS in KiB. Not from
// cmd.ProcessState: Go starts children with vfork (CLONE_VM), and Linux
// then counts the parent's RSS (this test process, 10+ MiB) in the child's
// ru_maxrss. GNU time forks, so its small RSS is what could leak in.
// Without /usr/bin/time the figure is the polluted one.
func peakRSS(t *testing.T, bin string, args []string) int64 {
	t.Helper()
	out := args[len(args)-1]
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		cmd := exec.Command(bin, args...)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	}
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", bin}, args...)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	lines := strings.Fields(string(b))
	kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		t.Fatalf("/usr/bin/time: %q", b)
	}
	return kib
}
