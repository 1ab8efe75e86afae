package hcl

import (
	"reflect"
	"strings"
	"testing"
)

func TestNotifyAndHealthcheckInheritance(t *testing.T) {
	cfg, diags := ParseConfig("/cfg/config.hcl", []byte(`
notify {
  on_failure = ["/usr/bin/ntfy", "publish", "backups", "failed"]
}
healthcheck { url = "https://hc.example/ping/global" }
metrics_file = "/var/lib/prom/backup.prom"
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.MetricsFile != "/var/lib/prom/backup.prom" {
		t.Fatalf("metrics_file = %q", cfg.MetricsFile)
	}
	inherit, diags := ParseStack("/cfg/stacks/a.hcl", []byte(`stack "a" { jobs = ["a"] }`), cfg)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if !reflect.DeepEqual(inherit.Notify, cfg.Notify) || inherit.Healthcheck.URL != "https://hc.example/ping/global" {
		t.Fatalf("stack without blocks must inherit: %+v %+v", inherit.Notify, inherit.Healthcheck)
	}
	own, diags := ParseStack("/cfg/stacks/b.hcl", []byte(`stack "b" {
  jobs = ["b"]
  notify { on_success = ["mail", "-s", "ok", "me@example.org"] }
  healthcheck { url = "https://hc.example/ping/b" }
}`), cfg)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// The stack's block replaces the global one as a whole: no on_failure.
	want := &Notify{OnSuccess: []string{"mail", "-s", "ok", "me@example.org"}}
	if !reflect.DeepEqual(own.Notify, want) {
		t.Fatalf("notify = %+v, want %+v", own.Notify, want)
	}
	if own.Healthcheck.URL != "https://hc.example/ping/b" {
		t.Fatalf("healthcheck = %+v", own.Healthcheck)
	}
}

func TestHealthcheckURLNeverEchoed(t *testing.T) {
	_, diags := ParseConfig("/cfg/config.hcl", []byte(`healthcheck { url = "ftp://hc.example/secret-uuid-123" }`))
	if !diags.HasErrors() {
		t.Fatal("want an error")
	}
	for _, d := range diags {
		if strings.Contains(FormatDiag(d), "secret-uuid-123") {
			t.Fatalf("diagnostic leaks the ping URL: %s", FormatDiag(d))
		}
	}
}
