// Package systemd holds this project's systemd vocabulary in one place:
// the names of the units it generates, the checks systemd applies to unit
// names and programs, the quoting of Exec*= words and plain values, and
// which ActiveState values mean what. The generator, the helper and the
// configuration decoder all use it, so they can never disagree.
package systemd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// The static templates written by the generator.
const (
	BackupTemplate = "backup@.service"
	HoldTemplate   = "backup-hold@.service"
	NotifyTemplate = "backup-notify@.service"
	TimerTemplate  = "backup@.timer"
)

// TimersWants is the directory whose symlinks make timers.target want a
// timer; a generator cannot `systemctl enable`.
const TimersWants = "timers.target.wants"

// StackDropIn and ScheduleDropIn are the names of the per-stack drop-ins.
const (
	StackDropIn    = "50-stack.conf"
	ScheduleDropIn = "50-schedule.conf"
)

// BackupService is backup@<stack>.service, the entry point of a backup.
func BackupService(stack string) string { return "backup@" + stack + ".service" }

// HoldService is backup-hold@<stack>.service: while it is active, the
// stack is held down for its backup.
func HoldService(stack string) string { return "backup-hold@" + stack + ".service" }

// NotifyService is backup-notify@<stack>.service, started by OnFailure=
// and OnSuccess= of the backup unit.
func NotifyService(stack string) string { return "backup-notify@" + stack + ".service" }

// BackupTimer is backup@<stack>.timer, the stack's schedule.
func BackupTimer(stack string) string { return "backup@" + stack + ".timer" }

// BackupTimerGlob matches every backup timer, for list-units.
const BackupTimerGlob = "backup@*.timer"

// DropInPath is the path, relative to a unit directory, of the drop-in
// file name of unit.
func DropInPath(unit, file string) string { return unit + ".d/" + file }

// WantsLink is the path, relative to a unit directory, of the symlink that
// makes timers.target want the stack's timer, and the link's target.
func WantsLink(stack string) (path, target string) {
	return TimersWants + "/" + BackupTimer(stack), "../" + TimerTemplate
}

// RecoverService restores, at manager start, the stacks a crash left down.
const RecoverService = "backup-recover.service"

// RecoverWantsLink is the link that makes default.target want RecoverService.
func RecoverWantsLink() (path, target string) {
	return "default.target.wants/" + RecoverService, "../" + RecoverService
}

// TimerOfPath returns the backup timer that a generated file belongs to
// (its wants link or its schedule drop-in), or "".
func TimerOfPath(p string) string {
	if t, ok := strings.CutPrefix(p, TimersWants+"/"); ok && isBackupTimer(t) {
		return t
	}
	if d, _, ok := strings.Cut(p, "/"); ok {
		if t, ok := strings.CutSuffix(d, ".d"); ok && isBackupTimer(t) {
			return t
		}
	}
	return ""
}

func isBackupTimer(u string) bool {
	return strings.HasPrefix(u, "backup@") && strings.HasSuffix(u, ".timer") && u != TimerTemplate
}

// MaxStackName is the longest stack name: it becomes part of unit names
// (backup-notify@<name>.service), which systemd limits to 255 characters.
const MaxStackName = 200

// ValidStackName reports whether name may be a stack name (CheckStackName).
func ValidStackName(name string) bool { return CheckStackName(name) == nil }

// CheckStackName says why name cannot be a stack name. The allowed set is
// small on purpose: letters, digits, '-' and '_', starting with a letter or
// a digit. The name becomes the instance of backup@.service and reaches
// unit files through %i without any escaping, and it is an argument of the
// helper on every line of the units: a name starting with '-' ("-h",
// "--help") would be read as an option.
func CheckStackName(name string) error {
	const rule = "a stack name must start with a letter or a digit and may only contain letters, digits, '-' and '_'"
	if name == "" {
		return errors.New("the stack name is empty; " + rule)
	}
	if len(name) > MaxStackName {
		return fmt.Errorf("the stack name is %d characters long, at most %d are allowed; %s", len(name), MaxStackName, rule)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q contains %q; %s", name, r, rule)
		}
	}
	if c := name[0]; c == '-' || c == '_' {
		return fmt.Errorf("%q starts with %q; %s", name, c, rule)
	}
	return nil
}

