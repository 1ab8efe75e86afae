package duplicati

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// BackupInfo is one backup (a job) the server knows.
type BackupInfo struct{ ID, Name string }

// ListBackups lists the server's backups on either route, for `backup-stack
// check`, which tells a stack's jobs that do not exist before a backup
// stops the stack for nothing. It logs in as Run would.
func ListBackups(ctx context.Context, b Backend) ([]BackupInfo, error) {
	var list []backupEntry
	switch b := b.(type) {
	case *execBackend:
		inv := b.invoke(ctx, "list-backups")
		if inv.err != nil {
			return nil, inv.err
		}
		l, err := parseListBackups(inv.out)
		if err != nil {
			return nil, err
		}
		list = l
	case *apiBackend:
		var dto []struct{ Backup struct{ ID, Name string } }
		if err := b.do(ctx, http.MethodGet, "backups", &dto); err != nil {
			return nil, wrapOther(err)
		}
		for _, d := range dto {
			list = append(list, backupEntry{ID: d.Backup.ID, Name: d.Backup.Name})
		}
	default:
		return nil, fmt.Errorf("duplicati: cannot list the backups of a %T", b)
	}
	out := make([]BackupInfo, len(list))
	for i, e := range list {
		out[i] = BackupInfo{ID: e.ID, Name: e.Name}
	}
	return out, nil
}

// FindBackup finds job in list as Run does: by name (case-insensitive) or ID.
func FindBackup(list []BackupInfo, job string) (BackupInfo, bool) {
	for _, b := range list {
		if strings.EqualFold(b.Name, job) || b.ID == job {
			return b, true
		}
	}
	return BackupInfo{}, false
}

// DescribeBackups names the backups of list for a message ("none" when empty).
func DescribeBackups(list []BackupInfo) string {
	es := make([]backupEntry, len(list))
	for i, b := range list {
		es[i] = backupEntry{ID: b.ID, Name: b.Name}
	}
	return describeBackups(es)
}

// ServerVersion is the server's version as the REST route's systeminfo
// tells it ("" when it does not, or has no systeminfo). The exec route's util prints no version:
// it returns "" and no error.
func ServerVersion(ctx context.Context, b Backend) (string, error) {
	a, ok := b.(*apiBackend)
	if !ok {
		return "", nil
	}
	var info struct{ ServerVersion string }
	if err := a.do(ctx, http.MethodGet, "systeminfo", &info); err != nil {
		if isStatus(err, http.StatusNotFound) { // a server (or the simulator) without it
			return "", nil
		}
		return "", wrapOther(err)
	}
	return info.ServerVersion, nil
}
