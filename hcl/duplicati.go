package hcl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	hhcl "github.com/hashicorp/hcl/v2"
)

// The checks below guard the argv of the exec route,
// podman exec [-u <exec_user>] <container> <server_util> ...: each value is
// one argument, so a value podman would read as an option, or one it
// cannot resolve, must fail in validate rather than at 03:30. The helper
// runs them again on what it is about to execute (DUPLICATI_CONTAINER
// bypasses the decoder).

// CheckContainer reports whether name is a container name or ID podman
// accepts: a letter or digit, then letters, digits, '_', '.' and '-'.
func CheckContainer(name string) error {
	if name == "" {
		return errors.New("the container name is empty")
	}
	if name[0] == '-' {
		return fmt.Errorf("container %q starts with '-', which podman exec would read as an option; write the name podman ps shows, e.g. \"duplicati\"", name)
	}
	for i, r := range name {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			continue
		}
		if i > 0 && (r == '_' || r == '.' || r == '-') {
			continue
		}
		return fmt.Errorf("container %q is not a podman container name or ID (a letter or digit, then letters, digits, '_', '.' or '-'); write the name podman ps shows, e.g. \"duplicati\"", name)
	}
	return nil
}

// CheckServerUtil reports whether p can be the program of podman exec: a
// plain name looked up on the container's PATH, or an absolute path inside
// the container (which may contain spaces: it is one argument).
func CheckServerUtil(p string) error {
	const example = "e.g. \"duplicati-server-util\" (on PATH in the official image from 2.1.2.0) or \"/app/duplicati/duplicati-server-util\" (linuxserver)"
	if p == "" {
		return errors.New("server_util is empty")
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return fmt.Errorf("server_util = %q contains a control character; give the util's name or absolute path, %s", p, example)
		}
	}
	switch {
	case p[0] == '-':
		return fmt.Errorf("server_util = %q starts with '-', which podman exec would read as an option; give the util's name or absolute path, %s", p, example)
	case p[0] == '/':
		if strings.HasSuffix(p, "/") {
			return fmt.Errorf("server_util = %q names a directory; give the util itself, e.g. \"%sduplicati-server-util\"", p, p)
		}
		return nil
	case strings.Contains(p, "/"):
		return fmt.Errorf("server_util = %q is a relative path, which podman exec resolves against the container's working directory; give the absolute path inside the container or a name on its PATH, %s", p, example)
	case strings.IndexFunc(p, unicode.IsSpace) >= 0:
		return fmt.Errorf("server_util = %q contains a space: it is one program, not a command line, and takes no arguments here; give the util's name or absolute path, %s", p, example)
	case p == "." || p == "..":
		return fmt.Errorf("server_util = %q is not a program; give the util's name or absolute path, %s", p, example)
	}
	return nil
}

// CheckExecUser reports whether u is a user for podman exec -u: a user
// name or uid, optionally followed by ':' and a group name or gid.
func CheckExecUser(u string) error {
	const want = "write a user name or uid, optionally with a group: \"abc\", \"1000\", \"abc:abc\" or \"1000:1000\""
	if u == "" {
		return fmt.Errorf("exec_user is empty; %s, or remove the line to run as the container's default user", want)
	}
	if u[0] == '-' {
		return fmt.Errorf("exec_user = %q starts with '-', which podman exec would read as an option; %s", u, want)
	}
	if strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("exec_user = %q contains a space or control character; %s", u, want)
	}
	parts := strings.Split(u, ":")
	if len(parts) > 2 {
		return fmt.Errorf("exec_user = %q has more than one ':'; %s", u, want)
	}
	for i, p := range parts {
		what := "user"
		if i == 1 {
			what = "group"
		}
		if p == "" {
			return fmt.Errorf("exec_user = %q has an empty %s; %s", u, what, want)
		}
		if !validID(p) && !validPOSIXName(p) {
			return fmt.Errorf("exec_user = %q: the %s %q is neither a name ([a-z_][a-z0-9_-]*, optionally ending in $) nor a number; %s", u, what, p, want)
		}
	}
	return nil
}

// validID reports whether s is a uid or gid: decimal digits that fit 32 bits.
func validID(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// validPOSIXName reports whether s matches [a-z_][a-z0-9_-]*\$?, the user
// and group names useradd accepts by default.
func validPOSIXName(s string) bool {
	s = strings.TrimSuffix(s, "$")
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// CleartextHost reports whether raw is an http:// URL to a host that is not
// a loopback address (127.0.0.0/8, ::1) or localhost, and returns that host:
// the password or token of the REST route would cross the network in clear.
func CleartextHost(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || u.Host == "" {
		return "", false
	}
	host := u.Hostname()
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return "", false
	}
	// net/netip, not net: package net links the C resolver (libc and the
	// dynamic loader) into the generator, a megabyte of RSS and start-up.
	// The same addresses as net.ParseIP: no zone, IPv4-mapped IPv6 as IPv4.
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback() {
		return "", false
	}
	return host, true
}

// decodeTransport decodes ca_file and checks how the REST route reaches
// Duplicati: an http:// url to another host sends the password or token in
// clear (a warning at the url), and ca_file, the PEM file of a private CA
// trusted in addition to the system roots, only makes sense with https://.
// urlAttr is the url attribute when it decoded. Only the path of ca_file is
// kept; the helper reads and checks the file.
func (d *decoder) decodeTransport(attrs hhcl.Attributes, urlAttr *hhcl.Attribute, dup *Duplicati) {
	if urlAttr != nil {
		if host, clear := CleartextHost(dup.URL); clear {
			d.warnf(urlAttr.Expr.Range(), "Password sent in clear",
				"url = %q is plain http:// to %s, which is not a loopback address: the password or token crosses the network in clear; use https:// (with ca_file for a private CA) or a loopback address such as http://127.0.0.1:8200.", dup.URL, host)
		}
	}
	a := d.str(attrs, "ca_file", &dup.CAFile, false)
	if a == nil {
		return
	}
	dup.CAFile = expandHome(dup.CAFile)
	switch {
	case !filepath.IsAbs(dup.CAFile):
		d.errorf(a.Expr.Range(), "Invalid path", "ca_file = %q must be an absolute path (or start with ~/), e.g. \"~/.config/backup-stack/duplicati-ca.pem\".", dup.CAFile)
	case attrs["url"] == nil:
		d.warnf(a.NameRange, "Unused ca_file",
			"ca_file is only used by the REST route with an https:// url; the exec route (podman exec) ignores it. Set url = \"https://...\", or remove ca_file.")
	case urlAttr != nil && !strings.HasPrefix(dup.URL, "https://"):
		d.errorf(a.NameRange, "ca_file without https",
			"ca_file is only used for https://, and url = %q is plain http://: nothing would check the server's certificate. Write url = \"https://...\", or remove ca_file.", dup.URL)
	}
}
