package duplicati

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want ServerState
		str  string
		bad  bool
	}{
		{name: "idle (reference 8.1)", out: "Connecting to http://127.0.0.1:8200/...\nServer state: Running\nActive task: None\nScheduler tasks: Empty\n\n",
			want: ServerState{}, str: "idle"},
		{name: "running and queued (reference 8.2)", out: "Connecting to http://127.0.0.1:8200/...\nServer state: Running\nActive task: [Task 12]: BackupId = 1\nScheduled tasks:\n  [Task 13]: BackupId = 3\n\n",
			want: ServerState{Active: &Task{12, "1"}, Queued: []Task{{13, "3"}}}, str: "running task 12 of backup 1; queued: task 13 (backup 3)"},
		{name: "paused active, CRLF, auth noise", out: "Connecting to http://localhost:8200/...\r\nFailed to use refresh token: expired\r\nServer state: Paused\r\nActive task: [Task 7]: BackupId = 2\r\nScheduler tasks: Empty\r\n",
			want: ServerState{Paused: true, Active: &Task{7, "2"}}, str: "paused, running task 7 of backup 2"},
		{name: "paused, queue only", out: "Server state: Paused\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = 1\n  [Task 5]: BackupId = 2\n",
			want: ServerState{Paused: true, Queued: []Task{{4, "1"}, {5, "2"}}}, str: "paused, nothing running; queued: task 4 (backup 1), task 5 (backup 2)"},
		{name: "task without backup", out: "Server state: Running\nActive task: [Task 9]: BackupId = \nScheduler tasks: Empty\n",
			want: ServerState{Active: &Task{9, ""}}, str: "running task 9 (no backup)"},
		{name: "paused idle", out: "Server state: Paused\nActive task: None\nScheduler tasks: Empty\n", want: ServerState{Paused: true}, str: "paused, idle"},
		{name: "missing active line", out: "Server state: Running\nScheduler tasks: Empty\n", bad: true},
		{name: "missing queue line", out: "Server state: Running\nActive task: None\n", bad: true},
		{name: "missing state line", out: "Active task: None\nScheduler tasks: Empty\n", bad: true},
		{name: "unknown state", out: "Server state: Sleeping\nActive task: None\nScheduler tasks: Empty\n", bad: true},
		{name: "garbage", out: "ServerStatus { State = RUNNING, Current = #3/1, Pending = 0 }\n", bad: true},
		{name: "empty", out: "", bad: true},
		{name: "bad task id", out: "Server state: Running\nActive task: [Task x]: BackupId = 1\nScheduler tasks: Empty\n", bad: true},
		{name: "scheduled header without tasks", out: "Server state: Running\nActive task: None\nScheduled tasks:\n\n", bad: true},
		{name: "two active lines", out: "Server state: Running\nActive task: None\nActive task: None\nScheduler tasks: Empty\n", bad: true},
		{name: "stray task line", out: "Server state: Running\nActive task: None\nScheduler tasks: Empty\n  [Task 3]: BackupId = 1\n", bad: true},
		// A garbled second queue line must not end the queue quietly (backup 2 would look gone).
		{name: "garbled later queue line", out: "Server state: Paused\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = 1\nx  [Task 5]: BackupId = 2\n", bad: true},
		{name: "ANSI before a later queue line", out: "Server state: Paused\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = 1\n\x1b[0m  [Task 5]: BackupId = 2\n", bad: true},
		{name: "ANSI inside a later queue line", out: "Server state: Paused\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = 1\n  [Ta\x1b[0msk 5]: BackupId = 2\n", bad: true},
		{name: "space inside a later queue line", out: "Server state: Paused\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = 1\n  [ Task 5]: BackupId = 2\n", bad: true},
		{name: "queue line without a backup", out: "Server state: Running\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = \n", bad: true},
		{name: "ANSI reset after the backup ID", out: "Server state: Running\nActive task: [Task 12]: BackupId = 1\x1b[0m\nScheduler tasks: Empty\n", bad: true},
		{name: "text after the backup ID", out: "Server state: Running\nActive task: [Task 12]: BackupId = 1 (Backup)\nScheduler tasks: Empty\n", bad: true},
		{name: "CR inside a line", out: "Server state: Running\nActive task: [Task 12]:\r BackupId = 1\nScheduler tasks: Empty\n", bad: true},
		{name: "cut last queue line", out: "Server state: Paused\nActive task: None\nScheduled tasks:\n  [Task 4]: BackupId = 1\n  [Ta", bad: true},
		{name: "text after the queue", out: "Server state: Running\nActive task: None\nScheduler tasks: Empty\nWarning: odd\n", bad: true},
		{name: "indented status line", out: "Server state: Running\n Active task: [Task 12]: BackupId = 1\nActive task: None\nScheduler tasks: Empty\n", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus(tt.out)
			if tt.bad {
				if !errors.Is(err, ErrUnparseable) {
					t.Fatalf("err = %v, want ErrUnparseable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Fatalf("String() = %q, want %q", s, tt.str)
			}
			if got.Idle() != (got.Active == nil && len(got.Queued) == 0) {
				t.Fatal("Idle inconsistent")
			}
		})
	}
}

