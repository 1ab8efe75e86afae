// Package templates holds the static unit templates that the generator
// writes once per user manager. Per-stack details go into small drop-ins
// (the getty-generator pattern), so these files are the same for every
// stack. "@HELPER@" stands for the quoted path of the backup-stack binary.
package templates

import "embed"

// FS holds backup@.service, backup-hold@.service, backup-notify@.service,
// backup@.timer and backup-recover.service.
//
//go:embed backup@.service backup-hold@.service backup-notify@.service backup@.timer backup-recover.service
var FS embed.FS

// Names of the embedded templates, in the order they are written.
var Names = []string{"backup@.service", "backup-hold@.service", "backup-notify@.service", "backup@.timer", "backup-recover.service"}

// HelperPlaceholder is replaced by the escaped path of backup-stack.
const HelperPlaceholder = "@HELPER@"

// The rootless mode's two units, backup-generator-render.path and
// backup-generator-render.service, are templates too, filled in by
// install.sh --rootless (which knows the directories): @HELPER@, @UNIT_DIR@,
// @STACKS_DIR@, @CONFIG_FILE@ (escaped for a path setting) and
// @CONFIG_DIR_WORD@, @UNIT_DIR_WORD@ (quoted Exec words). They call
// `backup-stack render`. They are embedded so that a test can check them.
//
//go:embed backup-generator-render.path backup-generator-render.service
var RenderFS embed.FS

// RenderNames are the rootless mode's units.
var RenderNames = []string{"backup-generator-render.path", "backup-generator-render.service"}
