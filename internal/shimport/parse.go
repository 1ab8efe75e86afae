package shimport

import (
	"regexp"
	"strings"
)

// Assign is one top-level assignment.
type Assign struct {
	Name    string
	Append  bool     // NAME+=...
	IsArray bool     // NAME=( ... )
	Words   []string // raw words: one for a scalar, the elements of an array
	Raw     string   // the statement as written
	Line    int
}

// Func is one top-level function definition.
type Func struct {
	Name string
	Body string // between the braces, as written
	Line int
	// Words are the words of the body at command position (the commands it
	// runs), Assigned the names it sets itself.
	Words    []string
	Assigned map[string]bool
}

// Unsupported is a top-level construct the importer does not convert.
type Unsupported struct {
	Line int
	Text string // its first line, shortened
	Why  string
}

// File is a parsed stack file.
type File struct {
	Assigns     []Assign
	Funcs       []Func
	Unsupported []Unsupported
}

var assignRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)(\+?)=`)
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type parser struct {
	lx   *lexer
	src  string
	buf  []token
	file *File
}

func (p *parser) next() (token, error) {
	if len(p.buf) > 0 {
		t := p.buf[0]
		p.buf = p.buf[1:]
		return t, nil
	}
	return p.lx.next()
}

func (p *parser) peek() (token, error) {
	if len(p.buf) == 0 {
		t, err := p.lx.next()
		if err != nil {
			return t, err
		}
		p.buf = append(p.buf, t)
	}
	return p.buf[0], nil
}

func endOfCommand(t token) bool {
	return t.kind == tEOF || t.kind == tNewline || (t.kind == tOp && (t.text == ";" || t.text == "&"))
}

// Parse reads a stack file without running it.
func Parse(src string) (*File, error) {
	p := &parser{lx: newLexer(src), src: src, file: &File{}}
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		switch {
		case t.kind == tEOF:
			return p.file, nil
		case t.kind == tNewline || (t.kind == tOp && t.text == ";"):
			continue
		case t.kind == tWord:
			if err := p.command(t); err != nil {
				return nil, err
			}
		default:
			if err := p.unsupported(t, "a shell command at the top of the file"); err != nil {
				return nil, err
			}
		}
	}
}

func (p *parser) command(first token) error {
	switch {
	case assignRE.MatchString(first.text):
		ok, err := p.assignments(first)
		if err != nil || ok {
			return err
		}
		return p.unsupported(first, "a command run with variables set (it runs when the seed sources the file)")
	case first.text == "export" || first.text == "readonly" || first.text == "declare" || first.text == "typeset":
		return p.declaration(first)
	case first.text == "function":
		name, err := p.next()
		if err != nil {
			return err
		}
		if name.kind != tWord || !nameRE.MatchString(name.text) {
			return p.unsupported(first, "a function definition this importer cannot read")
		}
		if t, err := p.peek(); err != nil {
			return err
		} else if t.kind == tOp && t.text == "(" {
			p.next()
			if t, err := p.next(); err != nil {
				return err
			} else if t.kind != tOp || t.text != ")" {
				return p.unsupported(first, "a function definition this importer cannot read")
			}
		}
		return p.function(first, name.text)
	case nameRE.MatchString(first.text):
		t, err := p.peek()
		if err != nil {
			return err
		}
		if t.kind == tOp && t.text == "(" {
			p.next()
			t2, err := p.next()
			if err != nil {
				return err
			}
			if t2.kind == tOp && t2.text == ")" {
				return p.function(first, first.text)
			}
			p.buf = append([]token{t2}, p.buf...)
		}
	}
	return p.unsupported(first, "a shell command at the top of the file (it runs when the seed sources the file)")
}

// assignments reads NAME=value words from first on, up to the end of the
// command. It reports false when a command follows them (A=1 cmd).
func (p *parser) assignments(first token) (bool, error) {
	t := first
	var got []Assign
	for {
		a, err := p.assignment(t)
		if err != nil {
			return false, err
		}
		a.Raw = a.rawSelf
		got = append(got, a.Assign)
		n, err := p.peek()
		if err != nil {
			return false, err
		}
		if endOfCommand(n) {
			for _, g := range got {
				p.file.Assigns = append(p.file.Assigns, g)
			}
			return true, nil
		}
		if n.kind == tWord && assignRE.MatchString(n.text) {
			p.next()
			t = n
			continue
		}
		return false, nil
	}
}

type assignTok struct {
	Assign
	rawSelf string
}

// assignment reads one NAME=value or NAME=( ... ) starting at word t.
func (p *parser) assignment(t token) (assignTok, error) {
	m := assignRE.FindStringSubmatch(t.text)
	a := Assign{Name: m[1], Append: m[2] == "+", Line: p.lx.line(t.start)}
	val := t.text[len(m[0]):]
	end := t.end
	if val == "" {
		n, err := p.peek()
		if err != nil {
			return assignTok{}, err
		}
		if n.kind == tOp && n.text == "(" && n.start == t.end {
			p.next()
			a.IsArray = true
			for {
				w, err := p.next()
				if err != nil {
					return assignTok{}, err
				}
				if w.kind == tNewline {
					continue
				}
				if w.kind == tOp && w.text == ")" {
					end = w.end
					break
				}
				if w.kind != tWord {
					return assignTok{}, p.lx.errAt(w.start, "unexpected %q in the array %s=( ... )", w.text, a.Name)
				}
				a.Words = append(a.Words, w.text)
			}
			return assignTok{Assign: a, rawSelf: p.src[t.start:end]}, nil
		}
	}
	a.Words = []string{val}
	return assignTok{Assign: a, rawSelf: p.src[t.start:end]}, nil
}

// declaration reads export/readonly/declare/typeset with assignments.
func (p *parser) declaration(first token) error {
	var got []Assign
	for {
		n, err := p.peek()
		if err != nil {
			return err
		}
		if endOfCommand(n) {
			break
		}
		if n.kind != tWord {
			return p.unsupported(first, "a declaration this importer cannot read")
		}
		p.next()
		switch {
		case strings.HasPrefix(n.text, "-"):
			if strings.Trim(n.text, "-arxg") != "" {
				return p.unsupported(first, "a declaration with options this importer does not read ("+n.text+")")
			}
		case assignRE.MatchString(n.text):
			a, err := p.assignment(n)
			if err != nil {
				return err
			}
			a.Raw = a.rawSelf
			got = append(got, a.Assign)
		case nameRE.MatchString(n.text):
			// export NAME: nothing to convert
		default:
			return p.unsupported(first, "a declaration this importer cannot read")
		}
	}
	p.file.Assigns = append(p.file.Assigns, got...)
	return nil
}

// function reads the body of a function whose name was read; the next
// token must open it with {.
func (p *parser) function(first token, name string) error {
	var open token
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		if t.kind == tNewline {
			continue
		}
		open = t
		break
	}
	if open.kind != tWord || open.text != "{" {
		p.buf = append([]token{open}, p.buf...)
		return p.unsupported(first, "a function whose body is not { ... }")
	}
	f := Func{Name: name, Line: p.lx.line(first.start), Assigned: map[string]bool{}}
	sc := scanner{p: p, cmdPos: true, stack: []string{"{"}, f: &f}
	closeTok, err := sc.run(true)
	if err != nil {
		return err
	}
	if closeTok.kind == tEOF {
		return p.lx.errAt(open.start, "the body of %s() has no closing }", name)
	}
	f.Body = p.src[open.end:closeTok.start]
	p.file.Funcs = append(p.file.Funcs, f)
	n, err := p.peek()
	if err != nil {
		return err
	}
	if !endOfCommand(n) {
		p.file.Unsupported = append(p.file.Unsupported, Unsupported{Line: p.lx.line(n.start),
			Text: firstLine(p.src[n.start:]), Why: "a redirection or command after the function " + name + "()"})
		_, err := (&scanner{p: p}).run(false)
		return err
	}
	return nil
}

// unsupported records the command that starts with first and skips it.
func (p *parser) unsupported(first token, why string) error {
	p.file.Unsupported = append(p.file.Unsupported, Unsupported{
		Line: p.lx.line(first.start), Text: firstLine(p.src[first.start:]), Why: why,
	})
	sc := scanner{p: p, cmdPos: true}
	if first.kind == tWord {
		sc.word(first)
	} else {
		sc.op(first)
	}
	_, err := sc.run(false)
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "..."
	}
	return s
}

// scanner walks a compound command, keeping track of the nesting of
// if/fi, case/esac, loops, braces and parentheses, and of which words are
// at command position.
type scanner struct {
	p      *parser
	cmdPos bool
	stack  []string
	cont   bool // after && || |: a newline does not end the command
	f      *Func
	cmd    string // first word of the current simple command
	prev   string // previous word
}

var opens = map[string]bool{"if": true, "case": true, "for": true, "while": true, "until": true, "select": true, "{": true}
var closes = map[string]string{"fi": "if", "esac": "case", "done": "loop", "}": "{"}
var keepsCmd = map[string]bool{"then": true, "do": true, "else": true, "elif": true, "if": true, "while": true, "until": true, "!": true, "{": true, "}": true, "time": true, "fi": true, "done": true, "esac": true}

// run consumes tokens. With body it stops at the } that closes the
// function (returned); else at the end of the command at depth 0.
func (s *scanner) run(body bool) (token, error) {
	for {
		t, err := s.p.next()
		if err != nil {
			return t, err
		}
		if t.kind == tEOF {
			return t, nil
		}
		if t.kind == tWord {
			if body && s.cmdPos && t.text == "}" && len(s.stack) == 1 {
				return t, nil
			}
			s.word(t)
			continue
		}
		if !body && len(s.stack) == 0 && !s.cont && endOfCommand(t) {
			return t, nil
		}
		s.op(t)
	}
}

func (s *scanner) word(t token) {
	w := t.text
	if s.cmdPos {
		if s.f != nil {
			s.f.Words = append(s.f.Words, w)
			if m := assignRE.FindStringSubmatch(w); m != nil {
				s.f.Assigned[m[1]] = true
			}
		}
		if opens[w] {
			if w == "while" || w == "until" || w == "for" || w == "select" {
				s.stack = append(s.stack, "loop")
			} else {
				s.stack = append(s.stack, w)
			}
		} else if want, ok := closes[w]; ok {
			if n := len(s.stack); n > 0 && s.stack[n-1] == want {
				s.stack = s.stack[:n-1]
			}
		}
		if s.cmd == "" && !assignRE.MatchString(w) && !keepsCmd[w] {
			s.cmd = w
		}
		s.cmdPos = keepsCmd[w] || assignRE.MatchString(w)
	} else if s.f != nil {
		switch {
		case s.prev == "for" || s.prev == "select":
			if nameRE.MatchString(w) {
				s.f.Assigned[w] = true
			}
		case s.cmd == "read" || s.cmd == "local" || s.cmd == "export" || s.cmd == "readonly" || s.cmd == "declare" || s.cmd == "typeset":
			if nameRE.MatchString(w) {
				s.f.Assigned[w] = true
			} else if m := assignRE.FindStringSubmatch(w); m != nil {
				s.f.Assigned[m[1]] = true
			}
		}
		if w == "in" && (s.prev != "") && len(s.stack) > 0 && s.stack[len(s.stack)-1] == "case" {
			s.cmdPos = true
		}
	}
	s.prev = w
	s.cont = false
}

func (s *scanner) op(t token) {
	inCase := len(s.stack) > 0 && s.stack[len(s.stack)-1] == "case"
	switch t.text {
	case "(":
		if !inCase {
			s.stack = append(s.stack, "(")
		}
	case ")":
		if n := len(s.stack); n > 0 && s.stack[n-1] == "(" {
			s.stack = s.stack[:n-1]
		}
	}
	switch {
	case t.kind == tNewline && s.cont:
	case t.kind == tNewline || t.text == ";" || t.text == "&" || t.text == ";;" || t.text == "(" || t.text == ")":
		s.cmdPos, s.cmd, s.cont = true, "", false
	case t.text == "&&" || t.text == "||" || t.text == "|":
		s.cmdPos, s.cmd, s.cont = true, "", true
	default:
		// a redirection: its target is not a command
		s.cont = false
	}
	s.prev = ""
}
