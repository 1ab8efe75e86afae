package main

import (
	"slices"
	"strings"
	"testing"
)

// The command's own part: checking every stack first, the order, the exit
// code. The following itself is tested in internal/foreground.
func TestBackupCommand(t *testing.T) {
	stacks := map[string]string{
		"a": `stack "a" { jobs = ["ja"] }`,
		"b": `stack "b" { jobs = ["jb"] }`,
	}
	cases := []struct {
		name    string
		args    []string
		results map[string]int // exit status of each unit's run
		code    int
		starts  []string
		out     []string
	}{{
		name: "in the given order, exit 0", args: []string{"backup", "b", "a"},
		results: map[string]int{"a": 0, "b": 0},
		starts:  []string{"start --no-block backup@b.service", "start --no-block backup@a.service"},
		out:     []string{"b: backup succeeded", "a: backup succeeded"},
	}, {
		name: "a unit name is taken for its stack; the first failure's status is the exit code", args: []string{"backup", "a-stack.service", "b"},
		results: map[string]int{"a": 5, "b": 0}, code: 5,
		starts: []string{"start --no-block backup@a.service", "start --no-block backup@b.service"},
		out:    []string{"a: backup failed", "exit status 5", "b: backup succeeded"},
	}, {
		name: "the backup units list --units prints are taken too", args: []string{"backup", "backup@a.service", "backup@b.service"},
		results: map[string]int{"a": 0, "b": 0},
		starts:  []string{"start --no-block backup@a.service", "start --no-block backup@b.service"},
	}, {
		name: "an unknown stack fails before any backup starts", args: []string{"backup", "a", "nope"},
		code: 2,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newCLI(t, "", stacks)
			for s, status := range c.results {
				unit := "backup@" + s + ".service"
				result := "success"
				if status != 0 {
					result = "exit-code"
				}
				polls := 0
				cl.mgr.On("show "+unit, func() {
					polls++
					if polls == 3 { // the show before the start, then two polls
						cl.mgr.Finish(unit, result, status)
					}
				})
			}
			code, out, errs := cl.run(c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stdout %s; stderr %s", code, c.code, out, errs)
			}
			if got := cl.mgr.Changes(); !slices.Equal(got, c.starts) {
				t.Errorf("manager changes %q, want %q", got, c.starts)
			}
			for _, w := range c.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
