// Package shimport reads the seed's shell stack files (stacks/<name>.sh,
// sourced by its bin/backup) without running them, and turns them into
// backup-stack's HCL stack files. It understands the subset those files
// are written in: comments, NAME=value assignments with shell quoting,
// arrays NAME=(a b "c d"), and name() { ... } functions (the stack_* hooks
// and their helpers). Everything else is reported, with its line, as not
// converted.
package shimport

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tWord tokKind = iota
	tOp
	tNewline
	tEOF
)

type token struct {
	kind       tokKind
	text       string
	start, end int // byte offsets in the source
}

// SyntaxError is a file that cannot be read as shell at all (an
// unterminated quote, an unbalanced function body ...).
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

type heredoc struct {
	delim string
	strip bool // <<- strips leading tabs
	at    int  // offset of the delimiter word
}

// lexer splits shell source into words and operators. A word keeps its
// quoting (text is the source slice); comments and here-document bodies
// are skipped (they stay in the source, which function bodies are cut
// from).
type lexer struct {
	src      string
	pos      int
	lines    []int // offsets of line starts
	pending  []heredoc
	wantHere *bool // the next word is a here-document delimiter (value: strip)
}

func newLexer(src string) *lexer {
	l := &lexer{src: src, lines: []int{0}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			l.lines = append(l.lines, i+1)
		}
	}
	return l
}

// line is the 1-based line of offset off.
func (l *lexer) line(off int) int {
	lo, hi := 0, len(l.lines)
	for hi-lo > 1 {
		m := (lo + hi) / 2
		if l.lines[m] <= off {
			lo = m
		} else {
			hi = m
		}
	}
	return lo + 1
}

func (l *lexer) errAt(off int, format string, args ...any) error {
	return &SyntaxError{Line: l.line(off), Msg: fmt.Sprintf(format, args...)}
}

func isMeta(c byte) bool {
	switch c {
	case ' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>':
		return true
	}
	return false
}

var ops = []string{";;", "&&", "||", "<<<", "<<-", "<<", ">>", "<&", ">&", "&>", "<>", ">|", ";", "&", "|", "(", ")", "<", ">"}

func (l *lexer) next() (token, error) {
	for {
		for l.pos < len(l.src) {
			c := l.src[l.pos]
			if c == ' ' || c == '\t' || c == '\r' {
				l.pos++
			} else if c == '\\' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '\n' {
				l.pos += 2
			} else {
				break
			}
		}
		if l.pos >= len(l.src) {
			if len(l.pending) > 0 {
				return token{}, l.errAt(l.pending[0].at, "here-document delimited by %q has no end", l.pending[0].delim)
			}
			return token{kind: tEOF, start: l.pos, end: l.pos}, nil
		}
		c := l.src[l.pos]
		if c == '#' {
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
			continue
		}
		if c == '\n' {
			t := token{kind: tNewline, text: "\n", start: l.pos, end: l.pos + 1}
			l.pos++
			if err := l.readHeredocs(); err != nil {
				return token{}, err
			}
			return t, nil
		}
		for _, op := range ops {
			if strings.HasPrefix(l.src[l.pos:], op) {
				t := token{kind: tOp, text: op, start: l.pos, end: l.pos + len(op)}
				l.pos += len(op)
				if op == "<<" || op == "<<-" {
					strip := op == "<<-"
					l.wantHere = &strip
				}
				return t, nil
			}
		}
		start := l.pos
		if err := l.word(); err != nil {
			return token{}, err
		}
		t := token{kind: tWord, text: l.src[start:l.pos], start: start, end: l.pos}
		if l.wantHere != nil {
			l.pending = append(l.pending, heredoc{delim: unquoteDelim(t.text), strip: *l.wantHere, at: t.start})
			l.wantHere = nil
		}
		return t, nil
	}
}

// unquoteDelim is a here-document delimiter without its quotes.
func unquoteDelim(w string) string {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case '\'', '"':
		case '\\':
			if i+1 < len(w) {
				i++
				b.WriteByte(w[i])
			}
		default:
			b.WriteByte(w[i])
		}
	}
	return b.String()
}

func (l *lexer) readHeredocs() error {
	for len(l.pending) > 0 {
		h := l.pending[0]
		l.pending = l.pending[1:]
		for {
			if l.pos >= len(l.src) {
				return l.errAt(h.at, "here-document delimited by %q has no end", h.delim)
			}
			end := strings.IndexByte(l.src[l.pos:], '\n')
			var ln string
			if end < 0 {
				ln, end = l.src[l.pos:], len(l.src)
			} else {
				ln, end = l.src[l.pos:l.pos+end], l.pos+end+1
			}
			l.pos = end
			if h.strip {
				ln = strings.TrimLeft(ln, "\t")
			}
			if strings.TrimSuffix(ln, "\r") == h.delim {
				break
			}
		}
	}
	return nil
}

// word advances over one word, with its quotes and expansions.
func (l *lexer) word() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if isMeta(c) {
			return nil
		}
		if err := l.unit(); err != nil {
			return err
		}
	}
	return nil
}

// unit advances over one character or one quoted or expanded part.
func (l *lexer) unit() error {
	start := l.pos
	c := l.src[l.pos]
	switch {
	case c == '\\':
		l.pos += 2
		if l.pos > len(l.src) {
			l.pos = len(l.src)
		}
	case c == '\'':
		i := strings.IndexByte(l.src[l.pos+1:], '\'')
		if i < 0 {
			return l.errAt(start, "unterminated single quote")
		}
		l.pos += i + 2
	case c == '"':
		l.pos++
		for {
			if l.pos >= len(l.src) {
				return l.errAt(start, "unterminated double quote")
			}
			d := l.src[l.pos]
			if d == '"' {
				l.pos++
				return nil
			}
			if d == '\\' {
				l.pos += 2
				continue
			}
			if d == '$' || d == '`' {
				if err := l.unit(); err != nil {
					return err
				}
				continue
			}
			l.pos++
		}
	case c == '`':
		l.pos++
		for {
			if l.pos >= len(l.src) {
				return l.errAt(start, "unterminated backquote")
			}
			d := l.src[l.pos]
			if d == '`' {
				l.pos++
				return nil
			}
			if d == '\\' {
				l.pos++
			}
			l.pos++
		}
	case c == '$' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'':
		l.pos += 2
		for {
			if l.pos >= len(l.src) {
				return l.errAt(start, "unterminated $'...' quote")
			}
			d := l.src[l.pos]
			if d == '\'' {
				l.pos++
				return nil
			}
			if d == '\\' {
				l.pos++
			}
			l.pos++
		}
	case c == '$' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '{':
		l.pos += 2
		for {
			if l.pos >= len(l.src) {
				return l.errAt(start, "unterminated ${")
			}
			d := l.src[l.pos]
			if d == '}' {
				l.pos++
				return nil
			}
			if d == '\\' || d == '\'' || d == '"' || d == '`' || d == '$' {
				if err := l.unit(); err != nil {
					return err
				}
				continue
			}
			l.pos++
		}
	case c == '$' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '(':
		l.pos += 2
		depth := 1
		for {
			if l.pos >= len(l.src) {
				return l.errAt(start, "unterminated $(")
			}
			d := l.src[l.pos]
			switch d {
			case '(':
				depth++
				l.pos++
			case ')':
				depth--
				l.pos++
				if depth == 0 {
					return nil
				}
			case '\\', '\'', '"', '`', '$':
				if err := l.unit(); err != nil {
					return err
				}
			default:
				l.pos++
			}
		}
	default:
		l.pos++
	}
	return nil
}
