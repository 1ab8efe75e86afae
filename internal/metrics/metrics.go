// Package metrics writes the node_exporter textfile-collector file that
// lets Prometheus alert when a stack has not been backed up for too long.
package metrics

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/internal/atomicfile"
)

// Stack is the last known state of one stack's backups.
type Stack struct {
	Name        string
	LastRun     time.Time // end of the last run; zero when it never ran
	LastSuccess time.Time // end of the last successful run; zero when none
	Success     bool      // whether the last run succeeded
	Result      string    // systemd's Result= of the last run
	Duration    float64   // seconds from gate to end of the last run
	Downtime    float64   // seconds the stack was held down in the last run
}

type family struct {
	name, help string
	value      func(Stack) (float64, bool)
}

var families = []family{
	{"backup_stack_last_run_timestamp_seconds", "End of the last backup run of the stack, Unix time.",
		func(s Stack) (float64, bool) { return unix(s.LastRun) }},
	{"backup_stack_last_success_timestamp_seconds", "End of the last successful backup of the stack, Unix time.",
		func(s Stack) (float64, bool) { return unix(s.LastSuccess) }},
	{"backup_stack_last_success", "1 if the last backup run of the stack succeeded, else 0.",
		func(s Stack) (float64, bool) {
			if s.LastRun.IsZero() {
				return 0, false
			}
			if s.Success {
				return 1, true
			}
			return 0, true
		}},
	{"backup_stack_last_duration_seconds", "Duration of the last backup run, from the gate to the end.",
		func(s Stack) (float64, bool) { return s.Duration, !s.LastRun.IsZero() }},
	{"backup_stack_last_downtime_seconds", "How long the stack was held down during its last backup run.",
		func(s Stack) (float64, bool) { return s.Downtime, !s.LastRun.IsZero() }},
}

func unix(t time.Time) (float64, bool) {
	if t.IsZero() {
		return 0, false
	}
	return float64(t.UnixMilli()) / 1000, true
}

// Render returns the file's content, stacks sorted by name.
func Render(stacks []Stack) []byte {
	sorted := append([]Stack(nil), stacks...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var b bytes.Buffer
	for _, f := range families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", f.name, f.help, f.name)
		for _, s := range sorted {
			if v, ok := f.value(s); ok {
				fmt.Fprintf(&b, "%s{stack=\"%s\"} %s\n", f.name, escapeLabel(s.Name), strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
	}
	b.WriteString("# HELP backup_stack_last_result Result of the last backup run (1 for the current result).\n# TYPE backup_stack_last_result gauge\n")
	for _, s := range sorted {
		if s.LastRun.IsZero() || s.Result == "" {
			continue
		}
		fmt.Fprintf(&b, "backup_stack_last_result{stack=\"%s\",result=\"%s\"} 1\n", escapeLabel(s.Name), escapeLabel(s.Result))
	}
	return b.Bytes()
}

// escapeLabel applies the text format's escaping of label values.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// Write replaces path atomically: node_exporter must never read half a
// file.
func Write(path string, stacks []Stack) error {
	if err := atomicfile.Write(path, Render(stacks), 0o644); err != nil {
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	return nil
}
