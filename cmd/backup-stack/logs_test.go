package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/logread"
)

// journalStub answers every query with its lines (or its error).
type journalStub struct {
	lines []string
	err   error
	qs    []logread.Query
}

func (j *journalStub) Lines(_ context.Context, q logread.Query, emit func(string)) error {
	j.qs = append(j.qs, q)
	if j.err != nil {
		return j.err
	}
	for i, l := range j.lines {
		if q.Lines > 0 && i >= q.Lines {
			break
		}
		emit(l)
	}
	return nil
}

func TestLogs(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	file := filepath.Join(dir, "backup-s-"+now.Format("2006-01-02")+".log")
	content := now.Add(-2*time.Hour).Format(time.RFC3339) + " gate s: early\n" +
		now.Add(-time.Minute).Format(time.RFC3339) + " run s: late\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		journal *journalStub
		logDir  string
		since   string
		code    int // 0, or the usage code
		out     []string
		notOut  []string
		errw    string
	}{{
		name: "the journal when it has lines", journal: &journalStub{lines: []string{"gate s: from the journal"}}, logDir: dir,
		out: []string{"gate s: from the journal"}, notOut: []string{"early"}, errw: "showing the journal (journalctl --user",
	}, {
		name: "the files when the journal has nothing", journal: &journalStub{}, logDir: dir,
		out: []string{"gate s: early", "run s: late"}, errw: "the journal has no lines of backup@s.service, backup-hold@s.service, backup-notify@s.service; showing the log_dir files",
	}, {
		name: "the files when journalctl fails", journal: &journalStub{err: errors.New("no journalctl")}, logDir: dir,
		out: []string{"run s: late"}, errw: "the journal cannot be read (no journalctl)",
	}, {
		name: "--since applies to the files", journal: &journalStub{}, logDir: dir, since: "-1h",
		out: []string{"run s: late"}, notOut: []string{"early"}, errw: "log_dir",
	}, {
		name: "a --since the files cannot apply is a usage error", journal: &journalStub{}, logDir: dir, since: "last tuesday",
		code: 2,
	}, {
		name: "neither source", journal: &journalStub{},
		errw: "config.hcl sets no log_dir",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			v := logView{Journal: c.journal, Out: &out, Err: &errw, Now: time.Now}
			err := v.show(context.Background(), "s", c.logDir, c.since, false)
			var ee *exitError
			switch {
			case c.code == 0 && err != nil:
				t.Fatalf("show: %v", err)
			case c.code != 0 && (!errors.As(err, &ee) || ee.code != c.code):
				t.Fatalf("show: %v, want exit code %d", err, c.code)
			}
			for _, w := range c.out {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.notOut {
				if strings.Contains(out.String(), w) {
					t.Errorf("stdout has %q:\n%s", w, out.String())
				}
			}
			if !strings.Contains(errw.String(), c.errw) {
				t.Errorf("stderr lacks %q:\n%s", c.errw, errw.String())
			}
			for _, q := range c.journal.qs {
				if q.Since != c.since || len(q.Units) != 3 {
					t.Errorf("journal query %+v: want --since %q and the three units", q, c.since)
				}
			}
		})
	}
}