// StackFromArg turns a unit name into the stack name it stands for:
// backup@cryptpad.service (or .timer) and cryptpad-stack.service give
// cryptpad, cryptpad.service gives cryptpad. A valid stack name comes back
// as it is, never shortened: X-stack is the stack X-stack. Units pass the
// exact name, and what a person types goes through ResolveStackArg, which
// shortens only when no stack has the exact name.
func StackFromArg(arg string) string {
	s := strings.TrimSpace(arg)
	if ValidStackName(s) {
		return s
	}
	if rest, ok := strings.CutPrefix(s, "backup@"); ok {
		return strings.TrimSuffix(strings.TrimSuffix(rest, ".service"), ".timer")
	}
	s = strings.TrimSuffix(s, ".service")
	return strings.TrimSuffix(s, "-stack")
}

// ResolveStackArg turns what a person typed into a stack name. Like the
// seed, it accepts the stack's unit name (cryptpad-stack.service, or
// cryptpad-stack) and the backup unit (backup@cryptpad.service), but only
// when no stack has exactly the name typed: exists says whether a stack of
// that name exists. When nothing matches it returns StackFromArg(arg), for
// the error message.
func ResolveStackArg(arg string, exists func(string) bool) string {
	s := strings.TrimSpace(arg)
	if exists(s) {
		return s
	}
	var candidates []string
	if rest, ok := strings.CutPrefix(s, "backup@"); ok {
		candidates = append(candidates, strings.TrimSuffix(strings.TrimSuffix(rest, ".service"), ".timer"))
	} else {
		t := strings.TrimSuffix(s, ".service")
		// The unit-name convention first: X-stack.service is the unit of X.
		candidates = append(candidates, strings.TrimSuffix(t, "-stack"), t)
	}
	for _, c := range candidates {
		if c != s && exists(c) {
			return c
		}
	}
	return StackFromArg(s)
}

