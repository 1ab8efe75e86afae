package hcl

import (
	"fmt"
	"testing"
)

// benchStack is the stack file of cmd/backup-generator's benchmarks:
// two jobs, a schedule, an on-demand socket and two hooks.
func benchStack(name string) []byte {
	return []byte(fmt.Sprintf(`stack %[1]q {
  jobs          = [%[1]q, "%[1]s-db"]
  schedule      = "*-*-* 03:07:00"
  require_paths = ["/mnt/backup"]
  on_demand {
    socket  = "zoopa-ondemand@%[1]s.socket"
    service = "zoopa-ondemand@%[1]s.service"
  }
  hook "pre_stop" {
    command        = ["podman", "exec", "-u", "www-data", "%[1]s-app", "php", "occ", "maintenance:mode", "--on"]
    ignore_failure = true
  }
  hook "post_start" {
    command        = ["podman", "exec", "-u", "www-data", "%[1]s-app", "php", "occ", "maintenance:mode", "--off"]
    ignore_failure = true
  }
}
`, name))
}

func BenchmarkParseStack(b *testing.B) {
	cfg, _ := ParseConfig("", nil)
	src := benchStack("stack0001")
	b.ReportAllocs()
	for b.Loop() {
		if st, diags := ParseStack("/x/stacks/stack0001.hcl", src, cfg); st == nil || diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}
