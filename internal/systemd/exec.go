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
// Control characters are written as C escapes, so a newline or a tab
// reaches the program as it is; what systemd refuses in a unit file line
// (CheckUTF8: NUL, bytes that are not UTF-8, the Unicode noncharacters) is
// refused here, since no escape can carry it (a \U escape of a
// noncharacter is refused by systemd's unescaping as well). The error is a
// *TextError then.
func ExecWord(s string) (string, error) {
	if err := CheckUTF8(s); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(execWordLen(s))
	writeExecWord(&b, s)
	return b.String(), nil
}

// execWordLen is the length of s written by writeExecWord.
func execWordLen(s string) int {
	n := 2
	for _, r := range s {
		switch {
		case r == '\\' || r == '"' || r == '%' || r == '$' || r == '\n' || r == '\t' || r == '\r':
			n += 2
		case r < 0x20 || r == 0x7f:
			n += 4
		default:
			n += utf8.RuneLen(r)
		}
	}
	return n
}

// writeExecWord writes s quoted for a command line, s valid UTF-8 (CheckUTF8).
func writeExecWord(b *strings.Builder, s string) {
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
				const hex = "0123456789abcdef"
				b.WriteString(`\x`)
				b.WriteByte(hex[r>>4])
				b.WriteByte(hex[r&0xf])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// ExecLine renders a command line of at most MaxExecLine bytes. prefix is
// "" or systemd's "-" (ignore failure). The program itself must not start
// with a prefix character, since systemd strips those even from a quoted
// word. A word that cannot be written comes back as an *ArgError.
func ExecLine(prefix string, argv []string) (string, error) {
	return execLine(prefix, argv, MaxExecLine)
}

// HookLine renders the command of a hook as it appears in the units, at
// most MaxHookLine bytes: after the helper's own words on an ExecStartPre=
// line (`backup-stack hook -- S KIND N -- COMMAND...`) and in the
// X-FinishHook= list. A command that HookLine accepts always fits on the
// helper's line, whatever valid helper path the generator has, so the
// decoder (which does not know that path) and the generator refuse the same
// commands.
func HookLine(argv []string) (string, error) {
	return execLine("", argv, MaxHookLine)
}

func execLine(prefix string, argv []string, limit int) (string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return "", errors.New("empty command")
	}
	if err := CheckArgv(argv); err != nil {
		return "", err
	}
	if strings.ContainsAny(argv[0][:1], "-@:+!|") {
		return "", &ArgError{Index: 0, Err: fmt.Errorf("the program %q starts with one of - @ : + ! | (systemd reads those as prefixes); give its path", argv[0])}
	}
	if err := CheckProgram(argv[0]); err != nil {
		return "", &ArgError{Index: 0, Err: err}
	}
	n := len(prefix) + len(argv) - 1
	for i, a := range argv {
		if err := CheckUTF8(a); err != nil {
			return "", &ArgError{Index: i, Err: err}
		}
		n += execWordLen(a)
	}
	if n > limit {
		return "", &LengthError{Len: n, Max: limit}
	}
	// One allocation for the line: it is built for every step of every
	// stack at every daemon-reload.
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		writeExecWord(&b, a)
	}
	return b.String(), nil
}

// ArgError says which word of a command cannot be written, and why.
type ArgError struct {
	Index int
	Err   error
}

func (e *ArgError) Error() string { return fmt.Sprintf("argument %d: %v", e.Index, e.Err) }
func (e *ArgError) Unwrap() error { return e.Err }

// LengthError says that a command line does not fit.
type LengthError struct{ Len, Max int }

func (e *LengthError) Error() string {
	return fmt.Sprintf("the command is %d bytes long as a unit file line; at most %d fit (systemd reads unit file lines of less than %d bytes, LONG_LINE_MAX, and the helper's own words need their share)",
		e.Len, e.Max, LongLineMax)
}

// ArgLenError says that one argument is longer than MaxArgLen.
type ArgLenError struct{ Len int }

func (e *ArgLenError) Error() string {
	return fmt.Sprintf("it is %d bytes long; the kernel passes at most %d bytes per argument to a program (MAX_ARG_STRLEN), so the command could never start", e.Len, MaxArgLen)
}

// CheckArgv applies the kernel's limits of execve() to a command: no word
// longer than MaxArgLen bytes and the whole list within MaxArgvBytes.
// Beyond them the program could never be started ("Argument list too
// long"). A word too long comes back as an *ArgError.
func CheckArgv(argv []string) error {
	total := 8 // the NULL that ends the pointer array
	for i, a := range argv {
		if len(a) > MaxArgLen {
			return &ArgError{Index: i, Err: &ArgLenError{Len: len(a)}}
		}
		total += len(a) + 1 + 8
	}
	if total > MaxArgvBytes {
		return fmt.Errorf("its %d arguments take %d bytes as the kernel counts them (each with its NUL and a pointer); at most %d are allowed, so that the command can always start", len(argv), total, MaxArgvBytes)
	}
	return nil
}

// MaxExecLine bounds an Exec*= value. systemd reads unit file lines of
// less than 1 MiB (LongLineMax) and stops reading the file at a longer one;
// half of it keeps ample room for the key and any margin.
const MaxExecLine = 512 << 10

// HelperReserve is what the helper's words take on the ExecStartPre= line
// of a hook, at most: the quoted helper path (a valid program path is at
// most PathMax-1 bytes, each '%' doubled), "hook", "--", the stack name,
// the kind, the hook's number and "--", with the blanks between them.
const HelperReserve = 16 << 10

// MaxHookLine bounds the command of a hook as HookLine writes it.
const MaxHookLine = MaxExecLine - HelperReserve

// PlainValue escapes a free-text value (Description=, SourcePath=,
// OnCalendar=) that systemd reads with specifier expansion but without
// quoting or C escapes. What cannot be written safely is refused: control
// characters would end or corrupt the line, a trailing backslash would
// continue it, and blanks at either end would be trimmed away.
//
// A character systemd would not take comes back as a *TextError.
func PlainValue(s string) (string, error) {
	if err := checkLineText(s); err != nil {
		return "", err
	}
	if strings.Trim(s, " \t\n\r") != s {
		return "", errors.New("it starts or ends with a blank, which systemd strips")
	}
	if strings.HasSuffix(s, `\`) {
		return "", errors.New("it ends with a backslash, which makes systemd join the next line to it")
	}
	if len(s) >= MaxExecLine {
		return "", fmt.Errorf("it is %d bytes long; at most %d fit in a unit file line here", len(s), MaxExecLine-1)
	}
	return strings.ReplaceAll(s, "%", "%%"), nil
}

// SourcePath escapes the path of a stack file for SourcePath=: an absolute
// path of less than PathMax bytes that is a PlainValue. systemd ignores a
// SourcePath= it cannot use, but the line must still be readable, and the
// generator writes one per unit.
func SourcePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	if len(p) >= PathMax {
		return "", fmt.Errorf("the path is %d bytes long; systemd takes paths of less than %d bytes (PATH_MAX)", len(p), PathMax)
	}
	return PlainValue(p)
}

// CalendarValue escapes a schedule for OnCalendar=. Blanks at either end
// are dropped (systemd strips them too); the rest must be a PlainValue
// without a backslash, which is no calendar syntax. Whether it is a valid
// calendar expression only systemd can say (systemd-analyze calendar).
func CalendarValue(s string) (string, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		return "", errors.New("it contains a backslash, which is no calendar syntax")
	}
	return PlainValue(s)
}
