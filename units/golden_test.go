package units

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/backup-stack/backup-stack/hcl"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenHelper is the helper path used in every golden file.
const goldenHelper = "/usr/local/bin/backup-stack"

// goldenRoot replaces the checkout-dependent testdata path in SourcePath=,
// so the golden files hold exactly what the generator writes for a user
// whose configuration lives there.
const goldenRoot = "/home/user/.config/backup-stack"

// loadCase loads testdata/golden/<name>/config and moves its stack files
// to goldenRoot.
func loadCase(t testing.TB, name string) *hcl.Set {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "golden", name, "config"))
	if err != nil {
		t.Fatal(err)
	}
	set, diags := hcl.Load(dir)
	// Only files named broken*.hcl may fail, on purpose.
	for _, d := range diags {
		if d.Subject == nil || !strings.HasPrefix(filepath.Base(d.Subject.Filename), "broken") {
			t.Fatalf("unexpected diagnostic: %s", hcl.FormatDiag(d))
		}
	}
	for _, st := range set.Stacks {
		rel, err := filepath.Rel(dir, st.File)
		if err != nil {
			t.Fatal(err)
		}
		st.File = goldenRoot + "/" + filepath.ToSlash(rel)
	}
	return set
}

func dryRun(t testing.TB, files []File) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := DryRun(&b, files); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func goldenCases(t *testing.T) []string {
	entries, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 4 {
		t.Fatalf("golden cases %v", out)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			set := loadCase(t, name)
			files, err := Render(set, Options{Helper: goldenHelper})
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			got := dryRun(t, files)
			path := filepath.Join("testdata", "golden", name, "dryrun.golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./units -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test ./units -update and review the diff):\n%s",
					path, firstDiff(string(want), string(got)))
			}
		})
	}
}

// firstDiff shows the first differing line, enough to see what changed.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\nwant: " + w + "\n got: " + g
		}
	}
	return "(same lines, different bytes)"
}
