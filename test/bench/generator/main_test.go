package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The realistic inputs are comparable: the .container file is the size of
// the stack file (±5 %) with about as many keys, and every file of an
// input has the same size whatever its number.
func TestInputSizesMatch(t *testing.T) {
	s1, c1 := sources(kindRealistic, 1)
	if n := len(s1); n < 900 || n > 1200 {
		t.Errorf("realistic stack is %d bytes, want about 1 KiB", n)
	}
	if r := float64(len(c1)) / float64(len(s1)); r < 0.95 || r > 1.05 {
		t.Errorf(".container %d bytes vs stack %d bytes: ratio %.3f, want within 5 %%", len(c1), len(s1), r)
	}
	sk, ck := hclKeys(s1), unitKeys(c1)
	if sk < 15 || ck < 15 || float64(ck)/float64(sk) > 1.25 || float64(sk)/float64(ck) > 1.25 {
		t.Errorf("keys: stack %d, .container %d: want at least 15 each and within 25 %%", sk, ck)
	}
	for _, kind := range []string{kindMinimal, kindRealistic} {
		s, c := sources(kind, 1)
		for _, i := range []int{7, 59, 100, 999, 1000} {
			si, ci := sources(kind, i)
			if len(si) != len(s) || len(ci) != len(c) {
				t.Errorf("%s %d: %d/%d bytes, file 1 has %d/%d", kind, i, len(si), len(ci), len(s), len(c))
			}
		}
	}
	if got, want := minimalStack(3), "stack \"s0003\" { jobs = [\"s0003\"] }\n"; got != want {
		t.Errorf("minimal stack %q, want %q", got, want)
	}
	if got := minimalContainer(3); got != "[Container]\nImage=localhost/x\n" {
		t.Errorf("minimal container %q", got)
	}
	if hclKeys(minimalStack(1)) != 1 || unitKeys(minimalContainer(1)) != 1 {
		t.Errorf("minimal keys: %d, %d", hclKeys(minimalStack(1)), unitKeys(minimalContainer(1)))
	}
}

func TestWriteInput(t *testing.T) {
	dir := t.TempDir()
	in, err := writeInput(dir, kindRealistic, 3)
	if err != nil {
		t.Fatal(err)
	}
	stacks, _ := filepath.Glob(filepath.Join(in.cfgHome, "backup-stack", "stacks", "*.hcl"))
	containers, _ := filepath.Glob(filepath.Join(in.quadletDir, "*.container"))
	if len(stacks) != 3 || len(containers) != 3 {
		t.Fatalf("%d stacks, %d containers", len(stacks), len(containers))
	}
	b, err := os.ReadFile(filepath.Join(in.cfgHome, "backup-stack", "stacks", "s0002.hcl"))
	if err != nil || len(b) != in.stackBytes || !strings.Contains(string(b), `stack "s0002"`) {
		t.Errorf("s0002.hcl: %v, %d bytes (recorded %d)", err, len(b), in.stackBytes)
	}
	if _, err := os.Stat(filepath.Join(in.cfgHome, "backup-stack", "config.hcl")); err != nil {
		t.Error(err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{2}, 2},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{0.9, 0.5, 10, 0.7, 0.6}, 0.7},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if q1, q3 := quartiles([]float64{7, 1, 5, 3, 9, 2, 8}); q1 != 2 || q3 != 8 {
		t.Errorf("quartiles = %v, %v; want 2, 8", q1, q3)
	}
	if q1, q3 := quartiles([]float64{4, 1, 3, 2}); q1 != 1.5 || q3 != 3.5 {
		t.Errorf("quartiles = %v, %v; want 1.5, 3.5", q1, q3)
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Error("median sorted its argument")
	}
	if got := medianDur([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}); got != 2*time.Millisecond {
		t.Errorf("medianDur = %v", got)
	}
}

// The median of the pair ratios is not the ratio of the medians: one slow
// pair (both runs hit by load) does not move it.
func TestMedianOfPairRatios(t *testing.T) {
	gen := []float64{10, 10, 30, 11, 9}
	quad := []float64{20, 20, 20, 22, 18}
	var ratios []float64
	for i := range gen {
		ratios = append(ratios, gen[i]/quad[i])
	}
	if got := median(ratios); got != 0.5 {
		t.Errorf("median of ratios %v, want 0.5", got)
	}
}

