package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportGraph keeps out of the generator what its start-up cannot
// afford: it runs at every manager start and daemon-reload. gohcl brings
// hclwrite and go-cmp, whose package initialisation compiles regexps and
// builds tables (about 0.5-1 ms, more than the rest of a small run); hclparse
// brings hcl's JSON parser; package net links the C resolver, so the binary
// loads libc and the dynamic loader (a megabyte of RSS).
func TestImportGraph(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	banned := map[string]bool{
		"github.com/hashicorp/hcl/v2/gohcl":    true,
		"github.com/hashicorp/hcl/v2/hclwrite": true,
		"github.com/hashicorp/hcl/v2/hclparse": true,
		"github.com/hashicorp/hcl/v2/json":     true,
		"github.com/google/go-cmp/cmp":         true,
		"net":                                  true,
		"os/user":                              true,
		"runtime/cgo":                          true,
	}
	for _, p := range strings.Fields(string(out)) {
		if banned[p] {
			t.Errorf("backup-generator imports %s", p)
		}
	}
}
