package units

// A Go re-implementation of how systemd reads what the generator writes,
// written from systemd.syntax(7), systemd.service(5) "Command lines" and
// systemd's src/basic/extract-word.c, src/basic/escape.c (cunescape_one),
// src/core/load-fragment.c (config_parse_exec) and replace_env_argv():
//
//  1. the unit file: one "Key=value" per line, value stripped of blanks,
//     "#"/";" comments, a trailing backslash continues the line (we never
//     write one), lines of at most 1 MiB (LONG_LINE_MAX);
//  2. an Exec line: prefixes (- @ : + ! |) are taken off the first word
//     after it was unquoted; words are split by extract_first_word with
//     EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE; an unquoted lone ";" separates
//     commands; "\;" is a literal ";";
//  3. specifiers: "%%" -> "%", "%i" the instance, any other "%x" an error
//     for our purposes (we never mean a specifier except %i in templates);
//  4. at exec time, environment variables in the arguments (not in the
//     program path): a word "$NAME" is replaced by the words of the value,
//     "${NAME}" anywhere is expanded, "$$" -> "$", a lone "$" stays.
//
// The emulation is strict: it fails where systemd would expand something
// we did not mean to be expanded, so a pass means systemd passes exactly
// the intended bytes.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

const longLineMax = 1 << 20 // systemd's LONG_LINE_MAX

type sdOption struct{ Section, Name, Value string }

