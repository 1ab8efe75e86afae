package manager

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyThisPackageRunsSystemctl keeps the manager behind its interface:
// no other package of the product runs systemctl (tests and the e2e
// harness, which check the manager from outside, may).
func TestOnlyThisPackageRunsSystemctl(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case ".git", "test", "demo", filepath.Join("internal", "manager"):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), `"systemctl"`) {
			t.Errorf("%s runs systemctl; talk to the manager through internal/manager", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
