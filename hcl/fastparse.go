package hcl

import (
	"bytes"
	"strings"
	"unicode/utf8"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// fastParse parses the plain subset of HCL's native syntax that stack files
// and config.hcl are written in, and builds the very syntax tree
// hclsyntax.ParseConfig builds for it: the same node types, values and
// ranges, so that decoding, diagnostics and Positions cannot tell which
// parser ran. It returns nil for anything outside the subset, and the
// caller then parses with hclsyntax, which also gives every diagnostic; the
// subset is only ever parsed when hclsyntax would parse it without one
// (TestFastParseAgrees, FuzzFastParse).
//
// Why: hclsyntax lexes with a generated scanner that computes every
// token's column by Unicode grapheme segmentation and allocates about 100
// times a file's size; at every daemon-reload the generator parses every
// stack file, and that parsing was most of its run time (issue 16).
//
// The subset: attributes and blocks (labels quoted or identifiers, the
// single-line form with one attribute too), values that are quoted strings
// without templates (the escapes \" \\ \n \r \t $${ %%{; no ${ or %{), true,
// false, and lists of those; line comments (# and //); spaces, tabs and
// newlines. Outside comments the file must be printable ASCII, so that a
// column is a byte count; no carriage return anywhere. A duplicate
// attribute, a block comment, a number, a heredoc, a variable, a function
// call, an operator, an object: all go to hclsyntax.
//
// hhcl.File.Nav (hclsyntax's navigation helper, an unexported type) is left
// nil; it serves only hcl's own diagnostic printer, which nothing here uses.
//
// The nodes come from arena when it is not nil (see nodeArena).
func fastParse(src []byte, filename string, arena *nodeArena) *hhcl.File {
	if arena == nil {
		arena = &nodeArena{}
	}
	arena.reset(src)
	p := fastParser{src: src, str: string(src), file: filename, line: 1, a: arena}
	body, _, ok := p.body(nil, new(hclsyntax.Body))
	if !ok {
		return nil
	}
	return &hhcl.File{Body: body, Bytes: src}
}

type fastParser struct {
	src       []byte
	str       string // src as one string: values are substrings of it, not copies
	file      string
	i         int // next byte
	line      int // line of byte i
	lineStart int // offset of the first byte of that line
	a         *nodeArena
}

// strNode is a quoted string's three nodes, allocated together.
type strNode struct {
	t     hclsyntax.TemplateExpr
	lit   hclsyntax.LiteralValueExpr
	parts [1]hclsyntax.Expression
}

// blockNode is a block and its body.
type blockNode struct {
	b    hclsyntax.Block
	body hclsyntax.Body
}

// nodeArena hands out the nodes of one file from a few slabs, sized up
// front by counting the bytes that can open them: a handful of allocations
// per file instead of three or four per value, which was most of what
// parsing a stack file allocated. The counts are upper bounds (a quote in
// a comment counts too); should one fall short, the slab allocates.
//
// A loop parsing file after file can pass one arena again and again: the
// generator parses every stack file at every daemon-reload, and the tree
// of one is garbage once it is decoded. That is only right when nothing
// made from the last file points into its tree; a diagnostic does (hcl's
// Body.Content points a diagnostic's Subject at an attribute's range), a
// decoded Stack does not (it holds strings and copies of ranges). See
// loadStackFiles.
type nodeArena struct {
	strs   slab[strNode]
	attrs  slab[hclsyntax.Attribute]
	blocks slab[blockNode]
	tuples slab[hclsyntax.TupleConsExpr]
	elems  slab[hclsyntax.Expression]

	// What plainContent makes of the bodies while the file is decoded.
	hattrs  slab[hhcl.Attribute]
	hblocks slab[hhcl.Block]
}

// reset sizes the arena for src, every slab cleared.
func (a *nodeArena) reset(src []byte) {
	tuples := bytes.Count(src, []byte{'['})
	attrs, blocks := bytes.Count(src, []byte{'='}), bytes.Count(src, []byte{'{'})
	a.strs.reset(bytes.Count(src, []byte{'"'}) / 2)
	a.attrs.reset(attrs)
	a.blocks.reset(blocks)
	a.tuples.reset(tuples)
	a.elems.reset(bytes.Count(src, []byte{','}) + tuples)
	a.hattrs.reset(attrs)
	a.hblocks.reset(blocks)
}

// slab hands out the elements of one slice in turn; its backing array is
// kept for the next reset.
type slab[T any] struct {
	all, free []T
}

// reset clears the slab and sizes it for n elements, anew when it is too short.
func (s *slab[T]) reset(n int) {
	if cap(s.all) < n {
		s.all = make([]T, n)
	} else {
		s.all = s.all[:n]
		clear(s.all)
	}
	s.free = s.all
}

// take returns the next element, or a new one when the slab is used up.
func (s *slab[T]) take() *T {
	if len(s.free) == 0 {
		return new(T)
	}
	x := &s.free[0]
	s.free = s.free[1:]
	return x
}

// takeN returns the next n elements (their capacity n, so that an append
// cannot reach the next ones), or a new slice.
func (s *slab[T]) takeN(n int) []T {
	if len(s.free) < n {
		return make([]T, n)
	}
	x := s.free[:n:n]
	s.free = s.free[n:]
	return x
}

// pos is the position of byte offset o of the current line.
func (p *fastParser) pos(o int) hhcl.Pos {
	return hhcl.Pos{Line: p.line, Column: o - p.lineStart + 1, Byte: o}
}

// rng is the range of bytes [a, b) of the current line.
func (p *fastParser) rng(a, b int) hhcl.Range {
	return hhcl.Range{Filename: p.file, Start: p.pos(a), End: p.pos(b)}
}

func (p *fastParser) spaces() {
	for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t') {
		p.i++
	}
}

