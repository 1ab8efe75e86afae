package hcl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ValidStackName reports whether name may be a stack name. The allowed set
// is small on purpose: the name becomes the instance of backup@.service and
// reaches unit files through %i without any escaping.
func ValidStackName(name string) bool {
	if name == "" || len(name) > 200 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
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

// StackFromArg turns what a user typed into a stack name. Like the seed, it
// accepts the stack's unit name (cryptpad-stack.service) and, for
// convenience, the backup unit (backup@cryptpad.service).
func StackFromArg(arg string) string {
	s := strings.TrimSpace(arg)
	if strings.HasPrefix(s, "backup@") {
		s = strings.TrimPrefix(s, "backup@")
		s = strings.TrimSuffix(strings.TrimSuffix(s, ".service"), ".timer")
		return s
	}
	s = strings.TrimSuffix(s, ".service")
	return strings.TrimSuffix(s, "-stack")
}

// Dir returns the configuration directory: $XDG_CONFIG_HOME/backup-stack,
// else ~/.config/backup-stack.
func Dir() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "backup-stack"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the configuration directory: neither XDG_CONFIG_HOME nor HOME is set: %w", err)
	}
	if home == "" {
		return "", errors.New("cannot find the configuration directory: HOME is empty")
	}
	return filepath.Join(home, ".config", "backup-stack"), nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// CheckProgram applies the rules systemd uses for the first word of an
// Exec*= line (after unquoting): not empty, no quotes, backslashes or
// control characters, not a directory, and either an absolute path of a
// valid length or a plain file name looked up in systemd's search path.
// A line that breaks them makes the unit fail to load ("bad-setting") or,
// with the "-" prefix, is dropped silently; either way the hook would not
// run, so it is refused here with the hook's position.
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
	for _, c := range strings.Split(p, "/") {
		if len(c) > nameMax {
			return fmt.Errorf("the program path %q has a component longer than %d bytes", p, nameMax)
		}
	}
	return nil
}
