package podman

import (
	"reflect"
	"testing"
)

func TestParseAndDown(t *testing.T) {
	out := `[{"Names":["a_db_1"],"State":"running","Status":"Up 3 seconds"},
{"Names":["a_app_1"],"State":"stopping","Status":"Stopping"},
{"Names":["a_old_1"],"State":"exited","Status":"Exited (125) 2 seconds ago"},
{"Names":["a_new_1"],"State":"created","Status":"Created"},
{"Names":["a_p_1"],"State":"paused","Status":"Paused"},
{"Names":[],"State":"running"}]`
	cs, err := parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 5 || cs[2].Status != "Exited (125) 2 seconds ago" || cs[2].State != "exited" {
		t.Fatalf("parse: %+v", cs)
	}
	// "stopping" and "paused" are not down: the process is still there.
	if got, want := Up(cs), []string{"a_db_1", "a_app_1", "a_p_1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Up = %v, want %v", got, want)
	}
	if cs, err := parse([]byte("[]")); err != nil || len(cs) != 0 {
		t.Errorf("no containers: %v %v", cs, err)
	}
	if _, err := parse([]byte("Error: something")); err == nil {
		t.Error("garbage output was not an error")
	}
}
