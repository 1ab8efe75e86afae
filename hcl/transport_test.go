package hcl

import (
	"strings"
	"testing"
)

// url = "http://..." to another host sends the password or token in clear: a warning at the
// url's value. ca_file is https-only.
func TestDuplicatiTransportDiagnostics(t *testing.T) {
	const file = "/cfg/config.hcl"
	for _, c := range []struct {
		name, body string
		want       string // "" = no diagnostic at all
		severity   string
	}{
		{"http to a LAN host", `url = "http://192.168.1.5:8200"`, `/cfg/config.hcl:2:9: warning: Password sent in clear: url = "http://192.168.1.5:8200" is plain http:// to 192.168.1.5, which is not a loopback address: the password or token crosses the network in clear; use https://`, "warning"},
		{"http to a name", `url = "http://duplicati:8200"`, "warning: Password sent in clear", "warning"},
		{"http to an IPv6 host", `url = "http://[fd00::5]:8200"`, "to fd00::5, which is not a loopback address", "warning"},
		{"http to 127.0.0.1", `url = "http://127.0.0.1:8200"`, "", ""},
		{"http to 127.1.2.3", `url = "http://127.1.2.3:8200"`, "", ""},
		{"http to ::1", `url = "http://[::1]:8200"`, "", ""},
		{"http to localhost", `url = "http://LocalHost:8200"`, "", ""},
		{"https to a name", `url = "https://duplicati.example:8200"`, "", ""},
		{"https with ca_file", "url = \"https://duplicati.example:8200\"\n  ca_file = \"/etc/backup-stack/ca.pem\"", "", ""},
		{"ca_file with http", "url = \"http://127.0.0.1:8200\"\n  ca_file = \"/etc/backup-stack/ca.pem\"", `/cfg/config.hcl:3:3: error: ca_file without https: ca_file is only used for https://, and url = "http://127.0.0.1:8200" is plain http://`, "error"},
		{"relative ca_file", "url = \"https://duplicati.example:8200\"\n  ca_file = \"ca.pem\"", `/cfg/config.hcl:3:13: error: Invalid path: ca_file = "ca.pem" must be an absolute path`, "error"},
		{"ca_file on the exec route", `ca_file = "/etc/backup-stack/ca.pem"`, "/cfg/config.hcl:2:3: warning: Unused ca_file: ca_file is only used by the REST route", "warning"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if strings.Contains(body, "url") {
				body += "\n  password_file = \"/run/secrets/pw\""
			}
			cfg, diags := ParseConfig(file, []byte("duplicati {\n  "+body+"\n}\n"))
			var got []string
			for _, d := range diags {
				got = append(got, FormatDiag(d))
			}
			if c.want == "" {
				if len(got) > 0 {
					t.Fatalf("diagnostics %q, want none", got)
				}
				if strings.Contains(c.body, "ca_file") && cfg.Duplicati.CAFile != "/etc/backup-stack/ca.pem" {
					t.Errorf("CAFile %q", cfg.Duplicati.CAFile)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], c.want) || !strings.Contains(got[0], ": "+c.severity+": ") {
				t.Fatalf("diagnostics %q, want one %s containing %q", got, c.severity, c.want)
			}
		})
	}
}

func TestCleartextHost(t *testing.T) {
	for raw, want := range map[string]string{
		"http://10.0.0.2:8200":       "10.0.0.2",
		"http://duplicati.lan":       "duplicati.lan",
		"http://localhost.evil:1":    "localhost.evil",
		"http://128.0.0.1:8200":      "128.0.0.1",
		"http://[::ffff:10.0.0.1]:1": "::ffff:10.0.0.1",
		"http://127.0.0.1:8200":      "",
		"http://127.255.255.254":     "",
		"http://[::1]:8200":          "",
		// As net.ParseIP read them (CleartextHost uses net/netip): an
		// IPv4-mapped loopback is loopback, a zone is not an address.
		"http://[::ffff:127.0.0.1]:1": "",
		"http://[::1%25lo]:8200":      "::1%lo",
		"http://0127.0.0.1:8200":      "0127.0.0.1",
		"http://localhost:8200":       "",
		"http://localhost.:8200":      "",
		"https://10.0.0.2:8200":       "",
		"":                            "",
	} {
		host, clear := CleartextHost(raw)
		if host != want || clear != (want != "") {
			t.Errorf("%q: %q %v, want %q", raw, host, clear, want)
		}
	}
}
