package systemd

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Limits of what systemd reads from a unit file and of what the kernel
// passes to a program that systemd (or the helper) starts.
const (
	// LongLineMax is systemd's LONG_LINE_MAX (1 MiB). config_parse() reads a
	// unit file with read_line(f, LONG_LINE_MAX, ...), which refuses a line
	// of LongLineMax bytes or more (the key, '=' and the value; the newline
	// is not counted), and then stops reading the file. Every word of an
	// Exec*= line is also bounded by it after specifier expansion
	// (unit_full_printf()).
	LongLineMax = 1 << 20
	// PathMax is PATH_MAX: the program of an Exec*= line is bounded by
	// PATH_MAX-1 bytes after expansion (unit_path_printf()), and a path
	// setting such as SourcePath= by path_is_valid().
	PathMax = 4096
	// MaxArgLen is the longest argument the kernel passes to a program:
	// MAX_ARG_STRLEN (32 pages of 4 KiB) counts the terminating NUL, and
	// execve() fails with E2BIG beyond it, so the step (or the hook) could
	// never start.
	MaxArgLen = 32*4096 - 1
	// MaxArgvBytes bounds a whole argument list as execve() counts it (each
	// string with its NUL, and a pointer per string): with the usual 8 MiB
	// stack limit the kernel allows 2 MiB for the arguments and the
	// environment together; half of it is left to the arguments.
	MaxArgvBytes = 1 << 20
)

// RuneOK reports whether systemd's unichar_is_valid() (src/basic/utf8.c)
// accepts r: not above U+10FFFF, not a UTF-16 surrogate (U+D800-U+DFFF),
// not one of the noncharacters U+FDD0-U+FDEF, and not U+xFFFE or U+xFFFF in
// any of the 17 planes. Go's utf8 package accepts those 66 noncharacters as
// valid UTF-8; systemd does not.
func RuneOK(r rune) bool {
	c := uint32(r)
	switch {
	case c >= 0x110000:
		return false
	case c&0xFFFFF800 == 0xD800:
		return false
	case c >= 0xFDD0 && c <= 0xFDEF:
		return false
	case c&0xFFFE == 0xFFFE:
		return false
	}
	return true
}

// TextError says which character of a value systemd would not take, and why.
type TextError struct {
	// Offset is the byte offset of the character in the value, Char its
	// 1-based position counted in characters (runes), as an editor shows it.
	Offset, Char int
	// Rune is the character, or utf8.RuneError when Byte does not start a
	// UTF-8 sequence.
	Rune rune
	Byte byte
	// Reason says what systemd does with it.
	Reason string
}

func (e *TextError) Error() string {
	return e.What() + " " + e.Reason
}

// What names the character and where it is: "U+10FFFF (character 7)",
// "U+0009 (tab, character 3)".
func (e *TextError) What() string {
	if e.Rune == utf8.RuneError && e.Byte != 0 {
		return fmt.Sprintf("the byte 0x%02x (character %d)", e.Byte, e.Char)
	}
	label := map[rune]string{'\n': "newline, ", '\r': "carriage return, ", '\t': "tab, ", 0: "NUL, "}[e.Rune]
	return fmt.Sprintf("U+%04X (%scharacter %d)", e.Rune, label, e.Char)
}

// Reasons of a TextError.
const (
	reasonNotUTF8 = `is not UTF-8; systemd refuses the line ("String is not UTF-8 clean") and stops reading the unit file there`
	reasonNonchar = `is a Unicode noncharacter, which systemd's UTF-8 check refuses ("String is not UTF-8 clean"): it stops reading the unit file at that line, so every line after it is lost`
	reasonControl = `is a control character, which a unit file line cannot hold (systemd ends or splits the line there, or strips it)`
	reasonNUL     = `is NUL, which ends the line for systemd (and cannot be passed to a program)`
)

// CheckUTF8 applies systemd's utf8_is_valid() to s: it refuses what Go's
// utf8 package refuses (bytes that are not UTF-8, overlong forms,
// surrogates, values above U+10FFFF) and, beyond Go, the noncharacters that
// RuneOK refuses. systemd runs this check on every line of a unit file
// (parse_line() in src/shared/conf-parser.c); a line that fails it ends
// the reading of the whole file. NUL is refused too: it ends a line.
// The error is a *TextError.
func CheckUTF8(s string) error {
	char := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		char++
		switch {
		case r == utf8.RuneError && n <= 1:
			return &TextError{Offset: i, Char: char, Rune: r, Byte: s[i], Reason: reasonNotUTF8}
		case r == 0:
			return &TextError{Offset: i, Char: char, Rune: r, Reason: reasonNUL}
		case !RuneOK(r):
			return &TextError{Offset: i, Char: char, Rune: r, Reason: reasonNonchar}
		}
		i += n
	}
	return nil
}

// plainASCII reports whether b holds only ASCII without NUL, which
// CheckUTF8 always accepts.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c == 0 || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// checkLineText is CheckUTF8 plus the control characters that a plain
// (unquoted, unescaped) value cannot hold: C0 controls and DEL.
func checkLineText(s string) error {
	if err := CheckUTF8(s); err != nil {
		return err
	}
	char := 0
	for i, r := range s {
		char++
		if r < 0x20 || r == 0x7f {
			return &TextError{Offset: i, Char: char, Rune: r, Reason: reasonControl}
		}
	}
	return nil
}

// LineError says which line of a rendered unit file systemd would not read.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// CheckUnitFile checks a rendered unit file the way systemd's config_parse()
// reads it, strictly: every line shorter than LongLineMax, no NUL or CR
// (read_line() ends a line at either), no line ending in a backslash (a
// continuation, which the generator never means), and every line UTF-8
// clean by CheckUTF8 (systemd skips comment lines before that check; this
// one does not, since the generator's comments are its own text). It is the
// last guard before a file is written: the decoder and the quoting should
// have refused everything it finds. The error is a *LineError.
func CheckUnitFile(content []byte) error {
	n := 0
	for len(content) > 0 {
		n++
		line := content
		if i := bytes.IndexByte(content, '\n'); i >= 0 {
			line, content = content[:i], content[i+1:]
		} else {
			content = nil
		}
		if len(line) >= LongLineMax {
			return &LineError{n, fmt.Errorf("it is %d bytes long; systemd reads lines of less than %d bytes (LONG_LINE_MAX) and stops reading the file at a longer one", len(line), LongLineMax)}
		}
		if !plainASCII(line) { // CheckUTF8 passes every other line, and a string copy of each would be most of the cost
			if err := CheckUTF8(string(line)); err != nil {
				return &LineError{n, err}
			}
		}
		if i := bytes.IndexByte(line, '\r'); i >= 0 {
			return &LineError{n, &TextError{Offset: i, Char: utf8.RuneCount(line[:i]) + 1, Rune: '\r', Reason: "ends the line for systemd"}}
		}
		if bytes.HasSuffix(line, []byte{'\\'}) {
			return &LineError{n, fmt.Errorf("it ends with a backslash, which makes systemd join the next line to it")}
		}
	}
	return nil
}
