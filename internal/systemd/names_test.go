package systemd

import (
	"strings"
	"testing"
)

func TestStackFromArg(t *testing.T) {
	for in, want := range map[string]string{
		"cryptpad-stack.service": "cryptpad",
		"cryptpad-stack":         "cryptpad",
		"cryptpad.service":       "cryptpad",
		"backup@x.service":       "x",
		"backup@x.timer":         "x",
		"backup@x":               "x",
		"x":                      "x",
		"  nextcloud  ":          "nextcloud",
		"my-stack-stack.service": "my-stack",
	} {
		if got := StackFromArg(in); got != want {
			t.Errorf("StackFromArg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckUnitName(t *testing.T) {
	for _, ok := range []string{"a.service", "zoopa-ondemand@cryptpad.socket", "a\\x2db.service", "a:b_c.d.target", "x@y.timer"} {
		if err := CheckUnitName(ok); err != nil {
			t.Errorf("CheckUnitName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".service", "a", "a.", "a.foo", "a b.service", "a/b.service", "a%i.service",
		"@.service", "foo@.service", "a@b@c.service", "é.service", strings.Repeat("a", 248) + ".service"} {
		if err := CheckUnitName(bad); err == nil {
			t.Errorf("CheckUnitName(%q) accepted", bad)
		}
	}
	// 255 characters is systemd's limit (UNIT_NAME_MAX), inclusive.
	if err := CheckUnitName(strings.Repeat("a", 247) + ".service"); err != nil {
		t.Errorf("255 characters: %v", err)
	}
}

func TestCheckProgram(t *testing.T) {
	for _, ok := range []string{"podman", "/usr/bin/podman", "/usr//bin/x", "php8.2", "/opt/x y/run"} {
		if err := CheckProgram(ok); err != nil {
			t.Errorf("CheckProgram(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "bin/x", "./x", ".", "..", "/usr/bin/", "a\"b", "a'b", `a\b`, "a\tb", "a\x7f", "/opt/$APP/run", "${X}",
		strings.Repeat("x", 256), "/" + strings.Repeat("x", 256), "/" + strings.Repeat("a/", 2048)} {
		if err := CheckProgram(bad); err == nil {
			t.Errorf("CheckProgram(%q) accepted", bad)
		}
	}
}
