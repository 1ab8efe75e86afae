package duplicati

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parsers for duplicati-server-util plain-text output (the formats of duplicati-server-util, Duplicati.CommandLine.ServerUtil in Duplicati's source). The text
// format, not --json, is parsed because it is the same in every release that has `status`
// (2.1.0.3 on), while --json only exists from 2.1.0.113 canary / 2.1.2.0 beta on.

// parseStatus reads `status` output by line prefix. It ignores "Connecting to ...", auth
// messages and empty lines. It fails (ErrUnparseable) unless it finds exactly one
// "Server state:" line with Running|Paused, exactly one "Active task:" line and exactly one
// queue line ("Scheduler tasks: Empty" or "Scheduled tasks:" followed by at least one
// "  [Task N]: BackupId = B" line): a missing queue line must not read as "empty queue",
// which would let a waiter believe the job finished. It is strict wherever a garbled line
// could hide a task: task and backup IDs are digits only, a queue line needs a backup ID,
// a line with a control character (ANSI escape, CR inside the line), a line that mentions
// a task or a status field without reading exactly as the util prints it, and any text after
// the queue lines (the util's last) are ErrUnparseable, never noise.
func parseStatus(out string) (ServerState, error) {
	var (
		st                           ServerState
		haveState, haveActive, haveQ bool
		inQueue                      bool
	)
	bad := func(format string, a ...any) (ServerState, error) {
		return ServerState{}, fmt.Errorf("status output: %s: %w", fmt.Sprintf(format, a...), ErrUnparseable)
	}
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		if i := strings.IndexFunc(line, isControl); i >= 0 {
			// The util writes plain lines; an ANSI escape or a CR inside a line (a TTY, a
			// wrapper) could hide or change what a line says.
			return bad("line %q contains the control character %q (an ANSI escape or a TTY?)", shorten(line, 120), line[i])
		}
		trim := strings.TrimSpace(line)
		if inQueue {
			if strings.HasPrefix(trim, "[Task ") {
				t, err := parseTaskRef(trim)
				if err != nil {
					return bad("queue line %q: %v", trim, err)
				}
				if t.BackupID == "" {
					// The queue lists only tasks with a backup (GetQueueWithIds).
					return bad("queue line %q has no backup ID", trim)
				}
				st.Queued = append(st.Queued, t)
				continue
			}
			if len(st.Queued) == 0 {
				return bad("%q is not followed by task lines", "Scheduled tasks:")
			}
			inQueue = false
		}
		switch {
		case trim == "":
		case haveQ && !inQueue:
			// The queue line(s) are the util's last: anything after them is a cut or
			// garbled line (a truncated last queue line would otherwise read as noise).
			return bad("line %q after the queue lines", shorten(line, 120))
		case strings.HasPrefix(line, "Server state:"):
			if haveState {
				return bad("two %q lines", "Server state:")
			}
			haveState = true
			switch v := strings.TrimSpace(strings.TrimPrefix(line, "Server state:")); v {
			case "Running":
			case "Paused":
				st.Paused = true
			default:
				return bad("unknown server state %q", v)
			}
		case strings.HasPrefix(line, "Active task:"):
			if haveActive {
				return bad("two %q lines", "Active task:")
			}
			haveActive = true
			v := strings.TrimSpace(strings.TrimPrefix(line, "Active task:"))
			if v == "None" {
				break
			}
			t, err := parseTaskRef(v)
			if err != nil {
				return bad("active task %q: %v", v, err)
			}
			st.Active = &t
		case line == "Scheduler tasks: Empty":
			if haveQ {
				return bad("two queue lines")
			}
			haveQ = true
		case line == "Scheduled tasks:":
			if haveQ {
				return bad("two queue lines")
			}
			haveQ, inQueue = true, true
		case strings.HasPrefix(trim, "[Task "):
			return bad("task line %q outside the queue section", trim)
		case strings.HasPrefix(line, "Scheduler tasks:"), strings.HasPrefix(line, "Scheduled tasks:"):
			return bad("unknown queue line %q", line)
		case looksLikeStatus(line):
			// A task or status line that does not read exactly as the util prints it: as
			// noise it could hide a queued or active task.
			return bad("line %q looks like a status line but does not read as one", shorten(line, 120))
		default:
			// "Connecting to ...", auth messages ("Failed to use refresh token: ..."), etc.
		}
	}
	if inQueue && len(st.Queued) == 0 {
		return bad("%q is not followed by task lines", "Scheduled tasks:")
	}
	switch {
	case !haveState:
		return bad("no %q line", "Server state:")
	case !haveActive:
		return bad("no %q line", "Active task:")
	case !haveQ:
		return bad("no queue line (%q or %q)", "Scheduler tasks: Empty", "Scheduled tasks:")
	}
	return st, nil
}

