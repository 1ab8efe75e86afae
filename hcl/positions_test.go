package hcl

import (
	"fmt"
	"testing"
)

func TestPositions(t *testing.T) {
	stack := `stack "web" {
  jobs = ["a",
    "b"]
  schedule = "daily at 3"
  stop_timeout = 5
  on_demand {
    socket = "web.socket"
  }
  hook "pre_stop" { command = ["x"] }
  hook "post_start" {
    command = ["y", "z"]
  }
}
stack "second" { unit = "ignored.service" }
`
	config := "duplicati {\n  url = \"http://x\"\n  password_file = \"/p\"\n}\ndefaults {\n  schedule = \"weekly\"\n}\n"
	for _, tc := range []struct {
		file, src string
		want      map[string]string // path -> "line:col value"
		absent    []string
	}{
		{"s.hcl", stack, map[string]string{
			"jobs":               "2:3 ",
			"jobs[1]":            "3:5 b",
			"schedule":           "4:3 daily at 3",
			"stop_timeout":       "5:3 5", // a number decodes as its text
			"on_demand.socket":   "7:5 web.socket",
			"hook[0].command[0]": "9:32 x",
			"hook[1].command":    "11:5 ",
			"hook[1].command[1]": "11:21 z",
		}, []string{"unit", "hook[2].command"}},
		{"config.hcl", config, map[string]string{
			"duplicati.password_file": "3:3 /p",
			"defaults.schedule":       "6:3 weekly",
		}, []string{"schedule"}},
		{"broken.hcl", "stack \"x\" {\n  jobs = [\n", nil, []string{"jobs"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			attrs := Positions(tc.file, []byte(tc.src))
			for path, want := range tc.want {
				a, ok := Find(attrs, path)
				got := fmt.Sprintf("%d:%d %s", a.Range.Start.Line, a.Range.Start.Column, a.Value)
				if !ok || got != want || a.Range.Filename != tc.file {
					t.Errorf("%s: %v %q in %s, want %q", path, ok, got, a.Range.Filename, want)
				}
			}
			for _, path := range tc.absent {
				if _, ok := Find(attrs, path); ok {
					t.Errorf("%s found", path)
				}
			}
		})
	}
	if a, ok := ScheduleAttr(Positions("c.hcl", []byte(config))); !ok || a.Value != "weekly" {
		t.Errorf("ScheduleAttr of config.hcl: %v %+v", ok, a)
	}
}
