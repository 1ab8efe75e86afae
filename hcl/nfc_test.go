package hcl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// TestStringsAsWritten: HCL normalises strings to NFC; paths and arguments written in NFD
// must still name the file that exists on disk.
func TestStringsAsWritten(t *testing.T) {
	nfd := "cafe\u0301" // "café" decomposed
	if norm.NFC.String(nfd) == nfd {
		t.Fatal("test string is already NFC")
	}
	dir := filepath.Join(t.TempDir(), nfd)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`stack "s" {
  jobs          = ["j"]
  require_paths = [%q]
  hook "pre_stop" { command = ["/bin/ls", %q] }
}
`, dir, dir)
	// %q escapes nothing here (all printable), so the bytes are as written.
	if strings.Contains(src, `\u`) {
		t.Fatalf("the literal has escapes: %s", src)
	}
	st, diags := ParseStack("s.hcl", []byte(src), &Config{})
	if diags.HasErrors() || st == nil {
		t.Fatalf("diags: %v", diags)
	}
	if got := st.RequirePaths[0]; got != dir {
		t.Errorf("require_paths[0] = %q, want %q as written", got, dir)
	}
	if _, err := os.Stat(st.RequirePaths[0]); err != nil {
		t.Errorf("the path as decoded does not exist: %v", err)
	}
	if got := st.Hooks[0].Command[1]; got != dir {
		t.Errorf("hook argument = %q, want %q as written", got, dir)
	}

	// With an escape the literal cannot be taken byte for byte: a warning says so.
	esc := `stack "s" {
  jobs          = ["j"]
  require_paths = ["/tmp/` + nfd + `\t"]
}
`
	_, diags = ParseStack("s.hcl", []byte(esc), &Config{})
	found := false
	for _, d := range diags {
		if d.Summary == "Unicode normalised" {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning for an NFD literal with escapes: %v", diags)
	}
}
