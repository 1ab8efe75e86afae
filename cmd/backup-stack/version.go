package main

import "github.com/backup-stack/backup-stack/internal/buildinfo"

// buildVersion is the --version line of this binary.
func buildVersion() string { return buildinfo.Text("backup-stack", version) }
