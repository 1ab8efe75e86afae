// Command generator runs backup-generator and podman's quadlet side by side,
// the way systemd runs user generators, and prints a markdown table of
// their wall times, peak RSS and instruction counts (issue 16).
//
//	go run ./test/bench/generator -quadlet /path/to/quadlet [-n 1,100,1000] [-pairs 21] [-out DIR]
//
// or scripts/bench-generator.sh, which builds both programs first.
//
// Inputs, on a tmpfs: at each N, minimal stacks against minimal .container
// files, and realistic (about 1 KiB, nextcloud-shaped) stacks against
// .container files of the same size. backup-generator gets
// XDG_CONFIG_HOME, quadlet "-user" and QUADLET_UNIT_DIRS; both get the
// three output directories (normal early late), emptied before every run
// (not timed). Wall time is taken around Start and Wait of the whole
// process, in pairs (A then B, alternating which goes first); the ratio
// is the median of the per-pair ratios gen/quadlet. Peak RSS comes from
// /usr/bin/time -v and Ir from valgrind --tool=callgrind, in separate
// runs. It reports, it does not assert: the exit status is 0 whatever the
// numbers.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	quadlet  string
	gen      string
	ns       []int
	pairs    int
	rssRuns  int
	out      string
	tmp      string
	valgrind string
}

// tool is one of the two programs under test.
type tool struct {
	name string
	bin  string
	env  func(in input) []string
}

// result holds everything measured for one input.
type result struct {
	in             input
	gen, quad      []time.Duration // per pair
	ratios         []float64       // gen/quadlet per pair
	genRSS, quaRSS []int64         // KiB
	genIr, quaIr   int64           // 0: not measured
	genFiles       int
	quaFiles       int
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("bench-generator", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var o options
	var ns string
	fl.StringVar(&o.quadlet, "quadlet", "", "path of podman's quadlet binary (required)")
	fl.StringVar(&o.gen, "gen", "", "path of a built backup-generator (default: go build -trimpath ./cmd/backup-generator now)")
	fl.StringVar(&ns, "n", "1,100,1000", "numbers of stacks / .container files, comma-separated")
	fl.IntVar(&o.pairs, "pairs", 21, "A/B pairs per input")
	fl.IntVar(&o.rssRuns, "rss-runs", 5, "/usr/bin/time runs per program and input for the peak RSS")
	fl.StringVar(&o.out, "out", "", "also write results.md and pairs.csv into this directory")
	fl.StringVar(&o.tmp, "tmp", "/dev/shm", "a tmpfs directory for inputs, outputs and binaries")
	fl.StringVar(&o.valgrind, "valgrind", "auto", `"auto" (use valgrind when on PATH), "off", or its path`)
	if err := fl.Parse(args); err != nil {
		return 2
	}
	var err error
	if o.ns, err = parseNs(ns); err != nil {
		fmt.Fprintf(stderr, "bench-generator: -n: %v\n", err)
		return 2
	}
	if o.quadlet == "" || o.pairs < 1 || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: go run ./test/bench/generator -quadlet /path/to/quadlet [-n 1,100,1000] [-pairs 21] [-out DIR]")
		fmt.Fprintln(stderr, quadletHint)
		return 2
	}
	if err := bench(o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "bench-generator: %v\n", err)
		return 1
	}
	return 0
}

const quadletHint = `To build quadlet from podman's source:
  git clone https://github.com/containers/podman && cd podman && CGO_ENABLED=0 go build -mod=vendor -o /tmp/quadlet ./cmd/quadlet`

