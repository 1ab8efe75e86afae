package duplicati

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// statusSeed is one real `status` output (reference §2 and §8) and the backups it shows
// active or queued.
type statusSeed struct {
	name string
	out  string
	held []string
}

// statusSeeds builds the seed corpus: every combination of the noise lines the util prints
// before the status (connection line of each version, auth warnings), idle / running /
// running+queued / paused / queue-only / non-backup task states, and the line endings of
// the releases (2.1.0.x without the trailing empty line, CRLF through some wrappers).
func statusSeeds() []statusSeed {
	preambles := []struct{ name, text string }{
		{"bare", ""},
		{"connecting", "Connecting to http://127.0.0.1:8200/...\n"},
		{"connecting-2.1.0", "Connecting to http://localhost:8200/...\n"},
		{"connecting-v6", "Connecting to http://[::1]:8200/...\n"},
		{"no-key", "Connecting to http://127.0.0.1:8200/...\nWarning: The encryption key is missing, saving login token without encryption\n"},
		{"refresh-failed", "Connecting to http://127.0.0.1:8200/...\nFailed to use refresh token: Server error (401): Unauthorized\n"},
		{"signin-failed", "Connecting to http://127.0.0.1:8200/...\nFailed to obtain a signin token: database is locked\nNo database found in /config\n"},
	}
	states := []struct {
		name  string
		lines string
		held  []string
	}{
		{"idle", "Server state: Running\nActive task: None\nScheduler tasks: Empty\n", nil},
		{"paused-idle", "Server state: Paused\nActive task: None\nScheduler tasks: Empty\n", nil},
		{"running", "Server state: Running\nActive task: [Task 12]: BackupId = 1\nScheduler tasks: Empty\n", []string{"1"}},
		{"running+queued", "Server state: Running\nActive task: [Task 12]: BackupId = 1\nScheduled tasks:\n  [Task 13]: BackupId = 3\n", []string{"1", "3"}},
		{"running+2queued", "Server state: Running\nActive task: [Task 7]: BackupId = 2\nScheduled tasks:\n  [Task 8]: BackupId = 10\n  [Task 9]: BackupId = 4\n", []string{"2", "10", "4"}},
		{"paused-active", "Server state: Paused\nActive task: [Task 12]: BackupId = 1\nScheduler tasks: Empty\n", []string{"1"}},
		{"paused-queue", "Server state: Paused\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = 1\n  [Task 5]: BackupId = 2\n", []string{"1", "2"}},
		{"verify+queued", "Server state: Running\nActive task: [Task 21]: BackupId = \nScheduled tasks:\n  [Task 22]: BackupId = 11\n", []string{"11"}},
		{"big-ids", "Server state: Running\nActive task: [Task 123456789]: BackupId = 98765\nScheduled tasks:\n  [Task 123456790]: BackupId = 5\n  [Task 123456791]: BackupId = 98766\n  [Task 123456792]: BackupId = 6\n", []string{"98765", "5", "98766", "6"}},
	}
	var seeds []statusSeed
	for i, p := range preambles {
		for j, s := range states {
			out := p.text + s.lines
			ending := "lf+empty"
			switch (i + j) % 3 {
			case 0:
				out += "\n" // 2.1.2.0 and later: the middleware's empty line
			case 1:
				ending = "lf" // 2.1.0.3-2.1.0.5
			case 2:
				ending = "crlf+empty"
				out = strings.ReplaceAll(out+"\n", "\n", "\r\n")
			}
			seeds = append(seeds, statusSeed{name: p.name + "/" + s.name + "/" + ending, out: out, held: s.held})
		}
	}
	return seeds
}

