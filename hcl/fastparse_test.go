package hcl

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// fastCases are inputs the fast path must take (and agree on): the shapes
// stack files and config.hcl are written in.
var fastCases = []string{
	"",
	"\n",
	"# only a comment\n",
	"# a comment at the end without a newline",
	"// another comment\n\n",
	`stack "s0001" { jobs = ["s0001"] }` + "\n",
	`stack "s0001" { jobs = ["s0001"] }`,
	"stack \"a\" {\n  jobs = [\"a\"]\n}\n",
	"stack \"a\" {\n  jobs = [\"a\"]\n}",
	"stack \"a\" {}\n",
	"stack \"a\" {\n}\n",
	"stack a {\n jobs = []\n}\n",
	"stack \"a\" \"b\" c {\n}\n",
	"stack\"a\"{\njobs=[\"a\",]\n}\n",
	"\t\tstack \"a\" {\n\t\tjobs = [\"a\"]\t# tabbed\n\t}\n",
	"stack \"a\" { # a comment after the brace\n  jobs = [ # and in the list\n    \"x\", // another\n    \"y\"\n\n  ]\n}\n",
	"stack \"a\" {\n  unit = \"\"\n  jobs = [\"\", \"x\"]\n  on_demand { socket = \"a.socket\" }\n}\n",
	"stack \"a\" {\n  jobs = [\"a\"]\n  hook \"pre_stop\" {\n    command = [\"sh\", \"-c\", \"echo \\\"$HOME\\\" \\\\ 100% $ %\"]\n    ignore_failure = true\n  }\n  hook \"post_start\" {\n    command = [\"true\"]\n    ignore_failure = false\n  }\n}\n",
	"x = \"a\\tb\\nc\\rd\"\n",
	"x = true\ny = false\nz = [true, false, \"t\"]\n",
	"true = \"x\"\nfor = \"y\"\nif {\n}\n",
	"a-b_c = \"x\"\n_x = \"y\"\n",
	"x = \"# not a comment\"\ny = \"// nor this\"\n",
	"# caf\u00e9 in a comment\nx = \"y\"\n",
	"stack \"a\" {\n  jobs = [\n    \"a\",\n    \"b\",\n  ]\n}\n\n\n",
	"stack \"a\\\"b\" {\n}\n",
	"stack \"\" {\n}\n",
	"x = \"$\"\ny = \"%\"\nz = \"a$b%c$\"\n",
	"   \n  \nx = \"y\"   \n   ",
	"a { b = [\"c\"] }\nd { e = true }\n",
	"x = \"$${literal} %%{too} a$${b}c\"\n",
}

// slowCases are inputs outside the subset: the fast path must leave them
// to hclsyntax, whatever it makes of them.
var slowCases = []string{
	"x = \"${var}\"\n",
	"x = \"%{if true}y%{endif}\"\n",
	"x = \"$$\"\n",
	"x = \"$$$${x}\"\n",
	"x = 1\n",
	"x = -1\n",
	"x = null\n",
	"x = y\n",
	"x = f()\n",
	"x = {}\n",
	"x = [[\"a\"]]\n",
	"x = <<EOF\ny\nEOF\n",
	"x = \"a\" + \"b\"\n",
	"x = \"a\"\nx = \"b\"\n",
	"/* block comment */\nx = \"y\"\n",
	"x = \"caf\u00e9\"\n",
	"x = \"\\u00e9\"\n",
	"x = \"\\q\"\n",
	"x = \"y\"\r\n",
	"x = \"y\" z = \"w\"\n",
	"x = \"y\" }\n",
	"}\n",
	"stack \"a\" {\n",
	"stack \"a\"\n{\n}\n",
	"stack \"a\" { x = \"y\", z = \"w\" }\n",
	"stack \"a\" { b {} }\n",
	"stack \"a\" { x = \"y\" # c\n}\n",
	"stack \"a\" {\n} x\n",
	"x = [\"a\" \"b\"]\n",
	"x = [\"a\"\n\"b\"]\n",
	"x = [,]\n",
	"x = \"a\nb\"\n",
	"x == \"y\"\n",
	"x => \"y\"\n",
	"x = \"y\"[0]\n",
	"x = true.y\n",
	"\"x\" = \"y\"\n",
	"x = \"y\x00\"\n",
	"# bad utf8 \xff\n",
	"# caf\u00e9 at the end",
	"x = \"\x7f\"\n",
	"\ufeffx = \"y\"\n",
}

func TestFastParseTakesThePlainSubset(t *testing.T) {
	for _, src := range fastCases {
		if fastParse([]byte(src), "f.hcl", nil) == nil {
			t.Errorf("the fast path refused %q", src)
		}
		checkAgree(t, []byte(src))
	}
	for _, src := range slowCases {
		if fastParse([]byte(src), "f.hcl", nil) != nil {
			t.Errorf("the fast path took %q, which it must leave to hclsyntax", src)
		}
	}
}