func parseNs(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func bench(o options, stdout, stderr io.Writer) error {
	if _, err := os.Stat(o.quadlet); err != nil {
		return fmt.Errorf("quadlet: %v\n%s", err, quadletHint)
	}
	if !isTmpfs(o.tmp) {
		fmt.Fprintf(stderr, "bench-generator: warning: %s is not a tmpfs; the timings include its file system\n", o.tmp)
	}
	root, err := os.MkdirTemp(o.tmp, "bench-generator-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	// Interrupted: still leave nothing on the tmpfs.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			os.RemoveAll(root)
			os.Exit(130)
		}
	}()
	start := time.Now()
	load0 := loadAvg()

	// Both binaries on the tmpfs; the generator's helper (backup-stack)
	// next to it, as installed, so it does not warn about a missing one.
	binDir := filepath.Join(root, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return err
	}
	gen := filepath.Join(binDir, "backup-generator")
	if o.gen == "" {
		fmt.Fprintln(stderr, "building backup-generator (go build -trimpath) ...")
		if err := buildGenerator(gen, stderr); err != nil {
			return err
		}
	} else if err := copyFile(o.gen, gen); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(binDir, "backup-stack"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		return err
	}
	quad := filepath.Join(binDir, "quadlet")
	if err := copyFile(o.quadlet, quad); err != nil {
		return err
	}
	genVersion := firstLine(exec.Command(gen, "-version").Output())
	quaVersion := firstLine(exec.Command(quad, "-version").Output())

	tools := [2]tool{
		{"backup-generator", gen, func(in input) []string {
			return append(envWithout("XDG_CONFIG_HOME", "QUADLET_UNIT_DIRS"), "XDG_CONFIG_HOME="+in.cfgHome)
		}},
		{"quadlet", quad, func(in input) []string {
			return append(envWithout("XDG_CONFIG_HOME", "QUADLET_UNIT_DIRS"), "QUADLET_UNIT_DIRS="+in.quadletDir)
		}},
	}
	outDir := filepath.Join(root, "out")
	r := &runner{out: outDir, errLog: filepath.Join(root, "stderr.log")}

	// Inputs, and one checked run of each program on each.
	var results []*result
	for _, n := range o.ns {
		for _, kind := range []string{kindMinimal, kindRealistic} {
			in, err := writeInput(filepath.Join(root, "in", fmt.Sprintf("%s-%d", kind, n)), kind, n)
			if err != nil {
				return err
			}
			res := &result{in: in}
			for i, t := range tools {
				if _, err := r.once(t, in); err != nil {
					return err
				}
				if msg := r.stderrText(); msg != "" {
					fmt.Fprintf(stderr, "bench-generator: %s on %s wrote on stderr:\n%s\n", t.name, in.label(), msg)
				}
				if i == 0 {
					res.genFiles = countFiles(outDir)
				} else {
					res.quaFiles = countFiles(outDir)
				}
			}
			results = append(results, res)
		}
	}

	// Wall time: pairs, interleaved over all inputs so that a change in
	// load hits every input and both programs alike.
	fmt.Fprintf(stderr, "timing %d pairs on %d inputs ...\n", o.pairs, len(results))
	for p := range o.pairs {
		for j, res := range results {
			genFirst := (p+j)%2 == 0
			order := [2]int{0, 1}
			if !genFirst {
				order = [2]int{1, 0}
			}
			var d [2]time.Duration
			for _, k := range order {
				if d[k], err = r.once(tools[k], res.in); err != nil {
					return err
				}
			}
			res.gen = append(res.gen, d[0])
			res.quad = append(res.quad, d[1])
			res.ratios = append(res.ratios, float64(d[0])/float64(d[1]))
		}
	}
	load1 := loadAvg()

	// Peak RSS, in separate runs under GNU time (which forks: Go's own
	// vfork would charge this process's RSS to the child's ru_maxrss).
	timeBin := "/usr/bin/time"
	if _, err := os.Stat(timeBin); err != nil {
		fmt.Fprintln(stderr, "bench-generator: no /usr/bin/time (apt-get install -y time): no peak RSS")
		timeBin = ""
	}
	if timeBin != "" {
		fmt.Fprintf(stderr, "peak RSS, %d runs each ...\n", o.rssRuns)
		for k := range o.rssRuns {
			for j, res := range results {
				order := [2]int{0, 1}
				if (k+j)%2 == 1 {
					order = [2]int{1, 0}
				}
				for _, t := range order {
					kib, err := r.peakRSS(timeBin, tools[t], res.in)
					if err != nil {
						return err
					}
					if t == 0 {
						res.genRSS = append(res.genRSS, kib)
					} else {
						res.quaRSS = append(res.quaRSS, kib)
					}
				}
			}
		}
	}

	// Instruction counts: one callgrind run of each.
	vg := o.valgrind
	if vg == "auto" {
		vg, _ = exec.LookPath("valgrind")
	} else if vg == "off" {
		vg = ""
	}
	if vg == "" {
		fmt.Fprintln(stderr, "bench-generator: no valgrind on PATH (apt-get install -y valgrind): no instruction counts")
	} else {
		fmt.Fprintln(stderr, "instruction counts (callgrind) ...")
		for _, res := range results {
			for t := range tools {
				ir, err := r.callgrind(vg, tools[t], res.in, root)
				if err != nil {
					fmt.Fprintf(stderr, "bench-generator: callgrind %s on %s: %v\n", tools[t].name, res.in.label(), err)
					continue
				}
				if t == 0 {
					res.genIr = ir
				} else {
					res.quaIr = ir
				}
			}
		}
	}
	load2 := loadAvg()

	var md bytes.Buffer
	report(&md, reportInfo{
		start: start, took: time.Since(start), pairs: o.pairs, rssRuns: o.rssRuns,
		genVersion: genVersion, quaVersion: quaVersion,
		loads: [3]float64{load0, load1, load2}, cpus: runtime.NumCPU(),
	}, results)
	stdout.Write(md.Bytes())
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "results.md"), md.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "pairs.csv"), pairsCSV(results), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runner runs one program on one input, as the service manager does.
type runner struct {
	out    string // parent of normal, early, late
	errLog string
}