// lineComment reports whether a line comment starts at p.i.
func (p *fastParser) lineComment() bool {
	if p.i >= len(p.src) {
		return false
	}
	c := p.src[p.i]
	return c == '#' || (c == '/' && p.i+1 < len(p.src) && p.src[p.i+1] == '/')
}

// newline consumes a newline, or a line comment and the newline that ends
// it, which is what hclsyntax's parser sees in its place (a newline token
// with the comment's range). It returns that range; eof is true for a
// comment that ends the file without a newline, which the parser skips.
func (p *fastParser) newline() (r hhcl.Range, eof, ok bool) {
	start := p.pos(p.i)
	if p.src[p.i] != '\n' {
		ascii := true
		j := p.i
		for j < len(p.src) && p.src[j] != '\n' {
			c := p.src[j]
			if c >= utf8.RuneSelf {
				ascii = false
			} else if c < 0x20 && c != '\t' {
				return r, false, false
			}
			j++
		}
		if !ascii && !utf8.Valid(p.src[p.i:j]) {
			return r, false, false
		}
		if j == len(p.src) {
			// The comment's end column would count grapheme clusters.
			p.i = j
			return r, true, ascii
		}
		p.i = j
	}
	p.i++
	p.line++
	p.lineStart = p.i
	return hhcl.Range{Filename: p.file, Start: start, End: p.pos(p.i)}, false, true
}

