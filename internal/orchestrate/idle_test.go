package orchestrate

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitIdleBacksOff: the wait for an idle Duplicati looks less often after its first
// minute (shortened here): on the exec route each look adds a TokenFamily row.
func TestWaitIdleBacksOff(t *testing.T) {
	after, slow := idleSlowAfter, idleSlowPoll
	idleSlowAfter, idleSlowPoll = 200*time.Millisecond, 300*time.Millisecond
	defer func() { idleSlowAfter, idleSlowPoll = after, slow }()
	e := &Env{Poll: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var calls atomic.Int64
	start := time.Now()
	idle := func(context.Context) (bool, string, error) {
		calls.Add(1)
		return time.Since(start) > 1100*time.Millisecond, "running task 2 of backup 1", nil
	}
	if err := waitIdle(context.Background(), e, time.Minute, idle); err != nil {
		t.Fatal(err)
	}
	// about 10 looks in the first 200ms, then one per 300ms: 13 or so; at 20ms throughout, 55.
	if n := calls.Load(); n > 20 || n < 8 {
		t.Errorf("%d looks in 1.1s, want 8..20", n)
	}
}