func (r *runner) dirs() []string {
	return []string{filepath.Join(r.out, "normal"), filepath.Join(r.out, "early"), filepath.Join(r.out, "late")}
}

// reset empties the output directories, as the manager does before it
// runs the generators.
func (r *runner) reset() error {
	if err := os.RemoveAll(r.out); err != nil {
		return err
	}
	for _, d := range r.dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) command(t tool, in input, wrap ...string) (*exec.Cmd, *os.File, error) {
	args := r.dirs()
	if t.name == "quadlet" {
		args = append([]string{"-user"}, args...)
	}
	argv := append(append(wrap, t.bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = t.env(in)
	cmd.Dir = "/"
	// A file, not a pipe: no goroutine copying output during the timing.
	f, err := os.Create(r.errLog)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	return cmd, f, nil
}

// once runs t on in and returns the wall time from fork to exit.
func (r *runner) once(t tool, in input) (time.Duration, error) {
	if err := r.reset(); err != nil {
		return 0, err
	}
	cmd, f, err := r.command(t, in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s on %s: %v: %s", t.name, in.label(), err, r.stderrText())
	}
	return d, nil
}

func (r *runner) stderrText() string {
	b, _ := os.ReadFile(r.errLog)
	return strings.TrimSpace(string(b))
}

// peakRSS runs t once under GNU time -v and returns its maximum resident
// set size in KiB.
func (r *runner) peakRSS(timeBin string, t tool, in input) (int64, error) {
	if err := r.reset(); err != nil {
		return 0, err
	}
	report := r.errLog + ".time"
	cmd, f, err := r.command(t, in, timeBin, "-v", "-o", report)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s on %s under time: %v: %s", t.name, in.label(), err, r.stderrText())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		return 0, err
	}
	return parseTimeMaxRSS(string(b))
}

// parseTimeMaxRSS reads "Maximum resident set size (kbytes): N" from the
// output of GNU time -v.
func parseTimeMaxRSS(s string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Maximum resident set size (kbytes):"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New(`no "Maximum resident set size" in the output of time -v`)
}

// callgrind runs t once under valgrind --tool=callgrind and returns the
// total instruction count (Ir).
func (r *runner) callgrind(vg string, t tool, in input, root string) (int64, error) {
	if err := r.reset(); err != nil {
		return 0, err
	}
	outFile := filepath.Join(root, "callgrind.out")
	os.Remove(outFile)
	cmd, f, err := r.command(t, in, vg, "--tool=callgrind", "--callgrind-out-file="+outFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// Callgrind 3.19 asserts (threads.c:247, vgCallgrind_post_signal) on
	// the SIGURG the Go runtime sends to preempt a goroutine; both
	// programs are Go, so both run without asynchronous preemption here.
	// Valgrind runs one thread at a time, and a Go program's idle threads
	// spin looking for work while they wait for the CPU: the count varied
	// by 7x from run to run of one input. With one P nothing spins, and
	// the count is the work done.
	cmd.Env = withGODEBUG(append(slices.DeleteFunc(slices.Clone(cmd.Env), func(kv string) bool {
		return strings.HasPrefix(kv, "GOMAXPROCS=")
	}), "GOMAXPROCS=1"), "asyncpreemptoff=1")
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, lastLines(r.stderrText(), 5))
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		return 0, err
	}
	return parseCallgrindIr(string(b))
}