// ident consumes an identifier, ASCII letters, digits, '_' and '-' after a
// letter or '_', and returns its end.
func (p *fastParser) ident() int {
	j := p.i
	if j < len(p.src) && isIdentStart(p.src[j]) {
		j++
		for j < len(p.src) && (isIdentStart(p.src[j]) || p.src[j] == '-' || (p.src[j] >= '0' && p.src[j] <= '9')) {
			j++
		}
	}
	return j
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// body parses the items of a body into dst, up to the end of the file
// (open nil) or up to the closing brace of the block opened at open, whose
// range it returns.
func (p *fastParser) body(open *hhcl.Range, dst *hclsyntax.Body) (*hclsyntax.Body, hhcl.Range, bool) {
	attrs := hclsyntax.Attributes{}
	blocks := hclsyntax.Blocks{}
	var start, end hhcl.Range
	haveStart := open != nil
	if open != nil {
		start = *open
	}
	first := func(r hhcl.Range) {
		if !haveStart {
			start, haveStart = r, true
		}
	}
	for {
		p.spaces()
		if p.i >= len(p.src) {
			if open != nil {
				return nil, hhcl.Range{}, false
			}
			end = p.rng(p.i, p.i)
			first(end)
			break
		}
		c := p.src[p.i]
		switch {
		case c == '}':
			if open == nil {
				return nil, hhcl.Range{}, false
			}
			end = p.rng(p.i, p.i+1)
			p.i++
		case c == '\n' || p.lineComment():
			r, eof, ok := p.newline()
			if !ok {
				return nil, hhcl.Range{}, false
			}
			if !eof {
				first(r)
			}
			continue
		case isIdentStart(c):
			nameEnd := p.ident()
			nameRange := p.rng(p.i, nameEnd)
			first(nameRange)
			name := p.str[p.i:nameEnd]
			p.i = nameEnd
			p.spaces()
			if p.i < len(p.src) && p.src[p.i] == '=' {
				a, ok := p.attribute(name, nameRange)
				if !ok || !p.itemEnd() {
					return nil, hhcl.Range{}, false
				}
				if _, dup := attrs[name]; dup {
					return nil, hhcl.Range{}, false // hclsyntax: "Attribute redefined"
				}
				attrs[name] = a
				continue
			}
			b, ok := p.block(name, nameRange)
			if !ok || !p.itemEnd() {
				return nil, hhcl.Range{}, false
			}
			blocks = append(blocks, b)
			continue
		default:
			return nil, hhcl.Range{}, false
		}
		break
	}
	*dst = hclsyntax.Body{
		Attributes: attrs,
		Blocks:     blocks,
		SrcRange:   hhcl.RangeBetween(start, end),
		EndRange:   hhcl.Range{Filename: end.Filename, Start: end.End, End: end.End},
	}
	return dst, end, true
}

// itemEnd checks what must follow an attribute or a block in a multi-line
// body: a newline, a line comment or the end of the file. It consumes
// nothing: the body's loop reads the newline.
func (p *fastParser) itemEnd() bool {
	p.spaces()
	return p.i >= len(p.src) || p.src[p.i] == '\n' || p.lineComment()
}

// attribute parses "= expr" after the name.
func (p *fastParser) attribute(name string, nameRange hhcl.Range) (*hclsyntax.Attribute, bool) {
	if p.i+1 < len(p.src) && (p.src[p.i+1] == '=' || p.src[p.i+1] == '>') {
		return nil, false // == or =>
	}
	eq := p.rng(p.i, p.i+1)
	p.i++
	p.spaces()
	expr, last, ok := p.expr()
	if !ok {
		return nil, false
	}
	a := p.a.attrs.take()
	*a = hclsyntax.Attribute{
		Name:        name,
		Expr:        expr,
		SrcRange:    hhcl.RangeBetween(nameRange, last),
		NameRange:   nameRange,
		EqualsRange: eq,
	}
	return a, true
}

// block parses the labels and the body of a block after its type.
func (p *fastParser) block(typ string, typeRange hhcl.Range) (*hclsyntax.Block, bool) {
	var labels []string
	var labelRanges []hhcl.Range
	bn := p.a.blocks.take()
	for {
		if p.i >= len(p.src) {
			return nil, false
		}
		c := p.src[p.i]
		if c == '{' {
			break
		}
		switch {
		case c == '"':
			s, r, _, ok := p.quoted()
			if !ok {
				return nil, false
			}
			labels = append(labels, s)
			labelRanges = append(labelRanges, r)
		case isIdentStart(c):
			e := p.ident()
			labels = append(labels, p.str[p.i:e])
			labelRanges = append(labelRanges, p.rng(p.i, e))
			p.i = e
		default:
			return nil, false
		}
		p.spaces()
	}
	openRange := p.rng(p.i, p.i+1)
	p.i++
	p.spaces()
	var body *hclsyntax.Body
	var closeRange hhcl.Range
	if p.i >= len(p.src) || p.src[p.i] == '\n' || p.src[p.i] == '}' || p.lineComment() {
		b, end, ok := p.body(&openRange, &bn.body)
		if !ok {
			return nil, false
		}
		body, closeRange = b, end
	} else {
		// The single-line form: one attribute, then the closing brace.
		if !isIdentStart(p.src[p.i]) {
			return nil, false
		}
		nameEnd := p.ident()
		nameRange := p.rng(p.i, nameEnd)
		name := p.str[p.i:nameEnd]
		p.i = nameEnd
		p.spaces()
		if p.i >= len(p.src) || p.src[p.i] != '=' {
			return nil, false
		}
		a, ok := p.attribute(name, nameRange)
		if !ok {
			return nil, false
		}
		p.spaces()
		if p.i >= len(p.src) || p.src[p.i] != '}' {
			return nil, false
		}
		closeRange = p.rng(p.i, p.i+1)
		p.i++
		bn.body = hclsyntax.Body{
			Attributes: hclsyntax.Attributes{name: a},
			SrcRange:   a.SrcRange,
			EndRange:   hhcl.Range{Filename: p.file, Start: a.SrcRange.End, End: a.SrcRange.End},
		}
		body = &bn.body
	}
	bn.b = hclsyntax.Block{
		Type:            typ,
		Labels:          labels,
		Body:            body,
		TypeRange:       typeRange,
		LabelRanges:     labelRanges,
		OpenBraceRange:  openRange,
		CloseBraceRange: closeRange,
	}
	return &bn.b, true
}

// expr parses a value: a quoted string, true, false or a list of those. It
// returns the range of its last token, which ends the attribute's range.
func (p *fastParser) expr() (hclsyntax.Expression, hhcl.Range, bool) {
	if p.i >= len(p.src) {
		return nil, hhcl.Range{}, false
	}
	switch c := p.src[p.i]; {
	case c == '"':
		return p.template()
	case c == '[':
		return p.tuple()
	case isIdentStart(c):
		e := p.ident()
		var v cty.Value
		switch p.str[p.i:e] {
		case "true":
			v = cty.True
		case "false":
			v = cty.False
		default:
			return nil, hhcl.Range{}, false // a variable, null, a function call, a for expression
		}
		r := p.rng(p.i, e)
		p.i = e
		return &hclsyntax.LiteralValueExpr{Val: v, SrcRange: r}, r, true
	}
	return nil, hhcl.Range{}, false
}

// template parses a quoted string as the TemplateExpr hclsyntax makes of
// one without interpolations: its one literal part spans the bytes between
// the quotes.
func (p *fastParser) template() (hclsyntax.Expression, hhcl.Range, bool) {
	s, r, inner, ok := p.quoted()
	if !ok {
		return nil, hhcl.Range{}, false
	}
	closeQuote := p.rng(p.i-1, p.i)
	if inner.Start.Byte == inner.End.Byte {
		// hclsyntax's one part of "" is empty and sits after the closing quote.
		inner = hhcl.Range{Filename: p.file, Start: closeQuote.End, End: closeQuote.End}
	}
	n := p.a.strs.take()
	n.lit = hclsyntax.LiteralValueExpr{Val: cty.StringVal(s), SrcRange: inner}
	n.parts[0] = &n.lit
	n.t = hclsyntax.TemplateExpr{Parts: n.parts[:], SrcRange: r}
	return &n.t, closeQuote, true
}

// quoted parses a quoted string at p.i: its value, its range with the
// quotes, and the range between them.
func (p *fastParser) quoted() (val string, all, inner hhcl.Range, ok bool) {
	start := p.i
	j := p.i + 1
	escaped := false
	for {
		if j >= len(p.src) {
			return "", all, inner, false
		}
		c := p.src[j]
		if c == '"' {
			break
		}
		switch {
		case c == '\\':
			if j+1 >= len(p.src) || !strings.ContainsRune(`"\nrt`, rune(p.src[j+1])) {
				return "", all, inner, false // \u..., an unknown escape, a newline
			}
			escaped = true
			j += 2
			continue
		case c == '$' || c == '%':
			if j+1 < len(p.src) && p.src[j+1] == '{' {
				return "", all, inner, false // a template sequence
			}
			if j+1 < len(p.src) && p.src[j+1] == c {
				if j+2 >= len(p.src) || p.src[j+2] != '{' {
					return "", all, inner, false // $$ or %% alone
				}
				escaped = true // $${ is ${, %%{ is %{
				j += 3
				continue
			}
		case c < 0x20 || c >= 0x7f:
			return "", all, inner, false // a newline, a control character, non-ASCII
		}
		j++
	}
	raw := p.str[start+1 : j]
	val = raw
	if escaped {
		var b strings.Builder
		b.Grow(len(raw))
		for k := 0; k < len(raw); k++ {
			if (raw[k] == '$' || raw[k] == '%') && k+2 < len(raw) && raw[k+1] == raw[k] && raw[k+2] == '{' {
				b.WriteByte(raw[k])
				b.WriteByte('{')
				k += 2
				continue
			}
			if raw[k] != '\\' {
				b.WriteByte(raw[k])
				continue
			}
			k++
			switch raw[k] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default: // " and \
				b.WriteByte(raw[k])
			}
		}
		val = b.String()
	}
	p.i = j + 1
	return val, p.rng(start, p.i), p.rng(start+1, j), true
}

