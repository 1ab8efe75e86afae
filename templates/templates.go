// Package templates holds the static unit templates that the generator
// writes once per user manager. Per-stack details go into small drop-ins
// (the getty-generator pattern), so these files are the same for every
// stack. "@HELPER@" stands for the quoted path of the backup-stack binary.
package templates

import "embed"

// FS holds backup@.service, backup-hold@.service, backup-notify@.service
// and backup@.timer.
//
//go:embed backup@.service backup-hold@.service backup-notify@.service backup@.timer
var FS embed.FS

// Names of the embedded templates, in the order they are written.
var Names = []string{"backup@.service", "backup-hold@.service", "backup-notify@.service", "backup@.timer"}

// HelperPlaceholder is replaced by the escaped path of backup-stack.
const HelperPlaceholder = "@HELPER@"
