package duplicati

import (
	"fmt"
	"strconv"
	"strings"
)

// Parsers for duplicati-server-util plain-text output (the formats of duplicati-server-util, Duplicati.CommandLine.ServerUtil in Duplicati's source). The text
// format, not --json, is parsed because it is the same in every release that has `status`
// (2.1.0.3 on), while --json only exists from 2.1.0.113 canary / 2.1.2.0 beta on.

// parseStatus reads `status` output by line prefix. It ignores "Connecting to ...", auth
// messages and empty lines. It fails (ErrUnparseable) unless it finds exactly one
// "Server state:" line with Running|Paused, exactly one "Active task:" line and exactly one
// queue line ("Scheduler tasks: Empty" or "Scheduled tasks:" followed by at least one
// "  [Task N]: BackupId = B" line): a missing queue line must not read as "empty queue",
// which would let a waiter believe the job finished.
func parseStatus(out string) (ServerState, error) {
	var (
		st                           ServerState
		haveState, haveActive, haveQ bool
		inQueue                      bool
	)
	bad := func(format string, a ...any) (ServerState, error) {
		return ServerState{}, fmt.Errorf("status output: %s: %w", fmt.Sprintf(format, a...), ErrUnparseable)
	}
	for _, raw := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trim := strings.TrimSpace(line)
		if inQueue {
			if strings.HasPrefix(trim, "[Task ") {
				t, err := parseTaskRef(trim)
				if err != nil {
					return bad("queue line %q: %v", trim, err)
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
	id, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil {
		return Task{}, fmt.Errorf("task id %q: not a number", num)
	}
	rest = strings.TrimSpace(rest)
	bid, ok := strings.CutPrefix(rest, "BackupId =")
	if !ok {
		return Task{}, fmt.Errorf("want BackupId = B after the task id")
	}
	return Task{ID: id, BackupID: strings.TrimSpace(bid)}, nil
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
		if !ok || id == "" || strings.ContainsAny(id, " \t:") {
			continue // "Connecting to ...", auth messages
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

// parseRunLine finds "Running backup <Name> (ID: <id>)" in `run` output.
func parseRunLine(out string) (name, id string, ok bool) {
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(raw)
		rest, found := strings.CutPrefix(line, "Running backup ")
		if !found || !strings.HasSuffix(rest, ")") {
			continue
		}
		i := strings.LastIndex(rest, " (ID: ")
		if i < 0 {
			continue
		}
		id = strings.TrimSpace(strings.TrimSuffix(rest[i+len(" (ID: "):], ")"))
		if id == "" {
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
