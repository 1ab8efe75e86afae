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

func cmdRun(o *output, host, password string, a utilArgs) error {
	if a.pollInterval < 1 {
		return userError{"Poll interval must be at least 1 second"}
	}
	c, err := connect(o, host, password)
	if err != nil {
		return err
	}
	q := c.quirks()
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
	skip := "False"
	if a.skipQueue {
		skip = "True"
	}
	if err := c.call("POST", "backup/"+match.ID+"/run?skipqueue="+skip, nil); err != nil {
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
	// WaitForBackupWithRetriesAsync: every exception leads to a re-login and a new wait.
	for {
		err := waitForBackup(c, match.ID, time.Duration(a.pollInterval)*time.Second, logf)
		if err == nil {
			break
		}
		if !a.quiet {
			o.msg("Re-authenticating...")
		}
		time.Sleep(reauthDelay)
		_ = c.login()
	}
	status, err := backupStatus(c, match.ID)
	if err != nil {
		return err
	}
	if !a.quiet {
		o.msg("Backup status: %s", status)
	}
	switch status {
	case "Warning":
		o.exitCode = 2
	case "Error":
		o.exitCode = 3
	case "Fatal":
		o.exitCode = 4
	}
	o.success = o.exitCode == 0
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
	hasStarted := false
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
	var rows []struct{ Message string }
	if err := c.call("GET", "backup/"+id+"/log?pagesize=1", &rows); err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "No log generated", nil
	}
	var m struct{ ParsedResult *string }
	if err := json.Unmarshal([]byte(rows[0].Message), &m); err != nil || m.ParsedResult == nil {
		return "Failed to parse backup log", nil
	}
	return *m.ParsedResult, nil
}
