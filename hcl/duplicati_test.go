package hcl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
)

// Each rule of the duplicati block: the error, where it points, and what it
// tells the user to write.
var duplicatiDiagCases = []diagCase{
	// exec_user
	{name: "exec_user with a space", src: `duplicati {
  exec_user = "abc def"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: `contains a space or control character; write a user name or uid, optionally with a group: "abc", "1000", "abc:abc" or "1000:1000".`},
	{name: "exec_user with a tab", src: `duplicati {
  exec_user = "abc\t"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: "control character"},
	{name: "exec_user is an option", src: `duplicati {
  exec_user = "-0"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: `exec_user = "-0" starts with '-', which podman exec would read as an option; write a user name or uid`},
	{name: "exec_user with two colons", src: `duplicati {
  exec_user = "abc:abc:abc"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: "more than one ':'"},
	{name: "exec_user with an empty group", src: `duplicati {
  exec_user = "abc:"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: "has an empty group"},
	{name: "exec_user with an empty user", src: `duplicati {
  exec_user = ":abc"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: "has an empty user"},
	{name: "exec_user upper case", src: `duplicati {
  exec_user = "Abc"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: `the user "Abc" is neither a name ([a-z_][a-z0-9_-]*, optionally ending in $) nor a number`},
	{name: "exec_user bad group", src: `duplicati {
  exec_user = "1000:wheel!"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: `the group "wheel!" is neither a name`},
	{name: "exec_user name starting with a digit", src: `duplicati {
  exec_user = "1abc"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: "is neither a name"},
	{name: "exec_user uid too large", src: `duplicati {
  exec_user = "4294967296"
}`, line: 2, col: 15, summary: "Invalid exec_user", hint: "nor a number"},
	{name: "exec_user empty", src: `duplicati {
  exec_user = ""
}`, line: 2, col: 15, summary: "Empty value", hint: "remove the line to use the default"},
	{name: "exec_user not a string", src: `duplicati {
  exec_user = ["abc"]
}`, line: 2, col: 15, summary: "Unsuitable value type", hint: "string required"},

	// server_util
	{name: "server_util relative path", src: `duplicati {
  server_util = "bin/duplicati-server-util"
}`, line: 2, col: 17, summary: "Invalid server_util", hint: `is a relative path, which podman exec resolves against the container's working directory; give the absolute path inside the container or a name on its PATH, e.g. "duplicati-server-util"`},
	{name: "server_util dot relative path", src: `duplicati {
  server_util = "./duplicati-server-util"
}`, line: 2, col: 17, summary: "Invalid server_util", hint: "relative path"},
	{name: "server_util is an option", src: `duplicati {
  server_util = "--help"
}`, line: 2, col: 17, summary: "Invalid server_util", hint: "starts with '-', which podman exec would read as an option"},
	{name: "server_util with arguments", src: `duplicati {
  server_util = "duplicati-server-util --password x"
}`, line: 2, col: 17, summary: "Invalid server_util", hint: "it is one program, not a command line"},
	{name: "server_util directory", src: `duplicati {
  server_util = "/app/duplicati/"
}`, line: 2, col: 17, summary: "Invalid server_util", hint: `names a directory; give the util itself, e.g. "/app/duplicati/duplicati-server-util"`},
	{name: "server_util with a tab", src: `duplicati {
  server_util = "/opt/duplicati/util\t"
}`, line: 2, col: 17, summary: "Invalid server_util", hint: "control character"},
	{name: "server_util with a newline", src: `duplicati {
  server_util = "/opt/duplicati/util\n"
}`, line: 2, col: 17, summary: "Invalid characters", hint: "must not contain a newline"},

	// container
	{name: "container is an option", src: `duplicati {
  container = "-it"
}`, line: 2, col: 15, summary: "Invalid container", hint: `starts with '-', which podman exec would read as an option; write the name podman ps shows, e.g. "duplicati"`},
	{name: "container with a space", src: `duplicati {
  container = "my duplicati"
}`, line: 2, col: 15, summary: "Invalid container", hint: "is not a podman container name or ID"},
	{name: "container with a slash", src: `duplicati {
  container = "pod/duplicati"
}`, line: 2, col: 15, summary: "Invalid container", hint: "is not a podman container name or ID"},

	// credentials
	{name: "url without credentials", src: `duplicati {
  wait_timeout = "1h"
  url          = "http://127.0.0.1:8200"
}`, line: 3, col: 3, summary: "Missing credentials", hint: `url needs password_file or token_file: Duplicati 2.1 and later always have a password (a random one when none was set) and refuse an empty password, so the REST route can never log in without one; set password_file = "~/.config/backup-stack/duplicati-password" (a file with the web UI password) or token_file = "~/.config/backup-stack/duplicati-token" (a --webservice-pre-auth-tokens token, Duplicati 2.1.2.0 and later).`},
	{name: "password_file and token_file", src: `duplicati {
  url           = "http://127.0.0.1:8200"
  password_file = "/run/secrets/pw"
  token_file    = "/run/secrets/token"
}`, line: 4, col: 3, summary: "Conflicting credentials", hint: `both set (password_file at /cfg/config.hcl:3,3-16); choose one: token_file = "..." for a --webservice-pre-auth-tokens token`},
	{name: "token_file and password_file", src: `duplicati {
  token_file    = "/run/secrets/token"
  url           = "http://127.0.0.1:8200"
  password_file = "/run/secrets/pw"
}`, line: 4, col: 3, summary: "Conflicting credentials", hint: "(token_file at /cfg/config.hcl:2,3-13)"},
	{name: "relative token_file", src: `duplicati {
  url        = "http://127.0.0.1:8200"
  token_file = "duplicati-token"
}`, line: 3, col: 16, summary: "Invalid path", hint: `token_file = "duplicati-token" must be an absolute path (or start with ~/), e.g. "~/.config/backup-stack/duplicati-token".`},
	{name: "relative password_file", src: `duplicati {
  url           = "http://127.0.0.1:8200"
  password_file = "./pw"
}`, line: 3, col: 19, summary: "Invalid path", hint: "must be an absolute path"},
	{name: "empty token_file", src: `duplicati {
  url        = "http://127.0.0.1:8200"
  token_file = ""
}`, line: 3, col: 16, summary: "Empty value", hint: "token_file must not be empty"},
}

func TestDuplicatiDiagnostics(t *testing.T) {
	for _, c := range duplicatiDiagCases {
		t.Run(c.name, func(t *testing.T) {
			const file = "/cfg/config.hcl"
			_, diags := ParseConfig(file, []byte(c.src))
			checkDiag(t, diags, file, c)
		})
	}
}

// A config with an error falls back to the defaults in Load, so a broken
// exec_user or a url without credentials never reaches the helper.
func TestDuplicatiErrorsBreakConfig(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.hcl": "duplicati {\n  url = \"http://127.0.0.1:8200\"\n}\n"})
	set, diags := Load(dir)
	if !diags.HasErrors() || len(set.Broken) != 1 || set.Config.Duplicati.URL != "" {
		t.Fatalf("broken %v, duplicati %+v, diags %v", set.Broken, set.Config.Duplicati, diags)
	}
}

// warnings returns the warnings of diags, formatted, and fails on an error.
func warnings(t *testing.T, diags hhcl.Diagnostics) []string {
	t.Helper()
	var out []string
	for _, d := range diags {
		if d.Severity == hhcl.DiagError {
			t.Errorf("unexpected error: %s", FormatDiag(d))
			continue
		}
		out = append(out, FormatDiag(d))
	}
	return out
}

func TestDuplicatiWarnings(t *testing.T) {
	const file = "/cfg/config.hcl"
	for _, c := range []struct {
		name, src string
		want      []string // prefixes of the warnings, in order
		hint      string
	}{
		{"password_file without url", `duplicati {
  container     = "duplicati"
  password_file = "/run/secrets/pw"
}`, []string{"/cfg/config.hcl:3:3: warning: Unused password_file: password_file is only used by the REST route"}, `which url = "http://127.0.0.1:8200" selects; the exec route (podman exec) ignores it. Set url, or remove password_file.`},
		{"token_file without url", `duplicati {
  token_file = "/run/secrets/token"
}`, []string{"/cfg/config.hcl:2:3: warning: Unused token_file: token_file is only used by the REST route"}, "remove token_file"},
		{"exec_user with url", `duplicati {
  url        = "http://127.0.0.1:8200"
  token_file = "/run/secrets/token"
  exec_user  = "abc"
}`, []string{"/cfg/config.hcl:4:3: warning: Unused exec_user: exec_user is only used by the exec route (podman exec)"}, "url selects the REST route"},
		{"no warning on the exec route", `duplicati {
  exec_user   = "abc"
  server_util = "/app/duplicati/duplicati-server-util"
}`, nil, ""},
		{"no warning on the REST route", `duplicati {
  url           = "http://127.0.0.1:8200"
  password_file = "/run/secrets/pw"
}`, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, diags := ParseConfig(file, []byte(c.src))
			got := warnings(t, diags)
			if len(got) != len(c.want) {
				t.Fatalf("warnings %q, want %d", got, len(c.want))
			}
			for i, w := range c.want {
				if !strings.HasPrefix(got[i], w) || !strings.Contains(got[i], c.hint) {
					t.Errorf("warning %q, want prefix %q and %q", got[i], w, c.hint)
				}
			}
		})
	}
	// Load keeps a config.hcl that has only warnings.
	dir := writeTree(t, map[string]string{"config.hcl": "duplicati {\n  exec_user = \"abc\"\n  password_file = \"/pw\"\n}\n"})
	set, diags := Load(dir)
	if len(set.Broken) != 0 || set.Config.Duplicati.ExecUser != "abc" || set.Config.Duplicati.PasswordFile != "/pw" || len(warnings(t, diags)) != 1 {
		t.Errorf("broken %v, duplicati %+v, diags %v", set.Broken, set.Config.Duplicati, diags)
	}
}

func TestDuplicatiValidValues(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	for _, c := range []struct {
		name, body string
		check      func(d Duplicati) bool
	}{
		{"defaults", ``, func(d Duplicati) bool {
			return d.Container == DefaultContainer && d.ServerUtil == DefaultServerUtil && d.ExecUser == "" && d.TokenFile == ""
		}},
		{"user name", `exec_user = "abc"`, func(d Duplicati) bool { return d.ExecUser == "abc" }},
		{"uid", `exec_user = "1000"`, func(d Duplicati) bool { return d.ExecUser == "1000" }},
		{"uid as a number", `exec_user = 1000`, func(d Duplicati) bool { return d.ExecUser == "1000" }},
		{"root", `exec_user = "0"`, func(d Duplicati) bool { return d.ExecUser == "0" }},
		{"user:group", `exec_user = "abc:abc"`, func(d Duplicati) bool { return d.ExecUser == "abc:abc" }},
		{"uid:gid", `exec_user = "1000:1000"`, func(d Duplicati) bool { return d.ExecUser == "1000:1000" }},
		{"mixed", `exec_user = "www-data:100"`, func(d Duplicati) bool { return d.ExecUser == "www-data:100" }},
		{"underscore and dollar", `exec_user = "_svc-1$"`, func(d Duplicati) bool { return d.ExecUser == "_svc-1$" }},
		{"linuxserver util", `server_util = "/app/duplicati/duplicati-server-util"`, func(d Duplicati) bool {
			return d.ServerUtil == "/app/duplicati/duplicati-server-util"
		}},
		{"official 2.1.0 util", `server_util = "/opt/duplicati/duplicati-server-util"`, func(d Duplicati) bool {
			return d.ServerUtil == "/opt/duplicati/duplicati-server-util"
		}},
		{"path with a space", `server_util = "/opt/my tools/duplicati-server-util"`, func(d Duplicati) bool {
			return d.ServerUtil == "/opt/my tools/duplicati-server-util"
		}},
		{"plain util name", `server_util = "duplicati-server-util"`, func(d Duplicati) bool { return d.ServerUtil == "duplicati-server-util" }},
		{"container with dots", `container = "duplicati.backup_1-a"`, func(d Duplicati) bool { return d.Container == "duplicati.backup_1-a" }},
		{"container id", `container = "3f2a9c1b7d4e"`, func(d Duplicati) bool { return d.Container == "3f2a9c1b7d4e" }},
		{"password_file", "url = \"http://127.0.0.1:8200\"\n  password_file = \"~/pw\"", func(d Duplicati) bool {
			return d.URL == "http://127.0.0.1:8200" && d.PasswordFile == filepath.Join(home, "pw") && d.TokenFile == ""
		}},
		{"token_file", "url = \"https://duplicati.example:8200\"\n  token_file = \"~/.config/backup-stack/duplicati-token\"", func(d Duplicati) bool {
			return d.TokenFile == filepath.Join(home, ".config/backup-stack/duplicati-token") && d.PasswordFile == ""
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, diags := ParseConfig("/cfg/config.hcl", []byte("duplicati {\n  "+c.body+"\n}\n"))
			for _, d := range diags {
				t.Errorf("%s", FormatDiag(d))
			}
			if !c.check(cfg.Duplicati) {
				t.Errorf("duplicati %+v", cfg.Duplicati)
			}
		})
	}
}

// The exported checks agree with the decoder (the helper runs them on
// what DUPLICATI_CONTAINER and the frozen plan give it).
func TestDuplicatiChecks(t *testing.T) {
	for _, c := range []struct {
		check func(string) error
		v     string
		ok    bool
	}{
		{CheckContainer, "duplicati", true},
		{CheckContainer, "", false},
		{CheckContainer, "-duplicati", false},
		{CheckContainer, "_duplicati", false},
		{CheckContainer, "dupliçati", false},
		{CheckServerUtil, "duplicati-server-util", true},
		{CheckServerUtil, "/app/duplicati/duplicati-server-util", true},
		{CheckServerUtil, "", false},
		{CheckServerUtil, "..", false},
		{CheckServerUtil, "a/b", false},
		{CheckServerUtil, "-x", false},
		{CheckServerUtil, "/x\u0085", false},
		{CheckExecUser, "abc", true},
		{CheckExecUser, "4294967295", true},
		{CheckExecUser, "", false},
		{CheckExecUser, "$", false},
		{CheckExecUser, "a$$", false},
		{CheckExecUser, "-u", false},
		{CheckExecUser, "a b", false},
		{CheckExecUser, "a\u00a0b", false},
		{CheckExecUser, "+1000", false},
	} {
		if err := c.check(c.v); (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.v, err, c.ok)
		}
	}
}
