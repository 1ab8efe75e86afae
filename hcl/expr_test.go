package hcl

import (
	"fmt"
	"reflect"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestDecodeExprAsGohcl holds decodeExpr (with its literal fast path) to
// gohcl.DecodeExpression, which it replaces in the programs: the same
// values and the same diagnostics, for every target type it takes.
func TestDecodeExprAsGohcl(t *testing.T) {
	exprs := []string{
		`"plain"`, `""`, `"with \"escape\" and \n newline"`, `"caf\u00e9"`, "\"cafe\u0301\"",
		`"${"inter"}polated"`, `"%{ if true }x%{ endif }"`, `"$${literal}"`, `"a${1}b"`,
		"<<EOT\nheredoc\nEOT\n", "<<-EOT\n  indented\n  EOT\n",
		`true`, `false`, `null`, `1`, `1.5`, `-3`,
		`["a", "b"]`, `[]`, `["a", 1, true]`, `["a", null]`, `[null]`, `["a", ["b"]]`, `["${"x"}y", "z"]`,
		`{a = "b"}`, `var`, `var.x`, `upper("x")`, `true ? "a" : "b"`, `"a" == "a"`, `!true`,
		`["a", "b"][0]`, `[for s in ["a"] : s]`, `("paren")`,
	}
	targets := []func() any{
		func() any { return new(string) },
		func() any { return new([]string) },
		func() any { return new(bool) },
	}
	for _, src := range exprs {
		expr, diags := hclsyntax.ParseExpression([]byte(src), "x.hcl", hhcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%q: %v", src, diags)
		}
		for _, mk := range targets {
			got, want := mk(), mk()
			gd := decodeExpr(expr, got)
			wd := gohcl.DecodeExpression(expr, nil, want)
			name := fmt.Sprintf("%q into %T", src, want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: value %#v, gohcl %#v", name, got, want)
			}
			if g, w := diagText(gd), diagText(wd); g != w {
				t.Errorf("%s: diagnostics\n%s\ngohcl:\n%s", name, g, w)
			}
		}
	}
}

func diagText(ds hhcl.Diagnostics) string {
	s := ""
	for _, d := range ds {
		s += fmt.Sprintf("%d %q %q %v %v\n", d.Severity, d.Summary, d.Detail, d.Subject, d.Context)
	}
	return s
}