func TestParseListBackupsAndMatch(t *testing.T) {
	out := "Connecting to http://127.0.0.1:8200/...\n1: Docs\n  nightly docs\n\n2: Photos (old)\n\n10: docs\n\n"
	list, err := parseListBackups(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []backupEntry{{"1", "Docs"}, {"2", "Photos (old)"}, {"10", "docs"}}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("got %v", list)
	}
	for job, id := range map[string]string{"DOCS": "1", "photos (OLD)": "2", "2": "2", "10": "10"} {
		b, ok := matchBackup(list, job)
		if !ok || b.ID != id {
			t.Errorf("match %q = %v %v, want %s", job, b, ok, id)
		}
	}
	if _, ok := matchBackup(list, "Phot"); ok {
		t.Error("prefix matched")
	}
	if l, err := parseListBackups("Connecting to x...\nNo backups found\n\n"); err != nil || len(l) != 0 {
		t.Errorf("empty: %v %v", l, err)
	}
	if _, err := parseListBackups("Connecting to x...\n"); !errors.Is(err, ErrUnparseable) {
		t.Errorf("no list: %v", err)
	}
}

func TestParseRunLine(t *testing.T) {
	name, id, ok := parseRunLine("Connecting to http://127.0.0.1:8200/...\nRunning backup My (odd) Backup (ID: 12)\n\n")
	if !ok || name != "My (odd) Backup" || id != "12" {
		t.Fatalf("got %q %q %v", name, id, ok)
	}
	if _, _, ok := parseRunLine("Connecting...\n"); ok {
		t.Fatal("matched nothing")
	}
	// Digits only: a garbled ID must never become the backup the caller follows.
	for _, out := range []string{
		"Running backup Docs (ID: 1x)\n",
		"Running backup Docs (ID: 1 (Backup))\n",
		"Running backup Docs (ID:  1)\n",
		"Running backup Docs (ID: \x1b[0m1)\n",
		"Running backup Docs (ID: -1)\n",
		"Running backup Docs (ID: )\n",
	} {
		if _, id, ok := parseRunLine(out); ok {
			t.Errorf("%q: parsed ID %q", out, id)
		}
	}
	if _, id, ok := parseRunLine("Running backup Docs (ID: 7)\r\n\n"); !ok || id != "7" {
		t.Errorf("CRLF: %q %v", id, ok)
	}
}

func TestParseListBackupsIDsAreDigits(t *testing.T) {
	// Reference §10.4: the util's auth warning looks like an "X: Y" entry.
	out := "Connecting to http://127.0.0.1:8200/...\nWarning: The encryption key is missing, saving login token without encryption\n1: Docs\n\n1a: odd\n\n"
	list, err := parseListBackups(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []backupEntry{{"1", "Docs"}}; !reflect.DeepEqual(list, want) {
		t.Fatalf("got %v, want %v", list, want)
	}
}

func TestLastLine(t *testing.T) {
	out := "Connecting to http://127.0.0.1:1/...\nSystem.Net.Http.HttpRequestException: Connection refused\n   at Foo.Bar()\n   at Baz()\n\n"
	if got := lastLine(out); !strings.HasPrefix(got, "System.Net.Http.HttpRequestException") {
		t.Fatalf("got %q", got)
	}
	if got := lastLine(""); got != "(no output)" {
		t.Fatalf("got %q", got)
	}
}

func TestNewPicksRoute(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("no route accepted")
	}
	if _, err := New(Options{URL: "127.0.0.1:8200"}); err == nil {
		t.Fatal("URL without scheme accepted")
	}
	b, err := New(Options{URL: "http://127.0.0.1:8200", Command: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := b.(*apiBackend); !ok || a.o.PollInterval != defaultAPIPoll || a.o.WaitTimeout != defaultWaitTimeout {
		t.Fatalf("URL did not select the API route with defaults: %#v", b)
	}
	b, err = New(Options{Command: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := b.(*execBackend); !ok || e.o.PollInterval != defaultExecPoll || e.o.RunTimeout != defaultRunTimeout {
		t.Fatalf("Command did not select the exec route with defaults: %#v", b)
	}
}

func TestOutcomeSucceeded(t *testing.T) {
	for _, tt := range []struct {
		o    Outcome
		want bool
	}{
		{Outcome{Result: ResultSuccess}, true},
		{Outcome{Result: ResultWarning}, false},
		{Outcome{Result: ResultUnknown}, false},
		{Outcome{Result: ResultUnknown, UnknownIsSuccess: true}, true},
		{Outcome{Result: ResultFatal, UnknownIsSuccess: true}, false},
	} {
		if got := tt.o.Succeeded(); got != tt.want {
			t.Errorf("%+v: %v", tt.o, got)
		}
	}
}
