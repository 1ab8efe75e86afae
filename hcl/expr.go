package hcl

import (
	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// parse parses HCL native syntax, as hclparse.Parser.ParseHCL does (without
// its cache, which a single read of each file never hits): the plain subset
// that stack files are written in by fastParse, everything else, and every
// file with an error, by hclsyntax, into the same tree. Calling hclsyntax
// directly keeps hclparse's JSON parser out of the programs.
func parse(src []byte, filename string) (*hhcl.File, hhcl.Diagnostics) {
	return parseIn(src, filename, nil)
}

// parseIn is parse with the fast parser's nodes taken from arena (nil: new).
func parseIn(src []byte, filename string, arena *nodeArena) (*hhcl.File, hhcl.Diagnostics) {
	if f := fastParse(src, filename, arena); f != nil {
		return f, nil
	}
	return hclsyntax.ParseConfig(src, filename, hhcl.InitialPos)
}

// decodeExpr evaluates expr without variables or functions and stores it in
// target, a *string, *[]string or *bool, with the diagnostics of
// gohcl.DecodeExpression, word for word. gohcl itself is not used: it pulls
// hclwrite and go-cmp into every program, whose package initialisation
// (Unicode tables and regexps) costs the generator more at start-up than
// decoding a small stack file.
func decodeExpr(expr hhcl.Expression, target any) hhcl.Diagnostics {
	if literal(expr, target) {
		return nil
	}
	val, diags := expr.Value(nil)
	var ty cty.Type
	switch target.(type) {
	case *string:
		ty = cty.String
	case *[]string:
		ty = cty.List(cty.String)
	case *bool:
		ty = cty.Bool
	default:
		panic("decodeExpr: unsupported target type")
	}
	val, err := convert.Convert(val, ty)
	if err != nil {
		return append(diags, unsuitable(expr, err.Error()))
	}
	if msg := store(val, target); msg != "" {
		diags = append(diags, unsuitable(expr, msg))
	}
	return diags
}

func unsuitable(expr hhcl.Expression, msg string) *hhcl.Diagnostic {
	return &hhcl.Diagnostic{
		Severity: hhcl.DiagError,
		Summary:  "Unsuitable value type",
		Detail:   "Unsuitable value: " + msg,
		Subject:  expr.StartRange().Ptr(),
		Context:  expr.Range().Ptr(),
	}
}

// store is gocty.FromCtyValue for the three target types: it returns
// gocty's message when the value cannot be stored, "" when it was.
func store(val cty.Value, target any) string {
	if l, ok := target.(*[]string); ok {
		// A null list is a nil slice, as gocty makes it.
		if val.IsNull() {
			*l = nil
			return ""
		}
		if !val.IsKnown() {
			return "value must be known"
		}
		out := make([]string, 0, val.LengthInt())
		for it := val.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() {
				return "null value is not allowed"
			}
			if !e.IsKnown() {
				return "value must be known"
			}
			out = append(out, e.AsString())
		}
		*l = out
		return ""
	}
	if val.IsNull() {
		return "null value is not allowed"
	}
	if !val.IsKnown() {
		return "value must be known"
	}
	switch t := target.(type) {
	case *string:
		*t = val.AsString()
	case *bool:
		*t = val.True()
	}
	return ""
}

// literal stores the value of the common case without evaluating it: a
// quoted string without templates ("..."), a list of those, or true/false.
// It gives what expr.Value and the conversion give (the parser made the
// string's cty value, already in NFC, which TemplateExpr.Value would only
// copy and normalise again), and reports false for everything else.
func literal(expr hhcl.Expression, target any) bool {
	switch t := target.(type) {
	case *string:
		s, ok := literalString(expr)
		if ok {
			*t = s
		}
		return ok
	case *[]string:
		tuple, ok := expr.(*hclsyntax.TupleConsExpr)
		if !ok {
			return false
		}
		out := make([]string, len(tuple.Exprs))
		for i, e := range tuple.Exprs {
			if out[i], ok = literalString(e); !ok {
				return false
			}
		}
		*t = out
		return true
	case *bool:
		lit, ok := expr.(*hclsyntax.LiteralValueExpr)
		if !ok || lit.Val.Type() != cty.Bool || !lit.Val.IsKnown() || lit.Val.IsNull() || lit.Val.IsMarked() {
			return false
		}
		*t = lit.Val.True()
		return true
	}
	return false
}

func literalString(expr hhcl.Expression) (string, bool) {
	te, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || len(te.Parts) != 1 {
		return "", false
	}
	lit, ok := te.Parts[0].(*hclsyntax.LiteralValueExpr)
	if !ok || lit.Val.Type() != cty.String || !lit.Val.IsKnown() || lit.Val.IsNull() || lit.Val.IsMarked() {
		return "", false
	}
	return lit.Val.AsString(), true
}
