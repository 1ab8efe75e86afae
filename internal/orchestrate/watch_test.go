package orchestrate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/podman"
)

// WatchUp says which unit came up, and stays quiet while they are down or
// the manager cannot be asked.
func TestWatchUp(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Set("inactive", unitA, sockA)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := WatchUp(ctx, te.Env, []string{unitA, sockA}, 2*time.Millisecond)
	select {
	case u := <-ch:
		t.Fatalf("%q reported up while everything is down", u)
	case <-time.After(30 * time.Millisecond):
	}
	te.mgr.Fail("show "+unitA+" "+sockA, errors.New("Connection reset by peer"))
	te.mgr.Set("active", sockA)
	select {
	case u := <-ch:
		t.Fatalf("%q reported while the manager does not answer", u)
	case <-time.After(30 * time.Millisecond):
	}
	te.mgr.Fail("show "+unitA+" "+sockA, nil)
	select {
	case u := <-ch:
		if u != sockA {
			t.Errorf("reported %q, want %q", u, sockA)
		}
	case <-time.After(time.Second):
		t.Fatal("the socket came up and nothing was reported")
	}
	// A watch that is cancelled closes its channel.
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch2 := WatchUp(ctx2, te.Env, []string{unitA}, time.Millisecond)
	cancel2()
	if _, ok := <-ch2; ok {
		t.Error("a cancelled watch reported a unit")
	}
}

// A container stuck "stopping" (its stop was cut short, it ignores
// SIGTERM) is killed before the restore starts the stack: podman-compose
// could never start it again otherwise. Running and exited ones are left.
// The look for it runs beside the hold's release, which here is slow: the
// start still waits for the kill.
func TestRestoreFinishesStuckStops(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Set("active", holdA)
	te.pods.seq = [][]podman.Container{{ctr("a_db_1", "stopping"), ctr("a_app_1", "exited")}, running("a_db_1", "a_app_1")}
	te.pods.delay = 80 * time.Millisecond
	var killedAtStart []string
	te.mgr.On("start "+unitA, func() {
		te.pods.mu.Lock()
		killedAtStart = slices.Clone(te.pods.killed)
		te.pods.mu.Unlock()
	})
	p := &Plan{Stack: "a", InvocationID: invA, Held: true, HeldAt: time.Now(), UnitActive: true,
		Containers: []string{"a_app_1", "a_db_1"},
		Settings:   Settings{Unit: unitA, ProjectLabel: "a", RestorePolicy: "previous", StopTimeout: time.Second, StartTimeout: time.Second}}
	if err := Restore(context.Background(), te.Env, p); err != nil {
		t.Fatal(err)
	}
	if len(te.pods.killed) != 1 || te.pods.killed[0] != "a_db_1" {
		t.Errorf("killed %v, want just the stuck a_db_1", te.pods.killed)
	}
	if len(killedAtStart) != 1 {
		t.Errorf("the stack's start came with %v killed, want the stuck container killed first", killedAtStart)
	}
	if !p.Restored || te.mgr.State(unitA) != "active" {
		t.Errorf("restored %v, %s %s", p.Restored, unitA, te.mgr.State(unitA))
	}
}

// A start that outlasts start_timeout but ends up: the stack is restored
// (the plan says so, the containers are checked) and the run still fails,
// naming start_timeout; the wait for the start job is not cut at another
// start_timeout.
func TestRestoreLateButUp(t *testing.T) {
	te := newEnv(t, invA)
	te.mgr.Set("active", holdA)
	te.pods.seq = [][]podman.Container{running("a_app_1")}
	// The start call outlasts start_timeout (it fails with the deadline),
	// and the unit is up by then, as after a slow ExecStartPre.
	te.mgr.On("start "+unitA, func() {
		time.Sleep(60 * time.Millisecond)
		te.mgr.Set("active", unitA)
	})
	p := &Plan{Stack: "a", InvocationID: invA, Held: true, HeldAt: time.Now(), UnitActive: true,
		Containers: []string{"a_app_1"},
		Settings:   Settings{Unit: unitA, ProjectLabel: "a", RestorePolicy: "previous", StopTimeout: time.Second, StartTimeout: 20 * time.Millisecond}}
	err := Restore(context.Background(), te.Env, p)
	if err == nil || !strings.Contains(err.Error(), "start_timeout") {
		t.Fatalf("err %v, want one naming start_timeout", err)
	}
	if !p.Restored || p.LeftDown() {
		t.Errorf("a stack that is up counts as left down: %+v", p)
	}
}
