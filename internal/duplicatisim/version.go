package duplicatisim

import (
	"fmt"
	"slices"
)

// Versions lists the Duplicati releases the simulator imitates, oldest first. Quirks.Version
// takes one of them; "" means the newest (NewestVersion). Client tests loop over this.
var Versions = []string{"2.1.0.5", "2.2.0.3", "2.3.0.4", "2.3.1.0"}

// NewestVersion is the profile used when Quirks.Version is "".
const NewestVersion = "2.3.1.0"

// Profile is what one release does differently (reference 10.8). The server side is used by
// the simulator, the Util* fields by the duplicati-server-util stand-in.
type Profile struct {
	Version string // e.g. "2.3.1.0"
	Build   string // as in a log row's "Version", e.g. "2.3.1.0 (2.3.1.0_beta_2026-07-28)"

	// Server (REST API).
	TaskTimes      bool // task/{id} has TaskStarted/TaskFinished (2.1.2.0+)
	StopRoute      bool // task/{id}/stop exists; else /stopaftercurrentfile and /stopnow (2.1.0.x)
	ThrowFails     bool // a task whose operation threw is "Failed"; 2.1.0.x swallows it: "Completed"
	FinishGap      bool // 2.1.0.x: task/{id} may answer 404 once right after the task finished
	SkipQueue      bool // run honours ?skipQueue, default end of queue; 2.1.0.x always queues first
	RefreshNonce   bool // login answers RefreshNonce and auth/refresh checks it (2.1.2.0+)
	PreAuth        bool // pre-authenticated tokens, Authorization: PreAuth <tok> (2.1.2.0+)
	StateType      bool // serverstate has "Type":"legacystatus" (2.1.2.0+)
	DatabaseLocked bool // backup/{id}/log can answer 400 DatabaseLocked (2.3.0.107+, 2.3.1.0)
	SyncJobs       bool // Sync-type jobs exist; they write no Result log row (2.3.1.0)

	// duplicati-server-util.
	UtilJSON            bool   // --json, --portable-mode, list-backups --detailed, run --skip-queue (2.1.2.0+)
	UtilTrailingLine    bool   // the middleware prints the serialised result: a final empty line (2.1.2.0+)
	UtilReauth          bool   // run --wait re-authenticates and retries on any error (2.1.2.0+)
	UtilBackupStatus    bool   // run --wait ends "Backup status: X" (2.2.0.2+); else "Backup finished"
	UtilExitCodes       bool   // run --wait exits 2/3/4 for Warning/Error/Fatal (2.3.0.107+)
	UtilDataFolderCheck bool   // data-folder permission check, --allow-insecure-datafolder (2.3.0.107+)
	UtilSigninAlways    bool   // 2.1.0.x: the DB sign-in is tried even when --password is given
	UtilStoresRefresh   bool   // 2.1.0.x: every sign-in stores the refresh token in the settings file
	UtilDefaultHost     string // --hosturl default
}

var profiles = map[string]Profile{
	"2.1.0.5": {
		Version: "2.1.0.5", Build: "2.1.0.5 (2.1.0.5_stable_2025-03-04)",
		FinishGap:        true,
		UtilSigninAlways: true, UtilStoresRefresh: true,
		UtilDefaultHost: "http://localhost:8200",
	},
	"2.2.0.3": {
		Version: "2.2.0.3", Build: "2.2.0.3 (2.2.0.3_stable_2026-01-06)",
		TaskTimes: true, StopRoute: true, ThrowFails: true, SkipQueue: true, RefreshNonce: true,
		PreAuth: true, StateType: true,
		UtilJSON: true, UtilTrailingLine: true, UtilReauth: true, UtilBackupStatus: true,
		UtilDefaultHost: "http://127.0.0.1:8200",
	},
	"2.3.0.4": {
		Version: "2.3.0.4", Build: "2.3.0.4 (2.3.0.4_stable_2026-07-09)",
		TaskTimes: true, StopRoute: true, ThrowFails: true, SkipQueue: true, RefreshNonce: true,
		PreAuth: true, StateType: true,
		UtilJSON: true, UtilTrailingLine: true, UtilReauth: true, UtilBackupStatus: true,
		UtilDefaultHost: "http://127.0.0.1:8200",
	},
	"2.3.1.0": {
		Version: "2.3.1.0", Build: "2.3.1.0 (2.3.1.0_beta_2026-07-28)",
		TaskTimes: true, StopRoute: true, ThrowFails: true, SkipQueue: true, RefreshNonce: true,
		PreAuth: true, StateType: true, DatabaseLocked: true, SyncJobs: true,
		UtilJSON: true, UtilTrailingLine: true, UtilReauth: true, UtilBackupStatus: true,
		UtilExitCodes: true, UtilDataFolderCheck: true,
		UtilDefaultHost: "http://127.0.0.1:8200",
	},
}

// ProfileFor returns the profile of version ("" = NewestVersion); unknown versions are an error.
func ProfileFor(version string) (Profile, error) {
	if version == "" {
		version = NewestVersion
	}
	p, ok := profiles[version]
	if !ok {
		return Profile{}, fmt.Errorf("version %q: want one of %v (or \"\" for %s)", version, Versions, NewestVersion)
	}
	return p, nil
}

func init() {
	for _, v := range Versions {
		if _, ok := profiles[v]; !ok {
			panic("duplicatisim: no profile for " + v)
		}
	}
	if !slices.Contains(Versions, NewestVersion) {
		panic("duplicatisim: NewestVersion not in Versions")
	}
}
