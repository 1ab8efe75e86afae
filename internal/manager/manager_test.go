package manager_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/manager/managertest"
)

func TestApplyTimers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		active      []string // backup timers running before
		inactive    []string // loaded, not running
		scheduled   []string
		wantChanges []string
	}{
		{"new timer is started", nil, []string{"backup@a.timer"}, []string{"backup@a.timer"},
			[]string{"restart backup@a.timer"}},
		{"removed schedule is stopped", []string{"backup@a.timer", "backup@b.timer"}, nil, []string{"backup@b.timer"},
			[]string{"stop backup@a.timer", "restart backup@b.timer"}},
		{"nothing scheduled, nothing running", nil, []string{"backup@a.timer"}, nil, nil},
		{"the template is never stopped", []string{"backup@x.timer"}, nil, nil, []string{"stop backup@x.timer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := managertest.New().Set("active", tc.active...).Set("inactive", tc.inactive...)
			f.Set("active", "other.timer")
			ch, err := manager.ApplyTimers(ctx, f, tc.scheduled)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Changes(); !reflect.DeepEqual(got, tc.wantChanges) {
				t.Errorf("changes %q, want %q", got, tc.wantChanges)
			}
			for _, s := range tc.scheduled {
				if f.State(s) != "active" {
					t.Errorf("%s is %s after ApplyTimers", s, f.State(s))
				}
			}
			if len(tc.scheduled) > 0 && !reflect.DeepEqual(ch.Restarted, tc.scheduled) {
				t.Errorf("Restarted %q, want %q", ch.Restarted, tc.scheduled)
			}
			if f.State("other.timer") != "active" {
				t.Error("a timer that is not a backup timer was stopped")
			}
		})
	}
}

func TestApplyTimersReportsBothFailures(t *testing.T) {
	boom := errors.New("boom")
	f := managertest.New().Set("active", "backup@a.timer").
		Fail("stop backup@a.timer", boom).Fail("restart backup@b.timer", boom)
	ch, err := manager.ApplyTimers(context.Background(), f, []string{"backup@b.timer"})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if len(ch.Restarted) != 0 {
		t.Errorf("Restarted %q after a failed restart", ch.Restarted)
	}
	if got := len(f.Changes()); got != 2 {
		t.Errorf("%d changes; a failed stop must not keep the restart from being tried", got)
	}
}

func TestUpAndStates(t *testing.T) {
	f := managertest.New().Set("active", "a.service").Set("activating", "b.service").
		Set("deactivating", "c.service").Set("failed", "d.service")
	up, err := manager.Up(context.Background(), f, "a.service", "b.service", "c.service", "d.service", "missing.service")
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, false, false}; !reflect.DeepEqual(up, want) {
		t.Errorf("Up = %v, want %v", up, want)
	}
	if calls := f.Calls(); len(calls) != 1 {
		t.Errorf("Up made %d calls, want one show for all units: %q", len(calls), calls)
	}
	if s, _ := manager.States(context.Background(), f); s != nil {
		t.Errorf("States of no units = %v", s)
	}
}