func TestParseTimeMaxRSS(t *testing.T) {
	out := `	Command being timed: "/dev/shm/bin/backup-generator /o/normal /o/early /o/late"
	User time (seconds): 0.01
	System time (seconds): 0.00
	Percent of CPU this job got: 100%
	Elapsed (wall clock) time (h:mm:ss or m:ss): 0:00.00
	Average shared text size (kbytes): 0
	Average unshared data size (kbytes): 0
	Average stack size (kbytes): 0
	Average total size (kbytes): 0
	Maximum resident set size (kbytes): 5432
	Average resident set size (kbytes): 0
	Major (requiring I/O) page faults: 0
	Exit status: 0
`
	got, err := parseTimeMaxRSS(out)
	if err != nil || got != 5432 {
		t.Errorf("got %d, %v; want 5432", got, err)
	}
	if _, err := parseTimeMaxRSS("Command exited with non-zero status 1\n"); err == nil {
		t.Error("no error without the line")
	}
}

func TestParseCallgrindIr(t *testing.T) {
	out := "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 1\ncmd:  /x\npart: 1\n\npositions: line\nevents: Ir\nsummary: 1259450\n\n\nfl=(1)\nfn=(1) main\n0 3\ntotals: 1259450\n"
	if got, err := parseCallgrindIr(out); err != nil || got != 1259450 {
		t.Errorf("got %d, %v", got, err)
	}
	if got, err := parseCallgrindIr("events: Ir\ntotals: 77\n"); err != nil || got != 77 {
		t.Errorf("totals only: got %d, %v", got, err)
	}
	if _, err := parseCallgrindIr("events: Ir\n"); err == nil {
		t.Error("no error without summary")
	}
}

func TestWithGODEBUG(t *testing.T) {
	env := withGODEBUG([]string{"A=1", "GODEBUG=gctrace=1"}, "asyncpreemptoff=1")
	if env[1] != "GODEBUG=gctrace=1,asyncpreemptoff=1" {
		t.Errorf("%q", env)
	}
	if env := withGODEBUG([]string{"A=1"}, "x=1"); env[1] != "GODEBUG=x=1" {
		t.Errorf("%q", env)
	}
}

func TestParseNs(t *testing.T) {
	ns, err := parseNs("1, 100,1000")
	if err != nil || len(ns) != 3 || ns[2] != 1000 {
		t.Errorf("%v %v", ns, err)
	}
	for _, bad := range []string{"", "0", "1,x", "-3"} {
		if _, err := parseNs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The targets are reported in words, never asserted.
func TestTargets(t *testing.T) {
	mk := func(kind string, n int, ratio float64, g, q int64) *result {
		return &result{in: input{kind: kind, n: n}, ratios: []float64{ratio}, genRSS: []int64{g}, quaRSS: []int64{q}}
	}
	lines := targets([]*result{
		mk(kindMinimal, 1, 3, 1000, 1000),       // N=1 minimal: no time target
		mk(kindRealistic, 1, 3, 1000, 1000),     // nor realistic
		mk(kindMinimal, 100, 0.7, 5000, 4500),   // met, met
		mk(kindRealistic, 100, 1.2, 7000, 5000), // missed, missed
	})
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"minimal, N=100: time 0.70× quadlet, target ≤ 0.80×: met",
		"realistic, N=100: time 1.20× quadlet, target ≤ 1.00×: MISSED",
		"minimal, N=100: peak RSS 4.9 MiB vs quadlet 4.4 MiB (+0.5 MiB), target ≤ +1 MiB: met",
		"realistic, N=100: peak RSS 6.8 MiB vs quadlet 4.9 MiB (+2.0 MiB), target ≤ +1 MiB: MISSED",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "minimal, N=1: time") || strings.Contains(got, "realistic, N=1: time") {
		t.Errorf("a time target at N=1:\n%s", got)
	}
}
