package main

import "github.com/backup-stack/backup-stack/internal/buildinfo"

// version is set at build time with -ldflags "-X main.version=..."; the
// module version Go records comes first (see internal/buildinfo).
var version = ""

// buildVersion is the --version line of this binary.
func buildVersion() string { return buildinfo.Text("backup-generator", version) }
