package main

import (
	"bytes"
	"regexp"
	"testing"
)

// TestVersionFlag: --version prints one line naming the program and its
// version, writes nothing else and needs no output directory.
func TestVersionFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !regexp.MustCompile(`^backup-generator \S+( \([^\n]*\))?\n$`).MatchString(out.String()) {
		t.Errorf("--version: %q", out.String())
	}
}