// isControl reports the control characters that never occur in a util line (tab aside).
func isControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

// statusWords are the parts of status lines; compared without white space and case.
var statusWords = []string{"[task", "backupid", "serverstate:", "activetask:", "scheduledtasks:", "schedulertasks:"}

// looksLikeStatus reports a line that mentions a task or a status field, however garbled.
func looksLikeStatus(line string) bool {
	squeezed := strings.ToLower(strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, line))
	for _, w := range statusWords {
		if strings.Contains(squeezed, w) {
			return true
		}
	}
	return false
}

// parseTaskRef parses "[Task 12]: BackupId = 1" (the backup ID may be empty).
func parseTaskRef(s string) (Task, error) {
	rest, ok := strings.CutPrefix(s, "[Task ")
	if !ok {
		return Task{}, fmt.Errorf("want [Task N]: BackupId = B")
	}
	num, rest, ok := strings.Cut(rest, "]:")
	if !ok {
		return Task{}, fmt.Errorf("want [Task N]: BackupId = B")
	}
	// Digits only, for the task and the backup ID: trailing text such as " (Backup)" or
	// an ANSI reset must make the line unparseable, never a different ID (a running task
	// whose ID reads differently looks finished).
	if !isDigits(num) {
		return Task{}, fmt.Errorf("task id %q: not a number", num)
	}
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return Task{}, fmt.Errorf("task id %q: not a number", num)
	}
	bid, ok := strings.CutPrefix(rest, " BackupId =")
	if !ok {
		return Task{}, fmt.Errorf("want BackupId = B after the task id")
	}
	if bid != "" {
		if bid, ok = strings.CutPrefix(bid, " "); !ok || !isDigits(bid) {
			return Task{}, fmt.Errorf("backup id %q: not a number", bid)
		}
	}
	return Task{ID: id, BackupID: bid}, nil
}

// backupEntry is one line of `list-backups`.
type backupEntry struct{ ID, Name string }

// parseListBackups reads `list-backups` output: "<id>: <name>" lines, each optionally
// followed by an indented description and an empty line; "No backups found" when empty.
func parseListBackups(out string) ([]backupEntry, error) {
	var list []backupEntry
	none := false
	for _, raw := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		line := strings.TrimRight(raw, " \t\r")
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue // empty line or description
		}
		if line == "No backups found" {
			none = true
			continue
		}
		id, name, ok := strings.Cut(line, ": ")
		if !ok || !isDigits(id) {
			// "Connecting to ...", auth messages ("Warning: The encryption key is
			// missing, ..."): a backup ID is digits only.
			continue
		}
		list = append(list, backupEntry{ID: id, Name: name})
	}
	if len(list) == 0 && !none {
		return nil, fmt.Errorf("list-backups output has neither backups nor %q: %w", "No backups found", ErrUnparseable)
	}
	return list, nil
}

// matchBackup picks the backup like ServerUtil's `run` and our API route: the first whose
// name equals job case-insensitively or whose ID equals job exactly.
func matchBackup(list []backupEntry, job string) (backupEntry, bool) {
	for _, b := range list {
		if strings.EqualFold(b.Name, job) || b.ID == job {
			return b, true
		}
	}
	return backupEntry{}, false
}

// parseRunLine finds "Running backup <Name> (ID: <id>)" in `run` output. The ID must be
// digits only, exactly as the util prints it: a line with anything else there (trailing
// text, an ANSI escape, a space) is not a run line, so a garbled line can never make the
// caller follow another backup than the one it resolved.
func parseRunLine(out string) (name, id string, ok bool) {
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		rest, found := strings.CutPrefix(line, "Running backup ")
		if !found || !strings.HasSuffix(rest, ")") {
			continue
		}
		i := strings.LastIndex(rest, " (ID: ")
		if i < 0 {
			continue
		}
		id = strings.TrimSuffix(rest[i+len(" (ID: "):], ")")
		if !isDigits(id) {
			continue
		}
		return rest[:i], id, true
	}
	return "", "", false
}