// TestFastParseRepositoryFiles: every stack file and config.hcl in the
// repository (examples, golden cases, test data) takes the fast path and
// gets hclsyntax's tree.
func TestFastParseRepositoryFiles(t *testing.T) {
	files := repositoryHCL(t)
	if len(files) < 10 {
		t.Fatalf("found only %d .hcl files in the repository", len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if fastParse(src, f, nil) == nil {
			t.Errorf("%s: the fast path refused it", f)
		}
		checkAgree(t, src)
	}
}

// TestFastParseAgreesUnderMutation edits the corpus (the repository's
// files and the cases above) at random, one to three bytes at a time, with
// the bytes that matter to the grammar, and checks every result: whatever
// the fast path accepts, hclsyntax parses without a diagnostic into the
// same tree. The seed is fixed so that a failure repeats.
func TestFastParseAgreesUnderMutation(t *testing.T) {
	corpus := mutationCorpus(t)
	alphabet := []string{"\"", "\\", "$", "%", "{", "}", "[", "]", ",", "=", "#", "/", "*", "\n", " ", "\t", "a", "_", "-", "1", ".", "(", "\r", "\u00e9", "\x00", "~", "<", "true", "${", "//"}
	r := rand.New(rand.NewPCG(16, 1))
	n := 400
	if testing.Short() {
		n = 40
	}
	fast, total := 0, 0
	arena := &nodeArena{} // used again and again: it must not leak one tree into the next
	for _, src := range corpus {
		for range n {
			b := []byte(src)
			for range 1 + r.IntN(3) {
				b = mutate(r, b, alphabet)
			}
			total++
			fresh := fastParse(b, "f.hcl", nil)
			if fresh != nil {
				fast++
			}
			if !checkAgree(t, b) {
				return
			}
			if reused := fastParse(b, "f.hcl", arena); (reused == nil) != (fresh == nil) || (fresh != nil && !reflect.DeepEqual(reused.Body, fresh.Body)) {
				t.Fatalf("parsing %q into a used arena gave another tree", b)
			}
		}
	}
	// The mutations must reach both paths, or the test proves nothing.
	if fast < total/10 || fast > total*9/10 {
		t.Errorf("the fast path took %d of %d mutated inputs", fast, total)
	}
	t.Logf("%d mutated inputs, %d parsed by the fast path", total, fast)
}

func mutate(r *rand.Rand, b []byte, alphabet []string) []byte {
	at := 0
	if len(b) > 0 {
		at = r.IntN(len(b) + 1)
	}
	ins := []byte(alphabet[r.IntN(len(alphabet))])
	switch r.IntN(3) {
	case 0: // insert
		return append(b[:at:at], append(ins, b[at:]...)...)
	case 1: // delete
		if at < len(b) {
			return append(b[:at:at], b[at+1:]...)
		}
	default: // replace
		if at < len(b) {
			return append(b[:at:at], append(ins, b[at+1:]...)...)
		}
	}
	return append(b[:at:at], append(ins, b[at:]...)...)
}

func FuzzFastParse(f *testing.F) {
	for _, s := range fastCases {
		f.Add([]byte(s))
	}
	for _, s := range slowCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkAgree(t, src)
	})
}

// checkAgree fails t when the fast path accepts src and hclsyntax does not
// make the same file of it without a diagnostic.
func checkAgree(t *testing.T, src []byte) bool {
	t.Helper()
	fast := fastParse(src, "f.hcl", nil)
	if fast == nil {
		return true
	}
	slow, diags := hclsyntax.ParseConfig(src, "f.hcl", hhcl.InitialPos)
	if len(diags) > 0 {
		t.Errorf("the fast path accepted %q, where hclsyntax says: %v", src, diags)
		return false
	}
	if !reflect.DeepEqual(fast.Body, slow.Body) || string(fast.Bytes) != string(slow.Bytes) {
		t.Errorf("the fast path's tree differs from hclsyntax's for %q:\n%s", src, treeDiff(fast.Body, slow.Body))
		return false
	}
	return true
}

// treeDiff shows where two syntax trees differ, for the failure message.
func treeDiff(a, b any) string {
	var out []string
	var walk func(path string, x, y reflect.Value)
	walk = func(path string, x, y reflect.Value) {
		if len(out) > 8 {
			return
		}
		if x.IsValid() != y.IsValid() || (x.IsValid() && x.Type() != y.Type()) {
			out = append(out, fmt.Sprintf("%s: %v vs %v", path, x, y))
			return
		}
		if !x.IsValid() {
			return
		}
		switch x.Kind() {
		case reflect.Pointer, reflect.Interface:
			if x.IsNil() != y.IsNil() {
				out = append(out, fmt.Sprintf("%s: nil %v vs %v", path, x.IsNil(), y.IsNil()))
				return
			}
			if !x.IsNil() {
				walk(path, x.Elem(), y.Elem())
			}
		case reflect.Struct:
			for i := range x.NumField() {
				walk(path+"."+x.Type().Field(i).Name, x.Field(i), y.Field(i))
			}
		case reflect.Slice:
			if x.IsNil() != y.IsNil() || x.Len() != y.Len() {
				out = append(out, fmt.Sprintf("%s: len %d (nil %v) vs %d (nil %v)", path, x.Len(), x.IsNil(), y.Len(), y.IsNil()))
				return
			}
			for i := range x.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), x.Index(i), y.Index(i))
			}
		case reflect.Map:
			if x.Len() != y.Len() || x.IsNil() != y.IsNil() {
				out = append(out, fmt.Sprintf("%s: %d keys (nil %v) vs %d (nil %v)", path, x.Len(), x.IsNil(), y.Len(), y.IsNil()))
				return
			}
			for _, k := range x.MapKeys() {
				walk(fmt.Sprintf("%s[%v]", path, k), x.MapIndex(k), y.MapIndex(k))
			}
		default:
			if fmt.Sprint(x) != fmt.Sprint(y) {
				out = append(out, fmt.Sprintf("%s: %v vs %v", path, x, y))
			}
		}
	}
	walk("body", reflect.ValueOf(a), reflect.ValueOf(b))
	return strings.Join(out, "\n")
}

