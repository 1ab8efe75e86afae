package systemd

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// The exact set of valid Go runes that systemd refuses: U+FDD0-U+FDEF and
// U+xFFFE, U+xFFFF in each of the 17 planes, 66 in all. Surrogates and
// values above U+10FFFF are not valid runes in Go; RuneOK refuses them too.
func TestRuneOKRefusesExactlyTheNoncharacters(t *testing.T) {
	want := map[rune]bool{}
	for r := rune(0xFDD0); r <= 0xFDEF; r++ {
		want[r] = true
	}
	for plane := rune(0); plane <= 0x10; plane++ {
		want[plane<<16|0xFFFE] = true
		want[plane<<16|0xFFFF] = true
	}
	if len(want) != 66 {
		t.Fatalf("%d noncharacters", len(want))
	}
	refused := 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			if RuneOK(r) {
				t.Errorf("RuneOK(U+%04X) accepts a surrogate", r)
			}
			continue
		}
		if RuneOK(r) == want[r] {
			t.Errorf("RuneOK(U+%04X) = %v", r, RuneOK(r))
		}
		if !RuneOK(r) {
			refused++
			// The same through CheckUTF8, as a string.
			var te *TextError
			if err := CheckUTF8("ab" + string(r)); !errors.As(err, &te) || te.Rune != r || te.Char != 3 || te.Offset != 2 {
				t.Errorf("CheckUTF8 of U+%04X: %v", r, err)
			}
		} else if r != 0 && CheckUTF8(string(r)) != nil {
			t.Errorf("CheckUTF8 refuses U+%04X", r)
		}
	}
	if refused != 66 {
		t.Errorf("%d refused, want 66", refused)
	}
	for _, r := range []rune{0x110000, 0x7FFFFFFF, -1, 0xD800, 0xDFFF} {
		if RuneOK(r) {
			t.Errorf("RuneOK(%#x) accepted", r)
		}
	}
}

func TestCheckUTF8(t *testing.T) {
	for _, c := range []struct {
		in   string
		char int    // 0 = accepted
		why  string // part of the reason
	}{
		{"", 0, ""},
		{"plain ASCII %$\\\"';", 0, ""},
		{"ünïcödé 日本語 🎉 \u2028 \ufeff \ufffd \ufdcf \ufdf0 \U0010fffd", 0, ""},
		{"\t\n\r\x01\x7f\u0085", 0, ""}, // control characters are UTF-8; where they may go is another rule
		{"x\uFFFE", 2, "noncharacter"},
		{"x\uFFFF", 2, "noncharacter"},
		{"\uFDD0", 1, "noncharacter"},
		{"ab\uFDEF", 3, "noncharacter"},
		{"\U0001FFFE", 1, "noncharacter"},
		{"é\U0010FFFF", 2, "noncharacter"},
		{"a\x00b", 2, "NUL"},
		{"a\xffb", 2, "not UTF-8"},
		{"\xed\xa0\x80", 1, "not UTF-8"},     // a UTF-16 surrogate, encoded
		{"\xf4\x90\x80\x80", 1, "not UTF-8"}, // above U+10FFFF
		{"\xc0\xaf", 1, "not UTF-8"},         // overlong '/'
		{"\xf8\x88\x80\x80\x80", 1, "not UTF-8"},
		{"é\xc3", 2, "not UTF-8"}, // truncated
	} {
		err := CheckUTF8(c.in)
		var te *TextError
		switch {
		case c.char == 0 && err != nil:
			t.Errorf("CheckUTF8(%q): %v", c.in, err)
		case c.char != 0 && !errors.As(err, &te):
			t.Errorf("CheckUTF8(%q) = %v, want a TextError", c.in, err)
		case c.char != 0 && (te.Char != c.char || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), "character")):
			t.Errorf("CheckUTF8(%q) = %v (character %d), want character %d, %q", c.in, err, te.Char, c.char, c.why)
		}
	}
}

func TestCheckUnitFile(t *testing.T) {
	long := "ExecStart=/bin/x " + strings.Repeat("a", LongLineMax-17)
	for _, c := range []struct {
		in   string
		line int // 0 = accepted
	}{
		{"# c\n[Service]\nExecStart=/bin/true \"a\\tb\"\n", 0},
		{"[Service]\nExecStart=/bin/true \"a%%b\" \"\\\\\"", 0},
		{long[:len(long)-1] + "\n", 0},
		{"[Service]\n" + long + "\n", 2},
		{"[Service]\nX-A=a\uFFFF\nExecStopPost=/bin/restore\n", 2},
		{"# \U0010FFFF\n", 1},
		{"[Unit]\nDescription=a\rb\n", 2},
		{"[Unit]\nDescription=a\x00b\n", 2},
		{"[Unit]\nDescription=a\\\nX=b\n", 2},
		{"[Unit]\nDescription=\xff\n", 2},
	} {
		err := CheckUnitFile([]byte(c.in))
		var le *LineError
		switch {
		case c.line == 0 && err != nil:
			t.Errorf("%.60q: %v", c.in, err)
		case c.line != 0 && (!errors.As(err, &le) || le.Line != c.line):
			t.Errorf("%.60q: %v, want an error on line %d", c.in, err, c.line)
		}
	}
}

