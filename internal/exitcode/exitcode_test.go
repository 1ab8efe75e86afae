package exitcode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTableIsComplete: every code from OK to StillHeld has one row, in order.
func TestTableIsComplete(t *testing.T) {
	for i, e := range Table {
		if e.Code != i {
			t.Errorf("row %d has code %d; the table must list 0..%d in order", i, e.Code, len(Table)-1)
		}
		if strings.TrimSpace(e.Meaning) == "" {
			t.Errorf("code %d has no meaning", e.Code)
		}
	}
	if Table[len(Table)-1].Code != StillHeld {
		t.Errorf("last row is %d, want StillHeld (%d)", Table[len(Table)-1].Code, StillHeld)
	}
}

// TestDocsShowTheTable holds README.md and docs/architecture.md to the
// table the code uses, so the documentation cannot drift from it.
func TestDocsShowTheTable(t *testing.T) {
	want := Markdown()
	for _, doc := range []string{"README.md", "docs/architecture.md"} {
		b, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not contain the exit code table; paste this:\n%s", doc, want)
		}
	}
}
