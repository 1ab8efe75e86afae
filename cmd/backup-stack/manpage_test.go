package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManPage: the page is what the CLI model gives (-update rewrites it),
// has the sections a manual page needs, every exit code, no hidden step as
// a command of its own, and renders without a warning where groff or man is installed.
func TestManPage(t *testing.T) {
	c := newCLI(t, "", nil)
	out, _ := c.must(0, "man")
	golden(t, "backup-stack.1", []byte(out))
	for _, w := range []string{".TH BACKUP-STACK 1", ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH COMMANDS",
		".SH EXIT STATUS", ".SH FILES", ".SH SEE ALSO", `.SS "list"`, `.SS "recover"`, `\fB\-\-color\fR=\fIWHEN\fR`, ".B 12\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("the manual page lacks %q", w)
		}
	}
	if strings.Contains(out, `.SS "gate`) || strings.Contains(out, `.SS "wait\-stopped`) {
		t.Error("the manual page describes a hidden step as a command")
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "'") || (strings.HasPrefix(l, ".") && !isManRequest(l)) {
			t.Errorf("line starts a roff request by accident: %q", l)
		}
	}
	f := filepath.Join(t.TempDir(), "backup-stack.1")
	if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	switch {
	case lookPath("groff"):
		cmd = exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", f)
	case lookPath("man"):
		cmd = exec.Command("man", "--warnings", "-l", f)
	default:
		t.Skip("neither groff nor man is installed: the page is not rendered")
	}
	b, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(b))) > 0 {
		t.Errorf("%v: %v\n%s", cmd.Args, err, b)
	}
}

// isManRequest says whether l is one of the requests writeManPage writes.
func isManRequest(l string) bool {
	for _, req := range []string{".TH ", ".SH ", ".SS ", ".TP", ".B ", ".I ", ".BR ", ".RI ", ".PP", ".RS", ".RE", ".nh", ".ad "} {
		if strings.HasPrefix(l, req) {
			return true
		}
	}
	return false
}

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
