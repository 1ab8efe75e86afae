package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The two kinds of input. Each stack file is paired with one .container
// file of about the same size and number of keys, so both programs parse
// the same amount of text per unit.
const (
	kindMinimal   = "minimal"
	kindRealistic = "realistic"
)

// stackName is fixed-width so every file of one kind has the same size.
func stackName(i int) string { return fmt.Sprintf("s%04d", i) }

func minimalStack(i int) string {
	n := stackName(i)
	return fmt.Sprintf("stack %q { jobs = [%q] }\n", n, n)
}

func minimalContainer(int) string { return "[Container]\nImage=localhost/x\n" }

// realisticConfig is the config.hcl of the realistic input (the same as
// cmd/backup-generator's writeStacks uses).
const realisticConfig = "duplicati {\n  wait_timeout = \"6h\"\n}\ndefaults {\n  restore_policy = \"previous\"\n}\n"

// realisticStack has the shape of stacks/nextcloud.hcl with everything a
// stack file can say in use: unit, project label, three jobs, schedule,
// timeouts, a required path, an on-demand socket, two hooks with
// timeouts and a notify block. About 1 KiB.
func realisticStack(i int) string {
	return fmt.Sprintf(`# %[1]s: web application and its database; maintenance mode around the stop.
stack %[1]q {
  unit           = "%[1]s-stack.service"
  project_label  = "%[1]s"
  jobs           = ["%[1]s", "%[1]s-db", "%[1]s-files"]
  schedule       = "*-*-* 03:%02[2]d:00"
  restore_policy = "previous"
  stop_timeout   = "2m"
  start_timeout  = "5m"
  wait_timeout   = "6h"
  require_paths  = ["/mnt/backup"]

  on_demand {
    socket  = "zoopa-ondemand@%[1]s.socket"
    service = "zoopa-ondemand@%[1]s.service"
  }

  hook "pre_stop" {
    command        = ["podman", "exec", "-u", "www-data", "%[1]s-app",
                      "php", "occ", "maintenance:mode", "--on"]
    ignore_failure = true
    timeout        = "1m"
  }
  hook "post_start" {
    command        = ["podman", "exec", "-u", "www-data", "%[1]s-app",
                      "php", "occ", "maintenance:mode", "--off"]
    ignore_failure = true
    timeout        = "1m"
  }

  notify {
    on_failure = ["/bin/sh", "-c", "curl -fsS -d \"$BACKUP_LOG\" https://ntfy.sh/%[1]s"]
  }
}
`, stackName(i), i%60)
}

// realisticContainer is a quadlet .container file of the same size (±5 %)
// and about the same number of keys as realisticStack: the app container
// of such a stack, with [Unit], [Service] and [Install] sections.
func realisticContainer(i int) string {
	return fmt.Sprintf(`# %[1]s: web application container; its database runs in %[1]s-db and
# its data lives under ~/podman-compose/%[1]s, which the backup copies.
[Unit]
Description=%[1]s web application (Nextcloud, Apache)
After=network-online.target %[1]s-db.service
Wants=network-online.target

[Container]
Image=docker.io/library/nextcloud:30-apache
ContainerName=%[1]s-app
Label=io.podman.compose.project=%[1]s
Label=backup-stack.stack=%[1]s
Environment=POSTGRES_HOST=%[1]s-db
Environment=POSTGRES_DB=%[1]s
Environment=NEXTCLOUD_TRUSTED_DOMAINS=%[1]s.example.org
Volume=/home/backup/podman-compose/%[1]s/html:/var/www/html:Z
Volume=/home/backup/podman-compose/%[1]s/data:/var/www/html/data:Z
Volume=/home/backup/podman-compose/%[1]s/config:/var/www/html/config:Z
PublishPort=127.0.0.1:1%04[2]d:80
Network=%[1]s-net
HealthCmd=curl -fsS http://127.0.0.1/status.php
Exec=apache2-foreground

[Service]
Restart=on-failure
TimeoutStartSec=300
ExecStartPre=/usr/bin/mkdir -p /home/backup/podman-compose/%[1]s/html /home/backup/podman-compose/%[1]s/data

[Install]
WantedBy=default.target
`, stackName(i), i)
}

var (
	hclKey  = regexp.MustCompile(`(?m)(^|\{)\s*[a-z_]+\s*=`)
	unitKey = regexp.MustCompile(`(?m)^[A-Za-z]+=`)
)

// hclKeys counts the attributes of an HCL file (blocks not counted): a
// name and "=" at the start of a line or after "{".
func hclKeys(src string) int { return len(hclKey.FindAllString(src, -1)) }

// unitKeys counts the Key= lines of a unit file.
func unitKeys(src string) int { return len(unitKey.FindAllString(src, -1)) }

// input is one generated input: n stack files under
// cfgHome/backup-stack/stacks and n .container files in quadletDir.
type input struct {
	kind       string
	n          int
	cfgHome    string // XDG_CONFIG_HOME for backup-generator
	quadletDir string // QUADLET_UNIT_DIRS for quadlet
	// Per file (they are all the same size), and of config.hcl.
	stackBytes, stackKeys         int
	containerBytes, containerKeys int
	configBytes                   int
}

func (in input) label() string { return fmt.Sprintf("%d %s", in.n, in.kind) }

// sources returns the stack file and the .container file for stack i.
func sources(kind string, i int) (stack, container string) {
	if kind == kindMinimal {
		return minimalStack(i), minimalContainer(i)
	}
	return realisticStack(i), realisticContainer(i)
}

// writeInput writes an input of n files of the given kind under dir.
func writeInput(dir, kind string, n int) (input, error) {
	in := input{
		kind:       kind,
		n:          n,
		cfgHome:    filepath.Join(dir, "config"),
		quadletDir: filepath.Join(dir, "containers", "systemd"),
	}
	stacks := filepath.Join(in.cfgHome, "backup-stack", "stacks")
	for _, d := range []string{stacks, in.quadletDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return in, err
		}
	}
	if kind == kindRealistic {
		if err := os.WriteFile(filepath.Join(in.cfgHome, "backup-stack", "config.hcl"), []byte(realisticConfig), 0o644); err != nil {
			return in, err
		}
		in.configBytes = len(realisticConfig)
	}
	for i := 1; i <= n; i++ {
		s, c := sources(kind, i)
		if i == 1 {
			in.stackBytes, in.stackKeys = len(s), hclKeys(s)
			in.containerBytes, in.containerKeys = len(c), unitKeys(c)
		}
		if err := os.WriteFile(filepath.Join(stacks, stackName(i)+".hcl"), []byte(s), 0o644); err != nil {
			return in, err
		}
		if err := os.WriteFile(filepath.Join(in.quadletDir, stackName(i)+".container"), []byte(c), 0o644); err != nil {
			return in, err
		}
	}
	return in, nil
}

// countFiles counts the files and symlinks under dir.
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// envWithout returns os.Environ() without the given variables.
func envWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			if k == n {
				drop = true
			}
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}
