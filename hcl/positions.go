package hcl

import (
	"fmt"
	"sort"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Attr is one attribute (or one element of a list attribute) of a file,
// where it is written.
type Attr struct {
	// Path names it: "schedule", "unit", "jobs[0]", "require_paths[1]",
	// "on_demand.socket", "hook[2].command" (the file's third hook block),
	// "defaults.schedule", "duplicati.password_file" ...
	Path string
	// Range is the attribute's whole range (its name first), or the list
	// element's.
	Range hhcl.Range
	// Value is the attribute's string value when it is one ("" else).
	Value string
}

// Positions lists where the attributes of a stack file's first stack
// block, or of config.hcl's blocks, are written. It needs only the syntax
// to parse: `validate` and `check` report a problem found outside the
// decoder (a schedule systemd-analyze refuses, a unit the manager does not
// know) at its own line, also in a file that has other errors, where the
// decoder returns no Stack. A file that does not parse gives nil.
func Positions(filename string, src []byte) []Attr {
	f, diags := parse(src, filename)
	if diags.HasErrors() {
		return nil
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []Attr
	for _, b := range body.Blocks {
		switch b.Type {
		case "stack":
			out = appendBody(out, "", b.Body)
			return out // only the first stack block is decoded
		case "duplicati", "defaults", "notify", "healthcheck":
			out = appendBody(out, b.Type+".", b.Body)
		}
	}
	return out
}

// ScheduleAttr is the schedule of a file: the stack's own, or config.hcl's
// defaults.schedule; ok is false when the file sets none.
func ScheduleAttr(attrs []Attr) (Attr, bool) {
	for _, a := range attrs {
		if a.Path == "schedule" || a.Path == "defaults.schedule" {
			return a, true
		}
	}
	return Attr{}, false
}

// Find returns the attribute of that path.
func Find(attrs []Attr, path string) (Attr, bool) {
	for _, a := range attrs {
		if a.Path == path {
			return a, true
		}
	}
	return Attr{}, false
}

func appendBody(out []Attr, prefix string, body *hclsyntax.Body) []Attr {
	for name, a := range body.Attributes {
		out = append(out, Attr{Path: prefix + name, Range: a.Range(), Value: stringValue(a.Expr)})
		if tuple, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
			for i, e := range tuple.Exprs {
				out = append(out, Attr{Path: fmt.Sprintf("%s%s[%d]", prefix, name, i), Range: e.Range(), Value: stringValue(e)})
			}
		}
	}
	hooks := 0
	for _, b := range body.Blocks {
		switch {
		case prefix == "" && b.Type == "hook":
			out = appendBody(out, fmt.Sprintf("hook[%d].", hooks), b.Body)
			hooks++
		case prefix == "":
			out = appendBody(out, b.Type+".", b.Body)
		}
	}
	// Body.Attributes is a map: sort so that callers see the file's order.
	sortAttrs(out)
	return out
}

func stringValue(e hhcl.Expression) string {
	var s string
	if diags := decodeExpr(e, &s); diags.HasErrors() {
		return ""
	}
	return s
}

func sortAttrs(as []Attr) {
	sort.SliceStable(as, func(i, j int) bool {
		if as[i].Range.Start.Byte != as[j].Range.Start.Byte {
			return as[i].Range.Start.Byte < as[j].Range.Start.Byte
		}
		return len(as[i].Path) < len(as[j].Path)
	})
}
