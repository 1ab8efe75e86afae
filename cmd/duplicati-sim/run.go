package main

import (
	"encoding/json"
	"strings"
	"time"
)

// reauthDelay is the pause between re-authentication attempts of `run --wait`. The real util
// retries with no delay at all (reference 3.1(2)); a short pause keeps the same endless loop
// without hammering the simulator.
const reauthDelay = 50 * time.Millisecond

var errNotQueued = userError{"Backup is not queued or running"}

// hang blocks forever, like the real util sometimes does.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

// cmdRun is RunBackup.cs. The server may answer with an existing task of any operation for
// the backup (BackupPost.ExecuteRunBackup); the util never looks at the task ID, so its output
// is the same, and --wait waits for whatever runs under that backup ID.
func cmdRun(c *conn, q simQuirks, a utilArgs) error {
	o := c.o
	if a.pollInterval < 1 {
		return userError{"Poll interval must be at least 1 second"}
	}
	if err := c.connect(); err != nil {
		return err
	}
	backups, err := c.listBackups()
	if err != nil {
		return err
	}
	name := a.positional[0]
	var match *wireBackup
	for i := range backups {
		b := &backups[i].Backup
		if strings.EqualFold(b.Name, name) || b.ID == name {
			match = b
			break
		}
	}
	if match == nil {
		return userError{"No backup found with supplied ID or name"}
	}
	if !a.quiet {
		o.msg("Running backup %s (ID: %s)", match.Name, match.ID)
	}
	if q.RunHangsBeforeEnqueue {
		hang()
	}
	path := "backup/" + match.ID + "/run"
	if c.prof.UtilJSON { // 2.1.2.0+ sends ?skipqueue={skipQueue} (bool.ToString())
		path += "?skipqueue=" + map[bool]string{true: "True", false: "False"}[a.skipQueue]
	}
	if err := c.call("POST", path, nil); err != nil {
		return err
	}
	if q.RunHangs {
		hang()
	}
	if !a.wait {
		return nil // only queued; the outcome is unknown here
	}
	if !a.quiet {
		o.msg("Waiting for backup to finish...")
	}
	logf := func(msg string) {
		if !a.quiet {
			o.msg("[%s]: %s", time.Now().Format("01/02/2006 15:04:05"), msg)
		}
	}
	poll := time.Duration(a.pollInterval) * time.Second
	if c.prof.UtilReauth {
		// WaitForBackupWithRetriesAsync: any exception leads to a reconnect and a new wait;
		// when the reconnect fails the original exception is thrown.
		for {
			err := waitForBackup(c, match.ID, poll, logf)
			if err == nil {
				break
			}
			logf("Re-authenticating...")
			time.Sleep(reauthDelay)
			if c.connect() != nil {
				return err
			}
		}
	} else if err := waitForBackup(c, match.ID, poll, logf); err != nil {
		return err
	}
	if !c.prof.UtilBackupStatus {
		if !a.quiet {
			o.msg("Backup finished")
		}
		return nil
	}
	status, err := backupStatus(c, match.ID)
	if err != nil {
		return err
	}
	if !a.quiet {
		o.msg("Backup status: %s", status)
	}
	if c.prof.UtilExitCodes {
		switch strings.ToLower(status) { // Enum.TryParse(..., ignoreCase: true)
		case "warning":
			o.exitCode = 2
		case "error":
			o.exitCode = 3
		case "fatal":
			o.exitCode = 4
		}
		o.success = o.exitCode == 0
	}
	return nil
}

// waitForBackup is Connection.WaitForBackupAsync: it decides by backup ID, not task ID.
func waitForBackup(c *conn, id string, poll time.Duration, logf func(string)) error {
	st, err := c.serverState()
	if err != nil {
		return err
	}
	if !isActive(st, id) && !isQueued(st, id) {
		return errNotQueued
	}
	hasStarted := isActive(st, id)
	for {
		time.Sleep(poll)
		st, err := c.serverState()
		if err != nil {
			return err
		}
		switch {
		case isActive(st, id):
			hasStarted = true
			logf("Backup is running ...")
		case !hasStarted && isQueued(st, id):
			logf("Backup is queued ...")
		default:
			return nil
		}
	}
}

func isActive(st wireServerState, id string) bool {
	return st.ActiveTask != nil && deref(st.ActiveTask.Item2) == id
}

func isQueued(st wireServerState, id string) bool {
	for _, t := range st.SchedulerQueueIds {
		if deref(t.Item2) == id {
			return true
		}
	}
	return false
}

// backupStatus is GetBackupStatusAsync: ParsedResult of the newest log row of any operation.
func backupStatus(c *conn, id string) (string, error) {
	var rows []map[string]json.RawMessage
	if err := c.call("GET", "backup/"+id+"/log", &rows); err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "No log generated", nil
	}
	var msg string
	if err := json.Unmarshal(rows[0]["Message"], &msg); err != nil {
		return "Failed to parse backup log", nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(msg), &m); err != nil || m["ParsedResult"] == nil {
		return "Failed to parse backup log", nil
	}
	var s string
	if err := json.Unmarshal(m["ParsedResult"], &s); err != nil {
		return strings.TrimSpace(string(m["ParsedResult"])), nil // JsonElement.ToString()
	}
	return s, nil
}
