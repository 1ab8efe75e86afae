package orchestrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// liveSet is the test's stand-in for the manager's view of which
// invocations still run.
type liveSet struct {
	mu   sync.Mutex
	live map[string]bool
}

func (l *liveSet) set(inv string, alive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.live[inv] = alive
}

func (l *liveSet) alive(_ context.Context, h Holder) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live[h.InvocationID], nil
}

func newSlot(t *testing.T) (Slot, *liveSet) {
	ls := &liveSet{live: map[string]bool{}}
	return Slot{Dir: t.TempDir(), Alive: ls.alive}, ls
}

func TestSlotTakeRelease(t *testing.T) {
	s, ls := newSlot(t)
	ctx := context.Background()
	a := Holder{Stack: "a", InvocationID: "inv-a"}
	b := Holder{Stack: "b", InvocationID: "inv-b"}
	ls.set("inv-a", true)
	ls.set("inv-b", true)

	if cur, err := s.TryTake(ctx, a); err != nil || cur != nil {
		t.Fatalf("a takes a free slot: cur=%v err=%v", cur, err)
	}
	if cur, err := s.TryTake(ctx, a); err != nil || cur != nil {
		t.Fatalf("a takes its own slot again: cur=%v err=%v", cur, err)
	}
	cur, err := s.TryTake(ctx, b)
	if err != nil || cur == nil || cur.Stack != "a" {
		t.Fatalf("b must see a as holder, got cur=%v err=%v", cur, err)
	}
	// Releasing as someone else must not free a's slot.
	if err := s.Release(b); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.TryTake(ctx, b); cur == nil {
		t.Fatal("b's release freed a's slot")
	}
	if err := s.Release(a); err != nil {
		t.Fatal(err)
	}
	if cur, err := s.TryTake(ctx, b); err != nil || cur != nil {
		t.Fatalf("b takes the slot after a released it: cur=%v err=%v", cur, err)
	}
}

func TestSlotDeadHolderIsFree(t *testing.T) {
	s, ls := newSlot(t)
	ctx := context.Background()
	ls.set("inv-a", true)
	if cur, _ := s.TryTake(ctx, Holder{Stack: "a", InvocationID: "inv-a"}); cur != nil {
		t.Fatal("slot not free")
	}
	ls.set("inv-a", false) // the run crashed without release
	if cur, err := s.TryTake(ctx, Holder{Stack: "b", InvocationID: "inv-b"}); err != nil || cur != nil {
		t.Fatalf("a dead holder must not wedge the slot: cur=%v err=%v", cur, err)
	}
	// Same stack, new invocation: the old one is dead, so it may take it.
	ls.set("inv-b", false)
	if cur, _ := s.TryTake(ctx, Holder{Stack: "b", InvocationID: "inv-b2"}); cur != nil {
		t.Fatal("a new invocation of the same stack must replace a dead one")
	}
}

func TestSlotUnreadableFileIsFree(t *testing.T) {
	s, _ := newSlot(t)
	if err := os.WriteFile(filepath.Join(s.Dir, "slot"), []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cur, err := s.TryTake(context.Background(), Holder{Stack: "a", InvocationID: "x"}); err != nil || cur != nil {
		t.Fatalf("cur=%v err=%v", cur, err)
	}
}

func TestSlotTakeWaitsAndTimesOut(t *testing.T) {
	s, ls := newSlot(t)
	ls.set("inv-a", true)
	ctx := context.Background()
	if cur, _ := s.TryTake(ctx, Holder{Stack: "a", InvocationID: "inv-a"}); cur != nil {
		t.Fatal("slot not free")
	}
	var waits atomic.Int32
	tctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	err := s.Take(tctx, Holder{Stack: "b", InvocationID: "inv-b"}, 20*time.Millisecond, func(Holder) { waits.Add(1) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if waits.Load() != 1 {
		t.Fatalf("waiting callback called %d times, want once per holder", waits.Load())
	}

	// Now free it while b waits: b must get it promptly.
	done := make(chan error, 1)
	go func() {
		done <- s.Take(ctx, Holder{Stack: "b", InvocationID: "inv-b"}, 10*time.Millisecond, func(Holder) {})
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Release(Holder{Stack: "a", InvocationID: "inv-a"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("b did not get the released slot")
	}
}

// Many processes racing for the slot: exactly one wins each round.
func TestSlotMutualExclusion(t *testing.T) {
	s, ls := newSlot(t)
	ctx := context.Background()
	var inSlot, maxIn atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			me := Holder{Stack: string(rune('a' + i)), InvocationID: string(rune('A' + i))}
			ls.set(me.InvocationID, true)
			if err := s.Take(ctx, me, 2*time.Millisecond, func(Holder) {}); err != nil {
				t.Error(err)
				return
			}
			n := inSlot.Add(1)
			if n > maxIn.Load() {
				maxIn.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
			inSlot.Add(-1)
			if err := s.Release(me); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if maxIn.Load() != 1 {
		t.Fatalf("%d holders at once", maxIn.Load())
	}
}
