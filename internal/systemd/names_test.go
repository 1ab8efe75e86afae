package systemd

import (
	"errors"
	"strings"
	"testing"
)

func TestStackFromArg(t *testing.T) {
	for in, want := range map[string]string{
		"cryptpad-stack.service": "cryptpad",
		// A valid stack name is never shortened: the stack may be named so.
		"cryptpad-stack":         "cryptpad-stack",
		"X-stack":                "X-stack",
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

func TestCheckStackName(t *testing.T) {
	for _, ok := range []string{"a", "A", "0", "nextcloud", "my_stack", "my-stack", "X-stack", "a-", "a_", "9-lives", strings.Repeat("a", MaxStackName)} {
		if err := CheckStackName(ok); err != nil {
			t.Errorf("CheckStackName(%q): %v", ok, err)
		}
	}
	for bad, why := range map[string]string{
		"":                                  "empty",
		"-h":                                "starts with '-'",
		"--help":                            "starts with '-'",
		"--version":                         "starts with '-'",
		"-":                                 "starts with '-'",
		"_x":                                "starts with '_'",
		"a b":                               "contains ' '",
		"a.b":                               "contains '.'",
		"a%i":                               "contains '%'",
		"a@b":                               "contains '@'",
		"ü":                                 "contains 'ü'",
		"a\U0010FFFF":                       "contains",
		strings.Repeat("a", MaxStackName+1): "at most 200",
	} {
		err := CheckStackName(bad)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "start with a letter or a digit") {
			t.Errorf("CheckStackName(%q) = %v, want it to say %q", bad, err, why)
		}
		if ValidStackName(bad) {
			t.Errorf("ValidStackName(%q)", bad)
		}
	}
}

func TestResolveStackArg(t *testing.T) {
	stacks := map[string]bool{"x": true, "x-stack": true, "y": true, "cryptpad": true}
	exists := func(s string) bool { return stacks[s] }
	for in, want := range map[string]string{
		"x":                      "x",
		"x-stack":                "x-stack", // the exact name, though x exists too
		"x-stack.service":        "x",       // x's unit
		"x-stack-stack.service":  "x-stack", // x-stack's unit
		"x-stack-stack":          "x-stack",
		"backup@x-stack.service": "x-stack",
		"backup@x.timer":         "x",
		"y-stack":                "y", // no stack y-stack: y's unit, shortened
		"y-stack.service":        "y",
		"y.service":              "y",
		"  cryptpad  ":           "cryptpad",
		"cryptpad-stack.service": "cryptpad",
		"z-stack":                "z-stack", // nothing matches: as typed, for the error
		"z-stack.service":        "z",
	} {
		if got := ResolveStackArg(in, exists); got != want {
			t.Errorf("ResolveStackArg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckStackUnit(t *testing.T) {
	for _, ok := range []struct{ name, typ string }{
		{"nextcloud-stack.service", ".service"}, {"zoopa-ondemand@cryptpad.socket", ".socket"},
		{"zoopa-ondemand@cryptpad.service", ".service"}, {"a\\x2db.service", ".service"}, {"backupx.service", ".service"},
		{"backup.service", ".service"}, {"my-backup@x.service", ".service"},
	} {
		if err := CheckStackUnit(ok.name, ok.typ); err != nil {
			t.Errorf("CheckStackUnit(%q, %q): %v", ok.name, ok.typ, err)
		}
	}
	for _, c := range []struct{ name, typ, rule, says string }{
		{"a b.service", ".service", "name", "contains ' '"},
		{"a\uFFFF.service", ".service", "name", "contains"},
		{"foo@.service", ".service", "name", "template"},
		{"a-stack.target", ".service", "type", "must name a .service unit"},
		{"a.service", ".socket", "type", "must name a .socket unit"},
		{"-.mount", ".service", "special", "root file system"},
		{"-.slice", ".service", "special", "special unit"},
		{"init.scope", ".service", "special", "special unit"},
		{"dbus.service", ".service", "special", "D-Bus"},
		{"dbus.socket", ".socket", "special", "D-Bus"},
		{"display-manager.service", ".service", "special", "special unit"},
		{"syslog.socket", ".socket", "special", "special unit"},
		{"backup@a.service", ".service", "own", "backup-stack's own units"},
		{"backup@.service", ".service", "name", "template"},
		{"backup-hold@a.service", ".service", "own", "own units"},
		{"backup-notify@a.service", ".service", "own", "own units"},
		{"backup@a.timer", ".service", "own", "own units"},
		{"backup-recover.service", ".service", "own", "own units"},
		{"backup-generator-render.service", ".service", "own", "own units"},
		{"backup-generator-render.path", ".service", "own", "own units"},
		{"-foo.service", ".service", "option", "read as an option"},
		{"--help.service", ".service", "option", "read as an option"},
	} {
		err := CheckStackUnit(c.name, c.typ)
		var ue *StackUnitError
		if !errors.As(err, &ue) || ue.Rule != c.rule || !strings.Contains(err.Error(), c.says) {
			t.Errorf("CheckStackUnit(%q, %q) = %v, want rule %q saying %q", c.name, c.typ, err, c.rule, c.says)
		}
	}
}