// mutationCorpus is fastCases and the contents of the repository's .hcl files.
func mutationCorpus(t *testing.T) []string {
	t.Helper()
	corpus := append([]string(nil), fastCases...)
	for _, f := range repositoryHCL(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		corpus = append(corpus, string(b))
	}
	return corpus
}

// repositoryHCL lists the .hcl files of the repository.
func repositoryHCL(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != ".." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".hcl") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestArenaKeepsStacks decodes the repository's stack files one after the
// other into one arena, as a worker of loadStackFiles does, and checks
// that every Stack is still what a fresh parse makes of its file once the
// later files have gone through the arena.
func TestArenaKeepsStacks(t *testing.T) {
	var files []string
	for _, f := range repositoryHCL(t) {
		if filepath.Base(filepath.Dir(f)) == "stacks" && !strings.HasPrefix(filepath.Base(f), "_") {
			files = append(files, f)
		}
	}
	if len(files) < 5 {
		t.Fatalf("only %d stack files", len(files))
	}
	cfg, _ := ParseConfig("", nil)
	arena := &nodeArena{}
	var got []*Stack
	reused := 0
	for _, f := range append(files, files...) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		st, diags := parseStack(f, src, cfg, arena)
		if len(diags) > 0 {
			arena = &nodeArena{}
		} else {
			reused++
		}
		got = append(got, st)
	}
	if reused < len(files) {
		t.Errorf("the arena was used again for only %d of %d files", reused, 2*len(files))
	}
	for i, f := range append(files, files...) {
		src, _ := os.ReadFile(f)
		want, _ := ParseStack(f, src, cfg)
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("%s: the stack decoded into the arena changed after later files:\n%s", f, treeDiff(got[i], want))
		}
	}
}

// allSchemas are the body schemas the decoders apply.
var allSchemas = []*hhcl.BodySchema{
	stackFileSchema, stackSchema, notifySchema, healthcheckSchema, snapshotSchema,
	onDemandSchema, hookSchema, configSchema, duplicatiSchema, defaultsSchema,
}

// TestPlainContentAsHCL applies every schema to every body of the corpus
// and of its mutations (whole lines and blocks inserted, to reach the
// schemas' attributes and blocks), parsed by hclsyntax without error:
// where plainContent gives content, it is the content hcl's Body.Content
// gives, and Content has nothing to say.
func TestPlainContentAsHCL(t *testing.T) {
	corpus := mutationCorpus(t)
	alphabet := []string{"\n", " ", "a", "_", "x {\n}\n", "hook \"pre_stop\" {\n command = [\"x\"]\n}\n", "jobs = [\"j\"]\n", "stack \"s\" {\n", "}\n", "url = \"u\"\n", "\"", "{", "}"}
	r := rand.New(rand.NewPCG(16, 3))
	n := 200
	if testing.Short() {
		n = 20
	}
	plain, total := 0, 0
	for _, src := range corpus {
		for k := range n {
			b := []byte(src)
			if k > 0 {
				for range 1 + r.IntN(3) {
					b = mutate(r, b, alphabet)
				}
			}
			f, diags := hclsyntax.ParseConfig(b, "f.hcl", hhcl.InitialPos)
			if diags.HasErrors() {
				continue
			}
			eachBody(f.Body.(*hclsyntax.Body), func(body *hclsyntax.Body) {
				for _, schema := range allSchemas {
					total++
					got := plainContent(body, schema, nil)
					if got == nil {
						continue
					}
					plain++
					want, diags := body.Content(schema)
					if len(diags) > 0 {
						t.Fatalf("plainContent took a body of %q that Content complains about: %v", b, diags)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("plainContent differs from Content for a body of %q:\n%s", b, treeDiff(got, want))
					}
				}
			})
		}
	}
	if plain < total/20 || plain == total {
		t.Errorf("plainContent took %d of %d bodies and schemas", plain, total)
	}
	t.Logf("%d bodies and schemas, %d taken by plainContent", total, plain)
}

func eachBody(b *hclsyntax.Body, fn func(*hclsyntax.Body)) {
	fn(b)
	for _, blk := range b.Blocks {
		eachBody(blk.Body, fn)
	}
}