func TestPlainValues(t *testing.T) {
	for _, c := range []struct {
		fn       func(string) (string, error)
		in, want string // want "" = refused
	}{
		{PlainValue, "a 100% b", "a 100%% b"},
		{PlainValue, "ünï", "ünï"},
		{PlainValue, "a\tb", ""},
		{PlainValue, "a\nb", ""},
		{PlainValue, "a\x7f", ""},
		{PlainValue, " a", ""},
		{PlainValue, "a ", ""},
		{PlainValue, `a\`, ""},
		{PlainValue, "a\uFFFF", ""},
		{PlainValue, "a\xff", ""},
		{PlainValue, strings.Repeat("a", MaxExecLine), ""},
		{SourcePath, "/home/u/.config/backup-stack/stacks/a.hcl", "/home/u/.config/backup-stack/stacks/a.hcl"},
		{SourcePath, "/home/u/100%/a.hcl", "/home/u/100%%/a.hcl"},
		{SourcePath, "stacks/a.hcl", ""},
		{SourcePath, "/home/u/a\tb.hcl", ""},
		{SourcePath, "/home/u/\U0010FFFF.hcl", ""},
		{SourcePath, "/" + strings.Repeat("a/", PathMax/2), ""},
		{CalendarValue, " *-*-* 03:30:00 ", "*-*-* 03:30:00"},
		{CalendarValue, "daily", "daily"},
		{CalendarValue, `daily\`, ""},
		{CalendarValue, `dai\ly`, ""},
		{CalendarValue, "daily\t03:00", ""},
		{CalendarValue, "daily\uFDD0", ""},
	} {
		got, err := c.fn(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("%.40q accepted as %.40q", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%.40q = %.40q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestExecLimits(t *testing.T) {
	long := strings.Repeat("a", MaxArgLen)
	if _, err := ExecLine("", []string{"/bin/x", long}); err != nil {
		t.Errorf("an argument of MaxArgLen bytes: %v", err)
	}
	var ae *ArgError
	var ale *ArgLenError
	if _, err := ExecLine("", []string{"/bin/x", "a", long + "a"}); !errors.As(err, &ae) || ae.Index != 2 || !errors.As(err, &ale) {
		t.Errorf("an argument of MaxArgLen+1 bytes: %v", err)
	}
	// Quoting counts: 4 arguments of 120000 '%' are 960 KB as a line.
	pct := strings.Repeat("%", 120000)
	var le *LengthError
	if _, err := HookLine([]string{"/bin/x", pct, pct, pct}); !errors.As(err, &le) || le.Max != MaxHookLine {
		t.Errorf("a hook line of 720 KB: %v", err)
	}
	// Exactly at the bound.
	fill := filled(MaxHookLine)
	if line, err := HookLine(fill); err != nil || len(line) != MaxHookLine {
		t.Errorf("a hook line of exactly MaxHookLine: %d bytes, %v", len(line), err)
	}
	fill[len(fill)-1] += "b"
	if _, err := HookLine(fill); !errors.As(err, &le) {
		t.Errorf("a hook line of MaxHookLine+1: %v", err)
	}
	// Many empty words: small as a line, but not as execve counts them.
	many := make([]string, 120000)
	many[0] = "/bin/x"
	if err := CheckArgv(many); err == nil {
		t.Error("120000 arguments accepted")
	}
	if _, err := ExecWord("a\U0010FFFF"); err == nil {
		t.Error("ExecWord wrote a noncharacter")
	}
	if _, err := ExecLine("", []string{"/bin/\uFFFE", "x"}); !errors.As(err, &ae) || ae.Index != 0 {
		t.Errorf("a program with a noncharacter: %v", err)
	}
	// The helper's words always fit in the reserve: the longest valid
	// helper path, all '%' (doubled), and the longest stack name.
	helper := "/" + strings.Repeat("%", 254) + strings.Repeat("/"+strings.Repeat("%", 254), 15)
	if CheckProgram(helper) != nil {
		t.Fatalf("helper %d bytes refused", len(helper))
	}
	hook, err := HookLine(filled(MaxHookLine))
	if err != nil {
		t.Fatal(err)
	}
	words := []string{helper, "hook", "--", strings.Repeat("s", MaxStackName), "post_backup", "9999999", "--"}
	line, err := ExecLine("", words)
	if err != nil || len(line)+1+len(hook) > MaxExecLine {
		t.Errorf("helper words take %d bytes (%v); with the longest hook line %d > %d", len(line), err, len(line)+1+len(hook), MaxExecLine)
	}
}

// filled is a command of /bin/x and words of 'b' that HookLine writes in
// exactly n bytes.
func filled(n int) []string {
	argv := []string{"/bin/x"}
	n -= len(`"/bin/x"`)
	for n > 0 {
		w := min(n-3, 100000) // blank and quotes
		argv = append(argv, strings.Repeat("b", w))
		n -= w + 3
	}
	return argv
}

// TestExecLineSizedOnce: the length ExecLine computes before it writes
// (execWordLen) is the length it writes, for every kind of character, so
// the line takes one allocation and the limit is checked on the real size.
func TestExecLineSizedOnce(t *testing.T) {
	words := []string{"", "a", "\\\"%$\n\t\r", "\x01\x1f\x7f", "é€😀", "a b;c", "100%", "$HOME"}
	for _, s := range words {
		w, err := ExecWord(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != execWordLen(s) {
			t.Errorf("ExecWord(%q) is %d bytes, execWordLen says %d", s, len(w), execWordLen(s))
		}
	}
	line, err := ExecLine("-", append([]string{"/bin/prog"}, words...))
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(20, func() { ExecLine("-", append([]string{"/bin/prog"}, words...)) }); allocs > 2 {
		t.Errorf("ExecLine allocates %.0f times", allocs)
	}
	if _, err := execLine("-", append([]string{"/bin/prog"}, words...), len(line)-1); err == nil {
		t.Errorf("a limit one byte short of the %d-byte line was not refused", len(line))
	}
}
