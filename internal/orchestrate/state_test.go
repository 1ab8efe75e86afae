package orchestrate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if r, err := LoadRecord(dir, "a"); err != nil || r != nil {
		t.Fatalf("no record yet: %v %v", r, err)
	}
	want := &Record{Stack: "a", InvocationID: "i1", Gate: time.Unix(100, 0).UTC(), UnitActive: true, SocketActive: true, Held: true}
	if err := want.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRecord(dir, "a")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if err := RemoveRecord(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRecord(dir, "a"); err != nil {
		t.Fatal("removing twice must be fine:", err)
	}
}

func TestFailuresBelongToOneInvocation(t *testing.T) {
	dir := t.TempDir()
	if err := AddFailure(dir, "a", "old", "restore"); err != nil {
		t.Fatal(err)
	}
	if err := AddFailure(dir, "a", "new", "post_start hook"); err != nil {
		t.Fatal(err)
	}
	if err := AddFailure(dir, "a", "new", "verify hook"); err != nil {
		t.Fatal(err)
	}
	got, err := TakeFailures(dir, "a", "new")
	if err != nil || !reflect.DeepEqual(got, []string{"post_start hook", "verify hook"}) {
		t.Fatalf("got %v %v", got, err)
	}
	if got, _ := TakeFailures(dir, "a", "new"); got != nil {
		t.Fatalf("failures must be taken once, got %v", got)
	}
	_ = AddFailure(dir, "a", "x", "restore")
	if got, _ := TakeFailures(dir, "a", "y"); got != nil {
		t.Fatalf("another invocation's failures leaked: %v", got)
	}
}

func TestCheckPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckPaths([]string{dir, file}); err != nil {
		t.Fatal(err)
	}
	err := CheckPaths([]string{dir, filepath.Join(dir, "missing")})
	if err == nil || !errors.Is(err, ErrPrecondition) {
		t.Fatalf("want precondition error, got %v", err)
	}
}

func TestWriteJSONIsAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	if err := writeJSON(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}
