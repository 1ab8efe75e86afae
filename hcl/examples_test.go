package hcl

import (
	"os"
	"path/filepath"
	"testing"
)

// TestShippedExamples loads the examples in stacks/ the way a user would
// copy them: none may produce any diagnostic, not even a warning.
func TestShippedExamples(t *testing.T) {
	src, err := os.ReadFile("../stacks/config.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := ParseConfig("config.hcl", src)
	for _, d := range diags {
		t.Errorf("config.hcl.example: %s", FormatDiag(d))
	}
	if cfg.Defaults.Schedule == "" {
		t.Error("config.hcl.example should show a default schedule")
	}

	files, err := filepath.Glob("../stacks/*.hcl")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples %v %v", files, err)
	}
	seen := map[string]*Stack{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		st, diags := ParseStack(f, src, cfg)
		for _, d := range diags {
			t.Errorf("%s", FormatDiag(d))
		}
		if st == nil {
			continue
		}
		seen[filepath.Base(f)] = st
	}
	if st := seen["cryptpad.hcl"]; st == nil || st.OnDemand == nil ||
		st.OnDemand.Socket != "zoopa-ondemand@cryptpad.socket" || st.OnDemand.Service != "zoopa-ondemand@cryptpad.service" ||
		st.RestorePolicy != RestorePrevious {
		t.Errorf("cryptpad.hcl: %+v", st)
	}
	if st := seen["nextcloud.hcl"]; st == nil || len(st.HooksOf("pre_stop")) != 1 || len(st.HooksOf("post_start")) != 1 {
		t.Errorf("nextcloud.hcl: %+v", st)
	}
	// The template sets every option of the schema.
	if st := seen["_template.hcl"]; st == nil || st.OnDemand == nil || st.OnDemand.Service == "" ||
		len(st.RequirePaths) == 0 || len(st.Hooks) < 2 {
		t.Errorf("_template.hcl: %+v", st)
	}
	// And the real loader skips the template but loads the others.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "stacks"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if err := os.WriteFile(filepath.Join(dir, "stacks", filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgSrc, _ := os.ReadFile("../stacks/config.hcl.example")
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), cfgSrc, 0o644); err != nil {
		t.Fatal(err)
	}
	set, diags := Load(dir)
	for _, d := range diags {
		t.Errorf("%s", FormatDiag(d))
	}
	if got := names(set); len(got) != 2 || got[0] != "cryptpad" || got[1] != "nextcloud" {
		t.Errorf("loaded %v", got)
	}
}