// tuple parses a list; newlines and line comments may stand between its
// elements, as in hclsyntax, where brackets turn newlines off.
func (p *fastParser) tuple() (hclsyntax.Expression, hhcl.Range, bool) {
	open := p.rng(p.i, p.i+1)
	p.i++
	var buf [16]hclsyntax.Expression
	exprs := buf[:0]
	for {
		if !p.gap() {
			return nil, hhcl.Range{}, false
		}
		if p.i >= len(p.src) {
			return nil, hhcl.Range{}, false
		}
		if p.src[p.i] == ']' {
			break
		}
		if p.src[p.i] == '[' {
			return nil, hhcl.Range{}, false // a nested list, or [for ...]
		}
		e, _, ok := p.expr()
		if !ok {
			return nil, hhcl.Range{}, false
		}
		exprs = append(exprs, e)
		if !p.gap() || p.i >= len(p.src) {
			return nil, hhcl.Range{}, false
		}
		if p.src[p.i] == ']' {
			break
		}
		if p.src[p.i] != ',' {
			return nil, hhcl.Range{}, false
		}
		p.i++
	}
	closeRange := p.rng(p.i, p.i+1)
	p.i++
	t := p.a.tuples.take()
	*t = hclsyntax.TupleConsExpr{SrcRange: hhcl.RangeBetween(open, closeRange), OpenRange: open}
	if len(exprs) > 0 { // [] has no elements, not an empty slice
		t.Exprs = p.a.elems.takeN(len(exprs))
		copy(t.Exprs, exprs)
	}
	return t, closeRange, true
}

// gap skips spaces, newlines and line comments inside brackets.
func (p *fastParser) gap() bool {
	for {
		p.spaces()
		if p.i >= len(p.src) || (p.src[p.i] != '\n' && !p.lineComment()) {
			return true
		}
		if _, _, ok := p.newline(); !ok {
			return false
		}
	}
}