// withGODEBUG adds setting to the GODEBUG variable of env.
func withGODEBUG(env []string, setting string) []string {
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			out := slices.Clone(env)
			if v == "" {
				out[i] = "GODEBUG=" + setting
			} else {
				out[i] = "GODEBUG=" + v + "," + setting
			}
			return out
		}
	}
	return append(slices.Clone(env), "GODEBUG="+setting)
}

// parseCallgrindIr reads the "summary:" (or "totals:") line of a
// callgrind output file; its first number is Ir.
func parseCallgrindIr(s string) (int64, error) {
	var totals string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "summary:"); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "totals:"); ok {
			totals = v
		}
	}
	if f := strings.Fields(totals); len(f) > 0 {
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, errors.New("no summary: line in the callgrind output")
}

// median returns the median of xs (the mean of the two middle values for
// an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// quartiles returns the first and third quartiles of xs: the medians of
// its lower and upper halves (the middle value of an odd count in
// neither).
func quartiles(xs []float64) (q1, q3 float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	h := len(s) / 2
	return median(s[:h]), median(s[len(s)-h:])
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

func medianKiB(ks []int64) float64 {
	xs := make([]float64, len(ks))
	for i, k := range ks {
		xs[i] = float64(k)
	}
	return median(xs)
}

type reportInfo struct {
	start                  time.Time
	took                   time.Duration
	pairs, rssRuns         int
	genVersion, quaVersion string
	loads                  [3]float64
	cpus                   int
}

func report(w io.Writer, ri reportInfo, results []*result) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "Run at %s on %s (%d CPUs), took %s; backup-generator %s, quadlet %s.\n",
		ri.start.UTC().Format("2006-01-02 15:04:05 MST"), host, ri.cpus, ri.took.Round(time.Second),
		orUnknown(ri.genVersion), orUnknown(ri.quaVersion))
	fmt.Fprintf(w, "Load average (1 min) at the start %.2f, after the timing %.2f, at the end %.2f", ri.loads[0], ri.loads[1], ri.loads[2])
	if slices.Max(ri.loads[:]) >= 0.75*float64(ri.cpus) {
		fmt.Fprintf(w, ": the machine was busy (load ≥ %.1f on %d CPUs); the pairs are interleaved so the load hits both programs alike, but absolute times are inflated", 0.75*float64(ri.cpus), ri.cpus)
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Inputs (per file; every file of an input has the same size):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| input | stack file | keys | .container file | keys | size .container/stack |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	seen := map[string]bool{}
	for _, res := range results {
		in := res.in
		if seen[in.kind] {
			continue
		}
		seen[in.kind] = true
		cfg := ""
		if in.configBytes > 0 {
			cfg = fmt.Sprintf(" (+ config.hcl %d B)", in.configBytes)
		}
		fmt.Fprintf(w, "| %s | %d B%s | %d | %d B | %d | %.2f |\n", in.kind, in.stackBytes, cfg, in.stackKeys,
			in.containerBytes, in.containerKeys, float64(in.containerBytes)/float64(in.stackBytes))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "Wall time of the whole process, fork to exit, median of %d pairs; peak RSS median of %d runs under /usr/bin/time -v; ratio with its quartiles; Ir from one callgrind run (GODEBUG=asyncpreemptoff=1, which callgrind needs for Go programs, and GOMAXPROCS=1, without which idle threads spinning under valgrind make the count vary several-fold).\n\n", ri.pairs, ri.rssRuns)
	fmt.Fprintln(w, "| N | input | gen median | quadlet median | ratio (median of pair ratios) | gen peak RSS | quadlet peak RSS | gen Ir | quadlet Ir | files written gen / quadlet |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, res := range results {
		q1, q3 := quartiles(res.ratios)
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f× (%.2f–%.2f) | %s | %s | %s | %s | %d / %d |\n",
			res.in.n, res.in.kind, ms(medianDur(res.gen)), ms(medianDur(res.quad)), median(res.ratios), q1, q3,
			mib(res.genRSS), mib(res.quaRSS), mega(res.genIr), mega(res.quaIr), res.genFiles, res.quaFiles)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Targets of issue 16:")
	fmt.Fprintln(w)
	for _, line := range targets(results) {
		fmt.Fprintf(w, "- %s\n", line)
	}
}

