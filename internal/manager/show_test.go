package manager

import (
	"reflect"
	"testing"
)

func TestParseShow(t *testing.T) {
	out := "ActiveState=active\nInvocationID=abc\n\nActiveState=inactive\nInvocationID=\n"
	got, err := parseShow(out, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []Props{{"ActiveState": "active", "InvocationID": "abc"}, {"ActiveState": "inactive", "InvocationID": ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseShow(out, 3); err == nil {
		t.Error("a missing block was not an error")
	}
	if _, err := parseShow("", 1); err == nil {
		t.Error("empty output was not an error")
	}
}
