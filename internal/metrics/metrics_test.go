package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// parse checks b against the Prometheus text exposition format rules that
// matter here and returns sample values by "name{labels}".
func parse(b []byte) (map[string]float64, error) {
	nameRe := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRe := regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"$`)
	samples := map[string]float64{}
	typed := map[string]bool{}
	seenFamily := map[string]bool{}
	current := ""
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("file does not end with a newline")
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			if len(f) >= 3 && (f[1] == "HELP" || f[1] == "TYPE") {
				if !nameRe.MatchString(f[2]) {
					return nil, fmt.Errorf("line %d: bad metric name %q", n, f[2])
				}
				if f[1] == "TYPE" {
					if typed[f[2]] {
						return nil, fmt.Errorf("line %d: second TYPE for %s", n, f[2])
					}
					if len(f) != 4 || f[3] != "gauge" && f[3] != "counter" && f[3] != "untyped" {
						return nil, fmt.Errorf("line %d: bad TYPE line", n)
					}
					typed[f[2]] = true
				}
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !nameRe.MatchString(name) {
			return nil, fmt.Errorf("line %d: bad sample %q", n, line)
		}
		if !typed[name] {
			return nil, fmt.Errorf("line %d: sample of %s before its TYPE", n, name)
		}
		if name != current {
			if seenFamily[name] {
				return nil, fmt.Errorf("line %d: samples of %s are not grouped", n, name)
			}
			seenFamily[name], current = true, name
		}
		for _, l := range strings.Split(labels, ",") {
			if !labelRe.MatchString(l) {
				return nil, fmt.Errorf("line %d: bad label %q", n, l)
			}
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad value %q", n, value)
		}
		key := name + "{" + labels + "}"
		if _, dup := samples[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate sample %s", n, key)
		}
		samples[key] = v
	}
	return samples, sc.Err()
}

func TestRenderParses(t *testing.T) {
	end := time.Unix(1_800_000_000, 500_000_000)
	stacks := []Stack{
		{Name: "nextcloud", LastRun: end, Success: false, Result: "exit-code", Duration: 93.5, Downtime: 80.25,
			LastSuccess: end.Add(-24 * time.Hour)},
		{Name: "cryptpad", LastRun: end, LastSuccess: end, Success: true, Result: "success", Duration: 12, Downtime: 9.5},
		{Name: "never"},
	}
	got, err := parse(Render(stacks))
	if err != nil {
		t.Fatalf("%v\n%s", err, Render(stacks))
	}
	want := map[string]float64{
		`backup_stack_last_run_timestamp_seconds{stack="cryptpad"}`:      1_800_000_000.5,
		`backup_stack_last_success_timestamp_seconds{stack="cryptpad"}`:  1_800_000_000.5,
		`backup_stack_last_success{stack="cryptpad"}`:                    1,
		`backup_stack_last_duration_seconds{stack="cryptpad"}`:           12,
		`backup_stack_last_downtime_seconds{stack="cryptpad"}`:           9.5,
		`backup_stack_last_result{stack="cryptpad",result="success"}`:    1,
		`backup_stack_last_run_timestamp_seconds{stack="nextcloud"}`:     1_800_000_000.5,
		`backup_stack_last_success_timestamp_seconds{stack="nextcloud"}`: 1_799_913_600.5,
		`backup_stack_last_success{stack="nextcloud"}`:                   0,
		`backup_stack_last_duration_seconds{stack="nextcloud"}`:          93.5,
		`backup_stack_last_downtime_seconds{stack="nextcloud"}`:          80.25,
		`backup_stack_last_result{stack="nextcloud",result="exit-code"}`: 1,
	}
	if len(got) != len(want) {
		t.Errorf("got %d samples, want %d:\n%s", len(got), len(want), Render(stacks))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestLabelEscaping(t *testing.T) {
	out := Render([]Stack{{Name: "a\"b\\c\nd", LastRun: time.Unix(1, 0), Result: "x"}})
	if _, err := parse(out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// A reader polling the file while it is rewritten must only ever see a
// whole, valid file.
func TestWriteIsNeverSeenHalfWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.prom")
	many := make([]Stack, 300)
	for i := range many {
		many[i] = Stack{Name: fmt.Sprintf("stack%03d", i), LastRun: time.Unix(int64(i), 0), Result: "success", Success: true}
	}
	if err := Write(path, many); err != nil {
		t.Fatal(err)
	}
	want := len(Render(many))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readErr error
	reads := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				readErr = err
				return
			}
			reads++
			if len(b) != want {
				readErr = fmt.Errorf("read %d bytes, want %d", len(b), want)
				return
			}
			if _, err := parse(b); err != nil {
				readErr = err
				return
			}
		}
	}()
	for i := 0; i < 100; i++ {
		if err := Write(path, many); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("after %d reads: %v", reads, readErr)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