// targets checks the goals of issue 16 in words: minimal ≤ 0.8× quadlet
// and realistic ≤ 1.0× at N = 100 and 1000 (a run of one stack is mostly
// process start-up, and the issue sets no time for it), peak RSS ≤
// quadlet's + 1 MiB at every N.
func targets(results []*result) []string {
	var out []string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	for _, res := range results {
		r := median(res.ratios)
		switch {
		case res.in.kind == kindMinimal && res.in.n >= 100:
			out = append(out, fmt.Sprintf("minimal, N=%d: time %.2f× quadlet, target ≤ 0.80×: %s", res.in.n, r, verdict(r <= 0.8)))
		case res.in.kind == kindRealistic && res.in.n >= 100:
			out = append(out, fmt.Sprintf("realistic, N=%d: time %.2f× quadlet, target ≤ 1.00×: %s", res.in.n, r, verdict(r <= 1.0)))
		}
	}
	for _, res := range results {
		if len(res.genRSS) == 0 || len(res.quaRSS) == 0 {
			continue
		}
		g, q := medianKiB(res.genRSS), medianKiB(res.quaRSS)
		out = append(out, fmt.Sprintf("%s, N=%d: peak RSS %.1f MiB vs quadlet %.1f MiB (%+.1f MiB), target ≤ +1 MiB: %s",
			res.in.kind, res.in.n, g/1024, q/1024, (g-q)/1024, verdict(g <= q+1024)))
	}
	return out
}

func pairsCSV(results []*result) []byte {
	var b bytes.Buffer
	b.WriteString("n,input,pair,gen_ns,quadlet_ns,ratio\n")
	for _, res := range results {
		for i := range res.gen {
			fmt.Fprintf(&b, "%d,%s,%d,%d,%d,%.4f\n", res.in.n, res.in.kind, i, res.gen[i].Nanoseconds(), res.quad[i].Nanoseconds(), res.ratios[i])
		}
	}
	return b.Bytes()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func mib(ks []int64) string {
	if len(ks) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", medianKiB(ks)/1024)
}

func mega(ir int64) string {
	if ir == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f M", float64(ir)/1e6)
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}

func firstLine(b []byte, err error) string {
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loadAvg returns the one-minute load average, or 0.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func isTmpfs(dir string) bool {
	const tmpfsMagic = 0x01021994
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic
}

// buildGenerator builds ./cmd/backup-generator of the module this
// program is run from.
func buildGenerator(dst string, stderr io.Writer) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return fmt.Errorf("cannot find the module to build backup-generator from (run from the repository, or pass -gen)")
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", dst, "./cmd/backup-generator")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build backup-generator: %v", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}
