package systemd

// The ActiveState values of a unit, as `systemctl show -p ActiveState`
// prints them, sorted into the two questions this project asks.

// Up reports whether a unit in this state is (or is becoming) up: the
// states in which "start it again after the backup" is the right memory.
// A unit that is deactivating is on its way down and is not up.
func Up(state string) bool {
	switch state {
	case "active", "activating", "reloading", "refreshing":
		return true
	}
	return false
}

// Running reports whether a unit in this state has a job or processes
// that are still going: Up or deactivating. A backup unit is still
// running its ExecStopPost= restore while deactivating, so the slot it
// holds is still taken and `status` must not call it idle.
func Running(state string) bool {
	return Up(state) || state == "deactivating"
}
