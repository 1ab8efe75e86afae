//go:build !race

package duplicati

const raceEnabled = false
