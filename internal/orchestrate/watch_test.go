package orchestrate

import (
	"context"
	"errors"
	"testing"
	"time"
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