// OwnUnit reports whether name is one of this project's units (any
// instance, drop-in owner or template): backup@, backup-hold@,
// backup-notify@, backup-recover.service and the rootless mode's
// backup-generator-render units.
func OwnUnit(name string) bool {
	for _, p := range []string{"backup@", "backup-hold@", "backup-notify@", "backup-generator-render."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == RecoverService
}

// specialUnits are the special units of systemd.special(7) that are not
// targets (every target fails the type check anyway), for the system and
// the user manager.
var specialUnits = map[string]string{
	"-.mount":                       "the root file system",
	"-.slice":                       "the root slice",
	"system.slice":                  "a slice of the manager",
	"user.slice":                    "a slice of the manager",
	"machine.slice":                 "a slice of the manager",
	"app.slice":                     "a slice of the user manager",
	"background.slice":              "a slice of the user manager",
	"session.slice":                 "a slice of the user manager",
	"init.scope":                    "the manager itself",
	"dbus.service":                  "the D-Bus bus",
	"dbus.socket":                   "the D-Bus bus",
	"display-manager.service":       "the display manager",
	"syslog.socket":                 "the syslog socket",
	"system-update-cleanup.service": "part of offline updates",
}

// StackUnitError is the error of CheckStackUnit. Rule names the rule that
// the unit breaks: "name" (CheckUnitName), "special", "own", "option" or
// "type".
type StackUnitError struct {
	Rule string
	Err  error
}

func (e *StackUnitError) Error() string { return e.Err.Error() }
func (e *StackUnitError) Unwrap() error { return e.Err }

// CheckStackUnit applies, on top of CheckUnitName, the rules for a unit
// that a backup stops and starts again (a stack's unit, its on-demand
// socket and service): not a special unit of systemd, which a backup must
// never stop; not one of this project's own units, which would stop the
// backup itself; not starting with '-', which systemctl would read as an
// option; and of type typ (".service" or ".socket"). The error is a
// *StackUnitError.
func CheckStackUnit(name, typ string) error {
	fail := func(rule string, err error) error { return &StackUnitError{Rule: rule, Err: err} }
	if err := CheckUnitName(name); err != nil {
		return fail("name", err)
	}
	if what, ok := specialUnits[name]; ok {
		return fail("special", fmt.Errorf("%q is a special unit of systemd (%s, see systemd.special(7)); a backup must never stop it: name the stack's own unit", name, what))
	}
	if OwnUnit(name) {
		return fail("own", fmt.Errorf("%q is one of backup-stack's own units (backup@*, backup-hold@*, backup-notify@*, backup-recover.service, backup-generator-render.*); holding it down would stop the backup itself: name the stack's own unit", name))
	}
	if strings.HasPrefix(name, "-") {
		return fail("option", fmt.Errorf("%q starts with '-', which systemctl would read as an option; rename the unit", name))
	}
	if !strings.HasSuffix(name, typ) {
		return fail("type", fmt.Errorf("%q must name a %s unit", name, typ))
	}
	return nil
}

var unitTypes = []string{"service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"}

// CheckUnitName applies systemd's rules for a unit that can be started:
// a known type suffix, only the characters systemd allows, at most one '@'
// and, if there is one, a non-empty instance.
func CheckUnitName(name string) error {
	if len(name) >= 256 {
		return fmt.Errorf("%q is longer than the 255 characters systemd allows", name)
	}
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return fmt.Errorf("%q has no unit type suffix such as .service", name)
	}
	typ, prefix := name[dot+1:], name[:dot]
	known := false
	for _, t := range unitTypes {
		if t == typ {
			known = true
		}
	}
	if !known {
		return fmt.Errorf("%q: %q is not a unit type (use .service, .socket, .target ...)", name, "."+typ)
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.\\@", r)) {
			return fmt.Errorf("%q contains %q; systemd unit names allow only letters, digits and : - _ . \\ @", name, r)
		}
	}
	switch at := strings.Count(prefix, "@"); {
	case at > 1:
		return fmt.Errorf("%q contains more than one '@'", name)
	case at == 1 && strings.HasPrefix(prefix, "@"):
		return fmt.Errorf("%q has an empty name before '@'", name)
	case at == 1 && strings.HasSuffix(prefix, "@"):
		return fmt.Errorf("%q is a template; name an instance such as %q", name, strings.TrimSuffix(prefix, "@")+"@NAME."+typ)
	}
	return nil
}

// CheckProgram applies the rules systemd uses for the first word of an
// Exec*= line (after unquoting): not empty, no quotes, backslashes or
// control characters, not a directory, and either an absolute path of a
// valid length or a plain file name looked up in systemd's search path.
// A line that breaks them makes the unit fail to load ("bad-setting") or,
// with the "-" prefix, is dropped silently; either way the hook would not
// run, so it is refused with the hook's position.
func CheckProgram(p string) error {
	const pathMax, nameMax = 4096, 255
	if p == "" {
		return errors.New("the program is empty")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\'' || r == '\\' {
			return fmt.Errorf("the program %q contains a quote, backslash or control character, which systemd refuses in an executable name", p)
		}
		if r == '$' {
			// systemd expands variables in the arguments but not in the
			// path it executes, so "$" cannot be written for both.
			return fmt.Errorf("the program %q contains '$'; systemd does not expand variables in the program path", p)
		}
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("the program %q names a directory", p)
	}
	if !strings.HasPrefix(p, "/") {
		if strings.Contains(p, "/") {
			return fmt.Errorf("the program %q is neither an absolute path nor a plain name; write /full/path/%s or just the name", p, filepath.Base(p))
		}
		if p == "." || p == ".." || len(p) > nameMax {
			return fmt.Errorf("the program %q is not a valid file name", p)
		}
		return nil
	}
	if len(p) >= pathMax {
		return fmt.Errorf("the program path is longer than %d bytes", pathMax-1)
	}
	for c := range strings.SplitSeq(p, "/") {
		if len(c) > nameMax {
			return fmt.Errorf("the program path %q has a component longer than %d bytes", p, nameMax)
		}
	}
	return nil
}