// mutateStatus applies one random mutation to out and returns it with its description.
func mutateStatus(r *rand.Rand, out string) (string, string) {
	lines := strings.Split(out, "\n")
	line := func() int { return r.IntN(len(lines)) }
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	suffixes := []string{" (Backup)", "\x1b[0m", " ", "\t", "\r", "\r\r", " x", ".", ":", ")", "]", " BackupId = 9", " (Verify)", "0", " 1", "\x00"}
	prefixes := []string{"\x1b[32m", "\x1b[0m", " ", "\t", "> ", "x", "\r", "[", "  "}
	ansi := []string{"\x1b[0m", "\x1b[1;31m", "\x1b[K", "\x1b]0;t\x07", "\x1b[2J"}
	spaces := []string{" ", "\t", "\r", "  ", "\r\n", "\n"}
	switch op := r.IntN(11); op {
	case 0:
		i, s := line(), pick(suffixes)
		lines[i] += s
		return strings.Join(lines, "\n"), fmt.Sprintf("append %q to line %d", s, i)
	case 1:
		i, s := line(), pick(prefixes)
		lines[i] = s + lines[i]
		return strings.Join(lines, "\n"), fmt.Sprintf("prepend %q to line %d", s, i)
	case 2:
		p, s := r.IntN(len(out)+1), pick(ansi)
		return out[:p] + s + out[p:], fmt.Sprintf("insert %q at %d", s, p)
	case 3:
		i := line()
		return strings.Join(append(lines[:i:i], lines[i+1:]...), "\n"), fmt.Sprintf("delete line %d", i)
	case 4:
		i, j := line(), r.IntN(len(lines)+1)
		c := append([]string(nil), lines[:j]...)
		c = append(append(c, lines[i]), lines[j:]...)
		return strings.Join(c, "\n"), fmt.Sprintf("copy line %d to %d", i, j)
	case 5:
		var digits []int
		for k := 0; k < len(out); k++ {
			if out[k] >= '0' && out[k] <= '9' {
				digits = append(digits, k)
			}
		}
		if len(digits) == 0 {
			return out, "no digit to change"
		}
		k, d := digits[r.IntN(len(digits))], string(rune('0'+r.IntN(10)))
		switch r.IntN(3) {
		case 0:
			return out[:k] + d + out[k+1:], fmt.Sprintf("digit at %d -> %s", k, d)
		case 1:
			return out[:k] + out[k+1:], fmt.Sprintf("delete digit at %d", k)
		default:
			return out[:k] + d + out[k:], fmt.Sprintf("insert digit %s at %d", d, k)
		}
	case 6:
		p, s := r.IntN(len(out)+1), pick(spaces)
		return out[:p] + s + out[p:], fmt.Sprintf("insert %q at %d", s, p)
	case 7:
		p := r.IntN(len(out) + 1)
		return out[:p], fmt.Sprintf("truncate at %d", p)
	case 8:
		if out == "" {
			return out, "nothing to delete"
		}
		p := r.IntN(len(out))
		return out[:p] + out[p+1:], fmt.Sprintf("delete byte %d", p)
	case 9:
		i := line()
		if i+1 >= len(lines) {
			return out, "no line to swap"
		}
		lines[i], lines[i+1] = lines[i+1], lines[i]
		return strings.Join(lines, "\n"), fmt.Sprintf("swap lines %d and %d", i, i+1)
	default:
		p, c := r.IntN(len(out)+1), string(rune(' '+r.IntN(95)))
		return out[:p] + c + out[p:], fmt.Sprintf("insert %q at %d", c, p)
	}
}

// shows reports whether the text still carries backup bid's line: "BackupId = <bid>"
// (white space ignored) not followed by another digit. A mutation that changed or removed
// the ID itself (a digit, the whole line, a truncation) describes another state, which no
// parser can tell from a real one; every other mutation must leave bid held or fail.
func shows(out, bid string) bool {
	sq := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' {
			return -1
		}
		return r
	}, out)
	key := "BackupId=" + bid
	for i := strings.Index(sq, key); i >= 0; {
		end := i + len(key)
		if end == len(sq) || sq[end] < '0' || sq[end] > '9' {
			return true
		}
		j := strings.Index(sq[end:], key)
		if j < 0 {
			break
		}
		i = end + j
	}
	return false
}

// TestParseStatusMutations: no mutation of a real `status` output in which backup B is
// active or queued may parse as a state in which B is neither (that is how a waiter would
// call a running job finished); it may be ErrUnparseable. The seed is fixed, so a failure
// reproduces.
func TestParseStatusMutations(t *testing.T) {
	const (
		seed1 = 20260822
		seed2 = 12
	)
	samples := 300_000 // about 2s
	if raceEnabled || testing.Short() {
		samples = 40_000
	}
	seeds := statusSeeds()
	for _, s := range seeds {
		st, err := parseStatus(s.out)
		if err != nil {
			t.Fatalf("seed %s does not parse: %v\n%q", s.name, err, s.out)
		}
		for _, b := range s.held {
			if _, _, ok := st.Holds(b); !ok {
				t.Fatalf("seed %s: backup %s not held: %s", s.name, b, st)
			}
		}
	}
	r := rand.New(rand.NewPCG(seed1, seed2))
	var (
		ops, errs, withHeld, parsedHeld, changed, failures int
		start                                              = time.Now()
	)
	for n := 0; n < samples; n++ {
		s := seeds[r.IntN(len(seeds))]
		out, steps := s.out, make([]string, 0, 4)
		for k := 1 + r.IntN(3); k > 0; k-- {
			var what string
			out, what = mutateStatus(r, out)
			steps = append(steps, what)
			ops++
		}
		st, err := parseStatus(out)
		if err != nil {
			if !errors.Is(err, ErrUnparseable) {
				t.Fatalf("sample %d: error without ErrUnparseable: %v", n, err)
			}
			errs++
			continue
		}
		if len(s.held) > 0 {
			withHeld++
		}
		allHeld := len(s.held) > 0
		for _, b := range s.held {
			if _, _, ok := st.Holds(b); ok {
				continue
			}
			allHeld = false
			if !shows(out, b) {
				changed++ // the mutation rewrote or removed B's ID: another state
				continue
			}
			failures++
			if failures <= 10 {
				t.Errorf("sample %d, seed %s, mutations %q:\nbackup %s is held in the seed and its line is still there, but parsed as %q\n%q",
					n, s.name, steps, b, st, out)
			}
		}
		if allHeld {
			parsedHeld++
		}
	}
	t.Logf("%d seeds, %d mutated outputs (%d mutations, seed %d/%d) in %s: %d ErrUnparseable, %d parsed (%d of seeds with a held backup, %d with every held backup still seen), %d held IDs rewritten by the mutation, %d failures",
		len(seeds), samples, ops, seed1, seed2, time.Since(start).Round(time.Millisecond), errs, samples-errs, withHeld, parsedHeld, changed, failures)
	if failures > 10 {
		t.Errorf("%d failures in all", failures)
	}
}
