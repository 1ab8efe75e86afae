package duplicati

import (
	"context"
	"errors"
	"testing"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

// TestProbe: ListBackups and ServerVersion on both routes, as
// `backup-stack check` uses them.
func TestProbe(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, docs(0, "Success"), duplicatisim.Quirks{}, envOpts{})
	for _, route := range both {
		t.Run(route, func(t *testing.T) {
			b := e.backend(t, route, nil)
			list, err := ListBackups(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if got := DescribeBackups(list); got != "Docs (ID 1), Photos (ID 2)" {
				t.Errorf("backups: %s", got)
			}
			for job, want := range map[string]bool{"docs": true, "2": true, "Doc": false, "3": false} {
				if _, ok := FindBackup(list, job); ok != want {
					t.Errorf("FindBackup(%q) = %v, want %v", job, ok, want)
				}
			}
			// The simulator has no systeminfo, and the util prints no version.
			if v, err := ServerVersion(ctx, b); v != "" || err != nil {
				t.Errorf("ServerVersion = %q, %v", v, err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		dead := newEnv(t, nil, duplicatisim.Quirks{}, envOpts{dead: true})
		if _, err := ListBackups(ctx, dead.backend(t, "api", nil)); !errors.Is(err, ErrUnreachable) {
			t.Errorf("ListBackups of a closed port: %v, want ErrUnreachable", err)
		}
	})
	if DescribeBackups(nil) != "none" {
		t.Errorf("DescribeBackups(nil) = %q", DescribeBackups(nil))
	}
}
