package systemd

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ExecWord quotes one argument for an Exec*= line so that systemd hands it
// to the program byte for byte: inside double quotes systemd undoes C
// escapes, then expands specifiers (%%) and environment variables ($$).
// Every word is quoted, so a lone ";" or a word with blanks stays one word.
func ExecWord(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8", s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("a NUL character cannot be passed to a program")
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '%':
			b.WriteString("%%")
		case '$':
			b.WriteString("$$")
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// ExecLine renders a command line. prefix is "" or systemd's "-" (ignore
// failure). The program itself must not start with a prefix character,
// since systemd strips those even from a quoted word.
func ExecLine(prefix string, argv []string) (string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return "", errors.New("empty command")
	}
	if strings.ContainsAny(argv[0][:1], "-@:+!|") {
		return "", fmt.Errorf("program %q starts with a character systemd reads as a prefix", argv[0])
	}
	if err := CheckProgram(argv[0]); err != nil {
		return "", err
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		w, err := ExecWord(a)
		if err != nil {
			return "", fmt.Errorf("argument %d: %w", i, err)
		}
		words[i] = w
	}
	line := prefix + strings.Join(words, " ")
	if len(line) > MaxExecLine {
		return "", fmt.Errorf("the command line is %d bytes long; at most %d fit in a unit file line", len(line), MaxExecLine)
	}
	return line, nil
}

// MaxExecLine bounds an Exec*= value. systemd reads unit files with lines
// of at most 1 MiB (LONG_LINE_MAX) and refuses the whole file otherwise;
// staying well below keeps room for the key and any margin.
const MaxExecLine = 512 << 10

// PlainValue escapes a free-text value (Description=, SourcePath=,
// OnCalendar=) that systemd reads with specifier expansion but without
// quoting or C escapes. What cannot be written safely is refused: control
// characters would end or corrupt the line, a trailing backslash would
// continue it, and blanks at either end would be trimmed away.
func PlainValue(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%q contains a control character", s)
		}
	}
	if strings.TrimSpace(s) != s {
		return "", fmt.Errorf("%q starts or ends with white space", s)
	}
	if strings.HasSuffix(s, `\`) {
		return "", fmt.Errorf("%q ends with a backslash", s)
	}
	return strings.ReplaceAll(s, "%", "%%"), nil
}
