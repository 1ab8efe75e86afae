package hcl

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSnapshotBlock(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "")
	cfg := &Config{}
	for _, tc := range []struct {
		name, body string
		want       *Snapshot
		wantErr    string // a substring of the one error, with its position
	}{
		{name: "none", body: ``, want: nil},
		{name: "defaults", body: `snapshot { paths = ["~/data", "/srv/db/"] }`, want: &Snapshot{
			Paths: []string{filepath.Join(home, "data"), "/srv/db/"}, Method: "auto",
			Into: filepath.Join(home, ".local/share/backup-stack/snapshots"), Timeout: 30 * time.Minute}},
		{name: "all", body: `snapshot {
  paths   = ["/srv/a"]
  method  = "reflink"
  into    = "~/snaps"
  timeout = "5m"
}`, want: &Snapshot{Paths: []string{"/srv/a"}, Method: "reflink", Into: filepath.Join(home, "snaps"), Timeout: 5 * time.Minute}},
		{name: "no paths attribute", body: `snapshot { method = "copy" }`, wantErr: `s.hcl:2:12: error: Missing required argument: The argument "paths" is required`},
		{name: "empty paths", body: `snapshot { paths = [] }`, wantErr: "No snapshot paths"},
		{name: "relative path", body: "snapshot {\n  paths = [\"/ok\", \"data\"]\n}", wantErr: `s.hcl:3:19: error: Invalid path: paths[1] = "data" must be an absolute path`},
		{name: "root path", body: `snapshot { paths = ["/"] }`, wantErr: "cannot be the root directory"},
		{name: "control character", body: `snapshot { paths = ["/a\tb"] }`, wantErr: "control character"},
		{name: "duplicate path", body: `snapshot { paths = ["/a", "/a/"] }`, wantErr: "paths[0] and paths[1] are the same path"},
		{name: "unknown method", body: `snapshot {
  paths  = ["/a"]
  method = "zfs"
}`, wantErr: `s.hcl:4:12: error: Unknown snapshot method: method = "zfs"`},
		{name: "relative into", body: `snapshot {
  paths = ["/a"]
  into  = "snaps"
}`, wantErr: `into = "snaps" must be an absolute path`},
		{name: "bad timeout", body: `snapshot {
  paths   = ["/a"]
  timeout = "soon"
}`, wantErr: "Invalid duration"},
		{name: "two blocks", body: "snapshot { paths = [\"/a\"] }\nsnapshot { paths = [\"/b\"] }", wantErr: "only one snapshot block is allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The block starts on line 2.
			src := "stack \"s\" {\n" + tc.body + "\n  jobs = [\"s\"]\n}\n"
			st, diags := ParseStack("/x/s.hcl", []byte(src), cfg)
			errs := errorsOf(diags)
			if tc.wantErr != "" {
				if len(errs) != 1 || !strings.Contains(errs[0], tc.wantErr) {
					t.Fatalf("errors %q, want one containing %q", errs, tc.wantErr)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors: %q", errs)
			}
			got := st.Snapshot
			if got != nil {
				got.Range = Snapshot{}.Range
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("snapshot %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDefaultSnapshotDirXDG(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data/home")
	if got := DefaultSnapshotDir(); got != "/data/home/backup-stack/snapshots" {
		t.Errorf("DefaultSnapshotDir = %q", got)
	}
	t.Setenv("XDG_DATA_HOME", "relative")
	t.Setenv("HOME", "/h")
	if got := DefaultSnapshotDir(); got != "/h/.local/share/backup-stack/snapshots" {
		t.Errorf("DefaultSnapshotDir with a relative XDG_DATA_HOME = %q (the spec says ignore it)", got)
	}
}
