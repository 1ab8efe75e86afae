package hcl

import (
	"reflect"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestLiteralAgreesWithGohcl: whenever the fast path of decoder.value
// takes an expression, gohcl.DecodeExpression gives the same value without
// diagnostics; whatever it declines is left to gohcl.
func TestLiteralAgreesWithGohcl(t *testing.T) {
	for _, c := range []struct {
		src  string
		fast [3]bool // taken for string, bool, []string
	}{
		{`"plain"`, [3]bool{true, false, false}},
		{`""`, [3]bool{true, false, false}},
		{`"esc \"q\" \\ $${x} %%{y} ünï"`, [3]bool{true, false, false}},
		{"<<EOT\nheredoc\nEOT\n", [3]bool{true, false, false}},
		{`"a${"b"}c"`, [3]bool{true, false, false}},
		{`true`, [3]bool{false, true, false}},
		{`false`, [3]bool{false, true, false}},
		{`["a", "b", ""]`, [3]bool{false, false, true}},
		{`["x"]`, [3]bool{false, false, true}},
		{`[]`, [3]bool{}},
		{`5`, [3]bool{}},
		{`"true"`, [3]bool{true, false, false}},
		{`[1, "a"]`, [3]bool{}},
		{`["a", null]`, [3]bool{}},
		{`null`, [3]bool{}},
		{`var.x`, [3]bool{}},
		{`"${var.x}"`, [3]bool{}},
		{`["a", ["b"]]`, [3]bool{}},
		{`{a = "b"}`, [3]bool{}},
		{`upper("a")`, [3]bool{}},
		{`true ? "a" : "b"`, [3]bool{true, false, false}},
	} {
		expr, diags := hclsyntax.ParseExpression([]byte(c.src), "x.hcl", hhcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", c.src, diags)
		}
		targets := []func() any{
			func() any { return new(string) },
			func() any { return new(bool) },
			func() any { return new([]string) },
		}
		for i, mk := range targets {
			fast, slow := mk(), mk()
			took := literal(expr, fast)
			if took != c.fast[i] {
				t.Errorf("%s into %T: fast path taken = %v, want %v", c.src, fast, took, c.fast[i])
			}
			if !took {
				continue
			}
			if d := gohcl.DecodeExpression(expr, nil, slow); len(d) > 0 {
				t.Errorf("%s into %T: fast path taken but gohcl says %v", c.src, fast, d)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Errorf("%s into %T: fast %#v, gohcl %#v", c.src, fast, fast, slow)
			}
		}
	}
}