// lastLine is the last non-empty line of out, for error messages. .NET stack-trace lines
// ("   at ...", "--- End of ...") are skipped so that an exception's message is shown.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fallback := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if fallback == "" {
			fallback = l
		}
		if strings.HasPrefix(l, "at ") || strings.HasPrefix(l, "--- End of") {
			continue
		}
		return shorten(l, 300)
	}
	if fallback != "" {
		return shorten(fallback, 300)
	}
	return "(no output)"
}

// backupMeta is one backup of `list-backups --json` (2.1.2.0 / 2.2.0.0 and later) with the
// metadata Duplicati keeps per backup (the same dictionary as GET backup/{id}).
type backupMeta struct {
	backupEntry
	Meta map[string]string
}

// parseListBackupsJSON reads the `--json` envelope of `list-backups`:
// {"Command":"list-backups","Success":true,...,"Backups":[{"Id","Name","Metadata","Schedule"}]}.
// "Backups": "" is the envelope's spelling of "no backups".
func parseListBackupsJSON(out string) ([]backupMeta, error) {
	start := strings.IndexByte(out, '{')
	if start < 0 {
		return nil, fmt.Errorf("list-backups --json: no JSON object in the output: %w", ErrUnparseable)
	}
	var env struct {
		Success *bool
		Backups json.RawMessage
	}
	dec := json.NewDecoder(strings.NewReader(out[start:]))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("list-backups --json: %v: %w", err, ErrUnparseable)
	}
	if env.Success == nil || !*env.Success {
		return nil, fmt.Errorf("list-backups --json: the answer does not say Success: %w", ErrUnparseable)
	}
	var s string
	if len(env.Backups) == 0 || json.Unmarshal(env.Backups, &s) == nil {
		if s != "" {
			return nil, fmt.Errorf("list-backups --json: Backups is the string %q: %w", shorten(s, 60), ErrUnparseable)
		}
		return nil, nil
	}
	var raw []struct {
		ID       string `json:"Id"`
		Name     string
		Metadata map[string]string
	}
	if err := json.Unmarshal(env.Backups, &raw); err != nil {
		return nil, fmt.Errorf("list-backups --json: Backups: %v: %w", err, ErrUnparseable)
	}
	list := make([]backupMeta, 0, len(raw))
	for _, r := range raw {
		if !isDigits(r.ID) {
			return nil, fmt.Errorf("list-backups --json: backup ID %q is not a number: %w", shorten(r.ID, 40), ErrUnparseable)
		}
		list = append(list, backupMeta{backupEntry{ID: r.ID, Name: r.Name}, r.Metadata})
	}
	return list, nil
}

// isDigits reports a non-empty string of ASCII digits: Duplicati's task and backup IDs.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// metaTime parses a metadata date (UTC, .NET "yyyyMMdd'T'HHmmssK").
func metaTime(s string) (time.Time, bool) {
	t, err := time.Parse("20060102T150405Z07:00", s)
	return t, err == nil
}

// dataFolderRefusal recognises the util's refusal of its data folder (2.3.0.107 canary /
// 2.3.1.0 beta and later) and returns the owner's uid as printed ("" if not printed).
func dataFolderRefusal(out string) (owner string, ok bool) {
	i := strings.Index(out, "does not have secure permissions")
	if i < 0 {
		return "", false
	}
	rest := out[i:]
	if j := strings.Index(rest, "owner is uid "); j >= 0 {
		f := strings.FieldsFunc(rest[j+len("owner is uid "):], func(r rune) bool { return r < '0' || r > '9' })
		if len(f) > 0 && strings.HasPrefix(rest[j+len("owner is uid "):], f[0]) {
			owner = f[0]
		}
	}
	return owner, true
}

// lineWith is the first line of out containing sub, shortened, for error messages.
func lineWith(out, sub string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) {
			return shorten(l, 300)
		}
	}
	return lastLine(out)
}
