package hcl

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
)

// TestLoadParallelIsDeterministic: Load parses stack files concurrently, yet
// its stacks, broken files and diagnostics must come out exactly as a
// one-by-one load in file order would give them, including which of two
// files defining the same stack wins.
func TestLoadParallelIsDeterministic(t *testing.T) {
	files := map[string]string{}
	for i := range 60 {
		name := fmt.Sprintf("s%02d", i)
		switch i % 10 {
		case 3: // broken
			files["stacks/"+name+".hcl"] = fmt.Sprintf("stack %q {\n  jobs = []\n}\n", name)
		case 5: // defines the stack of the file before (a duplicate)
			files["stacks/"+name+".hcl"] = fmt.Sprintf("stack \"s%02d\" { jobs = [\"x\"] }\n", i-1)
		case 7: // a warning only
			files["stacks/"+name+".hcl"] = fmt.Sprintf("stack \"%s-other\" { jobs = [\"x\"] }\n", name)
		default:
			files["stacks/"+name+".hcl"] = fmt.Sprintf("stack %q {\n  jobs = [%q]\n  schedule = \"daily\"\n}\n", name, name)
		}
	}
	dir := writeTree(t, files)

	// The reference: the same work done sequentially.
	seq := func() (*Set, hhcl.Diagnostics) {
		prev := runtime.GOMAXPROCS(1)
		defer runtime.GOMAXPROCS(prev)
		return Load(dir)
	}
	wantSet, wantDiags := seq()
	if len(wantSet.Stacks) != 48 || len(wantSet.Broken) != 12 {
		t.Fatalf("reference load: %d stacks, %d broken", len(wantSet.Stacks), len(wantSet.Broken))
	}
	prev := runtime.GOMAXPROCS(max(4, runtime.NumCPU()))
	defer runtime.GOMAXPROCS(prev)
	for range 20 {
		set, diags := Load(dir)
		if !reflect.DeepEqual(names(set), names(wantSet)) || !reflect.DeepEqual(set.Broken, wantSet.Broken) {
			t.Fatalf("stacks %v broken %v, want %v %v", names(set), set.Broken, names(wantSet), wantSet.Broken)
		}
		if got, want := formatAll(diags), formatAll(wantDiags); !reflect.DeepEqual(got, want) {
			t.Fatalf("diagnostics\n%q\nwant\n%q", got, want)
		}
	}
}

func formatAll(diags hhcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		out = append(out, FormatDiag(d))
	}
	return out
}
