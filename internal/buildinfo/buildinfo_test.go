package buildinfo

import (
	"runtime/debug"
	"testing"
)

// TestText: the module version Go recorded wins, then the -ldflags version,
// then "dev"; the VCS stamp follows when there is one.
func TestText(t *testing.T) {
	settings := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"}}
	cases := []struct {
		name    string
		ldflags string
		info    *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"no build info", "", nil, false, "backup-stack dev"},
		{"ldflags only", "v1.2.3", nil, false, "backup-stack v1.2.3"},
		{"module version wins", "v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, true, "backup-stack v1.4.0"},
		{"devel falls back", "v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings}, true,
			"backup-stack v1.2.3 (revision 0123abc, committed 2026-12-01T10:00:00Z, modified)"},
		{"clean tree", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201100000-0123abc"}, GoVersion: "go1.26.8",
			Settings: settings[:2]}, true, "backup-stack v0.0.0-20261201100000-0123abc (revision 0123abc, committed 2026-12-01T10:00:00Z, built with go1.26.8)"},
	}
	for _, tc := range cases {
		if got := text("backup-stack", tc.ldflags, tc.info, tc.ok); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