// sdParseUnit reads a unit file the way systemd's config_parse does for the
// subset the generator writes.
func sdParseUnit(content []byte) ([]sdOption, error) {
	var out []sdOption
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		if len(raw) >= longLineMax {
			return nil, fmt.Errorf("line %d: longer than LONG_LINE_MAX", n)
		}
		if strings.ContainsRune(raw, '\r') || strings.ContainsRune(raw, 0) {
			return nil, fmt.Errorf("line %d: CR or NUL", n)
		}
		// config_parse(): comment lines are skipped before anything else.
		if l := strings.TrimLeft(raw, sdWhitespace); l != "" && (l[0] == '#' || l[0] == ';') {
			continue
		}
		if strings.HasSuffix(raw, `\`) {
			return nil, fmt.Errorf("line %d: ends with a backslash and would continue: %q", n, raw)
		}
		// parse_line(): stripped, then systemd's UTF-8 check; a failure ends
		// the reading of the file (the rest of it is lost).
		l := strings.Trim(raw, sdWhitespace)
		if l == "" {
			continue
		}
		if !sdUTF8IsValid(l) {
			return nil, fmt.Errorf("line %d: String is not UTF-8 clean (systemd stops reading the file): %q", n, l)
		}
		if l[0] == '[' {
			if !strings.HasSuffix(l, "]") {
				return nil, fmt.Errorf("line %d: bad section header", n)
			}
			section = l[1 : len(l)-1]
			continue
		}
		eq := strings.IndexByte(l, '=')
		if eq < 0 {
			return nil, fmt.Errorf("line %d: no '=': %q", n, l)
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: assignment outside a section", n)
		}
		out = append(out, sdOption{section, strings.Trim(l[:eq], sdWhitespace), strings.Trim(l[eq+1:], sdWhitespace)})
	}
	return out, sc.Err()
}

// sdUTF8IsValid is utf8_is_valid() of systemd's src/basic/utf8.c, written
// from it byte by byte (and not with Go's utf8 package, which the code under
// test uses): utf8_encoded_valid_unichar() on each character, which checks
// the expected length, the continuation bytes, that the encoding is the
// shortest one and unichar_is_valid().
func sdUTF8IsValid(s string) bool {
	expectedLen := func(c byte) int {
		switch {
		case c < 0x80:
			return 1
		case c&0xe0 == 0xc0:
			return 2
		case c&0xf0 == 0xe0:
			return 3
		case c&0xf8 == 0xf0:
			return 4
		case c&0xfc == 0xf8:
			return 5
		case c&0xfe == 0xfc:
			return 6
		}
		return 0
	}
	encodedLen := func(u uint32) int {
		switch {
		case u < 0x80:
			return 1
		case u < 0x800:
			return 2
		case u < 0x10000:
			return 3
		case u < 0x200000:
			return 4
		case u < 0x4000000:
			return 5
		}
		return 6
	}
	unicharIsValid := func(ch uint32) bool {
		if ch >= 0x110000 {
			return false
		}
		if ch&0xFFFFF800 == 0xD800 {
			return false
		}
		if ch >= 0xFDD0 && ch <= 0xFDEF {
			return false
		}
		if ch&0xFFFE == 0xFFFE {
			return false
		}
		return true
	}
	for i := 0; i < len(s); {
		if s[i] == 0 {
			return false
		}
		l := expectedLen(s[i])
		if l == 0 || l > len(s)-i {
			return false
		}
		if l == 1 {
			i++
			continue
		}
		masks := [...]byte{0, 0, 0x1f, 0x0f, 0x07, 0x03, 0x01}
		u := uint32(s[i] & masks[l])
		for j := 1; j < l; j++ {
			if s[i+j]&0xc0 != 0x80 {
				return false
			}
			u = u<<6 | uint32(s[i+j]&0x3f)
		}
		if encodedLen(u) != l || !unicharIsValid(u) {
			return false
		}
		i += l
	}
	return true
}

const sdWhitespace = " \t\n\r"

// sdCunescapeOne is cunescape_one() without accept_nul: it decodes the
// escape after a backslash and returns the bytes and how many input bytes
// it used.
func sdCunescapeOne(p string) (string, int, error) {
	if p == "" {
		return "", 0, errors.New("trailing backslash")
	}
	simple := map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
		'\\': '\\', '"': '"', '\'': '\'', 's': ' '}
	if c, ok := simple[p[0]]; ok {
		return string([]byte{c}), 1, nil
	}
	hex := func(s string) (uint32, bool) {
		var v uint32
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | uint32(c-'0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | uint32(c-'a'+10)
			case c >= 'A' && c <= 'F':
				v = v<<4 | uint32(c-'A'+10)
			default:
				return 0, false
			}
		}
		return v, true
	}
	switch c := p[0]; {
	case c == 'x':
		if len(p) < 3 {
			return "", 0, errors.New("short \\x")
		}
		v, ok := hex(p[1:3])
		if !ok || v == 0 {
			return "", 0, errors.New("bad \\x")
		}
		return string([]byte{byte(v)}), 3, nil
	case c == 'u' || c == 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if len(p) < n+1 {
			return "", 0, errors.New("short \\u")
		}
		v, ok := hex(p[1 : n+1])
		if !ok || v == 0 || (c == 'U' && !utf8.ValidRune(rune(v))) {
			return "", 0, errors.New("bad \\u")
		}
		return string(rune(v)), n + 1, nil
	case c >= '0' && c <= '7':
		if len(p) < 3 || p[1] < '0' || p[1] > '7' || p[2] < '0' || p[2] > '7' {
			return "", 0, errors.New("bad octal")
		}
		v := uint32(c-'0')<<6 | uint32(p[1]-'0')<<3 | uint32(p[2]-'0')
		if v == 0 || v > 255 {
			return "", 0, errors.New("bad octal value")
		}
		return string([]byte{byte(v)}), 3, nil
	}
	return "", 0, fmt.Errorf("unknown escape \\%c", p[0])
}

// sdExtractFirstWord is extract_first_word(p, WHITESPACE,
// EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE). ok is false when p held only blanks.
// Unknown escapes are an error here (systemd would warn and keep them),
// since the generator must never rely on that.
func sdExtractFirstWord(p string) (word, rest string, ok bool, err error) {
	i := 0
	for i < len(p) && strings.IndexByte(sdWhitespace, p[i]) >= 0 {
		i++
	}
	if i == len(p) {
		return "", "", false, nil
	}
	var b strings.Builder
	var quote byte
	for i < len(p) {
		c := p[i]
		switch {
		case c == '\\':
			s, n, err := sdCunescapeOne(p[i+1:])
			if err != nil {
				return "", "", false, err
			}
			b.WriteString(s)
			i += 1 + n
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
			i++
		case c == '\'' || c == '"':
			quote = c
			i++
		case strings.IndexByte(sdWhitespace, c) >= 0:
			for i < len(p) && strings.IndexByte(sdWhitespace, p[i]) >= 0 {
				i++
			}
			return b.String(), p[i:], true, nil
		default:
			b.WriteByte(c)
			i++
		}
	}
	if quote != 0 {
		return "", "", false, errors.New("unbalanced quoting")
	}
	return b.String(), "", true, nil
}

// sdSpecifiers expands "%%" and "%i" (to instance); any other specifier is
// reported, since the generator never means one.
func sdSpecifiers(s, instance string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("lone % at the end")
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'i':
			if instance == "" {
				return "", errors.New("%i outside a template")
			}
			b.WriteString(instance)
		default:
			return "", fmt.Errorf("specifier %%%c would be expanded", s[i])
		}
	}
	return b.String(), nil
}

// sdReplaceEnv mimics replace_env_argv() for one argument word with an
// environment where every variable is set: it fails when systemd would
// substitute a variable.
func sdReplaceEnv(w string) (string, error) {
	if len(w) > 0 && w[0] == '$' && (len(w) == 1 || (w[1] != '{' && w[1] != '$')) {
		if len(w) == 1 {
			return "", errors.New(`a word "$" is taken as a variable with an empty name`)
		}
		return "", fmt.Errorf("word %q is replaced by a variable", w)
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '$' {
			b.WriteByte(w[i])
			continue
		}
		if i+1 < len(w) && w[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 < len(w) && w[i+1] == '{' {
			return "", fmt.Errorf("%q contains ${...}, which is expanded", w)
		}
		b.WriteByte('$')
	}
	return b.String(), nil
}

// sdCommand is one parsed Exec command.
type sdCommand struct {
	Prefix string   // the prefix characters taken off the first word
	Path   string   // what systemd executes
	Argv   []string // what the program receives, after environment expansion
}

// sdParseExec parses one Exec*= value into its commands.
func sdParseExec(value, instance string) ([]sdCommand, error) {
	var cmds []sdCommand
	p := value
	for {
		first, rest, ok, err := sdExtractFirstWord(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		p = rest
		f := first
		var prefix strings.Builder
		for len(f) > 0 && strings.IndexByte("-@:+!|", f[0]) >= 0 {
			prefix.WriteByte(f[0])
			f = f[1:]
		}
		path, err := sdSpecifiers(f, instance)
		if err != nil {
			return nil, fmt.Errorf("program: %w", err)
		}
		if err := sdCheckPath(path); err != nil {
			return nil, err
		}
		if strings.Contains(prefix.String(), "@") {
			return nil, errors.New("@ prefix: argv[0] would be the second word")
		}
		argv := []string{path}
		semicolon := false
		for {
			p = strings.TrimLeft(p, sdWhitespace)
			if p == "" {
				break
			}
			if p[0] == ';' && (len(p) == 1 || strings.IndexByte(sdWhitespace, p[1]) >= 0) {
				p = p[1:]
				semicolon = true
				break
			}
			if strings.HasPrefix(p, `\;`) && (len(p) == 2 || strings.IndexByte(sdWhitespace, p[2]) >= 0) {
				p = p[2:]
				argv = append(argv, ";")
				continue
			}
			w, rest, ok, err := sdExtractFirstWord(p)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			p = rest
			w, err = sdSpecifiers(w, instance)
			if err != nil {
				return nil, err
			}
			argv = append(argv, w)
		}
		for i, a := range argv {
			if i == 0 && !strings.Contains(prefix.String(), ":") {
				// argv[0] is expanded too, but the path is not: they must agree.
				e, err := sdReplaceEnv(a)
				if err != nil || e != a {
					return nil, fmt.Errorf("argv[0] %q changes under environment expansion", a)
				}
				continue
			}
			e, err := sdReplaceEnv(a)
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i, err)
			}
			argv[i] = e
		}
		cmds = append(cmds, sdCommand{Prefix: prefix.String(), Path: path, Argv: argv})
		if !semicolon {
			break
		}
	}
	if strings.TrimLeft(p, sdWhitespace) != "" {
		return nil, fmt.Errorf("left over: %q", p)
	}
	if len(cmds) == 0 {
		return nil, errors.New("no command")
	}
	return cmds, nil
}

// sdCheckPath is the executable check of config_parse_exec: not empty,
// string_is_safe(), not a directory, an absolute path_is_valid() path or a
// filename_is_valid() name.
func sdCheckPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < ' ' || c == 0x7f || c == '"' || c == '\'' || c == '\\' {
			return fmt.Errorf("executable name %q contains special characters", p)
		}
	}
	if strings.HasSuffix(p, "/") {
		return errors.New("executable path specifies a directory")
	}
	if p[0] == '/' {
		if len(p) >= 4096 {
			return errors.New("path too long")
		}
		for _, c := range strings.Split(p, "/") {
			if len(c) > 255 {
				return errors.New("path component too long")
			}
		}
		return nil
	}
	if strings.Contains(p, "/") || p == "." || p == ".." || len(p) > 255 {
		return fmt.Errorf("neither a valid executable name nor an absolute path: %s", p)
	}
	return nil
}

// sdPlain reads a value that systemd only passes through specifier
// expansion (SourcePath=, OnCalendar=, Conflicts=, After=).
func sdPlain(v string) (string, error) { return sdSpecifiers(v, "") }
