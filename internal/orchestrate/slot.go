package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Holder identifies who holds the backup slot: one invocation of one
// backup@<stack>.service.
type Holder struct {
	Stack        string    `json:"stack"`
	InvocationID string    `json:"invocation_id"`
	Since        time.Time `json:"since"`
}

// Slot is the single backup slot. Unit ordering only serializes backups
// whose jobs were queued together; two timers firing a moment apart are
// not ordered, so the slot is what guarantees one stack down at a time.
// It is a file, not a held lock, because it must span several processes
// (gate ... release); it is free when its holder's unit no longer runs
// that invocation, so a crash can never wedge it.
type Slot struct {
	Dir string
	// Alive reports whether the holder's invocation is still running.
	Alive func(ctx context.Context, h Holder) (bool, error)
}

func (s Slot) path() string { return filepath.Join(s.Dir, "slot") }

// lock serializes check-and-set of the slot file between processes.
func (s Slot) lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "slot.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// Current returns the holder, or nil when the slot is free or its holder
// is gone.
func (s Slot) Current(ctx context.Context) (*Holder, error) {
	var h Holder
	err := readJSON(s.path(), &h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		// A slot file nobody can read would block every backup forever.
		return nil, nil
	}
	alive, err := s.Alive(ctx, h)
	if err != nil {
		return &h, err
	}
	if !alive {
		return nil, nil
	}
	return &h, nil
}

// TryTake takes the slot if it is free (or already ours) and otherwise
// returns the current holder.
func (s Slot) TryTake(ctx context.Context, me Holder) (*Holder, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, fmt.Errorf("backup slot: %w", err)
	}
	defer unlock()
	cur, err := s.Current(ctx)
	if err != nil {
		return cur, fmt.Errorf("backup slot: checking holder %s: %w", cur.Stack, err)
	}
	if cur != nil && !(cur.Stack == me.Stack && cur.InvocationID == me.InvocationID) {
		return cur, nil
	}
	// Since is when the slot was taken (what a waiting gate reports), not
	// when the holder began to wait for it.
	if cur != nil {
		me.Since = cur.Since
	} else {
		me.Since = time.Now()
	}
	if err := writeJSON(s.path(), me); err != nil {
		return nil, fmt.Errorf("backup slot: %w", err)
	}
	return nil, nil
}

// Take waits until the slot is ours or ctx ends. waiting is called once
// per change of holder, so the journal says whom we wait for.
func (s Slot) Take(ctx context.Context, me Holder, poll time.Duration, waiting func(Holder)) error {
	var last string
	for {
		cur, err := s.TryTake(ctx, me)
		if err != nil {
			return err
		}
		if cur == nil {
			return nil
		}
		if key := cur.Stack + "/" + cur.InvocationID; key != last {
			last = key
			waiting(*cur)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("backup slot still held by stack %q: %w", cur.Stack, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Release frees the slot if me holds it.
func (s Slot) Release(me Holder) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	var h Holder
	err = readJSON(s.path(), &h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && (h.Stack != me.Stack || h.InvocationID != me.InvocationID) {
		return nil
	}
	return os.Remove(s.path())
}
